"""Which audit events become which webhook event types, and what a message says.

The audit log is the one source: every state change in the portal writes an event there in the
transaction of the change, so a webhook tells what the log tells, in chain order, once the
event is sealed. One audit event may be news of two kinds (an activation in force at once is a
request made and an assignment in force). A message follows Standard Webhooks' shape:

    {"type": "request.approved", "timestamp": "2026-12-02T14:40:00.123456Z", "data": {...}}

and its id (the `webhook-id` header) is fixed by the audit event and the type, the same on
every retry and every fan-out of that event.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.utils.dateparse import parse_datetime

from audit import graph
from audit.logdisplay import describe
from audit.models import AuditEvent


class EventType:
    REQUEST_CREATED = "request.created"
    REQUEST_APPROVED = "request.approved"
    REQUEST_DENIED = "request.denied"
    REQUEST_LAPSED = "request.lapsed"
    REQUEST_CANCELED = "request.canceled"
    ASSIGNMENT_IN_FORCE = "assignment.in_force"
    ASSIGNMENT_ENDED = "assignment.ended"
    ASSIGNMENT_REMOVED = "assignment.removed"
    PROVISIONING_FAILED = "provisioning.failed"
    DRIFT_FOUND = "drift.found"
    # Sent by "Send test event" only; no subscription chooses it.
    TEST = "webhook.test"


# (type, what the subscription form says of it), in the form's order.
EVENT_TYPES = [
    (EventType.REQUEST_CREATED, "Request created (submitted for approval, activated, scheduled)"),
    (EventType.REQUEST_APPROVED, "Request approved"),
    (EventType.REQUEST_DENIED, "Request denied"),
    (EventType.REQUEST_LAPSED, "Request lapsed (not decided in time)"),
    (EventType.REQUEST_CANCELED, "Request canceled"),
    (EventType.ASSIGNMENT_IN_FORCE, "Assignment in force (added, activated, started)"),
    (EventType.ASSIGNMENT_ENDED, "Assignment ended (its end time came)"),
    (EventType.ASSIGNMENT_REMOVED, "Assignment removed by an administrator"),
    (EventType.PROVISIONING_FAILED, "Provisioning to a connector failed"),
    (EventType.DRIFT_FOUND, "Drift found (access granted outside PIM)"),
]
TYPE_NAMES = [value for value, _ in EVENT_TYPES]


def _in_force_at_once(event: AuditEvent) -> bool:
    """An assignment added with a start already passed (a later start is told by
    `pim.assignment.started` when it comes)."""
    start = (event.after or {}).get("start")
    moment = parse_datetime(start) if isinstance(start, str) else start
    return moment is not None and moment <= event.created_at


def _activation_in_force(event: AuditEvent) -> bool:
    """An approved activation that is in force now (provisioned, not scheduled for later)."""
    after = event.after or {}
    return after.get("action") == "self_activate" and after.get("status") == "provisioned"


@dataclass(frozen=True)
class Rule:
    event_type: str
    when: Callable[[AuditEvent], bool] | None = None


# Audit action -> the event types it is news of.
RULES: dict[str, list[Rule]] = {
    "pim.request.submitted": [Rule(EventType.REQUEST_CREATED)],
    "pim.request.activated": [
        Rule(EventType.REQUEST_CREATED),
        Rule(EventType.ASSIGNMENT_IN_FORCE),
    ],
    "pim.request.scheduled": [Rule(EventType.REQUEST_CREATED)],
    "pim.request.approved": [
        Rule(EventType.REQUEST_APPROVED),
        Rule(EventType.ASSIGNMENT_IN_FORCE, _activation_in_force),
    ],
    "pim.request.denied": [Rule(EventType.REQUEST_DENIED)],
    "pim.request.expired": [Rule(EventType.REQUEST_LAPSED)],
    "pim.request.canceled": [Rule(EventType.REQUEST_CANCELED)],
    "pim.assignment.created": [Rule(EventType.ASSIGNMENT_IN_FORCE, _in_force_at_once)],
    "pim.assignment.started": [Rule(EventType.ASSIGNMENT_IN_FORCE)],
    "pim.assignment.ended": [Rule(EventType.ASSIGNMENT_ENDED)],
    "pim.assignment.removed": [Rule(EventType.ASSIGNMENT_REMOVED)],
    # Written by the connector engine.
    "pim.connector.provisioning_failed": [Rule(EventType.PROVISIONING_FAILED)],
    "pim.connector.drift_found": [Rule(EventType.DRIFT_FOUND)],
}
ACTIONS = sorted(RULES)


def event_types_of(event: AuditEvent) -> list[str]:
    """The webhook event types an audit event is news of (none for most actions)."""
    return [
        rule.event_type
        for rule in RULES.get(event.action, ())
        if rule.when is None or rule.when(event)
    ]


# Names every message id; fixed forever, or ids change between two fan-outs.
MESSAGE_NAMESPACE = uuid.UUID("3b0d7f0e-5a52-4f7e-9d2a-8c1b6e4f2a91")


def message_id(event: AuditEvent, event_type: str) -> str:
    """The `webhook-id` of the message telling `event_type` of this audit event."""
    name = f"{graph.event_id(event)}:{event_type}"
    return f"msg_{uuid.uuid5(MESSAGE_NAMESPACE, name).hex}"


def message_id_of_test() -> str:
    return f"msg_{uuid.uuid4().hex}"


def payload(event: AuditEvent, event_type: str) -> dict:
    """The message body: the type, when it happened, and the audit event's facts."""
    return {
        "type": event_type,
        "timestamp": graph.graph_time(event.created_at),
        "data": {
            "audit_event_id": graph.event_id(event),
            "seq": event.seq,
            "action": event.action,
            "description": describe(event.action),
            "actor": event.actor_name,
            "principal": event.principal,
            "role": event.role,
            "scope": event.scope,
            "request_id": event.role_request_id,
            "target": {
                "type": event.target_type,
                "id": event.target_id,
                "name": event.target_repr,
            },
            "before": event.before,
            "after": event.after,
            "message": event.message,
        },
    }


def payload_of_test(subscription_name: str, at, actor_name: str) -> dict:
    return {
        "type": EventType.TEST,
        "timestamp": graph.graph_time(at),
        "data": {
            "subscription": subscription_name,
            "sent_by": actor_name,
            "message": "A test event from PIM Portal: the signature and the URL work.",
        },
    }
