"""Remediation: each rule's action fixes what its alert lists through the services, is
recorded in the alert's history, and the alert resolves at once; refused for those who may
not, for rules without one, and for resolved alerts."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from alerts import services
from alerts.models import AlertHistory, AlertStatus
from assignments import services as assignment_services
from assignments.models import Assignment, AssignmentKind, RolePolicy
from assignments.queries import policy_approvers
from assignments.services.standing import standing_make_eligible_many
from tests.alerts.conftest import DAY, T0, events, history, ids, scan, the_open_alert
from tests.factories import assign, make_group, make_user, role

pytestmark = pytest.mark.django_db

YEAR_ON = T0 + 365 * DAY


def remediated_and_resolved_by(alert, name: str) -> None:
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    assert alert.resolved_by_name == name
    assert history(alert)[-2:] == [("remediated", name), ("resolved", name)]


def in_force(assignment) -> bool:
    assignment.refresh_from_db()
    return assignment.is_in_force()


# --- Each rule's remediation ---------------------------------------------------------------


def test_removing_assignments_made_outside_pim_resolves_the_alert(global_admin):
    global_admin_alone = the_only_outside(global_admin)
    written = assign(make_user("mallory"), "Security Administrator")
    scan("roles_assigned_outside_pim")
    alert = the_open_alert("roles_assigned_outside_pim")
    message = services.remediate(global_admin, alert)
    assert message.startswith("Removed 1 assignment.")
    assert "holds the last active Global Administrator" in message  # Gina's own stays
    assert not in_force(written)
    assert in_force(global_admin_alone)
    alert.refresh_from_db()
    assert ids(alert) == {global_admin_alone.pk}
    assert history(alert)[-2:] == [("remediated", "Gina Global"), ("updated", "Gina Global")]


def the_only_outside(user):
    return Assignment.objects.get(principal_user=user)


def test_removing_unused_eligible_assignments_resolves_the_alert(clock, global_admin):
    erin = make_user("erin")
    eligible = assign(erin, "Privileged Role Administrator", kind="eligible", end=YEAR_ON)
    clock.shift(40 * DAY)
    scan("administrators_not_using_roles")
    alert = the_open_alert("administrators_not_using_roles")
    assert services.remediate(global_admin, alert) == "Removed 1 assignment."
    assert not in_force(eligible)
    remediated_and_resolved_by(alert, "Gina Global")


def test_removing_stale_accounts_from_privileged_roles_keeps_roles_held_through_groups(
    clock, global_admin
):
    stan = make_user("stan")
    own = assign(stan, "Security Administrator", kind="eligible", end=YEAR_ON)
    reader = assign(stan, "Security Reader", end=YEAR_ON)  # not a privileged role
    through_group = assign(make_group("Helpers", stan), "User Administrator", end=YEAR_ON)
    clock.shift(40 * DAY)
    global_admin.last_login = timezone.now()
    global_admin.save(update_fields=["last_login"])
    scan("stale_accounts_in_privileged_role")
    alert = the_open_alert("stale_accounts_in_privileged_role")
    message = services.remediate(global_admin, alert)
    assert message == (
        "Removed 1 assignment. 1 account still holds a privileged role through a group: take "
        "them out of the group, or review its assignments."
    )
    assert not in_force(own)
    assert in_force(reader) and in_force(through_group)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN  # Stan still holds User Administrator


def test_requiring_mfa_keeps_the_other_settings_and_approvers(global_admin):
    approver = make_user("alex")
    assignment_services.policy_update(
        actor=global_admin,
        role=role("Security Administrator"),
        values={"require_mfa_on_activation": False, "require_approval": True},
        approver_users=[approver],
    )
    scan("no_mfa_on_activation")
    alert = the_open_alert("no_mfa_on_activation")
    assert services.remediate(global_admin, alert) == (
        "Activating Security Administrator now requires MFA."
    )
    policy = RolePolicy.objects.get(role=role("Security Administrator"), scope=None)
    assert policy.require_mfa_on_activation and policy.require_approval
    assert policy_approvers(policy) == ([approver], [])
    remediated_and_resolved_by(alert, "Gina Global")


def test_setting_an_end_on_eligible_assignments_resolves_the_alert(global_admin):
    eligible = assign(make_user("uma"), "User Administrator", kind="eligible", permanent=True)
    scan("eligible_assignments_never_expire")
    alert = the_open_alert("eligible_assignments_never_expire")
    assert services.remediate(global_admin, alert) == "Set an end date on 1 eligible assignment."
    eligible.refresh_from_db()
    assert eligible.end is not None
    assert eligible.end - timezone.now() > 364 * DAY  # the role's longest eligibility: a year
    remediated_and_resolved_by(alert, "Gina Global")


def test_making_standing_access_eligible_resolves_the_alert(global_admin):
    global_admin.is_emergency_access = True  # Gina's standing access is break-glass
    global_admin.save(update_fields=["is_emergency_access"])
    uma = make_user("uma")
    standing = assign(uma, "User Administrator", permanent=True)
    scan("permanent_active_privileged_assignments")
    alert = the_open_alert("permanent_active_privileged_assignments")
    assert services.remediate(global_admin, alert) == (
        "Made 1 assignment eligible: they are activated when needed."
    )
    assert not in_force(standing)
    eligible = Assignment.objects.get(principal_user=uma, kind=AssignmentKind.ELIGIBLE)
    assert eligible.is_in_force() and eligible.end is not None
    assert eligible.role.name == "User Administrator"
    remediated_and_resolved_by(alert, "Gina Global")


def test_making_standing_access_eligible_keeps_the_last_global_administrator(global_admin, pra):
    scan("permanent_active_privileged_assignments")
    alert = the_open_alert("permanent_active_privileged_assignments")
    message = services.remediate(pra, alert)
    assert message.startswith("Made 1 assignment eligible")
    assert "the last active Global Administrator" in message
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN
    assert ids(alert) == {Assignment.objects.get(principal_user=global_admin, end=None).pk}


def test_a_resource_owner_removes_assignments_made_outside_pim_at_their_scope(resource_owner, tree):
    written = assign(make_user("carl"), "Contributor", scope=tree["rg"])
    scan("resource_roles_assigned_outside_pim")
    alert = the_open_alert("resource_roles_assigned_outside_pim", key=str(tree["rg"].pk))
    assert services.remediate(resource_owner, alert) == "Removed 1 assignment."
    assert not in_force(written)
    remediated_and_resolved_by(alert, "Olivia Owner")


def test_making_permanent_owners_eligible_resolves_the_alert(resource_owner, tree):
    others = [
        assign(make_user(f"o{n}"), "Owner", scope=tree["sub"], permanent=True) for n in (1, 2)
    ]
    scan("too_many_permanent_owners")
    alert = the_open_alert("too_many_permanent_owners", key=str(tree["sub"].pk))
    services.remediate(resource_owner, alert)
    assert not any(in_force(a) for a in others)
    assert Assignment.objects.in_force().eligible().filter(role__name="Owner").count() == 3
    remediated_and_resolved_by(alert, "Olivia Owner")


def test_remediation_is_audited(global_admin):
    assign(make_user("uma"), "User Administrator", kind="eligible", permanent=True)
    scan("eligible_assignments_never_expire")
    alert = the_open_alert("eligible_assignments_never_expire")
    services.remediate(global_admin, alert)
    (event,) = events("pim.alert.remediated")
    assert event.target_id == str(alert.pk)
    assert event.message == "Set an end date: Set an end date on 1 eligible assignment."


# --- Refusals ------------------------------------------------------------------------------


def test_a_security_reader_may_not_remediate(security_reader):
    written = assign(make_user("mallory"), "Security Administrator")
    scan("roles_assigned_outside_pim")
    alert = the_open_alert("roles_assigned_outside_pim")
    with pytest.raises(PermissionDenied):
        services.remediate(security_reader, alert)
    (refusal,) = events("pim.security.forbidden")
    assert refusal.message == f"run the remediation of security alert {alert.pk}"
    assert in_force(written)
    assert not AlertHistory.objects.filter(alert=alert, what="remediated").exists()


def test_an_owner_of_another_scope_may_not_remediate_a_resource_alert(tree):
    sandy = make_user("sandy")
    assign(sandy, "Owner", scope=tree["other_sub"], permanent=True)
    written = assign(make_user("carl"), "Contributor", scope=tree["rg"])
    scan("resource_roles_assigned_outside_pim")
    alert = the_open_alert("resource_roles_assigned_outside_pim", key=str(tree["rg"].pk))
    with pytest.raises(PermissionDenied):
        services.remediate(sandy, alert)
    assert events("pim.security.forbidden")[-1].scope == tree["rg"].path
    assert in_force(written)


def test_an_owner_may_not_remediate_a_directory_alert(resource_owner):
    assign(make_user("uma"), "User Administrator", kind="eligible", permanent=True)
    scan("eligible_assignments_never_expire")
    with pytest.raises(PermissionDenied):
        services.remediate(resource_owner, the_open_alert("eligible_assignments_never_expire"))


def test_a_rule_without_remediation_is_refused(pra):
    for n in range(3):
        assign(make_user(f"ga{n}"), "Global Administrator")
    scan("too_many_global_admins")
    with pytest.raises(ValidationError) as refused:
        services.remediate(pra, the_open_alert("too_many_global_admins"))
    assert refused.value.messages == ["This alert has no remediation action."]


def test_a_resolved_alert_is_refused(pra):
    eligible = assign(make_user("uma"), "User Administrator", kind="eligible", permanent=True)
    scan("eligible_assignments_never_expire")
    alert = the_open_alert("eligible_assignments_never_expire")
    assignment_services.assignment_remove(actor=pra, assignment=eligible)
    scan("eligible_assignments_never_expire")
    with pytest.raises(ValidationError) as refused:
        services.remediate(pra, alert)
    assert refused.value.messages == ["This alert is resolved: there is nothing to remediate."]


# --- Making standing access eligible, the service -----------------------------------------


def test_make_eligible_leaves_an_existing_eligibility_and_removes_the_standing_one(pra):
    uma = make_user("uma")
    standing = assign(uma, "User Administrator", permanent=True)
    already = assign(uma, "User Administrator", kind="eligible", end=timezone.now() + 90 * DAY)
    assert standing_make_eligible_many(actor=pra, assignment_ids=[standing.pk]) == 1
    assert not in_force(standing)
    assert list(Assignment.objects.in_force().eligible().filter(principal_user=uma)) == [already]


def test_make_eligible_skips_time_bound_and_activated_assignments(pra):
    timed = assign(make_user("uma"), "User Administrator")
    assert standing_make_eligible_many(actor=pra, assignment_ids=[timed.pk]) == 0
    assert in_force(timed)


def test_make_eligible_is_refused_as_a_whole_for_a_role_the_actor_may_not_manage(
    resource_owner, tree
):
    standing = assign(make_user("uma"), "User Administrator", permanent=True)
    with pytest.raises(PermissionDenied):
        standing_make_eligible_many(actor=resource_owner, assignment_ids=[standing.pk])
    assert in_force(standing)
    assert events("pim.security.forbidden")[-1].role == "User Administrator"


def test_make_eligible_leaves_the_last_global_administrator_as_it_is(pra):
    """Its removal would be refused: it is neither removed nor given an eligible twin."""
    gina = make_user("gina")
    last = assign(gina, "Global Administrator", permanent=True)
    other = assign(make_user("uma"), "User Administrator", permanent=True)
    assert standing_make_eligible_many(actor=pra, assignment_ids=[last.pk, other.pk]) == 1
    assert in_force(last)
    assert not Assignment.objects.in_force().eligible().filter(principal_user=gina).exists()
    assert not in_force(other)


def test_make_eligible_writes_the_requests_and_audit_events_of_both_services(pra):
    uma = make_user("uma")
    standing = assign(uma, "User Administrator", permanent=True)
    standing_make_eligible_many(actor=pra, assignment_ids=[standing.pk])
    assert [e.principal for e in events("pim.assignment.created")] == ["Uma"]
    assert [e.target_id for e in events("pim.assignment.removed")] == [str(standing.pk)]


def test_removing_a_stale_account_from_its_roles_resolves_the_alert(clock, global_admin):
    stan = make_user("stan")
    own = assign(stan, "Security Administrator", kind="eligible", end=YEAR_ON)
    clock.shift(40 * DAY)
    global_admin.last_login = timezone.now()
    global_admin.save(update_fields=["last_login"])
    scan("stale_accounts_in_privileged_role")
    alert = the_open_alert("stale_accounts_in_privileged_role")
    assert services.remediate(global_admin, alert) == "Removed 1 assignment."
    assert not in_force(own)
    remediated_and_resolved_by(alert, "Gina Global")
