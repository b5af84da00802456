"""Writing the audit log. Call `record` inside the transaction of the change it describes."""

import ipaddress
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from audit.models import AuditChainHead, AuditEvent
from pim_portal import request_context


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


def record(
    *,
    action: str,
    actor=None,
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
        event = AuditEvent(
            seq=head.seq + 1,
            created_at=timezone.now(),
            actor=actor if getattr(actor, "pk", None) else None,
            actor_name=str(actor) if actor is not None else "system",
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
    """Walk the chain in order. Returns (events checked, description of the first broken link)."""
    expected_prev = None
    expected_seq = 1
    checked = 0
    events = AuditEvent.objects.order_by("seq").iterator(chunk_size=2000)
    for event in events:
        if event.seq != expected_seq:
            return checked, f"event #{expected_seq} is missing (next found is #{event.seq})"
        if expected_prev is not None and event.prev_hash != expected_prev:
            return checked, f"event #{event.seq} does not link to event #{event.seq - 1}"
        if event.compute_hash() != event.hash:
            return checked, f"event #{event.seq} was modified after it was written"
        expected_prev = event.hash
        expected_seq += 1
        checked += 1
    head = AuditChainHead.objects.filter(pk=1).first()
    if head and head.seq != checked:
        return checked, f"the chain head says #{head.seq} but the last event is #{checked}"
    return checked, None
