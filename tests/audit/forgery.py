"""What someone who can write the audit tables does: raw SQL, with or without the triggers."""

from contextlib import contextmanager

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit.models import AuditEvent

GUARDED_TABLES = ("audit_auditevent", "audit_auditchainhead")


def execute(sql: str, *params) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@contextmanager
def triggers_off():
    """Lift the database's guard for a moment, as the owner of the tables can."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table in GUARDED_TABLES:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            try:
                yield
            finally:
                for table in GUARDED_TABLES:
                    cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            return
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN (%s, %s)",
            GUARDED_TABLES,
        )
        saved = cursor.fetchall()
        for name, _ in saved:
            cursor.execute(f'DROP TRIGGER "{name}"')
        try:
            yield
        finally:
            for _, sql in saved:
                cursor.execute(sql)


def forge(sql: str, *params) -> None:
    """Change the tables behind the guard's back."""
    with triggers_off():
        execute(sql, *params)


def refused_by_database(sql: str, *params) -> str:
    """Run SQL the database must refuse; returns its message."""
    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        execute(sql, *params)
    return str(refused.value)


def forged_event(after: AuditEvent, **fields) -> AuditEvent:
    """An event that links correctly to `after`, with a correct hash: a keyless chain accepts it."""
    event = AuditEvent(
        seq=after.seq + 1,
        created_at=timezone.now(),
        actor_name="system",
        action="pim.test.forged",
        prev_hash=after.hash,
        **fields,
    )
    event.hash = event.compute_hash()
    return event


def insert(event: AuditEvent) -> None:
    """INSERT the row as it stands; the database allows appends to anyone who can write."""
    AuditEvent.objects.bulk_create([event])


def rehash_from(seq: int) -> AuditEvent:
    """Recompute every link from event `seq` on, as a forger who edited it would; the last."""
    previous = AuditEvent.objects.filter(seq=seq - 1).first()
    last = None
    for event in AuditEvent.objects.filter(seq__gte=seq).order_by("seq"):
        event.prev_hash = previous.hash if previous else event.prev_hash
        event.hash = event.compute_hash()
        forge(
            "UPDATE audit_auditevent SET prev_hash = %s, hash = %s WHERE seq = %s",
            event.prev_hash,
            event.hash,
            event.seq,
        )
        previous = last = event
    return last
