"""Side effects that leave the web request: queued with the change, done by a django-q2 worker.

    jobs.enqueue("assignments.notifications.notify_activated", request.pk)

With the database broker the task row is written in the caller's transaction, so it is queued
if and only if the change commits (and a worker sees it only then). With Redis it is pushed
once the transaction commits. With `Q_SYNC` (the test suite) it runs in this process, after
commit, exactly where a worker would.

Tasks take ids, never objects: they load what they need, as it is when they run.
"""

from django.db import transaction
from django_q.conf import Conf
from django_q.tasks import async_task


def _push(func: str, args: tuple) -> None:
    async_task(func, *args, task_name=func.rsplit(".", 1)[-1][:100])


def enqueue(func: str, *args) -> None:
    """Queue `func(*args)` (a dotted path) for a worker, as part of the current transaction."""
    connection = transaction.get_connection()
    atomic_with_change = Conf.ORM == "default" and not Conf.SYNC and connection.in_atomic_block
    if atomic_with_change:
        _push(func, args)
    else:
        transaction.on_commit(lambda: _push(func, args))
