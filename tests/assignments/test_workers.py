"""The time engine with real processes: a timekeeper and two django-q2 worker processes.

Ends that fall due together are each recorded, audited and mailed once, on the database broker
and on Redis, and a worker killed in the middle of a batch loses nothing and does nothing twice.
How fast is the benchmark's business (`python -m tests.bench.time_engine`); these tests only
wait, within a generous bound, for the work to be done, and then check that it was done once.

They need PostgreSQL: the worker processes must see the rows this test commits.
"""

from collections import Counter

import pytest

from assignments.models import Assignment
from audit import log as audit_log
from audit.models import AuditEvent
from tests.workers import Workers, ending_assignments, mails_in, redis_available, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BOUND = 120  # seconds: far beyond what the work needs; the loop stops by itself


def ending_soon(count: int, *, in_seconds: float = 2) -> list[int]:
    """`count` active assignments of `count` users, all ending at the same moment."""
    return ending_assignments(count, first_in=in_seconds, tag="holder")


def processed(ids) -> int:
    return Assignment.objects.filter(pk__in=ids, end_processed_at__isnull=False).count()


def assert_each_ended_once(ids, mail_dir, *, all_mailed: bool = True):
    ended = Counter(
        AuditEvent.objects.filter(action="pim.assignment.ended").values_list("target_id", flat=True)
    )
    assert set(ended) == {str(pk) for pk in ids}
    assert max(ended.values()) == 1, "an end was recorded twice"
    mailed = Counter(mails_in(mail_dir))
    assert not mailed or max(mailed.values()) == 1, "a holder got the same mail twice"
    if all_mailed:
        assert len(mailed) == len(ids)


@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_ends_due_together_are_each_done_once_by_two_workers(broker, tmp_path):
    if broker == "redis" and not redis_available():
        pytest.skip("needs Redis at 127.0.0.1:6379 (apt-get install redis-server)")
    ids = ending_soon(600)
    with Workers(mail_dir=tmp_path, broker=broker) as workers:
        done = wait_until(lambda: processed(ids) == len(ids), seconds=BOUND)
        assert done, f"{processed(ids)} of {len(ids)} ends recorded\n{workers.errors()}"
        assert wait_until(lambda: len(mails_in(tmp_path)) >= len(ids), seconds=BOUND)
    assert_each_ended_once(ids, tmp_path)
    assert audit_log.verify_chain()[1] is None


def test_a_worker_killed_mid_batch_loses_nothing_and_does_nothing_twice(tmp_path):
    ids = ending_soon(3000, in_seconds=3)
    with Workers(mail_dir=tmp_path, extra_env={"TIMEKEEPER_BATCH": "100"}) as workers:
        # Kill the first worker process (with its forks) once the ends are under way.
        assert wait_until(lambda: processed(ids) > 0, seconds=BOUND), workers.errors()
        workers.kill(workers.clusters_started[0])
        assert processed(ids) < len(ids), "too late to kill mid-work: raise the count"
        done = wait_until(lambda: processed(ids) == len(ids), seconds=BOUND)
        assert done, f"{processed(ids)} of {len(ids)} ends recorded\n{workers.errors()}"
    # A mail job the killed worker had taken comes back only after django-q2's retry time;
    # what must hold is that nothing was recorded or mailed twice.
    assert_each_ended_once(ids, tmp_path, all_mailed=False)
    assert audit_log.verify_chain()[1] is None
