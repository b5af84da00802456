"""Races between real concurrent transactions: exactly one outcome every time.

Two approvers at once, an approval racing the requester's cancel or the lapse, a double
click: each round ends in one terminal state, at most one activation in force, one audit
event per decision. PostgreSQL only (SQLite serialises writers, so nothing would race).
"""

import random
import threading
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection, transaction
from django.utils import timezone

from approvals import services
from approvals.models import ApprovalDecision
from assignments import services as assignment_services
from assignments.models import Assignment, RequestStatus, RoleRequest
from audit.models import AuditEvent
from tests.approvals.conftest import PRA, needs_approval, new_requester, submit
from tests.concurrency import race
from tests.factories import make_user

pytestmark = [
    pytest.mark.postgres,
    # The catalog (roles, the root scope) comes from a data migration: restore it after each.
    pytest.mark.django_db(transaction=True),
]

ROUNDS = 12
DECISION_EVENTS = [
    "pim.request.approved",
    "pim.request.approval_recorded",
    "pim.request.denied",
    "pim.request.refused",
    "pim.request.canceled",
    "pim.request.expired",
]


def decide(actor, request, approve=True):
    return lambda: services.decision_record(
        actor=actor, request_id=request.pk, approve=approve, justification="race"
    )


def activations(request) -> int:
    return Assignment.objects.filter(
        principal_user=request.principal_user, activated_from__isnull=False
    ).count()


def in_force(request) -> int:
    return (
        Assignment.objects.in_force()
        .filter(principal_user=request.principal_user, activated_from__isnull=False)
        .count()
    )


def decision_events(request) -> list[str]:
    return list(
        AuditEvent.objects.filter(role_request_id=request.pk, action__in=DECISION_EVENTS)
        .order_by("id")
        .values_list("action", flat=True)
    )


def unexpected(results) -> list:
    """Anything but a result or a clean refusal is a bug (a server error for the loser)."""
    allowed = (
        services.DecisionResult,
        RoleRequest,
        assignment_services.RequestConflict,
        type(None),
    )
    return [r for r in results if not isinstance(r, allowed)]


@pytest.fixture
def two_approvers(tree):
    first, second = make_user("ann"), make_user("bob")
    needs_approval(PRA, approvers=[first, second])
    return first, second


def test_two_approvers_approving_at_once_make_one_activation(two_approvers):
    first, second = two_approvers
    for n in range(ROUNDS):
        request = submit(new_requester(f"user{n}"))
        mail.outbox.clear()
        results = race(decide(first, request), decide(second, request))
        assert unexpected(results) == []
        winners = [r for r in results if isinstance(r, services.DecisionResult)]
        losers = [r for r in results if isinstance(r, services.DecisionConflict)]
        assert len(winners) == 1 and len(losers) == 1
        assert "already approved by" in str(losers[0])
        assert RoleRequest.objects.get(pk=request.pk).status == RequestStatus.PROVISIONED
        assert activations(request) == 1
        assert ApprovalDecision.objects.filter(request=request).count() == 1
        assert decision_events(request) == ["pim.request.approved"]
        to_requester = [m for m in mail.outbox if m.to == [request.principal_user.email]]
        assert len(to_requester) == 1


def test_approve_racing_deny_ends_in_one_state(two_approvers):
    first, second = two_approvers
    for n in range(ROUNDS):
        request = submit(new_requester(f"user{n}"))
        results = race(decide(first, request, True), decide(second, request, False))
        assert unexpected(results) == []
        status = RoleRequest.objects.get(pk=request.pk).status
        assert status in (RequestStatus.PROVISIONED, RequestStatus.DENIED)
        assert activations(request) == (1 if status == RequestStatus.PROVISIONED else 0)
        assert ApprovalDecision.objects.filter(request=request).count() == 1
        assert len(decision_events(request)) == 1


def test_a_double_click_records_one_decision(two_approvers):
    first, _ = two_approvers
    for n in range(ROUNDS):
        request = submit(new_requester(f"user{n}"))
        results = race(decide(first, request), decide(first, request))
        assert unexpected(results) == []
        assert sum(isinstance(r, services.DecisionResult) for r in results) == 1
        assert activations(request) == 1
        assert ApprovalDecision.objects.filter(request=request).count() == 1
        assert decision_events(request) == ["pim.request.approved"]


def test_approval_racing_the_requesters_cancel_ends_in_one_state(two_approvers):
    first, _ = two_approvers
    for n in range(ROUNDS):
        requester = new_requester(f"user{n}")
        request = submit(requester)

        def cancel(requester=requester, request=request):
            return assignment_services.request_cancel(actor=requester, request_id=request.pk)

        results = race(decide(first, request), cancel)
        assert unexpected(results) == []
        status = RoleRequest.objects.get(pk=request.pk).status
        assert status in (RequestStatus.PROVISIONED, RequestStatus.CANCELED)
        assert in_force(request) == (1 if status == RequestStatus.PROVISIONED else 0)
        assert activations(request) == (1 if status == RequestStatus.PROVISIONED else 0)
        assert len(decision_events(request)) == 1


def _decision_time(approver) -> timedelta:
    """How long one uncontended approval takes here (machines differ by a factor of ten)."""
    request = submit(new_requester("calibration"))
    started = time.perf_counter()
    decide(approver, request)()
    return timedelta(seconds=time.perf_counter() - started)


def test_approval_racing_the_lapse_ends_in_one_state(two_approvers):
    first, _ = two_approvers
    # Deadlines spread around the moment the approval takes its lock, so both sides win.
    window = _decision_time(first) * 2
    for n in range(ROUNDS * 2):
        request = submit(new_requester(f"user{n}"))
        deadline = timezone.now() + window * random.random()
        RoleRequest.objects.filter(pk=request.pk).update(approval_deadline=deadline)

        def lapse(request=request):
            # The sweep, run over and over until the request is no longer pending.
            for _ in range(5000):
                if services.request_expire(request_id=request.pk) is not None:
                    return "lapsed"
                if not RoleRequest.objects.filter(
                    pk=request.pk, status=RequestStatus.PENDING_APPROVAL
                ).exists():
                    return None
            return None

        results = race(decide(first, request), lapse)
        assert unexpected([r for r in results if r != "lapsed"]) == []
        status = RoleRequest.objects.get(pk=request.pk).status
        assert status in (RequestStatus.PROVISIONED, RequestStatus.EXPIRED)
        assert activations(request) == (1 if status == RequestStatus.PROVISIONED else 0)
        assert len(decision_events(request)) == 1


def test_two_approvals_needed_given_at_once_make_one_activation(tree):
    first, second = make_user("ann"), make_user("bob")
    needs_approval(PRA, approvers=[first, second], approvals_required=2)
    for n in range(ROUNDS):
        request = submit(new_requester(f"user{n}"))
        results = race(decide(first, request), decide(second, request))
        assert unexpected(results) == []
        assert sorted(r.outcome for r in results) == ["approval_recorded", "approved"]
        assert RoleRequest.objects.get(pk=request.pk).status == RequestStatus.PROVISIONED
        assert activations(request) == 1
        assert sorted(decision_events(request)) == [
            "pim.request.approval_recorded",
            "pim.request.approved",
        ]


def test_bulk_decisions_by_two_approvers_at_once_decide_each_request_once(two_approvers):
    first, second = two_approvers
    requests = [submit(new_requester(f"user{n}")) for n in range(ROUNDS)]
    ids = [r.pk for r in requests]

    def bulk(actor, approve):
        return lambda: services.decisions_record_bulk(
            actor=actor, request_ids=ids, approve=approve, justification="bulk race"
        )

    first_results, second_results = race(bulk(first, True), bulk(second, False))
    for mine, theirs in zip(first_results, second_results, strict=True):
        decided = {mine.outcome, theirs.outcome} & {"approved", "denied"}
        assert len(decided) == 1
        assert {mine.outcome, theirs.outcome} - decided == {"already_decided"}
    for request in requests:
        status = RoleRequest.objects.get(pk=request.pk).status
        assert activations(request) == (1 if status == RequestStatus.PROVISIONED else 0)
        assert len(decision_events(request)) == 1


def test_two_workers_lapsing_at_once_take_each_request_once(tree):
    approver = make_user("ann")
    needs_approval(PRA, approvers=[approver], window=timedelta(hours=1))
    requests = [submit(new_requester(f"user{n}")) for n in range(ROUNDS)]
    RoleRequest.objects.filter(pk__in=[r.pk for r in requests]).update(
        approval_deadline=timezone.now() - timedelta(seconds=1)
    )
    now = timezone.now()

    def worker():
        done = 0
        while did := services.lapse_batch(now, 2):
            done += did
        return done

    results = race(worker, worker)
    assert all(isinstance(r, int) for r in results), results
    assert sum(results) == ROUNDS
    for request in requests:
        assert RoleRequest.objects.get(pk=request.pk).status == RequestStatus.EXPIRED
        assert decision_events(request) == ["pim.request.expired"]


def test_a_claimed_batch_is_skipped_not_waited_for(tree):
    """SKIP LOCKED: while one worker holds its batch, another takes the rest at once."""
    approver = make_user("ann")
    needs_approval(PRA, approvers=[approver], window=timedelta(hours=1))
    requests = [submit(new_requester(f"user{n}")) for n in range(4)]
    RoleRequest.objects.filter(pk__in=[r.pk for r in requests]).update(
        approval_deadline=timezone.now() - timedelta(seconds=1)
    )
    held = sorted(r.pk for r in requests)[:2]
    other: list = []

    def second_worker():
        try:
            other.append(services.lapse_batch(timezone.now(), 10))
        finally:
            connection.close()

    with transaction.atomic():
        list(RoleRequest.objects.select_for_update().filter(pk__in=held))
        thread = threading.Thread(target=second_worker)
        thread.start()
        thread.join(timeout=20)
        assert not thread.is_alive(), "the second worker waited for the held rows"
    assert other == [2]
    statuses = {r.pk: RoleRequest.objects.get(pk=r.pk).status for r in requests}
    assert [pk for pk, s in statuses.items() if s == RequestStatus.EXPIRED] == sorted(
        set(statuses) - set(held)
    )
