"""Writing the audit log. Call `record` inside the transaction of the change it describes.

Writers take no lock: `record` and `record_many` only INSERT. `seal` links what is committed
into the hash chain, in its own short transaction (the time engine runs it as due work, and
`verify_chain` runs it first), so the chain's order is the order of sealing.
"""

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Subquery
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from audit.models import GENESIS_HASH, AuditChainHead, AuditEvent
from pim_portal import request_context
from pim_portal.actor import SYSTEM_NAME, Actor

logger = logging.getLogger(__name__)


def _label(obj: Any) -> tuple[str, str, str]:
    if obj is None:
        return "", "", ""
    return obj._meta.label_lower, str(obj.pk), str(obj)[:300]


def _client_ip(raw: str | None) -> str | None:
    """The address as the database will give it back (the hash must survive a round trip).

    A blank (unix socket) or malformed REMOTE_ADDR is stored as unknown rather than failing the
    change on PostgreSQL, whose inet column refuses it.
    """
    if not raw:
        return None
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        return None
    if address.version == 6:
        return clean_ipv6_address(str(address))  # the spelling GenericIPAddressField saves
    return str(address)


def _actor_columns(actor: Actor | Any | None) -> tuple[Any, str]:
    """(the user for the foreign key, the name kept with the event) for who acted.

    None is the system unnamed (kept for old callers); `Actor.system(reason)` names its reason.
    """
    if actor is None:
        return None, SYSTEM_NAME
    if isinstance(actor, Actor):
        user = actor.user
        name = actor.display_name
    else:
        user, name = actor, str(actor)
    # An anonymous or unsaved user has no row to point at; the name still says who it was.
    return (user if getattr(user, "pk", None) else None), name[:200]


def _event(
    *,
    action: str,
    actor: Actor | Any | None = None,
    target=None,
    principal: Any = "",
    role: Any = "",
    scope: Any = "",
    role_request_id: int | None = None,
    before: dict | None = None,
    after: dict | None = None,
    message: str = "",
    context: request_context.RequestContext | None = None,
    now=None,
) -> AuditEvent:
    """An unsaved, unsealed event: every recorded field, no place in the chain yet."""
    context = context or request_context.current()
    target_type, target_id, target_repr = _label(target)
    user, actor_name = _actor_columns(actor)
    return AuditEvent(
        created_at=now or timezone.now(),
        actor=user,
        actor_name=actor_name,
        action=action,
        target_type=target_type,
        target_id=target_id,
        target_repr=target_repr,
        principal=str(principal or "")[:200],
        role=str(role or "")[:200],
        scope=str(getattr(scope, "path", scope) or "")[:500],
        role_request_id=role_request_id,
        http_request_id=str(context.request_id or ""),
        ip=_client_ip(context.ip),
        before=before,
        after=after,
        message=message,
    )


def record(
    *,
    action: str,
    actor: Actor | Any | None = None,
    target=None,
    principal: Any = "",
    role: Any = "",
    scope: Any = "",
    role_request_id: int | None = None,
    before: dict | None = None,
    after: dict | None = None,
    message: str = "",
) -> AuditEvent:
    """Write one event, in the caller's transaction. One INSERT, no lock.

    The event has no place in the chain yet (`seq` is None): `seal()` links it once it is
    committed. Should the caller's transaction roll back, the event never existed.
    """
    event = _event(
        action=action,
        actor=actor,
        target=target,
        principal=principal,
        role=role,
        scope=scope,
        role_request_id=role_request_id,
        before=before,
        after=after,
        message=message,
    )
    event.save()
    return event


def record_many(events: Iterable[dict[str, Any]]) -> list[AuditEvent]:
    """Write many events in one INSERT each batch: each a dict of `record()`'s arguments.

    For batches of work (the time engine's ends): the same rows `record()` would write, in the
    order given, in the caller's transaction.
    """
    context = request_context.current()
    now = timezone.now()
    rows = [_event(**fields, context=context, now=now) for fields in events]
    return AuditEvent.objects.bulk_create(rows, batch_size=INSERT_BATCH)


# Sealing -----------------------------------------------------------------------------------

SEAL_BATCH = 1000
INSERT_BATCH = 500


def seal(limit: int = SEAL_BATCH) -> int:
    """Link up to `limit` committed unsealed events into the chain, oldest `id` first.

    One short transaction: lock the head (or, if another sealer holds it, leave these to it
    and return 0), give each event the next `seq`, the previous hash and its own hash, and move
    the head to the last. A handful of queries for a batch. How many events it sealed.
    """
    with transaction.atomic():
        head = _locked_head()
        if head is None:
            return 0
        batch = list(AuditEvent.objects.filter(seq__isnull=True).order_by("id")[: max(0, limit)])
        if not batch:
            return 0
        seq, prev_hash = head.seq, head.hash
        for event in batch:
            seq += 1
            event.seq, event.prev_hash = seq, prev_hash
            event.hash = prev_hash = event.compute_hash()
        _write_seals(batch)
        moved = AuditChainHead.objects.filter(pk=1, seq=head.seq).update(seq=seq, hash=prev_hash)
        if moved != 1:
            raise RuntimeError("the audit chain head moved while it was locked")
    return len(batch)


def seal_all() -> int:
    """Seal until nothing committed is left unsealed (or another sealer holds the head)."""
    total = 0
    while (sealed := seal(SEAL_BATCH)) > 0:
        total += sealed
        if sealed < SEAL_BATCH:
            break
    return total


def oldest_unsealed():
    """When the oldest event still waiting for the sealer was written, or None."""
    return (
        AuditEvent.objects.filter(seq__isnull=True)
        .order_by("id")
        .values_list("created_at", flat=True)
        .first()
    )


def _locked_head() -> AuditChainHead | None:
    """The head row, locked for this transaction; None if another sealer holds it.

    The first seal creates the head. A head that is missing while sealed events exist is a
    broken chain for `verify_chain` to report, never to paper over with a new start.
    """
    locked = AuditChainHead.objects.select_for_update(skip_locked=True).filter(pk=1)
    head = locked.first()
    if head is not None:
        return head
    if AuditChainHead.objects.filter(pk=1).exists():
        return None  # another sealer holds it; it (or the next seal) takes these events
    if AuditEvent.objects.filter(seq__isnull=False).exists():
        logger.error("The audit chain head is missing: events are left unsealed")
        return None
    if not AuditEvent.objects.filter(seq__isnull=True).exists():
        return None  # nothing to seal: the chain starts with its first event
    AuditChainHead.objects.bulk_create([AuditChainHead(pk=1)], ignore_conflicts=True)
    return locked.first()


def _write_seals(batch: list[AuditEvent]) -> None:
    """The one update an event gets, seq, prev_hash and hash set on an unsealed row.

    The model's guards refuse any update; this goes around them on purpose, and the database
    triggers let exactly this change through (migration 0004). Only unsealed rows are touched:
    a count short of the batch rolls the whole seal back.
    """
    table = AuditEvent._meta.db_table
    # Four parameters a row: one statement per 1,000 on PostgreSQL, per 249 on SQLite.
    rows = min(SEAL_BATCH, (connection.features.max_query_params or 4 * SEAL_BATCH) // 4)
    with connection.cursor() as cursor:
        for start in range(0, len(batch), rows):
            chunk = batch[start : start + rows]
            if connection.vendor == "postgresql":
                values = ", ".join(["(%s::bigint, %s::bigint, %s, %s)"] * len(chunk))
                # The table's name and placeholders only: nothing from outside.
                sql = (
                    f"UPDATE {table} AS e "  # noqa: S608
                    "SET seq = v.seq, prev_hash = v.prev_hash, hash = v.hash "
                    f"FROM (VALUES {values}) AS v (id, seq, prev_hash, hash) "
                    "WHERE e.id = v.id AND e.seq IS NULL"
                )
            else:
                values = ", ".join(["(%s, %s, %s, %s)"] * len(chunk))
                # SQLite names a VALUES list's columns column1, column2, ...
                sql = (
                    f"UPDATE {table} "  # noqa: S608
                    "SET seq = v.column2, prev_hash = v.column3, "
                    f"hash = v.column4 FROM (VALUES {values}) AS v "
                    f"WHERE {table}.id = v.column1 AND {table}.seq IS NULL"
                )
            params = [p for e in chunk for p in (e.pk, e.seq, e.prev_hash, e.hash)]
            cursor.execute(sql, params)
            if cursor.rowcount != len(chunk):
                raise RuntimeError("an event to seal was sealed or removed meanwhile")


@dataclass(frozen=True)
class ChainWalk:
    """What a walk along the chain found: how many events linked, and the first broken link."""

    checked: int
    broken: str | None
    last_seq: int | None = None  # the last event that linked correctly
    last_hash: str = ""
    last_at: datetime | None = None


def verify_chain(pruned: Iterable[tuple[int, str]] = ()) -> tuple[int, str | None]:
    """Seal what is committed, walk the chain in order, then hold its end against the head.

    Returns (events checked, description of the first broken link). Events still in open
    transactions are not in the chain yet and not checked. A keyless chain cannot tell a
    consistent rewrite (every later hash and the head recomputed) from the truth; the database
    triggers refuse the edits, and signed checkpoints (`audit.checkpoints`) are what catch
    their owner. `pruned`: see `walk_chain`.
    """
    walk = walk_chain(pruned=pruned)
    return walk.checked, walk.broken


def walk_chain(
    *,
    pruned: Iterable[tuple[int, str]] = (),
    after: tuple[int, str] | None = None,
    up_to: int | None = None,
) -> ChainWalk:
    """Seal, then walk the chain in `seq` order and report its first broken link.

    `pruned`: (seq, hash) of links whose events the retention removed, each vouched for by a
    signed checkpoint: the chain may start right after one (its first event linking to that
    hash) instead of at the genesis, or before one while a prune is still deleting (the walk
    then checks the event at the checkpoint). `after`: walk only past this trusted link (a
    signed checkpoint), the first event linking to it. `up_to`: stop at that event and leave
    the head out (the caller holds the end against what it trusts).
    """
    seal_all()
    anchors = dict(pruned)
    # The head first: every event up to it was sealed before it moved, so the walk sees them
    # all even while a sealer carries on; what that sealer adds meanwhile lies beyond it.
    head = AuditChainHead.objects.filter(pk=1).first()
    sealed = AuditEvent.objects.filter(seq__isnull=False)
    if after is not None:
        anchors = {after[0]: after[1]}
        sealed = sealed.filter(seq__gt=after[0])
    if up_to is not None:
        sealed = sealed.filter(seq__lte=up_to)
    elif head is not None:
        sealed = sealed.filter(seq__lte=head.seq)
    last = None
    checked = 0
    for event in sealed.order_by("seq").iterator(chunk_size=2000):
        broken = _broken_start(event, anchors) if last is None else _broken_link(event, last)
        if broken is None and anchors.get(event.seq, event.hash) != event.hash:
            broken = f"event #{event.seq} does not match the signed checkpoint of its pruning"
        if broken:
            return _walked(checked, broken, last)
        last = event
        checked += 1
    if up_to is not None:
        return _walked(checked, None, last)
    broken = _head_mismatch(head, last, anchors, checked) or _beyond_the_head()
    return _walked(checked, broken, last)


def _walked(checked: int, broken: str | None, last: AuditEvent | None) -> ChainWalk:
    if last is None:
        return ChainWalk(checked, broken)
    return ChainWalk(checked, broken, last.seq, last.hash, last.created_at)


def _broken_start(event: AuditEvent, anchors: dict[int, str]) -> str | None:
    """The first event found links to the genesis, or to the signed link pruned before it."""
    before = event.seq - 1
    if before == 0:
        expected = GENESIS_HASH
    elif before in anchors:
        expected = anchors[before]
    elif any(seq > before for seq in anchors):
        # A prune is under way: the event at its checkpoint is checked on the way there.
        return _modified(event)
    else:
        missing = max((seq for seq in anchors if seq < before), default=0) + 1
        return f"event #{missing} is missing (next found is #{event.seq})"
    if event.prev_hash != expected:
        if before == 0:
            return f"event #{event.seq} does not link to the start of the chain"
        return f"event #{event.seq} does not link to the signed checkpoint of event #{before}"
    return _modified(event)


def _broken_link(event: AuditEvent, last: AuditEvent) -> str | None:
    expected_seq = last.seq + 1
    if event.seq != expected_seq:
        return f"event #{expected_seq} is missing (next found is #{event.seq})"
    if event.prev_hash != last.hash:
        return f"event #{event.seq} does not link to event #{last.seq}"
    return _modified(event)


def _modified(event: AuditEvent) -> str | None:
    if event.compute_hash() != event.hash:
        return f"event #{event.seq} was modified after it was written"
    return None


def _beyond_the_head() -> str | None:
    """An event placed past the head (in one snapshot of both): written around the sealer."""
    head_seq = AuditChainHead.objects.filter(pk=1).values("seq")[:1]
    beyond = (
        AuditEvent.objects.filter(seq__gt=Subquery(head_seq))
        .order_by("seq")
        .values_list("seq", flat=True)
        .first()
    )
    if beyond is None:
        return None
    return f"event #{beyond} lies beyond the chain head: it was not sealed into the chain"


def _head_mismatch(
    head: AuditChainHead | None, last: AuditEvent | None, anchors: dict[int, str], checked: int
) -> str | None:
    if head is None:
        return f"the chain head is missing but there are {checked} events" if checked else None
    if last is not None:
        end_seq, end_hash, where = last.seq, last.hash, f"event #{last.seq}"
    elif anchors:  # every event pruned: the head stays where the newest prune left it
        end_seq = max(anchors)
        end_hash, where = anchors[end_seq], f"the signed checkpoint of pruned event #{end_seq}"
    else:
        end_seq, end_hash, where = 0, GENESIS_HASH, "the start of the chain"
    if head.seq != end_seq:
        last_seen = f"the last event is #{last.seq}" if last else "there are no events"
        return f"the chain head says #{head.seq} but {last_seen}"
    if head.hash != end_hash:
        return (
            f"the chain head's hash {head.hash[:12]}... does not match {where} "
            f"({end_hash[:12]}...): events were replaced or rewritten"
        )
    return None
