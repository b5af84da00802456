"""Pieces every request service shares: the audit record of a request, its snapshot, the
work queued for a worker, the request lock, and making an activation."""

from django.db import transaction
from django.utils import timezone

from assignments.models import Assignment, AssignmentKind, RoleRequest
from audit import log as audit_log
from pim_portal import jobs

UNCHANGED = object()  # "keep what was requested" for request_carry_out's optional overrides


class RequestConflict(Exception):
    """The request is no longer in the state the caller expected (someone else got there)."""


def record_request(action: str, *, actor, request: RoleRequest, target=None, **kw):
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


def request_snapshot(request: RoleRequest) -> dict:
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


def after_commit(request_id: int, assignment_id: int | None, *, submitted: bool, activated: bool):
    """Queue the activation's mail for a worker; after commit, tell listeners of a new pending
    request. The assignment's start and end need nothing: the timekeeper finds them."""
    if activated:
        jobs.enqueue("assignments.notifications.notify_activated", request_id)
    if submitted:

        def announce():
            from assignments.signals import request_submitted

            request_submitted.send(sender=RoleRequest, request_id=request_id)

        transaction.on_commit(announce)


def lock_request(request_id: int) -> RoleRequest:
    request = RoleRequest.objects.select_for_update().filter(pk=request_id).first()
    if request is None:
        raise RequestConflict("That request does not exist.")
    return RoleRequest.objects.with_related().get(pk=request.pk)


def new_activation(request: RoleRequest, eligible: Assignment, start, end) -> Assignment:
    """The active assignment an activation request makes, unsaved (for `bulk_create` too);
    never outlives the eligibility."""
    if eligible.end is not None:
        end = min(end, eligible.end)
    now = timezone.now()
    return Assignment(
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
        # As Assignment.save: begun as it was made, no start for the time engine to record.
        start_processed_at=now if start <= now else None,
    )


def activation_from(request: RoleRequest, eligible: Assignment, start, end) -> Assignment:
    """The active assignment an activation request makes, saved."""
    activation = new_activation(request, eligible, start, end)
    activation.save()
    return activation
