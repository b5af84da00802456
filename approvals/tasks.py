"""django-q2 entry points: the lapse of requests not decided in time.

A task runs at each request's approval deadline (scheduled when the request is submitted) and
a sweep runs every minute to catch whatever was missed while no worker ran. Both are
idempotent: only the call that moves a request to expired writes the audit event and mails.
Whether a request can still be approved never waits for them: past its deadline it cannot.
"""

import logging

from django_q.models import Schedule

from approvals import notifications, services
from assignments.models import RoleRequest

logger = logging.getLogger(__name__)

LAPSE_SCHEDULE = "pim: lapse pending approvals"


def deadline_schedule_name(request_id: int) -> str:
    return f"pim: approval deadline {request_id}"


def schedule_deadline(request_id: int) -> None:
    """Queue a task at the request's approval deadline (once per request)."""
    request = RoleRequest.objects.filter(pk=request_id).only("approval_deadline").first()
    if request is None or request.approval_deadline is None:
        return
    Schedule.objects.update_or_create(
        name=deadline_schedule_name(request_id),
        defaults={
            "func": "approvals.tasks.request_deadline_passed",
            "args": repr(request_id),
            "schedule_type": Schedule.ONCE,
            "repeats": -1,
            "next_run": request.approval_deadline,
        },
    )


def request_deadline_passed(request_id: int) -> bool:
    """Lapse the request if it is still pending. True when this call lapsed it."""
    return services.request_expire(request_id=request_id) is not None


def lapse_sweep() -> int:
    """Lapse every pending request past its deadline. Returns how many this run lapsed."""
    return services.lapse_due()


def ensure_periodic_schedules(**kwargs) -> None:
    """Create the every-minute lapse sweep once (called after migrate)."""
    Schedule.objects.update_or_create(
        name=LAPSE_SCHEDULE,
        defaults={
            "func": "approvals.tasks.lapse_sweep",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )


def on_request_submitted(sender, request_id: int, **kwargs) -> None:
    """A request waits for approval (sent after commit): schedule its lapse, ask its deciders.

    The request is already saved, so a failure here is logged rather than shown to its
    requester as an error; the sweep lapses the request all the same.
    """
    try:
        schedule_deadline(request_id)
    except Exception:
        logger.exception("Could not schedule the approval deadline of request %s", request_id)
    try:
        notifications.notify_approvers(request_id)
    except Exception:
        logger.exception("Could not mail the approvers of request %s", request_id)
