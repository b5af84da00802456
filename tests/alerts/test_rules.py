"""Each rule's trigger, threshold and resolution: data that triggers it opens the alert; a
threshold changed resolves (or keeps) it; the data fixed, the next scan resolves it."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from alerts import services
from alerts.models import AlertStatus, Severity
from assignments import services as assignment_services
from assignments.models import AssignmentKind
from audit import log as audit_log
from audit.models import ChainVerification
from pim_portal.actor import Actor
from pim_portal.models import EmergencyAccessUse
from tests.alerts.conftest import (
    DAY,
    SYSTEM,
    T0,
    assign_through_pim,
    history,
    ids,
    labels,
    open_alerts,
    scan,
    the_open_alert,
)
from tests.factories import assign, make_group, make_user, role

pytestmark = pytest.mark.django_db

ADMIN = Actor.system("test administrator")
YEAR_ON = T0 + 365 * DAY


def set_thresholds(kind: str, **values):
    services.setting_update(ADMIN, kind, True, values)


def resolved_by_the_scan(alert) -> None:
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    assert alert.resolved_by_name == SYSTEM
    assert history(alert)[-1] == ("resolved", SYSTEM)


# --- Roles assigned outside PIM ------------------------------------------------------------

OUTSIDE = "roles_assigned_outside_pim"


def test_an_active_assignment_no_request_made_opens_a_high_alert(db):
    mallory = make_user("mallory")
    written = assign(mallory, "Global Administrator")
    scan(OUTSIDE)
    alert = the_open_alert(OUTSIDE)
    assert alert.severity == Severity.HIGH
    assert ids(alert) == {written.pk}
    assert labels(alert) == ["Mallory: Global Administrator (active)"]
    assert history(alert) == [("opened", SYSTEM)]


def test_assignments_and_activations_made_through_the_portal_are_not_outside_pim(db):
    erin = make_user("erin")
    assigned = assign_through_pim(ADMIN, erin, "Security Administrator")
    assign_through_pim(ADMIN, erin, "Privileged Role Administrator", kind=AssignmentKind.ELIGIBLE)
    eligible = erin_eligible(erin, "Privileged Role Administrator")
    activation = activate(erin, eligible)
    assert assigned.pk and activation.pk
    scan(OUTSIDE)
    assert open_alerts(OUTSIDE) == []


def test_an_assignment_outside_pim_resolves_once_removed(db):
    written = assign(make_user("mallory"), "Security Administrator")
    scan(OUTSIDE)
    alert = the_open_alert(OUTSIDE)
    assignment_services.assignment_remove(actor=ADMIN, assignment=written)
    scan(OUTSIDE)
    resolved_by_the_scan(alert)


# --- Too many Global Administrators --------------------------------------------------------

GLOBAL_ADMINS = "too_many_global_admins"


def global_admins(count: int) -> list:
    return [assign(make_user(f"ga{n}"), "Global Administrator") for n in range(count)]


def test_more_global_administrators_than_allowed_opens_the_alert(db):
    global_admins(3)
    scan(GLOBAL_ADMINS)
    alert = the_open_alert(GLOBAL_ADMINS)
    assert alert.title == "3 Global Administrators"
    assert alert.affected_count == 3
    assert alert.severity == Severity.LOW


def test_global_administrators_through_a_group_count_one_by_one(db):
    members = [make_user(f"member{n}") for n in range(3)]
    assign(make_group("Admins", *members), "Global Administrator", kind=AssignmentKind.ELIGIBLE)
    scan(GLOBAL_ADMINS)
    assert ids(the_open_alert(GLOBAL_ADMINS)) == {m.pk for m in members}


def test_a_higher_count_threshold_resolves_the_global_administrators_alert(db):
    global_admins(3)
    scan(GLOBAL_ADMINS)
    alert = the_open_alert(GLOBAL_ADMINS)
    set_thresholds(GLOBAL_ADMINS, count=3)
    scan(GLOBAL_ADMINS)
    resolved_by_the_scan(alert)


def test_global_administrators_that_are_few_of_the_privileged_raise_no_alert(db):
    global_admins(3)
    for n in range(30):  # 3 of 33 privileged accounts: 9%, under the 10% allowed
        assign(make_user(f"secadmin{n}"), "Security Administrator")
    scan(GLOBAL_ADMINS)
    assert open_alerts(GLOBAL_ADMINS) == []
    set_thresholds(GLOBAL_ADMINS, percent=5)
    scan(GLOBAL_ADMINS)
    assert len(open_alerts(GLOBAL_ADMINS)) == 1


def test_the_global_administrators_alert_resolves_when_one_is_removed(db):
    first, *_ = global_admins(3)  # the others stay: the last one could not be removed
    scan(GLOBAL_ADMINS)
    alert = the_open_alert(GLOBAL_ADMINS)
    assignment_services.assignment_remove(actor=ADMIN, assignment=first)
    scan(GLOBAL_ADMINS)
    resolved_by_the_scan(alert)


# --- Administrators not using their privileged roles ---------------------------------------

NOT_USING = "administrators_not_using_roles"


def erin_eligible(erin, role_name: str = "Privileged Role Administrator"):
    from assignments.queries import eligible_assignments

    return eligible_assignments(erin).get(role__name=role_name)


def activate(user, eligible):
    request = assignment_services.request_activate(
        actor=user,
        eligible=eligible,
        duration=timedelta(hours=1),
        justification="Incident 42",
        mfa_verified=True,
    )
    return request.result_assignment


def deactivate(user, activation) -> None:
    assignment_services.request_deactivate(actor=user, assignment_id=activation.pk)


def test_an_eligible_role_not_activated_in_30_days_opens_the_alert(clock):
    erin = make_user("erin")
    eligible = assign(erin, "Privileged Role Administrator", kind="eligible", end=YEAR_ON)
    clock.shift(40 * DAY)
    scan(NOT_USING)
    alert = the_open_alert(NOT_USING)
    assert ids(alert) == {eligible.pk}
    assert alert.severity == Severity.LOW


def test_a_recent_eligible_assignment_is_not_unused_yet(clock):
    erin = make_user("erin")
    assign(erin, "Privileged Role Administrator", kind="eligible", end=YEAR_ON)
    clock.shift(20 * DAY)
    scan(NOT_USING)
    assert open_alerts(NOT_USING) == []


def test_more_days_allowed_resolves_the_unused_roles_alert(clock):
    assign(make_user("erin"), "Privileged Role Administrator", kind="eligible", end=YEAR_ON)
    clock.shift(40 * DAY)
    scan(NOT_USING)
    alert = the_open_alert(NOT_USING)
    set_thresholds(NOT_USING, days=50)
    scan(NOT_USING)
    resolved_by_the_scan(alert)


def test_activating_the_role_resolves_the_unused_roles_alert(clock):
    erin = make_user("erin")
    eligible = assign(erin, "Privileged Role Administrator", kind="eligible", end=YEAR_ON)
    clock.shift(40 * DAY)
    scan(NOT_USING)
    alert = the_open_alert(NOT_USING)
    activate(erin, eligible)
    scan(NOT_USING)
    resolved_by_the_scan(alert)


# --- Potential stale accounts --------------------------------------------------------------

STALE = "stale_accounts_in_privileged_role"


def test_a_privileged_account_without_a_sign_in_opens_the_stale_alert(clock):
    stan = make_user("stan")
    assign(stan, "Security Administrator", kind="eligible", end=YEAR_ON)
    clock.shift(40 * DAY)
    scan(STALE)
    alert = the_open_alert(STALE)
    assert ids(alert) == {stan.pk}
    assert labels(alert) == ["Stan (stan), never signed in"]
    assert alert.severity == Severity.MEDIUM


def test_a_stale_member_of_a_privileged_group_is_listed(clock):
    stan = make_user("stan")
    assign(make_group("Admins", stan), "User Administrator", end=YEAR_ON)
    clock.shift(40 * DAY)
    scan(STALE)
    assert ids(the_open_alert(STALE)) == {stan.pk}


def test_emergency_access_accounts_are_not_stale(clock):
    glass = make_user("glass", is_emergency_access=True)
    assign(glass, "Global Administrator", permanent=True)
    clock.shift(40 * DAY)
    scan(STALE)
    assert open_alerts(STALE) == []


def test_more_days_allowed_resolves_the_stale_alert(clock):
    assign(make_user("stan"), "Security Administrator", kind="eligible", end=YEAR_ON)
    clock.shift(40 * DAY)
    scan(STALE)
    alert = the_open_alert(STALE)
    set_thresholds(STALE, days=60)
    scan(STALE)
    resolved_by_the_scan(alert)


def test_signing_in_resolves_the_stale_alert(clock):
    stan = make_user("stan")
    assign(stan, "Security Administrator", kind="eligible", end=YEAR_ON)
    clock.shift(40 * DAY)
    scan(STALE)
    alert = the_open_alert(STALE)
    stan.last_login = timezone.now()
    stan.save(update_fields=["last_login"])
    scan(STALE)
    resolved_by_the_scan(alert)


# --- Roles that don't require MFA on activation --------------------------------------------

NO_MFA = "no_mfa_on_activation"


def mfa_on_activation(role_name: str, required: bool) -> None:
    assignment_services.policy_update(
        actor=ADMIN, role=role(role_name), values={"require_mfa_on_activation": required}
    )


def test_roles_as_installed_require_mfa_and_raise_no_alert(db):
    scan(NO_MFA)
    assert open_alerts(NO_MFA) == []


def test_a_role_activated_without_mfa_opens_the_alert(db):
    mfa_on_activation("Security Administrator", False)
    scan(NO_MFA)
    alert = the_open_alert(NO_MFA)
    assert labels(alert) == ["Security Administrator"]
    assert ids(alert) == {role("Security Administrator").pk}


def test_requiring_mfa_again_resolves_the_alert(db):
    mfa_on_activation("Security Administrator", False)
    scan(NO_MFA)
    alert = the_open_alert(NO_MFA)
    mfa_on_activation("Security Administrator", True)
    scan(NO_MFA)
    resolved_by_the_scan(alert)


# --- Roles activated too frequently --------------------------------------------------------

FREQUENT = "roles_activated_too_frequently"


def activations(clock, erin, times: int, apart: timedelta) -> None:
    eligible = erin_eligible(erin)
    for _ in range(times):
        deactivate(erin, activate(erin, eligible))
        clock.shift(apart)


def erin_with_eligibility():
    erin = make_user("erin")
    assign(erin, "Privileged Role Administrator", kind="eligible", end=YEAR_ON)
    return erin


def test_three_activations_within_an_hour_open_the_alert(clock):
    erin = erin_with_eligibility()
    activations(clock, erin, 3, timedelta(minutes=10))
    scan(FREQUENT)
    alert = the_open_alert(FREQUENT)
    assert labels(alert) == ["Erin: 3 activations of Privileged Role Administrator within 1 hour"]


def test_activations_spread_over_hours_raise_no_alert(clock):
    erin = erin_with_eligibility()
    activations(clock, erin, 3, timedelta(minutes=50))
    scan(FREQUENT)
    assert open_alerts(FREQUENT) == []


def test_more_activations_allowed_resolves_the_frequent_activation_alert(clock):
    erin = erin_with_eligibility()
    activations(clock, erin, 3, timedelta(minutes=10))
    scan(FREQUENT)
    alert = the_open_alert(FREQUENT)
    set_thresholds(FREQUENT, count=4)
    scan(FREQUENT)
    resolved_by_the_scan(alert)


def test_the_frequent_activation_alert_resolves_after_30_days(clock):
    erin = erin_with_eligibility()
    activations(clock, erin, 3, timedelta(minutes=10))
    scan(FREQUENT)
    alert = the_open_alert(FREQUENT)
    clock.shift(31 * DAY)
    scan(FREQUENT)
    resolved_by_the_scan(alert)


# --- Standing access: eligible for ever, permanent active ----------------------------------

FOR_EVER = "eligible_assignments_never_expire"
STANDING = "permanent_active_privileged_assignments"


def test_a_permanent_eligible_privileged_assignment_opens_the_alert(db):
    eligible = assign(make_user("uma"), "User Administrator", kind="eligible", permanent=True)
    assign(make_user("bill"), "Billing Administrator", kind="eligible", permanent=True)
    scan(FOR_EVER)
    assert ids(the_open_alert(FOR_EVER)) == {eligible.pk}


def test_an_end_date_resolves_the_eligible_for_ever_alert(db):
    eligible = assign(make_user("uma"), "User Administrator", kind="eligible", permanent=True)
    scan(FOR_EVER)
    alert = the_open_alert(FOR_EVER)
    assignment_services.assignment_update(
        actor=ADMIN, assignment=eligible, start=None, end=timezone.now() + 90 * DAY
    )
    scan(FOR_EVER)
    resolved_by_the_scan(alert)


def test_a_permanent_active_privileged_assignment_opens_the_standing_access_alert(db):
    standing = assign(make_user("app"), "Application Administrator", permanent=True)
    assign(make_user("timed"), "Application Administrator")  # ends in 30 days
    glass = make_user("glass", is_emergency_access=True)
    assign(glass, "Global Administrator", permanent=True)  # break glass: meant to be standing
    scan(STANDING)
    assert ids(the_open_alert(STANDING)) == {standing.pk}


def test_removing_standing_access_resolves_the_alert(db):
    standing = assign(make_user("app"), "Application Administrator", permanent=True)
    scan(STANDING)
    alert = the_open_alert(STANDING)
    assignment_services.assignment_remove(actor=ADMIN, assignment=standing)
    scan(STANDING)
    resolved_by_the_scan(alert)


# --- Resources: assigned outside PIM, too many owners, too many permanent owners ----------

RESOURCE_OUTSIDE = "resource_roles_assigned_outside_pim"
OWNERS = "too_many_owners"
PERMANENT_OWNERS = "too_many_permanent_owners"


def test_a_resource_assignment_outside_pim_opens_an_alert_for_its_scope(tree):
    written = assign(make_user("carl"), "Contributor", scope=tree["rg"])
    assign_through_pim(ADMIN, make_user("rita"), "Reader", scope=tree["rg"])
    scan(RESOURCE_OUTSIDE)
    alert = the_open_alert(RESOURCE_OUTSIDE, key=str(tree["rg"].pk))
    assert ids(alert) == {written.pk}
    assert alert.severity == Severity.HIGH
    assert alert.title == "1 assignment made outside PIM at Resource group Web"


def test_removing_the_resource_assignment_resolves_its_alert(tree):
    written = assign(make_user("carl"), "Contributor", scope=tree["rg"])
    scan(RESOURCE_OUTSIDE)
    alert = the_open_alert(RESOURCE_OUTSIDE, key=str(tree["rg"].pk))
    assignment_services.assignment_remove(actor=ADMIN, assignment=written)
    scan(RESOURCE_OUTSIDE)
    resolved_by_the_scan(alert)


def owners(scope, count: int, **kw) -> list:
    return [assign(make_user(f"owner{n}"), "Owner", scope=scope, **kw) for n in range(count)]


def test_more_owners_than_allowed_open_the_alert_for_the_scope(tree):
    owners(tree["sub"], 4)
    scan(OWNERS)
    alert = the_open_alert(OWNERS, key=str(tree["sub"].pk))
    assert alert.title == "4 owners of Subscription Production"
    assert alert.affected_count == 4


def test_owners_through_a_group_count_one_by_one(tree):
    owners(tree["sub"], 2)
    assign(make_group("Ops", make_user("a"), make_user("b")), "Owner", scope=tree["sub"])
    scan(OWNERS)
    assert the_open_alert(OWNERS, key=str(tree["sub"].pk)).title.startswith("4 owners")


def test_owners_of_different_scopes_are_counted_apart(tree):
    owners(tree["sub"], 2)
    assign(make_user("x"), "Owner", scope=tree["rg"])
    assign(make_user("y"), "Owner", scope=tree["rg"])
    scan(OWNERS)
    assert open_alerts(OWNERS) == []


def test_more_owners_allowed_resolves_the_owners_alert(tree):
    owners(tree["sub"], 4)
    scan(OWNERS)
    alert = the_open_alert(OWNERS, key=str(tree["sub"].pk))
    set_thresholds(OWNERS, count=4)
    scan(OWNERS)
    resolved_by_the_scan(alert)


def test_removing_an_owner_resolves_the_owners_alert(tree):
    first, *_ = owners(tree["sub"], 4)
    scan(OWNERS)
    alert = the_open_alert(OWNERS, key=str(tree["sub"].pk))
    assignment_services.assignment_remove(actor=ADMIN, assignment=first)
    scan(OWNERS)
    resolved_by_the_scan(alert)


def test_more_permanent_owners_than_allowed_open_the_alert(tree):
    owners(tree["sub"], 3, permanent=True)
    assign(make_user("timed"), "Owner", scope=tree["sub"])  # time-bound: not permanent
    scan(PERMANENT_OWNERS)
    alert = the_open_alert(PERMANENT_OWNERS, key=str(tree["sub"].pk))
    assert alert.title == "3 permanent owners of Subscription Production"


def test_more_permanent_owners_allowed_resolves_the_alert(tree):
    owners(tree["sub"], 3, permanent=True)
    scan(PERMANENT_OWNERS)
    alert = the_open_alert(PERMANENT_OWNERS, key=str(tree["sub"].pk))
    set_thresholds(PERMANENT_OWNERS, count=3)
    scan(PERMANENT_OWNERS)
    resolved_by_the_scan(alert)


def test_an_end_date_on_a_permanent_owner_resolves_the_alert(tree):
    first, *_ = owners(tree["sub"], 3, permanent=True)
    scan(PERMANENT_OWNERS)
    alert = the_open_alert(PERMANENT_OWNERS, key=str(tree["sub"].pk))
    assignment_services.assignment_update(
        actor=ADMIN,
        assignment=first,
        start=None,
        end=timezone.now() + 30 * DAY,
        justification="Owner until the launch",
    )
    scan(PERMANENT_OWNERS)
    resolved_by_the_scan(alert)


# --- A burst of failed sign-ins or MFA codes -----------------------------------------------

BURST = "failed_signin_burst"


def failures(user, signins: int, mfa: int = 0) -> None:
    for _ in range(signins):
        audit_log.record(action="pim.security.signin_failed", target=user, message="Failed")
    for _ in range(mfa):
        audit_log.record(action="pim.security.mfa_failed", actor=user, target=user)


def test_ten_failures_in_15_minutes_open_a_high_alert(clock):
    erin = make_user("erin")
    failures(erin, 6, mfa=4)
    scan(BURST)
    alert = the_open_alert(BURST)
    assert alert.severity == Severity.HIGH
    assert alert.title == "10 failed sign-ins and MFA codes in 15 minutes"
    assert labels(alert) == ["Erin: 6 failed sign-ins, 4 wrong MFA codes"]


def test_a_real_failed_sign_in_counts(clock):
    erin = make_user("erin")
    failures(erin, 9)
    Client().post(reverse("login"), {"username": "erin", "password": "wrong"})
    scan(BURST)
    assert the_open_alert(BURST).title.startswith("10 failed")


def test_nine_failures_raise_no_burst_alert(clock):
    failures(make_user("erin"), 9)
    scan(BURST)
    assert open_alerts(BURST) == []


def test_a_higher_count_resolves_the_burst_alert(clock):
    failures(make_user("erin"), 10)
    scan(BURST)
    alert = the_open_alert(BURST)
    set_thresholds(BURST, count=11)
    scan(BURST)
    resolved_by_the_scan(alert)


def test_the_burst_alert_resolves_once_the_window_has_passed(clock):
    failures(make_user("erin"), 10)
    scan(BURST)
    alert = the_open_alert(BURST)
    clock.shift(timedelta(minutes=16))
    scan(BURST)
    resolved_by_the_scan(alert)


# --- Emergency access used; the audit chain broken -----------------------------------------

EMERGENCY = "emergency_access_used"
CHAIN = "audit_chain_broken"


def test_each_open_emergency_access_use_opens_a_high_alert(db):
    glass = make_user("glass", is_emergency_access=True)
    first = EmergencyAccessUse.objects.create(user=glass, signed_in_at=timezone.now())
    second = EmergencyAccessUse.objects.create(user=glass, signed_in_at=timezone.now())
    scan(EMERGENCY)
    alerts = open_alerts(EMERGENCY)
    assert {a.key for a in alerts} == {str(first.pk), str(second.pk)}
    assert all(a.severity == Severity.HIGH for a in alerts)


def test_closing_the_follow_up_resolves_the_emergency_access_alert(db):
    glass = make_user("glass", is_emergency_access=True)
    use = EmergencyAccessUse.objects.create(user=glass, signed_in_at=timezone.now())
    scan(EMERGENCY)
    alert = the_open_alert(EMERGENCY, key=str(use.pk))
    use.closed_at = timezone.now()
    use.justification = "Directory sync broken; fixed"
    use.save()
    scan(EMERGENCY)
    resolved_by_the_scan(alert)


def test_a_failed_chain_verification_opens_a_high_alert(db):
    ChainVerification.objects.create(ran_at=timezone.now(), ok=True, checked=10)
    ChainVerification.objects.create(
        ran_at=timezone.now() + timedelta(seconds=1), ok=False, problem="event #3 was modified"
    )
    scan(CHAIN)
    alert = the_open_alert(CHAIN)
    assert alert.severity == Severity.HIGH
    assert "event #3 was modified" in alert.description


def test_a_later_successful_verification_resolves_the_chain_alert(db):
    ChainVerification.objects.create(ran_at=timezone.now(), ok=False, problem="broken")
    scan(CHAIN)
    alert = the_open_alert(CHAIN)
    ChainVerification.objects.create(ran_at=timezone.now() + timedelta(seconds=1), ok=True)
    scan(CHAIN)
    resolved_by_the_scan(alert)
