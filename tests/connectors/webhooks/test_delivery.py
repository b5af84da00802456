"""Sending: signed for the library's own verifier, retried on the schedule with time moved, a
receiver that fails or never answers logged per try, the same webhook-id on every try."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from connectors.models import DeliveryState, WebhookAttempt, WebhookSubscription
from connectors.webhooks import delivery, secrets, services
from tests.connectors.webhooks.helpers import deliver, fan_out, only_delivery, record_sealed
from tests.connectors.webhooks.receiver import HANG

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def denied():
    return record_sealed("pim.request.denied", message="Not during the freeze.", role_request_id=7)


def test_a_delivery_is_signed_and_the_librarys_own_verifier_accepts_it(receiver, subscribe):
    subscription, secret = subscribe(receiver.url)
    event = denied()

    fan_out()

    (got,) = receiver.received
    message = Webhook(secret).verify(got.body, got.headers)
    assert message["type"] == "request.denied"
    assert message["data"]["seq"] == event.seq
    assert message["data"]["message"] == "Not during the freeze."
    assert message["data"]["request_id"] == 7
    assert got.headers["webhook-id"] == only_delivery().message_id
    assert got.headers["content-type"] == "application/json"
    assert only_delivery().state == DeliveryState.DELIVERED


def test_the_verifier_refuses_a_changed_body_or_another_secret(receiver, subscribe):
    subscribe(receiver.url)
    denied()
    fan_out()
    (got,) = receiver.received
    _, other = subscribe(receiver.url + "/other", name="other")

    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(secrets.decrypt(WebhookSubscription.objects.first().secret_encrypted)).verify(
            got.body.replace(b"freeze", b"thaw"), got.headers
        )
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(other).verify(got.body, got.headers)


def test_the_body_follows_standard_webhooks_shape(receiver, subscribe):
    subscribe(receiver.url)
    event = denied()
    fan_out()

    body = json.loads(receiver.received[0].body)

    assert set(body) == {"type", "timestamp", "data"}
    assert body["timestamp"] == event.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert body["data"]["action"] == "pim.request.denied"
    assert body["data"]["description"] == "Request denied"


def test_a_500_then_a_200_is_delivered_on_the_second_try_with_the_same_webhook_id(
    receiver, subscribe, settings
):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 5, 300]
    receiver.answer(500)
    with time_machine.travel(T0, tick=False) as clock:
        _, secret = subscribe(receiver.url)
        denied()
        fan_out()
        first = only_delivery()
        assert (first.state, first.attempts, first.last_status) == (DeliveryState.PENDING, 1, 500)
        assert first.last_error == "HTTP 500 Internal Server Error."
        assert first.next_attempt_at == T0 + timedelta(seconds=5)

        clock.shift(timedelta(seconds=5))
        assert deliver() == 1

        both = [Webhook(secret).verify(r.body, r.headers) for r in receiver.received]
    assert len(both) == 2
    assert receiver.received[0].headers["webhook-id"] == receiver.received[1].headers["webhook-id"]
    assert only_delivery().state == DeliveryState.DELIVERED
    assert list(WebhookAttempt.objects.values_list("status_code", flat=True)) == [500, 200]


def test_retries_follow_the_schedule_and_nothing_goes_early(receiver, subscribe, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 5, 300, 1800]
    receiver.default = 503
    with time_machine.travel(T0, tick=False) as clock:
        subscribe(receiver.url)
        denied()
        fan_out()
        tried_at = [T0]
        for wait in (5, 300, 1800):
            clock.shift(timedelta(seconds=wait - 1))
            assert deliver() == 0, f"tried before its {wait} s were up"
            clock.shift(timedelta(seconds=1))
            assert deliver() == 1
            tried_at.append(tried_at[-1] + timedelta(seconds=wait))

    failed = only_delivery()
    assert failed.state == DeliveryState.FAILED
    assert failed.attempts == 4
    assert failed.next_attempt_at is None
    assert [a.at for a in WebhookAttempt.objects.order_by("at")] == tried_at
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1


def test_the_default_schedule_is_standard_webhooks_suggestion():
    assert delivery.retry_schedule() == [0, 5, 300, 1800, 7200, 18000, 36000, 36000]


def test_a_receiver_that_never_answers_times_out_and_the_worker_moves_on(
    receiver, second_receiver, subscribe, settings
):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 60]
    receiver.default = HANG
    subscribe(receiver.url, name="silent")
    subscribe(second_receiver.url, name="healthy")
    denied()

    fan_out()

    silent = only_in("silent")
    assert silent.state == DeliveryState.PENDING
    assert silent.last_status is None
    assert silent.last_error == "No answer within 0.5 s."
    attempt = silent.tries.get()
    assert attempt.status_code is None and attempt.error == "No answer within 0.5 s."
    assert 400 <= attempt.duration_ms < 5000
    assert only_in("healthy").state == DeliveryState.DELIVERED  # sent side by side, not held


def only_in(name: str):
    return WebhookSubscription.objects.get(name=name).deliveries.get()


def test_a_refused_connection_is_logged_and_retried(subscribe, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 60]
    subscribe("http://127.0.0.1:9/hooks")  # the discard port: nothing listens on loopback
    denied()

    fan_out()

    pending = only_delivery()
    assert pending.state == DeliveryState.PENDING
    assert pending.last_error == "Could not connect: Connection refused."
    assert pending.tries.count() == 1


def test_a_redirect_is_not_followed_and_counts_as_a_failure(receiver, subscribe, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 60]
    receiver.answer((302, "http://127.0.0.1:9/elsewhere"))
    subscribe(receiver.url)
    denied()

    fan_out()

    assert len(receiver.received) == 1
    assert only_delivery().last_error == (
        "HTTP 302: redirects are not followed (to http://127.0.0.1:9/elsewhere)."
    )


def test_the_answer_is_logged_with_an_excerpt(receiver, subscribe, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 60]
    receiver.answer(500)
    subscribe(receiver.url)
    denied()

    fan_out()

    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code == 500
    assert attempt.response_excerpt == "receiver error: try later"


def test_retry_now_gives_a_failed_delivery_one_more_try_with_the_same_id(
    receiver, subscribe, settings, setup_actor
):
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    receiver.answer(500)
    subscribe(receiver.url)
    denied()
    fan_out()
    assert only_delivery().state == DeliveryState.FAILED

    services.delivery_retry(setup_actor, delivery_id=only_delivery().pk)
    assert deliver() == 1

    assert only_delivery().state == DeliveryState.DELIVERED
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    assert len(receiver.received) == 2


def test_a_disabled_subscription_holds_its_pending_deliveries(
    receiver, subscribe, settings, setup_actor
):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0]
    receiver.answer(500)
    subscription, _ = subscribe(receiver.url)
    denied()
    fan_out()
    services.subscription_update(
        setup_actor,
        subscription_id=subscription.pk,
        name=subscription.name,
        url=subscription.url,
        event_types=subscription.event_types,
        enabled=False,
    )

    assert deliver() == 0
    assert delivery.next_due() is None
    assert only_delivery().state == DeliveryState.PENDING


def test_after_a_rotation_both_secrets_sign_for_a_while(receiver, subscribe, settings, setup_actor):
    subscription, old = subscribe(receiver.url)
    _, new = services.subscription_rotate_secret(setup_actor, subscription_id=subscription.pk)
    denied()
    fan_out()
    (got,) = receiver.received

    assert len(got.headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(got.body, got.headers)
    Webhook(old).verify(got.body, got.headers)


def test_once_the_overlap_is_over_only_the_new_secret_signs(receiver, subscribe, setup_actor):
    with time_machine.travel(T0, tick=False) as clock:
        # Subscribed at T0 too: events older than the subscription are never sent to it.
        subscription, old = subscribe(receiver.url)
        _, new = services.subscription_rotate_secret(setup_actor, subscription_id=subscription.pk)
        clock.shift(services.ROTATION_OVERLAP + timedelta(seconds=1))
        denied()
        fan_out()
        (got,) = receiver.received
        Webhook(new).verify(got.body, got.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(got.body, got.headers)


def test_a_secret_that_no_longer_decrypts_is_logged_not_sent(receiver, subscribe, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 60]
    subscribe(receiver.url)
    denied()
    settings.SECRET_KEY = "another-key-than-the-one-it-was-encrypted-with"

    fan_out()

    assert receiver.received == []
    assert "SECRET_KEY changed" in only_delivery().last_error


def test_a_secret_still_decrypts_under_a_fallback_key(receiver, subscribe, settings):
    old_key = settings.SECRET_KEY
    subscribe(receiver.url)
    denied()
    settings.SECRET_KEY = "the-new-key-after-rotation"
    settings.SECRET_KEY_FALLBACKS = [old_key]

    fan_out()

    assert only_delivery().state == DeliveryState.DELIVERED
