"""The scan as a whole: idempotent, history and audit, rules switched off, settings, who may
scan and change settings, mail of new high alerts, who sees which alert, the periodic task,
and a query count that does not grow with the directory."""

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import Schedule

from alerts import services, tasks
from alerts.models import Alert, AlertHistory, AlertSetting, AlertStatus
from alerts.rules import RULES
from assignments.models import AssignmentKind
from audit import log as audit_log
from audit.models import ChainVerification
from pim_portal.actor import Actor
from pim_portal.models import EmergencyAccessUse
from tests.alerts.conftest import (
    DAY,
    SYSTEM,
    events,
    history,
    open_alerts,
    scan,
    the_open_alert,
)
from tests.factories import assign, make_group, make_user

pytestmark = pytest.mark.django_db

OUTSIDE = "roles_assigned_outside_pim"
STANDING = "permanent_active_privileged_assignments"
EMERGENCY = "emergency_access_used"
GLOBAL_ADMINS = "too_many_global_admins"


def test_scanning_twice_keeps_one_alert_and_one_history_entry(db):
    assign(make_user("mallory"), "Security Administrator")
    scan(OUTSIDE)
    scan(OUTSIDE)
    (alert,) = Alert.objects.filter(kind=OUTSIDE)
    assert history(alert) == [("opened", SYSTEM)]
    assert len(events("pim.alert.opened")) == 1


def test_opening_is_audited_with_the_alert_as_target(db):
    assign(make_user("mallory"), "Security Administrator")
    scan(OUTSIDE)
    (event,) = events("pim.alert.opened")
    alert = the_open_alert(OUTSIDE)
    assert (event.target_id, event.actor_name) == (str(alert.pk), SYSTEM)
    assert event.message == alert.title


def test_a_changed_finding_updates_the_open_alert(db):
    assign(make_user("mallory"), "Security Administrator")
    scan(OUTSIDE)
    alert = the_open_alert(OUTSIDE)
    assign(make_user("trudy"), "User Administrator")
    scan(OUTSIDE)
    alert.refresh_from_db()
    assert alert.affected_count == 2
    assert history(alert) == [("opened", SYSTEM), ("updated", SYSTEM)]
    assert alert.history.last().details == "1 newly affected; 2 affected in all (was 1)"


def test_the_resolution_is_audited(db):
    written = assign(make_user("mallory"), "Security Administrator")
    scan(OUTSIDE)
    written.end = timezone.now()
    written.save()
    scan(OUTSIDE)
    (event,) = events("pim.alert.resolved")
    assert event.message.endswith("No longer found.")


def test_a_finding_back_after_resolution_opens_a_new_alert(db):
    written = assign(make_user("mallory"), "Security Administrator")
    scan(OUTSIDE)
    written.end = timezone.now()
    written.save()
    scan(OUTSIDE)
    assign(make_user("trudy"), "Security Administrator")
    scan(OUTSIDE)
    assert Alert.objects.filter(kind=OUTSIDE).count() == 2
    assert len(open_alerts(OUTSIDE)) == 1


def test_scan_now_records_who_pressed_it(pra):
    assign(make_user("mallory"), "Security Administrator")
    scan(OUTSIDE, actor=pra)
    assert history(the_open_alert(OUTSIDE)) == [("opened", "Pat Admin")]


def test_scan_now_is_refused_for_a_security_reader(security_reader):
    with pytest.raises(PermissionDenied):
        services.scan(security_reader)
    (refusal,) = events("pim.security.forbidden")
    assert refusal.message == "run a security alert scan"


# --- Switching a rule off ------------------------------------------------------------------


def test_a_rule_switched_off_opens_no_alert(db):
    services.setting_update(Actor.system("test"), OUTSIDE, False, {})
    assign(make_user("mallory"), "Security Administrator")
    scan(OUTSIDE)
    assert Alert.objects.filter(kind=OUTSIDE).count() == 0


def test_switching_a_rule_off_resolves_its_open_alert_at_once(pra):
    assign(make_user("mallory"), "Security Administrator")
    scan(OUTSIDE)
    alert = the_open_alert(OUTSIDE)
    services.setting_update(pra, OUTSIDE, False, {})
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    assert history(alert)[-1] == ("resolved", "Pat Admin")
    assert alert.history.last().details == "The alert was turned off."
    scan(OUTSIDE)
    assert open_alerts(OUTSIDE) == []


def test_switching_a_rule_back_on_opens_its_alert_on_the_next_scan(pra):
    assign(make_user("mallory"), "Security Administrator")
    services.setting_update(pra, OUTSIDE, False, {})
    services.setting_update(pra, OUTSIDE, True, {})
    scan(OUTSIDE)
    assert len(open_alerts(OUTSIDE)) == 1


# --- Settings ------------------------------------------------------------------------------


def test_settings_store_the_thresholds_given(pra):
    setting = services.setting_update(pra, GLOBAL_ADMINS, True, {"count": 5})
    assert setting.thresholds == {"count": 5}
    assert services.effective_thresholds(GLOBAL_ADMINS, setting.thresholds) == {
        "count": 5,
        "percent": 10,
    }


def test_a_threshold_out_of_range_is_refused_with_its_range(pra):
    with pytest.raises(ValidationError) as refused:
        services.setting_update(pra, GLOBAL_ADMINS, True, {"count": 1, "percent": 101})
    assert refused.value.message_dict == {
        "count": ["More Global Administrators than must be from 2 to 100 accounts."],
        "percent": ["and more of the privileged accounts than must be from 0 to 100 %."],
    }
    assert not AlertSetting.objects.filter(kind=GLOBAL_ADMINS).exists()


def test_a_threshold_that_is_not_a_whole_number_is_refused(pra):
    with pytest.raises(ValidationError) as refused:
        services.setting_update(pra, GLOBAL_ADMINS, True, {"count": "many"})
    assert refused.value.message_dict == {
        "count": ["More Global Administrators than must be a whole number."]
    }


def test_an_unknown_threshold_is_refused(pra):
    with pytest.raises(ValidationError) as refused:
        services.setting_update(pra, OUTSIDE, True, {"count": 3})
    assert refused.value.messages == [
        "Roles are being assigned outside of PIM has no threshold 'count'."
    ]


def test_a_settings_change_is_audited_with_before_and_after(pra):
    services.setting_update(pra, GLOBAL_ADMINS, True, {"count": 5})
    (event,) = events("pim.alert.settings_changed")
    assert event.actor_name == "Pat Admin"
    assert event.before == {"enabled": True, "thresholds": {"count": 2, "percent": 10}}
    assert event.after == {"enabled": True, "thresholds": {"count": 5, "percent": 10}}


def test_saving_unchanged_settings_writes_no_audit_event(pra):
    services.setting_update(pra, GLOBAL_ADMINS, True, {"count": 2})
    assert events("pim.alert.settings_changed") == []


def test_a_security_reader_may_not_change_settings(security_reader):
    with pytest.raises(PermissionDenied):
        services.setting_update(security_reader, GLOBAL_ADMINS, False, {})
    (refusal,) = events("pim.security.forbidden")
    assert refusal.message == (
        "change the settings of the alert 'There are too many Global Administrators'"
    )
    assert not AlertSetting.objects.filter(kind=GLOBAL_ADMINS).exists()


# --- Mail of new high alerts ---------------------------------------------------------------


def failed_signins(count: int, account) -> None:
    for _ in range(count):
        audit_log.record(action="pim.security.signin_failed", target=account, message="bad")


def test_a_new_high_alert_mails_the_global_and_privileged_role_administrators_once(
    pra, global_admin, security_reader, django_capture_on_commit_callbacks
):
    failed_signins(10, make_user("victim"))
    with django_capture_on_commit_callbacks(execute=True):
        scan("failed_signin_burst")
    assert sorted(m.to[0] for m in mail.outbox) == ["gina@example.com", "pat@example.com"]
    assert mail.outbox[0].subject == (
        "PIM security alert (High): 10 failed sign-ins and MFA codes in 15 minutes"
    )
    with django_capture_on_commit_callbacks(execute=True):
        scan("failed_signin_burst")
    assert len(mail.outbox) == 2


def test_an_emergency_access_alert_is_not_mailed_again_by_the_scan(
    pra, global_admin, django_capture_on_commit_callbacks
):
    """Its sign-in already mailed every Global Administrator, with the follow-up's link."""
    glass = make_user("glass", is_emergency_access=True)
    EmergencyAccessUse.objects.create(user=glass, signed_in_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        scan(EMERGENCY)
    assert the_open_alert(EMERGENCY, key=str(EmergencyAccessUse.objects.get().pk))
    assert mail.outbox == []


def test_an_administrator_through_a_group_is_mailed(db, django_capture_on_commit_callbacks):
    pria = make_user("pria")
    assign(make_group("PIM admins", pria), "Privileged Role Administrator")
    ChainVerification.objects.create(ran_at=timezone.now(), ok=False, problem="broken")
    with django_capture_on_commit_callbacks(execute=True):
        scan("audit_chain_broken")
    assert [m.to for m in mail.outbox] == [["pria@example.com"]]


def test_medium_and_low_alerts_are_not_mailed(pra, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        scan(STANDING)  # Pat's own permanent assignment: a medium alert
    assert len(open_alerts(STANDING)) == 1
    assert mail.outbox == []


def test_a_high_resource_alert_also_mails_the_scopes_owners(
    pra, resource_owner, tree, django_capture_on_commit_callbacks
):
    assign(make_user("carl"), "Contributor", scope=tree["rg"])
    with django_capture_on_commit_callbacks(execute=True):
        scan("resource_roles_assigned_outside_pim")
    to_olivia = [m for m in mail.outbox if m.to == ["olivia@example.com"]]
    assert len(to_olivia) == 2  # Production (her own assignment) and Web, below it
    assert "Carl: Contributor (active)" in "".join(m.body for m in to_olivia)


# --- Who sees which alert ------------------------------------------------------------------


def resource_alerts(tree):
    assign(make_user("carl"), "Contributor", scope=tree["rg"])
    assign(make_user("sandy"), "Contributor", scope=tree["other_sub"])
    assign(make_user("mallory"), "Security Administrator")
    scan(OUTSIDE, "resource_roles_assigned_outside_pim")


def test_directory_viewers_see_every_alert(security_reader, tree):
    resource_alerts(tree)
    visible = services.visible_alerts(services.authz.grants_for(security_reader))
    assert visible.count() == Alert.objects.count() >= 3


def test_an_owner_sees_the_resource_alerts_of_scopes_in_reach_only(resource_owner, tree):
    resource_alerts(tree)
    visible = services.visible_alerts(services.authz.grants_for(resource_owner))
    assert {a.key for a in visible} == {str(tree["rg"].pk), str(tree["sub"].pk)}
    assert {a.kind for a in visible} == {"resource_roles_assigned_outside_pim"}


def test_people_without_a_role_that_watches_see_no_alert(outsider, tree):
    resource_alerts(tree)
    assert not services.visible_alerts(services.authz.grants_for(outsider)).exists()


# --- The periodic task ---------------------------------------------------------------------


def test_the_periodic_task_scans_as_the_system(db):
    assign(make_user("mallory"), "Security Administrator")
    outcome = tasks.scan_task()
    assert outcome["failed"] == []
    assert history(the_open_alert(OUTSIDE)) == [("opened", "system (alert scan)")]


def test_the_scan_is_scheduled_every_alert_scan_minutes(db, settings):
    settings.ALERT_SCAN_MINUTES = 7
    tasks.ensure_periodic_schedules()
    schedule = Schedule.objects.get(name=tasks.SCAN_SCHEDULE)
    assert (schedule.func, schedule.minutes) == ("alerts.tasks.scan_task", 7)


def test_every_rule_runs_on_an_empty_directory(db):
    result = scan()
    assert result.opened == []
    assert set(AlertSetting.objects.values_list("kind", flat=True)) == set(RULES)


# --- Scale ---------------------------------------------------------------------------------


def organisation(start: int, count: int, tree) -> None:
    """`count` people of every shape each rule looks at: outside PIM, privileged, stale,
    unused, standing, owners, failed sign-ins, emergency access uses."""
    old = timezone.now() - 60 * DAY
    for n in range(start, start + count):
        user = make_user(f"user{n}", date_joined=old)
        assign(user, "Global Administrator", kind=AssignmentKind.ELIGIBLE, start=old, end=None)
        assign(user, "Security Administrator", permanent=True)
        assign(user, "User Administrator", kind=AssignmentKind.ELIGIBLE, permanent=True)
        assign(user, "Owner", scope=tree["sub"], permanent=True)
        assign(user, "Contributor", scope=tree["rg"])
        assign(make_group(f"group{n}", user), "Owner", scope=tree["rg"])
        for _ in range(2):  # 10 at the smallest size: the burst alert is open at every size
            audit_log.record(action="pim.security.signin_failed", target=user)
        glass = make_user(f"glass{n}", is_emergency_access=True)
        EmergencyAccessUse.objects.create(user=glass, signed_in_at=timezone.now())
    ChainVerification.objects.create(ran_at=timezone.now(), ok=False, problem="broken")


def queries_of_a_first_scan() -> int:
    with CaptureQueriesContext(connection) as captured:
        result = scan()
    assert result.opened
    return len(captured)


def test_the_scan_asks_a_fixed_number_of_questions_however_many_users(tree):
    organisation(0, 5, tree)
    small = queries_of_a_first_scan()
    opened_small = Alert.objects.open().count()
    AlertHistory.objects.all().delete()
    Alert.objects.all().delete()
    organisation(5, 45, tree)
    large = queries_of_a_first_scan()
    assert Alert.objects.open().count() > opened_small  # one per emergency access use
    assert large == small


def test_a_rescan_asks_a_fixed_number_of_questions_however_many_changes(tree):
    organisation(0, 5, tree)
    scan()
    organisation(5, 1, tree)
    with CaptureQueriesContext(connection) as few:
        scan()
    organisation(6, 45, tree)
    with CaptureQueriesContext(connection) as many:
        scan()
    assert len(many) == len(few)


# --- Two scans at once ---------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_scans_at_once_open_one_alert():
    from tests.concurrency import race

    assign(make_user("mallory"), "Security Administrator")
    results = race(*[lambda: services.scan(services.SCAN_ACTOR, kinds=[OUTSIDE])] * 3)
    assert all(result.failed == {} for result in results)
    assert sum(len(result.opened) for result in results) == 1
    (alert,) = Alert.objects.filter(kind=OUTSIDE)
    assert history(alert) == [("opened", SYSTEM)]


def test_the_mail_lists_what_the_alert_found_and_links_to_it(
    pra, django_capture_on_commit_callbacks
):
    failed_signins(10, make_user("victim", display_name="Vic Tim"))
    with django_capture_on_commit_callbacks(execute=True):
        scan("failed_signin_burst")
    (message,) = mail.outbox
    alert = the_open_alert("failed_signin_burst")
    assert "Vic Tim: 10 failed sign-ins" in message.body
    assert f"/alerts/{alert.pk}/" in message.body
    assert "manage the resource" not in message.body
