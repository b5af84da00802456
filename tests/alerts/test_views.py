"""The security alert pages: the list, an alert's page, the settings, Scan now, remediation."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from alerts.models import Alert, AlertHistory, AlertSetting, AlertStatus, Severity
from assignments.models import RolePolicy
from audit.models import AuditEvent
from tests.conftest import signed_in
from tests.factories import assign, make_user, role

pytestmark = pytest.mark.django_db

LIST = reverse("alerts:alert_list")
SETTINGS = reverse("alerts:settings")
SCAN = reverse("alerts:scan")

TOO_MANY_GLOBAL_ADMINS = "too_many_global_admins"
NO_MFA_ON_ACTIVATION = "no_mfa_on_activation"


def make_alert(
    title: str = "Something to look at",
    *,
    kind: str = "test_kind",
    key: str = "",
    severity: str = Severity.MEDIUM,
    status: str = AlertStatus.OPEN,
    history: int = 1,
    **fields,
) -> Alert:
    """An alert as a scan leaves it, with `history` entries (test data, written directly)."""
    if status == AlertStatus.RESOLVED:
        fields.setdefault("resolved_at", timezone.now())
        fields.setdefault("resolved_by_name", "system (alert scan)")
    alert = Alert.objects.create(
        kind=kind, key=key, severity=severity, status=status, title=title, **fields
    )
    for number in range(history):
        what = AlertHistory.What.OPENED if number == 0 else AlertHistory.What.UPDATED
        AlertHistory.objects.create(
            alert=alert, what=what, by_name="system (alert scan)", details=f"entry {number}"
        )
    return alert


def refusal(action: str = "pim.security.forbidden") -> AuditEvent:
    return AuditEvent.objects.filter(action=action).order_by("-id").first()


def queries_for(client, url: str) -> int:
    client.get(url)  # the first request of a session does its own bookkeeping
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


# --- Who sees the list -----------------------------------------------------------------------


def test_security_reader_sees_open_alerts_without_scan_now(security_reader):
    make_alert("Too many Global Administrators", severity=Severity.HIGH)

    response = signed_in(security_reader).get(LIST)

    assert response.status_code == 200
    assert "Too many Global Administrators" in response.content.decode()
    assert SCAN not in response.content.decode()


def test_security_reader_sees_the_settings_link(security_reader):
    response = signed_in(security_reader).get(LIST)

    assert SETTINGS in response.content.decode()


def test_pra_sees_scan_now(pra):
    response = signed_in(pra).get(LIST)

    assert response.status_code == 200
    assert 'id="scan-now"' in response.content.decode()


def test_outsider_is_refused_the_alert_list(outsider):
    response = signed_in(outsider).get(LIST)

    assert response.status_code == 403
    assert refusal().message == "view security alerts"


def test_eligible_user_is_refused_the_alert_list_until_she_activates(eligible_user):
    response = signed_in(eligible_user).get(LIST)

    assert response.status_code == 403
    assert refusal().message == "view security alerts"


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get(LIST)

    assert response.status_code == 302
    assert reverse("login") in response["Location"]


# --- What the list shows ----------------------------------------------------------------------


def test_open_alerts_are_listed_high_first(security_reader):
    make_alert("A low one", key="1", severity=Severity.LOW)
    make_alert("A high one", key="2", severity=Severity.HIGH)
    make_alert("A medium one", key="3", severity=Severity.MEDIUM)

    page = signed_in(security_reader).get(LIST).content.decode()

    assert page.index("A high one") < page.index("A medium one") < page.index("A low one")


def test_open_list_leaves_out_resolved_alerts(security_reader):
    make_alert("Still open", key="1")
    make_alert("Fixed last week", key="2", status=AlertStatus.RESOLVED)

    page = signed_in(security_reader).get(LIST).content.decode()

    assert "Still open" in page
    assert "Fixed last week" not in page


def test_resolved_tab_shows_the_history_of_resolved_alerts(security_reader):
    make_alert("Still open", key="1")
    make_alert("Fixed last week", key="2", status=AlertStatus.RESOLVED, resolved_by_name="Pat")

    page = signed_in(security_reader).get(LIST, {"tab": "resolved"}).content.decode()

    assert "Fixed last week" in page
    assert "Pat" in page
    assert "Still open" not in page


def test_list_shows_the_affected_count(security_reader):
    make_alert("Stale accounts", affected_count=7)

    response = signed_in(security_reader).get(LIST)

    assert response.context["alerts"][0].affected_count == 7
    assert '<td class="text-end">7</td>' in response.content.decode()


def test_list_counts_open_alerts_by_severity(security_reader):
    make_alert(key="1", severity=Severity.HIGH)
    make_alert(key="2", severity=Severity.HIGH)
    make_alert(key="3", severity=Severity.LOW)
    make_alert(key="4", severity=Severity.HIGH, status=AlertStatus.RESOLVED)

    response = signed_in(security_reader).get(LIST)

    counts = {value: count for value, _, count, _ in response.context["severities"]}
    assert counts == {Severity.HIGH: 2, Severity.MEDIUM: 0, Severity.LOW: 1}


def test_severity_filter_shows_only_that_severity(security_reader):
    make_alert("A high one", key="1", severity=Severity.HIGH)
    make_alert("A low one", key="2", severity=Severity.LOW)

    page = signed_in(security_reader).get(LIST, {"severity": "high"}).content.decode()

    assert "A high one" in page
    assert "A low one" not in page


def test_severity_filter_survives_paging(security_reader):
    for number in range(30):
        make_alert(f"High {number}", key=str(number), severity=Severity.HIGH)

    page = signed_in(security_reader).get(LIST, {"severity": "high"}).content.decode()

    assert "severity=high&amp;page=2" in page


def test_list_has_an_empty_state(security_reader):
    page = signed_in(security_reader).get(LIST).content.decode()

    assert "No open alerts" in page


def test_times_are_shown_in_the_viewers_zone(security_reader):
    security_reader.time_zone = "Europe/Paris"
    security_reader.save()
    make_alert(opened_at=datetime(2026, 1, 15, 9, 30, tzinfo=UTC))

    page = signed_in(security_reader).get(LIST).content.decode()

    assert "2026-01-15 10:30 CET" in page


def test_last_scanned_is_shown(security_reader):
    page = signed_in(security_reader).get(LIST).content.decode()

    assert "Last scanned:" in page


def test_alert_list_query_count_does_not_grow(security_reader, django_assert_max_num_queries):
    client = signed_in(security_reader)

    def add(count: int, start: int) -> None:
        for number in range(start, start + count):
            severity = Severity.values[number % 3]
            make_alert(f"Alert {number}", key=str(number), severity=severity, history=3)
            make_alert(f"Old {number}", key=f"old{number}", status=AlertStatus.RESOLVED, history=3)

    add(2, 0)
    baseline = queries_for(client, LIST)
    resolved_baseline = queries_for(client, LIST + "?tab=resolved")
    add(18, 2)

    with django_assert_max_num_queries(baseline):
        client.get(LIST)
    with django_assert_max_num_queries(resolved_baseline):
        client.get(LIST + "?tab=resolved")


# --- An alert's page --------------------------------------------------------------------------


def test_alert_page_shows_description_affected_items_and_how_to_fix(security_reader):
    alert = make_alert(
        "Roles that don't require MFA on activation",
        description="2 roles can be activated without MFA.",
        how_to_fix="Require MFA on activation in the role's settings.",
        affected=[
            {"label": "Global Administrator", "url": "/directory/roles/1/", "id": 1},
            {"label": "User Administrator", "url": "", "id": 2},
        ],
        affected_count=2,
    )

    page = signed_in(security_reader).get(reverse("alerts:alert_detail", args=[alert.pk]))
    text = page.content.decode()

    assert page.status_code == 200
    assert "2 roles can be activated without MFA." in text
    assert '<a href="/directory/roles/1/">Global Administrator</a>' in text
    assert "User Administrator" in text
    assert "Require MFA on activation in the role&#x27;s settings." in text


def test_alert_page_shows_the_history_with_who_did_what(security_reader, pra):
    alert = make_alert(history=1)
    AlertHistory.objects.create(
        alert=alert,
        what=AlertHistory.What.REMEDIATED,
        by=pra,
        by_name="Pat Admin",
        details="Required MFA on 2 roles.",
    )

    page = signed_in(security_reader).get(reverse("alerts:alert_detail", args=[alert.pk]))
    text = page.content.decode()

    assert "Remediation applied" in text
    assert "by Pat Admin" in text
    assert "Required MFA on 2 roles." in text
    assert "by system (alert scan)" in text


def test_alert_page_of_an_unknown_alert_is_404(security_reader):
    response = signed_in(security_reader).get(reverse("alerts:alert_detail", args=[999999]))

    assert response.status_code == 404
    assert refusal().message == "view security alert 999999"


def test_alert_page_is_refused_to_an_outsider(outsider):
    alert = make_alert()

    response = signed_in(outsider).get(reverse("alerts:alert_detail", args=[alert.pk]))

    assert response.status_code == 403
    assert refusal().message == "view security alerts"


def test_alert_page_query_count_does_not_grow_with_history(
    security_reader, django_assert_max_num_queries
):
    client = signed_in(security_reader)
    alert = make_alert(history=2, affected=[{"label": "x", "url": "", "id": 1}] * 2)
    url = reverse("alerts:alert_detail", args=[alert.pk])
    baseline = queries_for(client, url)
    for number in range(18):
        AlertHistory.objects.create(alert=alert, what="updated", by_name="system (alert scan)")
    Alert.objects.filter(pk=alert.pk).update(affected=[{"label": "x", "url": "", "id": 1}] * 20)

    with django_assert_max_num_queries(baseline):
        client.get(url)


def test_resource_owner_sees_the_alerts_about_her_scopes_only(resource_owner, tree):
    make_alert("About Production", kind="too_many_owners", key=str(tree["sub"].pk))
    make_alert("About Sandbox", kind="too_many_owners", key=str(tree["other_sub"].pk))
    make_alert("About the directory", kind=TOO_MANY_GLOBAL_ADMINS)

    page = signed_in(resource_owner).get(LIST).content.decode()

    assert "About Production" in page
    assert "About Sandbox" not in page
    assert "About the directory" not in page
    assert SETTINGS not in page


def test_resource_owner_gets_404_for_a_directory_alert(resource_owner):
    alert = make_alert(kind=TOO_MANY_GLOBAL_ADMINS)

    response = signed_in(resource_owner).get(reverse("alerts:alert_detail", args=[alert.pk]))

    assert response.status_code == 404
    assert refusal().message == f"view security alert {alert.pk}"


# --- Scan now ---------------------------------------------------------------------------------


def three_permanent_global_admins() -> None:
    for name in ("gina", "gus", "gwen"):
        assign(make_user(name), "Global Administrator", permanent=True)


def test_scan_now_opens_an_alert_for_too_many_global_administrators(pra):
    three_permanent_global_admins()
    client = signed_in(pra)

    response = client.post(SCAN, follow=True)

    alert = Alert.objects.get(kind=TOO_MANY_GLOBAL_ADMINS, status=AlertStatus.OPEN)
    assert response.redirect_chain[-1][0] == LIST
    assert alert.affected_count == 3
    assert alert in response.context["alerts"]
    assert "Scan done: alerts" in response.content.decode()
    assert "opened" in response.content.decode()


def test_scan_now_shows_when_the_alert_opened_in_the_viewers_zone(pra):
    pra.time_zone = "Europe/Paris"
    pra.save()
    three_permanent_global_admins()
    client = signed_in(pra)

    at = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=2)

    with time_machine.travel(at, tick=False):
        page = client.post(SCAN, follow=True).content.decode()

    paris = at.astimezone(ZoneInfo("Europe/Paris"))
    assert f"{paris:%Y-%m-%d %H:%M} {paris.tzname()}" in page


def test_scan_now_records_who_pressed_it(pra):
    three_permanent_global_admins()

    signed_in(pra).post(SCAN)

    alert = Alert.objects.get(kind=TOO_MANY_GLOBAL_ADMINS)
    assert list(alert.history.values_list("what", "by_name")) == [("opened", "Pat Admin")]


def test_scan_now_twice_says_nothing_changed(pra):
    client = signed_in(pra)
    client.post(SCAN)

    response = client.post(SCAN, follow=True)

    assert "Scan done: nothing changed." in response.content.decode()


def test_scan_now_is_refused_to_a_security_reader(security_reader):
    three_permanent_global_admins()

    response = signed_in(security_reader).post(SCAN)

    assert response.status_code == 403
    assert refusal().message == "run a security alert scan"
    assert not Alert.objects.exists()


def test_scan_now_takes_post_only(pra):
    assert signed_in(pra).get(SCAN).status_code == 405


# --- Remediation ------------------------------------------------------------------------------


def a_role_without_mfa_on_activation(pra) -> Alert:
    policy = RolePolicy.objects.get(role=role("Security Administrator"), scope=None)
    policy.require_mfa_on_activation = False
    policy.save()
    signed_in(pra).post(SCAN)
    return Alert.objects.get(kind=NO_MFA_ON_ACTIVATION, status=AlertStatus.OPEN)


def test_pra_sees_the_remediation_with_its_confirm_text(pra):
    alert = a_role_without_mfa_on_activation(pra)

    page = signed_in(pra).get(reverse("alerts:alert_detail", args=[alert.pk])).content.decode()

    assert reverse("alerts:remediate", args=[alert.pk]) in page
    assert "Require MFA on activation</button>" in page
    assert 'Turn on "require MFA on activation" for every role listed?' in page.replace(
        "&quot;", '"'
    )


def test_security_reader_sees_no_remediation_button(pra, security_reader):
    alert = a_role_without_mfa_on_activation(pra)

    response = signed_in(security_reader).get(reverse("alerts:alert_detail", args=[alert.pk]))

    assert response.status_code == 200
    assert reverse("alerts:remediate", args=[alert.pk]) not in response.content.decode()


def test_remediation_through_the_page_resolves_the_alert(pra):
    alert = a_role_without_mfa_on_activation(pra)

    response = signed_in(pra).post(reverse("alerts:remediate", args=[alert.pk]), follow=True)

    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    assert RolePolicy.objects.get(
        role=role("Security Administrator"), scope=None
    ).require_mfa_on_activation
    page = response.content.decode()
    assert "Activating Security Administrator now requires MFA." in page
    assert "Remediation applied" in page
    assert "Resolved" in page
    assert reverse("alerts:remediate", args=[alert.pk]) not in page


def test_resource_owner_sees_the_remediation_of_an_alert_about_her_scope(resource_owner, tree):
    alert = make_alert(kind="too_many_permanent_owners", key=str(tree["sub"].pk))

    page = signed_in(resource_owner).get(reverse("alerts:alert_detail", args=[alert.pk]))

    assert reverse("alerts:remediate", args=[alert.pk]) in page.content.decode()


def test_pra_is_told_who_fixes_a_resource_alert(pra, tree):
    alert = make_alert(kind="too_many_permanent_owners", key=str(tree["sub"].pk))

    page = signed_in(pra).get(reverse("alerts:alert_detail", args=[alert.pk])).content.decode()

    assert reverse("alerts:remediate", args=[alert.pk]) not in page
    assert "An Owner or User Access Administrator of this scope can fix this" in page


def test_remediation_is_refused_to_a_security_reader(pra, security_reader):
    alert = a_role_without_mfa_on_activation(pra)

    response = signed_in(security_reader).post(reverse("alerts:remediate", args=[alert.pk]))

    assert response.status_code == 403
    assert refusal().message == f"run the remediation of security alert {alert.pk}"
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN


def test_remediation_of_a_resolved_alert_says_so(pra):
    alert = a_role_without_mfa_on_activation(pra)
    client = signed_in(pra)
    client.post(reverse("alerts:remediate", args=[alert.pk]))

    response = client.post(reverse("alerts:remediate", args=[alert.pk]), follow=True)

    assert "The remediation did not run: This alert is resolved" in response.content.decode()


def test_remediation_of_a_rule_without_one_is_refused(pra):
    alert = make_alert(kind=TOO_MANY_GLOBAL_ADMINS)

    response = signed_in(pra).post(reverse("alerts:remediate", args=[alert.pk]))

    assert response.status_code == 403
    assert refusal().message == f"run the remediation of security alert {alert.pk}"


# --- Settings ---------------------------------------------------------------------------------


def settings_post(client, **changes):
    """The settings form as the page shows it, with some fields changed (`kind-name`)."""
    form = client.get(SETTINGS).context["rules"]
    data = {}
    for rule_form, _ in form:
        for name, field in rule_form.fields.items():
            value = rule_form[name].value()
            key = rule_form.add_prefix(name)
            if isinstance(value, bool):
                if value:
                    data[key] = "on"
            elif value is not None:
                data[key] = str(value)
    for key, value in changes.items():
        key = key.replace("__", "-")
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return client.post(SETTINGS, data, follow=True)


def test_settings_list_every_rule_with_its_thresholds(security_reader):
    page = signed_in(security_reader).get(SETTINGS).content.decode()

    assert "There are too many Global Administrators" in page
    assert "More Global Administrators than (accounts)" in page
    assert "From 2 to 100 accounts." in page


def test_settings_are_read_only_for_a_security_reader(security_reader):
    response = signed_in(security_reader).get(SETTINGS)
    page = response.content.decode()

    assert response.status_code == 200
    assert "You may see these settings but not change them." in page
    assert "Save settings" not in page
    assert all(form.fields["enabled"].disabled for form, _ in response.context["rules"])


def test_settings_are_refused_to_a_resource_owner(resource_owner):
    response = signed_in(resource_owner).get(SETTINGS)

    assert response.status_code == 403
    assert refusal().message == "view the security alert settings"


def test_settings_post_by_a_security_reader_is_refused(security_reader):
    response = signed_in(security_reader).post(SETTINGS, {"too_many_global_admins-count": "5"})

    assert response.status_code == 403
    assert refusal().message == "change the security alert settings"
    assert not AlertSetting.objects.filter(kind=TOO_MANY_GLOBAL_ADMINS).exists()


def test_pra_saves_a_threshold(pra):
    response = settings_post(signed_in(pra), too_many_global_admins__count="5")

    setting = AlertSetting.objects.get(kind=TOO_MANY_GLOBAL_ADMINS)
    assert setting.thresholds["count"] == 5
    assert response.redirect_chain[-1][0] == SETTINGS
    assert "Alert settings saved: There are too many Global Administrators." in (
        response.content.decode()
    )


def test_pra_turns_a_rule_off(pra):
    settings_post(signed_in(pra), too_many_global_admins__enabled=None)

    assert AlertSetting.objects.get(kind=TOO_MANY_GLOBAL_ADMINS).enabled is False


def test_unchanged_settings_save_nothing(pra):
    response = settings_post(signed_in(pra))

    assert not AlertSetting.objects.exists()
    assert "Nothing changed." in response.content.decode()


def test_a_threshold_out_of_range_saves_nothing_and_keeps_what_was_typed(pra):
    response = settings_post(
        signed_in(pra),
        stale_accounts_in_privileged_role__days="45",
        too_many_global_admins__count="1000",
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "Nothing was saved" in page
    assert "More Global Administrators than must be from 2 to 100 accounts." in page
    assert 'value="1000"' in page
    assert 'value="45"' in page
    assert not AlertSetting.objects.exists()


def test_a_threshold_that_is_not_a_number_is_refused(pra):
    response = settings_post(signed_in(pra), too_many_global_admins__count="many")

    assert "More Global Administrators than must be a whole number." in response.content.decode()
    assert not AlertSetting.objects.exists()


# --- Who may do what, page by page (the rows the permission matrix takes) ----------------------

PERSONAS = ["outsider", "eligible_user", "security_reader", "pra", "resource_owner"]
MATRIX = [
    # (URL name, which alert, method, statuses in PERSONAS order)
    ("alerts:alert_list", None, "get", [403, 403, 200, 200, 200]),
    ("alerts:alert_list", None, "post", [405, 405, 405, 405, 405]),
    ("alerts:scan", None, "get", [405, 405, 405, 405, 405]),
    ("alerts:scan", None, "post", [403, 403, 403, 302, 403]),
    ("alerts:settings", None, "get", [403, 403, 200, 200, 403]),
    ("alerts:settings", None, "post", [403, 403, 403, 200, 403]),  # empty: the form back
    ("alerts:alert_detail", "directory", "get", [403, 403, 200, 200, 404]),
    ("alerts:alert_detail", "production", "get", [403, 403, 200, 200, 200]),
    ("alerts:alert_detail", "sandbox", "get", [403, 403, 200, 200, 404]),
    ("alerts:alert_detail", "directory", "post", [405, 405, 405, 405, 405]),
    ("alerts:remediate", "directory", "get", [405, 405, 405, 405, 405]),
    ("alerts:remediate", "directory", "post", [403, 403, 403, 302, 404]),
    # Resource alerts are fixed by the scope's managers (a PRA manages no resource roles).
    ("alerts:remediate", "production", "post", [403, 403, 403, 403, 302]),
    ("alerts:remediate", "sandbox", "post", [403, 403, 403, 403, 404]),
]


@pytest.mark.parametrize(("name", "which", "method", "statuses"), MATRIX)
def test_alert_pages_answer_each_persona(request, tree, name, which, method, statuses):
    users = [request.getfixturevalue(persona) for persona in PERSONAS]
    answers = []
    for user in users:
        # A fresh alert per persona: a remediation that worked leaves nothing to remediate.
        Alert.objects.update(status=AlertStatus.RESOLVED)
        alerts = {
            "directory": make_alert(kind=NO_MFA_ON_ACTIVATION),
            "production": make_alert(kind="too_many_permanent_owners", key=str(tree["sub"].pk)),
            "sandbox": make_alert(kind="too_many_permanent_owners", key=str(tree["other_sub"].pk)),
        }
        url = reverse(name, args=[alerts[which].pk] if which else [])
        answers.append(getattr(signed_in(user), method)(url).status_code)

    assert dict(zip(PERSONAS, answers)) == dict(zip(PERSONAS, statuses))


# --- The Django admin -------------------------------------------------------------------------


def test_admin_shows_an_alert_with_its_history_read_only():
    superuser = make_user("root-admin", is_superuser=True, is_staff=True)
    alert = make_alert("Seen in the admin", history=2)
    client = signed_in(superuser)

    page = client.get(reverse("admin:alerts_alert_change", args=[alert.pk]))
    refused = client.post(reverse("admin:alerts_alert_delete", args=[alert.pk]), {"post": "yes"})

    assert page.status_code == 200
    assert "entry 1" in page.content.decode()
    assert refused.status_code == 403
    assert Alert.objects.filter(pk=alert.pk).exists()
