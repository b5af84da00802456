"""What an eligible user does: activate, deactivate, ask to extend or renew, cancel.

Every state change is a conditional update or runs under a row lock, so a double click or two
browser tabs end in exactly one outcome. Authorization is checked once, at each function's
door, against the actor.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import CharField, Value
from django.utils import timezone

from assignments.models import (
    Assignment,
    AssignmentKind,
    RequestAction,
    RequestStatus,
    RolePolicy,
    RoleRequest,
    Scope,
)
from assignments.policy import (
    EXTEND_WINDOW,
    RENEW_WINDOW,
    Problem,
    activation_problems,
    by_field,
    normalise_start,
    problems_of,
)
from assignments.queries import eligible_assignments
from assignments.services.common import (
    activation_from,
    after_commit,
    record_request,
    request_snapshot,
)
from assignments.services.decided import requests_lapse_stale
from audit import log as audit_log
from pim_portal import mfa
from pim_portal.actor import Actor

WRONG_CODE = "The MFA code is wrong or was already used."
NO_DEVICE = "MFA is required: set up an authenticator app first."

# --- Reads -------------------------------------------------------------------------------


def _acting_user(actor):
    """Self-service is done by a person for themselves: the system never activates."""
    actor = Actor.of(actor)
    if actor.is_system:
        raise ValidationError(
            f"{actor.display_name} cannot act on someone's own roles: only they can."
        )
    return actor.user


def get_own_eligible(user, assignment_id) -> Assignment:
    """The user's eligible assignment, or a refusal (audited when it is someone else's)."""
    try:
        assignment_id = int(assignment_id)
    except (TypeError, ValueError):
        raise ValidationError("Choose an eligible assignment.") from None
    assignment = eligible_assignments(user).filter(pk=assignment_id).first()
    if assignment is not None:
        return assignment
    theirs = Assignment.objects.for_user(user).values("pk")
    if Assignment.objects.filter(pk=assignment_id).exclude(pk__in=theirs).exists():
        audit_log.record(
            action="pim.security.foreign_object",
            actor=user,
            message=f"Tried to activate assignment {assignment_id}, which is not theirs.",
        )
    raise ValidationError("That eligible assignment is not yours or is no longer in force.")


def check_mfa(user, code: str | None) -> bool:
    """Verify a TOTP code; a wrong or replayed code is a security event and is audited."""
    if mfa.verify_code(user, code or ""):
        return True
    audit_log.record(action="pim.security.mfa_failed", actor=user, target=user)
    return False


def _standing(user, eligible: Assignment | None, role, scope, now) -> set[str]:
    """What stands for or against an activation, in one query: "eligible" when the
    eligibility (its role, scope and end as planned) is still the user's and in force, "open"
    when the role is active, upcoming or pending for them there, "lapsed" when a request for it
    lapsed and no one has recorded it yet."""

    def tagged(queryset, tag: str):
        return (
            queryset.order_by()
            .annotate(tag=Value(tag, output_field=CharField()))
            .values_list("tag", flat=True)
        )

    mine = {"principal_user": user, "role": role, "scope": scope}
    requests = RoleRequest.objects.filter(kind=AssignmentKind.ACTIVE, **mine)
    parts = [
        tagged(Assignment.objects.not_ended(now).active().filter(**mine), "open"),
        tagged(requests.open(now), "open"),
        tagged(requests.lapsed(now), "lapsed"),
    ]
    if eligible is not None:
        own = eligible_assignments(user, now).filter(
            pk=eligible.pk, role=eligible.role_id, scope=eligible.scope_id, end=eligible.end
        )
        parts.append(tagged(own, "eligible"))
    return set(parts[0].union(*parts[1:], all=True))


# --- Activation ---------------------------------------------------------------------------


@dataclass
class _ActivationPlan:
    """An activation that passed every rule but MFA: what `_carry_out` needs."""

    user: object
    eligible: Assignment
    role: object
    scope: Scope
    policy: RolePolicy
    start: datetime
    duration: timedelta
    justification: str
    ticket_number: str
    ticket_system: str
    now: datetime


def _plan_activation(
    *,
    user,
    eligible: Assignment,
    scope: Scope | None,
    start: datetime | None,
    duration: timedelta | None,
    justification: str,
    ticket_number: str,
    ticket_system: str,
    now: datetime,
    policy: RolePolicy | None = None,
) -> _ActivationPlan:
    """Every rule of the role's settings an activation must pass before any MFA code is spent
    on it (or refusal). Whether `eligible` is the user's and in force, and whether the role is
    already active or requested, is checked once, in the transaction that makes it (`_standing`).
    `policy` may be the eligible scope's settings, already read (the activate form reads them)."""
    role = eligible.role
    if role.is_directory_role or scope is None:
        scope = eligible.scope
    if not scope.is_at_or_below(eligible.scope):
        raise ValidationError(
            {"__all__": [f"{scope} is not within your eligible scope {eligible.scope}."]}
        )
    if policy is None or scope.pk != eligible.scope_id:
        policy = RolePolicy.objects.effective_for(role, scope)
    start = normalise_start(start, now)
    # A duration of zero is a mistake to report, not a request for the maximum.
    duration = policy.activation_max_duration if duration is None else duration
    problems = activation_problems(
        policy=policy,
        start=start,
        duration=duration,
        justification=justification,
        ticket_number=ticket_number,
        ticket_system=ticket_system,
        now=now,
    )
    if eligible.end is not None and start >= eligible.end:
        problems.append(Problem("Your eligibility ends before that start.", "start"))
    if problems:
        raise ValidationError(by_field(problems))
    return _ActivationPlan(
        user=user,
        eligible=eligible,
        role=role,
        scope=scope,
        policy=policy,
        start=start,
        duration=duration,
        justification=justification,
        ticket_number=ticket_number,
        ticket_system=ticket_system,
        now=now,
    )


def request_activate(
    *,
    actor: Actor,
    eligible: Assignment,
    scope: Scope | None = None,
    start: datetime | None = None,
    duration: timedelta | None = None,
    justification: str = "",
    ticket_number: str = "",
    ticket_system: str = "",
    mfa_code: str | None = None,
    mfa_verified: bool = False,
) -> RoleRequest:
    """Turn an eligible assignment into an activation for the user (never for their group).

    Starts now (in force at once), at a future time (scheduled), or waits for approval when the
    role's settings require it. Refused with every rule broken, or when the role is already
    active or pending at that scope.
    """
    user = _acting_user(actor)
    plan = _plan_activation(
        user=user,
        eligible=get_own_eligible(user, eligible.pk),
        scope=scope,
        start=start,
        duration=duration,
        justification=justification,
        ticket_number=ticket_number,
        ticket_system=ticket_system,
        now=timezone.now(),
    )
    if plan.policy.require_mfa_on_activation and not mfa_verified:
        refusal = _mfa_refusal(user, mfa_code)
        if refusal is not None:
            if refusal == NO_DEVICE:
                refusal = f"{plan.role} requires MFA: set up an authenticator app first."
            raise ValidationError({"mfa_code": [refusal]})
    return _carry_out(plan)


def _submit_for_approval(plan: _ActivationPlan, request: RoleRequest) -> None:
    request.status = RequestStatus.PENDING_APPROVAL
    request.approvals_required = plan.policy.approvals_required
    request.approval_deadline = plan.now + plan.policy.approval_window
    request.save()
    record_request(
        "pim.request.submitted", actor=plan.user, request=request, after=request_snapshot(request)
    )


def _activate_now_or_later(plan: _ActivationPlan, request: RoleRequest) -> Assignment:
    start, now = plan.start, plan.now
    assignment = activation_from(request, plan.eligible, start, start + plan.duration)
    request.end = assignment.end
    request.status = RequestStatus.PROVISIONED if start <= now else RequestStatus.SCHEDULED
    request.result_assignment = assignment
    request.completed_at = now
    request.save()
    record_request(
        "pim.request.activated" if start <= now else "pim.request.scheduled",
        actor=plan.user,
        request=request,
        target=assignment,
        after=assignment.snapshot(),
    )
    return assignment


class _NoLongerEligible(Exception):
    """Raised inside the transaction, answered outside it (the refusal is audited there)."""


def _carry_out(plan: _ActivationPlan) -> RoleRequest:
    """Make the request (and the activation, when no approval is needed) in one transaction."""
    try:
        return _carry_out_locked(plan)
    except _NoLongerEligible:
        get_own_eligible(plan.user, plan.eligible.pk)  # someone else's: audited, refused
        raise ValidationError(
            "That eligible assignment has changed or ended: open My roles and try again."
        ) from None
    except IntegrityError:
        raise ValidationError(
            f"{plan.role} at {plan.scope} is already requested for you."
        ) from None


def _carry_out_locked(plan: _ActivationPlan) -> RoleRequest:
    user, role, scope = plan.user, plan.role, plan.scope
    needs_approval = plan.policy.require_approval
    with transaction.atomic():
        # Lock the user: two submissions, even through two eligibilities (direct and via a
        # group) for the same role, queue up here and the second sees the first.
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        standing = _standing(user, plan.eligible, role, scope, timezone.now())
        if "eligible" not in standing:
            raise _NoLongerEligible
        if "lapsed" in standing:
            # A request that lapsed unrecorded must not block this one (the rule of time).
            requests_lapse_stale(
                principal_user=user, role=role, scope=scope, kind=AssignmentKind.ACTIVE
            )
        if "open" in standing:
            raise ValidationError(f"{role} at {scope} is already active or requested for you.")
        request = RoleRequest(
            action=RequestAction.SELF_ACTIVATE,
            principal_user=user,
            role=role,
            scope=scope,
            kind=AssignmentKind.ACTIVE,
            requested_by=user,
            start=plan.start,
            duration=plan.duration,
            justification=plan.justification,
            ticket_number=plan.ticket_number,
            ticket_system=plan.ticket_system,
            target_assignment=plan.eligible,
        )
        assignment = None
        if needs_approval:
            _submit_for_approval(plan, request)
        else:
            assignment = _activate_now_or_later(plan, request)
        after_commit(
            request.pk,
            assignment.pk if assignment else None,
            submitted=needs_approval,
            activated=True,
        )
    return request


@dataclass
class BulkOutcome:
    eligible_id: int
    label: str
    request: RoleRequest | None = None
    errors: list[str] = field(default_factory=list)
    plan: _ActivationPlan | None = None


def _planned(user, item: dict, form: dict) -> "BulkOutcome":
    """One item of a bulk activation, checked against the role's settings before any code is
    spent. The item may carry the eligible assignment and its settings, already read."""
    outcome = BulkOutcome(eligible_id=item["eligible_id"], label=str(item["eligible_id"]))
    try:
        eligible = item.get("eligible") or get_own_eligible(user, item["eligible_id"])
        outcome.label = f"{eligible.role} at {item.get('scope') or eligible.scope}"
        outcome.plan = _plan_activation(
            user=user,
            eligible=eligible,
            scope=item.get("scope"),
            now=timezone.now(),
            policy=item.get("policy"),
            **form,
        )
    except ValidationError as error:
        outcome.errors = problems_of(error)
    return outcome


def _mfa_refusal(user, code: str | None) -> Problem | None:
    """Why the code does not do (checked once for the whole form), or None when it does.

    The code is tried first: a good one costs a single read of the user's devices."""
    if mfa.verify_code(user, code or ""):
        return None
    if not mfa.has_device(user):
        return Problem(NO_DEVICE, "mfa_code")
    audit_log.record(action="pim.security.mfa_failed", actor=user, target=user)
    return Problem(WRONG_CODE, "mfa_code")


def request_activate_many(
    *,
    actor: Actor,
    items: list[dict],
    start: datetime | None,
    duration: timedelta | None,
    justification: str,
    ticket_number: str = "",
    ticket_system: str = "",
    mfa_code: str | None = None,
) -> list[BulkOutcome]:
    """Activate several eligible assignments with one form; each succeeds or fails alone.

    `items` are dicts with `eligible_id` and optionally `scope` (a Scope). One TOTP code serves
    them all (a code can be used only once), checked once when any of them needs it.
    """
    user = _acting_user(actor)
    form = {
        "start": start,
        "duration": duration,
        "justification": justification,
        "ticket_number": ticket_number,
        "ticket_system": ticket_system,
    }
    outcomes = [_planned(user, item, form) for item in items]
    resolved = [(outcome, outcome.plan) for outcome in outcomes if outcome.plan is not None]
    if any(plan.policy.require_mfa_on_activation for _, plan in resolved):
        refusal = _mfa_refusal(user, mfa_code)
        if refusal is not None:
            for outcome, _ in resolved:
                outcome.errors = [refusal]
            return outcomes
    for outcome, plan in resolved:
        try:
            outcome.request = _carry_out(plan)
        except ValidationError as error:
            outcome.errors = problems_of(error)
    return outcomes


def request_deactivate(*, actor: Actor, assignment_id: int) -> RoleRequest:
    """End the user's own activation now; it stops being in force at once."""
    user = _acting_user(actor)
    now = timezone.now()
    with transaction.atomic():
        assignment = (
            Assignment.objects.select_for_update(of=("self",))  # PostgreSQL: not the outer joins
            .with_related()
            .filter(
                pk=assignment_id,
                principal_user=user,
                kind=AssignmentKind.ACTIVE,
                activated_from__isnull=False,
            )
            .first()
        )
        if assignment is None:
            raise ValidationError("That activation is not yours.")
        if assignment.has_ended(now):
            raise ValidationError("That activation has already ended.")
        before = assignment.snapshot()
        assignment.end = max(now, assignment.start)
        assignment.ended_by = user
        assignment.save(update_fields=["end", "ended_by"])
        RoleRequest.objects.filter(
            result_assignment=assignment, status=RequestStatus.SCHEDULED
        ).update(status=RequestStatus.CANCELED, completed_at=now)
        request = RoleRequest.objects.create(
            action=RequestAction.SELF_DEACTIVATE,
            status=RequestStatus.REVOKED,
            principal_user=user,
            role=assignment.role,
            scope=assignment.scope,
            kind=AssignmentKind.ACTIVE,
            requested_by=user,
            end=assignment.end,
            target_assignment=assignment,
            completed_at=now,
            completed_by=user,
        )
        record_request(
            "pim.request.deactivated",
            actor=user,
            request=request,
            target=assignment,
            before=before,
            after=assignment.snapshot(),
        )
        after_commit(request.pk, assignment.pk, submitted=False, activated=False)
    return request


# --- Extend and renew (decided by administrators) ----------------------------------------


def _ask_admins(
    *, user, assignment: Assignment, action: str, end: datetime | None, justification: str
) -> RoleRequest:
    if not justification.strip():
        raise ValidationError("Say why you need it: a justification is required.")
    policy = RolePolicy.objects.effective_for(assignment.role, assignment.scope)
    now = timezone.now()
    try:
        with transaction.atomic():
            requests_lapse_stale(
                principal_user=user,
                role=assignment.role,
                scope=assignment.scope,
                kind=assignment.kind,
            )
            request = RoleRequest.objects.create(
                action=action,
                status=RequestStatus.PENDING_APPROVAL,
                principal_user=user,
                role=assignment.role,
                scope=assignment.scope,
                kind=assignment.kind,
                requested_by=user,
                start=now if action == RequestAction.SELF_RENEW else assignment.start,
                end=end,
                justification=justification,
                target_assignment=assignment,
                approvals_required=1,
                approval_deadline=now + policy.approval_window,
            )
            record_request(
                "pim.request.submitted",
                actor=user,
                request=request,
                after=request_snapshot(request),
            )
            after_commit(request.pk, None, submitted=True, activated=False)
    except IntegrityError:
        raise ValidationError("You already have a request pending for this role.") from None
    return request


def _default_new_end(assignment: Assignment, base: datetime) -> datetime | None:
    policy = RolePolicy.objects.effective_for(assignment.role, assignment.scope)
    limit = policy.max_assignment_duration(assignment.kind)
    return None if limit is None else base + limit


def request_extend(*, actor: Actor, assignment_id: int, justification: str) -> RoleRequest:
    """Ask administrators to extend the user's own assignment that ends within 14 days."""
    user = _acting_user(actor)
    now = timezone.now()
    assignment = (
        Assignment.objects.with_related()
        .not_ended(now)
        .filter(pk=assignment_id, principal_user=user, activated_from__isnull=True)
        .first()
    )
    if assignment is None:
        raise ValidationError("That assignment is not yours or has ended.")
    if assignment.end is None or assignment.end - now > EXTEND_WINDOW:
        raise ValidationError("Only an assignment that ends within 14 days can be extended.")
    return _ask_admins(
        user=user,
        assignment=assignment,
        action=RequestAction.SELF_EXTEND,
        end=_default_new_end(assignment, now),
        justification=justification,
    )


def request_renew(*, actor: Actor, assignment_id: int, justification: str) -> RoleRequest:
    """Ask administrators to renew the user's own assignment that ended in the last 30 days."""
    user = _acting_user(actor)
    now = timezone.now()
    assignment = (
        Assignment.objects.with_related()
        .ended(now)
        .filter(
            pk=assignment_id,
            principal_user=user,
            activated_from__isnull=True,
            end__gte=now - RENEW_WINDOW,
        )
        .first()
    )
    if assignment is None:
        raise ValidationError(
            "Only your own assignment that ended in the last 30 days can be renewed."
        )
    return _ask_admins(
        user=user,
        assignment=assignment,
        action=RequestAction.SELF_RENEW,
        end=_default_new_end(assignment, now),
        justification=justification,
    )
