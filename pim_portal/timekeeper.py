"""The time engine: the side effects of time, found on the rows themselves and done by workers.

Access never waits for it: an assignment is in force from its start to its end whatever runs.
What waits is bookkeeping, audit and mail (and, later, connectors revoking access elsewhere),
and that should follow the clock within seconds.

Each app registers its kinds of due work in `AppConfig.ready()`:

    timekeeper.register(DueWork(
        name="assignment ends",
        next_due=lambda: ...,        # the earliest due time of work not done yet, or None
        run_batch=lambda now, limit: ...,  # claim and do up to `limit` due items; how many
    ))

`next_due` is one indexed query. `run_batch` claims its rows so that two workers never take
the same one (`SELECT ... FOR UPDATE SKIP LOCKED`, or a conditional UPDATE) and does the batch
in one transaction: a worker killed half-way rolls back, and the rows are due again.

Work that others' work makes due at once says so with `follows`: the webhooks' fan-out reads
the audit events that any other kind writes, so `follows=ANY` makes the worker that just did a
batch of ends run the fan-out next, in the same task, instead of waiting a second or two for
the timekeeper's next look and a worker to take it.

`manage.py timekeeper` runs `loop()`: it sleeps until the next due time (at most `POLL` seconds,
so that work created meanwhile is seen), and when a kind has work due it enqueues `drain(name)`
on the django-q2 broker, `FANOUT` times, so that every worker process takes batches side by
side. Several timekeepers may run (one per host, say): at worst they enqueue a drain that finds
nothing to do. No schedule is kept per row.
"""

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

logger = logging.getLogger(__name__)

DRAIN_TASK = "pim_portal.timekeeper.drain"


ANY = "*"  # `follows=ANY`: after any other kind of work that did something


@dataclass(frozen=True)
class DueWork:
    name: str
    next_due: Callable[[], datetime | None]
    run_batch: Callable[[datetime, int], int]
    # Kinds of work whose batches may make this work due: when a drain of one of them did
    # something, the same worker drains this one next (if it is due by then).
    follows: tuple[str, ...] = ()


_registry: dict[str, DueWork] = {}


def register(work: DueWork) -> None:
    _registry[work.name] = work


def registered() -> list[DueWork]:
    return list(_registry.values())


def _setting(name: str, default):
    return getattr(settings, name, default)


def run_due(name: str, *, now: datetime | None = None, limit: int | None = None) -> int:
    """Do one batch of the named work that is due `now`. How many items it did."""
    work = _registry[name]
    return work.run_batch(now or timezone.now(), limit or _setting("PIM_TIMEKEEPER_BATCH", 200))


def drain(name: str, seconds: float | None = None, *, _chain: frozenset = frozenset()) -> int:
    """A worker's task: take batches of the named work until none is due (or time is up).

    Stops after `seconds` (PIM_TIMEKEEPER_DRAIN_SECONDS) so that one backlog cannot hold a
    worker past django-q2's task timeout; the timekeeper enqueues another drain if work is left.
    When it did something, the work that follows it (`DueWork.follows`) is drained next, in
    the time left, if it is due.
    """
    budget = seconds if seconds is not None else _setting("PIM_TIMEKEEPER_DRAIN_SECONDS", 60)
    deadline = time.monotonic() + budget
    done = 0
    while time.monotonic() < deadline:
        did = run_due(name)
        done += did
        if not did:
            break
    if done:
        chain = _chain | {name}
        for follower in _followers(name, chain):
            left = deadline - time.monotonic()
            due = follower.next_due()
            if left > 0 and due is not None and due <= timezone.now():
                drain(follower.name, left, _chain=chain)
    return done


def _followers(name: str, chain: frozenset) -> list[DueWork]:
    return [
        work
        for work in registered()
        if work.name not in chain and (name in work.follows or ANY in work.follows)
    ]


def catch_up(now: datetime | None = None) -> dict[str, int]:
    """Do every kind of due work here and now, in batches, until none is left (no worker)."""
    now = now or timezone.now()
    done = {}
    for work in registered():
        total = 0
        while did := run_due(work.name, now=now):
            total += did
        done[work.name] = total
    return done


class Loop:
    """The timekeeper's loop; `tick()` is one look at the clock, for tests to step through."""

    def __init__(self, *, enqueue=None, poll=None, fanout=None, redispatch=None):
        self.enqueue = enqueue or _enqueue_drain
        self.poll = poll if poll is not None else _setting("PIM_TIMEKEEPER_POLL", 1.0)
        self.fanout = fanout if fanout is not None else _setting("PIM_TIMEKEEPER_FANOUT", 2)
        self.redispatch = (
            redispatch if redispatch is not None else _setting("PIM_TIMEKEEPER_REDISPATCH", 3.0)
        )
        self._dispatched: dict[str, float] = {}
        self.stopping = False

    def tick(self) -> float:
        """Enqueue drains for the work that is due; the seconds to sleep until the next look."""
        now = timezone.now()
        wait = self.poll
        for work in registered():
            due = work.next_due()
            if due is None:
                continue
            ahead = (due - now).total_seconds()
            if ahead <= 0:
                self._dispatch(work.name)
            else:
                wait = min(wait, ahead)
        return max(wait, 0.01)

    def _dispatch(self, name: str) -> None:
        last = self._dispatched.get(name)
        if last is not None and time.monotonic() - last < self.redispatch:
            return  # the drains enqueued a moment ago are still taking it
        for _ in range(self.fanout):
            self.enqueue(name)
        self._dispatched[name] = time.monotonic()

    def run(self, *, seconds: float | None = None) -> None:
        deadline = None if seconds is None else time.monotonic() + seconds
        while not self.stopping and (deadline is None or time.monotonic() < deadline):
            try:
                wait = self.tick()
            except Exception:
                logger.exception("The timekeeper could not look at the clock; trying again")
                close_old_connections()
                wait = self.poll
            time.sleep(wait)

    def stop(self, *_):
        self.stopping = True


def _enqueue_drain(name: str) -> None:
    from django_q.tasks import async_task

    async_task(DRAIN_TASK, name, task_name=f"timekeeper: {name}"[:100], save=False)


def loop(*, seconds: float | None = None) -> None:
    """Run the timekeeper until SIGTERM or SIGINT (or for `seconds`)."""
    keeper = Loop()
    signal.signal(signal.SIGTERM, keeper.stop)
    signal.signal(signal.SIGINT, keeper.stop)
    keeper.run(seconds=seconds)
