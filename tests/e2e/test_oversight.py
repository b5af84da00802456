"""Oversight in the browser: an administrator sees a security alert on the dashboard, opens
it, fixes it with its remediation and sees it resolved; a Security Reader filters the audit
log, opens an event, and exports what the filters show as CSV."""

import csv
import re

import pytest
from playwright.sync_api import expect

from alerts import services as alert_services
from alerts.models import Alert, AlertHistory, AlertStatus, Severity
from alerts.rules import RULES
from assignments.models import Assignment, RolePolicy
from audit import log as audit_log
from audit.models import AuditEvent
from tests.factories import assign, make_user, role, root

pytestmark = pytest.mark.browser

SECURITY_ADMINISTRATOR = "Security Administrator"
USER_ADMINISTRATOR = "User Administrator"
NO_MFA = RULES["no_mfa_on_activation"]
FIXED = f"Activating {SECURITY_ADMINISTRATOR} now requires MFA."


def sign_out(page) -> None:
    page.context.clear_cookies()


def browser_errors(page) -> list[str]:
    """Script errors and console errors of the pages (the favicon the portal lacks aside)."""
    errors: list[str] = []

    def console(message) -> None:
        if message.type == "error" and "favicon.ico" not in message.location.get("url", ""):
            errors.append(f"{page.url}: {message.text}")

    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    page.on("console", console)
    return errors


def mfa_required(role_name: str) -> bool:
    return RolePolicy.objects.get(
        role=role(role_name), scope__isnull=True
    ).require_mfa_on_activation


# --- An alert fixed from the dashboard -----------------------------------------------------


@pytest.fixture
def no_mfa_alert(pra):
    """Security Administrator's settings let it be activated without an MFA code, and the
    periodic scan has run (here, as the worker would run it)."""
    RolePolicy.objects.filter(role=role(SECURITY_ADMINISTRATOR), scope__isnull=True).update(
        require_mfa_on_activation=False
    )
    alert_services.scan(alert_services.SCAN_ACTOR)
    return Alert.objects.open().get(kind=NO_MFA.kind)


def test_administrator_fixes_an_alert_from_the_dashboard(page, login, pra, no_mfa_alert):
    errors = browser_errors(page)
    alert = no_mfa_alert
    assert alert.severity == Severity.LOW
    open_alerts = Alert.objects.open().count()
    open_low = Alert.objects.open().filter(severity=Severity.LOW).count()

    # Pat, a Privileged Role Administrator, lands on the dashboard: the alerts tile counts it.
    login(page, pra.username)
    tile = page.locator("#dashboard-tiles [data-tile=alerts]")
    expect(tile.locator("[data-count=alerts-open]")).to_have_text(str(open_alerts))
    expect(tile.locator("[data-severity=low]")).to_have_text(f"{open_low} low")
    # ... and the list of the most severe open alerts shows it, with its severity.
    listed = page.locator(f"#top-alerts [data-alert='{alert.pk}']")
    expect(listed).to_contain_text("Low")
    expect(listed).to_contain_text("1 role activated without MFA")
    expect(listed).to_contain_text("1 affected")

    # He opens it: what was found, the role it is about, and the fix the page offers.
    listed.get_by_role("link", name=alert.title).click()
    page.wait_for_url(f"**/alerts/{alert.pk}/")
    expect(page.locator("h1")).to_have_text("1 role activated without MFA")
    expect(page.locator("#alert-status")).to_have_text("Open")
    expect(page.locator("#affected-items")).to_have_text(SECURITY_ADMINISTRATOR)
    expect(page.locator("#how-to-fix")).to_contain_text("Require MFA on activation")
    history = page.locator("#history li")
    expect(history).to_have_count(1)
    expect(history.first).to_contain_text("Opened")
    expect(history.first).to_contain_text("by system (alert scan)")

    # He presses the remediation and confirms what the dialog asks.
    asked: list[str] = []

    def confirm(dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", confirm)
    page.locator("#remediation").get_by_role("button", name=NO_MFA.remediation.label).click()
    expect(page.get_by_role("alert").filter(has_text=FIXED)).to_have_count(1)
    assert asked == [NO_MFA.remediation.confirm_text]
    assert page.url.endswith(f"/alerts/{alert.pk}/")

    # The alert is resolved, by him, and the page no longer offers the fix.
    expect(page.locator("#alert-status")).to_have_text("Resolved")
    expect(page.locator("#remediation")).to_have_count(0)
    remediated = page.locator("#history li[data-what=remediated]")
    expect(remediated).to_contain_text("Remediation applied")
    expect(remediated).to_contain_text("by Pat Admin")
    expect(remediated).to_contain_text(f"{NO_MFA.remediation.label}: {FIXED}")
    resolved = page.locator("#history li[data-what=resolved]")
    expect(resolved).to_contain_text("Resolved")
    expect(resolved).to_contain_text("by Pat Admin")
    expect(resolved).to_contain_text("No longer found.")

    # The list of alerts has it among the resolved ones.
    page.locator(".breadcrumb").get_by_role("link", name="Security alerts").click()
    page.wait_for_url("**/alerts/?tab=resolved")
    row = page.locator(f"#alerts-table tr[data-alert='{alert.pk}']")
    expect(row).to_contain_text("1 role activated without MFA")
    expect(row).to_contain_text("Pat Admin")

    # Security Administrator's settings now ask for MFA on activation.
    page.goto(f"/roles/{role(SECURITY_ADMINISTRATOR).pk}/settings/")
    expect(page.get_by_label("On activation, require MFA")).to_be_checked()

    assert mfa_required(SECURITY_ADMINISTRATOR)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    assert alert.resolved_by == pra
    assert list(alert.history.values_list("what", flat=True)) == [
        AlertHistory.What.OPENED,
        AlertHistory.What.REMEDIATED,
        AlertHistory.What.RESOLVED,
    ]
    assert AuditEvent.objects.filter(
        action="pim.policy.updated", role=SECURITY_ADMINISTRATOR, actor=pra
    ).exists()
    assert AuditEvent.objects.filter(action=alert_services.REMEDIATED, actor=pra).exists()
    assert errors == []


# --- Standing access made eligible from the dashboard ---------------------------------------


def test_administrator_makes_standing_access_eligible_from_the_dashboard(page, login, pra):
    """The standing access table is drawn once and kept for every administrator; its
    checkboxes and buttons belong to a form outside it, which holds the session's token."""
    errors = browser_errors(page)
    ulla = make_user("ulla", display_name="Ulla Standing")
    standing = assign(ulla, USER_ADMINISTRATOR, permanent=True)

    login(page, pra.username)
    row = page.locator(f"#standing-access tr[data-assignment='{standing.pk}']")
    expect(row).to_contain_text("Ulla Standing")
    row.get_by_role("checkbox").check()
    page.get_by_label("Justification for the selected assignments").fill("Just in time")
    page.locator("#standing-access").get_by_role("button", name="Make eligible").click()

    expect(page.get_by_role("alert").filter(has_text="Made eligible 1 standing")).to_have_count(1)
    expect(row).to_have_count(0)  # drawn again: the write moved the assignments' generation
    standing.refresh_from_db()
    assert standing.end is not None
    eligible = Assignment.objects.in_force().eligible().get(principal_user=ulla)
    assert eligible.role.name == USER_ADMINISTRATOR
    assert errors == []


# --- The audit log filtered and exported ---------------------------------------------------


@pytest.fixture
def audit_trail(tree, pra, eligible_user, resource_owner):
    """Six events, oldest first: three about Security Administrator, three others."""
    erin = eligible_user
    production = tree["sub"].path
    directory = root().path
    events = [
        dict(
            action="pim.assignment.created",
            actor=pra,
            principal=erin,
            role=SECURITY_ADMINISTRATOR,
            scope=directory,
            message="Joins the incident response rota",
        ),
        dict(
            action="pim.assignment.created",
            actor=pra,
            principal=erin,
            role="Contributor",
            scope=production,
            message="Deploys the web shop",
        ),
        dict(
            action="pim.request.activated",
            actor=erin,
            principal=erin,
            role=SECURITY_ADMINISTRATOR,
            scope=directory,
            message="Incident 4711: contain the phishing campaign",
        ),
        dict(
            action="pim.assignment.removed",
            actor=resource_owner,
            principal="Oscar Outsider",
            role="Owner",
            scope=production,
            message="Moved to another team",
        ),
        dict(
            action="pim.policy.updated",
            actor=pra,
            role=SECURITY_ADMINISTRATOR,
            before={"require_mfa_on_activation": False},
            after={"require_mfa_on_activation": True},
        ),
        dict(action="pim.security.signin_failed", principal="mallory", message="Wrong password"),
    ]
    return [audit_log.record(**fields) for fields in events]


def test_security_reader_filters_the_audit_log_and_exports_it(
    page, login, security_reader, audit_trail
):
    errors = browser_errors(page)
    assigned, _, activated, _, settings_changed, _ = audit_trail
    about_the_role = [settings_changed, activated, assigned]  # newest first, as listed

    # Sam, a Security Reader, opens Monitor › Audit log.
    login(page, security_reader.username)
    page.get_by_role("button", name="Monitor").click()
    page.get_by_role("link", name="Audit log").click()
    page.wait_for_url("**/audit/")
    expect(page.locator("h1")).to_have_text("Audit")
    for event in audit_trail:
        expect(page.locator(f"#audit-events tr[data-event='{event.pk}']")).to_have_count(1)

    # He filters by the role: only its three events are listed, and the filter is in the URL.
    page.get_by_label("Role", exact=True).select_option(SECURITY_ADMINISTRATOR)
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"[?&]role=Security\+Administrator(&|$)"))
    rows = page.locator("#audit-events tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.locator("td[data-label=Role]")).to_have_text([SECURITY_ADMINISTRATOR] * 3)
    expect(rows.locator("td[data-label=Activity]")).to_contain_text(
        ["Role settings changed", "Role activated", "Assignment added"]
    )
    expect(rows.locator("td[data-label=Actor]")).to_have_text(
        ["Pat Admin", "Erin Eligible", "Pat Admin"]
    )
    assert [int(pk) for pk in rows.evaluate_all("rs => rs.map(r => r.dataset.event)")] == [
        event.pk for event in about_the_role
    ]

    # He opens the activation's event, then comes back to the filtered list.
    rows.filter(has_text="Role activated").locator("td[data-label=Time] a").click()
    page.wait_for_url(f"**/audit/{activated.pk}/")
    expect(page.locator("h1")).to_have_text("Role activated")
    expect(page.locator("#event-result")).to_have_text("Success")
    fields = page.locator("#event-fields")
    expect(fields).to_contain_text("Erin Eligible")
    expect(fields).to_contain_text("Incident 4711: contain the phishing campaign")
    expect(page.locator("#event-role")).to_contain_text(SECURITY_ADMINISTRATOR)
    page.go_back()
    page.wait_for_url(re.compile(r"/audit/\?.*role=Security\+Administrator"))
    expect(page.get_by_label("Role", exact=True)).to_have_value(SECURITY_ADMINISTRATOR)
    expect(rows).to_have_count(3)

    # He exports what the filters show: the header, then only those three events.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export CSV").click()
    download = download_info.value
    assert re.fullmatch(r"audit-\d{8}-\d{6}\.csv", download.suggested_filename)
    with open(download.path(), encoding="utf-8", newline="") as exported:
        header, *lines = list(csv.reader(exported))
    assert header[:3] == ["id", "sequence", "time (UTC)"]
    column = {name: index for index, name in enumerate(header)}
    assert [int(line[column["id"]]) for line in lines] == [event.pk for event in about_the_role]
    assert [line[column["role"]] for line in lines] == [SECURITY_ADMINISTRATOR] * 3
    assert [line[column["activity"]] for line in lines] == [
        "Role settings changed",
        "Role activated",
        "Assignment added",
    ]
    assert [line[column["actor"]] for line in lines] == ["Pat Admin", "Erin Eligible", "Pat Admin"]

    # The export is itself on the record, with the filters it used.
    exported_event = AuditEvent.objects.get(action="pim.audit.exported")
    assert exported_event.actor == security_reader
    assert "role=Security Administrator" in exported_event.message
    page.goto("/audit/?action=pim.audit.exported")
    exports = page.locator("#audit-events tbody tr")
    expect(exports).to_have_count(1)
    expect(exports.locator("td[data-label=Actor]")).to_have_text("Sam Reader")
    expect(exports.locator("td[data-label=Activity]")).to_contain_text("Audit log exported")
    assert errors == []
