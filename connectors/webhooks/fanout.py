"""From the audit chain to deliveries: the fan-out.

Like the SIEM stream (audit/siem.py), a cursor row follows the *sealed* chain in `seq` order
under a lock (another worker holding it leaves the batch to it). Each batch reads the events
past the cursor whose action is news to some webhook (events.RULES), makes one delivery per
event type and enabled subscription that wants it (set-based: one bulk INSERT that skips a
message id the subscription already has, so fanning out the same event twice makes nothing
new), and moves the cursor, in one short transaction. Then the same worker sends the first try
of what it made at once, without waiting for the next look of the time engine.

An "ended" webhook must follow the end within seconds, and each hop of the time engine (a look
of the timekeeper, then a worker taking the task) costs a second or more. So the fan-out
follows every other kind of due work (`DueWork.follows`): the worker that has just recorded a
batch of ends runs the fan-out next, which seals what is committed rather than wait for the
sealer's turn. The end, its audit event, the seal, the delivery and its first try are one hop
from the end.

A subscription gets what was recorded while it was enabled (`enabled_since`). With no enabled
subscription the time engine never wakes for the fan-out; when it next runs, it skips the
events recorded before any subscription wanted them in one indexed query.
"""

import logging
import time
from datetime import datetime

from django.db import models, transaction
from django.db.models import Max, Min, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit import log as audit_log
from audit.models import AuditEvent
from connectors.models import WebhookCursor, WebhookDelivery, WebhookSubscription
from connectors.webhooks import delivery, events

logger = logging.getLogger(__name__)

# How long a fan-out waits for another sealer's commit before it reads the chain (seconds).
SEAL_WAIT = 0.5


def _enabled_subscriptions():
    return WebhookSubscription.objects.filter(enabled=True)


def next_due() -> datetime | None:
    """When the first event past the cursor was written, sealed or still waiting for the
    sealer (the fan-out seals it), no later than now; None when there is none or no
    subscription is enabled. Three small queries."""
    wanted = list(_enabled_subscriptions().values_list("event_types", flat=True))
    if not wanted:
        return None
    unsealed = audit_log.oldest_unsealed()
    fanned_up_to = WebhookCursor.objects.filter(pk=1).values("seq")[:1]
    written = (
        AuditEvent.objects.filter(
            seq__gt=Coalesce(
                Subquery(fanned_up_to), Value(0), output_field=models.PositiveBigIntegerField()
            )
        )
        .order_by("seq")
        .values_list("created_at", flat=True)
        .first()
    )
    due = min((t for t in (written, unsealed) if t is not None), default=None)
    if due is None:
        return None
    return min(due, timezone.now())  # a clock ahead on the writing host delays nothing


def _seal_committed() -> None:
    """Seal what is committed, so that an event does not wait for the sealer's own turn.

    `audit.log.seal` is safe to run anywhere (the chain head is locked; `verify_chain` seals
    first too). When another sealer holds the head, its commit is a moment away: look again a
    few times (a bounded wait), rather than read the chain without those events."""
    deadline = time.monotonic() + SEAL_WAIT
    while not audit_log.seal_all():
        # Nothing sealed here: nothing was waiting, or another sealer holds the head.
        if audit_log.oldest_unsealed() is None or time.monotonic() >= deadline:
            return
        time.sleep(0.02)


def _locked_cursor() -> WebhookCursor | None:
    """The cursor row, locked for this transaction; None if another worker holds it."""
    locked = WebhookCursor.objects.select_for_update(skip_locked=True).filter(pk=1)
    cursor = locked.first()
    if cursor is not None:
        return cursor
    if WebhookCursor.objects.filter(pk=1).exists():
        return None  # another worker is fanning out; it (or the next run) takes these events
    WebhookCursor.objects.bulk_create([WebhookCursor(pk=1)], ignore_conflicts=True)
    return locked.first()


def _sealed_up_to() -> int:
    """The last sealed event: every event up to it is committed and sealed (the sealer gives
    `seq` in order, under the chain head's lock, and commits a batch at once)."""
    return AuditEvent.objects.aggregate(last=Max("seq"))["last"] or 0


def _start(cursor: WebhookCursor, subscriptions, head: int) -> int:
    """Where to read from: the cursor, or past what was recorded before any enabled
    subscription wanted it (only when the cursor stood still since then)."""
    floor = min(s.enabled_since for s in subscriptions)
    if cursor.updated_at is not None and cursor.updated_at >= floor:
        return cursor.seq
    first = AuditEvent.objects.filter(seq__gt=cursor.seq, created_at__gte=floor).aggregate(
        first=Min("seq")
    )["first"]
    if first is None:
        return head
    return max(cursor.seq, first - 1)


def _deliveries(batch: list[AuditEvent], subscriptions, now: datetime) -> list[WebhookDelivery]:
    rows = []
    for event in batch:
        for event_type in events.event_types_of(event):
            wanting = [
                s
                for s in subscriptions
                if event_type in s.event_types and event.created_at >= s.enabled_since
            ]
            if not wanting:
                continue
            message_id = events.message_id(event, event_type)
            body = events.payload(event, event_type)
            rows.extend(
                WebhookDelivery(
                    subscription=subscription,
                    message_id=message_id,
                    event_type=event_type,
                    audit_seq=event.seq,
                    payload=body,
                    created_at=now,
                    next_attempt_at=now,
                )
                for subscription in wanting
            )
    return rows


def fanout_batch(now: datetime, limit: int) -> int:
    """Turn up to `limit` sealed events past the cursor into deliveries; send their first try.

    How many events it read (0 when there was nothing past the cursor, or another worker held
    it, or no subscription is enabled: then the cursor just moves to the end of the chain)."""
    subscriptions = list(_enabled_subscriptions())
    if subscriptions:
        _seal_committed()
    with transaction.atomic():
        cursor = _locked_cursor()
        if cursor is None:
            return 0
        head = _sealed_up_to()
        if head <= cursor.seq:
            return 0
        made = 0
        if not subscriptions:
            reached, batch = head, []
        else:
            start = _start(cursor, subscriptions, head)
            batch = list(
                AuditEvent.objects.filter(
                    seq__gt=start, seq__lte=head, action__in=events.ACTIONS
                ).order_by("seq")[: max(1, limit)]
            )
            # A full batch stops at its last event; a short one read everything up to head.
            reached = batch[-1].seq if len(batch) >= limit else head
            rows = _deliveries(batch, subscriptions, timezone.now())
            if rows:
                made = len(
                    WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
                )
        WebhookCursor.objects.filter(pk=1).update(seq=reached, updated_at=timezone.now())
    if made:
        # The first try goes now, from here: no wait for the time engine's next look.
        delivery.deliver_batch(timezone.now(), made, first_only=True)
    return len(batch)
