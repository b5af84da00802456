"""Request states and canceled activations read from the clock, never from a job (issue 7).

Each test here failed on the code before the fix: a lapsed request blocked a new one until the
sweep ran, and a canceled scheduled activation stayed listed, counted and blocking.
"""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from approvals import services as approval_services
from assignments import queries, services
from assignments.models import Assignment, AssignmentKind, RequestStatus, RoleRequest
from audit.models import AuditEvent
from pim_portal.actor import Actor
from tests.assignments.activation_support import HOUR, PRA, activate, eligible_for, relax
from tests.conftest import signed_in

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def scheduled_then_canceled(eligible_user):
    """Erin schedules an activation for tomorrow, then cancels it in My requests."""
    relax(PRA)
    request = activate(eligible_user, start=T0 + timedelta(days=1))
    assert request.status == RequestStatus.SCHEDULED
    response = signed_in(eligible_user).post(
        reverse("assignments:request_cancel", args=[request.pk])
    )
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.status == RequestStatus.CANCELED
    return request


# Defect 1: a canceled scheduled activation -----------------------------------------------


def test_canceled_scheduled_activation_is_not_listed_in_my_roles_active_tab(
    scheduled_then_canceled, eligible_user
):
    response = signed_in(eligible_user).get(reverse("assignments:my_roles") + "?tab=active")
    assert [entry["assignment"] for entry in response.context["entries"]] == []
    assert dict((key, n) for key, _, n in response.context["tabs"])["active"] == 0


def test_canceled_scheduled_activation_leaves_the_activate_button(
    scheduled_then_canceled, eligible_user
):
    response = signed_in(eligible_user).get(reverse("assignments:my_roles"))
    entry = next(
        e
        for e in response.context["entries"]
        if e["assignment"].pk == eligible_for(eligible_user).pk
    )
    assert entry["activation"] is None
    assert entry["can_activate"]


def test_canceled_scheduled_activation_does_not_block_a_new_one(
    scheduled_then_canceled, eligible_user
):
    again = activate(eligible_user)
    assert again.status == RequestStatus.PROVISIONED


def test_deactivating_a_canceled_scheduled_activation_says_it_already_ended(
    scheduled_then_canceled, eligible_user
):
    canceled = scheduled_then_canceled.result_assignment
    with pytest.raises(Exception, match="already ended"):
        services.request_deactivate(actor=eligible_user, assignment_id=canceled.pk)


def test_role_members_page_does_not_count_a_canceled_scheduled_activation(
    scheduled_then_canceled, pra
):
    response = signed_in(pra).get(
        reverse("assignments:role_detail", args=[scheduled_then_canceled.role_id]) + "?tab=active"
    )
    counts = {key: n for key, _, n in response.context["tabs"]}
    shown = [a.pk for a in response.context["page_obj"]]
    assert scheduled_then_canceled.result_assignment_id not in shown
    # Pat's own permanent assignment is the only active one.
    assert counts["active"] == 1


# Request states from the clock ---------------------------------------------------------------


@pytest.fixture
def pending(eligible_user):
    relax(PRA, require_approval=True, approval_window=timedelta(hours=2))
    request = activate(eligible_user)
    assert request.status == RequestStatus.PENDING_APPROVAL
    return request


def test_a_request_past_its_deadline_is_lapsed_for_every_check_at_that_second(pending, clock):
    clock.move_to(pending.approval_deadline)
    pending.refresh_from_db()
    assert pending.status == RequestStatus.PENDING_APPROVAL  # no job has run
    assert pending.current_status == RequestStatus.EXPIRED
    assert not RoleRequest.objects.pending().filter(pk=pending.pk).exists()
    assert RoleRequest.objects.with_status(RequestStatus.EXPIRED).filter(pk=pending.pk).exists()


def test_a_lapsed_request_that_no_job_recorded_does_not_block_a_new_activation(
    pending, eligible_user, clock
):
    clock.move_to(pending.approval_deadline + timedelta(seconds=1))
    again = activate(eligible_user)
    assert again.status == RequestStatus.PENDING_APPROVAL
    pending.refresh_from_db()
    assert pending.status == RequestStatus.EXPIRED
    lapse = AuditEvent.objects.get(action="pim.request.expired", role_request_id=pending.pk)
    assert lapse.actor_name == "system (approval deadline)"


def test_a_lapsed_request_cannot_be_approved_before_the_sweep(pending, pra, clock):
    clock.move_to(pending.approval_deadline)
    with pytest.raises(approval_services.DecisionConflict, match="has lapsed") as refused:
        approval_services.decision_record(
            actor=pra, request_id=pending.pk, approve=True, justification="ok"
        )
    assert refused.value.outcome == approval_services.Outcome.LAPSED
    assert not Assignment.objects.filter(activated_from__isnull=False).exists()


def test_a_scheduled_request_is_in_force_from_its_start_without_a_job(eligible_user, clock):
    relax(PRA)
    request = activate(eligible_user, start=T0 + HOUR)
    assert request.current_status == RequestStatus.SCHEDULED
    clock.move_to(T0 + HOUR)
    request.refresh_from_db()
    assert request.status == RequestStatus.SCHEDULED
    assert request.current_status == RequestStatus.PROVISIONED
    assert not RoleRequest.objects.open().filter(pk=request.pk).exists()


# The system actor -----------------------------------------------------------------------------


def test_the_system_removes_an_assignment_and_the_audit_names_its_reason(eligible_user):
    eligible = eligible_for(eligible_user)
    services.assignment_remove(
        actor=Actor.system("access review #12"), assignment=eligible, justification="Denied"
    )
    event = AuditEvent.objects.get(action="pim.assignment.removed", target_id=str(eligible.pk))
    assert event.actor_id is None
    assert event.actor_name == "system (access review #12)"
    assert not queries.eligible_assignments(eligible_user).exists() or (
        eligible.pk not in queries.eligible_assignments(eligible_user).values_list("pk", flat=True)
    )


def test_the_system_cannot_activate_for_someone(eligible_user):
    relax(PRA)
    with pytest.raises(Exception, match="cannot act on someone's own roles"):
        services.request_activate(
            actor=Actor.system("scheduler"),
            eligible=eligible_for(eligible_user),
            duration=HOUR,
            justification="x",
        )


def test_a_user_without_rights_is_refused_at_the_service_door(outsider, eligible_user):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied, match="manage Privileged Role Administrator"):
        services.assignment_remove(actor=Actor.of(outsider), assignment=eligible_for(eligible_user))
    assert AuditEvent.objects.filter(action="pim.security.forbidden", actor=outsider).exists()


def test_an_actor_is_a_user_or_the_system_never_neither(eligible_user):
    with pytest.raises(ValueError, match="stated reason"):
        Actor()
    assert Actor.of(eligible_user).user == eligible_user
    assert Actor.system("scheduler").is_system


# My requests ----------------------------------------------------------------------------------


def test_my_requests_lists_requests_about_the_viewer_not_what_they_did_for_others(
    pra, eligible_user, outsider
):
    services.assignment_create(
        actor=pra,
        principals=[outsider],
        role=eligible_for(eligible_user).role,
        scope=None,
        kind=AssignmentKind.ELIGIBLE,
        end=T0 + timedelta(days=30),
    )
    mine = signed_in(pra).get(reverse("assignments:my_requests"))
    theirs = signed_in(outsider).get(reverse("assignments:my_requests"))
    assert list(mine.context["page_obj"]) == []
    assert [r.principal_user for r in theirs.context["page_obj"]] == [outsider]


def test_a_requester_opens_their_own_request_page(pending, eligible_user):
    response = signed_in(eligible_user).get(reverse("approvals:request_detail", args=[pending.pk]))
    assert response.status_code == 200
    my_requests = signed_in(eligible_user).get(reverse("assignments:my_requests"))
    assert reverse("approvals:request_detail", args=[pending.pk]) in my_requests.content.decode()


def test_the_time_engine_audits_an_end_as_the_scheduler(eligible_user, clock):
    from assignments.tasks import assignment_ended

    relax(PRA)
    request = activate(eligible_user)
    clock.move_to(request.result_assignment.end)
    assert assignment_ended(request.result_assignment_id)
    event = AuditEvent.objects.get(action="pim.assignment.ended")
    assert (event.actor_id, event.actor_name) == (None, "system (scheduler)")


def test_the_dashboard_does_not_count_a_lapsed_request_as_pending(pending, eligible_user, clock):
    assert signed_in(eligible_user).get(reverse("dashboard")).context["my_pending"] == 1
    clock.move_to(pending.approval_deadline)
    # Signed in afresh: two hours on, the first session has timed out.
    assert signed_in(eligible_user).get(reverse("dashboard")).context["my_pending"] == 0
