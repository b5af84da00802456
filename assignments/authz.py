"""The one place that answers "may this user do X here?".

Permissions come only from assignments in force now (the rule of time), held directly or
through a group, at the scope asked about or above it. Views and services ask here;
templates read the answers. The `require_*` helpers audit the denial and raise.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from assignments.catalog import Perm
from assignments.models import ROOT_PATH, Assignment, Role, RoleRequest, Scope
from assignments.policy import EXTEND_WINDOW, RENEW_WINDOW
from audit import log as audit_log


@dataclass
class Grants:
    """The portal permissions one user holds, each with the scope path where it holds."""

    user: object
    pairs: list[tuple[str, str]] = field(default_factory=list)

    def has(self, permission: str, scope: Scope | str | None = None) -> bool:
        path = ROOT_PATH if scope is None else getattr(scope, "path", scope)
        return any(perm == permission and path.startswith(where) for perm, where in self.pairs)

    def has_anywhere(self, permission: str) -> bool:
        return any(perm == permission for perm, _ in self.pairs)

    def top_paths(self, permission: str) -> list[str]:
        """The highest scopes where the permission holds (none nested in another)."""
        paths = sorted({where for perm, where in self.pairs if perm == permission}, key=len)
        top: list[str] = []
        for path in paths:
            if not any(path.startswith(kept) for kept in top):
                top.append(path)
        return top

    # Questions the pages ask.
    def can_view_directory(self) -> bool:
        return self.has(Perm.VIEW_DIRECTORY)

    def can_manage_directory(self) -> bool:
        return self.has(Perm.MANAGE_DIRECTORY)

    def can_view_scope(self, scope: Scope) -> bool:
        return self.has(Perm.VIEW_RESOURCES, scope)

    def can_manage_scope(self, scope: Scope) -> bool:
        return self.has(Perm.MANAGE_RESOURCES, scope)

    def can_view_resources(self) -> bool:
        return self.has_anywhere(Perm.VIEW_RESOURCES)

    def can_view_role(self, role: Role, scope: Scope | None = None) -> bool:
        if role.is_directory_role:
            return self.can_view_directory()
        return self.has(Perm.VIEW_RESOURCES, scope)

    def can_manage_role(self, role: Role, scope: Scope | None = None) -> bool:
        if role.is_directory_role:
            return self.can_manage_directory()
        return self.has(Perm.MANAGE_RESOURCES, scope)


def grants_for(user, at: datetime | None = None) -> Grants:
    """One query: the permissions of every role the user holds active and in force at `at`.

    Eligibility grants nothing until it is activated.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return Grants(user=user)
    rows = (
        Assignment.objects.in_force(at)
        .active()
        .for_user(user)
        .values_list("role__permissions", "scope__path")
    )
    pairs = [(perm, path) for permissions, path in rows for perm in (permissions or [])]
    return Grants(user=user, pairs=pairs)


def request_grants(request) -> Grants:
    """The signed-in viewer's grants, computed once per request (views and navigation)."""
    if not hasattr(request, "_pim_grants"):
        request._pim_grants = grants_for(request.user)
    return request._pim_grants


def deny(user, *, what: str, target=None, not_found: bool = False):
    """Audit a refused action and raise 403 (or 404 where the object itself is private)."""
    audit_log.record(
        action="pim.security.forbidden",
        actor=user if getattr(user, "is_authenticated", False) else None,
        target=target,
        message=what,
    )
    if not_found:
        raise Http404(what)
    raise PermissionDenied(what)


def require_view_directory(user, grants: Grants | None = None) -> Grants:
    grants = grants or grants_for(user)
    if not grants.can_view_directory():
        deny(user, what="view directory roles")
    return grants


def require_view_scope(user, scope: Scope, grants: Grants | None = None) -> Grants:
    grants = grants or grants_for(user)
    if not grants.can_view_scope(scope):
        deny(user, what=f"view scope {scope.path}", target=scope, not_found=True)
    return grants


def require_view_role(user, role: Role, scope: Scope | None, grants: Grants | None = None):
    grants = grants or grants_for(user)
    if not grants.can_view_role(role, scope):
        deny(user, what=f"view {role} at {scope.path if scope else '/'}", target=role)
    return grants


def require_manage_role(user, role: Role, scope: Scope | None, grants: Grants | None = None):
    grants = grants or grants_for(user)
    if not grants.can_manage_role(role, scope):
        deny(user, what=f"manage {role} at {scope.path if scope else '/'}", target=role)
    return grants


def role_administrators(role: Role, scope: Scope):
    """Users who may manage the role's assignments at the scope, through in-force roles."""
    permission = Perm.MANAGE_DIRECTORY if role.is_directory_role else Perm.MANAGE_RESOURCES
    managing_roles = [r.pk for r in Role.objects.all() if permission in (r.permissions or [])]
    holders = Assignment.objects.in_force().active().filter(role__in=managing_roles)
    if not role.is_directory_role:
        holders = holders.at_or_above(scope)
    user_ids = holders.filter(principal_user__isnull=False).values("principal_user")
    group_ids = holders.filter(principal_group__isnull=False).values("principal_group")
    return (
        get_user_model()
        .objects.filter(Q(pk__in=user_ids) | Q(groups__in=group_ids), is_active=True)
        .distinct()
    )


# --- Self-service: what a user may do with their own assignments and requests --------------


def may_extend(user, assignment: Assignment, now: datetime | None = None) -> bool:
    """The user's own direct assignment (not an activation) in force, ending within 14 days."""
    now = now or timezone.now()
    return (
        assignment.principal_user_id == user.pk
        and assignment.activated_from_id is None
        and assignment.end is not None
        and now < assignment.end
        and assignment.end - now <= EXTEND_WINDOW
    )


def may_renew(user, assignment: Assignment, now: datetime | None = None) -> bool:
    """The user's own direct assignment (not an activation) that ended in the last 30 days."""
    now = now or timezone.now()
    return (
        assignment.principal_user_id == user.pk
        and assignment.activated_from_id is None
        and assignment.end is not None
        and now - RENEW_WINDOW <= assignment.end <= now
    )


def may_cancel(user, request: RoleRequest, grants: Grants | None = None) -> bool:
    """The requester, or a Privileged Role / Global Administrator in force."""
    if request.requested_by_id == user.pk:
        return True
    return (grants or grants_for(user)).can_manage_directory()
