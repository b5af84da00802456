"""Durations and moments in words a person reads: for pages, mails and error messages alike
(domain code uses these too, so they live in the core, not in a template-tag library)."""

from datetime import datetime, timedelta

from django.utils import timezone


def duration_words(value: timedelta | None) -> str:
    if value is None:
        return "permanent"
    seconds = int(value.total_seconds())
    if seconds <= 0:
        return "0 minutes"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = []
    for amount, unit in ((days, "day"), (hours, "hour"), (minutes, "minute")):
        if amount:
            parts.append(f"{amount} {unit}{'' if amount == 1 else 's'}")
    return " ".join(parts[:2]) if parts else "less than a minute"


def when(value: datetime | None, empty: str = "Permanent") -> str:
    """A moment in the viewer's time zone, with the zone named: '2026-11-29 14:05 CET'."""
    if value is None:
        return empty
    try:
        local = timezone.localtime(value)
    except (OverflowError, ValueError):  # a date at the edge of the calendar: show it in UTC
        return f"{value:%Y-%m-%d %H:%M} UTC"
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"
