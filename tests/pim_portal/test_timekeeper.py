"""The timekeeper's loop: it queues drains for due work, not twice in a row, and sleeps until
the next due time (at most its poll interval). Workers are the subject of test_workers.py."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from pim_portal import timekeeper

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


class Ledger:
    """Due work of its own: items due at given times, done in batches."""

    def __init__(self, name, due):
        self.name, self.due, self.done = name, sorted(due), []

    def next_due(self):
        return self.due[0] if self.due else None

    def run_batch(self, now, limit):
        batch = [at for at in self.due if at <= now][:limit]
        self.due = [at for at in self.due if at not in batch]
        self.done += batch
        return len(batch)


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setattr(timekeeper, "_registry", {})

    def add(name, due):
        ledger = Ledger(name, due)
        timekeeper.register(timekeeper.DueWork(name, ledger.next_due, ledger.run_batch))
        return ledger

    return add


def test_due_work_is_queued_once_per_worker_and_not_again_at_once(registry):
    registry("ends", [T0 - timedelta(seconds=1)])
    queued = []
    loop = timekeeper.Loop(enqueue=queued.append, poll=1.0, fanout=3, redispatch=60)
    with time_machine.travel(T0, tick=False):
        loop.tick()
        loop.tick()
    assert queued == ["ends", "ends", "ends"]


def test_the_loop_sleeps_until_the_next_due_time_or_its_poll(registry):
    registry("ends", [T0 + timedelta(seconds=0.25)])
    registry("starts", [T0 + timedelta(hours=1)])
    loop = timekeeper.Loop(enqueue=lambda name: None, poll=1.0, fanout=1)
    with time_machine.travel(T0, tick=False):
        assert loop.tick() == pytest.approx(0.25)
    timekeeper._registry.pop("ends")
    with time_machine.travel(T0, tick=False):
        assert loop.tick() == 1.0  # nothing sooner: look again after the poll interval


def test_a_drain_takes_batches_until_nothing_is_due(registry, settings):
    settings.PIM_TIMEKEEPER_BATCH = 2
    ledger = registry("ends", [T0 - timedelta(seconds=s) for s in range(5)] + [T0 + timedelta(1)])
    with time_machine.travel(T0, tick=False):
        assert timekeeper.drain("ends") == 5
    assert len(ledger.done) == 5
    assert ledger.due == [T0 + timedelta(1)]  # not due yet: left alone


def test_work_that_follows_another_is_drained_right_after_it_did_something(monkeypatch):
    ran = []
    due_b = []

    def batch_a(now, limit):
        if "a" in ran:
            return 0
        ran.append("a")
        due_b.append(now)  # what A did makes B due
        return 1

    def batch_b(now, limit):
        if not due_b:
            return 0
        due_b.clear()
        ran.append("b")
        return 1

    works = {
        "a": timekeeper.DueWork("a", lambda: None, batch_a),
        "b": timekeeper.DueWork("b", lambda: due_b[0] if due_b else None, batch_b, follows=("a",)),
        "idle": timekeeper.DueWork("idle", lambda: None, lambda now, limit: 0, follows=("a",)),
    }
    monkeypatch.setattr(timekeeper, "_registry", works)
    assert timekeeper.drain("a") == 1
    assert ran == ["a", "b"]


def test_a_drain_that_did_nothing_drains_no_follower(monkeypatch):
    ran = []
    works = {
        "a": timekeeper.DueWork("a", lambda: None, lambda now, limit: 0),
        "b": timekeeper.DueWork(
            "b", timezone.now, lambda now, limit: ran.append("b") or 0, follows=(timekeeper.ANY,)
        ),
    }
    monkeypatch.setattr(timekeeper, "_registry", works)
    timekeeper.drain("a")
    assert ran == []
