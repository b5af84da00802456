"""Races between real concurrent transactions on access reviews: one outcome every time.

Two workers completing the same ended occurrence (several timekeepers, or the reconciler and
the time engine), and an administrator's double click on "Apply results": the occurrence is
completed once, each denied assignment is removed once (one request, one audit event), and the
loser's call is a refusal or a no-op. PostgreSQL only (SQLite serialises writers).
"""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from assignments.models import Assignment, AssignmentKind, RequestAction, RoleRequest
from audit.models import AuditEvent
from reviews import services
from reviews.models import Decision, InstanceStatus, ReviewInstance
from tests.concurrency import race
from tests.factories import assign, make_user, role

pytestmark = [
    pytest.mark.postgres,
    # The catalog (roles, the root scope) comes from a data migration: restored after each.
    pytest.mark.django_db(transaction=True),
]

ROUNDS = 5
HOLDERS = 6


def ended_instance(admin, reviewer, *, auto_apply: bool, tag: str) -> ReviewInstance:
    """A review of HOLDERS eligible Security Readers, every one denied, past its end."""
    for number in range(HOLDERS):
        assign(make_user(f"{tag}-holder{number}"), "Security Reader", kind=AssignmentKind.ELIGIBLE)
    review = services.review_create(
        actor=admin,
        name=f"Race {tag}",
        roles=[role("Security Reader")],
        reviewer_users=[reviewer],
        duration_days=1,
        auto_apply=auto_apply,
        require_reason_on_approve=False,
    )
    instance = review.instances.get()
    services.items_decide(
        actor=reviewer, instance=instance, decision=Decision.DENY, filters={}, reason="race"
    )
    ReviewInstance.objects.filter(pk=instance.pk).update(
        start=timezone.now() - timedelta(days=1), end=timezone.now() - timedelta(seconds=1)
    )
    return instance


def removals(instance: ReviewInstance) -> tuple[int, int]:
    """(admin_remove requests, removal audit events) for the instance's assignments."""
    ids = list(instance.items.values_list("assignment_id", flat=True))
    requests = RoleRequest.objects.filter(
        target_assignment__in=ids, action=RequestAction.ADMIN_REMOVE
    ).count()
    events = AuditEvent.objects.filter(
        action="pim.assignment.removed", target_id__in=[str(pk) for pk in ids]
    ).count()
    return requests, events


def test_two_workers_complete_and_apply_an_occurrence_once(pra):
    reviewer = make_user("rita")
    for round_number in range(ROUNDS):
        instance = ended_instance(pra, reviewer, auto_apply=True, tag=f"w{round_number}")

        results = race(
            lambda: services.instance_complete_due(instance.pk),
            lambda: services.instance_complete_due(instance.pk),
        )
        services.resume_applying()

        assert sorted(results, key=str) == [False, True], results
        instance.refresh_from_db()
        assert instance.status == InstanceStatus.APPLIED
        assert (
            AuditEvent.objects.filter(
                action="pim.review.completed", target_id=str(instance.pk)
            ).count()
            == 1
        )
        assert removals(instance) == (HOLDERS, HOLDERS)
        still = Assignment.objects.in_force().filter(
            pk__in=instance.items.values_list("assignment_id", flat=True)
        )
        assert not still.exists()


def test_a_double_click_on_apply_removes_each_assignment_once(pra):
    reviewer = make_user("rudi")
    for round_number in range(ROUNDS):
        instance = ended_instance(pra, reviewer, auto_apply=False, tag=f"c{round_number}")
        services.instance_complete_due(instance.pk)

        results = race(
            lambda: services.instance_apply(actor=pra, instance=instance),
            lambda: services.instance_apply(actor=pra, instance=instance),
        )

        outcome, refusal = sorted(results, key=lambda r: isinstance(r, ValidationError))
        assert isinstance(outcome, services.ApplyOutcome), results
        assert isinstance(refusal, ValidationError), results
        assert refusal.messages[0] in (
            "These results are being applied right now.",
            "These results have already been applied.",
        )
        assert outcome.removed == HOLDERS
        assert removals(instance) == (HOLDERS, HOLDERS)
        assert (
            AuditEvent.objects.filter(
                action="pim.review.applied", target_id=str(instance.pk)
            ).count()
            == 1
        )


def test_two_reviewers_deciding_at_once_are_both_counted(pra):
    """The counts kept on the instance: whichever reviewer counts last sees both decisions
    (the instance row is locked before the count, so the count sees the other's commit)."""
    for round_number in range(ROUNDS):
        tag = f"c{round_number}"
        first, second = make_user(f"{tag}-first"), make_user(f"{tag}-second")
        for number in range(HOLDERS):
            holder = make_user(f"{tag}-holder{number}")
            assign(holder, "Security Reader", kind=AssignmentKind.ELIGIBLE)
        review = services.review_create(
            actor=pra,
            name=f"Counts {tag}",
            roles=[role("Security Reader")],
            reviewer_users=[first, second],
            duration_days=1,
            require_reason_on_approve=False,
        )
        instance = review.instances.get()
        ids = sorted(instance.items.values_list("pk", flat=True))
        half = len(ids) // 2

        results = race(
            lambda: services.items_decide(
                actor=first, instance=instance, decision=Decision.APPROVE, item_ids=ids[:half]
            ),
            lambda: services.items_decide(
                actor=second, instance=instance, decision=Decision.DENY, item_ids=ids[half:]
            ),
        )

        assert results == [half, len(ids) - half], results
        instance.refresh_from_db()
        by_decision = {row[2]: 0 for row in instance.item_counts}
        for row in instance.item_counts:
            by_decision[row[2]] += row[-1]
        assert by_decision == {
            Decision.APPROVE: half,
            Decision.DENY: len(ids) - half,
        }, instance.item_counts
