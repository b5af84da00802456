"""Security alerts: the list (open and resolved), one alert with its history and remediation,
the settings of the rules, and "Scan now".

Who sees alerts: directory viewers (Privileged Role, Global and Security Administrators,
Security and Global Readers), and resource managers the alerts about their scopes
(`alerts.services.visible_alerts`). Who scans and changes settings: directory managers
(Privileged Role and Global Administrators); who remediates: directory managers for directory
alerts, the scope's Owners and User Access Administrators for resource alerts. Every refusal
goes through `assignments.authz.deny`; an alert the viewer may not see is a 404 (ids do not
leak).
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Case, Count, IntegerField, Value, When
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_q.models import Success

from alerts import services
from alerts.forms import RuleSettingsForm
from alerts.models import SEVERITY_ORDER, Alert, AlertHistory, AlertStatus, Severity
from alerts.rules import RESOURCES, RULES
from assignments import authz
from assignments.catalog import Perm
from assignments.models import Scope
from pim_portal.params import positive_int

SCAN_TASK = "alerts.tasks.scan_task"

PAGE_SIZE = 25
TABS = {AlertStatus.OPEN: "Open", AlertStatus.RESOLVED: "Resolved"}
SEVERITY_COLOURS = {Severity.HIGH: "danger", Severity.MEDIUM: "warning", Severity.LOW: "info"}


# Who may do what ------------------------------------------------------------------------


def _viewer_grants(request) -> authz.Grants:
    """The viewer's grants, or a refusal: directory viewers and resource managers see alerts."""
    grants = authz.request_grants(request)
    if not (grants.can_view_directory() or grants.has_anywhere(Perm.MANAGE_RESOURCES)):
        authz.deny(request.user, what="view security alerts")
    return grants


def _require_manager(request, grants: authz.Grants, what: str) -> None:
    if not grants.can_manage_directory():
        authz.deny(request.user, what=what)


def _may_remediate(grants: authz.Grants, rule, alert: Alert) -> bool:
    """Directory alerts: directory managers. Resource alerts (keyed by scope id): managers of
    that scope, as `alerts.services.remediate` checks again at its door."""
    if rule is None or rule.remediation is None:
        return False
    if rule.scope == RESOURCES:
        scope = Scope.objects.filter(pk=positive_int(alert.key) or 0).first()
        return scope is not None and grants.can_manage_scope(scope)
    return grants.can_manage_directory()


def _alert_for_viewer(request, alert_id, grants: authz.Grants) -> Alert:
    """An alert the viewer may see, else a 404 (audited)."""
    pk = positive_int(alert_id)
    alert = services.visible_alerts(grants).filter(pk=pk).first() if pk else None
    if alert is None:
        authz.deny(request.user, what=f"view security alert {alert_id}", not_found=True)
    return alert


# Pages -----------------------------------------------------------------------------------


def _severity_rank():
    """Open alerts read High, Medium, Low: the order of SEVERITY_ORDER, in SQL."""
    return Case(
        *(When(severity=value, then=Value(rank)) for value, rank in SEVERITY_ORDER.items()),
        default=Value(len(SEVERITY_ORDER)),
        output_field=IntegerField(),
    )


def _counts(visible) -> dict:
    """{status: {severity: count}} of the visible alerts: one query."""
    counts = {status: dict.fromkeys(Severity.values, 0) for status in AlertStatus.values}
    rows = visible.order_by().values_list("status", "severity").annotate(n=Count("pk"))
    for status, severity, n in rows:
        counts.setdefault(status, {})[severity] = n
    return counts


def _last_scanned():
    """When the periodic scan last succeeded (django-q keeps the latest successful tasks; a
    "Scan now" reports its own result in a message). One query."""
    last = Success.objects.filter(func=SCAN_TASK).order_by("-stopped").values("stopped").first()
    return last["stopped"] if last else None


@require_GET
def alert_list(request):
    """Open alerts by severity (High first), or the history of resolved ones; filters in the
    URL. A constant number of queries, whatever the number of alerts."""
    grants = _viewer_grants(request)
    visible = services.visible_alerts(grants)
    tab = request.GET.get("tab")
    tab = tab if tab in TABS else AlertStatus.OPEN
    severity = request.GET.get("severity")
    severity = severity if severity in Severity.values else ""
    counts = _counts(visible)
    shown = visible.filter(status=tab)
    if severity:
        shown = shown.filter(severity=severity)
    if tab == AlertStatus.OPEN:
        shown = shown.annotate(rank=_severity_rank()).order_by("rank", "-updated_at", "-pk")
    else:
        shown = shown.order_by("-resolved_at", "-pk")
    page = Paginator(shown, PAGE_SIZE).get_page(request.GET.get("page"))
    tab_counts = counts.get(tab, {})
    return render(
        request,
        "alerts/alert_list.html",
        {
            "section": "alerts",
            "tab": tab,
            "tabs": [
                (key, label, sum(counts.get(key, {}).values())) for key, label in TABS.items()
            ],
            "severity": severity,
            "severities": [
                (value, label, tab_counts.get(value, 0), SEVERITY_COLOURS[value])
                for value, label in Severity.choices
            ],
            "page_obj": page,
            "alerts": page.object_list,
            "open_high": counts[AlertStatus.OPEN][Severity.HIGH],
            "last_scanned": _last_scanned(),
            "can_manage": grants.can_manage_directory(),
            "can_view_settings": grants.can_view_directory(),
        },
    )


@require_GET
def alert_detail(request, pk: int):
    """One alert: what it found, the affected items, how to fix it, the remediation where the
    rule has one (for managers, on an open alert), and its history."""
    grants = _viewer_grants(request)
    alert = _alert_for_viewer(request, pk, grants)
    rule = RULES.get(alert.kind)
    remediation = getattr(rule, "remediation", None)
    open_ = alert.status == AlertStatus.OPEN
    history = AlertHistory.objects.filter(alert=alert).order_by("-at", "-pk")
    return render(
        request,
        "alerts/alert_detail.html",
        {
            "section": "alerts",
            "alert": alert,
            "rule": rule,
            "remediation": remediation,
            "can_remediate": open_ and _may_remediate(grants, rule, alert),
            "history": history,
            "can_manage": grants.can_manage_directory(),
        },
    )


@require_POST
def remediate(request, pk: int):
    """Run the remediation of an open alert's rule (directory managers)."""
    grants = _viewer_grants(request)
    alert = _alert_for_viewer(request, pk, grants)
    if not _may_remediate(grants, RULES.get(alert.kind), alert):
        authz.deny(
            request.user, what=f"run the remediation of security alert {alert.pk}", target=alert
        )
    try:
        message = services.remediate(request.user, alert)
    except ValidationError as refused:
        messages.error(request, f"The remediation did not run: {' '.join(refused.messages)}")
    else:
        messages.success(request, message)
    return redirect("alerts:alert_detail", pk=alert.pk)


def _scan_summary(result) -> str:
    parts = [
        (len(result.opened), "opened"),
        (len(result.updated), "updated"),
        (len(result.resolved), "resolved"),
    ]
    if not any(count for count, _ in parts):
        return "Scan done: nothing changed."
    words = ", ".join(f"{count} {what}" for count, what in parts)
    return f"Scan done: alerts {words}."


@require_POST
def scan(request):
    """Scan now: evaluate every enabled rule at once (directory managers)."""
    grants = _viewer_grants(request)
    _require_manager(request, grants, "run a security alert scan")
    result = services.scan(request.user)
    messages.success(request, _scan_summary(result))
    if result.failed:
        titles = ", ".join(RULES[kind].title for kind in result.failed if kind in RULES)
        messages.warning(request, f"These alerts could not be checked (see the logs): {titles}.")
    return redirect(reverse("alerts:alert_list"))


# Settings --------------------------------------------------------------------------------


def _rule_forms(data, read_only: bool) -> list[RuleSettingsForm]:
    stored = services.settings_by_kind()
    forms = []
    for kind, rule in RULES.items():
        setting = stored.get(kind)
        forms.append(
            RuleSettingsForm(
                data,
                rule=rule,
                enabled=setting.enabled if setting is not None else True,
                thresholds=services.effective_thresholds(
                    kind, setting.thresholds if setting is not None else None
                ),
                read_only=read_only,
            )
        )
    return forms


def _save(request, forms: list[RuleSettingsForm]) -> list[str]:
    """Every changed rule through `setting_update`, all or none: the titles of those saved,
    or an empty list with the refusals on their rules' forms."""
    saved, refused = [], False
    with transaction.atomic():
        for form in forms:
            if not form.has_changed():
                continue
            try:
                services.setting_update(
                    request.user,
                    form.rule.kind,
                    form.enabled_value,
                    form.threshold_values(),
                )
            except ValidationError as error:
                form.add_service_errors(error)
                refused = True
            else:
                saved.append(form.rule.title)
        if refused:
            transaction.set_rollback(True)  # nothing saved: the page shows what was sent
            return []
    return saved


@require_http_methods(["GET", "POST"])
def alert_settings(request):
    """Each rule's switch and thresholds: read by directory viewers, changed by managers.
    One form for every rule; a refusal on one rule saves none and keeps what was typed."""
    grants = authz.request_grants(request)
    if not grants.can_view_directory():
        authz.deny(request.user, what="view the security alert settings")
    can_manage = grants.can_manage_directory()
    if request.method == "POST":
        _require_manager(request, grants, "change the security alert settings")
    forms = _rule_forms(request.POST if request.method == "POST" else None, not can_manage)
    if request.method == "POST":
        valid = [form.is_valid() for form in forms]  # every form, so every error shows
        if all(valid):
            saved = _save(request, forms)
            if saved:
                messages.success(request, f"Alert settings saved: {', '.join(saved)}.")
                return redirect("alerts:settings")
            if not any(form.errors for form in forms):
                messages.info(request, "Nothing changed.")
                return redirect("alerts:settings")
        messages.error(request, "Nothing was saved: see the rules marked below.")
    return render(
        request,
        "alerts/settings.html",
        {
            "section": "alerts",
            "rules": [
                (form, SEVERITY_COLOURS.get(form.rule.severity, "secondary")) for form in forms
            ],
            "can_manage": can_manage,
        },
    )
