"""A role's tab counts are kept while they cannot change (assignments.counts): counted once,
then counted again after any write of assignments or once the clock passes an end, so that a
page always shows the count it would have counted."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from assignments import counts, services
from assignments.models import AssignmentKind
from tests.conftest import signed_in
from tests.factories import assign, make_user, role

pytestmark = pytest.mark.django_db

READER = "Security Reader"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def tab_counts(user, **params) -> tuple[dict, int]:
    """({tab: count}, how many aggregate queries counted them) of the Reader role's page, to
    the user signed in afresh (the clock moves past the idle timeout here)."""
    client = signed_in(user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("assignments:role_detail", args=[role(READER).pk]), params)
    assert response.status_code == 200
    counted = sum('COUNT("assignments_assignment"."role_id")' in q["sql"] for q in queries)
    return {key: count for key, _, count in response.context["tabs"]}, counted


@pytest.fixture
def readers():
    """Two eligible Readers: one until T0 + 20 s, one for 30 days; one expired."""
    first = assign(
        make_user("ann"), READER, kind=AssignmentKind.ELIGIBLE, end=T0 + timedelta(seconds=20)
    )
    assign(make_user("bob"), READER, kind=AssignmentKind.ELIGIBLE)
    assign(
        make_user("cy"),
        READER,
        kind=AssignmentKind.ELIGIBLE,
        start=T0 - timedelta(days=3),
        end=T0 - timedelta(days=1),
    )
    return first


def test_counts_are_counted_once_and_kept(pra, readers):
    first, counted = tab_counts(pra)
    assert first == {"eligible": 2, "active": 0, "expired": 1}
    assert counted == 1
    again, counted = tab_counts(pra, tab="expired")
    assert again == first
    assert counted == 0


@pytest.mark.django_db(transaction=True)
def test_a_write_of_assignments_forgets_the_kept_counts_once_committed(pra, readers):
    tab_counts(pra)
    with transaction.atomic():
        assign(make_user("dee"), READER, kind=AssignmentKind.ELIGIBLE)
        assign(make_user("eve"), READER, kind=AssignmentKind.ELIGIBLE)
        # One generation moved at commit, however many rows the transaction writes.
        pending = [c for _, c, _ in connection.run_on_commit if c is counts._new_generation]
        assert len(pending) == 1
        assert tab_counts(pra)[1] == 0  # not committed: other readers could not see it yet
    now, counted = tab_counts(pra)
    assert now["eligible"] == 4
    assert counted == 1


@pytest.mark.django_db(transaction=True)
def test_a_bulk_removal_forgets_the_kept_counts(pra, readers):
    tab_counts(pra)
    services.assignments_remove_many(
        actor=pra, assignment_ids=[readers.pk], justification="Left the team"
    )
    now, counted = tab_counts(pra)
    assert now == {"eligible": 1, "active": 0, "expired": 2}
    assert counted == 1


def test_the_clock_passing_an_end_counts_again(pra, readers, clock):
    tab_counts(pra)
    clock.move_to(T0 + timedelta(seconds=19))
    assert tab_counts(pra)[1] == 0  # nothing has ended yet
    clock.move_to(T0 + timedelta(seconds=21))
    counts, counted = tab_counts(pra)
    assert counts == {"eligible": 1, "active": 0, "expired": 2}
    assert counted == 1


def test_a_search_is_counted_afresh(pra, readers):
    tab_counts(pra)
    counts, counted = tab_counts(pra, q="ann")
    assert counts == {"eligible": 1, "active": 0, "expired": 0}
    assert counted == 1


def test_kept_counts_are_counted_again_after_their_time(pra, readers, settings, clock):
    settings.PIM_ASSIGNMENT_COUNTS_SECONDS = 10
    tab_counts(pra)
    clock.move_to(T0 + timedelta(seconds=9))
    assert tab_counts(pra)[1] == 0
    clock.move_to(T0 + timedelta(seconds=11))
    assert tab_counts(pra)[1] == 1


def test_with_no_seconds_every_load_counts(pra, readers, settings):
    settings.PIM_ASSIGNMENT_COUNTS_SECONDS = 0
    tab_counts(pra)
    assert tab_counts(pra)[1] == 1


def directory_counts(user) -> tuple[dict, int]:
    """(Reader's eligible, active and permanent counts on Directory roles, aggregates run)."""
    client = signed_in(user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("assignments:directory_roles"), {"q": "Reader"})
    row = next(r for r in response.context["page_obj"].object_list if r.name == READER)
    counted = sum('COUNT("assignments_assignment"."role_id")' in q["sql"] for q in queries)
    return (row.eligible_count, row.active_count, row.permanent_count), counted


def test_member_counts_count_again_when_a_scheduled_start_passes(pra, clock):
    assign(make_user("ann"), READER, start=T0 + timedelta(seconds=10))  # active, upcoming
    assign(make_user("bob"), READER, kind=AssignmentKind.ELIGIBLE)
    assert directory_counts(pra) == ((1, 0, 0), 1)
    clock.move_to(T0 + timedelta(seconds=9))
    assert directory_counts(pra) == ((1, 0, 0), 0)  # kept: nothing starts or ends before
    clock.move_to(T0 + timedelta(seconds=11))
    assert directory_counts(pra) == ((1, 1, 0), 1)


def test_member_counts_count_again_when_an_end_passes(pra, clock):
    assign(make_user("ann"), READER, end=T0 + timedelta(seconds=10))
    assign(make_user("bob"), READER, permanent=True)
    assert directory_counts(pra) == ((0, 2, 1), 1)
    clock.move_to(T0 + timedelta(seconds=11))
    assert directory_counts(pra) == ((0, 1, 1), 1)
