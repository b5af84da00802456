"""Who decides a request, what a decision does, and bulk decisions."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from django_q.models import Schedule

from approvals import authz as approvals_authz
from approvals import services
from approvals.models import ApprovalDecision, Decision
from approvals.services import DecisionConflict, Outcome
from approvals.timeline import request_timeline
from assignments import services as assignment_services
from assignments.authz import grants_for
from assignments.models import (
    Assignment,
    AssignmentKind,
    RequestAction,
    RequestStatus,
    RoleRequest,
)
from audit.models import AuditEvent
from pim_portal import timekeeper
from tests.approvals.conftest import CONTRIBUTOR, PRA, needs_approval, new_requester, submit
from tests.factories import assign, make_group, make_user


def t0() -> datetime:
    """A whole-second moment just ahead, inside the personas' eligibility (30 days)."""
    return timezone.now().replace(microsecond=0) + timedelta(minutes=1)


pytestmark = pytest.mark.django_db


def approve(actor, request, justification="Checked with the on-call lead", **kw):
    return services.decision_record(
        actor=actor, request_id=request.pk, approve=True, justification=justification, **kw
    )


def deny(actor, request, justification="Not during the freeze"):
    return services.decision_record(
        actor=actor, request_id=request.pk, approve=False, justification=justification
    )


def audit_actions(request) -> list[str]:
    return list(
        AuditEvent.objects.filter(role_request_id=request.pk)
        .order_by("id")
        .values_list("action", flat=True)
    )


# --- Who approves -------------------------------------------------------------------------


def test_named_approver_may_decide(pending, approver):
    assert approvals_authz.may_decide(approver, pending)


def test_someone_not_named_may_not_decide(pending, outsider):
    assert not approvals_authz.may_decide(outsider, pending)


def test_member_of_an_approver_group_may_decide(eligible_user, tree):
    member = make_user("gail")
    needs_approval(PRA, groups=[make_group("Approvers", member)])
    request = submit(eligible_user)
    assert approvals_authz.may_decide(member, request)


def test_named_approvers_replace_the_administrators(pending, pra):
    assert not approvals_authz.may_decide(pra, pending)


def test_directory_role_without_approvers_is_decided_by_pra_and_global_admin(
    eligible_user, pra, global_admin, approver
):
    needs_approval(PRA)
    request = submit(eligible_user)
    assert approvals_authz.may_decide(pra, request)
    assert approvals_authz.may_decide(global_admin, request)
    assert not approvals_authz.may_decide(approver, request)


def test_only_in_force_administrators_decide_when_no_approvers_are_named(eligible_user, tree):
    lapsed_admin = make_user("larry")
    assign(
        lapsed_admin,
        PRA,
        start=datetime(2020, 1, 1, tzinfo=UTC),
        end=datetime(2020, 2, 1, tzinfo=UTC),
    )
    needs_approval(PRA)
    request = submit(eligible_user)
    assert not approvals_authz.may_decide(lapsed_admin, request)


def test_requester_never_decides_own_request_even_as_named_approver(eligible_user, tree):
    needs_approval(PRA, approvers=[eligible_user])
    request = submit(eligible_user)
    assert not approvals_authz.may_decide(eligible_user, request)
    with pytest.raises(PermissionDenied, match="your own request"):
        approve(eligible_user, request)


def test_administrator_never_approves_own_request(pra, tree):
    needs_approval("Security Administrator")
    assign(pra, "Security Administrator", kind=AssignmentKind.ELIGIBLE)
    request = submit(pra, "Security Administrator")
    assert not approvals_authz.may_decide(pra, request)
    with pytest.raises(PermissionDenied):
        approve(pra, request)
    assert RoleRequest.objects.get(pk=request.pk).status == RequestStatus.PENDING_APPROVAL


def test_resource_role_approvers_come_from_the_most_specific_settings(eligible_user, tree):
    root_approver, production_approver = make_user("rita"), make_user("paul")
    needs_approval(CONTRIBUTOR, approvers=[root_approver])
    needs_approval(CONTRIBUTOR, scope=tree["sub"], approvers=[production_approver])
    request = submit(eligible_user, CONTRIBUTOR, scope=tree["sub"])
    assert approvals_authz.may_decide(production_approver, request)
    assert not approvals_authz.may_decide(root_approver, request)


def test_approvers_for_lists_exactly_who_may_decide(eligible_user, approver, pra, tree):
    member = make_user("gail")
    needs_approval(PRA, approvers=[approver, eligible_user], groups=[make_group("G", member)])
    request = submit(eligible_user)
    deciders = set(approvals_authz.approvers_for(request))
    assert deciders == {approver, member}
    for user in (approver, member, eligible_user, pra):
        assert approvals_authz.may_decide(user, request) == (user in deciders)


def test_approvers_for_falls_back_to_directory_administrators(eligible_user, pra, global_admin):
    needs_approval(PRA)
    request = submit(eligible_user)
    assert set(approvals_authz.approvers_for(request)) == {pra, global_admin}


def test_extend_request_is_decided_by_the_role_administrators(
    eligible_user, pra, approver, tree, resource_owner
):
    needs_approval(CONTRIBUTOR, approvers=[approver])
    request = extend_request(eligible_user, CONTRIBUTOR)
    assert approvals_authz.may_decide(resource_owner, request)
    assert not approvals_authz.may_decide(approver, request)
    assert not approvals_authz.may_decide(
        pra, request
    )  # PRA manages directory roles, not resources


def eligible_user_assignment(user, role_name):
    return Assignment.objects.get(principal_user=user, role__name=role_name)


def extend_request(user, role_name, days_left=3):
    assignment = eligible_user_assignment(user, role_name)
    Assignment.objects.filter(pk=assignment.pk).update(end=timezone.now() + timedelta(days_left))
    return assignment_services.request_extend(
        actor=user, assignment_id=assignment.pk, justification="Still on the project"
    )


def test_directory_extend_request_is_decided_by_pra(eligible_user, pra, approver, tree):
    needs_approval(PRA, approvers=[approver])
    request = extend_request(eligible_user, PRA)
    assert approvals_authz.may_decide(pra, request)
    assert not approvals_authz.may_decide(approver, request)


# --- What a decision does ------------------------------------------------------------------


def test_approval_puts_the_role_in_force_for_the_requested_duration_from_approval(
    eligible_user, approver, tree
):
    needs_approval(PRA, approvers=[approver])
    T0 = t0()
    with time_machine.travel(T0, tick=False):
        request = submit(eligible_user, duration=timedelta(hours=2))
    with time_machine.travel(T0 + timedelta(hours=5), tick=False):
        result = approve(approver, request)
        assert grants_for(eligible_user).can_manage_directory()
    assert result.outcome == Outcome.APPROVED
    activation = result.request.result_assignment
    assert activation.start == T0 + timedelta(hours=5)
    assert activation.end == T0 + timedelta(hours=7)
    assert result.request.status == RequestStatus.PROVISIONED


def test_approval_of_a_future_start_schedules_the_activation(eligible_user, approver, tree):
    needs_approval(PRA, approvers=[approver])
    T0 = t0()
    with time_machine.travel(T0, tick=False):
        request = submit(eligible_user, start=T0 + timedelta(days=1))
        result = approve(approver, request)
        assert not grants_for(eligible_user).can_manage_directory()
    assert result.request.status == RequestStatus.SCHEDULED
    assert result.request.result_assignment.start == T0 + timedelta(days=1)


def test_deny_ends_the_request_without_an_activation(pending, approver, eligible_user):
    result = deny(approver, pending)
    assert result.outcome == Outcome.DENIED
    pending.refresh_from_db()
    assert pending.status == RequestStatus.DENIED
    assert pending.result_assignment is None
    assert not grants_for(eligible_user).can_manage_directory()


def test_approvals_required_counts_distinct_approvers(eligible_user, tree):
    first, second = make_user("ann"), make_user("bob")
    needs_approval(PRA, approvers=[first, second], approvals_required=2)
    request = submit(eligible_user)
    assert approve(first, request).outcome == Outcome.APPROVAL_RECORDED
    assert RoleRequest.objects.get(pk=request.pk).status == RequestStatus.PENDING_APPROVAL
    with pytest.raises(DecisionConflict, match="already approved"):
        approve(first, request)
    assert approve(second, request).outcome == Outcome.APPROVED
    assert ApprovalDecision.objects.filter(request=request).count() == 2


def test_a_deny_after_an_approval_ends_the_request_as_denied(eligible_user, tree):
    first, second = make_user("ann"), make_user("bob")
    needs_approval(PRA, approvers=[first, second], approvals_required=2)
    request = submit(eligible_user)
    approve(first, request)
    assert deny(second, request).outcome == Outcome.DENIED
    assert RoleRequest.objects.get(pk=request.pk).status == RequestStatus.DENIED


def test_justification_is_required(pending, approver):
    with pytest.raises(ValidationError, match="Give a justification for your decision"):
        approve(approver, pending, justification="   ")
    assert not ApprovalDecision.objects.exists()


def test_deciding_a_decided_request_says_who_decided(pending, approver, tree):
    other = make_user("ann")
    needs_approval(PRA, approvers=[approver, other])
    approve(approver, pending)
    with pytest.raises(DecisionConflict, match="already approved by Alex Approver") as caught:
        deny(other, pending)
    assert caught.value.outcome == Outcome.ALREADY_DECIDED
    assert RoleRequest.objects.get(pk=pending.pk).status == RequestStatus.PROVISIONED


def test_deciding_twice_tells_the_approver_they_already_did(pending, approver):
    approve(approver, pending)
    with pytest.raises(DecisionConflict, match="You already decided"):
        approve(approver, pending)
    assert Assignment.objects.filter(activated_from__isnull=False).count() == 1


def test_deciding_a_canceled_request_is_refused(pending, approver, eligible_user):
    assignment_services.request_cancel(actor=eligible_user, request_id=pending.pk)
    with pytest.raises(DecisionConflict, match="canceled by its requester") as caught:
        approve(approver, pending)
    assert caught.value.outcome == Outcome.CANCELED


def test_deciding_without_being_an_approver_is_refused_and_audited(pending, outsider):
    with pytest.raises(PermissionDenied):
        approve(outsider, pending)
    event = AuditEvent.objects.get(action="pim.security.forbidden")
    assert event.actor == outsider
    assert event.role_request_id == pending.pk
    assert not ApprovalDecision.objects.exists()


def test_deciding_a_guessed_id_is_refused_and_audited(approver, db):
    with pytest.raises(PermissionDenied):
        services.decision_record(actor=approver, request_id=987654, approve=True, justification="x")
    assert AuditEvent.objects.filter(action="pim.security.forbidden", actor=approver).exists()


def test_each_decision_writes_one_audit_event(eligible_user, tree):
    first, second = make_user("ann"), make_user("bob")
    needs_approval(PRA, approvers=[first, second], approvals_required=2)
    request = submit(eligible_user)
    approve(first, request, justification="Fine by me")
    approve(second, request, justification="Also fine")
    assert audit_actions(request) == [
        "pim.request.submitted",
        "pim.request.approval_recorded",
        "pim.request.approved",
    ]
    messages = AuditEvent.objects.filter(role_request_id=request.pk).values_list(
        "message", flat=True
    )
    assert {"Fine by me", "Also fine"} <= set(messages)


def test_deny_writes_one_denied_event_with_the_reason(pending, approver):
    deny(approver, pending, justification="Use the break-glass account")
    event = AuditEvent.objects.get(role_request_id=pending.pk, action="pim.request.denied")
    assert event.message == "Use the break-glass account"
    assert audit_actions(pending) == ["pim.request.submitted", "pim.request.denied"]


def test_approval_after_the_eligibility_ended_fails_without_activation(
    pending, approver, eligible_user
):
    Assignment.objects.filter(pk=pending.target_assignment_id).update(end=timezone.now())
    result = approve(approver, pending)
    assert result.outcome == Outcome.FAILED
    assert result.request.status == RequestStatus.FAILED
    assert not Assignment.objects.filter(activated_from__isnull=False).exists()


def test_approval_after_the_requester_left_the_eligible_group_fails_without_activation(
    approver, pra_needs_alex
):
    member = make_user("gwen")
    group = make_group("Ops", member)
    assign(group, PRA, kind=AssignmentKind.ELIGIBLE)
    eligible = Assignment.objects.get(principal_group=group)
    request = assignment_services.request_activate(
        actor=member, eligible=eligible, duration=timedelta(hours=1), justification="Incident 7"
    )
    group.user_set.remove(member)
    result = approve(approver, request)
    assert result.outcome == Outcome.FAILED
    assert not Assignment.objects.filter(activated_from__isnull=False).exists()
    assert not grants_for(member).can_manage_directory()


def test_decision_stores_the_approver_and_reason(pending, approver):
    approve(approver, pending, justification="On call tonight")
    decision = ApprovalDecision.objects.get()
    assert (decision.approver, decision.decision, decision.justification) == (
        approver,
        Decision.APPROVE,
        "On call tonight",
    )


# --- Extend and renew ----------------------------------------------------------------------


def test_administrator_approves_extend_as_asked(eligible_user, pra, tree):
    request = extend_request(eligible_user, PRA)
    result = approve(pra, request)
    assert result.outcome == Outcome.APPROVED
    assignment = eligible_user_assignment(eligible_user, PRA)
    assert assignment.end == request.end


def test_administrator_changes_end_and_type_when_approving_renew(eligible_user, pra, tree):
    assignment = eligible_user_assignment(eligible_user, PRA)
    Assignment.objects.filter(pk=assignment.pk).update(
        start=timezone.now() - timedelta(days=60), end=timezone.now() - timedelta(days=2)
    )
    request = assignment_services.request_renew(
        actor=eligible_user, assignment_id=assignment.pk, justification="Back on the team"
    )
    new_end = timezone.now() + timedelta(days=10)
    result = approve(pra, request, end=new_end, kind=AssignmentKind.ACTIVE)
    renewed = result.request.result_assignment
    assert renewed.kind == AssignmentKind.ACTIVE
    assert renewed.end == new_end
    assert result.request.action == RequestAction.SELF_RENEW


def test_administrator_change_outside_the_settings_is_refused(eligible_user, pra, tree):
    request = extend_request(eligible_user, PRA)
    with pytest.raises(ValidationError, match="allow eligible assignments of at most"):
        approve(pra, request, end=timezone.now() + timedelta(days=4000))
    assert RoleRequest.objects.get(pk=request.pk).status == RequestStatus.PENDING_APPROVAL


def test_only_an_extend_or_renew_takes_a_new_end(pending, approver):
    with pytest.raises(ValidationError, match="Only an approved extend or renew"):
        approve(approver, pending, end=timezone.now() + timedelta(hours=1))


# --- Mail and tasks on submission ----------------------------------------------------------


def test_submission_mails_the_approvers_a_direct_link(
    eligible_user, approver, pra_needs_alex, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        request = submit(eligible_user)
    to_approver = [m for m in mail.outbox if m.to == [approver.email]]
    assert len(to_approver) == 1
    assert f"/approvals/requests/{request.pk}/" in to_approver[0].body
    assert "Approval needed" in to_approver[0].subject
    assert not [
        m for m in mail.outbox if "Approval needed" in m.subject and m.to != [approver.email]
    ]


def test_submission_schedules_nothing_the_time_engine_finds_the_deadline(
    eligible_user, pra_needs_alex, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        request = submit(eligible_user)
    assert not Schedule.objects.filter(name__startswith="pim: approval deadline").exists()
    work = {w.name: w for w in timekeeper.registered()}["approval deadlines"]
    assert work.next_due() == request.approval_deadline


def test_decision_mails_the_requester_and_the_other_approvers(
    eligible_user, approver, tree, django_capture_on_commit_callbacks
):
    other = make_user("ann")
    needs_approval(PRA, approvers=[approver, other])
    request = submit(eligible_user)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        approve(approver, request, justification="Go ahead")
    by_address = {m.to[0]: m for m in mail.outbox}
    assert set(by_address) == {eligible_user.email, other.email}
    assert "was approved" in by_address[eligible_user.email].subject
    assert "Go ahead" in by_address[eligible_user.email].body
    assert "No action needed" in by_address[other.email].subject


def test_a_recorded_approval_that_needs_more_mails_nobody(
    eligible_user, tree, django_capture_on_commit_callbacks
):
    first, second = make_user("ann"), make_user("bob")
    needs_approval(PRA, approvers=[first, second], approvals_required=2)
    request = submit(eligible_user)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        approve(first, request)
    assert mail.outbox == []


# --- Cancel --------------------------------------------------------------------------------


def test_pra_cancels_anyones_pending_request_and_the_requester_is_told(
    pending, pra, eligible_user, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.request_cancel(actor=pra, request_id=pending.pk)
    assert RoleRequest.objects.get(pk=pending.pk).status == RequestStatus.CANCELED
    assert AuditEvent.objects.filter(
        role_request_id=pending.pk, action="pim.request.canceled"
    ).exists()
    assert any(m.to == [eligible_user.email] and "canceled" in m.subject for m in mail.outbox)


def test_an_approver_may_not_cancel_someone_elses_request(pending, approver):
    with pytest.raises(PermissionDenied):
        services.request_cancel(actor=approver, request_id=pending.pk)
    assert AuditEvent.objects.filter(action="pim.security.forbidden", actor=approver).exists()
    assert RoleRequest.objects.get(pk=pending.pk).status == RequestStatus.PENDING_APPROVAL


def test_canceling_a_decided_request_says_so(pending, approver, pra):
    approve(approver, pending)
    with pytest.raises(DecisionConflict, match="already approved"):
        services.request_cancel(actor=pra, request_id=pending.pk)


# --- The inbox -----------------------------------------------------------------------------


def test_inbox_lists_what_the_approver_may_decide(pending, approver, tree):
    resource_request = submit(new_requester("rob", CONTRIBUTOR, tree["sub"]), CONTRIBUTOR)
    items = services.inbox_items(approver)
    assert [item.request.pk for item in items] == [pending.pk]
    assert items[0].can_decide and not items[0].can_cancel
    assert resource_request.pk not in [item.request.pk for item in items]


def test_inbox_never_shows_the_requester_their_own_request(eligible_user, tree):
    needs_approval(PRA, approvers=[eligible_user])
    submit(eligible_user)
    assert services.inbox_items(eligible_user) == []


def test_inbox_hides_what_the_approver_already_decided(eligible_user, tree):
    first, second = make_user("ann"), make_user("bob")
    needs_approval(PRA, approvers=[first, second], approvals_required=2)
    request = submit(eligible_user)
    approve(first, request)
    assert services.inbox_items(first) == []
    assert [i.request.pk for i in services.inbox_items(second)] == [request.pk]
    assert services.inbox_items(second)[0].approvals == 1


def test_pra_sees_every_pending_request_with_cancel_even_when_not_theirs(pending, pra):
    items = services.inbox_items(pra)
    assert [i.request.pk for i in items] == [pending.pk]
    assert items[0].can_cancel and not items[0].can_decide


def test_inbox_count_counts_only_what_waits_for_the_user(pending, approver, pra, outsider):
    assert services.inbox_count(approver) == 1
    assert services.inbox_count(pra) == 0
    assert services.inbox_count(outsider) == 0


def test_inbox_query_count_does_not_grow_with_rows(
    approver, tree, pra_needs_alex, django_assert_max_num_queries
):
    for n in range(3):
        submit(new_requester(f"user{n}"))
    # The viewer's grants and settings, the page, and its people by primary key (requester
    # and principal: a join of six tables cost PostgreSQL more to plan than to run).
    with django_assert_max_num_queries(6) as few:
        assert len(services.inbox_items(approver)) == 3
    for n in range(3, 15):
        submit(new_requester(f"user{n}"))
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(services.inbox_items(approver)) == 15


# --- Bulk ------------------------------------------------------------------------------------


def test_bulk_decision_reports_each_outcome(approver, pra, tree, pra_needs_alex):
    other = make_user("ann")
    needs_approval(PRA, approvers=[approver, other])
    fresh = [submit(new_requester(f"user{n}")) for n in range(3)]
    taken = submit(new_requester("taken"))
    approve(other, taken)
    lapsed = submit(new_requester("late"))
    RoleRequest.objects.filter(pk=lapsed.pk).update(approval_deadline=lapsed.created_at)
    someone_elses = submit(new_requester("rob", CONTRIBUTOR, tree["sub"]), CONTRIBUTOR)
    needs_approval(CONTRIBUTOR, approvers=[other])
    ids = [r.pk for r in fresh] + [taken.pk, lapsed.pk, someone_elses.pk, 999999]
    results = services.decisions_record_bulk(
        actor=approver, request_ids=ids, approve=True, justification="Change window"
    )
    assert [r.outcome for r in results] == [
        Outcome.APPROVED,
        Outcome.APPROVED,
        Outcome.APPROVED,
        Outcome.ALREADY_DECIDED,
        Outcome.LAPSED,
        Outcome.FORBIDDEN,
        Outcome.FORBIDDEN,
    ]
    assert services.bulk_summary(results) == (
        "3 approved; 1 was already decided by another approver; 1 had lapsed; "
        "2 were not yours to decide"
    )
    assert RoleRequest.objects.get(pk=lapsed.pk).status == RequestStatus.EXPIRED
    forbidden = AuditEvent.objects.filter(action="pim.security.forbidden", actor=approver)
    assert forbidden.count() == 2


def test_bulk_deny_denies_each_selected_request(approver, pra_needs_alex, tree):
    requests = [submit(new_requester(f"user{n}")) for n in range(2)]
    results = services.decisions_record_bulk(
        actor=approver,
        request_ids=[r.pk for r in requests],
        approve=False,
        justification="Freeze",
    )
    assert services.bulk_summary(results) == "2 denied"
    assert set(
        RoleRequest.objects.filter(pk__in=[r.pk for r in requests]).values_list("status", flat=True)
    ) == {RequestStatus.DENIED}


def test_bulk_decision_counts_a_repeated_id_once(pending, approver):
    results = services.decisions_record_bulk(
        actor=approver, request_ids=[pending.pk, pending.pk], approve=True, justification="ok"
    )
    assert len(results) == 1


def test_bulk_decision_without_justification_decides_nothing(pending, approver):
    with pytest.raises(ValidationError, match="Give a justification for your decision"):
        services.decisions_record_bulk(
            actor=approver, request_ids=[pending.pk], approve=True, justification=""
        )
    assert RoleRequest.objects.get(pk=pending.pk).status == RequestStatus.PENDING_APPROVAL


# --- More of who decides, and the timeline ---------------------------------------------------


def test_resource_owner_finds_an_extend_request_of_their_scope_in_the_inbox(
    eligible_user, resource_owner, approver, tree
):
    request = extend_request(eligible_user, CONTRIBUTOR)
    items = services.inbox_items(resource_owner)
    assert [(i.request.pk, i.can_decide) for i in items] == [(request.pk, True)]
    assert services.inbox_items(approver) == []


def test_owner_of_another_scope_does_not_decide_the_extend_request(eligible_user, tree):
    sandbox_owner = make_user("sandy")
    assign(sandbox_owner, "Owner", scope=tree["other_sub"], permanent=True)
    request = extend_request(eligible_user, CONTRIBUTOR)
    assert not approvals_authz.may_decide(sandbox_owner, request)
    assert services.inbox_items(sandbox_owner) == []


def test_extend_request_mails_the_role_administrators(
    eligible_user, resource_owner, tree, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        request = extend_request(eligible_user, CONTRIBUTOR)
    asked = [m for m in mail.outbox if "Approval needed" in m.subject]
    assert [m.to for m in asked] == [[resource_owner.email]]
    assert f"/approvals/requests/{request.pk}/" in asked[0].body


def test_settings_refuse_approval_of_a_resource_role_without_approvers(resource_owner, tree):
    from assignments.services import policy_update
    from tests.factories import role

    with pytest.raises(ValidationError, match="Name at least one approver"):
        policy_update(
            actor=resource_owner,
            role=role(CONTRIBUTOR),
            scope=tree["sub"],
            values={"require_approval": True},
        )


def test_timeline_shows_requested_decision_in_force_and_ended(pending, approver, eligible_user):
    result = approve(approver, pending, justification="Go")
    assignment_services.request_deactivate(
        actor=eligible_user, assignment_id=result.request.result_assignment_id
    )
    request = RoleRequest.objects.with_related().get(pk=pending.pk)
    titles = [entry.title for entry in request_timeline(request)]
    assert titles == ["Requested: activate", "Approved", "In force", "Ended"]


def test_timeline_of_a_lapsed_request_ends_with_the_lapse(pending):
    with time_machine.travel(pending.approval_deadline, tick=False):
        services.lapse_due()
    request = RoleRequest.objects.with_related().get(pk=pending.pk)
    titles = [entry.title for entry in request_timeline(request)]
    assert titles == ["Requested: activate", "Lapsed"]


def test_requester_canceling_their_own_request_tells_the_approvers_only(
    pending, approver, eligible_user, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assignment_services.request_cancel(actor=eligible_user, request_id=pending.pk)
    recipients = [m.to for m in mail.outbox]
    assert [approver.email] in recipients
    assert [eligible_user.email] not in recipients


def test_extend_approved_as_eligible_cannot_demote_the_last_global_administrator(pra, tree):
    gina = make_user("gina.last")
    only = assign(gina, "Global Administrator", end=timezone.now() + timedelta(days=3))
    request = assignment_services.request_extend(
        actor=gina, assignment_id=only.pk, justification="Still needed"
    )

    with pytest.raises(ValidationError, match="last active Global Administrator"):
        approve(pra, request, kind=AssignmentKind.ELIGIBLE)

    assert Assignment.objects.get(pk=only.pk).kind == AssignmentKind.ACTIVE
    assert RoleRequest.objects.get(pk=request.pk).status == RequestStatus.PENDING_APPROVAL


def test_extend_approved_with_an_earlier_end_cuts_the_activations_short(eligible_user, pra, tree):
    needs_approval(PRA, approvers=[], require_approval=False)
    request = extend_request(eligible_user, PRA, days_left=3)
    eligible = eligible_user_assignment(eligible_user, PRA)
    activation = submit(eligible_user, PRA, duration=timedelta(hours=8)).result_assignment
    earlier = timezone.now() + timedelta(hours=1)

    approve(pra, request, end=earlier)

    assert Assignment.objects.get(pk=eligible.pk).end == earlier
    assert Assignment.objects.get(pk=activation.pk).end == earlier
