"""Removing many assignments, or members from groups, in one set-based change
(assignments.services.bulk): the rules of `assignment_remove`, row by row, in a fixed number of
statements."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from assignments import services
from assignments.models import Assignment, AssignmentKind, RequestAction, RequestStatus, RoleRequest
from audit.models import AuditEvent
from pim_portal.actor import Actor
from tests.factories import assign, make_group, make_user

REVIEW = Actor.system("access review #1")


def in_force_ids() -> set[int]:
    return set(Assignment.objects.in_force().values_list("pk", flat=True))


@pytest.mark.django_db
def test_removes_exactly_the_assignments_named():
    keep = assign(make_user("kim"), "Security Reader", kind=AssignmentKind.ELIGIBLE)
    gone = [
        assign(make_user(f"user{i}"), "Security Reader", kind=AssignmentKind.ELIGIBLE)
        for i in range(3)
    ]
    before = in_force_ids()

    outcome = services.assignments_remove_many(actor=REVIEW, assignment_ids=[a.pk for a in gone])

    assert sorted(outcome.removed) == sorted(a.pk for a in gone)
    assert in_force_ids() == before - {a.pk for a in gone}
    assert keep.pk in in_force_ids()


@pytest.mark.django_db
def test_each_removal_is_a_provisioned_request_and_an_audit_event_naming_the_actor():
    gone = assign(make_user("ria"), "Security Reader", kind=AssignmentKind.ELIGIBLE)

    services.assignments_remove_many(
        actor=REVIEW, assignment_ids=[gone.pk], justification="Denied in review"
    )

    request = RoleRequest.objects.get(target_assignment=gone)
    assert (request.action, request.status) == (
        RequestAction.ADMIN_REMOVE,
        RequestStatus.PROVISIONED,
    )
    assert request.justification == "Denied in review"
    event = AuditEvent.objects.get(action="pim.assignment.removed", target_id=str(gone.pk))
    assert event.actor_name == "system (access review #1)"
    assert event.role_request_id == request.pk
    assert event.before["end"] != event.after["end"]


@pytest.mark.django_db
def test_activations_end_with_the_eligible_assignment_they_came_from():
    user = make_user("ada")
    eligible = assign(user, "Security Reader", kind=AssignmentKind.ELIGIBLE)
    activation = assign(user, "Security Reader", activated_from=eligible)

    services.assignments_remove_many(actor=REVIEW, assignment_ids=[eligible.pk])

    activation.refresh_from_db()
    assert not activation.is_in_force()
    assert AuditEvent.objects.filter(
        action="pim.assignment.removed", target_id=str(activation.pk)
    ).exists()


@pytest.mark.django_db
def test_an_assignment_not_started_is_canceled_and_never_in_force():
    later = timezone.now() + timedelta(days=2)
    upcoming = assign(
        make_user("uma"), "Security Reader", start=later, end=later + timedelta(days=5)
    )

    services.assignments_remove_many(actor=REVIEW, assignment_ids=[upcoming.pk])

    upcoming.refresh_from_db()
    assert upcoming.never_in_force
    assert upcoming.end_processed_at is not None


@pytest.mark.django_db
def test_an_ended_assignment_is_reported_not_removed_again():
    now = timezone.now()
    ended = assign(
        make_user("eve"),
        "Security Reader",
        start=now - timedelta(days=3),
        end=now - timedelta(days=1),
    )

    outcome = services.assignments_remove_many(actor=REVIEW, assignment_ids=[ended.pk])

    assert outcome.already_ended == [ended.pk]
    assert outcome.removed == []
    assert not RoleRequest.objects.filter(target_assignment=ended).exists()


@pytest.mark.django_db
def test_the_last_active_global_administrator_is_kept_and_the_rest_removed():
    last = assign(make_user("gia"), "Global Administrator", permanent=True)
    other = assign(make_user("ola"), "Security Reader", kind=AssignmentKind.ELIGIBLE)

    outcome = services.assignments_remove_many(actor=REVIEW, assignment_ids=[last.pk, other.pk])

    assert outcome.removed == [other.pk]
    assert "last active Global Administrator" in outcome.refused[last.pk]
    assert last.pk in in_force_ids()


@pytest.mark.django_db
def test_global_administrators_go_when_another_one_stays():
    stays = assign(make_user("sia"), "Global Administrator", permanent=True)
    goes = assign(make_user("gus"), "Global Administrator", permanent=True)

    outcome = services.assignments_remove_many(actor=REVIEW, assignment_ids=[goes.pk])

    assert outcome.removed == [goes.pk]
    assert stays.pk in in_force_ids()


@pytest.mark.django_db
def test_an_assignment_the_administrator_may_not_manage_is_refused_and_audited(
    resource_owner, tree
):
    mine = assign(make_user("mo"), "Reader", scope=tree["rg"], kind=AssignmentKind.ELIGIBLE)
    not_mine = assign(
        make_user("no"), "Reader", scope=tree["other_sub"], kind=AssignmentKind.ELIGIBLE
    )

    outcome = services.assignments_remove_many(
        actor=resource_owner, assignment_ids=[mine.pk, not_mine.pk]
    )

    assert outcome.removed == [mine.pk]
    assert "may not manage Reader" in outcome.refused[not_mine.pk]
    assert not_mine.pk in in_force_ids()
    assert AuditEvent.objects.filter(
        action="pim.security.forbidden", target_id=str(not_mine.pk)
    ).exists()


def _removal_queries(count: int) -> int:
    rows = [
        assign(make_user(f"bulk{count}-{i}"), "Security Reader", kind=AssignmentKind.ELIGIBLE)
        for i in range(count)
    ]
    with CaptureQueriesContext(connection) as captured:
        outcome = services.assignments_remove_many(
            actor=REVIEW, assignment_ids=[a.pk for a in rows]
        )
    assert len(outcome.removed) == count
    return len(captured)


@pytest.mark.django_db
def test_removal_takes_statements_per_batch_of_rows_not_per_row():
    # The INSERTs are batched (on SQLite by its limit of bound variables: about 40 requests or
    # audit events per statement), so 290 more rows may add a statement per 20 of them at most;
    # a loop over rows would add more than 290.
    assert _removal_queries(300) - _removal_queries(10) <= 290 // 20


@pytest.mark.django_db
def test_members_leave_the_group_and_their_activations_through_it_end():
    ann, ben = make_user("ann"), make_user("ben")
    ops = make_group("ops", ann, ben)
    other = make_group("other", ann)
    eligible = assign(ops, "Security Reader", kind=AssignmentKind.ELIGIBLE)
    activation = assign(ann, "Security Reader", activated_from=eligible)

    outcome = services.group_members_remove(actor=REVIEW, pairs=[(ann.pk, ops.pk)])

    assert outcome.removed == [(ann.pk, ops.pk)]
    assert set(ops.user_set.all()) == {ben}
    assert set(other.user_set.all()) == {ann}
    activation.refresh_from_db()
    assert not activation.is_in_force()
    event = AuditEvent.objects.get(action="pim.group.member_removed")
    assert (event.principal, event.target_repr) == (str(ann), "ops")


@pytest.mark.django_db
def test_taking_members_out_of_groups_is_for_directory_administrators(resource_owner):
    ops = make_group("ops", make_user("cy"))

    with pytest.raises(PermissionDenied):
        services.group_members_remove(actor=resource_owner, pairs=[(ops.user_set.get().pk, ops.pk)])

    assert ops.user_set.count() == 1
    assert AuditEvent.objects.filter(action="pim.security.forbidden").exists()
