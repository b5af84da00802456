"""Security alerts: findings computed from the data by the rules in `alerts.rules`, with a
history, and per-rule settings (on/off, thresholds).

A scan (`alerts.services.scan`) evaluates every enabled rule: a finding with no open alert opens
one, a changed finding updates it, an open alert whose finding is gone is resolved (by the scan).
Alerts are never deleted: their history is the record of what was seen and done.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Severity(models.TextChoices):
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


SEVERITY_ORDER = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.LOW: 2}


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


class AlertQuerySet(models.QuerySet):
    def open(self):
        return self.filter(status=AlertStatus.OPEN)


class Alert(models.Model):
    """One finding of one rule (`kind`), about one subject (`key`: "" for a rule that finds
    one thing, a role or scope id for a rule that finds one per subject)."""

    kind = models.CharField(max_length=60, db_index=True)
    key = models.CharField(max_length=200, blank=True, default="")
    severity = models.CharField(max_length=10, choices=Severity.choices)
    status = models.CharField(
        max_length=10, choices=AlertStatus.choices, default=AlertStatus.OPEN, db_index=True
    )
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    how_to_fix = models.TextField(blank=True)
    # [{"label": ..., "url": ..., "id": ...}] of what the alert is about.
    affected = models.JSONField(default=list, blank=True)
    affected_count = models.PositiveIntegerField(default=0)
    opened_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_by_name = models.CharField(max_length=200, blank=True)

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ["status", "-opened_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "key"],
                condition=Q(status="open"),
                name="one_open_alert_per_kind_and_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_severity_display()}: {self.title}"


class AlertHistory(models.Model):
    """What happened to an alert: opened, updated, resolved, reopened; by whom or by what."""

    class What(models.TextChoices):
        OPENED = "opened", "Opened"
        UPDATED = "updated", "Updated"
        RESOLVED = "resolved", "Resolved"
        REMEDIATED = "remediated", "Remediation applied"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="history")
    at = models.DateTimeField(default=timezone.now)
    what = models.CharField(max_length=20, choices=What.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    by_name = models.CharField(max_length=200)  # a person, or "system (alert scan)"
    details = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "pk"]
        verbose_name_plural = "alert history"

    def __str__(self) -> str:
        return f"{self.get_what_display()} by {self.by_name}"


class AlertSetting(models.Model):
    """A rule's switch and thresholds (the rule's defaults fill what is not stored)."""

    kind = models.CharField(max_length=60, unique=True)
    enabled = models.BooleanField(default=True)
    thresholds = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"Settings of alert {self.kind}"
