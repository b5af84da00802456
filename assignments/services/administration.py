"""What administrators do to role assignments: assign, update, extend, renew, remove.

Each runs in one transaction, writes its audit event in it, and queues its mail for a worker
(`pim_portal.jobs`). Authorization is checked before the transaction opens, so
a refusal is audited even though nothing else is written.
"""

from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from assignments import authz
from assignments.catalog import GLOBAL_ADMINISTRATOR
from assignments.models import (
    Assignment,
    AssignmentKind,
    RequestAction,
    RequestStatus,
    Role,
    RolePolicy,
    RoleRequest,
    Scope,
)
from assignments.policy import assignment_problems, normalise_start
from audit import log as audit_log
from pim_portal import jobs
from pim_portal.actor import Actor, user_of


def _effective_scope(role: Role, scope: Scope | None) -> Scope:
    """Directory roles are always held at the directory root."""
    if role.is_directory_role or scope is None:
        return Scope.objects.root()
    return scope


def _record(action: str, *, actor, assignment: Assignment, request: RoleRequest | None, **kw):
    return audit_log.record(
        action=action,
        actor=actor,
        target=assignment,
        principal=assignment.principal_name,
        role=assignment.role.name,
        scope=assignment.scope.path,
        role_request_id=request.pk if request else None,
        **kw,
    )


def _already_holding(*, role: Role, scope: Scope, kind: str, principals: list, now) -> list[str]:
    """A message for each principal that already holds the role of that kind at the scope."""
    holding = (
        Assignment.objects.not_ended(now)
        .filter(role=role, scope=scope, kind=kind)
        .filter(
            Q(principal_user__in=[p for p in principals if not isinstance(p, Group)])
            | Q(principal_group__in=[p for p in principals if isinstance(p, Group)])
        )
        .select_related("principal_user", "principal_group")
    )
    return [
        f"{existing.principal_name} already has an {kind} assignment of {role} at {scope}."
        for existing in holding
    ]


def _creation_problems(
    *, role, scope, kind, principals, start, end, justification, mfa_verified, now
) -> list[str]:
    """Every rule a new assignment breaks: the effective settings, MFA, a duplicate."""
    policy = RolePolicy.objects.effective_for(role, scope)
    problems = assignment_problems(
        policy=policy, kind=kind, start=start, end=end, justification=justification, now=now
    )
    if (
        kind == AssignmentKind.ACTIVE
        and policy.require_mfa_on_active_assignment
        and not mfa_verified
    ):
        problems.append(f"Active assignments of {role} require you to confirm with an MFA code.")
    if not principals:
        problems.append("Choose at least one user or group.")
    problems += _already_holding(role=role, scope=scope, kind=kind, principals=principals, now=now)
    return problems


def assignment_create(
    *,
    actor: Actor,
    principals: Iterable,
    role: Role,
    scope: Scope | None,
    kind: str,
    start: datetime | None = None,
    end: datetime | None = None,
    justification: str = "",
    ticket_number: str = "",
    ticket_system: str = "",
    mfa_verified: bool = False,
    notify: bool = True,
) -> list[RoleRequest]:
    """An administrator makes principals eligible for, or active in, a role at a scope.

    Refused as a whole, with every rule broken, when the effective settings forbid it or a
    principal already holds the same role of the same kind at that scope.
    """
    scope = _effective_scope(role, scope)
    actor = Actor.of(actor)
    authz.require_manage_role(actor, role, scope)
    principals = list(dict.fromkeys(principals))  # the same principal twice is one assignment
    now = timezone.now()
    start = normalise_start(start, now)
    problems = _creation_problems(
        role=role,
        scope=scope,
        kind=kind,
        principals=principals,
        start=start,
        end=end,
        justification=justification,
        mfa_verified=mfa_verified,
        now=now,
    )
    if problems:
        raise ValidationError(problems)

    requests = []
    with transaction.atomic():
        # Serialise assignments of this role: two administrators adding the same principal at
        # once end in one assignment and one refusal.
        Role.objects.select_for_update().filter(pk=role.pk).first()
        again = _already_holding(role=role, scope=scope, kind=kind, principals=principals, now=now)
        if again:
            raise ValidationError(again)
        terms = {
            "role": role,
            "scope": scope,
            "kind": kind,
            "start": start,
            "end": end,
            "justification": justification,
            "ticket_number": ticket_number,
            "ticket_system": ticket_system,
        }
        for principal in principals:
            requests.append(_assign_one(actor, principal, terms, now=now, notify=notify))
    return requests


def _assign_one(actor: Actor, principal, terms: dict, *, now, notify: bool) -> RoleRequest:
    """One principal's assignment, the request that made it, its audit event and tasks."""
    assignment = Assignment(created_by=user_of(actor), **terms)
    assignment.set_principal(principal)
    assignment.save()
    request = RoleRequest(
        action=RequestAction.ADMIN_ASSIGN,
        status=RequestStatus.PROVISIONED if terms["start"] <= now else RequestStatus.SCHEDULED,
        requested_by=user_of(actor),
        result_assignment=assignment,
        completed_at=now,
        completed_by=user_of(actor),
        **terms,
    )
    request.set_principal(principal)
    request.save()
    _record(
        "pim.assignment.created",
        actor=actor,
        assignment=assignment,
        request=request,
        after=assignment.snapshot(),
    )
    if notify:  # from a worker; the start and end need nothing: the timekeeper finds them
        jobs.enqueue("assignments.notifications.notify_assigned", assignment.pk)
    return request


def _lock(assignment: Assignment) -> Assignment:
    # of=("self",): PostgreSQL cannot lock the nullable side of with_related()'s outer joins.
    return Assignment.objects.select_for_update(of=("self",)).with_related().get(pk=assignment.pk)


def _admin_request(
    action: str,
    *,
    actor,
    assignment: Assignment,
    status: str = RequestStatus.PROVISIONED,
    **fields,
) -> RoleRequest:
    now = timezone.now()
    request = RoleRequest(
        action=action,
        status=status,
        role=assignment.role,
        scope=assignment.scope,
        kind=assignment.kind,
        requested_by=user_of(actor),
        target_assignment=assignment,
        completed_at=now,
        completed_by=user_of(actor),
        **fields,
    )
    request.set_principal(assignment.principal)
    request.save()
    return request


def _refuse_removing_last_global_admin(
    assignment: Assignment, now: datetime, new_end: datetime | None = None
) -> None:
    """Refuse ending (now, or at `new_end`) the last in-force active Global Administrator."""
    if assignment.role.name != GLOBAL_ADMINISTRATOR:
        return
    if assignment.kind == AssignmentKind.ACTIVE:
        ending = [assignment.pk] if assignment.is_in_force(now) else []
    else:
        # Ending or shortening an eligible assignment does the same to its activations.
        ending = list(
            Assignment.objects.in_force(now)
            .filter(activated_from=assignment)
            .filter(Q(end__isnull=True) | Q(end__gt=new_end or now))
            .values_list("pk", flat=True)
        )
    if not ending:
        return
    # Serialise the check: two administrators removing the last two at once end in one refusal.
    Role.objects.select_for_update().filter(pk=assignment.role_id).first()
    others = (
        Assignment.objects.in_force(now)
        .active()
        .filter(role=assignment.role)
        .exclude(pk__in=ending)
        .filter(
            Q(principal_user__is_active=True)
            | Q(principal_group__user__is_active=True, principal_group__isnull=False)
        )
    )
    if not others.exists():
        raise ValidationError(
            f"{assignment.principal_name} holds the last active Global Administrator "
            "assignment: assign another Global Administrator before removing this one."
        )


def _settings_problems(
    assignment: Assignment, *, start, end, justification: str, now, own: bool = False
) -> list[str]:
    """The rules of the effective settings broken by giving `assignment` this start and end.
    A change keeps the assignment's justification unless a new one is given (`own`: never)."""
    policy = RolePolicy.objects.effective_for(assignment.role, assignment.scope)
    return assignment_problems(
        policy=policy,
        kind=assignment.kind,
        start=start,
        end=end,
        justification=justification if own else justification or assignment.justification,
        now=now,
    )


def end_now(assignment: Assignment, *, actor, now: datetime) -> None:
    """End the assignment at once (at its start, when it had not begun: it never was in force,
    and no task reports it)."""
    assignment.end = max(now, assignment.start)
    assignment.ended_by = user_of(actor)
    assignment.save(update_fields=["end", "ended_by"])
    cancel_if_never_in_force(assignment, now)


def cancel_if_never_in_force(assignment: Assignment, now: datetime) -> None:
    """A removed assignment that had not started: its scheduled request is canceled, and no
    task reports it started or ended (as when its requester cancels it)."""
    if assignment.start <= now:
        return
    Assignment.objects.filter(pk=assignment.pk).update(start_processed_at=now, end_processed_at=now)
    RoleRequest.objects.filter(result_assignment=assignment, status=RequestStatus.SCHEDULED).update(
        status=RequestStatus.CANCELED, completed_at=now
    )


def shorten_activations(
    assignment: Assignment, *, end: datetime, actor, request: RoleRequest | None, now: datetime
) -> int:
    """An activation never outlives the eligibility it was activated from: cut it to `end`."""
    outliving = Assignment.objects.not_ended(now).filter(activated_from=assignment, end__gt=end)
    count = 0
    for activation in outliving.with_related():
        activation_before = activation.snapshot()
        activation.end = max(end, activation.start)
        activation.save(update_fields=["end"])
        _record(
            "pim.assignment.updated",
            actor=actor,
            assignment=activation,
            request=request,
            before=activation_before,
            after=activation.snapshot(),
            message="Shortened with the eligible assignment it was activated from.",
        )
        count += 1
    return count


def refuse_ending_last_global_admin(
    assignment: Assignment, now: datetime, new_end: datetime | None = None
) -> None:
    """For other modules (selfservice): see _refuse_removing_last_global_admin."""
    _refuse_removing_last_global_admin(assignment, now, new_end)


def assignment_remove(
    *, actor: Actor, assignment: Assignment, justification: str = ""
) -> Assignment:
    """End an assignment now (or cancel one not started). Its activations end with it."""
    actor = Actor.of(actor)
    authz.require_manage_role(actor, assignment.role, assignment.scope)
    now = timezone.now()
    with transaction.atomic():
        assignment = _lock(assignment)
        if assignment.has_ended(now):
            raise ValidationError("This assignment has already ended.")
        _refuse_removing_last_global_admin(assignment, now)
        before = assignment.snapshot()
        end_now(assignment, actor=actor, now=now)
        request = _admin_request(
            RequestAction.ADMIN_REMOVE,
            actor=actor,
            assignment=assignment,
            end=assignment.end,
            justification=justification,
        )
        _record(
            "pim.assignment.removed",
            actor=actor,
            assignment=assignment,
            request=request,
            before=before,
            after=assignment.snapshot(),
            message=justification,
        )
        for activation in Assignment.objects.not_ended(now).filter(activated_from=assignment):
            activation_before = activation.snapshot()
            end_now(activation, actor=actor, now=now)
            _record(
                "pim.assignment.removed",
                actor=actor,
                assignment=activation,
                request=request,
                before=activation_before,
                after=activation.snapshot(),
                message="The eligible assignment it was activated from was removed.",
            )
    return assignment


def assignment_update(
    *,
    actor: Actor,
    assignment: Assignment,
    start: datetime | None,
    end: datetime | None,
    justification: str = "",
) -> Assignment:
    """Change the start and end of an assignment that has not ended, within the settings."""
    actor = Actor.of(actor)
    authz.require_manage_role(actor, assignment.role, assignment.scope)
    now = timezone.now()
    with transaction.atomic():
        assignment = _lock(assignment)
        if assignment.has_ended(now):
            raise ValidationError("This assignment has ended: renew it instead.")
        new_start = assignment.start if assignment.start <= now else normalise_start(start, now)
        if start is not None and assignment.start <= now and start != assignment.start:
            # An assignment already in force keeps its start; only the end can move.
            new_start = assignment.start
        problems = _settings_problems(
            assignment, start=max(new_start, now), end=end, justification=justification, now=now
        )
        if end is not None and end <= now:
            problems.append("The end must be in the future: remove the assignment to end it now.")
        if problems:
            raise ValidationError(list(dict.fromkeys(problems)))
        if end is not None and (assignment.end is None or end < assignment.end):
            _refuse_removing_last_global_admin(assignment, now, new_end=end)
        before = assignment.snapshot()
        assignment.start, assignment.end = new_start, end
        if justification:
            assignment.justification = justification
        assignment.end_processed_at = None
        assignment.save(update_fields=["start", "end", "justification", "end_processed_at"])
        request = _admin_request(
            RequestAction.ADMIN_UPDATE,
            actor=actor,
            assignment=assignment,
            start=new_start,
            end=end,
            justification=justification,
        )
        _record(
            "pim.assignment.updated",
            actor=actor,
            assignment=assignment,
            request=request,
            before=before,
            after=assignment.snapshot(),
        )
        if end is not None:
            shorten_activations(assignment, end=end, actor=actor, request=request, now=now)
    return assignment


def assignment_extend(
    *, actor: Actor, assignment: Assignment, end: datetime | None, justification: str = ""
) -> Assignment:
    """Move the end of an assignment that has not ended later (admin extend)."""
    actor = Actor.of(actor)
    authz.require_manage_role(actor, assignment.role, assignment.scope)
    now = timezone.now()
    with transaction.atomic():
        assignment = _lock(assignment)
        if assignment.has_ended(now):
            raise ValidationError("This assignment has ended: renew it instead.")
        if assignment.end is None:
            raise ValidationError("This assignment is permanent: there is nothing to extend.")
        if end is not None and end <= assignment.end:
            raise ValidationError("The new end must be later than the current end.")
        problems = _settings_problems(
            assignment, start=now, end=end, justification=justification, now=now
        )
        if problems:
            raise ValidationError(problems)
        before = assignment.snapshot()
        assignment.end = end
        assignment.end_processed_at = None
        assignment.save(update_fields=["end", "end_processed_at"])
        request = _admin_request(
            RequestAction.ADMIN_EXTEND,
            actor=actor,
            assignment=assignment,
            end=end,
            justification=justification,
        )
        _record(
            "pim.assignment.extended",
            actor=actor,
            assignment=assignment,
            request=request,
            before=before,
            after=assignment.snapshot(),
            message=justification,
        )
    return assignment


def assignment_renew(
    *,
    actor: Actor,
    assignment: Assignment,
    start: datetime | None,
    end: datetime | None,
    justification: str = "",
) -> Assignment:
    """Give an ended assignment's principal the same role again, as a new assignment."""
    actor = Actor.of(actor)
    authz.require_manage_role(actor, assignment.role, assignment.scope)
    now = timezone.now()
    if not assignment.has_ended(now):
        raise ValidationError("This assignment has not ended: extend it instead.")
    start = normalise_start(start, now)
    # A renewal is a new assignment: its justification is its own, not the old one's.
    problems = _settings_problems(
        assignment, start=start, end=end, justification=justification, now=now, own=True
    )
    already = (
        Assignment.objects.not_ended(now)
        .filter(role=assignment.role, scope=assignment.scope, kind=assignment.kind)
        .filter(
            principal_user_id=assignment.principal_user_id,
            principal_group_id=assignment.principal_group_id,
        )
    )
    if already.exists():
        problems.append(f"{assignment.principal_name} already holds this role again.")
    if problems:
        raise ValidationError(problems)
    with transaction.atomic():
        Role.objects.select_for_update().filter(pk=assignment.role_id).first()
        if already.exists():  # renewed by another administrator meanwhile
            raise ValidationError(f"{assignment.principal_name} already holds this role again.")
        return _renewal(actor, assignment, start=start, end=end, why=justification, now=now)


BOOTSTRAP = Actor.system("bootstrap")


def assignment_bootstrap(*, user, role_names: list[str]) -> list[Assignment]:
    """First run: make `user` a permanent active holder of the roles at the directory root.

    Outside the role settings on purpose (no one can yet approve or assign anything); the
    command that calls it is for a new installation, run by whoever runs the server.
    """
    now = timezone.now()
    root = Scope.objects.root()
    made = []
    with transaction.atomic():
        for role in Role.objects.filter(name__in=role_names):
            held = Assignment.objects.in_force(now).filter(
                principal_user=user, role=role, kind=AssignmentKind.ACTIVE, end__isnull=True
            )
            if held.exists():
                continue
            assignment = Assignment.objects.create(
                principal_user=user,
                role=role,
                scope=root,
                kind=AssignmentKind.ACTIVE,
                start=now,
                end=None,
                justification="Bootstrap of a new installation",
                ticket_system="bootstrap",
                start_processed_at=now,
            )
            request = RoleRequest.objects.create(
                action=RequestAction.ADMIN_ASSIGN,
                status=RequestStatus.PROVISIONED,
                principal_user=user,
                role=role,
                scope=root,
                kind=AssignmentKind.ACTIVE,
                start=now,
                justification="Bootstrap of a new installation",
                result_assignment=assignment,
                completed_at=now,
            )
            _record(
                "pim.bootstrap",
                actor=BOOTSTRAP,
                assignment=assignment,
                request=request,
                after=assignment.snapshot(),
            )
            made.append(assignment)
    return made


def _renewal(actor: Actor, assignment: Assignment, *, start, end, why: str, now) -> Assignment:
    """The new assignment a renewal makes, its request, its audit event and tasks."""
    renewed = Assignment.objects.create(
        principal_user=assignment.principal_user,
        principal_group=assignment.principal_group,
        role=assignment.role,
        scope=assignment.scope,
        kind=assignment.kind,
        start=start,
        end=end,
        created_by=user_of(actor),
        justification=why,
    )
    request = _admin_request(
        RequestAction.ADMIN_RENEW,
        actor=actor,
        assignment=assignment,
        status=RequestStatus.SCHEDULED if start > now else RequestStatus.PROVISIONED,
        start=start,
        end=end,
        justification=why,
        result_assignment=renewed,
    )
    _record(
        "pim.assignment.renewed",
        actor=actor,
        assignment=renewed,
        request=request,
        before=assignment.snapshot(),
        after=renewed.snapshot(),
        message=why,
    )
    jobs.enqueue("assignments.notifications.notify_assigned", renewed.pk)
    return renewed
