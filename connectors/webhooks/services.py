"""Webhook subscriptions: made, changed, deleted, their secret rotated, a test event sent, a
failed delivery retried. For whoever manages connectors (Privileged Role and Global
Administrators); each change in one transaction with its audit event (`pim.webhook.*`).

The secret is made here (`whsec_...`) and returned only by `subscription_create` and
`subscription_rotate_secret`, for the page to show once; the database keeps it encrypted, the
audit log never sees it.
"""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from assignments import authz
from audit import log as audit_log
from connectors.models import DeliveryState, WebhookDelivery, WebhookSubscription
from connectors.webhooks import addresses, events, secrets
from pim_portal.actor import Actor, user_of

# After a rotation the old secret still signs (a second signature) this long, so that a
# receiver can take the new one without refusing a delivery meanwhile.
ROTATION_OVERLAP = timedelta(hours=24)
NAME_MAX = 100


def _require_manager(actor: Actor, what: str, target=None) -> None:
    if not authz.grants_for(actor).can_manage_connectors():
        authz.deny(actor, what=what, target=target)


def _problems(*, name: str, url: str, event_types, exclude: int | None = None) -> dict:
    problems: dict[str, list[str]] = {}
    if not name:
        problems["name"] = ["Name the subscription after the system that receives it."]
    elif len(name) > NAME_MAX:
        problems["name"] = [f"The name is too long: at most {NAME_MAX} characters."]
    else:
        same = WebhookSubscription.objects.filter(name__iexact=name)
        if exclude is not None:
            same = same.exclude(pk=exclude)
        if same.exists():
            problems["name"] = [f"A subscription named {name!r} exists already."]
    refused = addresses.url_problem(url)
    if refused:
        problems["url"] = [refused]
    unknown = [t for t in event_types if t not in events.TYPE_NAMES]
    if unknown:
        problems["event_types"] = [f"Unknown event types: {', '.join(map(str, unknown))}."]
    elif not event_types:
        problems["event_types"] = ["Pick at least one event type."]
    return problems


def _ordered(event_types) -> list[str]:
    chosen = set(event_types)
    return [t for t in events.TYPE_NAMES if t in chosen]


def _locked(subscription_id) -> WebhookSubscription:
    subscription = (
        WebhookSubscription.objects.select_for_update().filter(pk=subscription_id).first()
    )
    if subscription is None:
        raise ValidationError("That webhook subscription does not exist (any more).")
    return subscription


def subscription_create(
    actor: Actor, *, name: str, url: str, event_types: list[str], enabled: bool = True
) -> tuple[WebhookSubscription, str]:
    """Make a subscription and its secret: (the subscription, the secret, to show once).

    Refused: a URL that is not http(s), carries credentials, or points at the portal itself;
    no event type; a name already used."""
    actor = Actor.of(actor)
    _require_manager(actor, "create a webhook subscription")
    name, url = (name or "").strip(), (url or "").strip()
    problems = _problems(name=name, url=url, event_types=list(event_types))
    if problems:
        raise ValidationError(problems)
    secret = secrets.new_secret()
    now = timezone.now()
    with transaction.atomic():
        subscription = WebhookSubscription.objects.create(
            name=name,
            url=url,
            secret_encrypted=secrets.encrypt(secret),
            event_types=_ordered(event_types),
            enabled=enabled,
            enabled_since=now,
            created_by=user_of(actor),
        )
        audit_log.record(
            action="pim.webhook.created",
            actor=actor,
            target=subscription,
            after=subscription.snapshot(),
        )
    return subscription, secret


def subscription_update(
    actor: Actor,
    *,
    subscription_id: int,
    name: str,
    url: str,
    event_types: list[str],
    enabled: bool,
) -> WebhookSubscription:
    """Change a subscription. Enabling it again delivers what happens from then on (not what
    happened while it was off); disabling it holds its pending deliveries until it is on."""
    actor = Actor.of(actor)
    _require_manager(actor, f"change webhook subscription {subscription_id}")
    name, url = (name or "").strip(), (url or "").strip()
    with transaction.atomic():
        subscription = _locked(subscription_id)
        problems = _problems(
            name=name, url=url, event_types=list(event_types), exclude=subscription.pk
        )
        if problems:
            raise ValidationError(problems)
        before = subscription.snapshot()
        if enabled and not subscription.enabled:
            subscription.enabled_since = timezone.now()
        subscription.name, subscription.url = name, url
        subscription.event_types = _ordered(event_types)
        subscription.enabled = enabled
        subscription.save()
        after = subscription.snapshot()
        if after != before:
            audit_log.record(
                action="pim.webhook.updated",
                actor=actor,
                target=subscription,
                before=before,
                after=after,
            )
    return subscription


def subscription_delete(actor: Actor, *, subscription_id: int) -> None:
    """Delete a subscription with its deliveries and their log (the audit log keeps that it
    existed and who deleted it)."""
    actor = Actor.of(actor)
    _require_manager(actor, f"delete webhook subscription {subscription_id}")
    with transaction.atomic():
        subscription = _locked(subscription_id)
        before = subscription.snapshot()
        audit_log.record(
            action="pim.webhook.deleted", actor=actor, target=subscription, before=before
        )
        subscription.delete()


def subscription_rotate_secret(
    actor: Actor, *, subscription_id: int
) -> tuple[WebhookSubscription, str]:
    """A new secret, returned to show once. The old one signs too for ROTATION_OVERLAP (a
    second `v1,` signature), so the receiver can switch without refusing a delivery."""
    actor = Actor.of(actor)
    _require_manager(actor, f"rotate the secret of webhook subscription {subscription_id}")
    secret = secrets.new_secret()
    now = timezone.now()
    with transaction.atomic():
        subscription = _locked(subscription_id)
        subscription.previous_secret_encrypted = subscription.secret_encrypted
        subscription.previous_secret_until = now + ROTATION_OVERLAP
        subscription.secret_encrypted = secrets.encrypt(secret)
        subscription.save()
        audit_log.record(
            action="pim.webhook.secret_rotated",
            actor=actor,
            target=subscription,
            after={"previous_secret_signs_until": subscription.previous_secret_until},
        )
    return subscription, secret


def subscription_send_test(actor: Actor, *, subscription_id: int) -> WebhookDelivery:
    """Queue a `webhook.test` message to the subscription, for the next worker to send (at
    once): its result shows in the deliveries like any other's."""
    actor = Actor.of(actor)
    _require_manager(actor, f"send a test event to webhook subscription {subscription_id}")
    now = timezone.now()
    with transaction.atomic():
        subscription = _locked(subscription_id)
        if not subscription.enabled:
            raise ValidationError("The subscription is disabled: enable it to send a test event.")
        test = WebhookDelivery.objects.create(
            subscription=subscription,
            message_id=events.message_id_of_test(),
            event_type=events.EventType.TEST,
            payload=events.payload_of_test(subscription.name, now, actor.display_name),
            created_at=now,
            next_attempt_at=now,
        )
        audit_log.record(
            action="pim.webhook.test_sent",
            actor=actor,
            target=subscription,
            after={"message_id": test.message_id},
        )
    return test


def delivery_retry(actor: Actor, *, delivery_id: int) -> WebhookDelivery:
    """Put a failed delivery back for one more try now (with the same `webhook-id`)."""
    actor = Actor.of(actor)
    _require_manager(actor, f"retry webhook delivery {delivery_id}")
    with transaction.atomic():
        found = (
            WebhookDelivery.objects.select_for_update(of=("self",))
            .select_related("subscription")
            .filter(pk=delivery_id)
            .first()
        )
        if found is None:
            raise ValidationError("That delivery does not exist (any more).")
        if found.state != DeliveryState.FAILED:
            raise ValidationError(
                f"That delivery is {found.get_state_display().lower()}: only a failed one "
                "can be retried."
            )
        if not found.subscription.enabled:
            raise ValidationError("The subscription is disabled: enable it to retry.")
        found.state = DeliveryState.PENDING
        found.next_attempt_at = timezone.now()
        found.claim = ""
        found.save(update_fields=["state", "next_attempt_at", "claim"])
        audit_log.record(
            action="pim.webhook.delivery_retried",
            actor=actor,
            target=found.subscription,
            before={"state": DeliveryState.FAILED, "attempts": found.attempts},
            after={"state": DeliveryState.PENDING, "message_id": found.message_id},
        )
    return found
