"""The side effects of time passing on assignments: starts, ends and reminders, in batches.

Access never waits for these: an assignment is in force from `start` to `end` whatever the
workers do. This is bookkeeping, audit entries and mail, each exactly once. The due rows are
found by partial indexes on what is still to do (`assignment_start_due`, `assignment_end_due`),
claimed with `SELECT ... FOR UPDATE SKIP LOCKED` so that two workers never take the same row,
and done a batch per transaction: a worker killed half-way rolls its batch back and the rows are
due again. Mail is queued in the same transaction (`pim_portal.jobs`). The timekeeper
(`pim_portal.timekeeper`) sends workers here as soon as something is due; `reconcile`, every
minute, catches up whatever it missed.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, Min, OuterRef
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from assignments.models import (
    Assignment,
    AssignmentKind,
    AssignmentReminder,
    RequestStatus,
    RoleRequest,
)
from audit import log as audit_log
from pim_portal import jobs, timekeeper
from pim_portal.actor import Actor
from pim_portal.mail import absolute_url, send_templated_mail

logger = logging.getLogger(__name__)

RECONCILE_SCHEDULE = "pim: reconcile assignments"
# The time engine acts as the system, for this stated reason (the audit log names it).
SCHEDULER = Actor.system("scheduler")

STARTS = "assignment starts"
ENDS = "assignment ends"


def _claim(queryset, limit: int, only: int | None = None) -> list[Assignment]:
    """Lock up to `limit` rows of the queryset (`only`: that one row, if it is among them)
    that no other worker holds (inside atomic)."""
    if only is not None:
        queryset = queryset.filter(pk=only)
    if connection.features.has_select_for_update_skip_locked:
        queryset = queryset.select_for_update(skip_locked=True, of=("self",))
    # SQLite has no row locks; its IMMEDIATE transactions (settings) let one writer in at a time.
    return list(queryset.with_related().order_by("pk")[:limit])


def _due_starts(now: datetime):
    return Assignment.objects.filter(start__lte=now, start_processed_at__isnull=True)


def _due_ends(now: datetime):
    return Assignment.objects.filter(end__lte=now, end_processed_at__isnull=True)


def _provision_scheduled(assignments: list[Assignment]) -> dict[int, int]:
    """Scheduled requests whose assignment has started are provisioned; {assignment: request}."""
    scheduled = RoleRequest.objects.filter(
        result_assignment__in=assignments, status=RequestStatus.SCHEDULED
    )
    request_of = dict(scheduled.values_list("result_assignment_id", "pk"))
    if request_of:
        scheduled.update(status=RequestStatus.PROVISIONED)
    return request_of


def _event(action: str, assignment: Assignment, **kw) -> dict:
    """The audit event of a start or an end, as `audit_log.record_many` takes it."""
    return {
        "action": action,
        "actor": SCHEDULER,
        "target": assignment,
        "principal": assignment.principal_name,
        "role": assignment.role.name,
        "scope": assignment.scope.path,
        "after": assignment.snapshot(),
        **kw,
    }


def start_batch(now: datetime, limit: int, *, only: int | None = None) -> int:
    """Record the start of up to `limit` assignments whose start has passed. How many."""
    with transaction.atomic():
        batch = _claim(_due_starts(now), limit, only)
        if not batch:
            return 0
        Assignment.objects.filter(pk__in=[a.pk for a in batch]).update(start_processed_at=now)
        request_of = _provision_scheduled(batch)
        # Only a scheduled start is news: one that began at once was audited as it began.
        audit_log.record_many(
            _event("pim.assignment.started", a, role_request_id=request_of[a.pk])
            for a in batch
            if a.pk in request_of
        )
    return len(batch)


def end_batch(now: datetime, limit: int, *, only: int | None = None) -> int:
    """Record, audit and (for active ones) mail the end of up to `limit` ended assignments."""
    with transaction.atomic():
        batch = _claim(_due_ends(now), limit, only)
        if not batch:
            return 0
        ids = [a.pk for a in batch]
        Assignment.objects.filter(pk__in=ids).update(end_processed_at=now)
        # An assignment that started and ended while no worker ran: its start is done too.
        Assignment.objects.filter(pk__in=ids, start_processed_at__isnull=True).update(
            start_processed_at=now
        )
        _provision_scheduled(batch)
        audit_log.record_many(_event("pim.assignment.ended", a) for a in batch)
        to_mail = [
            a.pk
            for a in batch
            if a.kind == AssignmentKind.ACTIVE and a.principal_user_id and a.principal_user.email
        ]
        if to_mail:
            jobs.enqueue("assignments.tasks.mail_ended", to_mail)
    return len(batch)


def mail_ended(assignment_ids: list[int]) -> int:
    """A worker's job: tell each holder that their active assignment has ended."""
    link = absolute_url(reverse("assignments:my_roles"))
    sent = 0
    for assignment in Assignment.objects.with_related().filter(pk__in=assignment_ids):
        sent += send_templated_mail(
            template="assignments/mail/ended",
            recipients=[assignment.principal_user.email],
            context={"assignment": assignment, "link": link},
        )
    return sent


def assignment_started(assignment_id: int) -> bool:
    """Record one assignment's start if it is due. True when this call did the work."""
    return bool(start_batch(timezone.now(), 1, only=assignment_id))


def assignment_ended(assignment_id: int) -> bool:
    """Record one assignment's end if it is due, exactly once. True when this call did it."""
    return bool(end_batch(timezone.now(), 1, only=assignment_id))


def _next(field: str, queryset) -> datetime | None:
    return queryset.aggregate(due=Min(field))["due"]


def register_due_work() -> None:
    timekeeper.register(
        timekeeper.DueWork(
            name=STARTS,
            next_due=lambda: _next("start", Assignment.objects.filter(start_processed_at=None)),
            run_batch=start_batch,
        )
    )
    timekeeper.register(
        timekeeper.DueWork(
            name=ENDS,
            next_due=lambda: _next(
                "end", Assignment.objects.filter(end_processed_at=None, end__isnull=False)
            ),
            run_batch=end_batch,
        )
    )


def ensure_periodic_schedules(**kwargs) -> None:
    """Create the periodic schedules once (called after migrate)."""
    Schedule.objects.update_or_create(
        name=RECONCILE_SCHEDULE,
        defaults={
            "func": "assignments.tasks.reconcile",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
    # One schedule per row was the old way; the timekeeper finds due rows itself now.
    Schedule.objects.filter(name__regex=r"^pim: (start|end) assignment \d+$").delete()


def send_reminders(now: datetime | None = None, limit: int = 200) -> int:
    """Mail holders whose assignment ends in 14 days or in 1 day; once per assignment and end.

    An assignment that was shorter than the horizon from the start (an 8-hour activation) gets
    no reminder for it: the holder chose that end moments ago. Batches of `limit` assignments
    are claimed like the other due work, so two workers never remind the same holder twice.
    """
    now = now or timezone.now()
    sent = 0
    for days in settings.PIM_REMINDER_DAYS:
        while reminded := _remind_batch(now, days, limit):
            sent += reminded
    return sent


def _reminders_due(now: datetime, days: int):
    horizon = timedelta(days=days)
    due = Assignment.objects.in_force(now).filter(
        end__lte=now + horizon, start__lt=F("end") - horizon, principal_user__isnull=False
    )
    nearer = [d for d in settings.PIM_REMINDER_DAYS if d < days]
    if nearer:
        # Caught up late (workers were down): only the nearest reminder still makes sense.
        due = due.filter(end__gt=now + timedelta(days=max(nearer)))
    already = AssignmentReminder.objects.filter(
        assignment=OuterRef("pk"), for_end=OuterRef("end"), days_before=days
    )
    return due.filter(~Exists(already))


def _remind_batch(now: datetime, days: int, limit: int) -> int:
    """Claim up to `limit` holders due a reminder, record it, queue the mail. How many."""
    with transaction.atomic():
        batch = _claim(_reminders_due(now, days), limit)
        if not batch:
            return 0
        AssignmentReminder.objects.bulk_create(
            AssignmentReminder(assignment=a, for_end=a.end, days_before=days) for a in batch
        )
        with_mail = [a.pk for a in batch if a.principal_user.email]
        if with_mail:
            jobs.enqueue("assignments.tasks.mail_reminders", with_mail, days)
    return len(batch)


def mail_reminders(assignment_ids: list[int], days: int) -> int:
    """A worker's job: the "ends in N days" mails of a batch of reminders."""
    link = absolute_url(reverse("assignments:my_roles"))
    sent = 0
    for assignment in Assignment.objects.with_related().filter(pk__in=assignment_ids):
        sent += send_templated_mail(
            template="assignments/mail/ending_soon",
            recipients=[assignment.principal_user.email],
            context={"assignment": assignment, "days": days, "link": link},
        )
    return sent


def reconcile() -> dict:
    """Catch up every start and end the timekeeper missed, then send due reminders."""
    now = timezone.now()
    started = ended = 0
    while did := start_batch(now, 500):
        started += did
    while did := end_batch(now, 500):
        ended += did
    return {"started": started, "ended": ended, "reminded": send_reminders(now)}
