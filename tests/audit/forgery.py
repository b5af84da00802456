"""What someone who can write the audit tables does: raw SQL, with or without the triggers."""

import base64
from contextlib import contextmanager

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
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


def move_head_to(event: AuditEvent) -> None:
    """Point the chain head at `event`, as a forger who rewrote the chain up to it would."""
    forge("UPDATE audit_auditchainhead SET seq = %s, hash = %s WHERE id = 1", event.seq, event.hash)


def rewrite_from(seq: int, message: str = "nothing happened") -> AuditEvent:
    """Edit event `seq`, recompute every later hash and move the head: a consistent rewrite."""
    forge("UPDATE audit_auditevent SET message = %s WHERE seq = %s", message, seq)
    last = rehash_from(seq)
    move_head_to(last)
    return last


def cut_tail(first: int) -> None:
    """Delete the events from `first` on and move the head back to the one before."""
    forge("DELETE FROM audit_auditevent WHERE seq >= %s", first)
    move_head_to(AuditEvent.objects.get(seq=first - 1))


def cut_range(first: int, last: int) -> None:
    """Delete events `first`..`last`, renumber the later ones down and re-link them."""
    gap = last - first + 1
    forge("DELETE FROM audit_auditevent WHERE seq >= %s AND seq <= %s", first, last)
    # Two steps around the unique seq: out of the way, then down into the gap.
    forge("UPDATE audit_auditevent SET seq = seq + 1000000 WHERE seq > %s", last)
    forge("UPDATE audit_auditevent SET seq = seq - 1000000 - %s WHERE seq > 1000000", gap)
    move_head_to(rehash_from(first))


def use_new_key(settings) -> Ed25519PrivateKey:
    """Configure a fresh signing key (AUDIT_SIGNING_KEY, base64 of the raw 32 bytes)."""
    key = Ed25519PrivateKey.generate()
    settings.AUDIT_SIGNING_KEY = raw_base64(key)
    settings.AUDIT_SIGNING_KEY_FILE = ""
    settings.AUDIT_VERIFY_KEY = ""
    settings.AUDIT_VERIFY_KEY_FILE = ""
    settings.AUDIT_CHECKPOINT_FILE = ""
    return key


def raw_base64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    if isinstance(key, Ed25519PrivateKey):
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    else:
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()
