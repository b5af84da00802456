"""A valid audit hash chain of many events, written in bulk without touching any trigger.

The events are inserted already sealed (the database allows any INSERT; only updates are
guarded), with hashes computed by `AuditEvent.compute_hash` itself on unsaved events. The head
is then INSERTed at the last event, or (a later batch: the smoke run grows its database) moved
there in one UPDATE, which its trigger allows because the head's seq only grows.

`measure_seal` and `writers_side_by_side` measure the design of the chain itself: how fast the
sealer links events that writers left unsealed, and (PostgreSQL) that two transactions each
holding an uncommitted audited write do not wait for each other.
"""

import hashlib
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from audit import log
from audit.models import GENESIS_HASH, AuditChainHead, AuditEvent

BATCH = 5000
ACTIONS = [
    "pim.request.activated",
    "pim.request.submitted",
    "pim.request.approved",
    "pim.request.deactivated",
    "pim.assignment.created",
    "pim.assignment.ended",
    "pim.assignment.removed",
    "pim.policy.updated",
]
COLUMNS = [f.name for f in AuditEvent._meta.concrete_fields if f.name != "id"]


def grow(world, total: int) -> None:
    head = AuditChainHead.objects.filter(pk=1).first()
    seq, last_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    if seq >= total:
        return
    events = _events(world, seq, total, last_hash)
    last = _copy(events) if connection.vendor == "postgresql" else _bulk_create(events)
    if head is None:
        AuditChainHead.objects.create(pk=1, seq=last.seq, hash=last.hash)
    else:
        AuditChainHead.objects.filter(pk=1).update(seq=last.seq, hash=last.hash)


def _events(world, seq: int, total: int, prev_hash: str):
    """Events seq+1..total, oldest a year ago, each linked to the one before."""
    rng, users = world.random, world.users
    first = world.now - timedelta(days=365)
    step = timedelta(days=365) / max(1, total - seq)
    roles = [role.name for role in world.roles.values()]
    scopes = [s.path for level in world.levels.values() for s in level[:200]]
    for n in range(seq + 1, total + 1):
        user = users[n % len(users)]
        event = AuditEvent(
            seq=n,
            created_at=first + step * (n - seq),
            actor_id=user.pk,
            actor_name=user.display_name,
            action=ACTIONS[n % len(ACTIONS)],
            target_type="assignments.rolerequest",
            target_id=str(n),
            target_repr=f"Activate role for {user.display_name}",
            principal=user.display_name,
            role=roles[n % len(roles)],
            scope=scopes[n % len(scopes)],
            role_request_id=n,
            http_request_id="",
            ip=f"10.{n % 250}.{n // 250 % 250}.{rng.randint(1, 250)}",
            before=None,
            after={"status": "provisioned", "duration": "PT2H"} if n % 2 else None,
            message="",
            prev_hash=prev_hash,
        )
        event.hash = event.compute_hash()
        prev_hash = event.hash
        yield event


def _copy(events) -> AuditEvent:
    """COPY on PostgreSQL: ten times faster than bulk_create at a million rows. The last."""
    import json

    from django.core.serializers.json import DjangoJSONEncoder

    table = AuditEvent._meta.db_table
    columns = ", ".join(AuditEvent._meta.get_field(name).column for name in COLUMNS)
    last = None
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for event in events:
            row = [getattr(event, AuditEvent._meta.get_field(name).attname) for name in COLUMNS]
            for index, name in enumerate(COLUMNS):
                if name in ("before", "after") and row[index] is not None:
                    row[index] = json.dumps(row[index], cls=DjangoJSONEncoder)
            copy.write_row(row)
            last = event
    return last


def _bulk_create(events) -> AuditEvent:
    batch, last = [], None
    for event in events:
        batch.append(event)
        last = event
        if len(batch) == BATCH:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    AuditEvent.objects.bulk_create(batch)
    return last


def chain_digest() -> str:
    """A short fingerprint of the head, for the report."""
    head = AuditChainHead.objects.get(pk=1)
    return f"#{head.seq} {hashlib.sha256(head.hash.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class SealRate:
    events: int
    seconds: float
    queries_per_batch: int

    def __str__(self) -> str:
        rate = self.events / self.seconds if self.seconds else float("inf")
        return (
            f"sealed {self.events} events in {self.seconds:.2f} s ({rate:,.0f}/s), "
            f"{self.queries_per_batch} queries per batch of {log.SEAL_BATCH}"
        )


def measure_seal(count: int = 10_000) -> SealRate:
    """Write `count` unsealed events (as `record_many` does) and time sealing them all."""
    for start in range(0, count, 1000):
        log.record_many(
            {"action": "pim.test.bench", "message": f"bench {n}"}
            for n in range(start, min(count, start + 1000))
        )
    sealed = batches = 0
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        while did := log.seal():
            sealed += did
            batches += 1
        seconds = time.perf_counter() - started
    return SealRate(sealed, seconds, len(queries) // max(1, batches))


def writers_side_by_side(hold: float = 1.0) -> float:
    """PostgreSQL: how long a second audited write waits while a first one is uncommitted.

    The first transaction records an event and stays open `hold` seconds; the second records
    one meanwhile and commits. Returns the second write's seconds: about 0 when writers do not
    queue, about `hold` if they queued behind one lock (as they did before the sealer).
    """
    written, waited = threading.Event(), []

    def first():
        try:
            with transaction.atomic():
                log.record(action="pim.test.bench", message="first, held open")
                written.set()
                time.sleep(hold)
        finally:
            connections.close_all()

    def second():
        try:
            written.wait(10)
            started = time.perf_counter()
            with transaction.atomic():
                log.record(action="pim.test.bench", message="second")
            waited.append(time.perf_counter() - started)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return waited[0]
