"""Activation services: each role setting, each refusal, groups, bulk, deactivate, cancel, mail."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ValidationError

from assignments import services
from assignments.authz import grants_for
from assignments.models import (
    Assignment,
    AssignmentKind,
    NotificationEvent,
    RecipientKind,
    RequestAction,
    RequestStatus,
    RolePolicyUserObjectPermission,
    RoleRequest,
)
from assignments.tasks import reconcile
from audit.models import AuditEvent
from tests.assignments.activation_support import (
    HOUR,
    PRA,
    activate,
    code_for,
    eligible_for,
    make_device,
    relax,
    set_policy,
)
from tests.concurrency import race
from tests.factories import assign, make_group, make_user, role

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def messages_of(error: ValidationError) -> str:
    return " ".join(error.value.messages)


def nothing_created(user):
    return (
        not RoleRequest.objects.filter(requested_by=user).exists()
        and not Assignment.objects.filter(principal_user=user, kind=AssignmentKind.ACTIVE).exists()
    )


def events(action):
    return AuditEvent.objects.filter(action=action)


# Without requirements ----------------------------------------------------------------------


def test_activation_without_requirements_is_in_force_at_once(eligible_user):
    relax(PRA)
    request = activate(eligible_user, justification="")
    assert request.status == RequestStatus.PROVISIONED
    activation = request.result_assignment
    assert activation.is_in_force(T0)
    assert (activation.start, activation.end) == (T0, T0 + HOUR)
    assert grants_for(eligible_user).can_manage_directory()


def test_activation_points_at_the_eligible_assignment(eligible_user):
    relax(PRA)
    eligible = eligible_for(eligible_user)
    request = activate(eligible_user)
    assert request.result_assignment.activated_from == eligible
    assert request.target_assignment == eligible


def test_activation_lasts_the_policy_maximum_by_default(eligible_user):
    relax(PRA, activation_max_duration=timedelta(hours=3))
    request = activate(eligible_user, duration=None)
    assert request.result_assignment.end == T0 + timedelta(hours=3)


def test_activation_is_audited(eligible_user):
    relax(PRA)
    request = activate(eligible_user)
    event = events("pim.request.activated").get()
    assert event.role_request_id == request.pk
    assert event.actor == eligible_user
    assert event.role == PRA


def test_activation_never_outlives_the_eligibility(eligible_user):
    relax(PRA)
    Assignment.objects.filter(pk=eligible_for(eligible_user).pk).update(
        end=T0 + timedelta(minutes=30)
    )
    request = activate(eligible_user, duration=HOUR)
    assert request.result_assignment.end == T0 + timedelta(minutes=30)


# Justification ------------------------------------------------------------------------------


def test_missing_justification_is_refused_when_required(eligible_user):
    relax(PRA, require_justification_on_activation=True)
    with pytest.raises(ValidationError) as error:
        activate(eligible_user, justification="   ")
    assert "A justification is required to activate Privileged Role Administrator." in (
        messages_of(error)
    )
    assert nothing_created(eligible_user)


def test_justification_is_kept_on_the_request_and_activation(eligible_user):
    relax(PRA, require_justification_on_activation=True)
    request = activate(eligible_user, justification="Incident 42")
    assert request.justification == "Incident 42"
    assert request.result_assignment.justification == "Incident 42"


# Ticket -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number, system",
    [("", ""), ("INC-1", ""), ("", "ServiceNow")],
    ids=["none", "no-system", "no-number"],
)
def test_missing_ticket_is_refused_when_required(eligible_user, number, system):
    relax(PRA, require_ticket_on_activation=True)
    with pytest.raises(ValidationError) as error:
        activate(eligible_user, ticket_number=number, ticket_system=system)
    assert "A ticket number and ticket system are required" in messages_of(error)
    assert nothing_created(eligible_user)


def test_ticket_is_recorded_when_given(eligible_user):
    relax(PRA, require_ticket_on_activation=True)
    request = activate(eligible_user, ticket_number="INC-1", ticket_system="ServiceNow")
    assert request.status == RequestStatus.PROVISIONED
    assert (request.result_assignment.ticket_number, request.ticket_system) == (
        "INC-1",
        "ServiceNow",
    )


# MFA ----------------------------------------------------------------------------------------


def test_activation_with_mfa_and_the_right_code(eligible_user):
    relax(PRA, require_mfa_on_activation=True)
    device = make_device(eligible_user)
    request = activate(eligible_user, mfa_code=code_for(device))
    assert request.status == RequestStatus.PROVISIONED


def test_wrong_mfa_code_is_refused_and_audited(eligible_user):
    relax(PRA, require_mfa_on_activation=True)
    device = make_device(eligible_user)
    wrong = f"{(int(code_for(device)) + 1) % 1_000_000:06d}"
    with pytest.raises(ValidationError) as error:
        activate(eligible_user, mfa_code=wrong)
    assert "The MFA code is wrong or was already used." in messages_of(error)
    assert events("pim.security.mfa_failed").filter(actor=eligible_user).count() == 1
    assert nothing_created(eligible_user)


def test_missing_mfa_code_is_refused(eligible_user):
    relax(PRA, require_mfa_on_activation=True)
    make_device(eligible_user)
    with pytest.raises(ValidationError) as error:
        activate(eligible_user, mfa_code="")
    assert error.value.message_dict == {"mfa_code": ["The MFA code is wrong or was already used."]}
    assert nothing_created(eligible_user)


def test_replayed_mfa_code_is_refused_and_audited(eligible_user, tree):
    relax(PRA, require_mfa_on_activation=True)
    relax("Contributor", require_mfa_on_activation=True)
    device = make_device(eligible_user)
    code = code_for(device)
    activate(eligible_user, mfa_code=code)
    with pytest.raises(ValidationError) as error:
        activate(eligible_user, "Contributor", mfa_code=code)
    assert "already used" in messages_of(error)
    assert events("pim.security.mfa_failed").count() == 1
    assert not Assignment.objects.filter(
        principal_user=eligible_user, role=role("Contributor"), kind=AssignmentKind.ACTIVE
    ).exists()


def test_mfa_is_asked_at_every_activation_not_once(eligible_user, clock):
    relax(PRA, require_mfa_on_activation=True)
    device = make_device(eligible_user)
    first = activate(eligible_user, mfa_code=code_for(device))
    services.request_deactivate(actor=eligible_user, assignment_id=first.result_assignment_id)
    clock.shift(timedelta(minutes=2))
    with pytest.raises(ValidationError) as error:
        activate(eligible_user, mfa_code="")
    assert error.value.message_dict == {"mfa_code": ["The MFA code is wrong or was already used."]}
    assert activate(eligible_user, mfa_code=code_for(device)).status == RequestStatus.PROVISIONED


def test_user_without_a_device_is_told_to_set_one_up(eligible_user):
    relax(PRA, require_mfa_on_activation=True)
    with pytest.raises(ValidationError) as error:
        activate(eligible_user, mfa_code="123456")
    assert "set up an authenticator app first" in messages_of(error)
    assert nothing_created(eligible_user)


def test_unconfirmed_device_does_not_count(eligible_user):
    relax(PRA, require_mfa_on_activation=True)
    device = make_device(eligible_user)
    device.confirmed = False
    device.save()
    with pytest.raises(ValidationError) as error:
        activate(eligible_user, mfa_code=code_for(device))
    assert "set up an authenticator app first" in messages_of(error)


def test_rule_problems_are_reported_before_the_mfa_code_is_spent(eligible_user):
    relax(PRA, require_mfa_on_activation=True, require_justification_on_activation=True)
    device = make_device(eligible_user)
    code = code_for(device)
    with pytest.raises(ValidationError) as error:
        activate(eligible_user, justification="", mfa_code=code)
    assert error.value.message_dict == {
        "justification": ["A justification is required to activate Privileged Role Administrator."]
    }
    assert not events("pim.security.mfa_failed").exists()
    # The same code still works once the justification is given.
    assert activate(eligible_user, mfa_code=code).status == RequestStatus.PROVISIONED


# Approval -----------------------------------------------------------------------------------


def test_activation_needing_approval_waits_and_grants_nothing(eligible_user):
    relax(PRA, require_approval=True, approval_window=timedelta(hours=24))
    request = activate(eligible_user)
    assert request.status == RequestStatus.PENDING_APPROVAL
    assert request.result_assignment is None
    assert request.approval_deadline == T0 + timedelta(hours=24)
    assert not grants_for(eligible_user).can_manage_directory()
    assert events("pim.request.submitted").filter(role_request_id=request.pk).count() == 1


def test_pending_activation_can_be_canceled(eligible_user):
    relax(PRA, require_approval=True)
    request = activate(eligible_user)
    canceled = services.request_cancel(actor=eligible_user, request_id=request.pk)
    assert canceled.status == RequestStatus.CANCELED
    assert events("pim.request.canceled").filter(role_request_id=request.pk).count() == 1


def test_activating_again_while_pending_is_refused(eligible_user):
    relax(PRA, require_approval=True)
    activate(eligible_user)
    with pytest.raises(ValidationError) as error:
        activate(eligible_user)
    assert "already active or requested" in messages_of(error)
    assert RoleRequest.objects.filter(requested_by=eligible_user).count() == 1


# Start and duration -------------------------------------------------------------------------


def test_future_start_is_scheduled_not_in_force(eligible_user):
    relax(PRA)
    start = T0 + timedelta(days=2)
    request = activate(eligible_user, start=start)
    assert request.status == RequestStatus.SCHEDULED
    assert request.result_assignment.start == start
    assert not grants_for(eligible_user).can_manage_directory()
    assert events("pim.request.scheduled").count() == 1


def test_start_a_few_minutes_ago_counts_as_now(eligible_user):
    relax(PRA)
    request = activate(eligible_user, start=T0 - timedelta(minutes=2))
    assert request.result_assignment.start == T0


@pytest.mark.parametrize(
    "start, message",
    [
        (T0 - timedelta(hours=1), "The start cannot be in the past."),
        (T0 + timedelta(days=30, minutes=1), "The start can be at most 30 days ahead."),
    ],
    ids=["past", "too-far-ahead"],
)
def test_bad_start_is_refused(eligible_user, start, message):
    relax(PRA)
    with pytest.raises(ValidationError) as error:
        activate(eligible_user, start=start)
    assert message in messages_of(error)
    assert nothing_created(eligible_user)


def test_start_thirty_days_ahead_is_accepted(eligible_user):
    relax(PRA)
    Assignment.objects.filter(pk=eligible_for(eligible_user).pk).update(end=T0 + timedelta(days=60))
    request = activate(eligible_user, start=T0 + timedelta(days=30))
    assert request.status == RequestStatus.SCHEDULED


def test_start_after_the_eligibility_ends_is_refused(eligible_user):
    relax(PRA)
    Assignment.objects.filter(pk=eligible_for(eligible_user).pk).update(end=T0 + timedelta(days=1))
    with pytest.raises(ValidationError) as error:
        activate(eligible_user, start=T0 + timedelta(days=2))
    assert "Your eligibility ends before that start." in messages_of(error)


def test_duration_beyond_the_maximum_is_refused(eligible_user):
    relax(PRA, activation_max_duration=timedelta(hours=8))
    with pytest.raises(ValidationError) as error:
        activate(eligible_user, duration=timedelta(hours=8, minutes=1))
    assert (
        "The settings of Privileged Role Administrator allow activations of at most 8 hours."
        in messages_of(error)
    )
    assert nothing_created(eligible_user)


@pytest.mark.parametrize(
    "duration", [timedelta(minutes=4), timedelta(0), timedelta(minutes=-30)], ids=str
)
def test_duration_under_five_minutes_is_refused(eligible_user, duration):
    relax(PRA)
    with pytest.raises(ValidationError) as error:
        activate(eligible_user, duration=duration)
    assert "An activation must last at least 5 minutes." in messages_of(error)
    assert nothing_created(eligible_user)


def test_every_broken_rule_is_reported_at_once(eligible_user):
    relax(PRA, require_justification_on_activation=True, require_ticket_on_activation=True)
    with pytest.raises(ValidationError) as error:
        activate(eligible_user, justification="", duration=timedelta(minutes=1))
    assert len(error.value.messages) == 3
    assert set(error.value.message_dict) == {"duration_hours", "justification", "ticket_number"}


# Already active -----------------------------------------------------------------------------


def test_activating_a_role_already_in_force_is_refused(eligible_user):
    relax(PRA)
    activate(eligible_user)
    with pytest.raises(ValidationError) as error:
        activate(eligible_user)
    assert "Privileged Role Administrator at Directory is already active or requested for you." in (
        messages_of(error)
    )
    assert Assignment.objects.filter(principal_user=eligible_user, kind="active").count() == 1


def test_activating_a_role_already_scheduled_is_refused(eligible_user):
    relax(PRA)
    activate(eligible_user, start=T0 + timedelta(hours=5))
    with pytest.raises(ValidationError) as error:
        activate(eligible_user)
    assert "Privileged Role Administrator at Directory is already active or requested for you." in (
        messages_of(error)
    )


def test_same_role_at_another_scope_is_not_a_duplicate(eligible_user, tree):
    relax("Contributor")
    activate(eligible_user, "Contributor", scope=tree["rg"])
    request = activate(eligible_user, "Contributor", scope=tree["vm"])
    assert request.result_assignment.scope == tree["vm"]


# Scope --------------------------------------------------------------------------------------


def test_resource_role_can_be_narrowed_to_a_scope_below(eligible_user, tree):
    relax("Contributor")
    request = activate(eligible_user, "Contributor", scope=tree["rg"])
    assert request.result_assignment.scope == tree["rg"]


def test_resource_role_cannot_be_widened_or_moved(eligible_user, tree):
    relax("Contributor")
    for scope in (tree["mg"], tree["other_sub"]):
        with pytest.raises(ValidationError) as error:
            activate(eligible_user, "Contributor", scope=scope)
        assert "is not within your eligible scope" in messages_of(error)
    assert nothing_created(eligible_user)


def test_directory_role_ignores_a_scope(eligible_user, tree):
    relax(PRA)
    request = activate(eligible_user, scope=tree["rg"])
    assert request.result_assignment.scope == tree["root"]


def test_policy_override_at_the_narrowed_scope_applies(eligible_user, tree):
    relax("Contributor")
    set_policy(
        "Contributor", scope=tree["rg"], require_approval=True, require_mfa_on_activation=False
    )
    request = activate(eligible_user, "Contributor", scope=tree["rg"])
    assert request.status == RequestStatus.PENDING_APPROVAL


# Groups -------------------------------------------------------------------------------------


def test_member_of_an_eligible_group_activates_for_themselves_only(tree):
    relax(PRA)
    member, colleague = make_user("gwen"), make_user("gus")
    assign(make_group("Ops", member, colleague), PRA, kind=AssignmentKind.ELIGIBLE)
    request = activate(member)
    activation = request.result_assignment
    assert activation.principal_user == member
    assert activation.principal_group is None
    assert grants_for(member).can_manage_directory()
    assert not grants_for(colleague).can_manage_directory()


def test_former_group_member_cannot_activate(tree):
    relax(PRA)
    member = make_user("gwen")
    group = make_group("Ops", member)
    assign(group, PRA, kind=AssignmentKind.ELIGIBLE)
    eligible = eligible_for(member)
    group.user_set.remove(member)
    with pytest.raises(ValidationError, match="not yours or is no longer in force"):
        services.request_activate(actor=member, eligible=eligible, justification="x")


# Foreign and unknown ids --------------------------------------------------------------------


def test_someone_elses_eligible_assignment_is_refused_and_audited(eligible_user, outsider):
    relax(PRA)
    theirs = eligible_for(eligible_user)
    with pytest.raises(ValidationError) as error:
        services.request_activate(actor=outsider, eligible=theirs, justification="x")
    assert "not yours" in messages_of(error)
    assert events("pim.security.foreign_object").filter(actor=outsider).count() == 1
    assert not grants_for(outsider).can_manage_directory()
    assert nothing_created(outsider)


def test_unknown_eligible_id_is_refused_without_a_security_event(outsider):
    with pytest.raises(ValidationError, match="not yours or is no longer in force"):
        services.get_own_eligible(outsider, 999_999)
    assert not events("pim.security.foreign_object").exists()


def test_an_active_assignment_cannot_be_activated(pra):
    mine = Assignment.objects.get(principal_user=pra)
    with pytest.raises(ValidationError, match="not yours or is no longer in force"):
        services.get_own_eligible(pra, mine.pk)


def test_an_eligibility_that_ended_cannot_be_activated(eligible_user, clock):
    relax(PRA)
    eligible = eligible_for(eligible_user)
    clock.move_to(eligible.end)
    with pytest.raises(ValidationError, match="not yours or is no longer in force"):
        services.request_activate(actor=eligible_user, eligible=eligible, justification="x")


# Bulk ---------------------------------------------------------------------------------------


def bulk(user, items, **kw):
    kw.setdefault("start", None)
    kw.setdefault("duration", HOUR)
    kw.setdefault("justification", "Change 7")
    return services.request_activate_many(actor=user, items=items, **kw)


def test_bulk_activation_with_one_failing_item(eligible_user, tree):
    relax(PRA)
    relax("Contributor", activation_max_duration=timedelta(minutes=30))
    pra_item = {"eligible_id": eligible_for(eligible_user).pk}
    contributor_item = {"eligible_id": eligible_for(eligible_user, "Contributor").pk}
    outcomes = bulk(eligible_user, [pra_item, contributor_item])
    assert outcomes[0].request.status == RequestStatus.PROVISIONED
    assert outcomes[1].request is None
    assert "allow activations of at most 30 minutes" in outcomes[1].errors[0]
    assert grants_for(eligible_user).can_manage_directory()


def test_bulk_activation_uses_one_mfa_code_for_all(eligible_user, tree):
    relax(PRA, require_mfa_on_activation=True)
    relax("Contributor", require_mfa_on_activation=True)
    device = make_device(eligible_user)
    items = [
        {"eligible_id": eligible_for(eligible_user).pk},
        {"eligible_id": eligible_for(eligible_user, "Contributor").pk, "scope": tree["rg"]},
    ]
    outcomes = bulk(eligible_user, items, mfa_code=code_for(device))
    assert [o.request.status for o in outcomes] == [RequestStatus.PROVISIONED] * 2
    assert outcomes[1].request.result_assignment.scope == tree["rg"]


def test_bulk_activation_with_a_wrong_code_activates_nothing(eligible_user):
    relax(PRA, require_mfa_on_activation=True)
    relax("Contributor")
    make_device(eligible_user)
    items = [
        {"eligible_id": eligible_for(eligible_user).pk},
        {"eligible_id": eligible_for(eligible_user, "Contributor").pk},
    ]
    outcomes = bulk(eligible_user, items, mfa_code="000000")
    assert all(o.request is None for o in outcomes)
    assert all("MFA code is wrong" in o.errors[0] for o in outcomes)
    assert events("pim.security.mfa_failed").count() == 1
    assert nothing_created(eligible_user)


def test_bulk_activation_reports_someone_elses_item_and_does_the_rest(eligible_user, outsider):
    relax(PRA)
    theirs = assign(outsider, "Reader", kind=AssignmentKind.ELIGIBLE)
    items = [{"eligible_id": theirs.pk}, {"eligible_id": eligible_for(eligible_user).pk}]
    outcomes = bulk(eligible_user, items)
    assert outcomes[0].request is None and "not yours" in outcomes[0].errors[0]
    assert outcomes[1].request.status == RequestStatus.PROVISIONED
    assert events("pim.security.foreign_object").count() == 1


def test_bulk_activation_failing_every_rule_does_not_spend_the_code(eligible_user):
    relax(PRA, require_mfa_on_activation=True, require_justification_on_activation=True)
    device = make_device(eligible_user)
    code = code_for(device)
    outcomes = bulk(
        eligible_user,
        [{"eligible_id": eligible_for(eligible_user).pk}],
        justification="",
        mfa_code=code,
    )
    assert "justification is required" in outcomes[0].errors[0]
    outcomes = bulk(eligible_user, [{"eligible_id": eligible_for(eligible_user).pk}], mfa_code=code)
    assert outcomes[0].request.status == RequestStatus.PROVISIONED


def test_double_submission_of_a_bulk_form_activates_once(eligible_user):
    relax(PRA)
    items = [{"eligible_id": eligible_for(eligible_user).pk}]
    bulk(eligible_user, items)
    second = bulk(eligible_user, items)
    assert "already active or requested" in second[0].errors[0]
    assert Assignment.objects.filter(principal_user=eligible_user, kind="active").count() == 1


# Deactivate ---------------------------------------------------------------------------------


def test_deactivation_ends_the_activation_at_once(eligible_user, clock):
    relax(PRA)
    activation = activate(eligible_user).result_assignment
    clock.shift(timedelta(minutes=10))
    request = services.request_deactivate(actor=eligible_user, assignment_id=activation.pk)
    activation.refresh_from_db()
    assert request.status == RequestStatus.REVOKED
    assert request.action == RequestAction.SELF_DEACTIVATE
    assert activation.end == T0 + timedelta(minutes=10)
    assert not grants_for(eligible_user).can_manage_directory()
    assert events("pim.request.deactivated").count() == 1


def test_deactivating_someone_elses_activation_is_refused(eligible_user, outsider):
    relax(PRA)
    activation = activate(eligible_user).result_assignment
    with pytest.raises(ValidationError, match="That activation is not yours"):
        services.request_deactivate(actor=outsider, assignment_id=activation.pk)
    assert grants_for(eligible_user).can_manage_directory()


def test_an_assignment_made_by_an_administrator_cannot_be_deactivated(pra):
    mine = Assignment.objects.get(principal_user=pra)
    with pytest.raises(ValidationError, match="That activation is not yours"):
        services.request_deactivate(actor=pra, assignment_id=mine.pk)


def test_deactivating_twice_is_refused(eligible_user, clock):
    relax(PRA)
    activation = activate(eligible_user).result_assignment
    clock.shift(timedelta(minutes=1))
    services.request_deactivate(actor=eligible_user, assignment_id=activation.pk)
    with pytest.raises(ValidationError) as error:
        services.request_deactivate(actor=eligible_user, assignment_id=activation.pk)
    assert "already ended" in messages_of(error)
    assert events("pim.request.deactivated").count() == 1


def test_after_deactivation_the_role_can_be_activated_again(eligible_user, clock):
    relax(PRA)
    activation = activate(eligible_user).result_assignment
    clock.shift(timedelta(minutes=1))
    services.request_deactivate(actor=eligible_user, assignment_id=activation.pk)
    assert activate(eligible_user).status == RequestStatus.PROVISIONED


# Cancel a scheduled activation --------------------------------------------------------------


def test_canceled_scheduled_activation_never_comes_into_force(
    eligible_user, clock, django_capture_on_commit_callbacks
):
    relax(PRA)
    start = T0 + timedelta(hours=2)
    request = activate(eligible_user, start=start)
    services.request_cancel(actor=eligible_user, request_id=request.pk)
    clock.move_to(start + timedelta(minutes=1))
    assert not grants_for(eligible_user).can_manage_directory()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        reconcile()
    assert not events("pim.assignment.ended").exists()
    assert mail.outbox == []


def test_canceling_twice_is_a_clear_refusal(eligible_user):
    relax(PRA, require_approval=True)
    request = activate(eligible_user)
    services.request_cancel(actor=eligible_user, request_id=request.pk)
    with pytest.raises(services.RequestConflict, match="already canceled"):
        services.request_cancel(actor=eligible_user, request_id=request.pk)


def test_someone_else_cannot_cancel_a_request(eligible_user, outsider):
    relax(PRA, require_approval=True)
    request = activate(eligible_user)
    with pytest.raises(ValidationError, match="Only the requester or an administrator can cancel"):
        services.request_cancel(actor=outsider, request_id=request.pk)
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING_APPROVAL


# Extend and renew ---------------------------------------------------------------------------


def test_extend_request_for_an_assignment_ending_within_14_days(eligible_user):
    eligible = eligible_for(eligible_user)
    Assignment.objects.filter(pk=eligible.pk).update(end=T0 + timedelta(days=10))
    request = services.request_extend(
        actor=eligible_user, assignment_id=eligible.pk, justification="Still on call"
    )
    assert request.action == RequestAction.SELF_EXTEND
    assert request.status == RequestStatus.PENDING_APPROVAL
    assert request.target_assignment == eligible


def test_extend_request_is_refused_more_than_14_days_before_the_end(eligible_user):
    eligible = eligible_for(eligible_user)  # ends in 30 days
    with pytest.raises(ValidationError, match="within 14 days"):
        services.request_extend(actor=eligible_user, assignment_id=eligible.pk, justification="x")


def test_extend_request_needs_a_justification(eligible_user):
    eligible = eligible_for(eligible_user)
    Assignment.objects.filter(pk=eligible.pk).update(end=T0 + timedelta(days=10))
    with pytest.raises(ValidationError, match="justification is required"):
        services.request_extend(actor=eligible_user, assignment_id=eligible.pk, justification="")
    assert not RoleRequest.objects.exists()


def test_extend_request_twice_is_refused(eligible_user):
    eligible = eligible_for(eligible_user)
    Assignment.objects.filter(pk=eligible.pk).update(end=T0 + timedelta(days=10))
    services.request_extend(actor=eligible_user, assignment_id=eligible.pk, justification="x")
    with pytest.raises(ValidationError, match="already have a request pending"):
        services.request_extend(actor=eligible_user, assignment_id=eligible.pk, justification="x")


def test_renew_request_for_an_assignment_ended_in_the_last_30_days(eligible_user, clock):
    eligible = eligible_for(eligible_user)
    clock.move_to(eligible.end + timedelta(days=29))
    request = services.request_renew(
        actor=eligible_user, assignment_id=eligible.pk, justification="Back on the project"
    )
    assert request.action == RequestAction.SELF_RENEW
    assert request.status == RequestStatus.PENDING_APPROVAL


def test_renew_request_is_refused_after_30_days(eligible_user, clock):
    eligible = eligible_for(eligible_user)
    clock.move_to(eligible.end + timedelta(days=31))
    with pytest.raises(ValidationError, match="last 30 days"):
        services.request_renew(actor=eligible_user, assignment_id=eligible.pk, justification="x")


def test_renew_request_is_refused_before_the_end(eligible_user):
    eligible = eligible_for(eligible_user)
    with pytest.raises(ValidationError, match="ended in the last 30 days can be renewed"):
        services.request_renew(actor=eligible_user, assignment_id=eligible.pk, justification="x")


def test_group_assignment_cannot_be_extended_by_a_member(tree):
    member = make_user("gwen")
    group_eligible = assign(
        make_group("Ops", member), PRA, kind=AssignmentKind.ELIGIBLE, end=T0 + timedelta(days=3)
    )
    with pytest.raises(ValidationError, match="That assignment is not yours or has ended"):
        services.request_extend(actor=member, assignment_id=group_eligible.pk, justification="x")


# Mail ---------------------------------------------------------------------------------------


def test_activation_mails_admins_requester_and_approvers(
    eligible_user, pra, approver, django_capture_on_commit_callbacks
):
    policy = relax(PRA)
    RolePolicyUserObjectPermission.objects.create(
        user=approver, permission=_approve_permission(), content_object=policy
    )
    with django_capture_on_commit_callbacks(execute=True):
        activate(eligible_user)
    by_address = {m.to[0]: m for m in mail.outbox}
    assert set(by_address) == {pra.email, eligible_user.email, approver.email}
    to_requester = by_address[eligible_user.email]
    assert "Privileged Role Administrator is active" in to_requester.subject
    assert "/my/requests/" in to_requester.body
    html = to_requester.alternatives[0][0]
    assert 'href="http' in html and "/my/requests/" in html
    assert "Erin Eligible activated Privileged Role Administrator" in by_address[pra.email].subject


def test_pending_activation_mail_tells_the_requester_it_waits(
    eligible_user, pra, django_capture_on_commit_callbacks
):
    relax(PRA, require_approval=True)
    with django_capture_on_commit_callbacks(execute=True):
        activate(eligible_user)
    to_requester = [m for m in mail.outbox if m.to == [eligible_user.email]][0]
    assert "waits for approval" in to_requester.subject


def test_activation_mail_follows_the_notification_settings(
    eligible_user, pra, django_capture_on_commit_callbacks
):
    policy = relax(PRA)
    notifications = policy.notifications
    notifications[NotificationEvent.ACTIVATED][RecipientKind.ADMIN]["enabled"] = False
    notifications[NotificationEvent.ACTIVATED][RecipientKind.ASSIGNEE]["additional"] = [
        "soc@example.com"
    ]
    set_policy(PRA, notifications=notifications)
    with django_capture_on_commit_callbacks(execute=True):
        activate(eligible_user)
    assert sorted(m.to[0] for m in mail.outbox) == ["erin@example.com", "soc@example.com"]


def test_requester_who_now_holds_an_admin_role_gets_one_mail(
    eligible_user, django_capture_on_commit_callbacks
):
    relax(PRA)
    with django_capture_on_commit_callbacks(execute=True):
        activate(eligible_user)
    assert [m.to for m in mail.outbox] == [[eligible_user.email]]


def _approve_permission():
    from django.contrib.auth.models import Permission

    return Permission.objects.get(codename="approve_rolepolicy")


# Double submission racing on PostgreSQL ------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("approval", [False, True], ids=["in-force", "pending"])
def test_two_submissions_at_the_same_moment_make_one_request(eligible_user, approval):
    relax(PRA, require_approval=approval)
    eligible = eligible_for(eligible_user)

    def submit():
        return services.request_activate(
            actor=eligible_user, eligible=eligible, duration=HOUR, justification="x"
        )

    results = race(submit, submit)
    assert sum(isinstance(result, RoleRequest) for result in results) == 1
    refusal = next(result for result in results if isinstance(result, ValidationError))
    assert "already" in " ".join(refusal.messages)
    assert RoleRequest.objects.filter(requested_by=eligible_user).count() == 1
    assert Assignment.objects.filter(activated_from=eligible).count() == (0 if approval else 1)
