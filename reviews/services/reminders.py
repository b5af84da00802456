"""Reminders to reviewers who have not finished: halfway through and one day before the end.

Each is claimed with a conditional update, so two workers never send the same reminder.
"""

from datetime import datetime, timedelta

from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from pim_portal import jobs
from reviews.models import InstanceStatus, ReviewInstance

LAST_DAY = timedelta(days=1)


def _due(now: datetime):
    return ReviewInstance.objects.in_progress(now).filter(
        status=InstanceStatus.IN_PROGRESS, review__reminders=True
    )


def send_reminders(now: datetime | None = None) -> int:
    """Queue the halfway and last-day reminders that are due. How many instances reminded."""
    now = now or timezone.now()
    sent = 0
    last_day = _due(now).filter(last_day_reminded_at__isnull=True, end__lte=now + LAST_DAY)
    # A review of a day or less has its halfway reminder only: "one day left" would come at
    # its start.
    longer = [i.pk for i in last_day.only("start", "end") if i.end - i.start > LAST_DAY]
    for pk in longer:
        # The last-day reminder stands for the halfway one too, when both are due together.
        claimed = ReviewInstance.objects.filter(pk=pk, last_day_reminded_at__isnull=True).update(
            last_day_reminded_at=now,
            halfway_reminded_at=Coalesce(F("halfway_reminded_at"), Value(now)),
        )
        if claimed:
            jobs.enqueue("reviews.notifications.mail_reminders", pk, "last_day")
            sent += 1
    halfway = [
        instance.pk
        for instance in _due(now).filter(halfway_reminded_at__isnull=True).only("start", "end")
        if instance.start + (instance.end - instance.start) / 2 <= now
    ]
    for pk in halfway:
        if ReviewInstance.objects.filter(pk=pk, halfway_reminded_at__isnull=True).update(
            halfway_reminded_at=now
        ):
            jobs.enqueue("reviews.notifications.mail_reminders", pk, "halfway")
            sent += 1
    return sent
