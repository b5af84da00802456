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

from collections import namedtuple
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from approvals.models import ApprovalDecision, Decision
from assignments import authz
from assignments import services as assignment_services
from assignments.catalog import Perm
from assignments.models import (
    AssignmentKind,
    RequestAction,
    RequestStatus,
    RolePolicy,
    RolePolicyGroupObjectPermission,
    RolePolicyUserObjectPermission,
    RoleRequest,
    ancestor_paths,
)
from assignments.policy import START_TOLERANCE, assignment_problems
from assignments.queries import APPROVE_PERMISSION
from assignments.services import UNCHANGED, RequestConflict
from audit import log as audit_log

DECIDED_BY_APPROVERS = [RequestAction.SELF_ACTIVATE]
DECIDED_BY_ADMINISTRATORS = [RequestAction.SELF_EXTEND, RequestAction.SELF_RENEW]
DECIDABLE_ACTIONS = DECIDED_BY_APPROVERS + DECIDED_BY_ADMINISTRATORS


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


# --- Who decides ---------------------------------------------------------------------------

_PolicyRow = namedtuple("_PolicyRow", "pk path depth has_approvers user_approves")


def _user_permissions(user=None):
    rows = RolePolicyUserObjectPermission.objects.filter(
        content_object=OuterRef("pk"), permission__codename=APPROVE_PERMISSION
    )
    return rows.filter(user=user) if user is not None else rows


def _group_permissions(user=None):
    rows = RolePolicyGroupObjectPermission.objects.filter(
        content_object=OuterRef("pk"), permission__codename=APPROVE_PERMISSION
    )
    return rows.filter(group__user=user) if user is not None else rows


def _policy_index(role_ids, user) -> dict[int, list[_PolicyRow]]:
    """One query: the roles' policies, whether each names approvers, whether `user` is one."""
    rows = (
        RolePolicy.objects.filter(role_id__in=set(role_ids))
        .annotate(
            named_users=Exists(_user_permissions()),
            named_groups=Exists(_group_permissions()),
            by_user=Exists(_user_permissions(user)),
            by_group=Exists(_group_permissions(user)),
        )
        .values_list(
            "pk",
            "role_id",
            "scope__path",
            "scope__depth",
            "named_users",
            "named_groups",
            "by_user",
            "by_group",
        )
    )
    index: dict[int, list[_PolicyRow]] = {}
    for pk, role_id, path, depth, users, groups, by_user, by_group in rows:
        index.setdefault(role_id, []).append(
            _PolicyRow(pk, path, depth, users or groups, by_user or by_group)
        )
    return index


def _effective(index: dict[int, list[_PolicyRow]], request: RoleRequest) -> _PolicyRow | None:
    """The row RolePolicy.objects.effective_for(role, scope) would return, from the index."""
    above = None if request.role.is_directory_role else set(ancestor_paths(request.scope.path))
    best = None
    for row in index.get(request.role_id, ()):
        if row.path is None:
            depth = -1
        elif above is None or row.path not in above:
            continue
        else:
            depth = row.depth
        if best is None or depth > best[0]:
            best = (depth, row)
    return best[1] if best else None


def _is_requester(user, request: RoleRequest) -> bool:
    return user.pk in (request.requested_by_id, request.principal_user_id)


def _may_decide(user, request: RoleRequest, grants: authz.Grants, index) -> bool:
    if _is_requester(user, request) or not user.is_active:
        return False
    if request.action in DECIDED_BY_APPROVERS:
        policy = _effective(index, request)
        if policy is not None and policy.has_approvers:
            return policy.user_approves
        return grants.can_manage_role(request.role, request.scope)
    if request.action in DECIDED_BY_ADMINISTRATORS:
        return grants.can_manage_role(request.role, request.scope)
    return False


def may_decide(user, request: RoleRequest, grants: authz.Grants | None = None) -> bool:
    """Whether the user is one of the request's deciders (whatever its state); never its own."""
    if user is None or not user.is_authenticated:
        return False
    grants = grants or authz.grants_for(user)
    return _may_decide(user, request, grants, _policy_index([request.role_id], user))


def approvers_for(request: RoleRequest):
    """The users who may decide the request (never its requester), as a queryset."""
    User = get_user_model()
    requester_ids = [pk for pk in (request.requested_by_id, request.principal_user_id) if pk]
    if request.action not in DECIDABLE_ACTIONS:
        return User.objects.none()
    if request.action in DECIDED_BY_APPROVERS:
        policy = RolePolicy.objects.effective_for(request.role, request.scope)
        if policy.pk is not None:
            user_rows = RolePolicyUserObjectPermission.objects.filter(
                content_object=policy, permission__codename=APPROVE_PERMISSION
            )
            group_rows = RolePolicyGroupObjectPermission.objects.filter(
                content_object=policy, permission__codename=APPROVE_PERMISSION
            )
            if user_rows.exists() or group_rows.exists():
                return (
                    User.objects.filter(
                        Q(pk__in=user_rows.values("user"))
                        | Q(groups__in=group_rows.values("group")),
                        is_active=True,
                    )
                    .exclude(pk__in=requester_ids)
                    .distinct()
                )
    return authz.role_administrators(request.role, request.scope).exclude(pk__in=requester_ids)


def may_view(user, request: RoleRequest, grants: authz.Grants | None = None) -> bool:
    """The requester, the request's deciders (and whoever decided it) and administrators."""
    if user is None or not user.is_authenticated:
        return False
    if _is_requester(user, request):
        return True
    grants = grants or authz.grants_for(user)
    if grants.can_manage_directory() or grants.can_manage_role(request.role, request.scope):
        return True
    if may_decide(user, request, grants):
        return True
    return ApprovalDecision.objects.filter(request=request, approver=user).exists()


def request_for_viewer(user, request_id, grants: authz.Grants | None = None) -> RoleRequest:
    """The request when the user may see it; otherwise a 404, audited (ids do not leak)."""
    request = RoleRequest.objects.with_related().filter(pk=request_id).first()
    if request is not None and may_view(user, request, grants):
        return request
    authz.deny(user, what=f"view request {request_id}", target=request, not_found=True)


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
            Exists(_user_permissions(user)) | Exists(_group_permissions(user))
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
    index = _policy_index({r.role_id for r in requests}, user)
    sees_all = grants.can_manage_directory()
    items = []
    for request in requests:
        decidable = not request.decided_by_me and _may_decide(user, request, grants, index)
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
    index = _policy_index({r.role_id for r in requests}, user)
    return sum(1 for r in requests if _may_decide(user, r, grants, index))


# --- Deciding ------------------------------------------------------------------------------


def _refuse(actor, request_id, request: RoleRequest | None, message: str):
    """Audit a decision the actor may not make, and refuse it."""
    audit_log.record(
        action="pim.security.forbidden",
        actor=actor,
        target=request,
        principal=request.principal_name if request else "",
        role=request.role.name if request else "",
        scope=request.scope.path if request else "",
        role_request_id=request.pk if request else None,
        message=message,
    )
    raise PermissionDenied(message)


def require_may_decide(actor, request_id, request: RoleRequest | None, grants=None) -> None:
    """Refuse (audited, PermissionDenied) anyone who may not decide the request."""
    if request is None:
        _refuse(actor, request_id, None, f"Request #{request_id} is not one you may decide.")
    if _is_requester(actor, request):
        _refuse(actor, request_id, request, "You cannot decide your own request.")
    if not may_decide(actor, request, grants):
        _refuse(actor, request_id, request, f"Request #{request_id} is not one you may decide.")


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
    if not justification:
        raise ValidationError("Give a justification for your decision.")
    request = RoleRequest.objects.with_related().filter(pk=request_id).first()
    require_may_decide(actor, request_id, request, grants)
    changes = start is not None or end is not UNCHANGED or kind is not None
    if changes and (not approve or request.action not in DECIDED_BY_ADMINISTRATORS):
        raise ValidationError("Only an approved extend or renew can change start, end or type.")
    now = timezone.now()
    if approve and request.action in DECIDED_BY_ADMINISTRATORS:
        problems = _override_problems(request, start, end, kind, now)
        if problems:
            raise ValidationError(problems)
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
            if not approve:
                request = assignment_services.request_deny(
                    request_id=request.pk, actor=actor, justification=justification
                )
                outcome, message = Outcome.DENIED, "Request denied."
            elif ApprovalDecision.objects.filter(request=request).approvals().count() >= max(
                1, request.approvals_required
            ):
                request = assignment_services.request_grant(
                    request_id=request.pk,
                    actor=actor,
                    start=start,
                    end=end,
                    kind=kind,
                    justification=justification,
                )
                if request.status == RequestStatus.FAILED:
                    outcome = Outcome.FAILED
                    message = f"Approved, but it could not be carried out: {request.status_note}"
                else:
                    outcome, message = Outcome.APPROVED, "Request approved."
            else:
                missing = max(1, request.approvals_required) - (
                    ApprovalDecision.objects.filter(request=request).approvals().count()
                )
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
                outcome = Outcome.APPROVAL_RECORDED
                message = (
                    f"Approval recorded: it waits for {missing} more "
                    f"approval{'' if missing == 1 else 's'}."
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
    """Lapse one pending request past its deadline and tell the requester; None if not due.

    Idempotent: only the call that moves it to expired mails anyone.
    """
    with transaction.atomic():
        request = assignment_services.request_lapse(request_id=request_id)
        if request is not None:
            _on_commit_notify_lapsed(request.pk)
    return request


def lapse_due(now: datetime | None = None) -> int:
    """Lapse every pending request whose approval deadline has passed. Returns how many."""
    now = now or timezone.now()
    due = RoleRequest.objects.pending().filter(approval_deadline__lte=now)
    lapsed = 0
    for request_id in due.values_list("pk", flat=True):
        lapsed += request_expire(request_id=request_id) is not None
    return lapsed


def request_cancel(*, actor, request_id: int) -> RoleRequest:
    """Cancel a pending (or scheduled) request: its requester, or a PRA / Global Administrator.

    Anyone else is refused and audited. Someone else's request canceled: its requester is told.
    """
    request = RoleRequest.objects.with_related().filter(pk=request_id).first()
    if request is None or not authz.may_cancel(actor, request):
        _refuse(actor, request_id, request, f"Request #{request_id} is not one you may cancel.")
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


def _on_commit_notify_lapsed(request_id: int) -> None:
    from approvals import notifications

    transaction.on_commit(lambda: notifications.notify_lapsed(request_id))


# --- The timeline of a request -------------------------------------------------------------


@dataclass
class TimelineEntry:
    at: datetime
    title: str
    actor: str = ""
    text: str = ""
    tone: str = "secondary"
    upcoming: bool = False
    extra: dict = field(default_factory=dict)


def request_timeline(request: RoleRequest, now: datetime | None = None) -> list[TimelineEntry]:
    """Requested, each decision with its reason, the outcome, in force and ended."""
    now = now or timezone.now()
    entries = [
        TimelineEntry(
            at=request.created_at,
            title=f"Requested: {request.get_action_display().lower()}",
            actor=_who(request.requested_by),
            text=request.justification,
            tone="primary",
        )
    ]
    decisions = list(ApprovalDecision.objects.filter(request=request))
    for decision in decisions:
        entries.append(
            TimelineEntry(
                at=decision.decided_at,
                title=decision.get_decision_display(),
                actor=decision.approver_name,
                text=decision.justification,
                tone="success" if decision.is_approval else "danger",
            )
        )
    status = request.status
    completed = request.completed_at or now
    if status == RequestStatus.CANCELED:
        entries.append(
            TimelineEntry(at=completed, title="Canceled", actor=_who(request.completed_by))
        )
    elif status == RequestStatus.EXPIRED:
        entries.append(
            TimelineEntry(
                at=completed,
                title="Lapsed",
                text="Not decided within the approval window.",
                tone="warning",
            )
        )
    elif status == RequestStatus.FAILED:
        entries.append(
            TimelineEntry(at=completed, title="Could not be carried out", text=request.status_note)
        )
    elif status == RequestStatus.DENIED and not any(not d.is_approval for d in decisions):
        entries.append(
            TimelineEntry(at=completed, title="Denied", text=request.status_note, tone="danger")
        )
    elif status == RequestStatus.PENDING_APPROVAL and request.approval_deadline:
        entries.append(
            TimelineEntry(
                at=request.approval_deadline,
                title="Lapses if not decided",
                tone="warning",
                upcoming=True,
            )
        )
    assignment = request.result_assignment
    if assignment is not None and status in (
        RequestStatus.PROVISIONED,
        RequestStatus.SCHEDULED,
        RequestStatus.REVOKED,
        RequestStatus.CANCELED,
    ):
        if assignment.end is None or assignment.end > assignment.start:
            entries.append(
                TimelineEntry(
                    at=assignment.start,
                    title="In force" if assignment.start <= now else "Scheduled to be in force",
                    tone="success",
                    upcoming=assignment.start > now,
                )
            )
        if assignment.end is not None and assignment.end > assignment.start:
            entries.append(
                TimelineEntry(
                    at=assignment.end,
                    title="Ended" if assignment.end <= now else "Ends",
                    actor=_who(assignment.ended_by) if assignment.ended_by_id else "",
                    upcoming=assignment.end > now,
                )
            )
    return sorted(entries, key=lambda e: (e.upcoming, e.at))
