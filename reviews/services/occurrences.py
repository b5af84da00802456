"""Occurrences of a review: each starts with its own snapshot of the assignments in force.

The snapshot is set-based: a handful of queries read the assignments, their holders' last
activation and sign-in and a group's members, and the items are written with bulk inserts, so a
review of ten thousand assignments starts in seconds.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Max, Min, OuterRef, Subquery
from django.utils import timezone

from assignments.models import Assignment, AssignmentKind
from audit import log as audit_log
from pim_portal import jobs
from pim_portal.actor import Actor
from reviews import schedule
from reviews.models import (
    AccessReview,
    Recommendation,
    ReviewerType,
    ReviewInstance,
    ReviewItem,
)
from reviews.services.counts import item_counts_refresh

INSERT_BATCH = 1000


def review_actor(review: AccessReview) -> Actor:
    """The system, acting on behalf of the review (what the audit log names)."""
    return Actor.system(f"access review #{review.pk}")


def next_start(review: AccessReview, number: int) -> datetime | None:
    """The start of occurrence `number` (0 is the first), or None when there is none."""
    if not schedule.occurs(
        number=number,
        start=review.start,
        recurrence=review.recurrence,
        recurrence_end=review.recurrence_end,
        end_date=review.recurrence_end_date,
        count=review.recurrence_count,
        time_zone=review.time_zone,
    ):
        return None
    return schedule.occurrence_start(
        first=review.start, recurrence=review.recurrence, number=number, time_zone=review.time_zone
    )


def _end_of(review: AccessReview, begins: datetime) -> datetime:
    return schedule.occurrence_end(
        start=begins, duration_days=review.duration_days, time_zone=review.time_zone
    )


# --- The snapshot ------------------------------------------------------------------------------


@dataclass
class _Holder:
    user_id: int | None
    name: str
    last_sign_in: datetime | None
    manager_id: int | None  # None as well when the manager's account is deactivated


def _reviewed(review: AccessReview, now: datetime):
    """The assignments in force that the review covers (activations are not reviewed: the
    eligibility they came from is)."""
    assignments = Assignment.objects.in_force(now).filter(
        role__in=review.roles.all(),
        kind__in=review.kinds(),
        activated_from__isnull=True,
        scope__path__startswith=review.scope.path,
    )
    if not review.include_users:
        assignments = assignments.filter(principal_user__isnull=True)
    if not review.include_groups:
        assignments = assignments.filter(principal_group__isnull=True)
    return assignments.order_by()


def _members(assignments) -> dict[int, list[_Holder]]:
    """Every member of the groups holding the assignments: {group id: holders}. One query."""
    membership = get_user_model().groups.through
    rows = membership.objects.filter(
        group_id__in=assignments.filter(principal_group__isnull=False).values("principal_group_id")
    ).values_list(
        "group_id",
        "user_id",
        "user__display_name",
        "user__username",
        "user__last_login",
        "user__manager_id",
        "user__manager__is_active",
    )
    members: dict[int, list[_Holder]] = {}
    for group_id, user_id, display, username, last_login, manager_id, manager_active in rows:
        members.setdefault(group_id, []).append(
            _Holder(
                user_id, display or username, last_login, manager_id if manager_active else None
            )
        )
    return members


def _member_activations(assignments) -> dict[tuple[int, int], datetime]:
    """{(eligible assignment, member): their last activation through it}. One query."""
    rows = (
        Assignment.objects.filter(
            activated_from__in=assignments.filter(principal_group__isnull=False).values("pk")
        )
        .order_by()
        .values("activated_from_id", "principal_user_id")
        .annotate(last=Max("start"))
        .values_list("activated_from_id", "principal_user_id", "last")
    )
    return {(eligible, user): last for eligible, user, last in rows}


def _recommend(review: AccessReview, kind: str, last_activation, last_sign_in, now):
    if not review.recommendations:
        return Recommendation.NONE, ""
    cutoff = now - timedelta(days=review.lookback_days)
    days = review.lookback_days
    if kind == AssignmentKind.ELIGIBLE:
        seen, done, never = last_activation, "Activated the role", "activated the role"
    else:
        seen, done, never = last_sign_in, "Signed in", "signed in"
    if seen is not None and seen >= cutoff:
        return Recommendation.APPROVE, f"{done} on {seen:%Y-%m-%d}, within the last {days} days."
    if seen is None:
        return Recommendation.DENY, f"Has never {never} (look-back period {days} days)."
    return (
        Recommendation.DENY,
        f"Has not {never} in the last {days} days (last on {seen:%Y-%m-%d}).",
    )


def _inactive(review: AccessReview, last_activation, last_sign_in, now) -> bool:
    if review.inactive_days is None:
        return True
    cutoff = now - timedelta(days=review.inactive_days)
    return all(moment is None or moment < cutoff for moment in (last_activation, last_sign_in))


def _reviewer(review: AccessReview, holder: _Holder | None) -> int | None:
    """The named reviewer of an item, or None for the review's own reviewers (or fallback)."""
    if holder is None or holder.user_id is None:
        return None  # a group as a whole: no manager, never self-review
    if review.reviewer_type == ReviewerType.SELF:
        return holder.user_id
    if review.reviewer_type == ReviewerType.MANAGER and holder.manager_id != holder.user_id:
        return holder.manager_id
    return None


def _item(review, instance, row: dict, holder: _Holder | None, group_name, last_activation, now):
    last_sign_in = holder.last_sign_in if holder else row["group_sign_in"]
    if not _inactive(review, last_activation, last_sign_in, now):
        return None
    recommendation, why = _recommend(review, row["kind"], last_activation, last_sign_in, now)
    return ReviewItem(
        instance=instance,
        assignment_id=row["pk"],
        principal_user_id=holder.user_id if holder else None,
        principal_group_id=row["principal_group_id"],
        principal_name=(holder.name if holder else group_name)[:300],
        role_id=row["role_id"],
        scope_id=row["scope_id"],
        kind=row["kind"],
        assignment_end=row["end"],
        reviewer_id=_reviewer(review, holder),
        last_activation_at=last_activation,
        last_sign_in_at=last_sign_in,
        recommendation=recommendation,
        recommendation_reason=why,
    )


def _items(review: AccessReview, instance: ReviewInstance, now: datetime):
    assignments = _reviewed(review, now)
    last_activation = (
        Assignment.objects.filter(activated_from=OuterRef("pk"))
        .order_by()
        .values("activated_from")
        .annotate(last=Max("start"))
        .values("last")
    )
    rows = assignments.annotate(last_activation=Subquery(last_activation)).values(
        "pk",
        "principal_user_id",
        "principal_group_id",
        "principal_user__display_name",
        "principal_user__username",
        "principal_user__last_login",
        "principal_user__manager_id",
        "principal_user__manager__is_active",
        "principal_group__name",
        "role_id",
        "scope_id",
        "kind",
        "end",
        "last_activation",
    )
    members = _members(assignments) if review.include_groups else {}
    expand = review.expands_groups()
    by_member = _member_activations(assignments) if expand and members else {}
    for row in rows.iterator(chunk_size=2000):
        if row["principal_user_id"] is not None:
            holder = _Holder(
                row["principal_user_id"],
                row["principal_user__display_name"] or row["principal_user__username"],
                row["principal_user__last_login"],
                row["principal_user__manager_id"]
                if row["principal_user__manager__is_active"]
                else None,
            )
            item = _item(review, instance, row, holder, "", row["last_activation"], now)
        elif expand:
            for member in members.get(row["principal_group_id"], []):
                last = by_member.get((row["pk"], member.user_id))
                item = _item(review, instance, row, member, "", last, now)
                if item is not None:
                    yield item
            continue
        else:
            logins = [m.last_sign_in for m in members.get(row["principal_group_id"], [])]
            row["group_sign_in"] = max((t for t in logins if t), default=None)
            name = row["principal_group__name"]
            item = _item(review, instance, row, None, name, row["last_activation"], now)
        if item is not None:
            yield item


def _claim(review_id: int, now: datetime) -> AccessReview | None:
    due = AccessReview.objects.filter(pk=review_id, next_start__lte=now, stopped_at__isnull=True)
    if connection.features.has_select_for_update_skip_locked:
        due = due.select_for_update(skip_locked=True)
    return due.select_related("scope").first()


def _missed(review: AccessReview, number: int, begins: datetime, now: datetime) -> None:
    """An occurrence whose whole period passed while no worker ran: too late to review (and a
    default decision now would act on nobody's judgement); the next one is scheduled."""
    review.occurrences = number + 1
    review.next_start = next_start(review, number + 1)
    review.save(update_fields=["occurrences", "next_start"])
    audit_log.record(
        action="pim.review.occurrence_missed",
        actor=review_actor(review),
        target=review,
        scope=review.scope.path,
        message=f"Occurrence {number + 1}, due {begins:%Y-%m-%d %H:%M} UTC, ended before any "
        "worker could start it: not started.",
    )


def _start(review_id: int, now: datetime) -> tuple[bool, ReviewInstance | None]:
    """(whether the due review was handled, the instance started, if one was)."""
    with transaction.atomic():
        review = _claim(review_id, now)
        if review is None:
            return False, None
        number, begins, skipped = review.occurrences, review.next_start, 0
        while (following := next_start(review, number + 1)) is not None and following <= now:
            number, begins, skipped = number + 1, following, skipped + 1
        if _end_of(review, begins) <= now:
            _missed(review, number, begins, now)
            return True, None
        instance = ReviewInstance.objects.create(
            review=review, number=number + 1, start=begins, end=_end_of(review, begins)
        )
        made = ReviewItem.objects.bulk_create(
            _items(review, instance, now), batch_size=INSERT_BATCH
        )
        item_counts_refresh(instance.pk)
        review.occurrences = number + 1
        review.next_start = next_start(review, number + 1)
        review.save(update_fields=["occurrences", "next_start"])
        note = f" ({skipped} missed occurrences skipped)" if skipped else ""
        audit_log.record(
            action="pim.review.instance_started",
            actor=review_actor(review),
            target=instance,
            scope=review.scope.path,
            after={"start": instance.start, "end": instance.end, "items": len(made)},
            message=f"Occurrence {instance.number} started with {len(made)} items to review{note}.",
        )
        if made:
            jobs.enqueue("reviews.notifications.mail_started", instance.pk)
    return True, instance


def start_occurrence(review_id: int, *, now: datetime | None = None) -> ReviewInstance | None:
    """Start the review's occurrence that is due, with its snapshot; audited, reviewers mailed.

    Idempotent: a review whose next start has not come (or that another worker is starting)
    is left alone. Occurrences missed while no worker ran are skipped when the next one has
    already begun: only the latest starts, and not even that one once its end has passed.
    """
    return _start(review_id, now or timezone.now())[1]


def start_batch(now: datetime, limit: int) -> int:
    """The time engine's "review starts": start up to `limit` due occurrences. How many."""
    due = (
        AccessReview.objects.filter(next_start__lte=now, stopped_at__isnull=True)
        .order_by("next_start")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(1 for pk in list(due) if _start(pk, now)[0])


def next_due() -> datetime | None:
    """When the earliest occurrence still to start is due (one indexed query)."""
    due = AccessReview.objects.filter(next_start__isnull=False, stopped_at__isnull=True)
    return due.aggregate(due=Min("next_start"))["due"]
