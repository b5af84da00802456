from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse, set_script_prefix
from django.utils import timezone
from django.utils.safestring import mark_safe

from pim_portal.humanize import when
from pim_portal.templatetags.pim import pk_url, select_options


def test_when_names_the_viewers_time_zone():
    with timezone.override(ZoneInfo("Asia/Tokyo")):
        assert when(datetime(2026, 11, 29, 12, 0, tzinfo=UTC)) == "2026-11-29 21:00 JST"


def test_when_shows_a_date_at_the_end_of_the_calendar_in_utc_instead_of_failing():
    with timezone.override(ZoneInfo("Asia/Tokyo")):
        assert when(datetime(9999, 12, 31, 23, 0, tzinfo=UTC)) == "9999-12-31 23:00 UTC"


def test_when_says_permanent_for_no_end():
    assert when(None) == "Permanent"


# select_options and pk_url: what the rows of long pages are written with ----------------------


def test_select_options_escapes_values_and_labels_and_marks_the_selected_one():
    html = select_options(
        [(1, "Sales & <Marketing>"), ('2"', "Ops"), (3, mark_safe("<b>kept</b>"))], selected=1
    )
    assert html == (
        '<option value="1" selected>Sales &amp; &lt;Marketing&gt;</option>'
        '<option value="2&quot;">Ops</option>'
        '<option value="3"><b>kept</b></option>'
    )


def test_pk_url_is_what_reverse_says_for_every_id():
    for name in ("approvals:request_detail", "assignments:assignment_update"):
        for pk in (1, 42, 918273645, 10**12):
            assert pk_url(pk, name) == reverse(name, args=[pk])


def test_pk_url_follows_the_script_prefix():
    plain = pk_url(7, "approvals:request_detail")
    set_script_prefix("/pim/")
    try:
        assert pk_url(7, "approvals:request_detail") == reverse(
            "approvals:request_detail", args=[7]
        )
        assert pk_url(7, "approvals:request_detail") == "/pim" + plain
    finally:
        set_script_prefix("/")


def test_pk_url_refuses_what_is_not_an_id():
    with pytest.raises(ValueError):
        pk_url("7/../../admin", "approvals:request_detail")
