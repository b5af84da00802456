"""Helpers of the security alert tests: scanning as the worker does, reading alerts and their
history, and making data the way the portal's services (or someone around them) would."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from alerts import services
from alerts.models import Alert, AlertHistory, AlertStatus
from assignments import services as assignment_services
from assignments.models import AssignmentKind
from audit.models import AuditEvent
from tests.factories import role

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SYSTEM = "system (alert scan)"


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def scan(*kinds, actor=services.SCAN_ACTOR):
    """What the periodic task does (only `kinds`, when given); no rule may fail."""
    result = services.scan(actor, kinds=list(kinds) or None)
    assert result.failed == {}
    return result


def open_alerts(kind: str) -> list[Alert]:
    return list(Alert.objects.filter(kind=kind, status=AlertStatus.OPEN).order_by("key", "pk"))


def the_open_alert(kind: str, key: str = "") -> Alert:
    return Alert.objects.get(kind=kind, key=key, status=AlertStatus.OPEN)


def labels(alert: Alert) -> list[str]:
    return [entry["label"] for entry in alert.affected]


def ids(alert: Alert) -> set:
    return {entry["id"] for entry in alert.affected}


def history(alert: Alert) -> list[tuple[str, str]]:
    return list(
        AlertHistory.objects.filter(alert=alert).order_by("at", "pk").values_list("what", "by_name")
    )


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def assign_through_pim(actor, principal, role_name: str, *, kind=AssignmentKind.ACTIVE, **kw):
    """An assignment made the way the portal makes them: with its request."""
    kw.setdefault("justification", "Needed for the migration project")
    kw.setdefault("mfa_verified", True)
    if kind == AssignmentKind.ACTIVE:
        kw.setdefault("end", datetime.now(UTC) + 30 * DAY)
    else:
        kw.setdefault("end", datetime.now(UTC) + 300 * DAY)
    (request,) = assignment_services.assignment_create(
        actor=actor,
        principals=[principal],
        role=role(role_name),
        scope=kw.pop("scope", None),
        kind=kind,
        **kw,
    )
    return request.result_assignment
