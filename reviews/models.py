"""Access reviews: a definition (which assignments, who reviews, when), its occurrences
(instances, each with its own snapshot of the assignments taken at its start) and one item per
assignment (and, for groups expanded to their members, per member) to decide.

Whether an instance accepts decisions is a function of the clock (`start <= now < end`), never
of its status column, which records the bookkeeping of completing and applying it.
"""

from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Count, Q
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from assignments.models import Assignment, AssignmentKind, Role, Scope
from reviews.choices import (  # noqa: F401 (re-exported: the models' vocabulary)
    DEFAULT_LOOKBACK_DAYS,
    RECURRENCE_STEP,
    REVIEW_PERMISSION,
    REVIEWER_DECISIONS,
    SHORTEST_PERIOD,
    ApplyResult,
    AssignmentTypes,
    Decision,
    DefaultDecision,
    GroupHandling,
    InstanceStatus,
    Recommendation,
    Recurrence,
    RecurrenceEnd,
    ReviewerType,
)


class AccessReview(models.Model):
    """What is reviewed, by whom, on which schedule, and what happens upon completion."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # What: assignments of these roles at the scope or below it.
    roles = models.ManyToManyField(Role, related_name="access_reviews")
    scope = models.ForeignKey(Scope, on_delete=models.PROTECT, related_name="access_reviews")
    assignment_types = models.CharField(
        max_length=10, choices=AssignmentTypes.choices, default=AssignmentTypes.BOTH
    )
    include_users = models.BooleanField(default=True)
    include_groups = models.BooleanField(default=True)
    group_handling = models.CharField(
        max_length=10, choices=GroupHandling.choices, default=GroupHandling.WHOLE
    )
    inactive_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Only principals with no activation and no sign-in for so long.",
    )
    # Who: named reviewers (and the fallback of a manager review) are object permissions.
    reviewer_type = models.CharField(
        max_length=10, choices=ReviewerType.choices, default=ReviewerType.SELECTED
    )
    # When: occurrences start at `start` in `time_zone`, the same local time each period.
    # Validated by the service (reviews.schedule.is_time_zone): choices here would put the
    # whole time zone database into the migrations, and a new one with every tzdata release.
    time_zone = models.CharField(max_length=64, default="UTC")
    start = models.DateTimeField()
    duration_days = models.PositiveSmallIntegerField(default=14)
    recurrence = models.CharField(
        max_length=20, choices=Recurrence.choices, default=Recurrence.ONE_TIME
    )
    recurrence_end = models.CharField(
        max_length=20, choices=RecurrenceEnd.choices, default=RecurrenceEnd.NEVER
    )
    recurrence_end_date = models.DateField(null=True, blank=True)
    recurrence_count = models.PositiveIntegerField(null=True, blank=True)
    # Upon completion
    auto_apply = models.BooleanField(default=False)
    default_decision = models.CharField(
        max_length=20, choices=DefaultDecision.choices, default=DefaultDecision.NO_CHANGE
    )
    require_reason_on_approve = models.BooleanField(default=True)
    reminders = models.BooleanField(default=True)
    notify_emails = models.JSONField(default=list, blank=True)
    recommendations = models.BooleanField(default=True)
    lookback_days = models.PositiveSmallIntegerField(default=DEFAULT_LOOKBACK_DAYS)

    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    # The time engine's due work: when the next occurrence starts (None: no more).
    next_start = models.DateTimeField(null=True, blank=True)
    occurrences = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [(REVIEW_PERMISSION, "Review the assignments of this access review")]
        indexes = [
            models.Index(
                fields=["next_start"],
                condition=Q(next_start__isnull=False),
                name="review_start_due",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_self_review(self) -> bool:
        return self.reviewer_type == ReviewerType.SELF

    @property
    def is_manager_review(self) -> bool:
        return self.reviewer_type == ReviewerType.MANAGER

    def kinds(self) -> list[str]:
        if self.assignment_types == AssignmentTypes.BOTH:
            return [AssignmentKind.ELIGIBLE, AssignmentKind.ACTIVE]
        return [self.assignment_types]

    def expands_groups(self) -> bool:
        """Self-review always reviews members one by one: a group cannot review itself."""
        return self.group_handling == GroupHandling.MEMBERS or self.is_self_review


class ReviewUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(AccessReview, on_delete=models.CASCADE)


class ReviewGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(AccessReview, on_delete=models.CASCADE)


class ReviewInstanceQuerySet(models.QuerySet):
    def in_progress(self, at: datetime | None = None):
        """Open for decisions at `at` (now): start <= at < end (the rule of time)."""
        at = at or timezone.now()
        return self.filter(start__lte=at, end__gt=at)

    def ended(self, at: datetime | None = None):
        return self.filter(end__lte=at or timezone.now())

    def with_progress(self):
        return self.annotate(
            total_items=Count("items"),
            decided_items=Count("items", filter=~Q(items__decision=Decision.NOT_REVIEWED)),
        )


class ReviewInstance(models.Model):
    """One occurrence of a review: its own snapshot of the assignments, taken at its start."""

    review = models.ForeignKey(AccessReview, on_delete=models.CASCADE, related_name="instances")
    number = models.PositiveIntegerField()
    start = models.DateTimeField()
    end = models.DateTimeField()
    status = models.CharField(
        max_length=20, choices=InstanceStatus.choices, default=InstanceStatus.IN_PROGRESS
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    halfway_reminded_at = models.DateTimeField(null=True, blank=True)
    last_day_reminded_at = models.DateTimeField(null=True, blank=True)
    # How many items there are by (named reviewer, decider, decision, apply result), as
    # [[reviewer_id, decided_by_id, decision, apply_result, count], ...]: recounted by every
    # service that changes items (reviews.services.counts), so that the pages read progress
    # here instead of counting the instance's ten thousand items on every load.
    item_counts = models.JSONField(default=list, blank=True, editable=False)

    objects = ReviewInstanceQuerySet.as_manager()

    class Meta:
        ordering = ["-start", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["review", "number"], name="one_instance_per_number"),
            models.CheckConstraint(
                condition=Q(end__gt=models.F("start")), name="instance_ends_after_start"
            ),
        ]
        indexes = [
            # The time engine's due work: instances whose end has come but are not completed.
            models.Index(
                fields=["end"],
                condition=Q(status="in_progress"),
                name="review_instance_end_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.review} ({self.start:%Y-%m-%d})"

    def is_open(self, at: datetime | None = None) -> bool:
        at = at or timezone.now()
        return self.start <= at < self.end

    def status_at(self, at: datetime | None = None) -> str:
        """In progress until its end, whatever the bookkeeping; then what was recorded (an
        ended instance not completed yet reads as completed: no decision is taken any more)."""
        at = at or timezone.now()
        if self.status == InstanceStatus.IN_PROGRESS and self.end <= at:
            return InstanceStatus.COMPLETED
        return self.status

    def get_current_status_display(self) -> str:
        return InstanceStatus(self.status_at()).label


class ReviewItemQuerySet(models.QuerySet):
    def undecided(self):
        return self.filter(decision=Decision.NOT_REVIEWED)

    def decided(self):
        return self.exclude(decision=Decision.NOT_REVIEWED)

    def with_related(self):
        """What a page of items shows: the scope joined, the rest set from what the page read
        already or in one query (`reviews.queries.attach_related`). A join of seven tables
        cost PostgreSQL several times longer to plan than to run; the names of principals and
        deciders are on the item."""
        return self.select_related("scope")


class ReviewItem(models.Model):
    """One assignment to decide (for a group expanded to its members: one member's share of
    it). Principal, role, scope and kind are copied from the snapshot, so results survive."""

    instance = models.ForeignKey(ReviewInstance, on_delete=models.CASCADE, related_name="items")
    assignment = models.ForeignKey(
        Assignment, null=True, on_delete=models.SET_NULL, related_name="review_items"
    )
    # The user reviewed (directly assigned, or a member of the group), and/or the group.
    principal_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    principal_group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    principal_name = models.CharField(max_length=300)
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="+")
    scope = models.ForeignKey(Scope, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=AssignmentKind.choices)
    assignment_end = models.DateTimeField(null=True, blank=True)
    # Who decides: a named user (the manager, or the principal in self-review), or, when NULL,
    # whoever holds the review permission on the review (its reviewers, or the fallback).
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_activation_at = models.DateTimeField(null=True, blank=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)
    recommendation = models.CharField(
        max_length=10, choices=Recommendation.choices, default=Recommendation.NONE
    )
    recommendation_reason = models.CharField(max_length=300, blank=True)
    decision = models.CharField(
        max_length=20, choices=Decision.choices, default=Decision.NOT_REVIEWED
    )
    reason = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by_name = models.CharField(max_length=200, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    # Filled upon completion when no reviewer decided (default decision or recommendation).
    defaulted = models.BooleanField(default=False)
    applied_at = models.DateTimeField(null=True, blank=True)
    apply_result = models.CharField(
        max_length=20, choices=ApplyResult.choices, default=ApplyResult.NOT_APPLIED, blank=True
    )
    apply_note = models.CharField(max_length=500, blank=True)

    objects = ReviewItemQuerySet.as_manager()

    class Meta:
        ordering = ["principal_name", "pk"]
        indexes = [
            models.Index(fields=["instance", "decision"], name="review_item_decision"),
            models.Index(fields=["reviewer", "instance"], name="review_item_reviewer"),
            models.Index(fields=["instance", "principal_name", "id"], name="review_item_order"),
        ]

    def __str__(self) -> str:
        return f"{self.principal_name}: {self.role} at {self.scope}"

    @property
    def is_group_as_whole(self) -> bool:
        return self.principal_group_id is not None and self.principal_user_id is None

    @property
    def via_group(self) -> bool:
        return self.principal_group_id is not None and self.principal_user_id is not None

    def snapshot(self) -> dict:
        """What the audit log records of a decision."""
        return {
            "principal": self.principal_name,
            "role": self.role.name,
            "scope": self.scope.path,
            "kind": self.kind,
            "decision": self.decision,
            "reason": self.reason,
            "recommendation": self.recommendation,
        }
