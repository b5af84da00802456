"""django-q2 entry points: the lapse of requests not decided in time, and the mail of a new
request.

Approval deadlines are the time engine's due work ("approval deadlines", registered in
apps.py): the timekeeper wakes at the earliest deadline of a pending request and a worker
lapses what is due in batches. A sweep runs every minute as a safety net, should no
timekeeper run. Both are idempotent: only the batch that moves a request to expired writes the
audit event and queues the mail. Whether a request can still be approved never waits for
them: past its deadline it cannot.
"""

import logging

from django_q.models import Schedule

from approvals import services
from pim_portal import jobs

logger = logging.getLogger(__name__)

LAPSE_SCHEDULE = "pim: lapse pending approvals"
DEADLINE_WORK = "approval deadlines"
# Schedules made per request by earlier versions: the time engine does their work now.
OLD_DEADLINE_SCHEDULES = r"^pim: approval deadline \d+$"


def request_deadline_passed(request_id: int) -> bool:
    """Lapse the request if it is still pending. True when this call lapsed it.

    Kept for the schedules earlier versions queued per request (removed after migrate)."""
    return services.request_expire(request_id=request_id) is not None


def lapse_sweep() -> int:
    """Lapse every pending request past its deadline, in batches. How many this run lapsed."""
    return services.lapse_due()


def ensure_periodic_schedules(**kwargs) -> None:
    """Create the every-minute lapse sweep once, and drop per-request schedules (after migrate)."""
    Schedule.objects.update_or_create(
        name=LAPSE_SCHEDULE,
        defaults={
            "func": "approvals.tasks.lapse_sweep",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
    Schedule.objects.filter(name__regex=OLD_DEADLINE_SCHEDULES).delete()


def on_request_submitted(sender, request_id: int, **kwargs) -> None:
    """A request waits for approval (sent after commit): a worker asks its deciders.

    Its lapse needs nothing: the time engine finds its deadline on the row. The request is
    already saved, so a failure to queue is logged rather than shown to its requester.
    """
    try:
        jobs.enqueue("approvals.notifications.notify_approvers", request_id)
    except Exception:
        logger.exception("Could not queue the mail to the approvers of request %s", request_id)
