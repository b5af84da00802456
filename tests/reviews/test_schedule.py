"""The arithmetic of a review's schedule: when occurrences start and end, whether one occurs,
and which settings are refused. Pure functions: no database."""

import zoneinfo
from datetime import UTC, date, datetime, timedelta

from reviews import schedule
from reviews.models import Recurrence, RecurrenceEnd

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def starts(first: datetime, recurrence: str, count: int, time_zone: str = "UTC") -> list:
    return [
        schedule.occurrence_start(first=first, recurrence=recurrence, number=n, time_zone=time_zone)
        for n in range(count)
    ]


def occurs(number: int, *, start, recurrence=Recurrence.WEEKLY, end=RecurrenceEnd.NEVER, **kw):
    return schedule.occurs(
        number=number,
        start=start,
        recurrence=recurrence,
        recurrence_end=end,
        end_date=kw.get("end_date"),
        count=kw.get("count"),
        time_zone=kw.get("time_zone", "UTC"),
    )


def problems(
    *,
    start=datetime(2026, 3, 2, 9, tzinfo=UTC),
    duration_days=14,
    recurrence=Recurrence.ONE_TIME,
    recurrence_end=RecurrenceEnd.NEVER,
    end_date=None,
    count=None,
    time_zone="UTC",
) -> list[str]:
    return schedule.problems(
        start=start,
        duration_days=duration_days,
        recurrence=recurrence,
        recurrence_end=recurrence_end,
        end_date=end_date,
        count=count,
        time_zone=time_zone,
    )


# --- Starts --------------------------------------------------------------------------------------


def test_weekly_occurrences_start_seven_days_apart():
    first = datetime(2026, 1, 5, 9, tzinfo=UTC)
    assert starts(first, Recurrence.WEEKLY, 3) == [
        first,
        datetime(2026, 1, 12, 9, tzinfo=UTC),
        datetime(2026, 1, 19, 9, tzinfo=UTC),
    ]


def test_monthly_occurrences_keep_the_day_of_the_month():
    first = datetime(2026, 11, 15, 9, tzinfo=UTC)
    assert starts(first, Recurrence.MONTHLY, 3) == [
        first,
        datetime(2026, 12, 15, 9, tzinfo=UTC),
        datetime(2027, 1, 15, 9, tzinfo=UTC),
    ]


def test_quarterly_occurrences_start_every_three_months():
    first = datetime(2026, 1, 15, 9, tzinfo=UTC)
    assert starts(first, Recurrence.QUARTERLY, 5) == [
        first,
        datetime(2026, 4, 15, 9, tzinfo=UTC),
        datetime(2026, 7, 15, 9, tzinfo=UTC),
        datetime(2026, 10, 15, 9, tzinfo=UTC),
        datetime(2027, 1, 15, 9, tzinfo=UTC),
    ]


def test_semi_annual_occurrences_start_every_six_months():
    first = datetime(2026, 1, 15, 9, tzinfo=UTC)
    assert starts(first, Recurrence.SEMI_ANNUALLY, 3) == [
        first,
        datetime(2026, 7, 15, 9, tzinfo=UTC),
        datetime(2027, 1, 15, 9, tzinfo=UTC),
    ]


def test_annual_occurrences_start_every_year():
    first = datetime(2026, 1, 15, 9, tzinfo=UTC)
    assert starts(first, Recurrence.ANNUALLY, 3) == [
        first,
        datetime(2027, 1, 15, 9, tzinfo=UTC),
        datetime(2028, 1, 15, 9, tzinfo=UTC),
    ]


def test_a_one_time_review_occurs_only_once():
    first = datetime(2026, 1, 15, 9, tzinfo=UTC)
    assert occurs(0, start=first, recurrence=Recurrence.ONE_TIME)
    assert not occurs(1, start=first, recurrence=Recurrence.ONE_TIME)


def test_monthly_from_31_january_starts_on_the_last_day_of_february():
    assert starts(datetime(2026, 1, 31, 9, tzinfo=UTC), Recurrence.MONTHLY, 2)[1] == datetime(
        2026, 2, 28, 9, tzinfo=UTC
    )


def test_monthly_from_31_january_starts_on_29_february_in_a_leap_year():
    assert starts(datetime(2028, 1, 31, 9, tzinfo=UTC), Recurrence.MONTHLY, 2)[1] == datetime(
        2028, 2, 29, 9, tzinfo=UTC
    )


def test_monthly_from_31_january_returns_to_31_march_after_february():
    assert starts(datetime(2026, 1, 31, 9, tzinfo=UTC), Recurrence.MONTHLY, 3)[2] == datetime(
        2026, 3, 31, 9, tzinfo=UTC
    )


def test_annual_from_29_february_starts_on_28_february_and_returns_in_the_next_leap_year():
    moments = starts(datetime(2028, 2, 29, 9, tzinfo=UTC), Recurrence.ANNUALLY, 5)
    assert moments[1] == datetime(2029, 2, 28, 9, tzinfo=UTC)
    assert moments[4] == datetime(2032, 2, 29, 9, tzinfo=UTC)


# --- Daylight saving time (Europe/Berlin: 29 March and 25 October 2026) -----------------------


def test_weekly_review_stays_at_nine_local_across_the_march_change():
    first = datetime(2026, 3, 23, 9, tzinfo=BERLIN)  # 08:00 UTC, winter time
    after = starts(first, Recurrence.WEEKLY, 2, "Europe/Berlin")[1]
    assert after.astimezone(BERLIN).replace(tzinfo=None) == datetime(2026, 3, 30, 9)
    assert after.astimezone(UTC) == datetime(2026, 3, 30, 7, tzinfo=UTC)


def test_weekly_review_stays_at_nine_local_across_the_october_change():
    first = datetime(2026, 10, 19, 9, tzinfo=BERLIN)  # 07:00 UTC, summer time
    after = starts(first, Recurrence.WEEKLY, 2, "Europe/Berlin")[1]
    assert after.astimezone(BERLIN).replace(tzinfo=None) == datetime(2026, 10, 26, 9)
    assert after.astimezone(UTC) == datetime(2026, 10, 26, 8, tzinfo=UTC)


def test_weekly_review_given_in_utc_keeps_the_local_time_of_its_zone():
    """The first start is stored in UTC; the local time kept is that of the review's zone."""
    first = datetime(2026, 3, 23, 8, tzinfo=UTC)  # 09:00 in Berlin
    assert starts(first, Recurrence.WEEKLY, 2, "Europe/Berlin")[1] == datetime(
        2026, 3, 30, 7, tzinfo=UTC
    )


def test_occurrence_ends_duration_days_later_on_the_local_wall_clock():
    start = datetime(2026, 3, 27, 9, tzinfo=BERLIN)  # the clocks go forward two days later
    end = schedule.occurrence_end(start=start, duration_days=7, time_zone="Europe/Berlin")
    assert end.astimezone(BERLIN).replace(tzinfo=None) == datetime(2026, 4, 3, 9)
    # (Subtracting two Berlin times would ignore their offsets: compare in UTC.)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(days=7, hours=-1)


def test_occurrence_end_in_utc_is_exactly_duration_days_later():
    start = datetime(2026, 3, 27, 9, tzinfo=UTC)
    assert schedule.occurrence_end(start=start, duration_days=14, time_zone="UTC") == datetime(
        2026, 4, 10, 9, tzinfo=UTC
    )


# --- Whether an occurrence exists ----------------------------------------------------------------


def test_a_recurrence_that_never_ends_keeps_occurring():
    assert occurs(500, start=datetime(2026, 1, 5, 9, tzinfo=UTC))


def test_a_recurrence_ending_on_a_date_occurs_on_that_date_and_not_after():
    first = datetime(2026, 1, 5, 9, tzinfo=UTC)
    on = dict(end=RecurrenceEnd.ON_DATE, end_date=date(2026, 1, 19))
    assert [occurs(n, start=first, **on) for n in range(4)] == [True, True, True, False]


def test_the_end_date_is_read_on_the_calendar_of_the_reviews_time_zone():
    """00:30 on Monday in Berlin is still Sunday in UTC: the Monday counts, past a Sunday end."""
    first = datetime(2026, 1, 5, 0, 30, tzinfo=BERLIN)
    on = dict(end=RecurrenceEnd.ON_DATE, end_date=date(2026, 1, 11), time_zone="Europe/Berlin")
    assert occurs(0, start=first, **on)
    assert not occurs(1, start=first, **on)  # Monday 12 January in Berlin


def test_a_recurrence_ending_after_n_occurrences_has_exactly_n():
    first = datetime(2026, 1, 5, 9, tzinfo=UTC)
    after = dict(end=RecurrenceEnd.AFTER_COUNT, count=3)
    assert [occurs(n, start=first, **after) for n in range(5)] == [True, True, True, False, False]


# --- Refused settings ----------------------------------------------------------------------------


def test_an_end_date_before_the_first_start_is_refused_as_never_occurring():
    found = problems(
        recurrence=Recurrence.WEEKLY,
        recurrence_end=RecurrenceEnd.ON_DATE,
        end_date=date(2026, 3, 1),
        duration_days=7,
    )
    assert len(found) == 1
    assert "before the review first starts" in found[0]
    assert "never occur" in found[0]


def test_an_end_date_on_the_day_of_the_first_start_is_allowed():
    found = problems(
        recurrence=Recurrence.WEEKLY,
        recurrence_end=RecurrenceEnd.ON_DATE,
        end_date=date(2026, 3, 2),
        duration_days=7,
    )
    assert found == []


def test_ending_on_a_date_needs_the_date():
    found = problems(
        recurrence=Recurrence.WEEKLY, recurrence_end=RecurrenceEnd.ON_DATE, duration_days=7
    )
    assert found == ["Choose the date on which the recurrence ends."]


def test_ending_after_zero_occurrences_is_refused():
    found = problems(
        recurrence=Recurrence.MONTHLY, recurrence_end=RecurrenceEnd.AFTER_COUNT, count=0
    )
    assert found == ["Say after how many occurrences the recurrence ends (at least one)."]


def test_a_weekly_review_lasting_eight_days_is_refused():
    found = problems(recurrence=Recurrence.WEEKLY, duration_days=8)
    assert found == ["A weekly review can last at most 7 days, or two occurrences would overlap."]


def test_a_weekly_review_lasting_seven_days_is_allowed():
    assert problems(recurrence=Recurrence.WEEKLY, duration_days=7) == []


def test_a_monthly_review_lasting_longer_than_the_shortest_month_is_refused():
    found = problems(recurrence=Recurrence.MONTHLY, duration_days=29)
    assert found == ["A monthly review can last at most 28 days, or two occurrences would overlap."]


def test_a_review_lasting_zero_days_is_refused():
    assert problems(duration_days=0) == ["A review lasts at least one day."]


def test_a_one_time_review_may_last_longer_than_a_week():
    assert problems(recurrence=Recurrence.ONE_TIME, duration_days=30) == []
