"""When a review's occurrences start and end: pure arithmetic on its settings, no queries.

Occurrences keep the local time of the first start in the review's time zone: a weekly review
that starts Monday 09:00 in Europe/Berlin starts at 09:00 there after the clocks change too
(08:00 or 07:00 UTC). Monthly steps keep the day of the month, or the month's last day when it
has fewer (31 January, 28 February, 31 March).
"""

import calendar
import zoneinfo
from datetime import date, datetime, timedelta

from reviews.choices import RECURRENCE_STEP, SHORTEST_PERIOD, Recurrence, RecurrenceEnd

# The longest an occurrence may last, whatever the recurrence.
MAX_DURATION_DAYS = 365


def is_time_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        return False
    return True


def zone_of(name: str):
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _add_months(moment: datetime, months: int) -> datetime:
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _local(moment: datetime, zone) -> datetime:
    """The wall-clock time of `moment` in the zone, without its offset (so steps keep it)."""
    return moment.astimezone(zone).replace(tzinfo=None)


def _aware(wall: datetime, zone) -> datetime:
    return wall.replace(tzinfo=zone)


def occurrence_start(*, first: datetime, recurrence: str, number: int, time_zone: str) -> datetime:
    """The start of occurrence `number` (0 is the first) at the first one's local time."""
    if number == 0 or recurrence == Recurrence.ONE_TIME:
        return first
    zone = zone_of(time_zone)
    weeks, months = RECURRENCE_STEP[recurrence]
    wall = _local(first, zone)
    if weeks:
        return _aware(wall + timedelta(weeks=weeks * number), zone)
    return _aware(_add_months(wall, months * number), zone)


def occurrence_end(*, start: datetime, duration_days: int, time_zone: str) -> datetime:
    """`duration_days` later on the wall clock of the review's time zone."""
    zone = zone_of(time_zone)
    return _aware(_local(start, zone) + timedelta(days=duration_days), zone)


def occurs(
    *,
    number: int,
    start: datetime,
    recurrence: str,
    recurrence_end: str,
    end_date: date | None,
    count: int | None,
    time_zone: str,
) -> bool:
    """Whether occurrence `number` exists under the recurrence's end rule."""
    if recurrence == Recurrence.ONE_TIME:
        return number == 0
    if recurrence_end == RecurrenceEnd.AFTER_COUNT:
        return count is not None and number < count
    if recurrence_end == RecurrenceEnd.ON_DATE:
        if end_date is None:
            return False
        begins = occurrence_start(
            first=start, recurrence=recurrence, number=number, time_zone=time_zone
        )
        return begins.astimezone(zone_of(time_zone)).date() <= end_date
    return True


def problems(
    *,
    start: datetime | None,
    duration_days: int | None,
    recurrence: str,
    recurrence_end: str,
    end_date: date | None,
    count: int | None,
    time_zone: str,
) -> list[str]:
    """Every rule of the schedule that the settings break, in words for the form."""
    found = []
    if start is None:
        return ["Choose when the review starts."]
    if not duration_days or duration_days < 1:
        found.append("A review lasts at least one day.")
    elif duration_days > MAX_DURATION_DAYS:
        found.append(f"A review lasts at most {MAX_DURATION_DAYS} days.")
    elif (
        recurrence in SHORTEST_PERIOD
        and timedelta(days=duration_days) > SHORTEST_PERIOD[recurrence]
    ):
        days = SHORTEST_PERIOD[recurrence].days
        label = Recurrence(recurrence).label.lower()
        found.append(
            f"A {label} review can last at most {days} days, or two occurrences would overlap."
        )
    if recurrence != Recurrence.ONE_TIME:
        if recurrence_end == RecurrenceEnd.AFTER_COUNT and not count:
            found.append("Say after how many occurrences the recurrence ends (at least one).")
        if recurrence_end == RecurrenceEnd.ON_DATE:
            first_day = start.astimezone(zone_of(time_zone)).date()
            if end_date is None:
                found.append("Choose the date on which the recurrence ends.")
            elif end_date < first_day:
                found.append(
                    f"The recurrence ends on {end_date:%Y-%m-%d}, before the review first starts "
                    f"({first_day:%Y-%m-%d}): it would never occur."
                )
    return found
