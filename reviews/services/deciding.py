"""Reviewers' decisions: one item, many, or every item of theirs matching a filter.

Set-based: the items are checked against the reviewer rule in SQL, updated in one statement per
chunk and audited with one INSERT per batch, so "approve all 10,000" takes seconds. A decision
can be changed until the instance ends; after the end, every decision is refused.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from assignments import authz
from audit import log as audit_log
from pim_portal.actor import Actor
from pim_portal.humanize import when
from reviews import authz as review_authz
from reviews.models import REVIEWER_DECISIONS, Decision, Recommendation, ReviewInstance
from reviews.queries import filtered_items
from reviews.services.counts import item_counts_refresh

CHUNK = 1000


def _open_instance(instance: ReviewInstance, now) -> ReviewInstance:
    """The instance, locked against its completion, or a refusal once it has ended."""
    locked = ReviewInstance.objects.select_for_update().select_related("review").get(pk=instance.pk)
    if not locked.is_open(now):
        if locked.start > now:
            raise ValidationError("This review has not started yet.")
        raise ValidationError(
            f"This review ended {when(locked.end)}: decisions can no longer be made or changed."
        )
    return locked


def _reviewer(actor: Actor):
    if actor.is_system:
        raise ValidationError("Only a reviewer decides; the system applies defaults at the end.")
    return actor.user


def _require_reviewer(actor: Actor, user, instance: ReviewInstance, ids: list[int] | None):
    """Refuse (403, audited) someone who reviews none of the instance's items, or who names
    an item that is not theirs to decide."""
    mine = review_authz.decidable_items(user, instance)
    if ids is None:
        allowed = mine.exists()
    else:
        allowed = all(
            mine.filter(pk__in=ids[at : at + CHUNK]).count() == len(ids[at : at + CHUNK])
            for at in range(0, len(ids), CHUNK)
        )
    if not allowed:
        authz.deny(
            actor,
            what=f"decide items of access review instance {instance.pk} that are not theirs "
            "to review",
            target=instance,
        )


def _events(items, *, actor, decision, reason, instance):
    for item in items:
        before = item.snapshot()
        item.decision, item.reason = decision, reason
        yield {
            "action": "pim.review.decided",
            "actor": actor,
            "target": instance,
            "principal": item.principal_name,
            "role": item.role.name,
            "scope": item.scope.path,
            "before": {"decision": before["decision"], "reason": before["reason"]},
            "after": item.snapshot(),
            "message": reason,
        }


def _record(items_query, *, actor, user, decision: str, reason: str, instance, now) -> int:
    """Write the decision on the items (ids from `items_query`), chunk by chunk; audited."""
    ids = list(items_query.order_by("pk").values_list("pk", flat=True))
    for at in range(0, len(ids), CHUNK):
        chunk = instance.items.filter(pk__in=ids[at : at + CHUNK]).select_related("role", "scope")
        rows = list(chunk)
        instance.items.filter(pk__in=[row.pk for row in rows]).update(
            decision=decision,
            reason=reason,
            decided_by=user,
            decided_by_name=str(user)[:200],
            decided_at=now,
            defaulted=False,
        )
        audit_log.record_many(
            _events(rows, actor=actor, decision=decision, reason=reason, instance=instance)
        )
    return len(ids)


def items_decide(
    *,
    actor: Actor,
    instance: ReviewInstance,
    decision: str,
    reason: str = "",
    item_ids=None,
    filters: dict | None = None,
) -> int:
    """Record the reviewer's decision on their items: `item_ids`, or every item of theirs that
    matches `filters`. An item that is not theirs to decide refuses the whole call (audited).
    """
    actor = Actor.of(actor)
    user = _reviewer(actor)
    reason = (reason or "").strip()
    if decision not in REVIEWER_DECISIONS:
        raise ValidationError("Choose Approve, Deny or Don't know.")
    if item_ids is None and filters is None:
        raise ValidationError("Choose the items to decide.")
    ids = None if item_ids is None else sorted({int(pk) for pk in item_ids})
    if ids is not None and not ids:
        raise ValidationError("Choose the items to decide.")
    # Checked before the transaction, so that the refusal's audit event is kept.
    _require_reviewer(actor, user, instance, ids)
    now = timezone.now()
    with transaction.atomic():
        instance = _open_instance(instance, now)
        if (
            decision == Decision.APPROVE
            and instance.review.require_reason_on_approve
            and not reason
        ):
            raise ValidationError("Give a reason to approve: this review requires one.")
        mine = review_authz.decidable_items(user, instance)
        chosen = filtered_items(mine, filters) if ids is None else mine.filter(pk__in=ids)
        decided = _record(
            chosen,
            actor=actor,
            user=user,
            decision=decision,
            reason=reason,
            instance=instance,
            now=now,
        )
        item_counts_refresh(instance.pk)
    return decided


def items_accept_recommendations(*, actor: Actor, instance: ReviewInstance) -> int:
    """Take the recommendation for each of the reviewer's items not decided yet. How many."""
    actor = Actor.of(actor)
    user = _reviewer(actor)
    _require_reviewer(actor, user, instance, None)
    now = timezone.now()
    done = 0
    with transaction.atomic():
        instance = _open_instance(instance, now)
        undecided = review_authz.decidable_items(user, instance).undecided()
        for recommendation, decision in (
            (Recommendation.APPROVE, Decision.APPROVE),
            (Recommendation.DENY, Decision.DENY),
        ):
            done += _record(
                undecided.filter(Q(recommendation=recommendation)),
                actor=actor,
                user=user,
                decision=decision,
                reason="Accepted the recommendation.",
                instance=instance,
                now=now,
            )
        item_counts_refresh(instance.pk)
    return done
