"""Access reviews under the time engine with real processes: a timekeeper and two django-q2
workers complete an occurrence within seconds of its end and apply it, once. PostgreSQL only:
the workers must see what the test commits.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from assignments.models import Assignment, AssignmentKind
from audit.models import AuditEvent
from reviews import services
from reviews.models import Decision, InstanceStatus, ReviewInstance
from tests.factories import assign, make_user, role
from tests.workers import Workers, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BOUND = 120  # seconds: far beyond what the work needs; the loop stops by itself


def test_an_occurrence_ending_is_completed_and_applied_by_the_workers(pra, tmp_path):
    reviewer = make_user("wanda")
    denied = [
        assign(make_user(f"denied{n}"), "Security Reader", kind=AssignmentKind.ELIGIBLE)
        for n in range(20)
    ]
    kept = assign(make_user("kept"), "Security Reader", kind=AssignmentKind.ELIGIBLE)
    review = services.review_create(
        actor=pra,
        name="Ends under the workers",
        roles=[role("Security Reader")],
        reviewer_users=[reviewer],
        duration_days=1,
        auto_apply=True,
    )
    instance = review.instances.get()
    services.items_decide(
        actor=reviewer,
        instance=instance,
        decision=Decision.DENY,
        reason="Left the team",
        item_ids=list(instance.items.exclude(assignment=kept).values_list("pk", flat=True)),
    )
    ends = timezone.now() + timedelta(seconds=3)
    ReviewInstance.objects.filter(pk=instance.pk).update(end=ends)

    with Workers(mail_dir=tmp_path) as workers:
        applied = wait_until(
            lambda: ReviewInstance.objects.get(pk=instance.pk).status == InstanceStatus.APPLIED,
            seconds=BOUND,
        )
        assert applied, workers.errors()

    in_force = set(Assignment.objects.in_force().values_list("pk", flat=True))
    assert not in_force & {a.pk for a in denied}
    assert kept.pk in in_force
    for action in ("pim.review.completed", "pim.review.applied"):
        assert AuditEvent.objects.filter(action=action, target_id=str(instance.pk)).count() == 1
