"""django-q2 entry points of security alerts: the periodic scan.

Every ALERT_SCAN_MINUTES (5 by default) a worker scans every enabled rule as the system
("system (alert scan)"); the scan is idempotent, so a missed or doubled run changes nothing.
"""

from django.conf import settings
from django_q.models import Schedule

from alerts import services

SCAN_SCHEDULE = "pim: scan security alerts"


def scan_task() -> dict:
    result = services.scan(services.SCAN_ACTOR)
    return {
        "opened": len(result.opened),
        "updated": len(result.updated),
        "resolved": len(result.resolved),
        "failed": sorted(result.failed),
    }


def scan_emergency_access() -> dict:
    """Right after an emergency access sign-in (or its follow-up closed): its high alert opens
    (or resolves) at once, not at the next periodic scan."""
    result = services.scan(services.SCAN_ACTOR, kinds=["emergency_access_used"])
    return {"opened": len(result.opened), "resolved": len(result.resolved)}


def ensure_periodic_schedules(**kwargs) -> None:
    """Create (or re-time) the periodic scan once (called after migrate)."""
    Schedule.objects.update_or_create(
        name=SCAN_SCHEDULE,
        defaults={
            "func": "alerts.tasks.scan_task",
            "schedule_type": Schedule.MINUTES,
            "minutes": max(1, int(getattr(settings, "ALERT_SCAN_MINUTES", 5))),
            "repeats": -1,
        },
    )
