"""The side effects of time for access reviews: the reconciler and the time engine start,
complete and apply occurrences, and remind reviewers, each exactly once."""

import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django_q.models import Schedule

from assignments import services as assignment_services
from pim_portal import timekeeper
from reviews import services, tasks
from reviews.models import (
    ApplyResult,
    Decision,
    DefaultDecision,
    InstanceStatus,
    Recurrence,
    ReviewerType,
    ReviewInstance,
    ReviewItem,
)
from tests.factories import assign, make_user
from tests.reviews.conftest import (
    CONTRIBUTOR,
    DAY,
    create_review,
    events,
    in_force_ids,
    item_for,
    latest_instance,
    mails_to,
    new_holder,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def olivias_review(resource_owner, approver, tree, **settings):
    return create_review(resource_owner, scope=tree["sub"], reviewer_users=[approver], **settings)


def instances(review):
    return list(ReviewInstance.objects.filter(review=review).order_by("number"))


def deny(actor, instance, assignment, reason="Left the team"):
    services.items_decide(
        actor=actor,
        instance=instance,
        decision=Decision.DENY,
        reason=reason,
        item_ids=[item_for(instance, assignment).pk],
    )


# --- The reconciler ------------------------------------------------------------------------------


def test_reconcile_starts_an_occurrence_that_is_due(
    resource_owner, approver, erins_contributor, tree, clock, run
):
    review = olivias_review(resource_owner, approver, tree, start=T0 + DAY)
    clock.move_to(T0 + DAY)
    assert run(tasks.reconcile)["started"] == 1
    (instance,) = instances(review)
    assert instance.start == T0 + DAY
    assert len(mails_to(approver, "to review")) == 1  # the reviewer hears of it


def test_reconcile_completes_and_applies_an_ended_occurrence(
    resource_owner, approver, erins_contributor, tree, clock, run
):
    review = olivias_review(resource_owner, approver, tree, duration_days=3, auto_apply=True)
    instance = latest_instance(review)
    deny(approver, instance, erins_contributor)
    clock.move_to(instance.end)
    assert run(tasks.reconcile)["completed"] == 1
    instance.refresh_from_db()
    assert instance.status == InstanceStatus.APPLIED
    assert erins_contributor.pk not in in_force_ids()


def test_reconcile_twice_at_the_same_moment_starts_and_completes_nothing_twice(
    resource_owner, approver, erins_contributor, tree, clock, run
):
    review = olivias_review(
        resource_owner,
        approver,
        tree,
        recurrence=Recurrence.WEEKLY,
        duration_days=7,
        auto_apply=True,
    )
    deny(approver, latest_instance(review), erins_contributor)
    clock.move_to(T0 + 7 * DAY)  # the first ends as the second starts
    first = run(tasks.reconcile)
    again = run(tasks.reconcile)
    assert (first["started"], first["completed"]) == (1, 1)
    assert (again["started"], again["completed"], again["resumed"]) == (0, 0, 0)
    assert [i.number for i in instances(review)] == [1, 2]
    assert events("pim.review.instance_started").count() == 2
    assert events("pim.review.completed").count() == 1
    assert events("pim.review.applied").count() == 1


def test_reconcile_finishes_applying_an_instance_a_worker_left_half_way(
    resource_owner, approver, erins_contributor, tree, clock, run
):
    review = olivias_review(resource_owner, approver, tree, duration_days=3)
    instance = latest_instance(review)
    deny(approver, instance, erins_contributor)
    clock.move_to(instance.end)
    services.instance_complete_due(instance.pk)
    ReviewInstance.objects.filter(pk=instance.pk).update(status=InstanceStatus.APPLYING)
    assert run(tasks.reconcile)["resumed"] == 1
    instance.refresh_from_db()
    assert instance.status == InstanceStatus.APPLIED
    assert erins_contributor.pk not in in_force_ids()


def test_an_apply_resumed_after_a_worker_died_reports_every_removal(
    resource_owner, approver, erins_contributor, tree, clock, run
):
    """The dead worker committed Erin's removal (one chunk); the reconciler does Fred's: the
    review's "applied" event counts both, as the items say."""
    _, freds = new_holder("fred", scope=tree["sub"])
    review = olivias_review(resource_owner, approver, tree, duration_days=3)
    instance = latest_instance(review)
    deny(approver, instance, erins_contributor)
    deny(approver, instance, freds)
    clock.move_to(instance.end)
    services.instance_complete_due(instance.pk)
    # What the worker killed half-way left: status Applying, Erin's chunk done.
    ReviewInstance.objects.filter(pk=instance.pk).update(status=InstanceStatus.APPLYING)
    assignment_services.assignments_remove_many(
        actor=services.review_actor(review), assignment_ids=[erins_contributor.pk]
    )
    ReviewItem.objects.filter(instance=instance, assignment=erins_contributor).update(
        apply_result=ApplyResult.REMOVED, applied_at=instance.end
    )
    run(tasks.reconcile)
    applied = events("pim.review.applied").get()
    print(
        "AFTER",
        applied.after,
        list(
            ReviewItem.objects.filter(instance=instance).values_list(
                "principal_name", "apply_result", "applied_at"
            )
        ),
    )
    assert applied.after["removed"] == 2
    assert in_force_ids().isdisjoint({erins_contributor.pk, freds.pk})


def test_a_stopped_review_starts_no_further_occurrence(
    resource_owner, approver, erins_contributor, tree, clock, run
):
    review = olivias_review(
        resource_owner, approver, tree, recurrence=Recurrence.WEEKLY, duration_days=7
    )
    clock.move_to(T0 + DAY)
    services.review_stop(actor=resource_owner, review=review)
    clock.move_to(T0 + 8 * DAY)
    assert run(tasks.reconcile)["started"] == 0
    assert len(instances(review)) == 1


# --- Workers down --------------------------------------------------------------------------------


def test_after_workers_were_down_for_several_occurrences_only_the_latest_starts(
    resource_owner, approver, erins_contributor, tree, clock, run
):
    review = olivias_review(
        resource_owner, approver, tree, recurrence=Recurrence.WEEKLY, duration_days=3
    )
    clock.move_to(T0 + 21 * DAY + timedelta(hours=1))  # occurrences 2, 3 and 4 have begun
    assert run(tasks.reconcile)["started"] == 1
    first, latest = instances(review)
    assert (latest.start, latest.end) == (T0 + 21 * DAY, T0 + 24 * DAY)
    started = events("pim.review.instance_started").last()
    assert started.target_id == str(latest.pk)
    assert "2 missed occurrences skipped" in started.message
    review.refresh_from_db()
    assert review.next_start == T0 + 28 * DAY


def test_an_occurrence_that_ended_while_workers_were_down_is_not_started(
    resource_owner, approver, erins_contributor, tree, clock, run
):
    """Nobody could review it: starting it would only apply its default (here: remove)."""
    review = olivias_review(
        resource_owner,
        approver,
        tree,
        recurrence=Recurrence.WEEKLY,
        duration_days=3,
        default_decision=DefaultDecision.REMOVE,
        auto_apply=True,
    )
    approve = services.items_decide(
        actor=approver,
        instance=latest_instance(review),
        decision=Decision.APPROVE,
        reason="Needed",
        filters={},
    )
    assert approve == 1
    clock.move_to(T0 + 25 * DAY)  # occurrence 4 ran from day 21 to day 24, unseen
    run(tasks.reconcile)
    assert [i.number for i in instances(review)] == [1]  # none made already ended
    assert erins_contributor.pk in in_force_ids()
    review.refresh_from_db()
    assert review.next_start == T0 + 28 * DAY


# --- Reminders -----------------------------------------------------------------------------------


@pytest.fixture
def managers(eligible_user, erins_contributor, tree):
    """Mia manages Erin; Nick manages Fred, a Contributor on Production too."""
    mia, nick = make_user("mia"), make_user("nick")
    eligible_user.manager = mia
    eligible_user.save()
    fred = make_user("fred", manager=nick)
    assign(fred, CONTRIBUTOR, scope=tree["sub"], permanent=True)
    return {"mia": mia, "nick": nick}


@pytest.fixture
def manager_review(resource_owner, approver, managers, erins_contributor, tree, run):
    """A fourteen-day manager review in which Mia has decided and Nick has not."""
    review = run(
        olivias_review,
        resource_owner,
        approver,
        tree,
        reviewer_type=ReviewerType.MANAGER,
        duration_days=14,
    )
    deny(managers["mia"], latest_instance(review), erins_contributor)
    mail.outbox.clear()  # the mail of the start
    return review


def reminders_to(user) -> list:
    return mails_to(user, "Reminder")


def test_no_reminder_before_halfway(manager_review, managers, clock, run):
    clock.move_to(T0 + 7 * DAY - timedelta(seconds=1))
    run(tasks.reconcile)
    assert [m for m in mail.outbox if "Reminder" in m.subject] == []


def test_reviewers_with_undecided_items_are_reminded_halfway_once(
    manager_review, managers, approver, clock, run
):
    clock.move_to(T0 + 7 * DAY)
    run(tasks.reconcile)
    run(tasks.reconcile)
    assert len(reminders_to(managers["nick"])) == 1
    assert reminders_to(managers["mia"]) == []  # she has finished
    assert reminders_to(approver) == []  # the fallback has nothing to decide


def test_reviewers_with_undecided_items_are_reminded_one_day_before_the_end_once(
    manager_review, managers, clock, run
):
    clock.move_to(T0 + 7 * DAY)
    run(tasks.reconcile)
    clock.move_to(T0 + 13 * DAY)
    run(tasks.reconcile)
    run(tasks.reconcile)
    assert len(reminders_to(managers["nick"])) == 2  # halfway, and the last day
    assert reminders_to(managers["mia"]) == []


def test_a_reviewer_whose_only_undecided_item_is_their_own_is_not_reminded(
    resource_owner, approver, erins_contributor, tree, clock, run
):
    """Alex decided all he may; his own assignment is Bea's to decide, not his."""
    bea = make_user("bea")
    assign(approver, CONTRIBUTOR, scope=tree["sub"], permanent=True)
    review = create_review(
        resource_owner, scope=tree["sub"], reviewer_users=[approver, bea], duration_days=14
    )
    deny(approver, latest_instance(review), erins_contributor)
    clock.move_to(T0 + 7 * DAY)
    run(tasks.reconcile)
    assert len(reminders_to(bea)) == 1
    assert reminders_to(approver) == []


def test_no_reminders_when_the_review_sends_none(
    resource_owner, approver, erins_contributor, tree, clock, run
):
    olivias_review(resource_owner, approver, tree, duration_days=14, reminders=False)
    clock.move_to(T0 + 13 * DAY)
    run(tasks.reconcile)
    assert reminders_to(approver) == []


# --- The time engine -----------------------------------------------------------------------------


def test_review_starts_and_ends_are_registered_with_the_time_engine():
    works = {work.name: work for work in timekeeper.registered()}
    assert works[tasks.STARTS].next_due == services.next_due
    assert works[tasks.STARTS].run_batch == services.start_batch
    assert works[tasks.ENDS].next_due == services.next_end
    assert works[tasks.ENDS].run_batch == services.complete_batch
    assert (tasks.STARTS, tasks.ENDS) == ("review starts", "review ends")


def test_the_reconciler_runs_every_minute():
    schedule = Schedule.objects.get(name=tasks.RECONCILE_SCHEDULE)
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == (
        "reviews.tasks.reconcile",
        Schedule.MINUTES,
        1,
    )


def test_next_due_is_the_earliest_start_of_a_review_not_stopped(
    resource_owner, approver, erins_contributor, tree
):
    olivias_review(resource_owner, approver, tree, start=T0 + 5 * DAY)
    sooner = olivias_review(resource_owner, approver, tree, start=T0 + 2 * DAY)
    assert services.next_due() == T0 + 2 * DAY
    services.review_stop(actor=resource_owner, review=sooner)
    assert services.next_due() == T0 + 5 * DAY


def test_next_end_is_the_end_of_the_earliest_instance_in_progress(
    resource_owner, approver, erins_contributor, tree, clock
):
    short = olivias_review(resource_owner, approver, tree, duration_days=3)
    olivias_review(resource_owner, approver, tree, duration_days=7)
    assert services.next_end() == T0 + 3 * DAY
    clock.move_to(T0 + 3 * DAY)
    assert timekeeper.run_due(tasks.ENDS) == 1
    assert latest_instance(short).status == InstanceStatus.COMPLETED
    assert services.next_end() == T0 + 7 * DAY


def test_a_weekly_review_in_berlin_next_starts_at_nine_local_after_the_clocks_change(
    resource_owner, approver, erins_contributor, tree, clock
):
    first = datetime(2026, 3, 23, 9, tzinfo=BERLIN)  # 08:00 UTC; the clocks change on the 29th
    review = olivias_review(
        resource_owner,
        approver,
        tree,
        start=first,
        time_zone="Europe/Berlin",
        recurrence=Recurrence.WEEKLY,
        duration_days=7,
    )
    assert services.next_due() == datetime(2026, 3, 23, 8, tzinfo=UTC)
    clock.move_to(first)
    assert timekeeper.run_due(tasks.STARTS) == 1
    assert latest_instance(review).end == datetime(2026, 3, 30, 7, tzinfo=UTC)
    assert services.next_due() == datetime(2026, 3, 30, 7, tzinfo=UTC)  # 09:00 summer time


def test_a_one_day_review_gets_its_halfway_reminder_only(
    resource_owner, approver, erins_contributor, tree, clock, run
):
    """ "One day left" would come at its very start."""
    olivias_review(resource_owner, approver, tree, duration_days=1)
    run(tasks.reconcile)
    assert reminders_to(approver) == []
    clock.move_to(T0 + DAY / 2)
    run(tasks.reconcile)
    run(tasks.reconcile)
    assert len(reminders_to(approver)) == 1
