"""Small helpers of the webhook tests: audit events recorded and sealed, the pipeline run."""

from django.utils import timezone

from audit import log as audit_log
from connectors.models import WebhookDelivery
from connectors.webhooks import delivery, fanout


def record_sealed(action: str, **fields):
    """An audit event as a service writes it, sealed into the chain (as the sealer would)."""
    fields.setdefault("principal", "erin")
    fields.setdefault("role", "Privileged Role Administrator")
    fields.setdefault("scope", "/")
    event = audit_log.record(action=action, **fields)
    audit_log.seal_all()
    event.refresh_from_db()
    return event


def fan_out() -> int:
    """One fan-out batch, as the time engine's worker runs it (its first tries included)."""
    return fanout.fanout_batch(timezone.now(), 200)


def deliver() -> int:
    """One delivery batch of what is due now."""
    return delivery.deliver_batch(timezone.now(), 200)


def only_delivery() -> WebhookDelivery:
    return WebhookDelivery.objects.get()
