"""The timeline of a request, as its page shows it: requested, each decision with its reason,
the outcome (read from the clock), and when the assignment it made is in force and ends."""

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from approvals.models import ApprovalDecision
from assignments.models import RequestStatus, RoleRequest
from audit.models import AuditEvent


def _who(user) -> str:
    return str(user) if user is not None else "someone"


@dataclass
class TimelineEntry:
    at: datetime
    title: str
    actor: str = ""
    text: str = ""
    tone: str = "secondary"
    upcoming: bool = False
    extra: dict = field(default_factory=dict)


def _outcome_entry(request: RoleRequest, status: str, decisions, now) -> TimelineEntry | None:
    """How the request ended (or when it will lapse), when its decisions do not say it."""
    completed = request.completed_at or now
    if status == RequestStatus.CANCELED:
        return TimelineEntry(at=completed, title="Canceled", actor=_who(request.completed_by))
    if status == RequestStatus.EXPIRED:
        return TimelineEntry(
            # Lapsed at its deadline, whether or not a job has recorded it yet.
            at=request.completed_at or request.approval_deadline or now,
            title="Lapsed",
            text="Not decided within the approval window.",
            tone="warning",
        )
    if status == RequestStatus.FAILED:
        return TimelineEntry(
            at=completed, title="Could not be carried out", text=request.status_note
        )
    if status == RequestStatus.DENIED and all(d.is_approval for d in decisions):
        return TimelineEntry(at=completed, title="Denied", text=request.status_note, tone="danger")
    if status == RequestStatus.PENDING_APPROVAL and request.approval_deadline:
        return TimelineEntry(
            at=request.approval_deadline,
            title="Lapses if not decided",
            tone="warning",
            upcoming=True,
        )
    return None


_MADE_AN_ASSIGNMENT = (
    RequestStatus.PROVISIONED,
    RequestStatus.SCHEDULED,
    RequestStatus.REVOKED,
    RequestStatus.CANCELED,
)


def _assignment_entries(request: RoleRequest, status: str, now) -> list[TimelineEntry]:
    """When the assignment the request made is (or was) in force, and when it ends."""
    assignment = request.result_assignment
    if assignment is None or status not in _MADE_AN_ASSIGNMENT or assignment.never_in_force:
        return []
    entries = [
        TimelineEntry(
            at=assignment.start,
            title="In force" if assignment.start <= now else "Scheduled to be in force",
            tone="success",
            upcoming=assignment.start > now,
        )
    ]
    if assignment.end is not None:
        entries.append(
            TimelineEntry(
                at=assignment.end,
                title="Ended" if assignment.end <= now else "Ends",
                actor=_who(assignment.ended_by) if assignment.ended_by_id else "",
                upcoming=assignment.end > now,
            )
        )
    return entries


_PROVISIONING = {
    "pim.connector.granted": (
        "Provisioned in {connector_name}",
        "{account} added to {target}",
        "success",
    ),
    "pim.connector.revoked": (
        "Deprovisioned in {connector_name}",
        "{account} taken out of {target}",
        "secondary",
    ),
    "pim.connector.provisioning_failed": ("Provisioning failed in {connector_name}", "", "danger"),
}


def _provisioning_entries(request: RoleRequest) -> list[TimelineEntry]:
    """What the connectors did in other systems for the assignment the request made (their
    audit events name the request)."""
    if request.result_assignment_id is None:
        return []
    events = AuditEvent.objects.filter(
        role_request_id=request.pk, action__in=list(_PROVISIONING)
    ).only("created_at", "action", "actor_name", "after", "message")
    entries = []
    for event in events.order_by("created_at", "pk"):
        title, text, tone = _PROVISIONING[event.action]
        details = {"connector_name": "", "account": "", "target": "", **(event.after or {})}
        entries.append(
            TimelineEntry(
                at=event.created_at,
                title=title.format(**details),
                actor=event.actor_name,
                text=event.message or text.format(**details),
                tone=tone,
            )
        )
    return entries


def request_timeline(
    request: RoleRequest, now: datetime | None = None, decisions: list | None = None
) -> list[TimelineEntry]:
    """Requested, each decision with its reason, the outcome, in force and ended; `decisions`:
    the request's decisions when the caller read them already."""
    now = now or timezone.now()
    status = request.status_at(now)
    if decisions is None:
        decisions = list(ApprovalDecision.objects.filter(request=request))
    entries = [
        TimelineEntry(
            at=request.created_at,
            title=f"Requested: {request.get_action_display().lower()}",
            actor=_who(request.requested_by),
            text=request.justification,
            tone="primary",
        ),
        *(
            TimelineEntry(
                at=decision.decided_at,
                title=decision.get_decision_display(),
                actor=decision.approver_name,
                text=decision.justification,
                tone="success" if decision.is_approval else "danger",
            )
            for decision in decisions
        ),
    ]
    outcome = _outcome_entry(request, status, decisions, now)
    if outcome is not None:
        entries.append(outcome)
    entries += _assignment_entries(request, status, now)
    entries += _provisioning_entries(request)
    return sorted(entries, key=lambda e: (e.upcoming, e.at))
