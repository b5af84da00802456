"""Webhooks with real processes and real transactions (PostgreSQL).

An "ended" event reaches a real receiver within 5 s of the end, through the whole path: the
time engine records the end, the sealer links its audit event, the fan-out makes the delivery
and sends it. Two deliverers at once never send one delivery twice; a worker killed while it
sends leaves the delivery due again, and it goes again with the same webhook-id.
"""

import threading
import time
from collections import Counter

import pytest
from django.db import connection
from django.utils import timezone
from standardwebhooks import Webhook

from assignments.models import Assignment
from connectors.models import DeliveryState, WebhookAttempt, WebhookDelivery
from connectors.webhooks import delivery, fanout, services
from tests.connectors.webhooks.helpers import record_sealed
from tests.connectors.webhooks.receiver import HANG
from tests.workers import Workers, ending_assignments, redis_available, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BOUND = 120  # seconds: far beyond what the work needs; the waits stop by themselves
ENDS = 8


@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_an_ended_event_arrives_within_five_seconds_of_the_end(
    broker, receiver, subscribe, tmp_path
):
    if broker == "redis" and not redis_available():
        pytest.skip("needs Redis at 127.0.0.1:6379 (apt-get install redis-server)")
    _, secret = subscribe(receiver.url, types=["assignment.ended"])
    with Workers(mail_dir=tmp_path, broker=broker) as workers:
        time.sleep(3)  # let the processes start: the ends below are measured from here
        ids = ending_assignments(ENDS, first_in=3, spread=ENDS * 1.5, tag="holder")
        end_of = {str(pk): end for pk, end in Assignment.objects.values_list("pk", "end")}
        arrived = receiver.wait_for(ENDS, seconds=BOUND)
        assert arrived, f"{len(receiver.received)} of {ENDS} arrived\n{workers.errors()}"
    delays = []
    for got in receiver.received:
        message = Webhook(secret).verify(got.body, got.headers)
        assert message["type"] == "assignment.ended"
        end = end_of[message["data"]["target"]["id"]]
        delays.append(got.at - end.timestamp())
    delays.sort()
    assert {m for m in end_of} == {str(pk) for pk in ids}
    assert len({got.headers["webhook-id"] for got in receiver.received}) == ENDS
    assert delays[0] >= 0, f"told before the end: {delays}"
    assert delays[-1] <= 5, f"delays after the end (s), p99 = max here: {delays}"


def test_a_worker_killed_while_sending_leaves_it_to_go_again_with_the_same_id(
    receiver, subscribe, tmp_path
):
    receiver.answer(HANG)  # the first try hangs: the worker is killed while it waits
    _, secret = subscribe(receiver.url, types=["request.denied"])
    record_sealed("pim.request.denied")
    quick = {"DJANGO_SETTINGS_MODULE": "tests.connectors.webhooks.worker_settings"}
    with Workers(mail_dir=tmp_path, clusters=1, extra_env=quick) as workers:
        assert receiver.wait_for(1, seconds=BOUND), workers.errors()
        for process in workers.processes:
            workers.kill(process)
    pending = WebhookDelivery.objects.get()
    assert pending.state == DeliveryState.PENDING and pending.attempts == 0
    assert pending.next_attempt_at > timezone.now()  # leased: no one else sends it meanwhile
    with Workers(mail_dir=tmp_path, clusters=1, extra_env=quick) as workers:
        done = wait_until(
            lambda: WebhookDelivery.objects.get().state == DeliveryState.DELIVERED,
            seconds=BOUND,
        )
        assert done, workers.errors()
    first, again = receiver.received
    assert first.headers["webhook-id"] == again.headers["webhook-id"] == pending.message_id
    Webhook(secret).verify(again.body, again.headers)
    assert WebhookAttempt.objects.get().status_code == 200


def _in_threads(count: int, work) -> None:
    start = threading.Barrier(count)
    failures = []

    def run():
        try:
            start.wait(timeout=10)
            work()
        except Exception as error:  # reported below, in the test's thread
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=BOUND)
    assert not failures, failures


def test_two_deliverers_at_once_never_send_a_delivery_twice(receiver, subscribe, setup_actor):
    receiver.delay = 0.05  # slow enough that the two overlap
    subscription, _ = subscribe(receiver.url)
    for _ in range(30):
        services.subscription_send_test(setup_actor, subscription_id=subscription.pk)

    def drain():
        for _ in range(50):  # bounded: 30 deliveries in batches of at most 10
            if not delivery.deliver_batch(timezone.now(), 200):
                break

    _in_threads(3, drain)

    sent = Counter(got.headers["webhook-id"] for got in receiver.received)
    assert len(sent) == 30 and max(sent.values()) == 1, sent.most_common(3)
    assert not WebhookDelivery.objects.exclude(state=DeliveryState.DELIVERED).exists()
    assert WebhookAttempt.objects.count() == 30


def test_two_fanouts_at_once_make_each_delivery_once(receiver, subscribe):
    subscribe(receiver.url, types=["request.denied"])
    for _ in range(60):
        record_sealed("pim.request.denied")

    def drain():
        for _ in range(50):
            if not fanout.fanout_batch(timezone.now(), 7):
                time.sleep(0.01)  # the other holds the cursor: look again, a bounded loop
                if fanout.next_due() is None:
                    break

    _in_threads(2, drain)
    while delivery.deliver_batch(timezone.now(), 200):
        pass

    assert WebhookDelivery.objects.count() == 60
    sent = Counter(got.headers["webhook-id"] for got in receiver.received)
    assert len(sent) == 60 and max(sent.values()) == 1


def test_ends_recorded_while_no_subscription_existed_are_not_sent(receiver, subscribe):
    now = timezone.now()
    ending_assignments(3, first_in=-10, tag="gone")
    assert Assignment.objects.filter(end__lte=now).count() == 3
    from pim_portal import timekeeper

    timekeeper.catch_up()
    subscribe(receiver.url, types=["assignment.ended"])
    timekeeper.catch_up()

    assert receiver.received == []
    assert fanout.next_due() is None
