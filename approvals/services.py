"""Who decides a request waiting for approval, recording decisions, and lapsing requests.

The rules:
- A self-activation is decided by the users and groups named as approvers in the role's
  effective settings. When none are named, the role's in-force administrators decide
  (Privileged Role / Global Administrators for a directory role; the settings page refuses to
  require approval of a resource role without approvers, and should one slip through, its
  Owners and User Access Administrators at the scope decide rather than nobody).
- Extend and renew requests are decided by the role's administrators at the request's scope.
- Nobody decides their own request.
- Distinct approvals count towards the request's `approvals_required`; any deny ends it.
- A request not decided by its approval deadline lapses and can no longer be approved.

Every decision locks the request row, so two approvers, a double click, an approval racing a
cancel or the lapse end in exactly one outcome, one audit event per decision.
"""

from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from approvals.authz import (
    DECIDABLE_ACTIONS,
    DECIDED_BY_ADMINISTRATORS,
    DECIDED_BY_APPROVERS,
    group_permissions,
    may_decide_indexed,
    policy_index,
    refuse_decision,
    require_may_decide,
    user_permissions,
)
from approvals.models import ApprovalDecision, Decision
from assignments import authz
from assignments import services as assignment_services
from assignments.catalog import Perm
from assignments.models import (
    AssignmentKind,
    RequestAction,
    RequestStatus,
    RolePolicy,
    RoleRequest,
)
from assignments.policy import START_TOLERANCE, assignment_problems
from assignments.services import UNCHANGED, RequestConflict
from audit import log as audit_log


class Outcome:
    """What one decision did (also the per-item outcome of a bulk decision)."""

    APPROVED = "approved"  # the last approval needed: the request was carried out
    APPROVAL_RECORDED = "approval_recorded"  # more approvals are needed
    DENIED = "denied"
    FAILED = "failed"  # approved, but could not be carried out (the eligibility ended)
    ALREADY_DECIDED = "already_decided"
    CANCELED = "canceled"
    LAPSED = "lapsed"
    FORBIDDEN = "forbidden"
    INVALID = "invalid"


class DecisionConflict(RequestConflict):
    """The request is no longer open to this decision; `outcome` says why."""

    def __init__(self, message: str, outcome: str):
        super().__init__(message)
        self.outcome = outcome


@dataclass
class DecisionResult:
    request_id: int
    outcome: str
    message: str
    request: RoleRequest | None = None

    @property
    def label(self) -> str:
        if self.request is None:
            return f"Request #{self.request_id}"
        return f"{self.request.role} at {self.request.scope} for {self.request.principal_name}"


# --- The inbox -------------------------------------------------------------------------------


@dataclass
class InboxItem:
    request: RoleRequest
    can_decide: bool
    can_cancel: bool
    approvals: int = 0
    decided_by_me: bool = False

    @property
    def approvals_missing(self) -> int:
        return max(1, self.request.approvals_required) - self.approvals


def _pending_open(now: datetime):
    """Pending requests still inside their approval window (a lapsed one is never shown)."""
    return RoleRequest.objects.pending().filter(
        Q(approval_deadline__isnull=True) | Q(approval_deadline__gt=now),
        action__in=DECIDABLE_ACTIONS,
    )


def _approved_role_ids(user) -> set[int]:
    """Roles with a policy that names the user (or a group of theirs) as approver: one query."""
    return set(
        RolePolicy.objects.filter(
            Exists(user_permissions(user)) | Exists(group_permissions(user))
        ).values_list("role_id", flat=True)
    )


def _candidates(user, grants: authz.Grants, now: datetime):
    """Pending requests the user could possibly decide or, as PRA/GA, see; None when none."""
    requests = _pending_open(now).exclude(requested_by=user)
    manages = grants.has_anywhere(Perm.MANAGE_DIRECTORY) or grants.has_anywhere(
        Perm.MANAGE_RESOURCES
    )
    if not manages:
        roles = _approved_role_ids(user)
        if not roles:
            return None
        requests = requests.filter(role_id__in=roles, action__in=DECIDED_BY_APPROVERS)
    mine = ApprovalDecision.objects.filter(request=OuterRef("pk"), approver=user)
    approvals = (
        ApprovalDecision.objects.filter(request=OuterRef("pk"), decision=Decision.APPROVE)
        .values("request")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return requests.annotate(
        decided_by_me=Exists(mine), approval_count=Coalesce(Subquery(approvals), 0)
    )


def inbox_items(user, grants: authz.Grants | None = None, now: datetime | None = None):
    """Every pending request the user may decide, soonest to lapse first.

    Privileged Role and Global Administrators also see every other pending request (to cancel
    it), marked as not theirs to decide. A constant number of queries, whatever the rows.
    """
    now = now or timezone.now()
    grants = grants or authz.grants_for(user)
    candidates = _candidates(user, grants, now)
    if candidates is None:
        return []
    requests = list(
        candidates.select_related(
            "principal_user", "principal_group", "role", "scope", "requested_by"
        ).order_by("approval_deadline", "pk")
    )
    if not requests:
        return []
    index = policy_index({r.role_id for r in requests}, user)
    sees_all = grants.can_manage_directory()
    items = []
    for request in requests:
        decidable = not request.decided_by_me and may_decide_indexed(user, request, grants, index)
        if decidable or sees_all:
            items.append(
                InboxItem(
                    request=request,
                    can_decide=decidable,
                    can_cancel=sees_all,
                    approvals=request.approval_count,
                    decided_by_me=request.decided_by_me,
                )
            )
    return items


def inbox_count(user, grants: authz.Grants | None = None) -> int:
    """How many requests wait for the user's decision (the navigation badge)."""
    now = timezone.now()
    grants = grants or authz.grants_for(user)
    candidates = _candidates(user, grants, now)
    if candidates is None:
        return 0
    requests = list(candidates.filter(decided_by_me=False).select_related("role", "scope"))
    if not requests:
        return 0
    index = policy_index({r.role_id for r in requests}, user)
    return sum(1 for r in requests if may_decide_indexed(user, r, grants, index))


# --- Deciding ------------------------------------------------------------------------------


def _who(user) -> str:
    return str(user) if user is not None else "someone"


def conflict_for(request: RoleRequest, actor, now: datetime) -> DecisionConflict | None:
    """Why the request can no longer take a decision from the actor, or None when it can."""
    status = request.status
    if status == RequestStatus.CANCELED:
        by = "its requester" if request.completed_by_id == request.requested_by_id else None
        by = by or _who(request.completed_by)
        return DecisionConflict(f"That request was canceled by {by}.", Outcome.CANCELED)
    if status == RequestStatus.EXPIRED or (
        status == RequestStatus.PENDING_APPROVAL
        and request.approval_deadline is not None
        and request.approval_deadline <= now
    ):
        return DecisionConflict(
            "That request has lapsed: it was not decided within its approval window.",
            Outcome.LAPSED,
        )
    if status != RequestStatus.PENDING_APPROVAL:
        verb = "denied" if status == RequestStatus.DENIED else "approved"
        if status not in (
            RequestStatus.DENIED,
            RequestStatus.PROVISIONED,
            RequestStatus.SCHEDULED,
            RequestStatus.FAILED,
        ):
            verb = request.get_status_display().lower()
        if actor is not None and request.completed_by_id == actor.pk:
            return DecisionConflict(
                f"You already decided that request: it is {verb}.", Outcome.ALREADY_DECIDED
            )
        return DecisionConflict(
            f"That request was already {verb} by {_who(request.completed_by)}.",
            Outcome.ALREADY_DECIDED,
        )
    mine = ApprovalDecision.objects.filter(request=request, approver=actor).first()
    if mine is not None:
        return DecisionConflict(
            f"You already {mine.get_decision_display().lower()} that request; "
            "it waits for other approvers.",
            Outcome.ALREADY_DECIDED,
        )
    return None


def _override_problems(request: RoleRequest, start, end, kind, now) -> list[str]:
    """Check an administrator's start, end and type for an extend or renew against the settings."""
    problems = []
    kind = kind or request.kind
    if kind not in AssignmentKind.values:
        return ["Choose eligible or active."]
    if start is not None and start < now - START_TOLERANCE:
        problems.append("The new start cannot be in the past.")
    if request.action == RequestAction.SELF_EXTEND:
        begin = start or (request.target_assignment.start if request.target_assignment else now)
    else:
        begin = start or now
    new_end = request.end if end is UNCHANGED else end
    policy = RolePolicy.objects.effective_for(request.role, request.scope)
    # Length is measured from now: extending an assignment that began long ago is allowed.
    problems += assignment_problems(
        policy=policy,
        kind=kind,
        start=max(begin, now),
        end=new_end,
        justification=request.justification,
        now=now,
    )
    return problems


def _lock(request_id: int) -> RoleRequest:
    RoleRequest.objects.select_for_update().filter(pk=request_id).first()
    return RoleRequest.objects.with_related().select_related("completed_by").get(pk=request_id)


def _check_decision(actor, request_id, approve, justification, overrides, grants) -> None:
    """Refuse, before anything is locked, a decision without a reason, by someone who does not
    decide the request, or changing what only an approved extend or renew may change."""
    if not justification:
        raise ValidationError("Give a justification for your decision.")
    request = RoleRequest.objects.with_related().filter(pk=request_id).first()
    require_may_decide(actor, request_id, request, grants)
    start, end, kind = overrides["start"], overrides["end"], overrides["kind"]
    changes = start is not None or end is not UNCHANGED or kind is not None
    if changes and (not approve or request.action not in DECIDED_BY_ADMINISTRATORS):
        raise ValidationError("Only an approved extend or renew can change start, end or type.")
    if approve and request.action in DECIDED_BY_ADMINISTRATORS:
        problems = _override_problems(request, start, end, kind, timezone.now())
        if problems:
            raise ValidationError(problems)


def _apply_decision(request, actor, approve, justification, overrides):
    """(request, outcome, message) once the decision is recorded: a deny ends the request, the
    last approval needed carries it out, an earlier one only counts."""
    if not approve:
        request = assignment_services.request_deny(
            request_id=request.pk, actor=actor, justification=justification
        )
        return request, Outcome.DENIED, "Request denied."
    needed = max(1, request.approvals_required)
    missing = needed - ApprovalDecision.objects.filter(request=request).approvals().count()
    if missing <= 0:
        request = assignment_services.request_carry_out(
            request_id=request.pk, actor=actor, justification=justification, **overrides
        )
        if request.status == RequestStatus.FAILED:
            note = f"Approved, but it could not be carried out: {request.status_note}"
            return request, Outcome.FAILED, note
        return request, Outcome.APPROVED, "Request approved."
    audit_log.record(
        action="pim.request.approval_recorded",
        actor=actor,
        target=request,
        principal=request.principal_name,
        role=request.role.name,
        scope=request.scope.path,
        role_request_id=request.pk,
        message=justification,
    )
    plural = "" if missing == 1 else "s"
    message = f"Approval recorded: it waits for {missing} more approval{plural}."
    return request, Outcome.APPROVAL_RECORDED, message


def decision_record(
    *,
    actor,
    request_id: int,
    approve: bool,
    justification: str,
    start: datetime | None = None,
    end=UNCHANGED,
    kind: str | None = None,
    grants: authz.Grants | None = None,
) -> DecisionResult:
    """Record the actor's approval or denial of a pending request, with a justification.

    Refused (PermissionDenied, audited) for the requester and anyone not among its deciders;
    refused (DecisionConflict) once the request is decided, canceled or lapsed, or when the
    actor already decided it. The last approval needed carries the request out in the same
    transaction; a deny ends it. An administrator approving an extend or renew may change its
    start, end and type.
    """
    justification = (justification or "").strip()
    overrides = {"start": start, "end": end, "kind": kind}
    _check_decision(actor, request_id, approve, justification, overrides, grants)
    try:
        with transaction.atomic():
            request = _lock(request_id)
            conflict = conflict_for(request, actor, timezone.now())
            if conflict is not None:
                raise conflict
            ApprovalDecision.objects.create(
                request=request,
                approver=actor,
                approver_name=str(actor)[:200],
                decision=Decision.APPROVE if approve else Decision.DENY,
                justification=justification,
                decided_at=timezone.now(),
            )
            request, outcome, message = _apply_decision(
                request, actor, approve, justification, overrides
            )
            if outcome != Outcome.APPROVAL_RECORDED:
                _on_commit_notify_decided(request.pk, actor.pk)
    except DecisionConflict as conflict:
        if conflict.outcome == Outcome.LAPSED:
            request_expire(request_id=request_id)
        raise
    except RequestConflict:
        # The deadline passed between the check and the grant: it has lapsed.
        request_expire(request_id=request_id)
        raise DecisionConflict(
            "That request has lapsed: it was not decided within its approval window.",
            Outcome.LAPSED,
        ) from None
    return DecisionResult(request_id=request.pk, outcome=outcome, message=message, request=request)


def decisions_record_bulk(
    *, actor, request_ids, approve: bool, justification: str
) -> list[DecisionResult]:
    """Decide several requests with one justification; each succeeds or fails on its own.

    Ids the actor may not decide (guessed ones included) are refused and audited one by one.
    """
    if not (justification or "").strip():
        raise ValidationError("Give a justification for your decision.")
    grants = authz.grants_for(actor)
    results = []
    seen = set()
    for request_id in request_ids:
        if request_id in seen:
            continue
        seen.add(request_id)
        try:
            results.append(
                decision_record(
                    actor=actor,
                    request_id=request_id,
                    approve=approve,
                    justification=justification,
                    grants=grants,
                )
            )
        except PermissionDenied as refused:
            results.append(DecisionResult(request_id, Outcome.FORBIDDEN, str(refused)))
        except DecisionConflict as conflict:
            results.append(
                DecisionResult(
                    request_id,
                    conflict.outcome,
                    str(conflict),
                    RoleRequest.objects.with_related().filter(pk=request_id).first(),
                )
            )
        except ValidationError as error:
            results.append(DecisionResult(request_id, Outcome.INVALID, " ".join(error.messages)))
    return results


_SUMMARY = [
    (Outcome.APPROVED, "{n} approved", "{n} approved"),
    (
        Outcome.APPROVAL_RECORDED,
        "{n} approval recorded, waiting for other approvers",
        "{n} approvals recorded, waiting for other approvers",
    ),
    (Outcome.DENIED, "{n} denied", "{n} denied"),
    (Outcome.FAILED, "{n} could not be carried out", "{n} could not be carried out"),
    (
        Outcome.ALREADY_DECIDED,
        "{n} was already decided by another approver",
        "{n} were already decided by other approvers",
    ),
    (Outcome.CANCELED, "{n} was canceled", "{n} were canceled"),
    (Outcome.LAPSED, "{n} had lapsed", "{n} had lapsed"),
    (Outcome.FORBIDDEN, "{n} was not yours to decide", "{n} were not yours to decide"),
    (Outcome.INVALID, "{n} was refused", "{n} were refused"),
]

SUCCESSFUL_OUTCOMES = {Outcome.APPROVED, Outcome.APPROVAL_RECORDED, Outcome.DENIED}


def bulk_summary(results: list[DecisionResult]) -> str:
    """'12 approved; 1 was already decided by another approver'."""
    counts: dict[str, int] = {}
    for result in results:
        outcome = result.outcome
        # Deciding twice yourself reads, in a summary, like any other "already decided".
        counts[outcome] = counts.get(outcome, 0) + 1
    parts = []
    for outcome, one, many in _SUMMARY:
        n = counts.get(outcome, 0)
        if n:
            parts.append((one if n == 1 else many).format(n=n))
    return "; ".join(parts) if parts else "Nothing was decided."


# --- Lapse and cancel --------------------------------------------------------------------


def request_expire(*, request_id: int) -> RoleRequest | None:
    """Record the lapse of one pending request past its deadline; None if not due.

    Idempotent: only the call that records it writes the audit event, and the requester is
    told by the listener of assignments' `request_lapsed` signal (notifications).
    """
    return assignment_services.request_lapse(request_id=request_id)


def lapse_due(now: datetime | None = None) -> int:
    """Record the lapse of every pending request whose deadline has passed. How many."""
    due = RoleRequest.objects.lapsed(now).values_list("pk", flat=True)
    return sum(request_expire(request_id=request_id) is not None for request_id in list(due))


def request_cancel(*, actor, request_id: int) -> RoleRequest:
    """Cancel a pending (or scheduled) request: its requester, or a PRA / Global Administrator.

    Anyone else is refused and audited. Someone else's request canceled: its requester is told.
    """
    request = RoleRequest.objects.with_related().filter(pk=request_id).first()
    if request is None or not authz.may_cancel(actor, request):
        refuse_decision(
            actor, request_id, request, f"Request #{request_id} is not one you may cancel."
        )
    with transaction.atomic():
        locked = _lock(request_id)
        if locked.status not in (RequestStatus.PENDING_APPROVAL, RequestStatus.SCHEDULED):
            raise conflict_for(locked, actor, timezone.now()) or DecisionConflict(
                "That request is no longer open.", Outcome.ALREADY_DECIDED
            )
        # Who is told is the approvals app's listener to selfservice's request_canceled.
        request = assignment_services.request_cancel(actor=actor, request_id=request_id)
    return request


# --- After commit --------------------------------------------------------------------------


def _on_commit_notify_decided(request_id: int, actor_id: int) -> None:
    from approvals import notifications

    transaction.on_commit(lambda: notifications.notify_decided(request_id, actor_id))
