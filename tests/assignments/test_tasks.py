"""django-q2 tasks: bookkeeping, audit and mail at starts, ends and reminders, each exactly once."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.utils.module_loading import import_string
from django_q.models import Schedule

from assignments import queries, services, tasks
from assignments.models import (
    Assignment,
    AssignmentKind,
    AssignmentReminder,
    RequestStatus,
)
from audit.models import AuditEvent
from pim_portal import timekeeper
from tests.assignments.activation_support import relax
from tests.factories import assign, make_user

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PRA = "Privileged Role Administrator"
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Run a task the way a worker would: its after-commit mail goes out."""

    def runner(func, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return func(*args, **kwargs)

    return runner


def activate(user, role_name=PRA, **kw):
    relax(role_name)
    eligible = queries.eligible_assignments(user).get(role__name=role_name)
    kw.setdefault("duration", HOUR)
    return services.request_activate(actor=user, eligible=eligible, justification="x", **kw)


def events(action):
    return AuditEvent.objects.filter(action=action)


def mails_to(user, subject_part=""):
    return [m for m in mail.outbox if m.to == [user.email] and subject_part in m.subject]


# Scheduling -----------------------------------------------------------------------------------


def due(name):
    return timekeeper._registry[name].next_due()


def test_a_scheduled_activation_is_due_work_at_its_start_and_at_its_end(eligible_user, run):
    start = T0 + timedelta(hours=3)
    activation = run(activate, eligible_user, start=start).result_assignment
    assert due(tasks.STARTS) == start
    assert due(tasks.ENDS) == start + HOUR
    done = timekeeper.catch_up()
    assert (done[tasks.STARTS], done[tasks.ENDS]) == (0, 0)
    activation.refresh_from_db()
    assert (activation.start_processed_at, activation.end_processed_at) == (None, None)


def test_no_schedule_is_kept_per_assignment(eligible_user, run):
    run(activate, eligible_user, start=T0 + HOUR)
    run(activate, eligible_user, "Contributor", duration=HOUR)
    assert set(Schedule.objects.values_list("func", flat=True)) <= {
        "assignments.tasks.reconcile",
        "approvals.tasks.lapse_sweep",
        "reviews.tasks.reconcile",
        "alerts.tasks.scan_task",
        "audit.tasks.checkpoint",
        "audit.tasks.verify",
        "audit.tasks.prune",
        "pim_portal.digest.send_weekly_digest",
        "connectors.tasks.reconcile_all",
    }


def test_an_activation_starting_now_is_due_only_at_its_end(eligible_user, run):
    activation = run(activate, eligible_user).result_assignment
    assert activation.start_processed_at == T0
    assert due(tasks.STARTS) is None
    assert due(tasks.ENDS) == T0 + HOUR


def test_deactivation_makes_the_end_due_now(eligible_user, clock, run):
    activation = run(activate, eligible_user).result_assignment
    clock.shift(timedelta(minutes=5))
    run(services.request_deactivate, actor=eligible_user, assignment_id=activation.pk)
    assert due(tasks.ENDS) == T0 + timedelta(minutes=5)
    assert timekeeper.run_due(tasks.ENDS) == 1
    assert events("pim.assignment.ended").get().target_id == str(activation.pk)


def test_old_per_row_schedules_are_removed_after_migrate():
    Schedule.objects.create(
        name="pim: end assignment 12", func="assignments.tasks.assignment_ended", args="12"
    )
    tasks.ensure_periodic_schedules()
    assert not Schedule.objects.filter(name="pim: end assignment 12").exists()


def test_reconcile_runs_every_minute():
    Schedule.objects.filter(name=tasks.RECONCILE_SCHEDULE).delete()
    tasks.ensure_periodic_schedules()
    tasks.ensure_periodic_schedules()
    schedule = Schedule.objects.get(name=tasks.RECONCILE_SCHEDULE)
    assert (schedule.schedule_type, schedule.minutes) == (Schedule.MINUTES, 1)
    assert import_string(schedule.func) is tasks.reconcile


# Start ----------------------------------------------------------------------------------------


def test_start_task_marks_the_scheduled_request_provisioned(eligible_user, clock, run):
    start = T0 + timedelta(hours=3)
    request = activate(eligible_user, start=start)
    clock.move_to(start)
    assert run(tasks.assignment_started, request.result_assignment_id) is True
    request.refresh_from_db()
    assert request.status == RequestStatus.PROVISIONED
    assert events("pim.assignment.started").filter(role_request_id=request.pk).count() == 1


def test_start_task_before_the_start_does_nothing(eligible_user, clock, run):
    start = T0 + timedelta(hours=3)
    request = activate(eligible_user, start=start)
    clock.move_to(start - timedelta(seconds=1))
    assert run(tasks.assignment_started, request.result_assignment_id) is False
    request.refresh_from_db()
    assert request.status == RequestStatus.SCHEDULED
    assert not events("pim.assignment.started").exists()


def test_start_task_twice_records_once(eligible_user, clock, run):
    start = T0 + timedelta(hours=3)
    activation_id = activate(eligible_user, start=start).result_assignment_id
    clock.move_to(start + timedelta(minutes=1))
    assert run(tasks.assignment_started, activation_id) is True
    assert run(tasks.assignment_started, activation_id) is False
    assert events("pim.assignment.started").count() == 1


def test_tasks_for_a_deleted_assignment_do_nothing(run):
    assert run(tasks.assignment_started, 999_999) is False
    assert run(tasks.assignment_ended, 999_999) is False


# End ------------------------------------------------------------------------------------------


def test_end_task_records_the_expiry_and_mails_the_holder(eligible_user, clock, run):
    activation = activate(eligible_user).result_assignment
    mail.outbox.clear()
    clock.move_to(activation.end)
    assert run(tasks.assignment_ended, activation.pk) is True
    event = events("pim.assignment.ended").get()
    assert event.target_id == str(activation.pk)
    [ended] = mails_to(eligible_user)
    assert "has ended" in ended.subject
    assert "/my/roles/" in ended.body
    assert "/my/roles/" in ended.alternatives[0][0]


def test_end_task_twice_sends_nothing_twice(eligible_user, clock, run):
    activation = activate(eligible_user).result_assignment
    mail.outbox.clear()
    clock.move_to(activation.end + timedelta(minutes=3))
    run(tasks.assignment_ended, activation.pk)
    run(tasks.assignment_ended, activation.pk)
    assert events("pim.assignment.ended").count() == 1
    assert len(mail.outbox) == 1


def test_end_task_before_the_end_does_nothing(eligible_user, clock, run):
    activation = activate(eligible_user).result_assignment
    mail.outbox.clear()
    clock.move_to(activation.end - timedelta(seconds=1))
    assert run(tasks.assignment_ended, activation.pk) is False
    assert mail.outbox == []


def test_end_of_an_eligible_assignment_is_recorded_without_mail(eligible_user, clock, run):
    eligible = queries.eligible_assignments(eligible_user).get(role__name=PRA)
    clock.move_to(eligible.end)
    assert run(tasks.assignment_ended, eligible.pk) is True
    assert events("pim.assignment.ended").count() == 1
    assert mails_to(eligible_user, "has ended") == []


# Reconciler ----------------------------------------------------------------------------------


def test_reconciler_catches_up_after_downtime(eligible_user, tree, clock, run):
    # While no worker runs: one activation starts, one starts and ends, one ends.
    ended_early = activate(eligible_user, duration=timedelta(minutes=30)).result_assignment
    scheduled = activate(
        eligible_user, "Contributor", scope=tree["rg"], start=T0 + HOUR, duration=4 * HOUR
    )
    short = activate(eligible_user, "Contributor", scope=tree["vm"], start=T0 + HOUR, duration=HOUR)
    mail.outbox.clear()
    clock.move_to(T0 + 3 * HOUR)

    result = run(tasks.reconcile)

    assert result["ended"] == 2
    for request in (scheduled, short):
        request.refresh_from_db()
        assert request.status == RequestStatus.PROVISIONED
    processed = Assignment.objects.filter(
        pk__in=[ended_early.pk, short.result_assignment_id], end_processed_at__isnull=False
    )
    assert processed.count() == 2
    assert events("pim.assignment.started").count() == 2
    assert events("pim.assignment.ended").count() == 2
    assert len(mails_to(eligible_user, "has ended")) == 2


def test_reconciler_run_again_records_and_sends_nothing_new(eligible_user, tree, clock, run):
    activate(eligible_user, duration=timedelta(minutes=30))
    activate(eligible_user, "Contributor", start=T0 + HOUR, duration=HOUR)
    clock.move_to(T0 + 3 * HOUR)
    run(tasks.reconcile)
    events_before, mails_before = AuditEvent.objects.count(), len(mail.outbox)

    assert run(tasks.reconcile) == {"started": 0, "ended": 0, "reminded": 0}
    assert AuditEvent.objects.count() == events_before
    assert len(mail.outbox) == mails_before


def test_reconciler_and_a_late_end_task_do_the_work_once(eligible_user, clock, run):
    activation = activate(eligible_user).result_assignment
    mail.outbox.clear()
    clock.move_to(activation.end + HOUR)
    run(tasks.reconcile)
    assert run(tasks.assignment_ended, activation.pk) is False
    assert events("pim.assignment.ended").count() == 1
    assert len(mails_to(eligible_user, "has ended")) == 1


def test_reconciler_leaves_assignments_still_in_force_alone(eligible_user, clock, run):
    activation = activate(eligible_user).result_assignment
    clock.move_to(activation.end - timedelta(seconds=1))
    run(tasks.reconcile)
    activation.refresh_from_db()
    assert activation.end_processed_at is None
    assert not events("pim.assignment.ended").exists()


# Reminders -----------------------------------------------------------------------------------


@pytest.fixture
def holder(tree):
    """Hana: eligible Security Reader ending at T0 + 60 days, active Reader ending T0 + 20 days."""
    user = make_user("hana")
    assign(user, "Security Reader", kind=AssignmentKind.ELIGIBLE, end=T0 + 60 * DAY)
    assign(user, "Reader", scope=tree["sub"], end=T0 + 20 * DAY)
    return user


def test_reminder_14_days_before_the_end(holder, clock, run):
    clock.move_to(T0 + 6 * DAY)  # Reader ends in 14 days
    assert run(tasks.send_reminders) == 1
    [reminder] = mails_to(holder)
    assert "Reader assignment ends in 14 days" in reminder.subject
    assert "/my/roles/" in reminder.body


def test_no_reminder_earlier_than_14_days(holder, clock, run):
    clock.move_to(T0 + 6 * DAY - timedelta(seconds=1))
    assert run(tasks.send_reminders) == 0
    assert mail.outbox == []


def test_reminder_1_day_before_the_end(holder, clock, run):
    clock.move_to(T0 + 6 * DAY)
    run(tasks.send_reminders)
    clock.move_to(T0 + 19 * DAY)
    assert run(tasks.send_reminders) == 1
    assert "ends in 1 day" in mails_to(holder)[-1].subject


def test_each_reminder_is_sent_once(holder, clock, run):
    for moment in (6 * DAY, 6 * DAY + HOUR, 19 * DAY, 19 * DAY + HOUR, 19 * DAY + 2 * HOUR):
        clock.move_to(T0 + moment)
        run(tasks.reconcile)
    subjects = [m.subject for m in mails_to(holder)]
    assert sum("14 days" in s for s in subjects) == 1
    assert sum("1 day" in s for s in subjects) == 1
    assert AssignmentReminder.objects.count() == 2


def test_reminder_for_an_eligible_assignment(holder, clock, run):
    clock.move_to(T0 + 46 * DAY)  # Security Reader eligibility ends in 14 days
    run(tasks.send_reminders)
    assert any("Security Reader" in m.subject for m in mails_to(holder))


def test_reminders_caught_up_late_send_only_the_nearest(holder, clock, run):
    clock.move_to(T0 + 19 * DAY + HOUR)  # workers were down through the 14-day mark
    assert run(tasks.send_reminders) == 1
    assert "ends in 1 day" in mails_to(holder)[0].subject


def test_no_reminder_for_a_short_activation(eligible_user, clock, run):
    activation = activate(eligible_user, duration=8 * HOUR).result_assignment
    mail.outbox.clear()
    clock.move_to(activation.end - HOUR)
    assert run(tasks.send_reminders) == 0


def test_extended_assignment_is_reminded_again_for_its_new_end(holder, clock, run):
    reader = Assignment.objects.get(principal_user=holder, role__name="Reader")
    clock.move_to(T0 + 6 * DAY)
    run(tasks.send_reminders)
    Assignment.objects.filter(pk=reader.pk).update(end=T0 + 40 * DAY)
    clock.move_to(T0 + 26 * DAY)
    assert run(tasks.send_reminders) == 1


# Batches ------------------------------------------------------------------------------------


def test_a_batch_of_ends_costs_the_same_queries_whatever_its_size(tree, clock):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def ends(count, start):
        for index in range(start, start + count):
            assign(make_user(f"holder{index}"), "Reader", scope=tree["sub"], end=T0 + HOUR)

    def batch_queries():
        with CaptureQueriesContext(connection) as context:
            done = tasks.end_batch(T0 + 2 * HOUR, 500)
        return done, len(context.captured_queries)

    ends(5, 0)
    few = batch_queries()
    ends(50, 5)
    many = batch_queries()
    assert (few[0], many[0]) == (5, 50)
    assert few[1] == many[1]
    assert events("pim.assignment.ended").count() == 55
