from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from django.utils import timezone

from pim_portal.humanize import when


def test_when_names_the_viewers_time_zone():
    with timezone.override(ZoneInfo("Asia/Tokyo")):
        assert when(datetime(2026, 11, 29, 12, 0, tzinfo=UTC)) == "2026-11-29 21:00 JST"


def test_when_shows_a_date_at_the_end_of_the_calendar_in_utc_instead_of_failing():
    with timezone.override(ZoneInfo("Asia/Tokyo")):
        assert when(datetime(9999, 12, 31, 23, 0, tzinfo=UTC)) == "9999-12-31 23:00 UTC"


def test_when_says_permanent_for_no_end():
    assert when(None) == "Permanent"
