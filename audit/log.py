"""Writing the audit log. Call `record` inside the transaction of the change it describes."""

import ipaddress
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from audit.models import GENESIS_HASH, AuditChainHead, AuditEvent
from pim_portal import request_context
from pim_portal.actor import SYSTEM_NAME, Actor


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
    """Append one event to the chain. Serialised by locking the chain head row."""
    context = request_context.current()
    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1)
        target_type, target_id, target_repr = _label(target)
        user, actor_name = _actor_columns(actor)
        event = AuditEvent(
            seq=head.seq + 1,
            created_at=timezone.now(),
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
            prev_hash=head.hash,
        )
        event.hash = event.compute_hash()
        event.save()
        AuditChainHead.objects.filter(pk=1).update(seq=event.seq, hash=event.hash)
    return event


def verify_chain() -> tuple[int, str | None]:
    """Walk the chain in order, then hold its end against the head.

    Returns (events checked, description of the first broken link). A keyless chain cannot
    tell a consistent rewrite (every later hash and the head recomputed) from the truth; the
    database triggers refuse the edits, and signed checkpoints are what catch their owner.
    """
    last = None
    checked = 0
    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=2000):
        broken = _broken_link(event, last)
        if broken:
            return checked, broken
        last = event
        checked += 1
    return checked, _head_mismatch(last, checked)


def _broken_link(event: AuditEvent, last: AuditEvent | None) -> str | None:
    expected_seq = 1 if last is None else last.seq + 1
    if event.seq != expected_seq:
        return f"event #{expected_seq} is missing (next found is #{event.seq})"
    if event.prev_hash != (GENESIS_HASH if last is None else last.hash):
        if last is None:
            return f"event #{event.seq} does not link to the start of the chain"
        return f"event #{event.seq} does not link to event #{last.seq}"
    if event.compute_hash() != event.hash:
        return f"event #{event.seq} was modified after it was written"
    return None


def _head_mismatch(last: AuditEvent | None, checked: int) -> str | None:
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is None:
        return f"the chain head is missing but there are {checked} events" if checked else None
    if head.seq != checked:
        last_seen = f"the last event is #{checked}" if checked else "there are no events"
        return f"the chain head says #{head.seq} but {last_seen}"
    expected_hash = GENESIS_HASH if last is None else last.hash
    if head.hash != expected_hash:
        where = "the start of the chain" if last is None else f"event #{last.seq}"
        return (
            f"the chain head's hash {head.hash[:12]}... does not match {where} "
            f"({expected_hash[:12]}...): events were replaced or rewritten"
        )
    return None
