"""The end of an occurrence: undecided items get the review's default, the instance completes,
and its results are applied (at once when auto-apply is on, else by an administrator).

Applying goes Completed → Applying → Applied. Denied assignments are removed through the
assignment services an administrator uses (`assignments_remove_many`), acting as the system on
behalf of the review; a member of a group reviewed member by member leaves the group. Items are
applied a chunk per transaction, so a worker killed half-way leaves the instance Applying and
the reconciler finishes the rest (each item is applied once: `applied_at` marks it).
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Min, Q
from django.utils import timezone

from assignments import services as assignment_services
from assignments.models import Assignment
from audit import log as audit_log
from pim_portal import jobs
from pim_portal.actor import Actor
from pim_portal.humanize import when
from reviews import authz as review_authz
from reviews.models import (
    ApplyResult,
    Decision,
    DefaultDecision,
    InstanceStatus,
    Recommendation,
    ReviewInstance,
)
from reviews.services.counts import item_counts_refresh
from reviews.services.occurrences import review_actor

CHUNK = 1000
NO_RESPONSE = "No reviewer responded: "


@dataclass
class ApplyOutcome:
    removed: int = 0
    kept: int = 0
    already_ended: int = 0
    failed: int = 0
    messages: list[str] = field(default_factory=list)


def _take_defaults(instance: ReviewInstance, now: datetime) -> int:
    """Give every undecided item the review's decision for no response. How many."""
    undecided = instance.items.undecided()
    default = instance.review.default_decision
    common = {"defaulted": True, "decided_at": now, "decided_by": None}
    if default == DefaultDecision.REMOVE:
        return undecided.update(
            decision=Decision.DENY,
            reason=NO_RESPONSE + "access removed, as the review's settings say.",
            **common,
        )
    if default == DefaultDecision.APPROVE:
        return undecided.update(
            decision=Decision.APPROVE,
            reason=NO_RESPONSE + "access approved, as the review's settings say.",
            **common,
        )
    if default == DefaultDecision.RECOMMENDATION:
        taken = 0
        for recommendation, decision in (
            (Recommendation.APPROVE, Decision.APPROVE),
            (Recommendation.DENY, Decision.DENY),
        ):
            taken += undecided.filter(recommendation=recommendation).update(
                decision=decision, reason=NO_RESPONSE + "the recommendation was taken.", **common
            )
        return taken
    return 0


def _counts(instance: ReviewInstance) -> dict:
    rows = instance.items.order_by().values_list("decision", flat=True)
    counts = Counter(rows)
    return {
        "approved": counts[Decision.APPROVE],
        "denied": counts[Decision.DENY],
        "dont_know": counts[Decision.DONT_KNOW],
        "not_reviewed": counts[Decision.NOT_REVIEWED],
    }


def _claim_due(instance_id: int, now: datetime) -> ReviewInstance | None:
    due = ReviewInstance.objects.filter(
        pk=instance_id, status=InstanceStatus.IN_PROGRESS, end__lte=now
    )
    if connection.features.has_select_for_update_skip_locked:
        due = due.select_for_update(skip_locked=True, of=("self",))
    return due.select_related("review__scope").first()


def instance_complete_due(instance_id: int, *, now: datetime | None = None) -> bool:
    """Complete an instance whose end has come: defaults, status, audit, mail; then apply when
    auto-apply is on. Idempotent: True only for the call that completed it."""
    now = now or timezone.now()
    with transaction.atomic():
        instance = _claim_due(instance_id, now)
        if instance is None:
            return False
        defaulted = _take_defaults(instance, now)
        item_counts_refresh(instance.pk)
        instance.status, instance.completed_at = InstanceStatus.COMPLETED, now
        instance.save(update_fields=["status", "completed_at"])
        counts = _counts(instance)
        audit_log.record(
            action="pim.review.completed",
            actor=review_actor(instance.review),
            target=instance,
            scope=instance.review.scope.path,
            after={**counts, "defaulted": defaulted},
            message=f"Occurrence {instance.number} completed; {defaulted} items took the "
            "review's default.",
        )
        jobs.enqueue("reviews.notifications.mail_completed", instance.pk)
    if instance.review.auto_apply:
        _apply(instance, applied_by=review_actor(instance.review))
    return True


def complete_batch(now: datetime, limit: int) -> int:
    """The time engine's "review ends": complete up to `limit` instances past their end."""
    due = (
        ReviewInstance.objects.filter(status=InstanceStatus.IN_PROGRESS, end__lte=now)
        .order_by("end")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(1 for pk in list(due) if instance_complete_due(pk, now=now))


def next_end() -> datetime | None:
    due = ReviewInstance.objects.filter(status=InstanceStatus.IN_PROGRESS)
    return due.aggregate(due=Min("end"))["due"]


# --- Applying ----------------------------------------------------------------------------------


def _remove_assignments(items: list, *, actor: Actor, justification: str, now) -> ApplyOutcome:
    outcome = ApplyOutcome()
    removal = assignment_services.assignments_remove_many(
        actor=actor,
        assignment_ids=[item.assignment_id for item in items if item.assignment_id],
        justification=justification,
    )
    removed, ended = set(removal.removed), set(removal.already_ended)
    for item in items:
        if item.assignment_id in removed:
            item.apply_result, item.apply_note = ApplyResult.REMOVED, ""
            outcome.removed += 1
        elif item.assignment_id in removal.refused:
            item.apply_result = ApplyResult.FAILED
            item.apply_note = removal.refused[item.assignment_id][:500]
            outcome.failed += 1
        else:  # ended meanwhile, or the assignment row is gone
            item.apply_result = ApplyResult.ALREADY_ENDED
            item.apply_note = "" if item.assignment_id in ended else "The assignment is gone."
            outcome.already_ended += 1
    return outcome


def _groups_beyond_the_review(review, group_ids: set[int], now) -> set[int]:
    """Groups that hold something besides the review's roles at its scope: taking a member
    out would cost them more than the review decided (a directory role, another scope)."""
    roles = {role.pk for role in review.roles.all()}
    held = (
        Assignment.objects.not_ended(now)
        .filter(principal_group__in=group_ids)
        .values_list("principal_group_id", "role_id", "scope__path")
    )
    return {
        group_id
        for group_id, role_id, path in held
        if role_id not in roles or not path.startswith(review.scope.path)
    }


def _remove_members(items: list, *, review, actor: Actor, justification: str, now) -> ApplyOutcome:
    """Members of a group reviewed one by one leave the group (what their share of it was),
    unless the group holds more than this review covers."""
    outcome = ApplyOutcome()
    beyond = _groups_beyond_the_review(review, {item.principal_group_id for item in items}, now)
    pairs = {
        (item.principal_user_id, item.principal_group_id)
        for item in items
        if item.principal_group_id not in beyond
    }
    membership = get_user_model().groups.through
    wanted = Q(pk__in=[])
    for user_id, group_id in pairs:
        wanted |= Q(user_id=user_id, group_id=group_id)
    members = set(membership.objects.filter(wanted).values_list("user_id", "group_id"))
    leaving = assignment_services.group_members_remove(
        actor=actor, pairs=members, justification=justification
    )
    for item in items:
        pair = (item.principal_user_id, item.principal_group_id)
        if item.principal_group_id in beyond:
            item.apply_result = ApplyResult.FAILED
            item.apply_note = (
                "The group also holds roles or scopes this review does not cover: remove the "
                "member from the group where it is managed."
            )
            outcome.failed += 1
        elif pair in leaving.refused:
            item.apply_result, item.apply_note = ApplyResult.FAILED, leaving.refused[pair][:500]
            outcome.failed += 1
        elif pair in members:
            item.apply_result, item.apply_note = ApplyResult.REMOVED, "Removed from the group."
            outcome.removed += 1
        else:
            item.apply_result = ApplyResult.ALREADY_ENDED
            item.apply_note = "No longer a member of the group."
            outcome.already_ended += 1
    return outcome


def _apply_chunk(instance: ReviewInstance, *, actor: Actor, now) -> ApplyOutcome | None:
    """Apply up to CHUNK denied items not applied yet, in one transaction; None when done."""
    with transaction.atomic():
        pending = instance.items.filter(decision=Decision.DENY, applied_at__isnull=True)
        if connection.features.has_select_for_update_skip_locked:
            pending = pending.select_for_update(skip_locked=True, of=("self",))
        items = list(pending.order_by("pk")[:CHUNK])
        if not items:
            return None
        justification = f"Denied in the access review “{instance.review.name}”."
        members = [item for item in items if item.via_group]
        direct = [item for item in items if not item.via_group]
        outcome = _remove_assignments(direct, actor=actor, justification=justification, now=now)
        if members:
            by_group = _remove_members(
                members, review=instance.review, actor=actor, justification=justification, now=now
            )
            outcome.removed += by_group.removed
            outcome.already_ended += by_group.already_ended
            outcome.failed += by_group.failed
        for result in {item.apply_result for item in items}:
            for note in {item.apply_note for item in items if item.apply_result == result}:
                ids = [i.pk for i in items if i.apply_result == result and i.apply_note == note]
                instance.items.filter(pk__in=ids).update(
                    apply_result=result, apply_note=note, applied_at=now
                )
    return outcome


def _results(instance: ReviewInstance) -> dict:
    rows = Counter(instance.items.order_by().values_list("apply_result", flat=True))
    return {
        "removed": rows[ApplyResult.REMOVED],
        "kept": rows[ApplyResult.KEPT],
        "already_ended": rows[ApplyResult.ALREADY_ENDED],
        "failed": rows[ApplyResult.FAILED],
    }


def _finish(instance: ReviewInstance, *, applied_by: Actor, now) -> bool:
    """Applying → Applied once no denied item is left: by whichever applier is last."""
    with transaction.atomic():
        locked = ReviewInstance.objects.select_for_update().get(pk=instance.pk)
        left = instance.items.filter(decision=Decision.DENY, applied_at__isnull=True)
        if locked.status != InstanceStatus.APPLYING or left.exists():
            return False  # another applier holds the rest (or has finished)
        instance.items.exclude(decision=Decision.DENY).filter(applied_at__isnull=True).update(
            apply_result=ApplyResult.KEPT, applied_at=now
        )
        item_counts_refresh(instance.pk)  # what was applied: counted once, by the last applier
        locked.status, locked.applied_at = InstanceStatus.APPLIED, now
        locked.save(update_fields=["status", "applied_at"])
        audit_log.record(
            action="pim.review.applied",
            actor=applied_by,
            target=instance,
            scope=instance.review.scope.path,
            after=_results(instance),
            message=f"Results of occurrence {instance.number} applied.",
        )
        jobs.enqueue("reviews.notifications.mail_removed", instance.pk)
    return True


def _apply(instance: ReviewInstance, *, applied_by: Actor, resume: bool = False) -> ApplyOutcome:
    """Completed → Applying → Applied. `resume`: take part in (or finish) an Applying one."""
    states = [InstanceStatus.COMPLETED, InstanceStatus.APPLYING] if resume else ["completed"]
    moved = ReviewInstance.objects.filter(pk=instance.pk, status__in=states).update(
        status=InstanceStatus.APPLYING
    )
    if moved != 1:
        current = ReviewInstance.objects.filter(pk=instance.pk).values_list("status", flat=True)
        if current.first() == InstanceStatus.APPLYING:
            raise ValidationError("These results are being applied right now.")
        raise ValidationError("These results have already been applied.")
    actor, now, total = review_actor(instance.review), timezone.now(), ApplyOutcome()
    while (chunk := _apply_chunk(instance, actor=actor, now=now)) is not None:
        total.removed += chunk.removed
        total.failed += chunk.failed
        total.already_ended += chunk.already_ended
    _finish(instance, applied_by=applied_by, now=now)
    total.kept = instance.items.filter(apply_result=ApplyResult.KEPT).count()
    if total.failed:
        total.messages.append(
            f"{total.failed} could not be removed: see the results for why (for example, the "
            "last active Global Administrator is kept)."
        )
    return total


def instance_apply(*, actor: Actor, instance: ReviewInstance) -> ApplyOutcome:
    """An administrator applies an ended instance's results by hand (completing it first,
    should the worker not have done so yet)."""
    actor = Actor.of(actor)
    review_authz.require_manage(actor, instance.review)
    now = timezone.now()
    instance = ReviewInstance.objects.select_related("review__scope").get(pk=instance.pk)
    if instance.end > now:
        raise ValidationError(
            f"This review is in progress until {when(instance.end)}: its results are applied "
            "once it ends."
        )
    if instance.status == InstanceStatus.IN_PROGRESS:
        instance_complete_due(instance.pk, now=now)
        instance.refresh_from_db()
        if instance.status == InstanceStatus.APPLIED:  # its auto-apply just ran
            return ApplyOutcome(**_results(instance))
    if instance.status == InstanceStatus.APPLIED:
        raise ValidationError("These results have already been applied.")
    return _apply(instance, applied_by=actor)


def resume_applying() -> int:
    """Finish instances left Applying (a worker stopped half-way). How many."""
    stuck = ReviewInstance.objects.filter(status=InstanceStatus.APPLYING).select_related(
        "review__scope"
    )
    done = 0
    for instance in stuck:
        try:
            _apply(instance, applied_by=review_actor(instance.review), resume=True)
            done += 1
        except ValidationError:
            continue  # another worker finished it meanwhile
    return done
