"""Creating, changing and stopping access reviews: the definition, not its occurrences."""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from assignments import authz
from assignments.models import Role, Scope
from audit import log as audit_log
from pim_portal.actor import Actor, user_of
from reviews import authz as review_authz
from reviews import schedule
from reviews.models import (
    REVIEW_PERMISSION,
    AccessReview,
    AssignmentTypes,
    DefaultDecision,
    GroupHandling,
    Recurrence,
    RecurrenceEnd,
    ReviewerType,
    ReviewGroupObjectPermission,
    ReviewUserObjectPermission,
)
from reviews.services.completion import instance_complete_due
from reviews.services.occurrences import next_start, start_occurrence

# What may change once a review exists; the rest defines its snapshots and schedule.
EDITABLE = (
    "name",
    "description",
    "auto_apply",
    "default_decision",
    "require_reason_on_approve",
    "reminders",
    "notify_emails",
    "recommendations",
    "lookback_days",
    "recurrence_end",
    "recurrence_end_date",
    "recurrence_count",
)
MAX_LOOKBACK_DAYS = 365


def reviewers_of(review: AccessReview) -> tuple[list, list[Group]]:
    """The users and groups named as the review's reviewers (a manager review's fallback)."""
    users = list(
        get_user_model().objects.filter(
            reviewuserobjectpermission__content_object=review,
            reviewuserobjectpermission__permission__codename=REVIEW_PERMISSION,
        )
    )
    groups = list(
        Group.objects.filter(
            reviewgroupobjectpermission__content_object=review,
            reviewgroupobjectpermission__permission__codename=REVIEW_PERMISSION,
        )
    )
    return users, groups


def _set_reviewers(review: AccessReview, users: Iterable, groups: Iterable[Group]) -> None:
    permission = Permission.objects.get(
        codename=REVIEW_PERMISSION, content_type__app_label="reviews"
    )
    ReviewUserObjectPermission.objects.filter(content_object=review).delete()
    ReviewGroupObjectPermission.objects.filter(content_object=review).delete()
    ReviewUserObjectPermission.objects.bulk_create(
        ReviewUserObjectPermission(content_object=review, user=u, permission=permission)
        for u in users
    )
    ReviewGroupObjectPermission.objects.bulk_create(
        ReviewGroupObjectPermission(content_object=review, group=g, permission=permission)
        for g in groups
    )


def review_snapshot(review: AccessReview) -> dict:
    """What the audit log records of a review's definition."""
    users, groups = reviewers_of(review)
    return {
        "name": review.name,
        "description": review.description,
        "roles": sorted(role.name for role in review.roles.all()),
        "scope": review.scope.path,
        "assignment_types": review.assignment_types,
        "include_users": review.include_users,
        "include_groups": review.include_groups,
        "group_handling": review.group_handling,
        "inactive_days": review.inactive_days,
        "reviewer_type": review.reviewer_type,
        "reviewers": sorted([str(u) for u in users] + [f"{g.name} (group)" for g in groups]),
        "time_zone": review.time_zone,
        "start": review.start,
        "duration_days": review.duration_days,
        "recurrence": review.recurrence,
        "recurrence_end": review.recurrence_end,
        "recurrence_end_date": review.recurrence_end_date,
        "recurrence_count": review.recurrence_count,
        "auto_apply": review.auto_apply,
        "default_decision": review.default_decision,
        "require_reason_on_approve": review.require_reason_on_approve,
        "reminders": review.reminders,
        "notify_emails": list(review.notify_emails or []),
        "recommendations": review.recommendations,
        "lookback_days": review.lookback_days,
    }


def _choice(value, choices, what: str, problems: list[str]) -> None:
    if value not in choices.values:
        problems.append(f"Choose a valid {what}.")


def _emails(addresses: Iterable[str], problems: list[str]) -> list[str]:
    cleaned = []
    for address in addresses or ():
        address = (address or "").strip()
        if not address:
            continue
        try:
            validate_email(address)
        except ValidationError:
            problems.append(f"“{address}” is not an e-mail address.")
            continue
        cleaned.append(address.lower())
    return sorted(set(cleaned))


def _settings_problems(fields: dict) -> list[str]:
    """The rules of the completion and recommendation settings, in words."""
    problems = []
    _choice(fields["default_decision"], DefaultDecision, "decision for no response", problems)
    lookback = fields["lookback_days"]
    if lookback is None or not 1 <= lookback <= MAX_LOOKBACK_DAYS:
        problems.append(f"The look-back period is 1 to {MAX_LOOKBACK_DAYS} days.")
    takes_recommendations = fields["default_decision"] == DefaultDecision.RECOMMENDATION
    if takes_recommendations and not fields["recommendations"]:
        problems.append("Taking recommendations needs recommendations turned on.")
    if not (fields["name"] or "").strip():
        problems.append("Name the review.")
    return problems


def _schedule_problems(fields: dict) -> list[str]:
    problems = []
    _choice(fields["recurrence"], Recurrence, "recurrence", problems)
    _choice(fields["recurrence_end"], RecurrenceEnd, "end of the recurrence", problems)
    if problems:
        return problems
    return schedule.problems(
        start=fields["start"],
        duration_days=fields["duration_days"],
        recurrence=fields["recurrence"],
        recurrence_end=fields["recurrence_end"],
        end_date=fields["recurrence_end_date"],
        count=fields["recurrence_count"],
        time_zone=fields["time_zone"],
    )


def _scope_problems(roles: list[Role], scope: Scope) -> list[str]:
    if not roles:
        return ["Choose at least one role to review."]
    directory = [role for role in roles if role.is_directory_role]
    if directory and not scope.is_root:
        names = ", ".join(role.name for role in directory)
        return [
            f"Directory roles ({names}) are held at the directory root: review them at the "
            "directory, or choose only resource roles for a narrower scope."
        ]
    return []


def _definition_problems(fields: dict, roles, scope, reviewer_users, reviewer_groups) -> list:
    problems = _scope_problems(roles, scope)
    _choice(fields["assignment_types"], AssignmentTypes, "assignment type", problems)
    _choice(fields["group_handling"], GroupHandling, "way of reviewing groups", problems)
    _choice(fields["reviewer_type"], ReviewerType, "kind of reviewer", problems)
    if not fields["include_users"] and not fields["include_groups"]:
        problems.append("Review users, groups, or both.")
    if fields["inactive_days"] is not None and fields["inactive_days"] < 1:
        problems.append("Inactive for at least one day, or leave it empty to review everyone.")
    named = bool(reviewer_users or reviewer_groups)
    if fields["reviewer_type"] == ReviewerType.SELECTED and not named:
        problems.append("Name at least one reviewer.")
    if fields["reviewer_type"] == ReviewerType.MANAGER and not named:
        problems.append("Name a fallback reviewer for principals who have no manager.")
    return problems


def review_create(
    *,
    actor: Actor,
    name: str,
    roles: Iterable[Role],
    scope: Scope | None = None,
    reviewer_users: Iterable = (),
    reviewer_groups: Iterable[Group] = (),
    start: datetime | None = None,
    description: str = "",
    assignment_types: str = AssignmentTypes.BOTH,
    include_users: bool = True,
    include_groups: bool = True,
    group_handling: str = GroupHandling.WHOLE,
    inactive_days: int | None = None,
    reviewer_type: str = ReviewerType.SELECTED,
    time_zone: str = "UTC",
    duration_days: int = 14,
    recurrence: str = Recurrence.ONE_TIME,
    recurrence_end: str = RecurrenceEnd.NEVER,
    recurrence_end_date=None,
    recurrence_count: int | None = None,
    auto_apply: bool = False,
    default_decision: str = DefaultDecision.NO_CHANGE,
    require_reason_on_approve: bool = True,
    reminders: bool = True,
    notify_emails: Iterable[str] = (),
    recommendations: bool = True,
    lookback_days: int = 30,
) -> AccessReview:
    """Define a review of assignments of `roles` at `scope` (and below), audited.

    Only someone who may manage every one of the roles at the scope defines it. A start in the
    past or None means now: the first occurrence starts at once, with its snapshot.
    """
    actor = Actor.of(actor)
    roles = list(dict.fromkeys(roles))
    if not roles:
        raise ValidationError(["Choose at least one role to review."])
    scope = scope or Scope.objects.root()
    grants = authz.grants_for(actor)
    if not review_authz.may_manage_roles(grants, roles, scope):
        names = ", ".join(role.name for role in roles) or "no role"
        authz.deny(actor, what=f"create an access review of {names} at {scope.path}")
    now = timezone.now()
    reviewer_users, reviewer_groups = list(reviewer_users), list(reviewer_groups)
    fields = {
        "name": (name or "").strip(),
        "description": (description or "").strip(),
        "assignment_types": assignment_types,
        "include_users": include_users,
        "include_groups": include_groups,
        "group_handling": group_handling,
        "inactive_days": inactive_days,
        "reviewer_type": reviewer_type,
        "time_zone": schedule.zone_of(time_zone).key,
        "start": now if start is None or start < now else start,
        "duration_days": duration_days,
        "recurrence": recurrence,
        "recurrence_end": recurrence_end if recurrence != Recurrence.ONE_TIME else "never",
        "recurrence_end_date": recurrence_end_date,
        "recurrence_count": recurrence_count,
        "auto_apply": auto_apply,
        "default_decision": default_decision,
        "require_reason_on_approve": require_reason_on_approve,
        "reminders": reminders,
        "recommendations": recommendations,
        "lookback_days": lookback_days,
    }
    problems = _definition_problems(fields, roles, scope, reviewer_users, reviewer_groups)
    if not schedule.is_time_zone(time_zone):
        problems.append(f"“{time_zone}” is not a time zone: choose one such as Europe/Berlin.")
    fields["notify_emails"] = _emails(notify_emails, problems)
    problems += _settings_problems(fields) + _schedule_problems(fields)
    if problems:
        raise ValidationError(problems)
    with transaction.atomic():
        review = AccessReview.objects.create(
            scope=scope, created_by=user_of(actor), next_start=fields["start"], **fields
        )
        review.roles.set(roles)
        _set_reviewers(review, reviewer_users, reviewer_groups)
        audit_log.record(
            action="pim.review.created",
            actor=actor,
            target=review,
            scope=scope.path,
            after=review_snapshot(review),
        )
    if review.next_start <= now:
        start_occurrence(review.pk, now=now)
        review.refresh_from_db()
    return review


def review_update(*, actor: Actor, review: AccessReview, **changes) -> AccessReview:
    """Change what may change of a review (its name, reviewers, completion settings, and when
    its recurrence ends), audited with before and after."""
    actor = Actor.of(actor)
    review_authz.require_manage(actor, review)
    unknown = set(changes) - set(EDITABLE) - {"reviewer_users", "reviewer_groups"}
    if unknown:
        raise ValidationError(f"These settings cannot change once a review exists: {unknown}.")
    with transaction.atomic():
        review = AccessReview.objects.select_for_update().get(pk=review.pk)
        before = review_snapshot(review)
        users, groups = reviewers_of(review)
        users = list(changes.pop("reviewer_users", users))
        groups = list(changes.pop("reviewer_groups", groups))
        for name, value in changes.items():
            setattr(review, name, value)
        fields = {name: getattr(review, name) for name in EDITABLE}
        fields.update(
            start=review.start,
            duration_days=review.duration_days,
            recurrence=review.recurrence,
            time_zone=review.time_zone,
            reviewer_type=review.reviewer_type,
        )
        problems = []
        review.notify_emails = _emails(review.notify_emails, problems)
        problems += _settings_problems(fields) + _schedule_problems(fields)
        if review.reviewer_type != ReviewerType.SELF and not (users or groups):
            problems.append("Name at least one reviewer.")
        if problems:
            raise ValidationError(problems)
        if review.stopped_at is None and review.recurrence != Recurrence.ONE_TIME:
            # A later end, or more occurrences, brings back a recurrence that had run out.
            review.next_start = next_start(review, review.occurrences)
        review.save()
        _set_reviewers(review, users, groups)
        audit_log.record(
            action="pim.review.changed",
            actor=actor,
            target=review,
            scope=review.scope.path,
            before=before,
            after=review_snapshot(review),
        )
    return review


def review_stop(*, actor: Actor, review: AccessReview) -> AccessReview:
    """No further occurrences; the one in progress ends now, and completes as at its end."""
    actor = Actor.of(actor)
    review_authz.require_manage(actor, review)
    now = timezone.now()
    with transaction.atomic():
        review = AccessReview.objects.select_for_update().get(pk=review.pk)
        if review.stopped_at is not None:
            raise ValidationError("This review was already stopped.")
        review.stopped_at, review.next_start = now, None
        review.save(update_fields=["stopped_at", "next_start"])
        running = list(review.instances.in_progress(now).select_for_update())
        for instance in running:
            # Never before its start, which a stop in the same instant would make it.
            instance.end = max(now, instance.start + timedelta(microseconds=1))
            instance.save(update_fields=["end"])
        audit_log.record(
            action="pim.review.stopped",
            actor=actor,
            target=review,
            scope=review.scope.path,
            message=f"Stopped; {len(running)} occurrence in progress ended now."
            if running
            else "Stopped; no further occurrences.",
        )
    for instance in running:
        instance_complete_due(instance.pk, now=instance.end)
    return review
