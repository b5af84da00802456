"""Security alerts: the scan that opens, updates and resolves alerts from the rules'
findings; the rules' settings; remediation; which alerts a viewer sees.

- `scan(actor)`: every enabled rule (`alerts.rules.RULES`) is evaluated with its thresholds;
  a finding with no open alert opens one, a changed finding updates it, an open alert whose
  finding is gone is resolved (and every open alert of a rule turned off). Each change has its
  history row (by the user who pressed "Scan now", or "system (alert scan)"), opening and
  resolving have their audit events, and new high alerts are mailed to the administrators.
  A rule's alerts change in one transaction holding its settings row, so two scans at once
  take turns; a fixed number of queries per rule, however large the directory.
- `setting_update(actor, kind, enabled, thresholds)`: a rule's switch and thresholds.
- `remediate(actor, alert)`: the rule's remediation, then that rule is scanned again.
- `visible_alerts(grants)`: what a viewer may see.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import CharField, Q
from django.db.models.functions import Cast
from django.utils import timezone

from alerts.models import Alert, AlertHistory, AlertSetting, AlertStatus, Severity
from alerts.rules import RESOURCE_KINDS, RESOURCES, RULES, Finding, Rule
from assignments import authz
from assignments.catalog import Perm
from assignments.models import Scope
from audit import log as audit_log
from pim_portal import jobs
from pim_portal.actor import Actor

logger = logging.getLogger(__name__)

SCAN_ACTOR = Actor.system("alert scan")  # named "system (alert scan)" in history and audit
SCAN_ACTOR_NAME = SCAN_ACTOR.display_name
TURNED_OFF = "The alert was turned off."
GONE = "No longer found."

OPENED = "pim.alert.opened"
RESOLVED = "pim.alert.resolved"
SETTINGS_CHANGED = "pim.alert.settings_changed"
REMEDIATED = "pim.alert.remediated"


@dataclass
class ScanResult:
    opened: list[Alert] = field(default_factory=list)
    updated: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # kind -> what went wrong


# --- Settings ------------------------------------------------------------------------------


def _valid(threshold, value) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and threshold.minimum <= value <= threshold.maximum
    )


def effective_thresholds(kind: str, stored: dict | None = None) -> dict:
    """The rule's defaults, overlaid with the stored thresholds that are still valid."""
    rule = RULES[kind]
    values = rule.defaults()
    for name, value in (stored or {}).items():
        threshold = rule.thresholds.get(name)
        if threshold is not None and _valid(threshold, value):
            values[name] = value
    return values


def settings_by_kind() -> dict[str, AlertSetting]:
    """Every stored AlertSetting by kind (one query); a rule with none is on, with defaults."""
    return {setting.kind: setting for setting in AlertSetting.objects.all()}


def _require_directory_manager(actor: Actor, what: str) -> None:
    if not actor.is_system and not authz.grants_for(actor).can_manage_directory():
        authz.deny(actor, what=what)


def _whole(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return value


def _threshold_errors(rule: Rule, thresholds: dict) -> tuple[dict, dict]:
    """(the valid values, {name: [messages]}) of the thresholds given."""
    clean, errors = {}, {}
    for name, raw in (thresholds or {}).items():
        threshold = rule.thresholds.get(name)
        if threshold is None:
            errors.setdefault("__all__", []).append(f"{rule.title} has no threshold {name!r}.")
            continue
        value = _whole(raw)
        unit = f" {threshold.unit}" if threshold.unit else ""
        if isinstance(value, bool) or not isinstance(value, int):
            errors[name] = [f"{threshold.label} must be a whole number."]
        elif not threshold.minimum <= value <= threshold.maximum:
            errors[name] = [
                f"{threshold.label} must be from {threshold.minimum} to {threshold.maximum}{unit}."
            ]
        else:
            clean[name] = value
    return clean, errors


def setting_update(actor, kind: str, enabled: bool, thresholds: dict) -> AlertSetting:
    """Switch a rule on or off and set its thresholds, each within the rule's range.

    Only Privileged Role and Global Administrators in force (directory managers). Refused as
    a whole, with a message per threshold, when one is out of range. Turning a rule off
    resolves its open alerts at once (by the actor). Audited when something changed.
    """
    actor = Actor.of(actor)
    rule = RULES.get(kind)
    if rule is None:
        raise ValidationError(f"There is no security alert {kind!r}.")
    _require_directory_manager(actor, f"change the settings of the alert {rule.title!r}")
    clean, errors = _threshold_errors(rule, thresholds)
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    with transaction.atomic():
        setting, _ = AlertSetting.objects.select_for_update().get_or_create(kind=kind)
        before = {
            "enabled": setting.enabled,
            "thresholds": effective_thresholds(kind, setting.thresholds),
        }
        kept = {
            name: value
            for name, value in (setting.thresholds or {}).items()
            if name in rule.thresholds and _valid(rule.thresholds[name], value)
        }
        setting.enabled = bool(enabled)
        setting.thresholds = {**kept, **clean}
        setting.updated_by = actor.user
        setting.save()
        after = {
            "enabled": setting.enabled,
            "thresholds": effective_thresholds(kind, setting.thresholds),
        }
        if before != after:
            audit_log.record(
                action=SETTINGS_CHANGED,
                actor=actor,
                target=setting,
                before=before,
                after=after,
                message=f"Settings of the alert {rule.title!r} changed.",
            )
        if not setting.enabled:
            open_alerts = list(Alert.objects.open().filter(kind=kind))
            _resolve(rule, open_alerts, actor=actor, now=now, why=TURNED_OFF)
    return setting


# --- The scan ------------------------------------------------------------------------------


def _ensure_settings(kinds: list[str]) -> None:
    """A settings row per rule (on, defaults): what a rule's scan locks. One INSERT."""
    AlertSetting.objects.bulk_create(
        [AlertSetting(kind=kind) for kind in kinds], ignore_conflicts=True
    )


def _scope_paths(rule: Rule, keys) -> dict[str, str]:
    """The scope path of each resource alert's key, for its audit events (one query)."""
    if rule.scope != RESOURCES:
        return {}
    ids = [int(key) for key in keys if str(key).isdigit()]
    return {
        str(pk): path for pk, path in Scope.objects.filter(pk__in=ids).values_list("pk", "path")
    }


def _audit(rule: Rule, action: str, alerts: list[Alert], *, actor: Actor, why: str = "") -> None:
    if not alerts:
        return
    paths = _scope_paths(rule, [alert.key for alert in alerts])
    audit_log.record_many(
        {
            "action": action,
            "actor": actor,
            "target": alert,
            "scope": paths.get(alert.key, ""),
            "after": {
                "kind": alert.kind,
                "key": alert.key,
                "severity": alert.severity,
                "status": alert.status,
                "title": alert.title,
                "affected_count": alert.affected_count,
            },
            "message": f"{alert.title}. {why}".strip() if why else alert.title,
        }
        for alert in alerts
    )


def _history(alerts: list[Alert], what: str, *, actor: Actor, now, details) -> list[AlertHistory]:
    return [
        AlertHistory(
            alert=alert,
            at=now,
            what=what,
            by=actor.user,
            by_name=actor.display_name[:200],
            details=details(alert) if callable(details) else details,
        )
        for alert in alerts
    ]


def _resolve(rule: Rule, alerts: list[Alert], *, actor: Actor, now, why: str) -> list[Alert]:
    """Resolve open alerts (those still open: a conditional update), with history and audit."""
    if not alerts:
        return []
    Alert.objects.filter(pk__in=[a.pk for a in alerts], status=AlertStatus.OPEN).update(
        status=AlertStatus.RESOLVED,
        resolved_at=now,
        resolved_by=actor.user,
        resolved_by_name=actor.display_name[:200],
        updated_at=now,
    )
    for alert in alerts:
        alert.status, alert.resolved_at, alert.updated_at = AlertStatus.RESOLVED, now, now
        alert.resolved_by, alert.resolved_by_name = actor.user, actor.display_name[:200]
    AlertHistory.objects.bulk_create(
        _history(alerts, AlertHistory.What.RESOLVED, actor=actor, now=now, details=why)
    )
    _audit(rule, RESOLVED, alerts, actor=actor, why=why)
    return alerts


def _labels(affected) -> set[str]:
    return {str(entry.get("label", "")) for entry in affected or []}


def _what_changed(before: list, after: list, count_before: int, count_after: int) -> str:
    added, gone = _labels(after) - _labels(before), _labels(before) - _labels(after)
    parts = []
    if added:
        parts.append(f"{len(added)} newly affected")
    if gone:
        parts.append(f"{len(gone)} no longer affected")
    if count_before != count_after:
        parts.append(f"{count_after} affected in all (was {count_before})")
    return "; ".join(parts) or "Details changed."


def _fields(rule: Rule, finding: Finding) -> dict:
    return {
        "severity": rule.severity,
        "title": finding.title[:300],
        "description": finding.description,
        "how_to_fix": rule.how_to_fix,
        "affected": finding.affected,
        "affected_count": finding.affected_count,
    }


# High alerts whose event already mailed the administrators, with more to say (an emergency
# access sign-in mails every Global Administrator at once, with the follow-up's link).
MAILED_BY_THEIR_OWN_SERVICE = {"emergency_access_used"}
UPDATED_FIELDS = ["severity", "title", "description", "how_to_fix", "affected", "affected_count"]


def _apply(rule: Rule, findings: list[Finding], *, actor: Actor, now, why: str) -> ScanResult:
    """Turn one rule's findings into alert changes: a fixed number of queries."""
    result = ScanResult()
    open_alerts = {alert.key: alert for alert in Alert.objects.open().filter(kind=rule.kind)}
    wanted = {finding.key: finding for finding in findings}
    new = [
        Alert(kind=rule.kind, key=key, opened_at=now, updated_at=now, **_fields(rule, finding))
        for key, finding in wanted.items()
        if key not in open_alerts
    ]
    if new:
        result.opened = Alert.objects.bulk_create(new)
    history = _history(
        result.opened,
        AlertHistory.What.OPENED,
        actor=actor,
        now=now,
        details=lambda a: f"{a.affected_count} affected.",
    )
    for key, finding in wanted.items():
        alert = open_alerts.get(key)
        if alert is None:
            continue
        fields = _fields(rule, finding)
        if all(getattr(alert, name) == value for name, value in fields.items()):
            continue
        details = _what_changed(
            alert.affected, finding.affected, alert.affected_count, finding.affected_count
        )
        for name, value in fields.items():
            setattr(alert, name, value)
        alert.updated_at = now
        result.updated.append(alert)
        history += _history(
            [alert], AlertHistory.What.UPDATED, actor=actor, now=now, details=details
        )
    if result.updated:
        Alert.objects.bulk_update(result.updated, [*UPDATED_FIELDS, "updated_at"])
    if history:
        AlertHistory.objects.bulk_create(history)
    _audit(rule, OPENED, result.opened, actor=actor)
    gone = [alert for key, alert in open_alerts.items() if key not in wanted]
    result.resolved = _resolve(rule, gone, actor=actor, now=now, why=why)
    return result


def _scan_rule(rule: Rule, *, actor: Actor, now) -> ScanResult:
    with transaction.atomic():
        setting = AlertSetting.objects.select_for_update().get(kind=rule.kind)
        if not setting.enabled:
            return _apply(rule, [], actor=actor, now=now, why=TURNED_OFF)
        findings = rule.evaluate(effective_thresholds(rule.kind, setting.thresholds), now)
        return _apply(rule, findings, actor=actor, now=now, why=GONE)


def _scan(actor: Actor, now: datetime | None, kinds=None) -> ScanResult:
    now = now or timezone.now()
    wanted = [kind for kind in RULES if kinds is None or kind in kinds]
    _ensure_settings(wanted)
    result = ScanResult()
    for kind in wanted:
        try:
            done = _scan_rule(RULES[kind], actor=actor, now=now)
        except Exception as error:  # one broken rule must not silence the others
            logger.exception("The security alert rule %s failed", kind)
            result.failed[kind] = str(error) or error.__class__.__name__
            continue
        result.opened += done.opened
        result.updated += done.updated
        result.resolved += done.resolved
    high = [
        alert.pk
        for alert in result.opened
        if alert.severity == Severity.HIGH and alert.kind not in MAILED_BY_THEIR_OWN_SERVICE
    ]
    if high:
        jobs.enqueue("alerts.notifications.notify_opened", *high)
    return result


def scan(actor, now: datetime | None = None, *, kinds=None) -> ScanResult:
    """Evaluate every enabled rule (or only `kinds`) at `now` and open, update and resolve
    alerts. The system (the periodic task: `SCAN_ACTOR`) or a directory manager ("Scan now").
    """
    actor = Actor.of(actor)
    _require_directory_manager(actor, "run a security alert scan")
    return _scan(actor, now, kinds)


# --- Remediation ---------------------------------------------------------------------------


def _require_remediator(actor: Actor, rule: Rule, alert: Alert) -> None:
    """Directory rules: a directory manager. Resource rules: a manager of the alert's scope.
    The services the remediation calls check each change again."""
    if actor.is_system:
        return
    grants = authz.grants_for(actor)
    what = f"run the remediation of security alert {alert.pk}"
    if rule.scope == RESOURCES:
        scope = Scope.objects.filter(pk=int(alert.key)).first() if alert.key.isdigit() else None
        if scope is None or not grants.can_manage_scope(scope):
            authz.deny(actor, what=what, target=alert, scope=scope.path if scope else "")
    elif not grants.can_manage_directory():
        authz.deny(actor, what=what, target=alert)


def remediate(actor, alert: Alert) -> str:
    """Run the remediation of the alert's rule on what the alert lists, record it in the
    history (and the audit log), and scan that rule again so that a fixed alert resolves at
    once. Refused when the rule has none or the alert is resolved. The message to show."""
    actor = Actor.of(actor)
    alert = Alert.objects.get(pk=alert.pk)
    rule = RULES.get(alert.kind)
    if rule is not None:
        _require_remediator(actor, rule, alert)
    if rule is None or rule.remediation is None:
        raise ValidationError("This alert has no remediation action.")
    if alert.status != AlertStatus.OPEN:
        raise ValidationError("This alert is resolved: there is nothing to remediate.")
    message = rule.remediation.run(actor, alert)
    now = timezone.now()
    with transaction.atomic():
        AlertHistory.objects.bulk_create(
            _history(
                [alert],
                AlertHistory.What.REMEDIATED,
                actor=actor,
                now=now,
                details=f"{rule.remediation.label}: {message}",
            )
        )
        paths = _scope_paths(rule, [alert.key])
        audit_log.record(
            action=REMEDIATED,
            actor=actor,
            target=alert,
            scope=paths.get(alert.key, ""),
            message=f"{rule.remediation.label}: {message}",
        )
    _scan(actor, None, [alert.kind])
    return message


# --- Who sees what -------------------------------------------------------------------------


def visible_alerts(grants):
    """The alerts a viewer may see: every alert for directory viewers (Global, Privileged
    Role and Security Administrators, Security and Global Readers); for Owners and User
    Access Administrators, the resource rules' alerts about a scope at or below one they
    manage. Nothing for anyone else."""
    if grants.is_system or grants.can_view_directory():
        return Alert.objects.all()
    tops = grants.top_paths(Perm.MANAGE_RESOURCES)
    if not tops:
        return Alert.objects.none()
    below = Q(pk__in=[])
    for path in tops:
        below |= Q(path__startswith=path)
    keys = Scope.objects.filter(below).annotate(as_key=Cast("pk", CharField())).values("as_key")
    return Alert.objects.filter(kind__in=RESOURCE_KINDS, key__in=keys)
