"""The one rule of time: being in force is computed from start and end, never from a worker.

No test here runs a task: time is moved explicitly and every check is asked again.
"""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django_q.models import Success, Task

from assignments import queries, services
from assignments.authz import grants_for
from assignments.models import Assignment, AssignmentKind, RequestStatus
from tests.assignments.activation_support import relax
from tests.factories import assign, make_user

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PRA = "Privileged Role Administrator"
SECOND = timedelta(seconds=1)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def activate(user, **kw):
    eligible = queries.eligible_assignments(user).get(role__name=PRA)
    kw.setdefault("duration", timedelta(hours=1))
    return services.request_activate(actor=user, eligible=eligible, justification="x", **kw)


def no_worker_ran():
    return not Task.objects.exists() and not Success.objects.exists()


def test_activation_grants_until_one_second_before_its_end(eligible_user, clock):
    relax(PRA)
    end = activate(eligible_user).result_assignment.end
    clock.move_to(end - SECOND)
    assert grants_for(eligible_user).can_manage_directory()


def test_activation_grants_nothing_exactly_at_its_end_with_no_worker(eligible_user, clock):
    relax(PRA)
    activation = activate(eligible_user).result_assignment
    clock.move_to(activation.end)
    assert not grants_for(eligible_user).can_manage_directory()
    assert not Assignment.objects.in_force().filter(pk=activation.pk).exists()
    activation.refresh_from_db()
    assert activation.end_processed_at is None  # nobody did any bookkeeping
    assert no_worker_ran()


def test_expired_activation_is_gone_from_my_roles_at_its_end(eligible_user, client_for, clock):
    relax(PRA)
    activation = activate(eligible_user).result_assignment
    clock.move_to(activation.end - SECOND)
    # A new sign-in at each moment: an hour later the first session has idled out.
    assert activation.pk in _active_tab_ids(client_for(eligible_user))
    clock.move_to(activation.end)
    assert activation.pk not in _active_tab_ids(client_for(eligible_user))


def test_scheduled_activation_is_not_in_force_one_second_before_its_start(eligible_user, clock):
    relax(PRA)
    start = T0 + timedelta(hours=3)
    activate(eligible_user, start=start)
    clock.move_to(start - SECOND)
    assert not grants_for(eligible_user).can_manage_directory()


def test_scheduled_activation_is_in_force_exactly_at_its_start(eligible_user, clock):
    relax(PRA)
    start = T0 + timedelta(hours=3)
    request = activate(eligible_user, start=start)
    clock.move_to(start)
    assert grants_for(eligible_user).can_manage_directory()
    request.refresh_from_db()
    assert request.status == RequestStatus.SCHEDULED  # bookkeeping waits for a worker; access not
    assert no_worker_ran()


def test_scheduled_activation_ends_after_its_duration_from_its_start(eligible_user, clock):
    relax(PRA)
    start = T0 + timedelta(hours=3)
    activate(eligible_user, start=start, duration=timedelta(hours=2))
    clock.move_to(start + timedelta(hours=2) - SECOND)
    assert grants_for(eligible_user).can_manage_directory()
    clock.move_to(start + timedelta(hours=2))
    assert not grants_for(eligible_user).can_manage_directory()


def test_eligibility_cannot_be_activated_from_its_end(eligible_user, clock):
    eligible = queries.eligible_assignments(eligible_user).get(role__name=PRA)
    clock.move_to(eligible.end - SECOND)
    assert queries.eligible_assignments(eligible_user).filter(pk=eligible.pk).exists()
    clock.move_to(eligible.end)
    assert not queries.eligible_assignments(eligible_user).filter(pk=eligible.pk).exists()


def test_permanent_assignment_stays_in_force(pra, clock):
    clock.move_to(T0 + timedelta(days=3650))
    assert grants_for(pra).can_manage_directory()


def test_group_activation_ends_exactly_at_its_end(tree, clock):
    from tests.factories import make_group

    relax(PRA)
    member = make_user("gwen")
    assign(
        make_group("Ops", member),
        PRA,
        kind=AssignmentKind.ELIGIBLE,
        start=T0 - timedelta(days=1),
        end=T0 + timedelta(days=1),
    )
    activation = activate(member, duration=timedelta(minutes=30)).result_assignment
    clock.move_to(activation.end - SECOND)
    assert grants_for(member).can_manage_directory()
    clock.move_to(activation.end)
    assert not grants_for(member).can_manage_directory()


def test_dates_on_my_roles_are_in_the_viewers_time_zone(eligible_user, client_for):
    relax(PRA)
    eligible_user.time_zone = "Europe/Berlin"
    eligible_user.save()
    activate(eligible_user)  # 09:00 to 10:00 UTC: 10:00 to 11:00 in Berlin, CET
    page = client_for(eligible_user).get("/my/roles/?tab=active").content.decode()
    assert "2026-03-02 11:00 CET" in page


def _active_tab_ids(client) -> set[int]:
    response = client.get("/my/roles/?tab=active")
    return {entry["assignment"].pk for entry in response.context["entries"]}
