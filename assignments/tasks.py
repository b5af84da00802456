"""django-q2 entry points for the side effects of time passing.

Access never waits for these: an assignment is in force from `start` to `end` whatever the
workers do. These tasks only do bookkeeping, audit entries and mail, each exactly once: work is
claimed with a conditional update, so running a task twice (or two workers at once) changes
nothing and sends nothing twice. `reconcile` runs every minute and catches up whatever was
missed while no worker ran.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
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
from pim_portal.actor import Actor
from pim_portal.mail import absolute_url, send_templated_mail

logger = logging.getLogger(__name__)

RECONCILE_SCHEDULE = "pim: reconcile assignments"
# The time engine acts as the system, for this stated reason (the audit log names it).
SCHEDULER = Actor.system("scheduler")


def _schedule_once(name: str, func: str, arg: int, when) -> None:
    Schedule.objects.update_or_create(
        name=name,
        defaults={
            "func": func,
            "args": repr(arg),
            "schedule_type": Schedule.ONCE,
            "repeats": -1,
            "next_run": when,
        },
    )


def schedule_assignment_tasks(assignment_id: int) -> None:
    """Queue a task at the assignment's start (if later) and at its end (if any)."""
    assignment = Assignment.objects.filter(pk=assignment_id).first()
    if assignment is None:
        return
    now = timezone.now()
    if assignment.start > now:
        _schedule_once(
            f"pim: start assignment {assignment.pk}",
            "assignments.tasks.assignment_started",
            assignment.pk,
            assignment.start,
        )
    if assignment.end is not None:
        _schedule_once(
            f"pim: end assignment {assignment.pk}",
            "assignments.tasks.assignment_ended",
            assignment.pk,
            max(assignment.end, now),
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


def assignment_started(assignment_id: int) -> bool:
    """Bookkeeping once an assignment's start has passed. True when this call did the work."""
    now = timezone.now()
    with transaction.atomic():
        claimed = Assignment.objects.filter(
            pk=assignment_id, start__lte=now, start_processed_at__isnull=True
        ).update(start_processed_at=now)
        if not claimed:
            return False
        assignment = Assignment.objects.with_related().get(pk=assignment_id)
        scheduled = RoleRequest.objects.filter(
            result_assignment=assignment, status=RequestStatus.SCHEDULED
        )
        request_ids = list(scheduled.values_list("pk", flat=True))
        scheduled.update(status=RequestStatus.PROVISIONED)
        if request_ids:
            audit_log.record(
                action="pim.assignment.started",
                actor=SCHEDULER,
                target=assignment,
                principal=assignment.principal_name,
                role=assignment.role.name,
                scope=assignment.scope.path,
                role_request_id=request_ids[0],
                after=assignment.snapshot(),
            )
    return True


def assignment_ended(assignment_id: int) -> bool:
    """Bookkeeping, audit and mail once an assignment's end has passed; exactly once."""
    now = timezone.now()
    with transaction.atomic():
        claimed = Assignment.objects.filter(
            pk=assignment_id, end__lte=now, end_processed_at__isnull=True
        ).update(end_processed_at=now)
        if not claimed:
            return False
        assignment = Assignment.objects.with_related().get(pk=assignment_id)
        if assignment.start_processed_at is None and assignment.start <= now:
            Assignment.objects.filter(pk=assignment_id).update(start_processed_at=now)
        RoleRequest.objects.filter(
            result_assignment=assignment, status=RequestStatus.SCHEDULED
        ).update(status=RequestStatus.PROVISIONED)
        audit_log.record(
            action="pim.assignment.ended",
            actor=SCHEDULER,
            target=assignment,
            principal=assignment.principal_name,
            role=assignment.role.name,
            scope=assignment.scope.path,
            after=assignment.snapshot(),
        )
        holder_mail = [assignment.principal_user.email] if assignment.principal_user_id else []
        if assignment.kind == AssignmentKind.ACTIVE and holder_mail and holder_mail[0]:
            context = {
                "assignment": assignment,
                "link": absolute_url(reverse("assignments:my_roles")),
            }
            transaction.on_commit(
                lambda: send_templated_mail(
                    template="assignments/mail/ended", recipients=holder_mail, context=context
                )
            )
    return True


def send_reminders(now=None) -> int:
    """Mail holders whose assignment ends in 14 days or in 1 day; once per assignment and end.

    An assignment that was shorter than the horizon from the start (an 8-hour activation) gets
    no reminder for it: the holder chose that end moments ago.
    """
    now = now or timezone.now()
    sent = 0
    for days in settings.PIM_REMINDER_DAYS:
        horizon = timedelta(days=days)
        due = Assignment.objects.in_force(now).filter(
            end__lte=now + horizon, principal_user__isnull=False
        )
        nearer = [d for d in settings.PIM_REMINDER_DAYS if d < days]
        if nearer:
            # Caught up late (workers were down): only the nearest reminder still makes sense.
            due = due.filter(end__gt=now + timedelta(days=max(nearer)))
        due = list(due.with_related())
        done = set(
            AssignmentReminder.objects.filter(assignment__in=due, days_before=days).values_list(
                "assignment_id", "for_end"
            )
        )
        for assignment in due:
            if (
                assignment.pk,
                assignment.end,
            ) in done or assignment.end - assignment.start <= horizon:
                continue
            if _claim_reminder(assignment, days):
                sent += _mail_reminder(assignment, days)
    return sent


def _claim_reminder(assignment: Assignment, days: int) -> bool:
    try:
        with transaction.atomic():
            AssignmentReminder.objects.create(
                assignment=assignment, for_end=assignment.end, days_before=days
            )
    except IntegrityError:
        return False
    return True


def _mail_reminder(assignment: Assignment, days: int) -> int:
    email = assignment.principal_user.email
    if not email:
        return 0
    return send_templated_mail(
        template="assignments/mail/ending_soon",
        recipients=[email],
        context={
            "assignment": assignment,
            "days": days,
            "link": absolute_url(reverse("assignments:my_roles")),
        },
    )


def reconcile() -> dict:
    """Catch up every start and end that passed without its task, then send due reminders."""
    now = timezone.now()
    started = 0
    for pk in Assignment.objects.filter(
        start__lte=now, start_processed_at__isnull=True
    ).values_list("pk", flat=True):
        started += assignment_started(pk)
    ended = 0
    for pk in Assignment.objects.filter(end__lte=now, end_processed_at__isnull=True).values_list(
        "pk", flat=True
    ):
        ended += assignment_ended(pk)
    reminded = send_reminders(now)
    return {"started": started, "ended": ended, "reminded": reminded}
