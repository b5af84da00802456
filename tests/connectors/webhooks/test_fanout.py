"""The fan-out: which audit events become which event types, once per event and subscription
however often the chain is read, only for enabled subscriptions and only what they chose."""

from datetime import timedelta

import pytest
from django.utils import timezone

from assignments import tasks as assignment_tasks
from connectors.models import WebhookCursor, WebhookDelivery
from connectors.webhooks import events, fanout
from pim_portal import timekeeper
from tests.connectors.webhooks.helpers import fan_out, record_sealed
from tests.factories import assign, make_user

pytestmark = pytest.mark.django_db


def types_delivered() -> list[str]:
    return list(WebhookDelivery.objects.order_by("id").values_list("event_type", flat=True))


@pytest.mark.parametrize(
    ("action", "after", "expected"),
    [
        ("pim.request.submitted", {"status": "pending_approval"}, ["request.created"]),
        (
            "pim.request.activated",
            {"start": "2020-01-01T00:00:00Z"},
            ["request.created", "assignment.in_force"],
        ),
        ("pim.request.scheduled", {}, ["request.created"]),
        (
            "pim.request.approved",
            {"action": "self_activate", "status": "provisioned"},
            ["request.approved", "assignment.in_force"],
        ),
        (
            "pim.request.approved",
            {"action": "self_activate", "status": "scheduled"},
            ["request.approved"],
        ),
        # An approved extension is no new assignment in force.
        (
            "pim.request.approved",
            {"action": "self_extend", "status": "provisioned"},
            ["request.approved"],
        ),
        ("pim.request.denied", {}, ["request.denied"]),
        ("pim.request.expired", {}, ["request.lapsed"]),
        ("pim.request.canceled", {}, ["request.canceled"]),
        ("pim.assignment.created", {"start": "2020-01-01T00:00:00Z"}, ["assignment.in_force"]),
        ("pim.assignment.created", {"start": "2999-01-01T00:00:00Z"}, []),
        ("pim.assignment.started", {}, ["assignment.in_force"]),
        ("pim.assignment.ended", {}, ["assignment.ended"]),
        ("pim.assignment.removed", {}, ["assignment.removed"]),
        (
            "pim.connector.provisioning_failed",
            {"connector": "ldap-corp", "mapping": 3, "target": "cn=admins", "operation": "grant"},
            ["provisioning.failed"],
        ),
        (
            "pim.connector.drift_found",
            {"connector": "ldap-corp", "mapping": 3, "target": "cn=admins", "account": "mallory"},
            ["drift.found"],
        ),
        ("pim.security.signin_failed", {}, []),
        ("pim.webhook.created", {}, []),
    ],
)
def test_audit_actions_become_their_event_types(receiver, subscribe, action, after, expected):
    subscribe(receiver.url)
    record_sealed(action, after=after)

    fan_out()

    assert types_delivered() == expected
    assert {r.headers["webhook-id"] for r in receiver.received} == set(
        WebhookDelivery.objects.values_list("message_id", flat=True)
    )


def test_provisioning_failed_carries_what_the_connector_engine_recorded(receiver, subscribe):
    subscribe(receiver.url, types=["provisioning.failed"])
    record_sealed(
        "pim.connector.provisioning_failed",
        principal="erin",
        role="Contributor",
        scope="/subscriptions/prod",
        message="LDAP: insufficient access rights",
        after={"connector": "ldap-corp", "mapping": 3, "target": "cn=ops", "operation": "grant"},
    )

    fan_out()

    data = WebhookDelivery.objects.get().payload["data"]
    assert data["message"] == "LDAP: insufficient access rights"
    assert data["after"]["operation"] == "grant"
    assert (data["principal"], data["role"], data["scope"]) == (
        "erin",
        "Contributor",
        "/subscriptions/prod",
    )


def test_each_subscription_gets_only_the_types_it_chose(receiver, second_receiver, subscribe):
    subscribe(receiver.url, types=["request.denied"], name="denials")
    subscribe(second_receiver.url, types=["request.approved"], name="approvals")
    record_sealed("pim.request.denied")
    record_sealed("pim.request.approved", after={"action": "self_extend"})

    fan_out()

    assert [r.headers["webhook-id"] for r in receiver.received] == [
        WebhookDelivery.objects.get(subscription__name="denials").message_id
    ]
    assert len(second_receiver.received) == 1


def test_fanning_out_the_same_event_twice_makes_one_delivery(receiver, subscribe):
    subscribe(receiver.url)
    record_sealed("pim.request.denied")
    fan_out()

    WebhookCursor.objects.filter(pk=1).update(seq=0)  # read the chain again from its start
    fan_out()

    assert WebhookDelivery.objects.count() == 1
    assert len(receiver.received) == 1


def test_the_message_id_is_fixed_by_the_event_and_the_type(receiver, subscribe):
    subscribe(receiver.url)
    event = record_sealed("pim.request.activated", after={"start": "2020-01-01T00:00:00Z"})

    fan_out()

    ids = dict(WebhookDelivery.objects.values_list("event_type", "message_id"))
    assert ids == {
        "request.created": events.message_id(event, "request.created"),
        "assignment.in_force": events.message_id(event, "assignment.in_force"),
    }
    assert ids["request.created"] != ids["assignment.in_force"]


def test_two_subscriptions_each_get_their_own_delivery_of_one_event(
    receiver, second_receiver, subscribe
):
    subscribe(receiver.url, name="one")
    subscribe(second_receiver.url, name="two")
    record_sealed("pim.request.denied")

    fan_out()

    assert WebhookDelivery.objects.count() == 2
    assert len(receiver.received) == len(second_receiver.received) == 1


def test_the_fanout_seals_what_is_committed_without_waiting_for_the_sealer(receiver, subscribe):
    from audit import log as audit_log

    subscribe(receiver.url)
    event = audit_log.record(action="pim.request.denied")
    assert fanout.next_due() is not None  # due already: the fan-out seals it

    assert fan_out() == 1

    event.refresh_from_db()
    assert event.seq is not None
    assert WebhookDelivery.objects.get().audit_seq == event.seq
    assert audit_log.verify_chain()[1] is None


def test_with_no_subscription_the_fanout_is_never_due_and_only_moves_the_cursor(
    django_assert_max_num_queries,
):
    record_sealed("pim.request.denied")
    fan_out()  # makes the cursor row
    for _ in range(30):
        record_sealed("pim.request.denied")

    assert fanout.next_due() is None
    # The subscriptions, a savepoint, the locked cursor, the end of the chain, the move, the
    # release: no event is read.
    with django_assert_max_num_queries(6):
        assert fan_out() == 0
    assert WebhookCursor.objects.get().seq == 31
    assert WebhookDelivery.objects.count() == 0


def test_a_new_subscription_gets_nothing_recorded_before_it(receiver, subscribe):
    record_sealed("pim.request.denied")
    record_sealed("pim.request.denied")
    subscribe(receiver.url)
    later = record_sealed("pim.request.canceled")

    assert fanout.next_due() is not None
    fan_out()

    assert list(WebhookDelivery.objects.values_list("audit_seq", flat=True)) == [later.seq]


def test_a_subscription_enabled_again_gets_nothing_from_while_it_was_off(
    receiver, subscribe, setup_actor
):
    from connectors.webhooks import services

    subscription, _ = subscribe(receiver.url)
    arguments = {
        "name": subscription.name,
        "url": subscription.url,
        "event_types": ["request.denied"],
    }
    services.subscription_update(
        setup_actor, subscription_id=subscription.pk, enabled=False, **arguments
    )
    record_sealed("pim.request.denied")
    fan_out()
    services.subscription_update(
        setup_actor, subscription_id=subscription.pk, enabled=True, **arguments
    )
    later = record_sealed("pim.request.denied")
    fan_out()

    assert list(WebhookDelivery.objects.values_list("audit_seq", flat=True)) == [later.seq]


def test_a_full_batch_leaves_the_rest_for_the_next(receiver, subscribe):
    subscribe(receiver.url, types=["request.denied"])
    made = [record_sealed("pim.request.denied") for _ in range(5)]

    assert fanout.fanout_batch(timezone.now(), 3) == 3
    assert WebhookCursor.objects.get().seq == made[2].seq
    assert fanout.fanout_batch(timezone.now(), 3) == 2
    assert fanout.fanout_batch(timezone.now(), 3) == 0
    assert WebhookDelivery.objects.count() == 5


def test_the_fanout_reads_past_events_no_webhook_cares_about(receiver, subscribe):
    subscribe(receiver.url)
    for _ in range(4):
        record_sealed("pim.security.signin_failed")
    last = record_sealed("pim.request.denied")

    fan_out()

    assert WebhookCursor.objects.get().seq == last.seq
    assert types_delivered() == ["request.denied"]


def test_a_real_assignment_end_becomes_an_ended_event(receiver, subscribe):
    """The time engine's own end batch writes the audit event the webhook tells of."""
    subscribe(receiver.url, types=["assignment.ended"])
    holder = make_user("holly")
    now = timezone.now()
    ended = assign(holder, "Reader", start=now - timedelta(hours=1), end=now - timedelta(seconds=1))
    assignment_tasks.end_batch(timezone.now(), 100)
    from audit import log as audit_log

    audit_log.seal_all()

    fan_out()

    data = WebhookDelivery.objects.get().payload["data"]
    assert data["target"] == {
        "type": "assignments.assignment",
        "id": str(ended.pk),
        "name": str(ended),
    }
    assert data["principal"] == ended.principal_name
    assert len(receiver.received) == 1


def test_the_drain_that_records_ends_sends_their_webhooks_next(receiver, subscribe):
    """The fan-out follows the time engine's other work: the worker that records an end
    seals it, fans it out and sends the first try, in the same task."""
    subscribe(receiver.url, types=["assignment.ended"])
    now = timezone.now()
    ended = assign(make_user("holly"), "Reader", start=now - timedelta(hours=1), end=now)

    timekeeper.drain(assignment_tasks.ENDS)

    ended.refresh_from_db()
    assert ended.end_processed_at is not None
    assert WebhookDelivery.objects.get().event_type == "assignment.ended"
    assert len(receiver.received) == 1
