"""The vocabulary of the domain: kinds of scope, role and assignment, request actions and
statuses (the Microsoft Graph PIM words), and the shape of the resource tree's paths.

Plain values with no queries; `assignments.models` re-exports them, so callers import them
from there.
"""

from datetime import timedelta

from django.db import models

MINIMUM_DURATION = timedelta(minutes=5)


class ScopeKind(models.TextChoices):
    ROOT = "root", "Directory"
    MANAGEMENT_GROUP = "management_group", "Management group"
    SUBSCRIPTION = "subscription", "Subscription"
    RESOURCE_GROUP = "resource_group", "Resource group"
    RESOURCE = "resource", "Resource"


SCOPE_KIND_LABELS = dict(ScopeKind.choices)


def scope_label(name: str, kind: str) -> str:
    """How pages name a scope (`str(scope)`), from its columns: its name, after its kind below
    the root ("Subscription Payments"). Menus of many scopes build it without the models."""
    return name if kind == ScopeKind.ROOT else f"{SCOPE_KIND_LABELS[kind]} {name}"


PATH_SEGMENTS = {
    ScopeKind.MANAGEMENT_GROUP: "managementGroups",
    ScopeKind.SUBSCRIPTION: "subscriptions",
    ScopeKind.RESOURCE_GROUP: "resourceGroups",
    ScopeKind.RESOURCE: "resources",
}

# Which kinds of scope may sit below which.
ALLOWED_CHILDREN = {
    ScopeKind.ROOT: {ScopeKind.MANAGEMENT_GROUP, ScopeKind.SUBSCRIPTION},
    ScopeKind.MANAGEMENT_GROUP: {ScopeKind.MANAGEMENT_GROUP, ScopeKind.SUBSCRIPTION},
    ScopeKind.SUBSCRIPTION: {ScopeKind.RESOURCE_GROUP},
    ScopeKind.RESOURCE_GROUP: {ScopeKind.RESOURCE},
    ScopeKind.RESOURCE: set(),
}

ROOT_PATH = "/"


def ancestor_paths(path: str) -> list[str]:
    """'/subscriptions/s1/resourceGroups/rg1/' → ['/', '/subscriptions/s1/', '/subscriptions/…']."""
    segments = [segment for segment in path.strip("/").split("/") if segment]
    paths = [ROOT_PATH]
    for end in range(2, len(segments) + 1, 2):
        paths.append("/" + "/".join(segments[:end]) + "/")
    return paths


class RoleKind(models.TextChoices):
    DIRECTORY = "directory", "Directory role"
    RESOURCE = "resource", "Resource role"


class NotificationEvent(models.TextChoices):
    ELIGIBLE_ASSIGNED = "eligible_assigned", "Role assignment made eligible"
    ACTIVE_ASSIGNED = "active_assigned", "Role assignment made active"
    ACTIVATED = "activated", "Eligible member activates the role"


class RecipientKind(models.TextChoices):
    ADMIN = "admin", "Role assignment alert (administrators)"
    ASSIGNEE = "assignee", "Notification to the assigned user (assignee / requester)"
    APPROVER = "approver", "Request to approve (approvers)"


class AssignmentKind(models.TextChoices):
    ELIGIBLE = "eligible", "Eligible"
    ACTIVE = "active", "Active"


class RequestAction(models.TextChoices):
    ADMIN_ASSIGN = "admin_assign", "Assign (administrator)"
    ADMIN_REMOVE = "admin_remove", "Remove (administrator)"
    ADMIN_UPDATE = "admin_update", "Update (administrator)"
    ADMIN_EXTEND = "admin_extend", "Extend (administrator)"
    ADMIN_RENEW = "admin_renew", "Renew (administrator)"
    SELF_ACTIVATE = "self_activate", "Activate"
    SELF_DEACTIVATE = "self_deactivate", "Deactivate"
    SELF_EXTEND = "self_extend", "Extend"
    SELF_RENEW = "self_renew", "Renew"


class RequestStatus(models.TextChoices):
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    SCHEDULED = "scheduled", "Scheduled"
    PROVISIONED = "provisioned", "Provisioned"
    DENIED = "denied", "Denied"
    CANCELED = "canceled", "Canceled"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"
    FAILED = "failed", "Failed"


OPEN_STATUSES = [RequestStatus.PENDING_APPROVAL, RequestStatus.SCHEDULED]
