"""The one place that answers "may this actor do X here?".

Permissions come only from assignments in force now (the rule of time), held directly or
through a group, at the scope asked about or above it. Views and services ask here; templates
read the answers. The system (a task, an access review, a connector) acts for a stated reason
and holds every grant: who may start such work is checked where it is configured.

- `grants_for(actor)` / `request_grants(request)`: what an actor holds;
- `require_*`: raise (audited) when an action is not allowed;
- loaders (`scope_for_viewer`, `role_for_viewer`, `assignment_for_manager`, `own_*`): the
  object or a refusal, so no view can forget the check;
- `may_*`: the self-service answers (extend, renew, deactivate, cancel);
- `deny`: the one way to refuse, audited.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Q, Subquery
from django.http import Http404
from django.utils import timezone

from assignments.catalog import Perm
from assignments.models import (
    ROOT_PATH,
    Assignment,
    AssignmentKind,
    Role,
    RoleRequest,
    Scope,
)
from assignments.policy import EXTEND_WINDOW, RENEW_WINDOW
from audit import log as audit_log
from pim_portal.actor import Actor
from pim_portal.params import positive_int


@dataclass
class Grants:
    """The portal permissions one actor holds, each with the scope path where it holds."""

    user: object
    pairs: list[tuple[str, str]] = field(default_factory=list)
    is_system: bool = False

    def has(self, permission: str, scope: Scope | str | None = None) -> bool:
        if self.is_system:
            return True
        path = ROOT_PATH if scope is None else getattr(scope, "path", scope)
        return any(perm == permission and path.startswith(where) for perm, where in self.pairs)

    def has_anywhere(self, permission: str) -> bool:
        return self.is_system or any(perm == permission for perm, _ in self.pairs)

    def top_paths(self, permission: str) -> list[str]:
        """The highest scopes where the permission holds (none nested in another)."""
        if self.is_system:
            return [ROOT_PATH]
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

    def can_manage_users(self) -> bool:
        return self.has(Perm.MANAGE_USERS)

    def can_manage_provisioning(self) -> bool:
        return self.has(Perm.MANAGE_PROVISIONING)

    def can_view_connectors(self) -> bool:
        """Connectors, their mappings, findings and webhooks: whoever may view directory roles."""
        return self.can_view_directory()

    def can_manage_connectors(self) -> bool:
        return self.has(Perm.MANAGE_CONNECTORS)

    def can_manage_anything(self) -> bool:
        return self.can_manage_directory() or self.has_anywhere(Perm.MANAGE_RESOURCES)

    def can_view_role(self, role: Role, scope: Scope | None = None) -> bool:
        if role.is_directory_role:
            return self.can_view_directory()
        return self.has(Perm.VIEW_RESOURCES, scope)

    def can_manage_role(self, role: Role, scope: Scope | None = None) -> bool:
        if role.is_directory_role:
            return self.can_manage_directory()
        return self.has(Perm.MANAGE_RESOURCES, scope)

    # What lists start from: `Assignment.objects.restrict(grants, "view")` reads these.
    def visible_role_kinds_and_paths(self, action: str = "view") -> tuple[bool, list[str]]:
        """(all directory roles?, the top scope paths of resource roles) for the action."""
        directory = Perm.VIEW_DIRECTORY if action == "view" else Perm.MANAGE_DIRECTORY
        resources = Perm.VIEW_RESOURCES if action == "view" else Perm.MANAGE_RESOURCES
        return self.has(directory), self.top_paths(resources)


def grants_for(who, at: datetime | None = None) -> Grants:
    """One query: the permissions of every role a user holds active and in force at `at`.

    Eligibility grants nothing until it is activated. The system holds every grant.
    """
    if isinstance(who, Actor):
        if who.is_system:
            return Grants(user=None, is_system=True)
        who = who.user
    if who is None or not who.is_authenticated or not who.is_active:
        return Grants(user=who)
    # Two index-friendly halves in one query: an OR over the group subquery made the database
    # read every active assignment to answer for one user.
    # The scope's path by its primary key for each row: joined, the planner hashed all of
    # the scopes for a user holding fifty active assignments.
    held = (
        Assignment.objects.in_force(at)
        .active()
        .order_by()
        .annotate(
            path=Subquery(Scope.objects.filter(pk=OuterRef("scope_id")).order_by().values("path"))
        )
    )
    fields = ("role__permissions", "path")
    rows = (
        held.filter(principal_user=who)
        .values_list(*fields)
        .union(held.filter(principal_group__user=who).values_list(*fields), all=True)
    )
    pairs = [(perm, path) for permissions, path in rows for perm in (permissions or [])]
    return Grants(user=who, pairs=pairs)


def request_grants(request) -> Grants:
    """The signed-in viewer's grants, computed once per request (views and navigation)."""
    if not hasattr(request, "_pim_grants"):
        request._pim_grants = grants_for(request.user)
    return request._pim_grants


def _grants(actor, grants: Grants | None) -> Grants:
    return grants if grants is not None else grants_for(actor)


def deny(
    actor,
    *,
    what: str,
    target=None,
    not_found: bool = False,
    action: str = "pim.security.forbidden",
    **context,
):
    """The one way to refuse: audit the refused action (with any `context` the audit log
    takes: principal, role, scope, role_request_id) and raise 403, or 404 where even the
    object's existence is private."""
    if isinstance(actor, Actor):
        actor = actor.user
    audit_log.record(
        action=action,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        target=target,
        message=what,
        **context,
    )
    if not_found:
        raise Http404(what)
    raise PermissionDenied(what)


def require_view_directory(actor, grants: Grants | None = None) -> Grants:
    grants = _grants(actor, grants)
    if not grants.can_view_directory():
        deny(actor, what="view directory roles")
    return grants


def require_view_scope(actor, scope: Scope, grants: Grants | None = None) -> Grants:
    grants = _grants(actor, grants)
    if not grants.can_view_scope(scope):
        deny(actor, what=f"view scope {scope.path}", target=scope, not_found=True)
    return grants


def require_view_role(actor, role: Role, scope: Scope | None, grants: Grants | None = None):
    grants = _grants(actor, grants)
    if not grants.can_view_role(role, scope):
        deny(actor, what=f"view {role} at {scope.path if scope else '/'}", target=role)
    return grants


def require_manage_role(actor, role: Role, scope: Scope | None, grants: Grants | None = None):
    grants = _grants(actor, grants)
    if not grants.can_manage_role(role, scope):
        deny(actor, what=f"manage {role} at {scope.path if scope else '/'}", target=role)
    return grants


def require_manage_anything(actor, grants: Grants | None = None, *, what: str) -> Grants:
    grants = _grants(actor, grants)
    if not grants.can_manage_anything():
        deny(actor, what=what)
    return grants


# --- Loaders: the object, or a refusal --------------------------------------------------------


def _missing(actor, what: str, foreign: bool = False):
    """A 404, audited; `foreign` when the object exists but is someone else's."""
    action = "pim.security.foreign_object" if foreign else "pim.security.forbidden"
    deny(actor, what=what, not_found=True, action=action)


def scope_for_viewer(actor, scope_id, grants: Grants | None = None) -> Scope:
    """A scope the actor may view; a 404 for one that does not exist or they may not see."""
    pk = positive_int(scope_id)
    scope = Scope.objects.filter(pk=pk).first() if pk else None
    if scope is None:
        _missing(actor, f"view scope {scope_id}")
    require_view_scope(actor, scope, grants)
    return scope


def role_for_viewer(
    actor, role_id, scope: Scope | None = None, grants: Grants | None = None, kind=None
) -> Role:
    """A role (of `kind`, when given) the actor may view at the scope; 404 when unknown."""
    pk = positive_int(role_id)
    roles = Role.objects.filter(kind=kind) if kind else Role.objects.all()
    role = roles.filter(pk=pk).first() if pk else None
    if role is None:
        raise Http404("No such role.")
    require_view_role(actor, role, scope, grants)
    return role


def role_for_manager(actor, role_id, scope: Scope | None = None, grants=None, kind=None) -> Role:
    """A role the actor may manage at the scope (its settings page); 404 when unknown."""
    role = role_for_viewer(actor, role_id, scope, grants, kind)
    require_manage_role(actor, role, scope, grants)
    return role


def assignment_for_manager(actor, assignment_id, grants: Grants | None = None) -> Assignment:
    """An assignment the actor may change: 404 when they may not even see it, else 403."""
    grants = _grants(actor, grants)
    pk = positive_int(assignment_id)
    assignment = Assignment.objects.with_related().filter(pk=pk).first() if pk else None
    if assignment is None or not grants.can_view_role(assignment.role, assignment.scope):
        _missing(actor, f"change assignment {assignment_id}")
    require_manage_role(actor, assignment.role, assignment.scope, grants)
    return assignment


def own_eligible(user, assignment_id, at: datetime | None = None) -> Assignment:
    """The user's eligible assignment in force (direct or through a group), else a 404 —
    audited as an attempt on someone else's when it exists."""
    from assignments.queries import eligible_assignments

    pk = positive_int(assignment_id)
    assignment = eligible_assignments(user, at).filter(pk=pk).first() if pk else None
    if assignment is None:
        # Someone else's is a security event; one's own that is not eligible or has ended is not.
        foreign = (
            bool(pk)
            and Assignment.objects.filter(pk=pk)
            .exclude(pk__in=Assignment.objects.for_user(user).values("pk"))
            .exists()
        )
        _missing(
            user, f"activate eligible assignment {assignment_id}, which is not theirs", foreign
        )
    return assignment


def own_activation(user, assignment_id) -> Assignment:
    """The user's own activation (made from an eligibility), else a 404, audited."""
    pk = positive_int(assignment_id)
    assignment = (
        Assignment.objects.with_related()
        .filter(
            pk=pk,
            principal_user=user,
            kind=AssignmentKind.ACTIVE,
            activated_from__isnull=False,
        )
        .first()
        if pk
        else None
    )
    if assignment is None:
        _missing(user, f"deactivate assignment {assignment_id}, which is not theirs")
    return assignment


def own_assignment(user, assignment_id) -> Assignment:
    """An assignment held by the user directly (not an activation), else a 404, audited."""
    pk = positive_int(assignment_id)
    assignment = (
        Assignment.objects.with_related()
        .filter(pk=pk, principal_user=user, activated_from__isnull=True)
        .first()
        if pk
        else None
    )
    if assignment is None:
        _missing(user, f"use assignment {assignment_id}, which is not theirs")
    return assignment


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


def directory_administrators():
    """Global and Privileged Role Administrators, active and in force (directly or through a
    group): who manages directory roles, and whom oversight mail goes to."""
    from assignments.catalog import GLOBAL_ADMINISTRATOR

    return role_administrators(Role.objects.get(name=GLOBAL_ADMINISTRATOR), Scope.objects.root())


def own_request(user, request_id) -> RoleRequest:
    """A request the user made, else a 404, audited."""
    pk = positive_int(request_id)
    request = (
        RoleRequest.objects.with_related().filter(pk=pk, requested_by=user).first() if pk else None
    )
    if request is None:
        _missing(user, f"use request {request_id}, which is not theirs")
    return request


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


def may_activate(eligible: Assignment, *, activation, pending: bool, now: datetime) -> bool:
    """An eligible assignment in force, with no request waiting and no activation at its own
    scope (active at a narrower scope of a resource role, the rest can still be activated)."""
    return (
        eligible.is_in_force(now)
        and not pending
        and (activation is None or activation.scope_id != eligible.scope_id)
    )


def may_deactivate(user, assignment: Assignment) -> bool:
    """The user's own activation (made from an eligibility); never an administrator's
    assignment, which an administrator removes."""
    return (
        assignment.principal_user_id == user.pk
        and assignment.kind == AssignmentKind.ACTIVE
        and assignment.activated_from_id is not None
    )


def may_cancel(actor, request: RoleRequest, grants: Grants | None = None) -> bool:
    """The requester, or a Privileged Role / Global Administrator in force (or the system)."""
    actor = Actor.of(actor)
    if not actor.is_system and request.requested_by_id == actor.pk:
        return True
    return _grants(actor, grants).can_manage_directory()


# --- The resource tree ---------------------------------------------------------------------


def _is_superuser(actor: Actor) -> bool:
    return actor.user is not None and actor.user.is_active and actor.user.is_superuser


def may_manage_tree(actor, scope: Scope | None, grants: Grants | None = None) -> bool:
    """Changing the tree below `scope` (None: the root): a superuser (the Django admin), the
    system, or resources.manage in force at that scope or above it."""
    actor = Actor.of(actor)
    return _is_superuser(actor) or _grants(actor, grants).has(Perm.MANAGE_RESOURCES, scope)


def require_manage_tree(actor, *scopes: Scope | None, grants: Grants | None = None) -> None:
    """Refuse (audited) unless the actor may change the tree below every scope given."""
    actor = Actor.of(actor)
    if _is_superuser(actor):
        return
    grants = _grants(actor, grants)  # read once, whatever the number of scopes
    for scope in scopes:
        if not grants.has(Perm.MANAGE_RESOURCES, scope):
            where = scope.path if scope is not None else ROOT_PATH
            deny(actor, what=f"change the scope tree below {where}", target=scope)
