"""Counts that pages show beside a list of assignments (a role's tab labels), kept in the cache
while they cannot change.

Counting the 36,000 members of a busy role, even from an index alone, costs more than the page
of 25 rows they head, on every load. A count of assignments changes in two ways only: a write
of assignments, or the clock passing an end. So a kept count carries the next end after the
moment it was counted and is used only until then, and every write of assignments (save,
delete, and the bulk writes' `assignments_changed`) forgets every kept count at once, after
commit, by moving a generation number. What a page shows is the count it would have counted.
Counts never decide access.
"""

import hashlib
import uuid
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

GENERATION_KEY = "pim:assignment-counts:generation"


def _seconds() -> int:
    return getattr(settings, "PIM_ASSIGNMENT_COUNTS_SECONDS", 30)


def kept(key: str, now: datetime, count) -> dict:
    """`count()` (a dict of counts with `next_change`: the first end after `now` among the
    rows counted, or None), kept under `key` until then, or until any write of assignments,
    or for PIM_ASSIGNMENT_COUNTS_SECONDS (30; 0 counts on every load) at most: with each
    process's own cache (no CACHE_URL), a write made by another process is seen then."""
    seconds = _seconds()
    if seconds <= 0:
        return count()
    digest = hashlib.sha256(key.encode()).hexdigest()[:40]
    full_key = f"pim:assignment-counts:{generation()}:{digest}"
    counts = cache.get(full_key)
    if counts is None or (counts["next_change"] is not None and counts["next_change"] <= now):
        counts = count()
        cache.set(full_key, counts, seconds)
    return counts


class Generation:
    """A name for some rows as they are: it changes after every committed write of them, so
    whatever is kept under a key holding it is forgotten then."""

    def __init__(self, key: str):
        self.key = key
        # One bound method, so that a transaction queues it once however many rows it writes.
        self.move = self._move

    def current(self) -> str:
        current = cache.get(self.key)
        if current is None:
            current = uuid.uuid4().hex
            cache.add(self.key, current, None)
            current = cache.get(self.key, current)
        return current

    def _move(self) -> None:
        cache.set(self.key, uuid.uuid4().hex, None)

    def move_after_commit(self, **kwargs) -> None:
        """Moved once the current transaction commits (a receiver): once per transaction."""
        connection = transaction.get_connection()
        pending = connection.run_on_commit if connection.in_atomic_block else ()
        if not any(callback is self.move for _, callback, _ in pending):
            transaction.on_commit(self.move)

    def move_now_and_after_commit(self, **kwargs) -> None:
        """Moved at once, so that the writer's own next read in its transaction sees what it
        wrote, and again at commit, so that what others kept meanwhile is forgotten too."""
        self.move()
        self.move_after_commit()


# The assignments (and group memberships): the dashboard keeps its drawn insights under it.
ASSIGNMENTS = Generation(GENERATION_KEY)
generation = ASSIGNMENTS.current
# Every kept count is forgotten once the current transaction commits (a receiver).
forget = ASSIGNMENTS.move_after_commit
_new_generation = ASSIGNMENTS.move

# Pending requests, their decisions, the role settings and who they name as approvers, and
# group memberships: Approve requests keeps each approver's list under it
# (approvals.services.kept_inbox).
REQUESTS = Generation("pim:requests:generation")
