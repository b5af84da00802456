"""The Webhooks pages: the list with each subscription's last delivery, the form and its
messages, the secret shown once, a subscription's deliveries with every try, the buttons."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from connectors.models import DeliveryState, WebhookDelivery, WebhookSubscription
from connectors.webhooks import secrets
from tests.conftest import signed_in
from tests.connectors.webhooks.helpers import deliver, fan_out, record_sealed
from tests.connectors.webhooks.receiver import HANG

pytestmark = pytest.mark.django_db

LIST = reverse("connectors:webhook_list")
CREATE = reverse("connectors:webhook_create")


def detail(subscription) -> str:
    return reverse("connectors:webhook_detail", args=[subscription.pk])


def queries_for(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def form(url: str, **overrides) -> dict:
    data = {
        "name": "SOAR",
        "url": url,
        "event_types": ["request.approved", "assignment.ended"],
        "enabled": "on",
    }
    data.update(overrides)
    return data


def test_the_list_shows_each_subscriptions_last_delivery(
    security_reader, receiver, subscribe, settings
):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 60]
    receiver.answer(500)
    subscribe(receiver.url, name="SOAR")
    subscribe("http://127.0.0.1:9/none", name="Nobody home", enabled=False)
    record_sealed("pim.request.denied")
    fan_out()

    page = signed_in(security_reader).get(LIST)

    html = page.content.decode()
    assert page.context["section"] == "webhooks"
    assert "SOAR" in html and "Nobody home" in html and "Disabled" in html
    assert 'data-state="retrying"' in html
    assert "HTTP 500 Internal Server Error." in html
    assert "New subscription" not in html  # a reader may look, not change


def test_the_list_has_an_empty_state(pra):
    page = signed_in(pra).get(LIST)
    assert "No webhook subscription yet." in page.content.decode()
    assert "New subscription" in page.content.decode()


def test_the_list_query_count_does_not_grow_with_subscriptions(
    pra, receiver, subscribe, django_assert_max_num_queries
):
    client = signed_in(pra)
    subscribe(receiver.url, name="first")
    record_sealed("pim.request.denied")
    fan_out()
    baseline = queries_for(client, LIST)
    for number in range(12):
        subscribe(receiver.url, name=f"more {number}")
    record_sealed("pim.request.denied")
    record_sealed("pim.request.canceled")
    fan_out()

    with django_assert_max_num_queries(baseline):
        client.get(LIST)


def test_creating_shows_the_secret_once_and_never_again(pra, receiver):
    client = signed_in(pra)

    made = client.post(CREATE, form(receiver.url))

    assert made.status_code == 200
    assert made["Cache-Control"] == "no-store"
    secret = made.context["secret"]
    assert secret.startswith("whsec_") and secret in made.content.decode()
    subscription = WebhookSubscription.objects.get()
    assert secrets.decrypt(subscription.secret_encrypted) == secret
    assert subscription.event_types == ["request.approved", "assignment.ended"]
    again = client.get(detail(subscription))
    assert secret not in again.content.decode()
    assert secret[6:] not in again.content.decode()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://files.example.com/x", "The URL must start with http:// or https://."),
        ("https://u:p@soar.example.com/x", "Leave the user name and password out of the URL"),
        ("http://127.0.0.1:8000/hooks", "points at the portal itself (127.0.0.1)"),
        ("https://testserver/hooks", "points at the portal itself (testserver)"),
    ],
)
def test_a_refused_url_is_a_clear_message_on_the_form(pra, settings, url, message):
    settings.SITE_URL = "http://127.0.0.1:8000"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]

    page = signed_in(pra).post(CREATE, form(url))

    assert page.status_code == 200
    assert message in " ".join(page.context["form"].errors["url"])
    assert message.split(" (")[0] in page.content.decode()
    assert not WebhookSubscription.objects.exists()


def test_no_event_type_is_a_message_on_the_form(pra, receiver):
    page = signed_in(pra).post(CREATE, form(receiver.url, event_types=[]))
    assert page.context["form"].errors["event_types"] == ["Pick at least one event type."]


def test_the_form_offers_a_checkbox_per_event_type(pra):
    html = signed_in(pra).get(CREATE).content.decode()
    assert html.count('name="event_types"') == 10


def test_editing_keeps_the_secret_and_saves_the_changes(pra, receiver, subscribe):
    subscription, secret = subscribe(receiver.url)
    client = signed_in(pra)
    url = reverse("connectors:webhook_edit", args=[subscription.pk])
    assert client.get(url).context["form"].initial["url"] == receiver.url

    saved = client.post(url, form(receiver.url, name="SOAR prod", event_types=["drift.found"]))

    assert saved.status_code == 302
    subscription.refresh_from_db()
    assert (subscription.name, subscription.event_types) == ("SOAR prod", ["drift.found"])
    assert secrets.decrypt(subscription.secret_encrypted) == secret


def test_rotating_shows_the_new_secret_once(pra, receiver, subscribe):
    subscription, old = subscribe(receiver.url)

    page = signed_in(pra).post(reverse("connectors:webhook_rotate", args=[subscription.pk]))

    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    new = page.context["secret"]
    assert new != old and new in page.content.decode()
    assert "The old secret still signs too" in page.content.decode()


def test_the_detail_page_shows_deliveries_with_every_try(pra, receiver, subscribe, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0]
    receiver.answer(HANG, 500)
    subscription, _ = subscribe(receiver.url)
    record_sealed("pim.request.denied")
    fan_out()
    deliver()

    html = signed_in(pra).get(detail(subscription)).content.decode()

    assert "No answer within 0.5 s." in html
    assert "HTTP 500 Internal Server Error." in html
    assert 'data-state="failed"' in html
    assert "Retry now" in html
    assert WebhookDelivery.objects.get().message_id in html


def test_the_deliveries_filter_by_state_in_the_url(pra, receiver, subscribe, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    subscription, _ = subscribe(receiver.url)
    record_sealed("pim.request.denied")
    receiver.answer(500)
    record_sealed("pim.request.canceled")
    fan_out()
    assert WebhookDelivery.objects.filter(state=DeliveryState.FAILED).count() == 1

    page = signed_in(pra).get(detail(subscription) + "?state=failed")

    assert [d.state for d in page.context["deliveries"]] == [DeliveryState.FAILED]


def test_the_detail_query_count_does_not_grow_with_deliveries_and_tries(
    pra, receiver, subscribe, settings, django_assert_max_num_queries
):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0, 0]
    client = signed_in(pra)
    receiver.default = 500
    subscription, _ = subscribe(receiver.url)
    record_sealed("pim.request.denied")
    fan_out()
    baseline = queries_for(client, detail(subscription))
    for _ in range(8):
        record_sealed("pim.request.denied")
    fan_out()
    while deliver():
        pass
    assert WebhookDelivery.objects.filter(state=DeliveryState.FAILED).count() == 9

    with django_assert_max_num_queries(baseline):
        client.get(detail(subscription))


def test_retry_now_puts_a_failed_delivery_back(pra, receiver, subscribe, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    receiver.answer(500)
    subscription, _ = subscribe(receiver.url)
    record_sealed("pim.request.denied")
    fan_out()
    failed = WebhookDelivery.objects.get()

    done = signed_in(pra).post(
        reverse("connectors:webhook_retry", args=[subscription.pk, failed.pk]), follow=True
    )

    assert "queued again" in done.content.decode()
    assert deliver() == 1
    assert WebhookDelivery.objects.get().state == DeliveryState.DELIVERED
    assert AuditEvent.objects.filter(action="pim.webhook.delivery_retried").count() == 1


def test_retry_now_of_a_delivered_one_says_why_not(pra, receiver, subscribe):
    subscription, _ = subscribe(receiver.url)
    record_sealed("pim.request.denied")
    fan_out()
    delivered = WebhookDelivery.objects.get()

    done = signed_in(pra).post(
        reverse("connectors:webhook_retry", args=[subscription.pk, delivered.pk]), follow=True
    )

    assert "Not retried: That delivery is delivered: only a failed one" in done.content.decode()


def test_retry_of_another_subscriptions_delivery_is_a_404(pra, receiver, subscribe):
    one, _ = subscribe(receiver.url, name="one")
    two, _ = subscribe(receiver.url, name="two", types=["request.canceled"])
    record_sealed("pim.request.denied")
    fan_out()
    of_one = WebhookDelivery.objects.get()

    answer = signed_in(pra).post(reverse("connectors:webhook_retry", args=[two.pk, of_one.pk]))

    assert answer.status_code == 404


def test_send_test_event_queues_it_and_says_so(pra, receiver, subscribe):
    subscription, _ = subscribe(receiver.url)

    done = signed_in(pra).post(
        reverse("connectors:webhook_test", args=[subscription.pk]), follow=True
    )

    assert "queued: a worker sends it now" in done.content.decode()
    assert deliver() == 1
    assert receiver.received[0].headers["webhook-id"] == WebhookDelivery.objects.get().message_id


def test_send_test_event_to_a_disabled_subscription_says_why_not(pra, receiver, subscribe):
    subscription, _ = subscribe(receiver.url, enabled=False)

    done = signed_in(pra).post(
        reverse("connectors:webhook_test", args=[subscription.pk]), follow=True
    )

    assert "The subscription is disabled: enable it to send a test event." in done.content.decode()
    assert not WebhookDelivery.objects.exists()


def test_deleting_asks_first_then_deletes(pra, receiver, subscribe):
    subscription, _ = subscribe(receiver.url)
    client = signed_in(pra)
    url = reverse("connectors:webhook_delete", args=[subscription.pk])

    assert "Delete subscription" in client.get(url).content.decode()
    assert client.post(url).status_code == 302
    assert not WebhookSubscription.objects.exists()


def test_the_detail_page_tells_the_receiver_the_timeout_and_the_schedule(
    security_reader, receiver, subscribe
):
    subscription, _ = subscribe(receiver.url)

    html = signed_in(security_reader).get(detail(subscription)).content.decode()

    assert (
        "Answer 2xx within 0.5 s. Anything else is tried again after 5 s, then 5 min, then "
        "30 min, then 2 h, then 5 h, then 10 h, then 10 h; then the delivery fails"
    ) in html
    assert 'id="webhook-rotate"' not in html and 'id="webhook-send-test"' not in html
