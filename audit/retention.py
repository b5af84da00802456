"""Retention: events older than AUDIT_RETENTION_DAYS go, and the rest stays verifiable.

Nothing is pruned unless AUDIT_RETENTION_DAYS is set (default: keep forever) and a signing
key is configured. A prune deletes the events up to the newest signed checkpoint made at or
before the cut (now minus the retention): every one of them was sealed before that checkpoint
was made, so written before the cut. It first walks them against that checkpoint (pruning
must never destroy the evidence of a forgery), then signs a checkpoint of the same link marked
`prunes_up_to`: the chain's first remaining event links to it, and the database's trigger
(migration 0006) lets exactly the events up to it be deleted, in batches.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Min
from django.utils import timezone

from audit import log, siem
from audit.checkpoints import (
    checkpoint_make,
    checkpoint_sign,
    signature_problem,
    signing_key,
    verify_keys,
)
from audit.models import AuditCheckpoint, AuditEvent, AuditStreamCursor
from pim_portal.actor import Actor

logger = logging.getLogger(__name__)

PRUNED = "pim.audit.pruned"
DELETE_BATCH = 5000
RETENTION = Actor.system("audit retention")


@dataclass(frozen=True)
class Pruned:
    deleted: int = 0
    up_to_seq: int | None = None
    refused: str = ""  # why nothing was pruned although events were due


def retention_days() -> int | None:
    """AUDIT_RETENTION_DAYS, or None to keep every event forever."""
    days = getattr(settings, "AUDIT_RETENTION_DAYS", None)
    return int(days) if days else None


def prune(now: datetime | None = None) -> Pruned:
    """Sign the head, then delete the events the retention lets go; audited as pim.audit.pruned.

    Idempotent: a second run deletes nothing more, and a run cut short resumes where it
    stopped (the prune checkpoint already stands).
    """
    days = retention_days()
    if days is None:
        return Pruned()
    key = signing_key()
    if key is None:
        logger.warning("AUDIT_RETENTION_DAYS is set but no signing key: nothing is pruned")
        return Pruned(refused="no signing key is configured")
    now = now or timezone.now()
    checkpoint_make(now)
    keys = verify_keys()
    cut = now - timedelta(days=days)
    keep_after = _newest_signed(keys, created_at__lte=cut, seq__lte=_streamed_up_to())
    first = AuditEvent.objects.filter(seq__isnull=False).aggregate(first=Min("seq"))["first"]
    if keep_after is None or first is None or first > keep_after.seq:
        return Pruned()
    refused = _not_attested(keep_after, keys)
    if refused:
        logger.error("Audit events not pruned: %s", refused)
        return Pruned(refused=refused)
    marker = _newest_signed(keys, seq=keep_after.seq, prunes_up_to=True) or checkpoint_sign(
        key=key,
        seq=keep_after.seq,
        head_hash=keep_after.head_hash,
        now=now,
        prunes_up_to=True,
    )
    deleted = _delete(first, marker.seq)
    log.record(
        action=PRUNED,
        actor=RETENTION,
        target=marker,
        after={"deleted": deleted, "up_to_seq": marker.seq, "retention_days": days, "cut": cut},
        message=f"{deleted} audit events up to #{marker.seq} pruned: older than {days} days.",
    )
    return Pruned(deleted=deleted, up_to_seq=marker.seq)


def _streamed_up_to() -> int:
    """Events a configured SIEM has not received yet are never pruned (a target down for the
    whole retention period would otherwise lose them)."""
    if not siem.configured():
        return 2**63 - 1
    cursor = AuditStreamCursor.objects.filter(pk=1).values_list("seq", flat=True).first()
    return cursor or 0


def _newest_signed(keys, **lookups) -> AuditCheckpoint | None:
    """The checkpoint of the highest event, among those matching, whose signature holds."""
    candidates = AuditCheckpoint.objects.filter(key_id__in=list(keys), **lookups)
    for checkpoint in candidates.order_by("-seq", "-created_at").iterator(chunk_size=50):
        if not signature_problem(checkpoint, keys):
            return checkpoint
    return None


def _not_attested(keep_after: AuditCheckpoint, keys) -> str:
    """Why the events to delete do not link up to the checkpoint ("" when they do)."""
    prunes = AuditCheckpoint.objects.filter(prunes_up_to=True, key_id__in=list(keys))
    anchors = [(c.seq, c.head_hash) for c in prunes if not signature_problem(c, keys)]
    walk = log.walk_chain(pruned=anchors, up_to=keep_after.seq)
    if walk.broken:
        return walk.broken
    if (walk.last_seq, walk.last_hash) != (keep_after.seq, keep_after.head_hash):
        return f"the chain does not reach event #{keep_after.seq} as its checkpoint signed it"
    return ""


def _delete(first: int, last: int) -> int:
    """Delete events `first`..`last`, a batch a transaction; the trigger checks each row.

    Raw SQL on purpose: the model refuses every delete, and the database allows only these.
    """
    table = AuditEvent._meta.db_table
    deleted = 0
    for start in range(first, last + 1, DELETE_BATCH):
        end = min(start + DELETE_BATCH - 1, last)
        with transaction.atomic(), connection.cursor() as cursor:
            # The table's name and placeholders only: nothing from outside.
            cursor.execute(
                f"DELETE FROM {table} WHERE seq >= %s AND seq <= %s",  # noqa: S608
                [start, end],
            )
            deleted += cursor.rowcount
    return deleted
