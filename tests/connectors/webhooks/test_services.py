"""Subscriptions: the URL rules with their messages, who may change them, the audit trail,
and a secret that is kept encrypted and shown only when made."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from audit.models import AuditEvent
from connectors.models import DeliveryState, WebhookDelivery, WebhookSubscription
from connectors.webhooks import addresses, events, secrets, services
from pim_portal.actor import Actor
from tests.connectors.webhooks.conftest import ALL_TYPES

pytestmark = pytest.mark.django_db

PORTAL_SETTINGS = {
    "SITE_URL": "https://pim.contoso.example",
    "ALLOWED_HOSTS": ["pim.contoso.example", ".portal.contoso.example", "localhost", "127.0.0.1"],
}


@pytest.fixture
def portal_settings(settings):
    for name, value in PORTAL_SETTINGS.items():
        setattr(settings, name, value)
    return settings


def create(actor, url: str, **kwargs):
    kwargs.setdefault("name", "SOAR")
    kwargs.setdefault("event_types", ["request.approved"])
    return services.subscription_create(actor, url=url, **kwargs)


def refusal(actor, url: str) -> str:
    with pytest.raises(ValidationError) as refused:
        create(actor, url)
    return refused.value.message_dict["url"][0]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://files.contoso.example/hooks", "The URL must start with http:// or https://."),
        ("javascript:alert(1)", "The URL must start with http:// or https://."),
        ("soar.contoso.example/hooks", "The URL must start with http:// or https://."),
        ("https://bob:hunter2@soar.contoso.example/hooks", "Leave the user name and password"),
        ("https://token@soar.contoso.example/hooks", "Leave the user name and password"),
        (
            "https://pim.contoso.example/api/hook",
            "points at the portal itself (pim.contoso.example)",
        ),
        ("https://PIM.contoso.example:8443/x", "points at the portal itself (pim.contoso.example)"),
        ("https://eu.portal.contoso.example/x", "points at the portal itself"),
        ("https://exa mple.com/x", "That is not a valid URL"),
        ("http://[::1/x", "That is not a valid URL"),
        ("https:///hooks", "That is not a valid URL"),
        ("https://soar.contoso.example:99999/x", "The port in the URL is not a number"),
        ("", "Give the URL the portal should post events to."),
    ],
)
def test_a_url_that_cannot_receive_webhooks_is_refused_with_its_rule(
    portal_settings, setup_actor, url, message
):
    assert message in refusal(setup_actor, url)
    assert not WebhookSubscription.objects.exists()


def test_the_portal_on_loopback_is_refused_at_its_own_port_only(settings, setup_actor):
    settings.SITE_URL = "http://127.0.0.1:8000"

    assert "points at the portal itself (127.0.0.1)" in refusal(
        setup_actor, "http://127.0.0.1:8000/"
    )
    assert "points at the portal itself (localhost)" in refusal(
        setup_actor, "http://localhost:8000/x"
    )
    assert addresses.url_problem("http://127.0.0.1:9000/hooks") is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hooks",  # a relay on the portal's host, the tests' receiver
        "http://localhost:9000/hooks",
        "http://[::1]:9000/hooks",
        "https://soar.contoso.example/hooks/pim?tenant=1",
        "http://10.1.2.3:8080/hooks",  # on-premise receivers
        "http://soar-relay:8080/hooks",
    ],
)
def test_loopback_and_other_receivers_are_allowed(portal_settings, url):
    assert addresses.url_problem(url) is None


def test_a_wildcard_allowed_host_does_not_refuse_every_url(settings):
    settings.ALLOWED_HOSTS = ["*"]
    settings.SITE_URL = "https://pim.contoso.example"

    assert addresses.url_problem("https://soar.contoso.example/hooks") is None
    assert addresses.url_problem("https://pim.contoso.example/hooks") is not None


def test_no_event_type_and_a_name_in_use_are_refused(setup_actor, receiver):
    create(setup_actor, receiver.url, name="SOAR")
    with pytest.raises(ValidationError) as refused:
        create(setup_actor, receiver.url, name="soar", event_types=[])

    assert refused.value.message_dict == {
        "name": ["A subscription named 'soar' exists already."],
        "event_types": ["Pick at least one event type."],
    }


def test_an_unknown_event_type_is_refused(setup_actor, receiver):
    with pytest.raises(ValidationError) as refused:
        create(setup_actor, receiver.url, event_types=["request.approved", "user.created"])

    assert refused.value.message_dict["event_types"] == ["Unknown event types: user.created."]


def test_the_secret_is_standard_webhooks_and_kept_encrypted(setup_actor, receiver):
    subscription, secret = create(setup_actor, receiver.url)

    assert secret.startswith("whsec_") and len(secret) == len("whsec_") + 44
    stored = WebhookSubscription.objects.values_list("secret_encrypted", flat=True).get()
    assert secret not in stored and secret[6:] not in stored
    assert secrets.decrypt(stored) == secret
    event = AuditEvent.objects.get(action="pim.webhook.created")
    assert secret[6:] not in str(event.after)
    assert event.after == {
        "name": "SOAR",
        "url": receiver.url,
        "event_types": ["request.approved"],
        "enabled": True,
    }


def test_two_subscriptions_get_different_secrets(setup_actor, receiver):
    _, one = create(setup_actor, receiver.url, name="one")
    _, two = create(setup_actor, receiver.url, name="two")
    assert one != two


def test_rotating_makes_a_new_secret_and_audits_it_without_it(setup_actor, receiver):
    subscription, old = create(setup_actor, receiver.url)

    _, new = services.subscription_rotate_secret(setup_actor, subscription_id=subscription.pk)

    subscription.refresh_from_db()
    assert new != old and new.startswith("whsec_")
    assert secrets.decrypt(subscription.secret_encrypted) == new
    assert secrets.decrypt(subscription.previous_secret_encrypted) == old
    event = AuditEvent.objects.get(action="pim.webhook.secret_rotated")
    assert new[6:] not in str(event.after) and old[6:] not in str(event.after)


def test_changes_are_audited_with_before_and_after(setup_actor, receiver):
    subscription, _ = create(setup_actor, receiver.url)

    services.subscription_update(
        setup_actor,
        subscription_id=subscription.pk,
        name="SOAR",
        url=receiver.url,
        event_types=["assignment.ended", "request.approved"],
        enabled=False,
    )
    services.subscription_delete(setup_actor, subscription_id=subscription.pk)

    updated = AuditEvent.objects.get(action="pim.webhook.updated")
    assert updated.before["enabled"] is True and updated.after["enabled"] is False
    # Kept in the form's order, whatever order they came in.
    assert updated.after["event_types"] == ["request.approved", "assignment.ended"]
    deleted = AuditEvent.objects.get(action="pim.webhook.deleted")
    assert deleted.before["name"] == "SOAR"
    assert not WebhookSubscription.objects.exists()


def test_an_update_that_changes_nothing_writes_no_event(setup_actor, receiver):
    subscription, _ = create(setup_actor, receiver.url)
    services.subscription_update(
        setup_actor,
        subscription_id=subscription.pk,
        name="SOAR",
        url=receiver.url,
        event_types=["request.approved"],
        enabled=True,
    )
    assert not AuditEvent.objects.filter(action="pim.webhook.updated").exists()


def test_a_test_event_is_queued_for_the_worker_and_audited(setup_actor, receiver):
    subscription, secret = create(setup_actor, receiver.url)

    test = services.subscription_send_test(setup_actor, subscription_id=subscription.pk)

    assert test.state == DeliveryState.PENDING and test.event_type == "webhook.test"
    assert AuditEvent.objects.get(action="pim.webhook.test_sent").after == {
        "message_id": test.message_id
    }
    from tests.connectors.webhooks.helpers import deliver

    deliver()
    from standardwebhooks import Webhook

    (got,) = receiver.received
    assert Webhook(secret).verify(got.body, got.headers)["type"] == "webhook.test"


def test_retry_now_refuses_a_delivery_that_has_not_failed(setup_actor, receiver):
    subscription, _ = create(setup_actor, receiver.url)
    test = services.subscription_send_test(setup_actor, subscription_id=subscription.pk)

    with pytest.raises(ValidationError, match="only a failed one can be retried"):
        services.delivery_retry(setup_actor, delivery_id=test.pk)
    assert WebhookDelivery.objects.get().state == DeliveryState.PENDING


@pytest.mark.parametrize("persona", ["security_reader", "resource_owner", "outsider"])
def test_only_connector_managers_change_subscriptions(request, persona, receiver):
    user = request.getfixturevalue(persona)

    with pytest.raises(PermissionDenied):
        create(Actor.of(user), receiver.url)

    refused = AuditEvent.objects.get(action="pim.security.forbidden")
    assert refused.message == "create a webhook subscription"
    assert refused.actor_id == user.pk


def test_a_privileged_role_administrator_manages_them(pra, receiver):
    subscription, _ = create(Actor.of(pra), receiver.url)
    assert subscription.created_by == pra


def test_the_event_types_are_the_ones_the_issue_names():
    assert events.TYPE_NAMES == ALL_TYPES


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data", "http://[fe80::1]/x"])
def test_a_link_local_address_is_refused(portal_settings, setup_actor, url):
    assert "link-local address" in refusal(setup_actor, url)
    assert not WebhookSubscription.objects.exists()
