"""Carrying out decided requests: granted, denied, lapsed (the approvals app decides), and
cancelling an open request.

Each locks the request row, so two approvers, an approval racing a cancel or the lapse end in
exactly one outcome.
"""

from datetime import datetime

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from assignments import authz, signals
from assignments.models import (
    OPEN_STATUSES,
    Assignment,
    AssignmentKind,
    RequestAction,
    RequestStatus,
    RoleRequest,
)
from assignments.queries import eligible_assignments
from assignments.services.administration import (
    refuse_ending_last_global_admin,
    shorten_activations,
)
from assignments.services.common import (
    UNCHANGED,
    RequestConflict,
    activation_from,
    after_commit,
    lock_request,
    new_activation,
    record_request,
    request_snapshot,
)
from assignments.signals import request_canceled, request_lapsed
from audit import log as audit_log
from pim_portal.actor import Actor, user_of

# --- Outcomes of a request ----------------------------------------------------------------


def request_cancel(*, actor: Actor, request_id: int) -> RoleRequest:
    """Cancel a request pending approval, or a scheduled activation before it starts: its
    requester, or a Privileged Role / Global Administrator."""
    actor = Actor.of(actor)
    now = timezone.now()
    with transaction.atomic():
        request = lock_request(request_id)
        if not authz.may_cancel(actor, request):
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
                ended_by=user_of(actor),
                start_processed_at=now,
                end_processed_at=now,
            )
            signals.assignments_changed.send(sender=Assignment, assignments=[assignment])
        before = request_snapshot(request)
        if request.status == RequestStatus.PENDING_APPROVAL:
            transaction.on_commit(
                lambda: request_canceled.send(
                    sender=RoleRequest, request_id=request.pk, actor_id=actor.pk
                )
            )
        request.status = RequestStatus.CANCELED
        request.completed_at = now
        request.completed_by = user_of(actor)
        request.save(update_fields=["status", "completed_at", "completed_by"])
        record_request(
            "pim.request.canceled",
            actor=actor,
            request=request,
            before=before,
            after=request_snapshot(request),
        )
    return request


class _Failed(Exception):
    """The approved request cannot be carried out; the request fails with this note."""


def _carry_out_activation(request: RoleRequest, now: datetime) -> Assignment:
    """An activation runs its requested duration from the approval (or its later start)."""
    eligible = request.target_assignment
    begin = max(request.start or now, now)
    if eligible is None or not eligible.is_in_force(now):
        raise _Failed("The eligible assignment ended before the approval.")
    if not eligible_assignments(request.principal_user, now).filter(pk=eligible.pk).exists():
        # Eligible through a group the requester has since left.
        raise _Failed("The requester is no longer eligible for this role.")
    return activation_from(request, eligible, begin, begin + request.duration)


def _carry_out_extend(request: RoleRequest, actor, now, *, start, end, kind) -> Assignment:
    """An administrator approving may change the type or move the end earlier: the same rules
    hold as when they update the assignment directly."""
    assignment = request.target_assignment
    if assignment is None or assignment.has_ended(now):
        raise _Failed("The assignment ended before the approval: renew it instead.")
    new_end = request.end if end is UNCHANGED else end
    new_kind = kind or assignment.kind
    earlier = new_end is not None and (assignment.end is None or new_end < assignment.end)
    if assignment.kind == AssignmentKind.ACTIVE and new_kind != assignment.kind:
        refuse_ending_last_global_admin(assignment, now)
    elif earlier:
        refuse_ending_last_global_admin(assignment, now, new_end=new_end)
    Assignment.objects.filter(pk=assignment.pk).update(
        start=start or assignment.start, end=new_end, kind=new_kind, end_processed_at=None
    )
    if assignment.kind == new_kind == AssignmentKind.ELIGIBLE and earlier:
        shorten_activations(assignment, end=new_end, actor=actor, request=request, now=now)
    assignment.refresh_from_db()
    signals.assignments_changed.send(sender=Assignment, assignments=[assignment])
    return assignment


def _carry_out_renew(request: RoleRequest, actor, now, *, start, end, kind) -> Assignment:
    begin = max(start or now, now)
    return Assignment.objects.create(
        principal_user=request.principal_user,
        principal_group=request.principal_group,
        role=request.role,
        scope=request.scope,
        kind=kind or request.kind,
        start=begin,
        end=request.end if end is UNCHANGED else end,
        created_by=user_of(actor),
        justification=request.justification,
    )


def _carried_out(request: RoleRequest, actor, now, **overrides) -> Assignment:
    if request.action == RequestAction.SELF_ACTIVATE:
        return _carry_out_activation(request, now)
    if request.action == RequestAction.SELF_EXTEND:
        return _carry_out_extend(request, actor, now, **overrides)
    if request.action == RequestAction.SELF_RENEW:
        return _carry_out_renew(request, actor, now, **overrides)
    raise _Failed(f"{request.get_action_display()} requests are not approved here.")


def request_carry_out(
    *,
    actor: Actor,
    request_id: int,
    start: datetime | None = None,
    end=UNCHANGED,
    kind: str | None = None,
    justification: str = "",
) -> RoleRequest:
    """Carry out a request its deciders approved: make or change the assignment it asks for.
    For the approvals app, inside its transaction (which checked that the actor decides it).

    An activation runs for its requested duration from the approval (or its later requested
    start), so a late approval does not eat the user's time. An extend or renew takes the
    administrator's start, end and kind when given. What can no longer be done fails the
    request with a note (the eligibility ended, the requester left the group).
    """
    actor = Actor.of(actor)
    now = timezone.now()
    with transaction.atomic():
        request = lock_request(request_id)
        if request.status != RequestStatus.PENDING_APPROVAL:
            raise RequestConflict(
                f"That request is already {request.get_status_display().lower()}."
            )
        if request.approval_deadline and request.approval_deadline <= now:
            raise RequestConflict("That request has lapsed: its approval window has passed.")
        before = request_snapshot(request)
        assignment, failure = None, ""
        try:
            assignment = _carried_out(request, actor, now, start=start, end=end, kind=kind)
        except _Failed as failed:
            failure = str(failed)
            request.status, request.status_note = RequestStatus.FAILED, failure
        else:
            request.result_assignment = assignment
            request.start, request.end = assignment.start, assignment.end
            request.status = (
                RequestStatus.SCHEDULED if assignment.start > now else RequestStatus.PROVISIONED
            )
        request.completed_at = now
        request.completed_by = user_of(actor)
        request.save()
        record_request(
            "pim.request.approved" if not failure else "pim.request.refused",
            actor=actor,
            request=request,
            target=assignment or request,
            before=before,
            after=request_snapshot(request),
            message=failure or justification,
        )
        after_commit(
            request.pk, assignment.pk if assignment else None, submitted=False, activated=False
        )
    return request


def request_deny(*, actor: Actor, request_id: int, justification: str) -> RoleRequest:
    """End a pending request as denied. For the approvals app, inside its transaction (which
    checked that the actor decides it)."""
    actor = Actor.of(actor)
    now = timezone.now()
    with transaction.atomic():
        request = lock_request(request_id)
        if request.status != RequestStatus.PENDING_APPROVAL:
            raise RequestConflict(
                f"That request is already {request.get_status_display().lower()}."
            )
        before = request_snapshot(request)
        request.status = RequestStatus.DENIED
        request.completed_at = now
        request.completed_by = user_of(actor)
        request.status_note = justification
        request.save(update_fields=["status", "completed_at", "completed_by", "status_note"])
        record_request(
            "pim.request.denied",
            actor=actor,
            request=request,
            before=before,
            after=request_snapshot(request),
            message=justification,
        )
    return request


def request_lapse(*, request_id: int, actor: Actor | None = None) -> RoleRequest | None:
    """Record that a pending request past its approval deadline has lapsed (expired).

    The request was already lapsed for every check at its deadline (the rule of time); this is
    the bookkeeping, its audit event and (after commit) the `request_lapsed` signal, whose
    listeners tell the requester. None when it was not due or was already recorded.
    """
    actor = Actor.of(actor or Actor.system("approval deadline"))
    now = timezone.now()
    with transaction.atomic():
        request = lock_request(request_id)
        if request.status != RequestStatus.PENDING_APPROVAL:
            return None
        if request.approval_deadline is None or request.approval_deadline > now:
            return None
        before = request_snapshot(request)
        request.status = RequestStatus.EXPIRED
        request.completed_at = now
        request.status_note = "Not decided within the approval window."
        request.save(update_fields=["status", "completed_at", "status_note"])
        record_request(
            "pim.request.expired",
            actor=actor,
            request=request,
            before=before,
            after=request_snapshot(request),
        )
        request_id = request.pk
        transaction.on_commit(
            lambda: request_lapsed.send(sender=RoleRequest, request_id=request_id)
        )
    return request


def requests_lapse_stale(*, principal_user, role, scope, kind: str) -> int:
    """Record the lapse of the principal's pending requests for this role, scope and kind
    whose deadline has passed, so that a new request is not blocked by one that lapsed."""
    stale = RoleRequest.objects.lapsed().filter(
        principal_user=principal_user, role=role, scope=scope, kind=kind
    )
    return sum(
        request_lapse(request_id=pk) is not None for pk in stale.values_list("pk", flat=True)
    )


# --- In batches: bulk decisions and the time engine ------------------------------------------
#
# The same outcomes as the functions above, for many requests at once in a constant number of
# queries: the caller's transaction has locked the requests (ordered by pk) and checked that
# the actor decides each; these write with bulk statements and audit with `record_many`.

LAPSE_NOTE = "Not decided within the approval window."


def _request_event(action: str, *, actor, request: RoleRequest, target=None, **kw) -> dict:
    """`record_request`'s event, as the arguments `audit_log.record_many` takes."""
    return {
        "action": action,
        "actor": actor,
        "target": target or request,
        "principal": request.principal_name,
        "role": request.role.name,
        "scope": request.scope.path,
        "role_request_id": request.pk,
        **kw,
    }


def _still_pending(requests: list[RoleRequest]) -> list[RoleRequest]:
    return [r for r in requests if r.status == RequestStatus.PENDING_APPROVAL]


def requests_deny_batch(
    *, actor: Actor, requests: list[RoleRequest], justification: str, now: datetime
) -> list[RoleRequest]:
    """End the locked pending requests as denied (what `request_deny` does to one): one UPDATE
    and one audit INSERT for the batch."""
    actor = Actor.of(actor)
    requests = _still_pending(requests)
    if not requests:
        return []
    by = user_of(actor)
    events = []
    for request in requests:
        before = request_snapshot(request)
        request.status = RequestStatus.DENIED
        request.completed_at, request.completed_by, request.status_note = now, by, justification
        events.append(
            _request_event(
                "pim.request.denied",
                actor=actor,
                request=request,
                before=before,
                after=request_snapshot(request),
                message=justification,
            )
        )
    RoleRequest.objects.filter(pk__in=[r.pk for r in requests]).update(
        status=RequestStatus.DENIED, completed_at=now, completed_by=by, status_note=justification
    )
    audit_log.record_many(events)
    return requests


def _still_eligible(requests: list[RoleRequest], now: datetime) -> set[int]:
    """The requests whose eligibility is in force and still the requester's (directly or
    through a group they still belong to): two queries for the batch."""
    eligible_ids = {r.target_assignment_id for r in requests if r.target_assignment_id}
    held = list(
        Assignment.objects.in_force(now)
        .eligible()
        .filter(pk__in=eligible_ids)
        .values_list("pk", "principal_user_id", "principal_group_id")
    )
    memberships = set(
        Group.user_set.through.objects.filter(
            user_id__in={r.principal_user_id for r in requests}
        ).values_list("user_id", "group_id")
    )
    holders = {pk: (user_id, group_id) for pk, user_id, group_id in held}
    ok = set()
    for request in requests:
        holder = holders.get(request.target_assignment_id)
        if holder is None or request.principal_user_id is None:
            continue
        user_id, group_id = holder
        if user_id == request.principal_user_id or (request.principal_user_id, group_id) in (
            memberships
        ):
            ok.add(request.pk)
    return ok


def _activations_batch(requests: list[RoleRequest], now: datetime) -> dict[int, object]:
    """{request: the activation made, or the reason it failed}, like `_carry_out_activation`;
    the activations made with one INSERT."""
    eligible_now = _still_eligible(requests, now)
    outcome: dict[int, object] = {}
    made = []
    for request in requests:
        eligible = request.target_assignment
        if eligible is None or not eligible.is_in_force(now):
            outcome[request.pk] = "The eligible assignment ended before the approval."
            continue
        if request.pk not in eligible_now:
            outcome[request.pk] = "The requester is no longer eligible for this role."
            continue
        begin = max(request.start or now, now)
        activation = new_activation(request, eligible, begin, begin + request.duration)
        made.append(activation)
        outcome[request.pk] = activation
    Assignment.objects.bulk_create(made)
    signals.assignments_changed.send(sender=Assignment, assignments=made)
    return outcome


def activations_carry_out_batch(
    *, actor: Actor, requests: list[RoleRequest], justification: str, now: datetime
) -> list[RoleRequest]:
    """Carry out the locked, approved pending activation requests (what `request_carry_out`
    does to one, as asked: no overrides), in a constant number of queries for the batch."""
    actor = Actor.of(actor)
    activations = [r for r in _still_pending(requests) if r.action == RequestAction.SELF_ACTIVATE]
    if not activations:
        return []
    outcome = _activations_batch(activations, now)
    by = user_of(actor)
    events = []
    for request in activations:
        before = request_snapshot(request)
        made = outcome[request.pk]
        if isinstance(made, Assignment):
            request.result_assignment = made
            request.start, request.end = made.start, made.end
            request.status = (
                RequestStatus.SCHEDULED if made.start > now else RequestStatus.PROVISIONED
            )
            failure = ""
        else:
            failure = made
            request.status, request.status_note = RequestStatus.FAILED, failure
        request.completed_at, request.completed_by = now, by
        events.append(
            _request_event(
                "pim.request.approved" if not failure else "pim.request.refused",
                actor=actor,
                request=request,
                target=made if not failure else request,
                before=before,
                after=request_snapshot(request),
                message=failure or justification,
            )
        )
    RoleRequest.objects.bulk_update(
        activations,
        ["status", "status_note", "result_assignment", "start", "end", "completed_at"]
        + ["completed_by"],
    )
    audit_log.record_many(events)
    return activations


def requests_lapse_batch(
    *, requests: list[RoleRequest], now: datetime, actor: Actor | None = None
) -> list[RoleRequest]:
    """Record the lapse of the locked requests pending past their deadline (what
    `request_lapse` does to one): one UPDATE, one audit INSERT, and after commit the
    `request_lapsed` signal for each."""
    actor = Actor.of(actor or Actor.system("approval deadline"))
    due = [
        r
        for r in _still_pending(requests)
        if r.approval_deadline is not None and r.approval_deadline <= now
    ]
    if not due:
        return []
    events = []
    for request in due:
        before = request_snapshot(request)
        request.status = RequestStatus.EXPIRED
        request.completed_at, request.status_note = now, LAPSE_NOTE
        events.append(
            _request_event(
                "pim.request.expired",
                actor=actor,
                request=request,
                before=before,
                after=request_snapshot(request),
            )
        )
    ids = [r.pk for r in due]
    RoleRequest.objects.filter(pk__in=ids).update(
        status=RequestStatus.EXPIRED, completed_at=now, status_note=LAPSE_NOTE
    )
    audit_log.record_many(events)

    def announce():
        for request_id in ids:
            request_lapsed.send(sender=RoleRequest, request_id=request_id)

    transaction.on_commit(announce)
    return due


def requests_lapse_due(*, now: datetime, limit: int, actor: Actor | None = None) -> int:
    """Claim up to `limit` pending requests whose deadline has passed and record their lapse,
    in one transaction: the time engine's batch. Rows another worker holds are skipped
    (SKIP LOCKED where the database has it), so no lapse is recorded twice. How many."""
    with transaction.atomic():
        due = RoleRequest.objects.lapsed(now).order_by("approval_deadline", "pk")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        else:
            due = due.select_for_update()  # SQLite: one writer at a time anyway
        ids = list(due.values_list("pk", flat=True)[:limit])
        if not ids:
            return 0
        requests = list(RoleRequest.objects.with_related().filter(pk__in=ids).order_by("pk"))
        return len(requests_lapse_batch(requests=requests, now=now, actor=actor))
