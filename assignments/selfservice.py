"""Self-service requests: activate, deactivate, extend, renew, cancel — and the outcomes a
request waiting for approval can have (granted, denied, lapsed), which the approvals app calls.

Every state change is a conditional update or runs under a row lock, so a double click, two
approvers, or an approval racing a cancel or the lapse end in exactly one outcome.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from assignments import authz
from assignments.models import (
    OPEN_STATUSES,
    Assignment,
    AssignmentKind,
    RequestAction,
    RequestStatus,
    RolePolicy,
    RoleRequest,
    Scope,
)
from assignments.policy import activation_problems, normalise_start
from assignments.signals import request_canceled, request_submitted
from audit import log as audit_log
from pim_portal import mfa

EXTEND_WINDOW = timedelta(days=14)
RENEW_WINDOW = timedelta(days=30)


UNCHANGED = object()  # "keep what was requested" for request_grant's optional overrides


class RequestConflict(Exception):
    """The request is no longer in the state the caller expected (someone else got there)."""


def _record(action: str, *, actor, request: RoleRequest, target=None, **kw):
    return audit_log.record(
        action=action,
        actor=actor,
        target=target or request,
        principal=request.principal_name,
        role=request.role.name,
        scope=request.scope.path,
        role_request_id=request.pk,
        **kw,
    )


def _request_snapshot(request: RoleRequest) -> dict:
    return {
        "action": request.action,
        "status": request.status,
        "kind": request.kind,
        "start": request.start,
        "end": request.end,
        "duration": str(request.duration) if request.duration else None,
        "justification": request.justification,
        "ticket_number": request.ticket_number,
        "ticket_system": request.ticket_system,
    }


def _after_commit(request_id: int, assignment_id: int | None, *, submitted: bool, activated: bool):
    def run():
        from assignments import notifications, tasks

        if assignment_id:
            tasks.schedule_assignment_tasks(assignment_id)
        if activated:
            notifications.notify_activated(request_id)
        if submitted:
            request_submitted.send(sender=RoleRequest, request_id=request_id)

    transaction.on_commit(run)


# --- Reads -------------------------------------------------------------------------------


def eligible_assignments(user, at: datetime | None = None):
    """The eligible assignments the user may activate now: directly or through a group."""
    return Assignment.objects.in_force(at).eligible().for_user(user).with_related()


def get_own_eligible(user, assignment_id) -> Assignment:
    """The user's eligible assignment, or a refusal (audited when it is someone else's)."""
    try:
        assignment_id = int(assignment_id)
    except (TypeError, ValueError):
        raise ValidationError("Choose an eligible assignment.") from None
    assignment = eligible_assignments(user).filter(pk=assignment_id).first()
    if assignment is not None:
        return assignment
    if Assignment.objects.filter(pk=assignment_id).exists():
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


def _open_activation(user, role, scope, now):
    """An activation of the role at the scope that is in force, upcoming or pending."""
    held = (
        Assignment.objects.not_ended(now)
        .active()
        .filter(principal_user=user, role=role, scope=scope)
        .exists()
    )
    pending = RoleRequest.objects.filter(
        principal_user=user,
        role=role,
        scope=scope,
        kind=AssignmentKind.ACTIVE,
        status__in=OPEN_STATUSES,
    ).exists()
    return held or pending


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
) -> _ActivationPlan:
    """Every rule an activation must pass before any MFA code is spent on it (or refusal).

    `eligible` must come from get_own_eligible (it is the user's own, in force)."""
    role = eligible.role
    if role.is_directory_role or scope is None:
        scope = eligible.scope
    if not scope.is_at_or_below(eligible.scope):
        raise ValidationError(f"{scope} is not within your eligible scope {eligible.scope}.")
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
        problems.append("Your eligibility ends before that start.")
    if _open_activation(user, role, scope, now):
        problems.append(f"{role} at {scope} is already active or requested for you.")
    if problems:
        raise ValidationError(problems)
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
    user,
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
        if not mfa.has_device(user):
            raise ValidationError(f"{plan.role} requires MFA: set up an authenticator app first.")
        if not check_mfa(user, mfa_code):
            raise ValidationError("The MFA code is wrong or was already used.")
    return _carry_out(plan)


def _carry_out(plan: _ActivationPlan) -> RoleRequest:
    """Make the request (and the activation, when no approval is needed) in one transaction."""
    user, eligible, role, scope, policy = (
        plan.user,
        plan.eligible,
        plan.role,
        plan.scope,
        plan.policy,
    )
    start, duration, now = plan.start, plan.duration, plan.now
    needs_approval = policy.require_approval
    try:
        with transaction.atomic():
            # Lock the user: two submissions, even through two eligibilities (direct and via a
            # group) for the same role, queue up here and the second sees the first.
            get_user_model().objects.select_for_update().filter(pk=user.pk).first()
            if _open_activation(user, role, scope, timezone.now()):
                raise ValidationError(f"{role} at {scope} is already active or requested for you.")
            request = RoleRequest(
                action=RequestAction.SELF_ACTIVATE,
                principal_user=user,
                role=role,
                scope=scope,
                kind=AssignmentKind.ACTIVE,
                requested_by=user,
                start=start,
                duration=duration,
                justification=plan.justification,
                ticket_number=plan.ticket_number,
                ticket_system=plan.ticket_system,
                target_assignment=eligible,
            )
            assignment = None
            if needs_approval:
                request.status = RequestStatus.PENDING_APPROVAL
                request.approvals_required = policy.approvals_required
                request.approval_deadline = now + policy.approval_window
                request.save()
                _record(
                    "pim.request.submitted",
                    actor=user,
                    request=request,
                    after=_request_snapshot(request),
                )
            else:
                assignment = _activation_from(request, eligible, start, start + duration)
                request.end = assignment.end
                request.status = (
                    RequestStatus.PROVISIONED if start <= now else RequestStatus.SCHEDULED
                )
                request.result_assignment = assignment
                request.completed_at = now
                request.save()
                _record(
                    "pim.request.activated" if start <= now else "pim.request.scheduled",
                    actor=user,
                    request=request,
                    target=assignment,
                    after=assignment.snapshot(),
                )
            _after_commit(
                request.pk,
                assignment.pk if assignment else None,
                submitted=needs_approval,
                activated=True,
            )
    except IntegrityError:
        raise ValidationError(f"{role} at {scope} is already requested for you.") from None
    return request


def _activation_from(request: RoleRequest, eligible: Assignment, start, end) -> Assignment:
    if eligible.end is not None:
        end = min(end, eligible.end)  # an activation never outlives the eligibility
    return Assignment.objects.create(
        principal_user=request.principal_user,
        role=request.role,
        scope=request.scope,
        kind=AssignmentKind.ACTIVE,
        start=start,
        end=end,
        created_by=request.requested_by,
        justification=request.justification,
        ticket_number=request.ticket_number,
        ticket_system=request.ticket_system,
        activated_from=eligible,
    )


@dataclass
class BulkOutcome:
    eligible_id: int
    label: str
    request: RoleRequest | None = None
    errors: list[str] = field(default_factory=list)


def request_activate_many(
    *,
    user,
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
    outcomes: list[BulkOutcome] = []
    resolved = []
    for item in items:
        outcome = BulkOutcome(eligible_id=item["eligible_id"], label=str(item["eligible_id"]))
        try:
            eligible = get_own_eligible(user, item["eligible_id"])
        except ValidationError as error:
            outcome.errors = error.messages
            outcomes.append(outcome)
            continue
        outcome.label = f"{eligible.role} at {item.get('scope') or eligible.scope}"
        outcomes.append(outcome)
        # Check every rule first: a code is spent only on items that can go through.
        try:
            plan = _plan_activation(
                user=user,
                eligible=eligible,
                scope=item.get("scope"),
                start=start,
                duration=duration,
                justification=justification,
                ticket_number=ticket_number,
                ticket_system=ticket_system,
                now=timezone.now(),
            )
        except ValidationError as error:
            outcome.errors = error.messages
            continue
        resolved.append((outcome, plan))
    needs_mfa = any(plan.policy.require_mfa_on_activation for _, plan in resolved)
    if needs_mfa:
        if not mfa.has_device(user):
            for outcome, _ in resolved:
                outcome.errors = ["MFA is required: set up an authenticator app first."]
            return outcomes
        if not check_mfa(user, mfa_code):
            for outcome, _ in resolved:
                outcome.errors = ["The MFA code is wrong or was already used."]
            return outcomes
    for outcome, plan in resolved:
        try:
            outcome.request = _carry_out(plan)
        except ValidationError as error:
            outcome.errors = error.messages
    return outcomes


def request_deactivate(*, user, assignment_id: int) -> RoleRequest:
    """End the user's own activation now; it stops being in force at once."""
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
        _record(
            "pim.request.deactivated",
            actor=user,
            request=request,
            target=assignment,
            before=before,
            after=assignment.snapshot(),
        )
        _after_commit(request.pk, assignment.pk, submitted=False, activated=False)
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
            _record(
                "pim.request.submitted",
                actor=user,
                request=request,
                after=_request_snapshot(request),
            )
            _after_commit(request.pk, None, submitted=True, activated=False)
    except IntegrityError:
        raise ValidationError("You already have a request pending for this role.") from None
    return request


def _default_new_end(assignment: Assignment, base: datetime) -> datetime | None:
    policy = RolePolicy.objects.effective_for(assignment.role, assignment.scope)
    limit = policy.max_assignment_duration(assignment.kind)
    return None if limit is None else base + limit


def may_extend(user, assignment: Assignment, now: datetime | None = None) -> bool:
    """The user's own direct assignment (not an activation) in force, ending within 14 days."""
    now = now or timezone.now()
    return (
        assignment.principal_user_id == user.pk
        and assignment.activated_from_id is None
        and assignment.end is not None
        and now < assignment.end
        and assignment.end - now <= EXTEND_WINDOW
    )


def may_renew(user, assignment: Assignment, now: datetime | None = None) -> bool:
    """The user's own direct assignment (not an activation) that ended in the last 30 days."""
    now = now or timezone.now()
    return (
        assignment.principal_user_id == user.pk
        and assignment.activated_from_id is None
        and assignment.end is not None
        and now - RENEW_WINDOW <= assignment.end <= now
    )


def request_extend(*, user, assignment_id: int, justification: str) -> RoleRequest:
    """Ask administrators to extend the user's own assignment that ends within 14 days."""
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


def request_renew(*, user, assignment_id: int, justification: str) -> RoleRequest:
    """Ask administrators to renew the user's own assignment that ended in the last 30 days."""
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


# --- Outcomes of a request ----------------------------------------------------------------


def _lock_request(request_id: int) -> RoleRequest:
    request = RoleRequest.objects.select_for_update().filter(pk=request_id).first()
    if request is None:
        raise RequestConflict("That request does not exist.")
    return RoleRequest.objects.with_related().get(pk=request.pk)


def may_cancel(user, request: RoleRequest, grants: authz.Grants | None = None) -> bool:
    """The requester, or a Privileged Role / Global Administrator in force."""
    if request.requested_by_id == user.pk:
        return True
    return (grants or authz.grants_for(user)).can_manage_directory()


def request_cancel(*, actor, request_id: int) -> RoleRequest:
    """Cancel a request pending approval, or a scheduled activation before it starts."""
    now = timezone.now()
    with transaction.atomic():
        request = _lock_request(request_id)
        if not may_cancel(actor, request):
            raise ValidationError("Only the requester or an administrator can cancel it.")
        if request.status not in OPEN_STATUSES:
            raise RequestConflict(
                f"That request is already {request.get_status_display().lower()}."
            )
        if request.status == RequestStatus.SCHEDULED:
            assignment = request.result_assignment
            if assignment is None or not assignment.is_upcoming(now):
                raise RequestConflict("That activation has already started: deactivate it.")
            # Never in force: mark its start and end done so no task reports or mails it.
            Assignment.objects.filter(pk=assignment.pk).update(
                end=assignment.start,
                ended_by=actor,
                start_processed_at=now,
                end_processed_at=now,
            )
        before = _request_snapshot(request)
        if request.status == RequestStatus.PENDING_APPROVAL:
            transaction.on_commit(
                lambda: request_canceled.send(
                    sender=RoleRequest, request_id=request.pk, actor_id=actor.pk
                )
            )
        request.status = RequestStatus.CANCELED
        request.completed_at = now
        request.completed_by = actor
        request.save(update_fields=["status", "completed_at", "completed_by"])
        _record(
            "pim.request.canceled",
            actor=actor,
            request=request,
            before=before,
            after=_request_snapshot(request),
        )
    return request


def request_grant(
    *,
    request_id: int,
    actor,
    start: datetime | None = None,
    end=UNCHANGED,
    kind: str | None = None,
    justification: str = "",
) -> RoleRequest:
    """Carry out an approved request. For the approvals app, inside its transaction.

    An activation runs for its requested duration from the approval (or its later requested
    start), so a late approval does not eat the user's time. An extend or renew takes the
    administrator's start, end and kind when given.
    """
    now = timezone.now()
    with transaction.atomic():
        request = _lock_request(request_id)
        if request.status != RequestStatus.PENDING_APPROVAL:
            raise RequestConflict(
                f"That request is already {request.get_status_display().lower()}."
            )
        if request.approval_deadline and request.approval_deadline <= now:
            raise RequestConflict("That request has lapsed: its approval window has passed.")
        before = _request_snapshot(request)
        assignment = None
        failure = ""
        if request.action == RequestAction.SELF_ACTIVATE:
            eligible = request.target_assignment
            begin = max(request.start or now, now)
            if eligible is None or not eligible.is_in_force(now):
                failure = "The eligible assignment ended before the approval."
            elif (
                not eligible_assignments(request.principal_user, now)
                .filter(pk=eligible.pk)
                .exists()
            ):
                # Eligible through a group the requester has since left.
                failure = "The requester is no longer eligible for this role."
            else:
                assignment = _activation_from(request, eligible, begin, begin + request.duration)
        elif request.action == RequestAction.SELF_EXTEND:
            assignment = request.target_assignment
            if assignment is None or assignment.has_ended(now):
                failure = "The assignment ended before the approval: renew it instead."
            else:
                from assignments.services import (
                    refuse_ending_last_global_admin,
                    shorten_activations,
                )

                new_end = request.end if end is UNCHANGED else end
                new_kind = kind or assignment.kind
                earlier = new_end is not None and (
                    assignment.end is None or new_end < assignment.end
                )
                # An administrator approving may change the type or move the end earlier:
                # the same rules hold as when they update the assignment directly.
                if assignment.kind == AssignmentKind.ACTIVE and new_kind != assignment.kind:
                    refuse_ending_last_global_admin(assignment, now)
                elif earlier:
                    refuse_ending_last_global_admin(assignment, now, new_end=new_end)
                Assignment.objects.filter(pk=assignment.pk).update(
                    start=start or assignment.start,
                    end=new_end,
                    kind=new_kind,
                    end_processed_at=None,
                )
                if assignment.kind == new_kind == AssignmentKind.ELIGIBLE and earlier:
                    shorten_activations(
                        assignment, end=new_end, actor=actor, request=request, now=now
                    )
                assignment.refresh_from_db()
        elif request.action == RequestAction.SELF_RENEW:
            old = request.target_assignment
            begin = max(start or now, now)
            assignment = Assignment.objects.create(
                principal_user=request.principal_user,
                principal_group=request.principal_group,
                role=request.role,
                scope=request.scope,
                kind=kind or request.kind,
                start=begin,
                end=request.end if end is UNCHANGED else end,
                created_by=actor,
                justification=request.justification,
            )
            if old is not None:
                request.target_assignment = old
        else:
            failure = f"{request.get_action_display()} requests are not approved here."
        if failure:
            request.status = RequestStatus.FAILED
            request.status_note = failure
        else:
            request.result_assignment = assignment
            request.start, request.end = assignment.start, assignment.end
            request.status = (
                RequestStatus.SCHEDULED if assignment.start > now else RequestStatus.PROVISIONED
            )
        request.completed_at = now
        request.completed_by = actor
        request.save()
        _record(
            "pim.request.approved" if not failure else "pim.request.refused",
            actor=actor,
            request=request,
            target=assignment or request,
            before=before,
            after=_request_snapshot(request),
            message=failure or justification,
        )
        _after_commit(
            request.pk, assignment.pk if assignment else None, submitted=False, activated=False
        )
    return request


def request_deny(*, request_id: int, actor, justification: str) -> RoleRequest:
    """End a pending request as denied. For the approvals app, inside its transaction."""
    now = timezone.now()
    with transaction.atomic():
        request = _lock_request(request_id)
        if request.status != RequestStatus.PENDING_APPROVAL:
            raise RequestConflict(
                f"That request is already {request.get_status_display().lower()}."
            )
        before = _request_snapshot(request)
        request.status = RequestStatus.DENIED
        request.completed_at = now
        request.completed_by = actor
        request.status_note = justification
        request.save(update_fields=["status", "completed_at", "completed_by", "status_note"])
        _record(
            "pim.request.denied",
            actor=actor,
            request=request,
            before=before,
            after=_request_snapshot(request),
            message=justification,
        )
    return request


def request_lapse(*, request_id: int) -> RoleRequest | None:
    """A pending request past its approval deadline lapses (expired). None if it was not due."""
    now = timezone.now()
    with transaction.atomic():
        request = _lock_request(request_id)
        if request.status != RequestStatus.PENDING_APPROVAL:
            return None
        if request.approval_deadline is None or request.approval_deadline > now:
            return None
        before = _request_snapshot(request)
        request.status = RequestStatus.EXPIRED
        request.completed_at = now
        request.status_note = "Not decided within the approval window."
        request.save(update_fields=["status", "completed_at", "status_note"])
        _record(
            "pim.request.expired",
            actor=None,
            request=request,
            before=before,
            after=_request_snapshot(request),
        )
    return request


# --- Group membership ----------------------------------------------------------------------


def _schedule_after_commit(assignment_id: int) -> None:
    def run():
        from assignments import tasks

        tasks.schedule_assignment_tasks(assignment_id)

    transaction.on_commit(run)


def activations_end_on_leaving_group(*, user_ids, group_ids) -> int:
    """A member who leaves a group loses the activations made from that group's eligibility.

    Called whenever group membership shrinks, however it was changed. Returns how many ended.
    """
    from assignments.services import _cancel_if_never_in_force

    now = timezone.now()
    ended = 0
    with transaction.atomic():
        activations = (
            Assignment.objects.select_for_update(of=("self",))
            .not_ended(now)
            .active()
            .filter(principal_user__in=user_ids, activated_from__principal_group__in=group_ids)
            .with_related()
            .select_related("activated_from__principal_group")
        )
        for activation in activations:
            group = activation.activated_from.principal_group
            if Group.objects.filter(pk=group.pk, user=activation.principal_user_id).exists():
                continue  # still a member (removed and added back in one change)
            before = activation.snapshot()
            activation.end = max(now, activation.start)
            activation.save(update_fields=["end"])
            _cancel_if_never_in_force(activation, now)
            audit_log.record(
                action="pim.assignment.removed",
                target=activation,
                principal=activation.principal_name,
                role=activation.role.name,
                scope=activation.scope.path,
                before=before,
                after=activation.snapshot(),
                message=f"{activation.principal_name} left the group {group}, whose eligibility "
                "this activation was made from.",
            )
            _schedule_after_commit(activation.pk)
            ended += 1
    return ended
