"""A request not decided within its approval window lapses, at exactly its deadline."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import Schedule

from approvals import services, tasks
from approvals.services import DecisionConflict, Outcome
from assignments.models import Assignment, RequestStatus, RolePolicy, RoleRequest
from audit.models import AuditEvent
from pim_portal import timekeeper
from tests.approvals.conftest import PRA, needs_approval, new_requester, submit
from tests.factories import role

pytestmark = pytest.mark.django_db

TICK = timedelta(microseconds=1)


@pytest.fixture
def submitted_at():
    return timezone.now().replace(microsecond=0) + timedelta(minutes=1)


@pytest.fixture
def request_due(eligible_user, approver, tree, submitted_at):
    """Erin's request, submitted at `submitted_at` under a 2-hour approval window."""
    needs_approval(PRA, approvers=[approver], window=timedelta(hours=2))
    with time_machine.travel(submitted_at, tick=False):
        return submit(eligible_user)


def status_of(request) -> str:
    return RoleRequest.objects.get(pk=request.pk).status


def test_the_deadline_is_the_submission_plus_the_policy_window(request_due, submitted_at):
    assert request_due.approval_deadline == submitted_at + timedelta(hours=2)


def test_default_window_is_24_hours(eligible_user, tree, submitted_at):
    RolePolicy.objects.filter(role=role(PRA), scope=None).update(
        require_approval=True, require_mfa_on_activation=False
    )
    with time_machine.travel(submitted_at, tick=False):
        request = submit(eligible_user)
    assert request.approval_deadline == submitted_at + timedelta(hours=24)


def test_nothing_lapses_a_moment_before_the_deadline(request_due):
    with time_machine.travel(request_due.approval_deadline - TICK, tick=False):
        assert services.lapse_due() == 0
    assert status_of(request_due) == RequestStatus.PENDING_APPROVAL


def test_a_request_can_be_approved_a_moment_before_the_deadline(request_due, approver):
    with time_machine.travel(request_due.approval_deadline - TICK, tick=False):
        result = services.decision_record(
            actor=approver, request_id=request_due.pk, approve=True, justification="Just in time"
        )
    assert result.outcome == Outcome.APPROVED


def test_the_sweep_lapses_the_request_at_exactly_the_deadline(request_due):
    with time_machine.travel(request_due.approval_deadline, tick=False):
        assert services.lapse_due() == 1
    request = RoleRequest.objects.get(pk=request_due.pk)
    assert request.status == RequestStatus.EXPIRED
    assert request.completed_at == request_due.approval_deadline


def test_a_lapsed_request_can_no_longer_be_approved(request_due, approver):
    with time_machine.travel(request_due.approval_deadline, tick=False):
        services.lapse_due()
        with pytest.raises(DecisionConflict, match="lapsed") as caught:
            services.decision_record(
                actor=approver, request_id=request_due.pk, approve=True, justification="Late"
            )
    assert caught.value.outcome == Outcome.LAPSED
    assert not Assignment.objects.filter(activated_from__isnull=False).exists()


def test_past_the_deadline_approval_is_refused_even_when_no_worker_ran(request_due, approver):
    with (
        time_machine.travel(request_due.approval_deadline, tick=False),
        pytest.raises(DecisionConflict, match="lapsed"),
    ):
        services.decision_record(
            actor=approver, request_id=request_due.pk, approve=True, justification="Late"
        )
    # Refusing it also does the bookkeeping the worker would have done.
    assert status_of(request_due) == RequestStatus.EXPIRED
    assert not Assignment.objects.filter(activated_from__isnull=False).exists()


def test_past_the_deadline_the_inbox_hides_the_request_when_no_worker_ran(request_due, approver):
    with time_machine.travel(request_due.approval_deadline - TICK, tick=False):
        assert len(services.inbox_items(approver)) == 1
    with time_machine.travel(request_due.approval_deadline, tick=False):
        assert services.inbox_items(approver) == []
        assert services.inbox_count(approver) == 0
    assert status_of(request_due) == RequestStatus.PENDING_APPROVAL


def test_the_requester_is_told_when_the_request_lapses(
    request_due, eligible_user, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    with (
        time_machine.travel(request_due.approval_deadline, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.lapse_due()
    assert [m.to for m in mail.outbox] == [[eligible_user.email]]
    assert "lapsed" in mail.outbox[0].subject


def test_a_lapse_writes_one_audit_event(request_due):
    with time_machine.travel(request_due.approval_deadline, tick=False):
        services.lapse_due()
        services.lapse_due()
    events = AuditEvent.objects.filter(role_request_id=request_due.pk, action="pim.request.expired")
    assert events.count() == 1


def test_the_deadline_task_is_idempotent(request_due, django_capture_on_commit_callbacks):
    mail.outbox.clear()
    with (
        time_machine.travel(request_due.approval_deadline, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert tasks.request_deadline_passed(request_due.pk) is True
        assert tasks.request_deadline_passed(request_due.pk) is False
        assert tasks.lapse_sweep() == 0
    assert len(mail.outbox) == 1


def test_the_deadline_task_does_nothing_before_the_deadline(request_due):
    with time_machine.travel(request_due.approval_deadline - TICK, tick=False):
        assert tasks.request_deadline_passed(request_due.pk) is False
    assert status_of(request_due) == RequestStatus.PENDING_APPROVAL


def test_the_deadline_task_leaves_a_decided_request_alone(request_due, approver):
    with time_machine.travel(request_due.approval_deadline - timedelta(hours=1), tick=False):
        services.decision_record(
            actor=approver, request_id=request_due.pk, approve=True, justification="ok"
        )
    with time_machine.travel(request_due.approval_deadline + timedelta(hours=1), tick=False):
        assert tasks.request_deadline_passed(request_due.pk) is False
    assert status_of(request_due) == RequestStatus.PROVISIONED


def test_the_lapse_sweep_runs_every_minute(db):
    tasks.ensure_periodic_schedules()
    tasks.ensure_periodic_schedules()
    schedule = Schedule.objects.get(name=tasks.LAPSE_SCHEDULE)
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == (
        "approvals.tasks.lapse_sweep",
        Schedule.MINUTES,
        1,
    )


# --- The time engine's "approval deadlines" ------------------------------------------------


def test_no_schedule_is_kept_per_request(request_due):
    assert not Schedule.objects.filter(name__startswith="pim: approval deadline").exists()


def test_the_time_engine_is_due_at_the_earliest_pending_deadline(request_due, eligible_user):
    assert timekeeper.registered()  # registered in ApprovalsConfig.ready()
    work = {w.name: w for w in timekeeper.registered()}[tasks.DEADLINE_WORK]
    assert work.next_due() == request_due.approval_deadline
    RoleRequest.objects.filter(pk=request_due.pk).update(status=RequestStatus.CANCELED)
    assert work.next_due() is None


def test_run_due_lapses_exactly_the_due_requests_and_twice_does_nothing_twice(
    approver, tree, submitted_at, django_capture_on_commit_callbacks
):
    needs_approval(PRA, approvers=[approver], window=timedelta(hours=2))
    early = []
    with time_machine.travel(submitted_at, tick=False):
        early = [submit(new_requester(f"early{n}")) for n in range(3)]
    with time_machine.travel(submitted_at + timedelta(minutes=30), tick=False):
        later = submit(new_requester("later"))
    deadline = early[0].approval_deadline
    mail.outbox.clear()
    with (
        time_machine.travel(deadline, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert timekeeper.run_due(tasks.DEADLINE_WORK, limit=2) == 2
        assert timekeeper.run_due(tasks.DEADLINE_WORK, limit=2) == 1
        assert timekeeper.run_due(tasks.DEADLINE_WORK, limit=2) == 0
    assert [status_of(r) for r in early] == [RequestStatus.EXPIRED] * 3
    assert status_of(later) == RequestStatus.PENDING_APPROVAL
    events = AuditEvent.objects.filter(action="pim.request.expired")
    assert sorted(events.values_list("role_request_id", flat=True)) == [r.pk for r in early]
    assert set(events.values_list("actor_name", flat=True)) == {"system (approval deadline)"}
    assert events.filter(actor__isnull=False).count() == 0
    assert sorted(m.to[0] for m in mail.outbox) == sorted(r.requested_by.email for r in early)
    assert RoleRequest.objects.get(pk=early[0].pk).completed_at == deadline


def test_the_sweep_takes_batches_until_none_is_due(approver, tree, submitted_at):
    needs_approval(PRA, approvers=[approver], window=timedelta(hours=2))
    with time_machine.travel(submitted_at, tick=False):
        requests = [submit(new_requester(f"user{n}")) for n in range(5)]
    with time_machine.travel(requests[0].approval_deadline, tick=False):
        assert services.lapse_due(batch=2) == 5
        assert tasks.lapse_sweep() == 0


def test_a_lapse_batch_is_a_constant_number_of_queries(approver, tree, submitted_at):
    needs_approval(PRA, approvers=[approver], window=timedelta(hours=2))
    with time_machine.travel(submitted_at, tick=False):
        requests = [submit(new_requester(f"user{n}")) for n in range(13)]
    deadline = requests[0].approval_deadline
    with CaptureQueriesContext(connection) as few:
        services.lapse_batch(deadline, 3)
    with CaptureQueriesContext(connection) as many:
        assert services.lapse_batch(deadline, 10) == 10
    assert len(many.captured_queries) == len(few.captured_queries)


def test_the_sweep_removes_schedules_left_by_earlier_versions(db):
    Schedule.objects.create(
        name="pim: approval deadline 12",
        func="approvals.tasks.request_deadline_passed",
        args="12",
        schedule_type=Schedule.ONCE,
    )
    tasks.ensure_periodic_schedules()
    assert not Schedule.objects.filter(name="pim: approval deadline 12").exists()
    assert Schedule.objects.filter(name=tasks.LAPSE_SCHEDULE).exists()
