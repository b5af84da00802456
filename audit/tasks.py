"""django-q2 entry points of the audit log: signed checkpoints, verification, retention.

Each is idempotent: a checkpoint of a head already signed is not made again, a verification
only adds its record, a prune deletes nothing more the second time.
"""

from django.conf import settings
from django_q.models import Schedule

from audit import checkpoints, retention

CHECKPOINT_SCHEDULE = "pim: sign an audit checkpoint"
VERIFY_SCHEDULE = "pim: verify the audit chain"
PRUNE_SCHEDULE = "pim: prune the audit log"


def checkpoint() -> dict:
    """Sign the chain's head (every AUDIT_CHECKPOINT_MINUTES); nothing without a key."""
    made = checkpoints.checkpoint_make()
    return {"checkpoint": made.pk if made else None, "seq": made.seq if made else None}


def verify() -> dict:
    """Verify the chain against every signed checkpoint (daily); a failure is a high alert."""
    verified = checkpoints.chain_verify()
    record = verified.record
    return {
        "verification": record.pk,
        "ok": record.ok,
        "checked": record.checked,
        "checkpoints": record.checkpoints,
        "problem": record.problem,
    }


def prune() -> dict:
    """Delete the events older than AUDIT_RETENTION_DAYS (daily); nothing when it is unset."""
    pruned = retention.prune()
    return {"deleted": pruned.deleted, "up_to_seq": pruned.up_to_seq, "refused": pruned.refused}


def checkpoint_minutes() -> int:
    return max(1, int(getattr(settings, "AUDIT_CHECKPOINT_MINUTES", 5) or 5))


def ensure_periodic_schedules(**kwargs) -> None:
    """Create (or update) the three schedules once (called after migrate)."""
    every = {
        CHECKPOINT_SCHEDULE: ("audit.tasks.checkpoint", Schedule.MINUTES, checkpoint_minutes()),
        VERIFY_SCHEDULE: ("audit.tasks.verify", Schedule.DAILY, None),
        PRUNE_SCHEDULE: ("audit.tasks.prune", Schedule.DAILY, None),
    }
    for name, (func, schedule_type, minutes) in every.items():
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": func,
                "schedule_type": schedule_type,
                "minutes": minutes,
                "repeats": -1,
            },
        )
