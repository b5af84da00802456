from zoneinfo import available_timezones

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower

TIME_ZONE_CHOICES = sorted((tz, tz) for tz in available_timezones())


class User(AbstractUser):
    """A person who signs in. With Django's Group, one of the two kinds of principal."""

    display_name = models.CharField(max_length=150, blank=True)
    manager = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    time_zone = models.CharField(max_length=64, choices=TIME_ZONE_CHOICES, default="UTC")
    # Emergency access ("break glass"): may sign in with a local password even when local
    # sign-in is otherwise off; every use raises a high alert and needs a follow-up.
    is_emergency_access = models.BooleanField(
        "emergency access account",
        default=False,
        help_text="Break-glass account: signs in with its local password even when local "
        "sign-in is off. Every use raises a high alert and must be justified afterwards.",
    )

    class Meta:
        ordering = ["display_name", "username"]
        indexes = [models.Index(Lower("display_name"), name="user_display_name_lower")]

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username

    def save(self, *args, **kwargs):
        if not self.display_name:
            self.display_name = self.get_full_name() or self.username
        super().save(*args, **kwargs)


class EmergencyAccessUse(models.Model):
    """One sign-in of an emergency access account: a follow-up an administrator closes with a
    justification, having seen everything the account did during the session."""

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="emergency_uses")
    signed_in_at = models.DateTimeField(db_index=True)
    signed_out_at = models.DateTimeField(null=True, blank=True)
    session_key = models.CharField(max_length=40, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    justification = models.TextField(blank=True)

    class Meta:
        ordering = ["-signed_in_at", "-pk"]
        indexes = [
            models.Index(
                fields=["signed_in_at"],
                condition=models.Q(closed_at__isnull=True),
                name="emergency_use_open",
            )
        ]

    def __str__(self) -> str:
        return f"Emergency access by {self.user} at {self.signed_in_at:%Y-%m-%d %H:%M}"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None
