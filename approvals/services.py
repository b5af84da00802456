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

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    Min,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from approvals.authz import (
    DECIDABLE_ACTIONS,
    DECIDED_BY_ADMINISTRATORS,
    DECIDED_BY_APPROVERS,  # noqa: F401 (re-exported for views and tests)
    NOT_YOURS,
    decidable_by,
    decidable_condition,
    is_requester,
    refuse_decision,
    require_may_decide,
)
from approvals.models import ApprovalDecision, Decision
from assignments import authz, counts, queries
from assignments import services as assignment_services
from assignments.models import (
    AssignmentKind,
    RequestAction,
    RequestStatus,
    RolePolicy,
    RoleRequest,
)
from assignments.policy import START_TOLERANCE, assignment_problems
from assignments.services import UNCHANGED, RequestConflict, decided
from audit import log as audit_log
from pim_portal import jobs
from pim_portal.actor import Actor

NOTIFY_DECIDED = "approvals.notifications.notify_decided"
NOTIFY_DECIDED_MANY = "approvals.notifications.notify_decided_many"


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
    return RoleRequest.objects.pending(now).filter(action__in=DECIDABLE_ACTIONS)


def _decided_by(user):
    return ApprovalDecision.objects.filter(request=OuterRef("pk"), approver=user)


def waiting_for(user, grants: authz.Grants, now: datetime | None = None):
    """The pending requests waiting for the user's decision (what the badge counts): the
    user may decide them and has not yet. A queryset, so counting is one query."""
    now = now or timezone.now()
    requests = decidable_by(_pending_open(now), user, grants)
    return requests.exclude(Exists(_decided_by(user)))


def inbox_requests(user, grants: authz.Grants | None = None, now: datetime | None = None):
    """The inbox as a queryset, soonest to lapse first, each annotated with `can_decide`,
    `decided_by_me` and `approval_count`: what the user may decide and, for Privileged Role
    and Global Administrators, every other pending request (to cancel it)."""
    now = now or timezone.now()
    grants = grants or authz.grants_for(user)
    requests = _pending_open(now).exclude(requested_by=user)
    condition = decidable_condition(user, grants)
    mine = Exists(_decided_by(user))
    if condition is None:
        if not grants.can_manage_directory():  # nothing, with the annotations a page reads
            return requests.none().annotate(
                can_decide=Value(False), decided_by_me=Value(False), approval_count=Value(0)
            )
        can_decide = Value(False)
    else:
        can_decide = Case(
            When(condition & ~Q(mine), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        )
        if not grants.can_manage_directory():
            requests = requests.filter(condition & ~Q(mine))
    return (
        requests.annotate(
            can_decide=can_decide,
            decided_by_me=mine,
            approval_count=_approvals_so_far(),
        )
        # Role and scope joined, the people fetched for the page's rows: a join of six tables
        # cost PostgreSQL more to plan than to run.
        .select_related("role", "scope")
        .prefetch_related("principal_user", "principal_group", "requested_by")
        .order_by("approval_deadline", "pk")
    )


INBOX_FILTERS = ("role", "scope", "requester")


def inbox_filtered(requests, filters: dict):
    """The inbox narrowed by the filters of its page (role, scope, requester ids; None: all)."""
    lookups = {"role": "role_id", "scope": "scope_id", "requester": "requested_by_id"}
    return requests.filter(
        **{lookups[name]: value for name, value in filters.items() if value is not None}
    )


def inbox_item(request: RoleRequest, grants: authz.Grants) -> InboxItem:
    """One row of the inbox, from a request of `inbox_requests`."""
    return InboxItem(
        request=request,
        can_decide=request.can_decide,
        can_cancel=grants.can_manage_directory(),
        approvals=request.approval_count,
        decided_by_me=request.decided_by_me,
    )


def _approvals_so_far():
    """The approvals a request has had so far, as an annotation."""
    approvals = (
        ApprovalDecision.objects.filter(request=OuterRef("pk"), decision=Decision.APPROVE)
        .values("request")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(approvals), 0)


class InboxRow(NamedTuple):
    """What the inbox's menus, counts and pages are made of, for each of its requests."""

    pk: int
    role: int
    scope: int
    requester: int | None
    can_decide: bool
    deadline: datetime | None


def inbox_rows(requests) -> list[InboxRow]:
    """Every request of `inbox_requests`, in its order, as six small columns: one query."""
    columns = ("pk", "role_id", "scope_id", "requested_by_id", "can_decide", "approval_deadline")
    return [InboxRow(*row) for row in requests.values_list(*columns)]


# Approve requests keeps each approver's rows. Reading them means evaluating the long condition
# of what the user may decide (the role settings, who they name, the user's grants) over every
# pending request: at 1,000 waiting, that and the menus' labels cost more than the rest of the
# page. The rows change only with a write (of a request, a decision, role settings or their
# approvers, a group membership: each moves counts.REQUESTS, at once and after commit), a change
# of the user's grants (part of the key), or the clock passing the first approval deadline. A
# kept list is used until then, or for PIM_APPROVALS_INBOX_SECONDS at most: with each process's
# own cache (no CACHE_URL), a write made by another process is seen then. It never decides
# access: deciding and cancelling check the request again.


def _inbox_seconds() -> int:
    return getattr(settings, "PIM_APPROVALS_INBOX_SECONDS", 30)


@dataclass
class KeptInbox:
    rows: list[InboxRow]
    token: str  # names these rows: what is drawn from them (the menus) is kept under it
    next_change: datetime | None


def _inbox_key(user, grants: authz.Grants) -> str:
    held = hashlib.sha256(repr((grants.is_system, sorted(grants.pairs))).encode()).hexdigest()
    return f"pim:approvals:inbox:{counts.REQUESTS.current()}:{user.pk}:{held[:32]}"


def kept_inbox(user, grants: authz.Grants, now: datetime) -> KeptInbox:
    """The rows of the user's inbox (`inbox_rows(inbox_requests(...))`), kept (see above)."""
    key = _inbox_key(user, grants)
    seconds = _inbox_seconds()
    kept = cache.get(key) if seconds > 0 else None
    if kept is not None and (kept.next_change is None or kept.next_change > now):
        return kept
    rows = inbox_rows(inbox_requests(user, grants, now))
    deadlines = [row.deadline for row in rows if row.deadline is not None]
    kept = KeptInbox(rows, f"{key}:{uuid.uuid4().hex}", min(deadlines, default=None))
    if seconds > 0:
        cache.set(key, kept, seconds)
    return kept


def kept_for_inbox(inbox: KeptInbox, name: str, compute):
    """`compute()` (something drawn from the inbox's rows), kept as long as they are."""
    seconds = _inbox_seconds()
    if seconds <= 0:
        return compute()
    key = f"pim:approvals:drawn:{inbox.token}:{hashlib.sha256(name.encode()).hexdigest()[:32]}"
    kept = cache.get(key)
    if kept is None:
        kept = compute()
        cache.set(key, kept, seconds)
    return kept


def inbox_page(user, rows: list[InboxRow], grants: authz.Grants, now: datetime) -> list[InboxItem]:
    """The inbox items of some of its `rows` (a page), in their order. The rows were chosen by
    `inbox_requests`' condition already (and may have been kept): the requests still waiting
    are read by id, with only what a row shows (the approvals so far, the user's own decision)
    computed for each."""
    if not rows:
        return []
    requests = (
        _pending_open(now)
        .filter(pk__in=[row.pk for row in rows])
        .annotate(
            decided_by_me=Exists(_decided_by(user)),
            approval_count=_approvals_so_far(),
        )
        .select_related("role", "scope", "principal_group")
        .order_by()  # the rows' order
    )
    by_pk = {request.pk: request for request in requests}
    queries.attach_people(by_pk.values(), "principal_user", "requested_by")
    return [
        InboxItem(
            request=by_pk[row.pk],
            can_decide=row.can_decide,
            can_cancel=grants.can_manage_directory(),
            approvals=by_pk[row.pk].approval_count,
            decided_by_me=by_pk[row.pk].decided_by_me,
        )
        for row in rows
        if row.pk in by_pk
    ]


def inbox_items(user, grants: authz.Grants | None = None, now: datetime | None = None):
    """Every pending request of the user's inbox, soonest to lapse first (a list).

    Privileged Role and Global Administrators also see every other pending request (to cancel
    it), marked as not theirs to decide. Two queries, whatever the rows.
    """
    grants = grants or authz.grants_for(user)
    return [inbox_item(request, grants) for request in inbox_requests(user, grants, now)]


def inbox_count(user, grants: authz.Grants | None = None) -> int:
    """How many requests wait for the user's decision: one COUNT."""
    return waiting_for(user, grants or authz.grants_for(user)).count()


# The navigation badge. Counting what waits for an approver reads every pending request with
# its effective settings (10 ms and more at 1,500 pending) on every page, so the badge keeps
# its count for PIM_APPROVALS_BADGE_SECONDS in the cache. It only ever shows a number: the
# inbox counts afresh (and refreshes the badge), and deciding forgets the decider's count.


def _badge_key(user) -> str:
    return f"pim:approvals:badge:{user.pk}"


def _badge_seconds() -> int:
    return getattr(settings, "PIM_APPROVALS_BADGE_SECONDS", 30)


def badge_count(user, grants: authz.Grants | None = None) -> int:
    """The navigation badge's count: at most PIM_APPROVALS_BADGE_SECONDS old."""
    seconds = _badge_seconds()
    if seconds <= 0:
        return inbox_count(user, grants)
    count = cache.get(_badge_key(user))
    if count is None:
        count = inbox_count(user, grants)
        cache.set(_badge_key(user), count, seconds)
    return count


def badge_remember(user, count: int) -> None:
    """The inbox counted exactly: the badge shows that from now on."""
    if _badge_seconds() > 0:
        cache.set(_badge_key(user), count, _badge_seconds())


def badge_forget(user) -> None:
    """The user decided something: the badge counts again on the next page."""
    cache.delete(_badge_key(user))


# --- Deciding ------------------------------------------------------------------------------


def _who(user) -> str:
    return str(user) if user is not None else "someone"


_UNREAD = object()


def conflict_for(
    request: RoleRequest, actor, now: datetime, mine=_UNREAD
) -> DecisionConflict | None:
    """Why the request can no longer take a decision from the actor, or None when it can.

    `mine`: the actor's decision on it when the caller read it already (None: none)."""
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
    if mine is _UNREAD:
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
                jobs.enqueue(NOTIFY_DECIDED, request.pk, actor.pk)
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


def bulk_limit() -> int:
    """How many requests one bulk decision may take (setting PIM_BULK_DECISION_MAX)."""
    return int(getattr(settings, "PIM_BULK_DECISION_MAX", 1000))


class _Bulk:
    """One bulk decision under way: the locked requests, and what happens to each."""

    def __init__(self, actor, approve: bool, justification: str, now: datetime):
        self.actor = Actor.of(actor)
        self.user = self.actor.user
        self.approve, self.justification, self.now = approve, justification, now
        self.results: dict[int, DecisionResult] = {}
        self.refusals: list[dict] = []
        self.decisions: list[ApprovalDecision] = []
        self.to_lapse: list[RoleRequest] = []
        self.to_deny: list[RoleRequest] = []
        self.to_activate: list[RoleRequest] = []
        self.recorded: list[tuple[RoleRequest, int]] = []

    def refuse(self, request_id: int, request: RoleRequest | None, message: str) -> None:
        """Like `refuse_decision`, without raising: audited with the others in one INSERT."""
        self.results[request_id] = DecisionResult(request_id, Outcome.FORBIDDEN, message)
        user = self.user if getattr(self.user, "is_authenticated", False) else None
        self.refusals.append(
            {
                "action": "pim.security.forbidden",
                "actor": user,
                "target": request,
                "message": message,
                "principal": request.principal_name if request else "",
                "role": request.role.name if request else "",
                "scope": request.scope.path if request else "",
                "role_request_id": request.pk if request else None,
            }
        )

    def decision(self, request: RoleRequest) -> ApprovalDecision:
        return ApprovalDecision(
            request=request,
            approver=self.user,
            approver_name=str(self.user)[:200],
            decision=Decision.APPROVE if self.approve else Decision.DENY,
            justification=self.justification,
            decided_at=self.now,
        )

    def one_by_one(self, request: RoleRequest) -> None:
        """An extend or renew approved: carried out alone (an administrator's rules apply), in
        a savepoint, so that one refused does not undo the others."""
        try:
            with transaction.atomic():
                self.decision(request).save()
                done = assignment_services.request_carry_out(
                    actor=self.actor, request_id=request.pk, justification=self.justification
                )
        except ValidationError as error:
            outcome = DecisionResult(request.pk, Outcome.INVALID, " ".join(error.messages))
            self.results[request.pk] = outcome
            return
        self.results[request.pk] = _carried_out_result(done)

    def take(self, request: RoleRequest, approvals: int) -> None:
        """Sort one request the actor may decide, and is open to their decision."""
        if not self.approve:
            self.to_deny.append(request)
        elif max(1, request.approvals_required) - approvals - 1 > 0:
            self.recorded.append((request, approvals + 1))
        elif request.action == RequestAction.SELF_ACTIVATE:
            self.to_activate.append(request)
        else:
            return self.one_by_one(request)
        self.decisions.append(self.decision(request))


def _carried_out_result(request: RoleRequest) -> DecisionResult:
    if request.status == RequestStatus.FAILED:
        note = f"Approved, but it could not be carried out: {request.status_note}"
        return DecisionResult(request.pk, Outcome.FAILED, note, request)
    return DecisionResult(request.pk, Outcome.APPROVED, "Request approved.", request)


def _waits_for(missing: int) -> str:
    plural = "" if missing == 1 else "s"
    return f"Approval recorded: it waits for {missing} more approval{plural}."


def decisions_record_bulk(
    *, actor, request_ids, approve: bool, justification: str
) -> list[DecisionResult]:
    """Decide several requests with one justification; each succeeds or fails on its own,
    with the same outcomes, audit events and mail as `decision_record` one by one.

    Set-based, in one transaction: the requests are locked once (ordered by pk, so two bulk
    decisions over the same requests wait for each other rather than deadlock), who decides
    them is one query, and decisions, activations, status changes and audit events are bulk
    statements: a constant number of queries for the batch (extends and renews, which
    administrators decide with their own rules, are carried out one by one). Ids the actor may
    not decide (guessed ones included) are refused and each refusal audited.
    """
    justification = (justification or "").strip()
    if not justification:
        raise ValidationError("Give a justification for your decision.")
    ids = list(dict.fromkeys(request_ids))
    bulk = _Bulk(actor, approve, justification, timezone.now())
    grants = authz.grants_for(bulk.actor)
    with transaction.atomic():
        locked = {
            r.pk: r
            for r in RoleRequest.objects.with_related()
            .select_related("completed_by")
            .select_for_update(of=("self",))
            .filter(pk__in=ids)
            .order_by("pk")
        }
        decidable = set(
            decidable_by(RoleRequest.objects.filter(pk__in=list(locked)), bulk.user, grants)
            .values_list("pk", flat=True)
            .order_by()
        )
        mine, approvals = {}, {}
        for decision in ApprovalDecision.objects.filter(request_id__in=list(decidable)):
            if decision.approver_id == bulk.user.pk:
                mine[decision.request_id] = decision
            if decision.decision == Decision.APPROVE:
                approvals[decision.request_id] = approvals.get(decision.request_id, 0) + 1
        for request_id in ids:
            request = locked.get(request_id)
            if request is None or request_id not in decidable:
                own = request is not None and is_requester(bulk.user, request)
                message = "You cannot decide your own request." if own else None
                bulk.refuse(request_id, request, message or NOT_YOURS.format(request_id))
                continue
            conflict = conflict_for(request, bulk.user, bulk.now, mine.get(request_id))
            if conflict is not None:
                if conflict.outcome == Outcome.LAPSED:
                    bulk.to_lapse.append(request)
                result = DecisionResult(request_id, conflict.outcome, str(conflict), request)
                bulk.results[request_id] = result
                continue
            bulk.take(request, approvals.get(request_id, 0))
        _write(bulk)
    return [bulk.results[request_id] for request_id in ids]


def _write(bulk: _Bulk) -> None:
    """The bulk decision's writes: a few statements, whatever the number of requests."""
    ApprovalDecision.objects.bulk_create(bulk.decisions)
    decided.requests_lapse_batch(requests=bulk.to_lapse, now=bulk.now)
    for request in decided.requests_deny_batch(
        actor=bulk.actor, requests=bulk.to_deny, justification=bulk.justification, now=bulk.now
    ):
        bulk.results[request.pk] = DecisionResult(
            request.pk, Outcome.DENIED, "Request denied.", request
        )
    for request in decided.activations_carry_out_batch(
        actor=bulk.actor,
        requests=bulk.to_activate,
        justification=bulk.justification,
        now=bulk.now,
    ):
        bulk.results[request.pk] = _carried_out_result(request)
    events = list(bulk.refusals)
    for request, approvals in bulk.recorded:
        events.append(
            {
                "action": "pim.request.approval_recorded",
                "actor": bulk.actor,
                "target": request,
                "principal": request.principal_name,
                "role": request.role.name,
                "scope": request.scope.path,
                "role_request_id": request.pk,
                "message": bulk.justification,
            }
        )
        missing = max(1, request.approvals_required) - approvals
        bulk.results[request.pk] = DecisionResult(
            request.pk, Outcome.APPROVAL_RECORDED, _waits_for(missing), request
        )
    if events:
        audit_log.record_many(events)
    decided_ids = [
        r.request_id
        for r in bulk.results.values()
        if r.outcome in (Outcome.APPROVED, Outcome.DENIED, Outcome.FAILED)
    ]
    if decided_ids:
        jobs.enqueue(NOTIFY_DECIDED_MANY, decided_ids, bulk.user.pk)


def decisions_record_matching(
    *, actor, filters: dict, approve: bool, justification: str, grants=None
) -> tuple[list[DecisionResult], int]:
    """Decide every request of the actor's inbox that matches the filters, up to the bulk
    limit (soonest to lapse first): the results, and how many matched in all."""
    grants = grants or authz.grants_for(actor)
    matching = inbox_filtered(waiting_for(actor, grants), filters).order_by(
        "approval_deadline", "pk"
    )
    ids = list(matching.values_list("pk", flat=True)[: bulk_limit()])
    matched = len(ids) if len(ids) < bulk_limit() else matching.count()
    if not ids:
        return [], 0
    results = decisions_record_bulk(
        actor=actor, request_ids=ids, approve=approve, justification=justification
    )
    return results, matched


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


def next_deadline() -> datetime | None:
    """The earliest approval deadline of a pending request (its lapse is due then), or None:
    one look at the partial index `request_deadline_due`."""
    return RoleRequest.objects.filter(status=RequestStatus.PENDING_APPROVAL).aggregate(
        due=Min("approval_deadline")
    )["due"]


def lapse_batch(now: datetime, limit: int) -> int:
    """The time engine's batch: lapse up to `limit` requests due at `now`, claimed so that two
    workers never take the same one, in one transaction. How many."""
    return decided.requests_lapse_due(now=now, limit=limit)


def lapse_due(now: datetime | None = None, batch: int = 500) -> int:
    """Record the lapse of every pending request whose deadline has passed, in batches until
    none is due (the sweep, and tests without a worker). How many."""
    now = now or timezone.now()
    total = 0
    while did := lapse_batch(now, batch):
        total += did
    return total


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
