"""An audit event in the shape of Microsoft Graph's `directoryAudit`, for SIEMs.

Parsers written for Entra's audit logs (Sentinel's AuditLogs, Splunk's and Elastic's Entra
add-ons) read these field names, so the portal's events land in the columns they already
know. The mapping is a pure function of the recorded, hashed event: it reads no other row,
so the same event gives the same document every time it is sent (the stream sends at least
once, and `id` is what a SIEM deduplicates on).

Graph's conventions kept: times in UTC with a `Z`; `result` is `success` or `failure`;
`operationType` is Add, Update, Delete or Other; a user or an app initiates (the system
"is considered an app"); `modifiedProperties` values are JSON text; `additionalDetails` are
key/value strings.
"""

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from audit.logdisplay import describe
from audit.models import AuditEvent
from pim_portal.actor import SYSTEM_NAME

LOGGED_BY_SERVICE = "PIM Portal"

# Names the `id` of every event; fixed forever, or ids change between two sends.
EVENT_NAMESPACE = uuid.UUID("6f1c1d2e-8a57-4b4e-9a3c-5d0f1c2b7e90")

# The noun of an action code (`pim.<noun>.<verb>`) -> Graph's category.
CATEGORIES = {
    "assignment": "RoleManagement",
    "request": "RoleManagement",
    "role": "RoleManagement",
    "policy": "RoleManagement",
    "scope": "ResourceManagement",
    "user": "UserManagement",
    "group": "GroupManagement",
    "scim": "ProvisioningManagement",
    "connector": "ProvisioningManagement",  # grants and revocations in other systems, drift
    "api_token": "ApplicationManagement",  # the credentials of programs calling the API
    "review": "Policy",
    "webhook": "ApplicationManagement",
    "bootstrap": "DirectoryManagement",
}
# `pim.security.*` splits by what was checked: the whole verb first, then its first word.
SECURITY_CATEGORIES = {
    "signin": "Authentication",
    "sso": "Authentication",
    "token": "Authentication",
    "mfa_failed": "Authentication",
    "mfa_expired": "Authentication",
    "mfa": "UserManagement",  # enrolling, removing, resetting devices: the user's security info
    "emergency": "Authentication",  # break-glass sign-ins and their follow-up
}
SECURITY_DEFAULT_CATEGORY = "Authorization"  # forbidden, csrf_failed, foreign_object...

# The verb of an action code, or its last word (`member_removed`) -> Graph's operationType.
ADD_VERBS = {"created", "added", "enrolled", "started", "activated", "scheduled", "submitted"}
ADD_VERBS |= {"opened", "granted"}
UPDATE_VERBS = {"updated", "changed", "renamed", "moved", "extended", "renewed", "stopped"}
UPDATE_VERBS |= {"approved", "recorded", "denied", "canceled", "expired", "decided"}
UPDATE_VERBS |= {"completed", "applied", "resolved", "closed"}
DELETE_VERBS = {"removed", "deleted", "ended", "deactivated", "reset", "pruned", "revoked"}
# A verb naming a refusal or a failure (itself, or as `<what>_<verb>`): result "failure".
FAILURE_VERBS = {"failed", "refused", "forbidden", "locked", "foreign_object"}

# Model labels -> Graph's targetResource type.
TARGET_TYPES = {
    "pim_portal.user": "User",
    "auth.group": "Group",
    "assignments.role": "Role",
    "assignments.rolepolicy": "Policy",
    "assignments.scope": "Scope",
    "assignments.assignment": "RoleAssignment",
    "assignments.rolerequest": "Request",
    "reviews.accessreview": "AccessReview",
    "reviews.reviewinstance": "AccessReview",
    "connectors.connector": "Connector",
    "connectors.mapping": "ConnectorMapping",
    "connectors.provisioning": "Provisioning",
    "connectors.driftfinding": "DriftFinding",
    "connectors.webhooksubscription": "WebhookSubscription",
}


def _verb(action: str) -> str:
    return action.rsplit(".", 1)[-1]


def _noun(action: str) -> str:
    parts = action.split(".")
    return parts[1] if len(parts) > 2 else parts[-1]


def is_failure(action: str) -> bool:
    verb = _verb(action)
    return any(verb == word or verb.endswith(f"_{word}") for word in FAILURE_VERBS)


OPERATIONS = (("Add", ADD_VERBS), ("Update", UPDATE_VERBS), ("Delete", DELETE_VERBS))


def operation_type(action: str) -> str:
    if is_failure(action):
        return "Other"
    verb = _verb(action)
    for word in (verb, verb.rsplit("_", 1)[-1]):
        for operation, verbs in OPERATIONS:
            if word in verbs:
                return operation
    return "Other"


def category(action: str) -> str:
    noun = _noun(action)
    if noun == "security":
        verb = _verb(action)
        topic = SECURITY_CATEGORIES.get(verb) or SECURITY_CATEGORIES.get(verb.split("_", 1)[0])
        return topic or SECURITY_DEFAULT_CATEGORY
    return CATEGORIES.get(noun, "Other")


def graph_time(moment: datetime) -> str:
    """UTC, microseconds, `Z`: what Graph's DateTimeOffset and RFC 5424's TIMESTAMP both take."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_id(event: AuditEvent) -> str:
    """Stable for the event's whole life (sealed or not), the same on every send."""
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{event.pk}:{event.created_at.isoformat()}"))


def _json_text(value: Any) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, sort_keys=True)


def _as_properties(values: Any) -> dict:
    if values is None:
        return {}
    if isinstance(values, dict):
        return values
    return {"value": values}  # a list or a scalar recorded whole


def modified_properties(before: Any, after: Any) -> list[dict]:
    """Each property that differs, as JSON text; null on the side where it is absent."""
    old, new = _as_properties(before), _as_properties(after)
    names = list(new) + [name for name in old if name not in new]
    changed = []
    for name in names:
        if name in old and name in new and old[name] == new[name]:
            continue
        changed.append(
            {
                "displayName": str(name),
                "oldValue": _json_text(old[name]) if name in old else None,
                "newValue": _json_text(new[name]) if name in new else None,
            }
        )
    return changed


def _anonymous(event: AuditEvent) -> bool:
    """Nobody signed in, but someone asked: a failed sign-in, a refused form."""
    return (
        event.actor_id is None
        and event.actor_name in ("", SYSTEM_NAME)
        and bool(event.ip or event.http_request_id)
    )


def initiated_by(event: AuditEvent) -> dict:
    if event.actor_id is not None or _anonymous(event):
        known = event.actor_id is not None
        return {
            "user": {
                "id": str(event.actor_id) if known else None,
                "displayName": event.actor_name if known else None,
                "userPrincipalName": None,
                "ipAddress": event.ip or "",
            },
            "app": None,
        }
    return {
        "user": None,
        "app": {
            "appId": None,
            "displayName": event.actor_name or SYSTEM_NAME,
            "servicePrincipalId": None,
            "servicePrincipalName": LOGGED_BY_SERVICE,
        },
    }


def target_resources(event: AuditEvent) -> list[dict]:
    changes = modified_properties(event.before, event.after)
    if not event.target_type and not changes:
        return []
    return [
        {
            "id": event.target_id or None,
            "displayName": event.target_repr or None,
            "type": TARGET_TYPES.get(event.target_type, "Other"),
            "userPrincipalName": None,
            "modifiedProperties": changes,
        }
    ]


def additional_details(event: AuditEvent) -> list[dict]:
    details = [
        ("seq", event.seq),
        ("hash", event.hash),
        ("prevHash", event.prev_hash),
        ("action", event.action),
        ("principal", event.principal),
        ("role", event.role),
        ("scope", event.scope),
        ("requestId", event.role_request_id),
        ("targetType", event.target_type),
        ("message", event.message),
    ]
    return [{"key": key, "value": str(value)} for key, value in details if value not in (None, "")]


def directory_audit(event: AuditEvent) -> dict:
    """The event as a Graph `directoryAudit` document (field order as Graph's examples)."""
    failed = is_failure(event.action)
    return {
        "id": event_id(event),
        "category": category(event.action),
        "correlationId": event.http_request_id or event_id(event),
        "result": "failure" if failed else "success",
        "resultReason": event.message if failed else "",
        "activityDisplayName": describe(event.action),
        "activityDateTime": graph_time(event.created_at),
        "loggedByService": LOGGED_BY_SERVICE,
        "operationType": operation_type(event.action),
        "initiatedBy": initiated_by(event),
        "targetResources": target_resources(event),
        "additionalDetails": additional_details(event),
    }
