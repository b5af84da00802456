"""django-q2 entry points of access reviews, and their due work for the time engine.

Starts and ends of occurrences are the time engine's due work ("review starts", "review ends",
registered in apps.py): the timekeeper wakes at the earliest one and a worker does it. A
reconciler every minute catches up whatever was missed (no timekeeper, a worker killed while
applying) and sends due reminders. Every step is idempotent.
"""

from django.utils import timezone
from django_q.models import Schedule

from pim_portal import timekeeper
from reviews import services

RECONCILE_SCHEDULE = "pim: reconcile access reviews"
STARTS = "review starts"
ENDS = "review ends"


def reconcile() -> dict:
    """Start due occurrences, complete ended ones, finish applying, send due reminders."""
    now = timezone.now()
    started = completed = 0
    while did := services.start_batch(now, 50):
        started += did
    while did := services.complete_batch(now, 50):
        completed += did
    return {
        "started": started,
        "completed": completed,
        "resumed": services.resume_applying(),
        "reminded": services.send_reminders(now),
    }


def register_due_work() -> None:
    timekeeper.register(
        timekeeper.DueWork(name=STARTS, next_due=services.next_due, run_batch=services.start_batch)
    )
    timekeeper.register(
        timekeeper.DueWork(name=ENDS, next_due=services.next_end, run_batch=services.complete_batch)
    )


def ensure_periodic_schedules(**kwargs) -> None:
    """Create the every-minute reconciler once (called after migrate)."""
    Schedule.objects.update_or_create(
        name=RECONCILE_SCHEDULE,
        defaults={
            "func": "reviews.tasks.reconcile",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
