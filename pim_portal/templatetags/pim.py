"""Template helpers: dates in the viewer's time zone with the zone named, durations in words."""

from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()


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


@register.filter
def duration(value: timedelta | None) -> str:
    return duration_words(value)


@register.filter
def when(value: datetime | None, empty: str = "Permanent") -> str:
    """A moment in the viewer's time zone, with the zone named: '2026-11-29 14:05 CET'."""
    if value is None:
        return empty
    try:
        local = timezone.localtime(value)
    except (OverflowError, ValueError):  # a date at the edge of the calendar: show it in UTC
        return f"{value:%Y-%m-%d %H:%M} UTC"
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


@register.filter
def remaining(end: datetime | None) -> str:
    if end is None:
        return "permanent"
    left = end - timezone.now()
    if left.total_seconds() <= 0:
        return "ended"
    return duration_words(left)


@register.simple_tag(takes_context=True)
def querystring_with(context, **kwargs) -> str:
    """The current query string with some parameters replaced (filters survive paging)."""
    query = context["request"].GET.copy()
    for key, value in kwargs.items():
        if value in (None, ""):
            query.pop(key, None)
        else:
            query[key] = value
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.simple_tag
def status_badge(status: str, label: str = "") -> str:
    colours = {
        "eligible": "info",
        "active": "success",
        "provisioned": "success",
        "scheduled": "primary",
        "pending_approval": "warning",
        "denied": "danger",
        "canceled": "secondary",
        "expired": "secondary",
        "revoked": "dark",
        "failed": "danger",
    }
    colour = colours.get(status, "secondary")
    return format_html(
        '<span class="badge text-bg-{}">{}</span>',
        colour,
        label or status.replace("_", " ").capitalize(),
    )
