"""The audit log: append-only, hash-chained. Imports no other app; every app writes to it.

An event is written without a place in the chain (`seq`, `prev_hash` and `hash` empty), in the
transaction of the change it describes, taking no lock. The sealer (`audit.log.seal`) links
committed events into the chain, in short transactions of its own: that one update, from
unsealed to sealed, is the only change an event ever sees.
"""

import hashlib
import json

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.signals import pre_delete
from django.dispatch import receiver

GENESIS_HASH = "0" * 64


class AppendOnlyError(Exception):
    """Raised when code tries to change or delete an audit event."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Audit events are never updated.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError("Audit events are never updated.")

    def delete(self):
        raise AppendOnlyError("Audit events are never deleted.")

    def for_target(self, obj):
        return self.filter(target_type=obj._meta.label_lower, target_id=str(obj.pk))


class AuditEvent(models.Model):
    """One thing that changed, or one sensitive read. Written in the same transaction as it."""

    # The place in the chain, given by the sealer; None until sealed.
    seq = models.PositiveBigIntegerField(unique=True, null=True, blank=True, editable=False)
    created_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        # DO_NOTHING: deleting a user must not rewrite (and so break) the events they wrote;
        # actor_name keeps who it was.
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
    )
    actor_name = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=100, db_index=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=300, blank=True)
    principal = models.CharField(max_length=200, blank=True)
    role = models.CharField(max_length=200, blank=True)
    scope = models.CharField(max_length=500, blank=True)
    role_request_id = models.PositiveBigIntegerField(null=True, blank=True, db_index=True)
    http_request_id = models.CharField(max_length=36, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    message = models.TextField(blank=True)
    # Blank until sealed.
    prev_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    hash = models.CharField(max_length=64, blank=True, default="", editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        # Newest first; `seq` is empty until sealed, and events are sealed in `id` order.
        ordering = ["-id"]
        # Django internals (related lookups, refresh_from_db) use the base manager: guard it too.
        base_manager_name = "objects"
        indexes = [
            models.Index(fields=["target_type", "target_id"]),
            # The audit pages' filters, each read newest first by keyset on id.
            models.Index(fields=["actor", "-id"], name="audit_event_actor_id"),
            models.Index(fields=["action", "-id"], name="audit_event_action_id"),
            models.Index(fields=["role", "-id"], name="audit_event_role_id"),
            # ?scope= and an Owner's reach: LIKE 'path%' (PostgreSQL needs the pattern opclass).
            models.Index(
                fields=["scope", "id"],
                name="audit_event_scope_prefix",
                opclasses=["varchar_pattern_ops", "int8_ops"],
            ),
            models.Index(fields=["target_type", "target_id", "-id"], name="audit_event_target_id"),
            # What the sealer takes next, and when the oldest of it was written: a small index.
            models.Index(
                fields=["id", "created_at"],
                condition=models.Q(seq__isnull=True),
                name="audit_event_unsealed",
            ),
        ]

    def __str__(self) -> str:
        place = f"#{self.seq}" if self.seq is not None else "(unsealed)"
        return f"{place} {self.action} by {self.actor_name or 'system'}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Audit events are never updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit events are never deleted.")

    def canonical(self) -> str:
        """The text the hash covers: every recorded field, in a fixed order."""
        body = {
            "seq": self.seq,
            "created_at": self.created_at.isoformat(),
            "actor_id": self.actor_id,
            "actor_name": self.actor_name,
            "action": self.action,
            "target_type": self.target_type,
            "target_id": self.target_id,
            "target_repr": self.target_repr,
            "principal": self.principal,
            "role": self.role,
            "scope": self.scope,
            "role_request_id": self.role_request_id,
            "http_request_id": self.http_request_id,
            "ip": self.ip,
            "before": self.before,
            "after": self.after,
            "message": self.message,
        }
        return json.dumps(body, sort_keys=True, cls=DjangoJSONEncoder, separators=(",", ":"))

    def compute_hash(self) -> str:
        return hashlib.sha256((self.prev_hash + self.canonical()).encode()).hexdigest()

    @property
    def sealed(self) -> bool:
        return self.seq is not None

    @property
    def display(self) -> str:
        from audit.logdisplay import describe

        return describe(self.action)


@receiver(pre_delete, sender=AuditEvent, dispatch_uid="audit_event_append_only")
def _refuse_delete(sender, instance, **kwargs):
    """A delete through any queryset (even a plain `QuerySet(model=AuditEvent)`) or a cascade."""
    raise AppendOnlyError("Audit events are never deleted.")


class AuditChainHead(models.Model):
    """A single row holding the chain's last link; the sealer locks it for a batch."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"audit chain at #{self.seq}"


class AuditCheckpoint(models.Model):
    """A signed statement "the chain's link number `seq` has hash `head_hash`", made at
    `created_at` with a private key the database does not hold (Ed25519). Whoever rewrites the
    table cannot make a new signature, so `verify_audit` reports the first checkpoint a
    rewritten, truncated or cut chain contradicts."""

    seq = models.PositiveBigIntegerField(db_index=True)
    head_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    key_id = models.CharField(max_length=64)  # the public key's fingerprint (SHA-256, hex)
    signature = models.CharField(max_length=200)  # base64 of the Ed25519 signature
    # Set on the checkpoint that stands for events pruned by the retention setting.
    prunes_up_to = models.BooleanField(default=False)

    class Meta:
        ordering = ["-seq", "-id"]

    def __str__(self) -> str:
        return f"checkpoint at #{self.seq} ({self.created_at:%Y-%m-%d %H:%M})"

    def statement(self) -> bytes:
        """What the signature covers: the link, the time, and whether it stands for pruned
        events (else anyone who can write the table could mark one so and delete before it)."""
        moment = self.created_at.isoformat()
        flag = ":prunes-up-to" if self.prunes_up_to else ""
        return f"pim-audit-checkpoint:{self.seq}:{self.head_hash}:{moment}{flag}".encode()


class ChainVerification(models.Model):
    """The outcome of one run of the chain's verification (the daily task, or on demand)."""

    ran_at = models.DateTimeField(db_index=True)
    ok = models.BooleanField()
    checked = models.PositiveBigIntegerField(default=0)  # events verified
    up_to_seq = models.PositiveBigIntegerField(null=True, blank=True)
    up_to_at = models.DateTimeField(null=True, blank=True)
    checkpoints = models.PositiveIntegerField(default=0)  # signed checkpoints verified
    problem = models.TextField(blank=True)

    class Meta:
        ordering = ["-ran_at", "-id"]

    def __str__(self) -> str:
        return f"{'verified' if self.ok else 'BROKEN'} at {self.ran_at:%Y-%m-%d %H:%M}"


class AuditStreamCursor(models.Model):
    """How far the SIEM stream has sent the chain: events up to `seq` went out."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"SIEM stream sent up to #{self.seq}"
