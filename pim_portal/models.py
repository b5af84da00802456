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

    class Meta:
        ordering = ["display_name", "username"]
        indexes = [models.Index(Lower("display_name"), name="user_display_name_lower")]

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username

    def save(self, *args, **kwargs):
        if not self.display_name:
            self.display_name = self.get_full_name() or self.username
        super().save(*args, **kwargs)
