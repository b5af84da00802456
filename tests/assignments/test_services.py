"""Administrator services: assignments and role settings, their rules, requests, audit and mail."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from assignments import queries, services
from assignments.models import (
    Assignment,
    AssignmentKind,
    RequestAction,
    RequestStatus,
    RolePolicy,
    RolePolicyGroupObjectPermission,
    RolePolicyUserObjectPermission,
    RoleRequest,
)
from assignments.tasks import reconcile
from audit.log import verify_chain
from audit.models import AuditEvent
from tests.concurrency import race
from tests.factories import assign, make_group, make_user, role

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ELIGIBLE, ACTIVE = AssignmentKind.ELIGIBLE, AssignmentKind.ACTIVE

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def clock():
    """Every test runs at T0, frozen; fixtures are made at T0 too (autouse runs first)."""
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def _create(actor, principals, role_name="User Administrator", **kw):
    values = {
        "scope": None,
        "kind": ELIGIBLE,
        "end": T0 + timedelta(days=30),
        "justification": "Project Falcon",
    }
    values.update(kw)
    return services.assignment_create(
        actor=actor, principals=principals, role=role(role_name), **values
    )


def _held(principal, role_name="User Administrator", **kw):
    """An assignment made directly, with the justification active assignments need."""
    kw.setdefault("justification", "Standing duty")
    return assign(principal, role_name, **kw)


def _events(action):
    return AuditEvent.objects.filter(action=action)


def _mail_to(address):
    return [m for m in mail.outbox if address in m.to]


# assignment_create --------------------------------------------------------------------------


def test_create_makes_one_principal_eligible(pra, outsider):
    [request] = _create(pra, [outsider], "Security Reader")
    assignment = request.result_assignment
    assert assignment.principal_user == outsider
    assert assignment.kind == ELIGIBLE
    assert assignment.start == T0
    assert assignment.end == T0 + timedelta(days=30)
    assert assignment.created_by == pra
    assert assignment in Assignment.objects.in_force()


def test_create_returns_a_provisioned_admin_assign_request(pra, outsider):
    [request] = _create(pra, [outsider], "Security Reader")
    assert request.action == RequestAction.ADMIN_ASSIGN
    assert request.status == RequestStatus.PROVISIONED
    assert request.principal_user == outsider
    assert request.requested_by == pra


def test_create_for_several_users_and_groups(pra):
    ann, ben = make_user("ann"), make_user("ben")
    group = make_group("Auditors")
    requests = _create(pra, [ann, ben, group], "Security Reader")
    assert len(requests) == 3
    held = Assignment.objects.filter(role__name="Security Reader")
    assert {a.principal for a in held} == {ann, ben, group}


def test_create_writes_one_request_per_principal(pra):
    _create(pra, [make_user("ann"), make_group("Auditors")], "Security Reader")
    assert RoleRequest.objects.filter(action=RequestAction.ADMIN_ASSIGN).count() == 2


def test_create_writes_one_audit_event_per_principal(pra):
    requests = _create(pra, [make_user("ann"), make_group("Auditors")], "Security Reader")
    events = _events("pim.assignment.created")
    assert events.count() == 2
    assert {e.role_request_id for e in events} == {r.pk for r in requests}
    assert all(e.actor == pra for e in events)
    assert verify_chain()[1] is None


def test_create_audit_event_records_the_assignment(pra, outsider):
    [request] = _create(pra, [outsider], "Security Reader")
    event = _events("pim.assignment.created").get()
    assert event.target_id == str(request.result_assignment.pk)
    assert event.principal == str(outsider)
    assert event.role == "Security Reader"
    assert event.scope == "/"
    assert event.after["kind"] == "eligible"


def test_create_places_a_directory_role_at_the_root_whatever_scope_is_given(pra, outsider, tree):
    [request] = _create(pra, [outsider], "Security Reader", scope=tree["sub"])
    assert request.result_assignment.scope == tree["root"]


def test_create_resource_role_at_the_given_scope(resource_owner, outsider, tree):
    [request] = _create(resource_owner, [outsider], "Contributor", scope=tree["rg"])
    assert request.result_assignment.scope == tree["rg"]


def test_create_refusal_lists_every_problem(pra, outsider):
    with pytest.raises(ValidationError) as refused:
        _create(
            pra, [outsider], kind=ACTIVE, start=T0 - timedelta(days=1), end=None, justification=""
        )
    messages = refused.value.messages
    assert len(messages) == 3
    assert any("start cannot be in the past" in m for m in messages)
    assert any("Permanent active assignments are not allowed" in m for m in messages)
    assert any("justification is required" in m for m in messages)


def test_create_refusal_writes_nothing(pra, outsider):
    before = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as refused:
        _create(pra, [outsider], end=None)
    assert refused.value.messages == [
        "Permanent eligible assignments are not allowed for User Administrator: "
        "set an end at most 365 days after the start."
    ]
    assert not Assignment.objects.filter(principal_user=outsider).exists()
    assert not RoleRequest.objects.exists()
    assert AuditEvent.objects.count() == before


def test_create_without_principals_is_refused(pra):
    with pytest.raises(ValidationError) as refused:
        _create(pra, [])
    assert refused.value.messages == ["Choose at least one user or group."]


def test_create_duplicate_is_refused(pra, outsider):
    _create(pra, [outsider])
    with pytest.raises(ValidationError) as refused:
        _create(pra, [outsider, make_user("ann")])
    assert refused.value.messages == [
        "Oscar Outsider already has an eligible assignment of User Administrator at Directory."
    ]
    assert Assignment.objects.filter(role__name="User Administrator").count() == 1


def test_create_with_the_same_principal_twice_makes_one_assignment(pra, outsider):
    requests = _create(pra, [outsider, outsider])
    assert len(requests) == 1
    assert Assignment.objects.filter(principal_user=outsider).count() == 1


def test_create_duplicate_of_an_upcoming_assignment_is_refused(pra, outsider):
    _create(pra, [outsider], start=T0 + timedelta(days=2), end=T0 + timedelta(days=10))
    with pytest.raises(ValidationError) as refused:
        _create(pra, [outsider])
    assert refused.value.messages == [
        "Oscar Outsider already has an eligible assignment of User Administrator at Directory."
    ]


def test_create_same_role_of_the_other_kind_is_allowed(pra, outsider):
    _create(pra, [outsider])
    _create(pra, [outsider], kind=ACTIVE)
    assert Assignment.objects.filter(principal_user=outsider).count() == 2


def test_create_again_after_the_previous_one_ended_is_allowed(pra, outsider, clock):
    _create(pra, [outsider], end=T0 + timedelta(hours=1))
    clock.shift(timedelta(hours=1))
    _create(pra, [outsider], end=T0 + timedelta(days=2))
    assert Assignment.objects.filter(principal_user=outsider).count() == 2


def test_create_with_a_future_start_is_scheduled(pra, outsider):
    start = T0 + timedelta(days=3)
    [request] = _create(pra, [outsider], start=start, end=start + timedelta(days=30))
    assert request.status == RequestStatus.SCHEDULED
    assert request.result_assignment.start == start


def test_scheduled_assignment_is_not_in_force_until_its_start(pra, outsider, clock):
    start = T0 + timedelta(days=3)
    [request] = _create(pra, [outsider], start=start, end=start + timedelta(days=30))
    assignment = request.result_assignment
    assert assignment not in Assignment.objects.in_force()
    clock.move_to(start - timedelta(seconds=1))
    assert assignment not in Assignment.objects.in_force()
    clock.move_to(start)
    assert assignment in Assignment.objects.in_force()


def test_create_start_a_moment_ago_is_taken_as_now(pra, outsider):
    [request] = _create(pra, [outsider], start=T0 - timedelta(minutes=2))
    assert request.result_assignment.start == T0
    assert request.status == RequestStatus.PROVISIONED


def test_create_active_refused_without_mfa_when_settings_require_it(pra, outsider):
    RolePolicy.objects.filter(role__name="User Administrator", scope=None).update(
        require_mfa_on_active_assignment=True
    )
    with pytest.raises(ValidationError) as refused:
        _create(pra, [outsider], kind=ACTIVE)
    assert refused.value.messages == [
        "Active assignments of User Administrator require you to confirm with an MFA code."
    ]
    _create(pra, [outsider], kind=ACTIVE, mfa_verified=True)


def test_create_follows_the_settings_of_the_scope(resource_owner, outsider, tree):
    RolePolicy.objects.create(
        role=role("Contributor"), scope=tree["sub"], eligible_expire_after_days=7
    )
    with pytest.raises(ValidationError) as refused:
        _create(resource_owner, [outsider], "Contributor", scope=tree["rg"])
    assert refused.value.messages == [
        "The settings of Contributor allow eligible assignments of at most 7 days."
    ]
    [request] = _create(
        resource_owner, [outsider], "Contributor", scope=tree["rg"], end=T0 + timedelta(days=7)
    )
    assert request.result_assignment.end == T0 + timedelta(days=7)


def test_create_mails_administrators_and_the_assignee(
    pra, outsider, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _create(pra, [outsider], "Security Reader")
    assert len(_mail_to(pra.email)) == 1
    assert len(_mail_to(outsider.email)) == 1


def test_create_mails_every_member_of_an_assigned_group(pra, django_capture_on_commit_callbacks):
    ann, ben = make_user("ann"), make_user("ben")
    with django_capture_on_commit_callbacks(execute=True):
        _create(pra, [make_group("Auditors", ann, ben)], "Security Reader")
    assert len(_mail_to(ann.email)) == 1
    assert len(_mail_to(ben.email)) == 1


def test_create_sends_nothing_before_commit(pra, outsider, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _create(pra, [outsider], "Security Reader")
    assert mail.outbox == []
    for callback in callbacks:  # the commit
        callback()
    assert len(_mail_to(outsider.email)) == 1


def test_create_does_not_mail_admins_when_their_setting_is_off(
    pra, outsider, django_capture_on_commit_callbacks
):
    policy = RolePolicy.objects.get(role__name="Security Reader", scope=None)
    policy.notifications = {"eligible_assigned": {"admin": {"enabled": False}}}
    policy.save()
    with django_capture_on_commit_callbacks(execute=True):
        _create(pra, [outsider], "Security Reader")
    assert _mail_to(pra.email) == []
    assert len(_mail_to(outsider.email)) == 1


def test_create_does_not_mail_the_assignee_when_the_setting_is_off(
    pra, outsider, django_capture_on_commit_callbacks
):
    policy = RolePolicy.objects.get(role__name="Security Reader", scope=None)
    policy.notifications = {"eligible_assigned": {"assignee": {"enabled": False}}}
    policy.save()
    with django_capture_on_commit_callbacks(execute=True):
        _create(pra, [outsider], "Security Reader")
    assert _mail_to(outsider.email) == []
    assert len(_mail_to(pra.email)) == 1


def test_create_active_follows_the_active_assigned_setting(
    pra, outsider, django_capture_on_commit_callbacks
):
    policy = RolePolicy.objects.get(role__name="Security Reader", scope=None)
    policy.notifications = {"active_assigned": {"assignee": {"enabled": False}}}
    policy.save()
    with django_capture_on_commit_callbacks(execute=True):
        _create(pra, [outsider], "Security Reader", kind=ACTIVE)
    assert _mail_to(outsider.email) == []


def test_create_mails_additional_recipients(pra, outsider, django_capture_on_commit_callbacks):
    policy = RolePolicy.objects.get(role__name="Security Reader", scope=None)
    policy.notifications = {
        "eligible_assigned": {"admin": {"default_recipients": False, "additional": ["soc@x.io"]}}
    }
    policy.save()
    with django_capture_on_commit_callbacks(execute=True):
        _create(pra, [outsider], "Security Reader")
    assert _mail_to(pra.email) == []
    assert len(_mail_to("soc@x.io")) == 1


def test_create_does_not_mail_an_eligible_administrator_as_admin(
    pra, eligible_user, outsider, django_capture_on_commit_callbacks
):
    # Erin is only eligible for Privileged Role Administrator: she manages nothing yet.
    with django_capture_on_commit_callbacks(execute=True):
        _create(pra, [outsider], "Security Reader")
    assert _mail_to(eligible_user.email) == []


def test_create_critical_only_skips_admin_mail_for_a_role_that_grants_nothing(
    pra, outsider, django_capture_on_commit_callbacks
):
    policy = RolePolicy.objects.get(role__name="Security Reader", scope=None)
    policy.notifications = {"eligible_assigned": {"admin": {"critical_only": True}}}
    policy.save()
    with django_capture_on_commit_callbacks(execute=True):
        _create(pra, [outsider], "Security Reader")
    assert _mail_to(pra.email) == []


def test_create_critical_only_mails_admins_for_a_privileged_role(
    pra, outsider, django_capture_on_commit_callbacks
):
    policy = RolePolicy.objects.get(role__name="Privileged Role Administrator", scope=None)
    policy.notifications = {"eligible_assigned": {"admin": {"critical_only": True}}}
    policy.save()
    with django_capture_on_commit_callbacks(execute=True):
        _create(pra, [outsider], "Privileged Role Administrator")
    assert len(_mail_to(pra.email)) == 1


def test_create_notify_false_sends_no_mail(pra, outsider, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _create(pra, [outsider], "Security Reader", notify=False)
    assert mail.outbox == []


# assignment_remove --------------------------------------------------------------------------


def test_remove_ends_the_assignment_now(pra, outsider, clock):
    held = _held(
        outsider, "User Administrator", start=T0 - timedelta(days=1), end=T0 + timedelta(days=9)
    )
    clock.shift(timedelta(hours=2))
    removed = services.assignment_remove(actor=pra, assignment=held, justification="Left team")
    now = T0 + timedelta(hours=2)
    assert removed.end == now
    assert removed.ended_by == pra
    assert held not in Assignment.objects.in_force()


def test_remove_writes_a_request_and_an_audit_event(pra, outsider):
    held = _held(outsider, "User Administrator")
    services.assignment_remove(actor=pra, assignment=held, justification="Left team")
    request = RoleRequest.objects.get(action=RequestAction.ADMIN_REMOVE)
    assert request.target_assignment == held
    event = _events("pim.assignment.removed").get()
    assert event.role_request_id == request.pk
    assert event.before["end"] != event.after["end"]
    assert event.message == "Left team"


def test_remove_of_an_upcoming_assignment_cancels_it(pra, outsider, clock):
    start = T0 + timedelta(days=2)
    held = _held(outsider, "User Administrator", start=start, end=start + timedelta(days=5))
    services.assignment_remove(actor=pra, assignment=held)
    held.refresh_from_db()
    assert held.end == held.start
    clock.move_to(start + timedelta(hours=1))
    assert held not in Assignment.objects.in_force()


def test_remove_of_a_scheduled_assignment_cancels_its_request_and_is_never_reported_started(
    pra, outsider, clock
):
    start = T0 + timedelta(days=2)
    (request,) = _create(
        pra, [outsider], start=start, end=start + timedelta(days=5), justification="Cutover"
    )
    services.assignment_remove(actor=pra, assignment=request.result_assignment)
    clock.move_to(start + timedelta(days=6))
    reconcile()
    request.refresh_from_db()
    assert request.status == RequestStatus.CANCELED
    assert not _events("pim.assignment.started").exists()
    assert not _events("pim.assignment.ended").exists()


def test_remove_ends_activations_made_from_the_eligible_assignment(pra, outsider):
    eligible = _held(outsider, "User Administrator", kind=ELIGIBLE)
    activation = _held(
        outsider,
        "User Administrator",
        kind=ACTIVE,
        end=T0 + timedelta(hours=4),
        activated_from=eligible,
    )
    services.assignment_remove(actor=pra, assignment=eligible)
    activation.refresh_from_db()
    assert activation.end == T0
    assert activation not in Assignment.objects.in_force()
    assert _events("pim.assignment.removed").count() == 2


def test_remove_leaves_other_active_assignments_alone(pra, outsider):
    eligible = _held(outsider, "User Administrator", kind=ELIGIBLE)
    other = _held(outsider, "User Administrator", kind=ACTIVE, end=T0 + timedelta(hours=4))
    services.assignment_remove(actor=pra, assignment=eligible)
    other.refresh_from_db()
    assert other.end == T0 + timedelta(hours=4)


def test_remove_last_active_global_administrator_is_refused(pra, global_admin):
    held = Assignment.objects.get(principal_user=global_admin)
    with pytest.raises(ValidationError) as refused:
        services.assignment_remove(actor=pra, assignment=held)
    assert "last active Global Administrator" in refused.value.messages[0]
    held.refresh_from_db()
    assert held.end is None


def test_remove_global_administrator_allowed_when_another_remains(pra, global_admin):
    assign(make_user("gary"), "Global Administrator", permanent=True)
    held = Assignment.objects.get(principal_user=global_admin)
    services.assignment_remove(actor=pra, assignment=held)
    assert held not in Assignment.objects.in_force()


def test_remove_global_administrator_refused_when_the_other_one_is_disabled(pra, global_admin):
    assign(make_user("gary", is_active=False), "Global Administrator", permanent=True)
    held = Assignment.objects.get(principal_user=global_admin)
    with pytest.raises(ValidationError) as refused:
        services.assignment_remove(actor=pra, assignment=held)
    assert refused.value.messages == [
        "Gina Global holds the last active Global Administrator assignment: "
        "assign another Global Administrator before removing this one."
    ]


def test_remove_eligible_global_administrator_refused_when_its_activation_is_the_last(
    pra, outsider
):
    eligible = _held(outsider, "Global Administrator", kind=ELIGIBLE)
    activation = _held(
        outsider,
        "Global Administrator",
        kind=ACTIVE,
        end=T0 + timedelta(hours=4),
        activated_from=eligible,
    )
    with pytest.raises(ValidationError) as refused:
        services.assignment_remove(actor=pra, assignment=eligible)
    assert "last active Global Administrator" in refused.value.messages[0]
    activation.refresh_from_db()
    assert activation.is_in_force(T0)


def test_remove_already_ended_is_refused(pra, outsider):
    held = _held(
        outsider, "User Administrator", start=T0 - timedelta(days=2), end=T0 - timedelta(days=1)
    )
    with pytest.raises(ValidationError) as refused:
        services.assignment_remove(actor=pra, assignment=held)
    assert refused.value.messages == ["This assignment has already ended."]


# assignment_update --------------------------------------------------------------------------


def test_update_moves_the_end_of_an_assignment_in_force(pra, outsider):
    held = _held(
        outsider, "User Administrator", start=T0 - timedelta(days=1), end=T0 + timedelta(days=5)
    )
    new_end = T0 + timedelta(days=20)
    updated = services.assignment_update(actor=pra, assignment=held, start=None, end=new_end)
    assert updated.end == new_end
    assert updated.start == T0 - timedelta(days=1)


def test_update_keeps_the_start_of_an_assignment_in_force(pra, outsider):
    start = T0 - timedelta(days=1)
    held = _held(outsider, "User Administrator", start=start, end=T0 + timedelta(days=5))
    updated = services.assignment_update(
        actor=pra, assignment=held, start=T0 + timedelta(days=1), end=T0 + timedelta(days=9)
    )
    assert updated.start == start


def test_update_moves_the_start_of_an_upcoming_assignment(pra, outsider):
    held = _held(
        outsider, "User Administrator", start=T0 + timedelta(days=1), end=T0 + timedelta(days=5)
    )
    new_start = T0 + timedelta(days=2)
    updated = services.assignment_update(
        actor=pra, assignment=held, start=new_start, end=T0 + timedelta(days=6)
    )
    assert updated.start == new_start


def test_update_writes_request_and_audit_before_after(pra, outsider):
    held = _held(outsider, "User Administrator", end=T0 + timedelta(days=5))
    services.assignment_update(actor=pra, assignment=held, start=None, end=T0 + timedelta(days=6))
    request = RoleRequest.objects.get(action=RequestAction.ADMIN_UPDATE)
    event = _events("pim.assignment.updated").get()
    assert event.role_request_id == request.pk
    assert event.before["end"] != event.after["end"]


def test_update_end_in_the_past_is_refused(pra, outsider):
    held = _held(
        outsider, "User Administrator", start=T0 - timedelta(days=1), end=T0 + timedelta(days=5)
    )
    with pytest.raises(ValidationError) as refused:
        services.assignment_update(
            actor=pra, assignment=held, start=None, end=T0 - timedelta(hours=1)
        )
    assert any("end must be in the future" in m for m in refused.value.messages)


def test_update_longer_than_settings_allow_is_refused(pra, outsider):
    held = _held(outsider, "User Administrator", end=T0 + timedelta(days=5))
    with pytest.raises(ValidationError) as refused:
        services.assignment_update(
            actor=pra, assignment=held, start=None, end=T0 + timedelta(days=400)
        )
    assert refused.value.messages == [
        "The settings of User Administrator allow active assignments of at most 180 days."
    ]


def test_update_of_an_ended_assignment_is_refused(pra, outsider):
    held = _held(
        outsider, "User Administrator", start=T0 - timedelta(days=2), end=T0 - timedelta(days=1)
    )
    with pytest.raises(ValidationError) as refused:
        services.assignment_update(
            actor=pra, assignment=held, start=None, end=T0 + timedelta(days=1)
        )
    assert refused.value.messages == ["This assignment has ended: renew it instead."]


def test_update_shortening_last_global_administrator_to_an_end_is_refused(pra, global_admin):
    RolePolicy.objects.filter(role__name="Global Administrator").update(allow_permanent_active=True)
    held = Assignment.objects.get(principal_user=global_admin)
    with pytest.raises(ValidationError) as refused:
        services.assignment_update(
            actor=pra,
            assignment=held,
            start=None,
            end=T0 + timedelta(days=1),
            justification="Rotating the break-glass account",
        )
    assert "last active Global Administrator" in " ".join(refused.value.messages)
    held.refresh_from_db()
    assert held.end is None


def test_update_shortening_an_eligible_assignment_ends_its_activations_with_it(pra, outsider):
    eligible = _held(outsider, "User Administrator", kind=ELIGIBLE, end=T0 + timedelta(days=5))
    activation = _held(
        outsider,
        "User Administrator",
        kind=ACTIVE,
        end=T0 + timedelta(hours=8),
        activated_from=eligible,
    )
    services.assignment_update(
        actor=pra, assignment=eligible, start=None, end=T0 + timedelta(hours=1)
    )
    activation.refresh_from_db()
    assert activation.end == T0 + timedelta(hours=1)
    assert activation not in Assignment.objects.in_force(T0 + timedelta(hours=1))


# assignment_extend --------------------------------------------------------------------------


def test_extend_moves_the_end_later(pra, outsider):
    held = _held(outsider, "User Administrator", end=T0 + timedelta(days=5))
    extended = services.assignment_extend(
        actor=pra, assignment=held, end=T0 + timedelta(days=60), justification="Still needed"
    )
    assert extended.end == T0 + timedelta(days=60)
    request = RoleRequest.objects.get(action=RequestAction.ADMIN_EXTEND)
    assert _events("pim.assignment.extended").get().role_request_id == request.pk


def test_extend_to_an_earlier_end_is_refused(pra, outsider):
    held = _held(outsider, "User Administrator", end=T0 + timedelta(days=5))
    with pytest.raises(ValidationError) as refused:
        services.assignment_extend(actor=pra, assignment=held, end=T0 + timedelta(days=4))
    assert refused.value.messages == ["The new end must be later than the current end."]


def test_extend_beyond_the_settings_is_refused(pra, outsider):
    held = _held(outsider, "User Administrator", end=T0 + timedelta(days=5))
    with pytest.raises(ValidationError) as refused:
        services.assignment_extend(actor=pra, assignment=held, end=T0 + timedelta(days=366))
    assert refused.value.messages == [
        "The settings of User Administrator allow active assignments of at most 180 days."
    ]


def test_extend_of_a_permanent_assignment_is_refused(pra, outsider):
    held = _held(outsider, "User Administrator", permanent=True)
    with pytest.raises(ValidationError) as refused:
        services.assignment_extend(actor=pra, assignment=held, end=T0 + timedelta(days=6))
    assert "permanent" in refused.value.messages[0]


def test_extend_of_an_ended_assignment_is_refused(pra, outsider):
    held = _held(
        outsider, "User Administrator", start=T0 - timedelta(days=2), end=T0 - timedelta(days=1)
    )
    with pytest.raises(ValidationError) as refused:
        services.assignment_extend(actor=pra, assignment=held, end=T0 + timedelta(days=6))
    assert "renew it instead" in refused.value.messages[0]


# assignment_renew ---------------------------------------------------------------------------


def test_renew_gives_the_role_again_as_a_new_assignment(pra, outsider):
    old = _held(
        outsider, "User Administrator", start=T0 - timedelta(days=9), end=T0 - timedelta(days=1)
    )
    renewed = services.assignment_renew(
        actor=pra, assignment=old, start=None, end=T0 + timedelta(days=30), justification="Again"
    )
    assert renewed.pk != old.pk
    assert renewed.principal_user == outsider
    assert renewed.start == T0
    assert renewed in Assignment.objects.in_force()
    request = RoleRequest.objects.get(action=RequestAction.ADMIN_RENEW)
    assert request.target_assignment == old
    assert request.result_assignment == renewed
    assert request.status == RequestStatus.PROVISIONED
    assert _events("pim.assignment.renewed").get().target_id == str(renewed.pk)


def test_renew_with_a_future_start_is_scheduled(pra, outsider):
    old = _held(
        outsider, "User Administrator", start=T0 - timedelta(days=9), end=T0 - timedelta(days=1)
    )
    start = T0 + timedelta(days=2)
    services.assignment_renew(
        actor=pra, assignment=old, start=start, end=start + timedelta(days=3), justification="Again"
    )
    request = RoleRequest.objects.get(action=RequestAction.ADMIN_RENEW)
    assert request.status == RequestStatus.SCHEDULED


def test_renew_of_an_assignment_not_ended_is_refused(pra, outsider):
    held = _held(outsider, "User Administrator", end=T0 + timedelta(days=5))
    with pytest.raises(ValidationError) as refused:
        services.assignment_renew(
            actor=pra, assignment=held, start=None, end=T0 + timedelta(days=30)
        )
    assert "extend it instead" in refused.value.messages[0]


def test_renew_when_the_principal_holds_the_role_again_is_refused(pra, outsider):
    old = _held(
        outsider, "User Administrator", start=T0 - timedelta(days=9), end=T0 - timedelta(days=1)
    )
    _held(outsider, "User Administrator", end=T0 + timedelta(days=3))
    with pytest.raises(ValidationError) as refused:
        services.assignment_renew(
            actor=pra, assignment=old, start=None, end=T0 + timedelta(days=30), justification="x"
        )
    assert refused.value.messages == ["Oscar Outsider already holds this role again."]


def test_renew_follows_the_settings(pra, outsider):
    old = _held(
        outsider, "User Administrator", start=T0 - timedelta(days=9), end=T0 - timedelta(days=1)
    )
    with pytest.raises(ValidationError) as refused:
        services.assignment_renew(
            actor=pra, assignment=old, start=None, end=None, justification="Again"
        )
    assert "Permanent active assignments are not allowed" in refused.value.messages[0]


# policy_update / policy_reset ---------------------------------------------------------------


def test_policy_update_saves_values(pra):
    policy = services.policy_update(
        actor=pra,
        role=role("Security Reader"),
        values={
            "activation_max_duration": timedelta(hours=2),
            "require_ticket_on_activation": True,
        },
    )
    policy.refresh_from_db()
    assert policy.activation_max_duration == timedelta(hours=2)
    assert policy.require_ticket_on_activation
    assert policy.updated_by == pra


def test_policy_update_audits_before_and_after(pra):
    services.policy_update(
        actor=pra,
        role=role("Security Reader"),
        values={"activation_max_duration": timedelta(hours=2)},
    )
    event = _events("pim.policy.updated").get()
    assert event.before["activation_max_duration"] == "8:00:00"
    assert event.after["activation_max_duration"] == "2:00:00"
    assert event.role == "Security Reader"


def test_policy_update_stores_approvers_as_object_permissions(pra, approver):
    policy = services.policy_update(
        actor=pra,
        role=role("Security Reader"),
        values={"require_approval": True},
        approver_users=[approver],
    )
    assert approver.has_perm("assignments.approve_rolepolicy", policy)
    assert not pra.has_perm("assignments.approve_rolepolicy", policy)
    assert RolePolicyUserObjectPermission.objects.filter(
        content_object=policy, user=approver
    ).exists()


def test_policy_update_stores_group_approvers_as_object_permissions(pra):
    member = make_user("mia")
    group = make_group("Approvers", member)
    policy = services.policy_update(
        actor=pra,
        role=role("Security Reader"),
        values={"require_approval": True},
        approver_groups=[group],
    )
    assert RolePolicyGroupObjectPermission.objects.filter(
        content_object=policy, group=group
    ).exists()
    assert member.has_perm("assignments.approve_rolepolicy", policy)


def test_policy_update_replaces_approvers(pra, approver):
    other = make_user("otto")
    target = role("Security Reader")
    services.policy_update(
        actor=pra, role=target, values={"require_approval": True}, approver_users=[approver]
    )
    policy = services.policy_update(
        actor=pra, role=target, values={"require_approval": True}, approver_users=[other]
    )
    users, groups = queries.policy_approvers(policy)
    assert users == [other]
    assert groups == []
    assert _events("pim.policy.updated").order_by("id").last().before["approvers"] == ["user:alex"]


def test_policy_update_resource_role_approval_without_approvers_is_refused(resource_owner, tree):
    with pytest.raises(ValidationError, match="Name at least one approver"):
        services.policy_update(
            actor=resource_owner,
            role=role("Contributor"),
            scope=tree["sub"],
            values={"require_approval": True},
        )
    assert not RolePolicy.objects.filter(scope=tree["sub"]).exists()


def test_policy_update_cannot_drop_approvers_while_approval_stays_on(
    resource_owner, approver, tree
):
    contributor = role("Contributor")
    services.policy_update(
        actor=resource_owner,
        role=contributor,
        scope=tree["sub"],
        values={"require_approval": True},
        approver_users=[approver],
    )
    with pytest.raises(ValidationError, match="Name at least one approver"):
        services.policy_update(
            actor=resource_owner,
            role=contributor,
            scope=tree["sub"],
            values={"activation_max_duration": timedelta(hours=1)},
        )
    policy = RolePolicy.objects.get(role=contributor, scope=tree["sub"])
    assert queries.policy_approvers(policy)[0] == [approver]


def test_policy_update_directory_role_approval_without_approvers_is_allowed(pra):
    policy = services.policy_update(
        actor=pra, role=role("Global Administrator"), values={"require_approval": True}
    )
    assert policy.require_approval


def test_policy_update_of_a_directory_role_ignores_the_scope(pra, tree):
    policy = services.policy_update(
        actor=pra,
        role=role("Security Reader"),
        scope=tree["sub"],
        values={"activation_max_duration": timedelta(hours=3)},
    )
    assert policy.scope is None


def test_policy_update_at_a_scope_starts_from_the_inherited_values(resource_owner, tree):
    contributor = role("Contributor")
    RolePolicy.objects.filter(role=contributor, scope=None).update(
        activation_max_duration=timedelta(hours=3), require_ticket_on_activation=True
    )
    policy = services.policy_update(
        actor=resource_owner,
        role=contributor,
        scope=tree["rg"],
        values={"eligible_expire_after_days": 30},
    )
    assert policy.scope == tree["rg"]
    assert policy.eligible_expire_after_days == 30
    assert policy.activation_max_duration == timedelta(hours=3)
    assert policy.require_ticket_on_activation
    role_wide = RolePolicy.objects.get(role=contributor, scope=None)
    assert role_wide.eligible_expire_after_days == 365


def test_policy_update_at_a_scope_applies_below_it(resource_owner, tree):
    contributor = role("Contributor")
    services.policy_update(
        actor=resource_owner,
        role=contributor,
        scope=tree["sub"],
        values={"eligible_expire_after_days": 30},
    )
    assert (
        RolePolicy.objects.effective_for(contributor, tree["vm"]).eligible_expire_after_days == 30
    )


def test_policy_update_unknown_setting_is_refused(pra):
    with pytest.raises(ValueError):
        services.policy_update(actor=pra, role=role("Security Reader"), values={"colour": "red"})


def test_policy_reset_drops_the_scope_settings(resource_owner, tree):
    contributor = role("Contributor")
    services.policy_update(
        actor=resource_owner,
        role=contributor,
        scope=tree["sub"],
        values={"eligible_expire_after_days": 30},
    )
    services.policy_reset(actor=resource_owner, role=contributor, scope=tree["sub"])
    assert not RolePolicy.objects.filter(role=contributor, scope=tree["sub"]).exists()
    effective = RolePolicy.objects.effective_for(contributor, tree["rg"])
    assert effective.scope_id is None


def test_policy_reset_audits_the_removed_settings(resource_owner, tree):
    contributor = role("Contributor")
    services.policy_update(
        actor=resource_owner,
        role=contributor,
        scope=tree["sub"],
        values={"eligible_expire_after_days": 30},
    )
    services.policy_reset(actor=resource_owner, role=contributor, scope=tree["sub"])
    event = _events("pim.policy.updated").order_by("id").last()
    assert event.before["eligible_expire_after_days"] == 30
    assert event.after is None


def test_policy_reset_without_scope_settings_writes_nothing(resource_owner, tree):
    before = AuditEvent.objects.count()
    services.policy_reset(actor=resource_owner, role=role("Contributor"), scope=tree["sub"])
    assert AuditEvent.objects.count() == before


# Authorization of every service --------------------------------------------------------------


def _call(name, actor, tree):
    target = _held(make_user("tina"), "Contributor", scope=tree["sub"], end=T0 + timedelta(days=5))
    ended = _held(
        make_user("ted"),
        "Contributor",
        scope=tree["sub"],
        start=T0 - timedelta(days=5),
        end=T0 - timedelta(days=1),
    )
    contributor = role("Contributor")
    calls = {
        "assignment_create": lambda: services.assignment_create(
            actor=actor,
            principals=[make_user("ulla")],
            role=contributor,
            scope=tree["sub"],
            kind=ELIGIBLE,
            end=T0 + timedelta(days=5),
        ),
        "assignment_remove": lambda: services.assignment_remove(actor=actor, assignment=target),
        "assignment_update": lambda: services.assignment_update(
            actor=actor, assignment=target, start=None, end=T0 + timedelta(days=6)
        ),
        "assignment_extend": lambda: services.assignment_extend(
            actor=actor, assignment=target, end=T0 + timedelta(days=6)
        ),
        "assignment_renew": lambda: services.assignment_renew(
            actor=actor,
            assignment=ended,
            start=None,
            end=T0 + timedelta(days=6),
            justification="Back on the project",
        ),
        "policy_update": lambda: services.policy_update(
            actor=actor, role=contributor, scope=tree["sub"], values={}
        ),
        "policy_reset": lambda: services.policy_reset(
            actor=actor, role=contributor, scope=tree["sub"]
        ),
    }
    return calls[name]()


SERVICES = [
    "assignment_create",
    "assignment_remove",
    "assignment_update",
    "assignment_extend",
    "assignment_renew",
    "policy_update",
    "policy_reset",
]


@pytest.mark.parametrize("name", SERVICES)
def test_unauthorized_actor_is_refused_and_audited(name, tree):
    # Olivia owns the Sandbox subscription only: Production is not hers to manage.
    owner_elsewhere = make_user("olga")
    assign(owner_elsewhere, "Owner", scope=tree["other_sub"], permanent=True)
    requests_before = RoleRequest.objects.count()
    with pytest.raises(PermissionDenied):
        _call(name, owner_elsewhere, tree)
    event = _events("pim.security.forbidden").get()
    assert event.actor == owner_elsewhere
    assert RoleRequest.objects.count() == requests_before
    assert not _events("pim.assignment.created").exists()


@pytest.mark.parametrize("name", SERVICES)
def test_authorized_owner_may_call_the_service(name, resource_owner, tree):
    _call(name, resource_owner, tree)
    assert not _events("pim.security.forbidden").exists()


def test_eligible_administrator_may_not_assign_directory_roles(eligible_user, outsider):
    with pytest.raises(PermissionDenied):
        _create(eligible_user, [outsider], "Security Reader")
    assert _events("pim.security.forbidden").get().actor == eligible_user


def test_security_reader_may_not_assign(security_reader, outsider):
    with pytest.raises(PermissionDenied):
        _create(security_reader, [outsider], "Security Reader")
    assert not Assignment.objects.filter(principal_user=outsider).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_removing_the_last_two_global_administrators_at_once_keeps_one(pra):
    for round_ in range(5):
        Assignment.objects.filter(role__name="Global Administrator").update(end=T0)
        first = assign(make_user(f"gina{round_}"), "Global Administrator", permanent=True)
        second = assign(make_user(f"gary{round_}"), "Global Administrator", permanent=True)
        results = race(
            lambda: services.assignment_remove(actor=pra, assignment=first),
            lambda: services.assignment_remove(actor=pra, assignment=second),
        )
        assert sum(isinstance(result, ValidationError) for result in results) == 1
        in_force = Assignment.objects.in_force().filter(role__name="Global Administrator")
        assert in_force.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_administrators_adding_the_same_principal_at_once_make_one_assignment(pra):
    for round_ in range(5):
        target = make_user(f"twin{round_}")
        results = race(
            *[
                lambda: services.assignment_create(
                    actor=pra,
                    principals=[target],
                    role=role("Security Reader"),
                    scope=None,
                    kind=AssignmentKind.ELIGIBLE,
                    end=timezone.now() + timedelta(days=30),
                )
            ]
            * 2
        )
        made = Assignment.objects.filter(principal_user=target).count()
        assert made == 1, f"round {round_}: {results}"
        assert sum(isinstance(result, ValidationError) for result in results) == 1
