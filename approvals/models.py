"""Decisions on requests waiting for approval: one per approver and request."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from assignments import counts


class Decision(models.TextChoices):
    APPROVE = "approve", "Approved"
    DENY = "deny", "Denied"


class ApprovalDecisionQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        """A bulk decision sends no post_save: it tells what keeps lists of requests."""
        counts.REQUESTS.move_now_and_after_commit()
        return super().bulk_create(objs, *args, **kwargs)

    def approvals(self):
        return self.filter(decision=Decision.APPROVE)

    def denials(self):
        return self.filter(decision=Decision.DENY)


class ApprovalDecision(models.Model):
    """An approver's answer to a request, with the reason they gave.

    Distinct approvals count towards the request's `approvals_required`; one deny ends it.
    """

    request = models.ForeignKey(
        "assignments.RoleRequest", on_delete=models.CASCADE, related_name="approval_decisions"
    )
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    approver_name = models.CharField(max_length=200)  # kept when the account is deleted
    decision = models.CharField(max_length=10, choices=Decision.choices)
    justification = models.TextField()
    decided_at = models.DateTimeField(default=timezone.now)

    objects = ApprovalDecisionQuerySet.as_manager()

    class Meta:
        ordering = ["decided_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "approver"], name="one_decision_per_approver_and_request"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} by {self.approver_name} (request {self.request_id})"

    @property
    def is_approval(self) -> bool:
        return self.decision == Decision.APPROVE
