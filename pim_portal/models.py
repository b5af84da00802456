import hashlib
import secrets
from datetime import timedelta
from zoneinfo import available_timezones

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower

TIME_ZONE_CHOICES = sorted((tz, tz) for tz in available_timezones())


class Source(models.TextChoices):
    """Where a user or group comes from, and so who owns its fields: the portal itself, the
    identity provider at sign-in (OpenID Connect claims), or SCIM provisioning."""

    LOCAL = "local", "Local"
    OIDC = "oidc", "Single sign-on"
    SCIM = "scim", "SCIM provisioning"


def user_label(display_name: str, first_name: str, last_name: str, username: str) -> str:
    """How pages name a user (`str(user)`), from its columns: menus of many people build it
    without the model."""
    return display_name or f"{first_name} {last_name}".strip() or username


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

    # Where the account comes from; provider-owned fields are read-only in the portal.
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.LOCAL)
    # SCIM's externalId (the provider's own id for the user), when provisioned by SCIM.
    external_id = models.CharField(max_length=255, blank=True, db_index=True)
    # OpenID Connect: the provider's subject, unique per issuer, matched at every sign-in.
    oidc_issuer = models.CharField(max_length=255, blank=True)
    oidc_subject = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["display_name", "username"]
        # The Users page searches each from its start (people.queries.users_listed).
        indexes = [
            models.Index(Lower("display_name"), name="user_display_name_lower"),
            models.Index(Lower("username"), name="user_username_lower"),
            models.Index(Lower("email"), name="user_email_lower"),
            # The few emergency access accounts, read on every dashboard and alert scan.
            models.Index(
                fields=["id"],
                condition=models.Q(is_emergency_access=True),
                name="user_emergency_access",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["oidc_issuer", "oidc_subject"],
                condition=~models.Q(oidc_subject=""),
                name="user_oidc_subject_unique",
            )
        ]

    def __str__(self) -> str:
        return user_label(self.display_name, self.first_name, self.last_name, self.username)

    def save(self, *args, **kwargs):
        if not self.display_name:
            self.display_name = self.get_full_name() or self.username
        super().save(*args, **kwargs)


class GroupIdentity(models.Model):
    """Where a Django group (a principal) comes from: made in the portal, named by the
    identity provider's groups claim, or provisioned by SCIM (with its externalId)."""

    group = models.OneToOneField(
        "auth.Group", on_delete=models.CASCADE, related_name="identity", primary_key=True
    )
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.LOCAL)
    external_id = models.CharField(max_length=255, blank=True, db_index=True)
    # The value the OpenID Connect groups claim carries for this group (a name or an id).
    claim_value = models.CharField(max_length=255, blank=True, db_index=True)

    class Meta:
        verbose_name_plural = "group identities"

    def __str__(self) -> str:
        return f"{self.group} ({self.get_source_display()})"


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


class AccessToken(models.Model):
    """A bearer token a program presents instead of a person's session: SCIM provisioning
    (`kind=scim`, acting as the system) or the portal's API (`kind=api`, acting as its owner).
    Only the SHA-256 of its secret is kept, with a short prefix of it to tell tokens apart on a
    page; the secret is shown once, when it is made."""

    class Kind(models.TextChoices):
        SCIM = "scim", "SCIM provisioning"
        API = "api", "API"

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SCIM)
    prefix = models.CharField(max_length=16, help_text="The first characters of the secret.")
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    # An API token acts as this user, with their permissions at each request (none for SCIM).
    owner = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="api_tokens"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} token {self.name!r}"

    def is_usable(self, at) -> bool:
        """Not revoked and not expired at `at`: the rule of time, read from the row."""
        return self.revoked_at is None and at < self.expires_at

    # What SCIM and API tokens share: the secret, its hash, the expiry rule, the use noted.
    SHOWN_AFTER_PREFIX = 5  # characters of the secret shown after its kind's prefix

    @staticmethod
    def hash_secret(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    @staticmethod
    def bearer_secret(authorization: str | None) -> str:
        """The secret of an `Authorization: Bearer <secret>` header, or "" for anything else."""
        scheme, _, secret = (authorization or "").strip().partition(" ")
        return secret.strip() if scheme.lower() == "bearer" else ""

    @staticmethod
    def expiry_problem(expires_at, *, now, max_days: int) -> str | None:
        """Why a token may not expire then (in the past, or later than `max_days` from now)."""
        latest = now + timedelta(days=max_days)
        if expires_at <= now:
            return "The expiry must be in the future."
        if expires_at > latest:
            return f"A token lasts at most {max_days} days (until {latest:%Y-%m-%d})."
        return None

    @classmethod
    def issue(cls, *, kind: str, secret_prefix: str, **fields) -> tuple["AccessToken", str]:
        """A new token of `kind` and its secret (`secret_prefix` and 256 random bits), which
        only the caller ever sees: the row keeps its hash and first characters."""
        secret = secret_prefix + secrets.token_urlsafe(32)
        token = cls.objects.create(
            kind=kind,
            prefix=secret[: len(secret_prefix) + cls.SHOWN_AFTER_PREFIX],
            secret_hash=cls.hash_secret(secret),
            **fields,
        )
        return token, secret

    def note_use(self, now, interval: timedelta) -> bool:
        """Move last_used_at to `now` unless it moved within `interval`: True when this call
        moved it (a conditional update, so of concurrent requests one says so)."""
        stale = models.Q(last_used_at__isnull=True) | models.Q(last_used_at__lte=now - interval)
        moved = bool(AccessToken.objects.filter(stale, pk=self.pk).update(last_used_at=now))
        if moved:
            self.last_used_at = now
        return moved
