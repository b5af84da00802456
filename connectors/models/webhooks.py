"""Webhook subscriptions and deliveries (Standard Webhooks).

A subscription is a receiver's URL, the secret the portal signs with (kept encrypted: it must
be read back to sign) and the event types it wants. Each audit event of such a type, once
sealed into the chain, becomes one `WebhookDelivery` per enabled subscription, with a message
id fixed by the event and the type (so fanning out the same event again makes no second one,
and the receiver can drop a repeat by its `webhook-id`). A delivery is tried on a schedule
until the receiver answers 2xx; every try is a `WebhookAttempt`.
"""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q

__all__ = [
    "DeliveryState",
    "WebhookAttempt",
    "WebhookCursor",
    "WebhookDelivery",
    "WebhookSubscription",
]


class WebhookSubscription(models.Model):
    name = models.CharField(max_length=100, help_text="Who receives it, e.g. ticketing or SOAR.")
    url = models.URLField(max_length=500)
    # Fernet token of the `whsec_...` secret (connectors.webhooks.secrets); never shown back.
    secret_encrypted = models.TextField(editable=False)
    # The secret before the last rotation, still signed with (a second signature) until
    # `previous_secret_until`, so that a receiver can switch without losing a delivery.
    previous_secret_encrypted = models.TextField(blank=True, default="", editable=False)
    previous_secret_until = models.DateTimeField(null=True, blank=True, editable=False)
    event_types = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    # Events recorded from then on are delivered: set at creation and when re-enabled.
    enabled_since = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name

    def snapshot(self) -> dict:
        """What the audit log records of a subscription (never its secret)."""
        return {
            "name": self.name,
            "url": self.url,
            "event_types": list(self.event_types),
            "enabled": self.enabled,
        }


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One message to one subscription, tried until delivered or out of retries.

    `next_attempt_at` is when a worker may take it (a claimed delivery's lease, while it is
    being sent); `claim` names the batch that holds it, so a worker whose lease ran out does
    not move it on behind another's back."""

    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    message_id = models.CharField(max_length=64)
    event_type = models.CharField(max_length=50)
    # The audit event it tells of (its place in the chain); None for a test event.
    audit_seq = models.PositiveBigIntegerField(null=True, blank=True)
    payload = models.JSONField(encoder=DjangoJSONEncoder)
    state = models.CharField(
        max_length=20, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claim = models.CharField(max_length=32, blank=True, default="")
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "message_id"], name="webhook_delivery_unique_message"
            )
        ]
        indexes = [
            # What the workers take next, and when: a small index of what is still to do.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(state="pending"),
                name="webhook_delivery_due",
            ),
            # A subscription's page, newest first, optionally by state.
            models.Index(fields=["subscription", "-id"], name="webhook_delivery_sub_id"),
            models.Index(
                fields=["subscription", "state", "-id"], name="webhook_delivery_sub_state"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.message_id} to {self.subscription_id}"

    @property
    def is_sending(self) -> bool:
        return self.state == DeliveryState.PENDING and bool(self.claim)


class WebhookAttempt(models.Model):
    """One try of a delivery: what the receiver answered (or why it did not)."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="tries")
    at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["delivery", "at", "pk"]

    def __str__(self) -> str:
        return f"attempt at {self.at:%Y-%m-%d %H:%M:%S}: {self.status_code or self.error}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookCursor(models.Model):
    """How far the fan-out has read the audit chain: events up to `seq` became deliveries."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"webhooks fanned out up to #{self.seq}"
