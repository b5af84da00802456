"""A connector is a target system and the mappings that make roles true in it.

The desired state of a mapping is who holds its role, active and in force, at its scope or
above (members of a group principal one by one, active accounts only); it is computed from the
assignments whenever it is needed, never stored. What is stored is what the portal did and saw:
a `Provisioning` row per mapping and user it has dealt with (its state in Microsoft Graph's
words, the error of the last attempt, and when to look again), and a `DriftFinding` per account
found in a target without an assignment that explains it.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from assignments.models import Role, Scope


class Connector(models.Model):
    """A target system. Its secret is never stored: `secret_ref` names where to read it
    (`env:NAME` for an environment variable, `file:/path` for a file)."""

    name = models.SlugField(
        max_length=50,
        unique=True,
        help_text="A short name, for the audit log and the URLs (ldap-corp).",
    )
    display_name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20)
    enabled = models.BooleanField(
        default=True,
        help_text="A disabled connector changes nothing in its target (Test connection "
        "still signs in).",
    )
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField(null=True, blank=True)
    username = models.CharField(
        max_length=500, blank=True, help_text="Who the portal signs in as (a bind DN, a role)."
    )
    secret_ref = models.CharField(
        max_length=500,
        blank=True,
        help_text="Where the password is: env:NAME (an environment variable) or file:/path.",
    )
    options = models.JSONField(default=dict, blank=True)
    timeout = models.FloatField(default=5.0, help_text="Seconds before a call gives up.")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_reconciled_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["display_name", "pk"]

    def __str__(self) -> str:
        return self.display_name or self.name


class Mapping(models.Model):
    """A role at a scope, made true as membership of one object in the connector's target."""

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="mappings")
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="+")
    scope = models.ForeignKey(Scope, on_delete=models.PROTECT, related_name="+")
    target = models.CharField(
        max_length=500, help_text="The object in the target: a group's DN, a database role."
    )
    enforce = models.BooleanField(
        default=False,
        help_text="Remove members found in the target without an assignment (drift).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_reconciled_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["connector", "role__name", "scope__path", "target"]
        constraints = [
            models.UniqueConstraint(
                fields=["connector", "role", "scope", "target"], name="mapping_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.role} at {self.scope} → {self.target}"


class ProvisioningState(models.TextChoices):
    PENDING_PROVISIONING = "pending_provisioning", "Pending provisioning"
    PROVISIONED = "provisioned", "Provisioned"
    PENDING_DEPROVISIONING = "pending_deprovisioning", "Pending deprovisioning"
    DEPROVISIONED = "deprovisioned", "Deprovisioned"
    FAILED = "failed", "Failed"


class Provisioning(models.Model):
    """What the portal did about one user in one mapping, and when it looks again.

    `due_at` is the next time the desired state may change (an end, a scheduled start), or
    now when something happened (an activation, a removal, a group change, a failure's retry);
    the time engine syncs due rows: read the target, act, record."""

    mapping = models.ForeignKey(Mapping, on_delete=models.CASCADE, related_name="provisionings")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(
        max_length=30,
        choices=ProvisioningState.choices,
        default=ProvisioningState.PENDING_PROVISIONING,
    )
    # What the last failed attempt tried to do: "grant" or "revoke".
    failed_operation = models.CharField(max_length=10, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    account = models.CharField(max_length=500, blank=True)
    # The assignment that put the user in, while one does (for the request's timeline).
    via_assignment = models.ForeignKey(
        "assignments.Assignment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    due_at = models.DateTimeField(null=True, blank=True)
    changed_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["mapping", "user"]
        constraints = [
            models.UniqueConstraint(fields=["mapping", "user"], name="provisioning_unique")
        ]
        indexes = [
            models.Index(fields=["due_at"], condition=Q(due_at__isnull=False), name="prov_due"),
            models.Index(fields=["user", "state"], name="prov_user_state"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.mapping.target}: {self.get_state_display()}"


class DriftFinding(models.Model):
    """An account found in a mapping's target object that no in-force assignment explains:
    access granted outside PIM. Open until it is gone (removed by enforcement or by hand)."""

    mapping = models.ForeignKey(Mapping, on_delete=models.CASCADE, related_name="findings")
    account = models.CharField(max_length=500)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    # "removed": enforcement took it out; "gone": it was no longer there; "explained": an
    # assignment now covers it.
    resolution = models.CharField(max_length=20, blank=True)

    class Meta:
        ordering = ["-first_seen_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["mapping", "account"],
                condition=Q(resolved_at__isnull=True),
                name="drift_one_open_per_account",
            )
        ]

    def __str__(self) -> str:
        return f"{self.account} in {self.mapping.target} outside PIM"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None
