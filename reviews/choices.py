"""The vocabulary of access reviews, in Microsoft Graph's and Entra's words where they have one.

Plain values with no queries; `reviews.models` re-exports them.
"""

from datetime import timedelta

from django.db import models


class AssignmentTypes(models.TextChoices):
    ELIGIBLE = "eligible", "Eligible assignments"
    ACTIVE = "active", "Active assignments"
    BOTH = "both", "Eligible and active assignments"


class GroupHandling(models.TextChoices):
    WHOLE = "whole", "Review each group as a whole"
    MEMBERS = "members", "Review each member of a group"


class ReviewerType(models.TextChoices):
    SELECTED = "selected", "Selected users or groups"
    MANAGER = "manager", "Manager of each principal"
    SELF = "self", "Self-review: principals review their own access"


class Recurrence(models.TextChoices):
    ONE_TIME = "one_time", "One time"
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"
    QUARTERLY = "quarterly", "Quarterly"
    SEMI_ANNUALLY = "semi_annually", "Semi-annually"
    ANNUALLY = "annually", "Annually"


# How far apart occurrences are (weeks, months), and the shortest such period: an instance may
# not last longer, or two would overlap.
RECURRENCE_STEP = {
    Recurrence.WEEKLY: (1, 0),
    Recurrence.MONTHLY: (0, 1),
    Recurrence.QUARTERLY: (0, 3),
    Recurrence.SEMI_ANNUALLY: (0, 6),
    Recurrence.ANNUALLY: (0, 12),
}
SHORTEST_PERIOD = {
    Recurrence.WEEKLY: timedelta(days=7),
    Recurrence.MONTHLY: timedelta(days=28),
    Recurrence.QUARTERLY: timedelta(days=89),
    Recurrence.SEMI_ANNUALLY: timedelta(days=181),
    Recurrence.ANNUALLY: timedelta(days=365),
}


class RecurrenceEnd(models.TextChoices):
    NEVER = "never", "Never"
    ON_DATE = "on_date", "On a date"
    AFTER_COUNT = "after_count", "After a number of occurrences"


class DefaultDecision(models.TextChoices):
    """What happens to an item no reviewer decided (Entra: "If reviewers don't respond")."""

    NO_CHANGE = "no_change", "No change"
    REMOVE = "remove", "Remove access"
    APPROVE = "approve", "Approve access"
    RECOMMENDATION = "recommendation", "Take recommendations"


class InstanceStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    APPLYING = "applying", "Applying"
    APPLIED = "applied", "Applied"


class Decision(models.TextChoices):
    NOT_REVIEWED = "not_reviewed", "Not reviewed"
    APPROVE = "approve", "Approve"
    DENY = "deny", "Deny"
    DONT_KNOW = "dont_know", "Don't know"


REVIEWER_DECISIONS = [Decision.APPROVE, Decision.DENY, Decision.DONT_KNOW]


class Recommendation(models.TextChoices):
    NONE = "none", "No recommendation"
    APPROVE = "approve", "Approve"
    DENY = "deny", "Deny"


class ApplyResult(models.TextChoices):
    NOT_APPLIED = "", "Not applied"
    REMOVED = "removed", "Removed"
    KEPT = "kept", "Kept"
    ALREADY_ENDED = "already_ended", "Had already ended"
    FAILED = "failed", "Failed"


REVIEW_PERMISSION = "review_accessreview"
DEFAULT_LOOKBACK_DAYS = 30
