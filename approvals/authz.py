"""Who may decide a request waiting for approval, and who may see it. Built on
assignments.authz, which answers everything else.

- A self-activation is decided by the users and groups named as approvers in the role's
  effective settings; when none are named, by the role's in-force administrators.
- Extend and renew requests are decided by the role's administrators at the request's scope.
- Nobody decides their own request.
"""

from collections import namedtuple

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import BooleanField, Exists, ExpressionWrapper, F, OuterRef, Q, Subquery
from django.db.models.lookups import StartsWith

from approvals.models import ApprovalDecision
from assignments import authz
from assignments.catalog import Perm
from assignments.models import (
    RequestAction,
    RoleKind,
    RolePolicy,
    RolePolicyGroupObjectPermission,
    RolePolicyUserObjectPermission,
    RoleRequest,
    ancestor_paths,
)
from assignments.queries import APPROVE_PERMISSION, attach_people

DECIDED_BY_APPROVERS = [RequestAction.SELF_ACTIVATE]
DECIDED_BY_ADMINISTRATORS = [RequestAction.SELF_EXTEND, RequestAction.SELF_RENEW]
DECIDABLE_ACTIONS = DECIDED_BY_APPROVERS + DECIDED_BY_ADMINISTRATORS


# --- Who decides ---------------------------------------------------------------------------

_PolicyRow = namedtuple("_PolicyRow", "pk path depth has_approvers user_approves")


def user_permissions(user=None):
    rows = RolePolicyUserObjectPermission.objects.filter(
        content_object=OuterRef("pk"), permission__codename=APPROVE_PERMISSION
    )
    return rows.filter(user=user) if user is not None else rows


def group_permissions(user=None):
    rows = RolePolicyGroupObjectPermission.objects.filter(
        content_object=OuterRef("pk"), permission__codename=APPROVE_PERMISSION
    )
    return rows.filter(group__user=user) if user is not None else rows


def policy_index(role_ids, user) -> dict[int, list[_PolicyRow]]:
    """One query: the roles' policies, whether each names approvers, whether `user` is one."""
    rows = (
        RolePolicy.objects.filter(role_id__in=set(role_ids))
        .annotate(
            named_users=Exists(user_permissions()),
            named_groups=Exists(group_permissions()),
            by_user=Exists(user_permissions(user)),
            by_group=Exists(group_permissions(user)),
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


def is_requester(user, request: RoleRequest) -> bool:
    return user.pk in (request.requested_by_id, request.principal_user_id)


def may_decide_indexed(user, request: RoleRequest, grants: authz.Grants, index) -> bool:
    if is_requester(user, request) or not user.is_active:
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
    # Kept on the request object: a request's page asks once to let the viewer in and again
    # to offer the decision, and each answer reads the role's settings and their approvers.
    asked = request.__dict__.get(_MAY_DECIDE)
    if asked is not None and asked[0] == user.pk:
        return asked[1]
    grants = grants or authz.grants_for(user)
    answer = may_decide_indexed(user, request, grants, policy_index([request.role_id], user))
    request.__dict__[_MAY_DECIDE] = (user.pk, answer)
    return answer


_MAY_DECIDE = "_pim_may_decide"


# --- The same answers in SQL, for lists and counts (no query per request) -----------------

EFFECTIVE_POLICY = "effective_policy_id"


def effective_policy_id():
    """The pk of a request's effective settings, as `RolePolicy.objects.effective_for` picks
    them (the most specific along the scope's ancestry; a directory role's own), for annotate."""
    along = Q(scope__isnull=True) | (
        ~Q(role__kind=RoleKind.DIRECTORY) & Q(StartsWith(OuterRef("scope__path"), F("scope__path")))
    )
    return Subquery(
        RolePolicy.objects.filter(along, role=OuterRef("role"))
        .order_by(F("scope__depth").desc(nulls_last=True))
        .values("pk")[:1]
    )


def _any(conditions: list[Q]) -> Q | None:
    combined = None
    for condition in conditions:
        combined = condition if combined is None else combined | condition
    return combined


def manages_condition(grants: authz.Grants) -> Q | None:
    """`grants.can_manage_role(request.role, request.scope)` as a condition on requests."""
    conditions = []
    if grants.can_manage_directory():
        conditions.append(Q(role__kind=RoleKind.DIRECTORY))
    below = _any([Q(scope__path__startswith=p) for p in grants.top_paths(Perm.MANAGE_RESOURCES)])
    if below is not None:
        conditions.append(~Q(role__kind=RoleKind.DIRECTORY) & below)
    return _any(conditions)


def with_effective_policy(requests):
    """Requests annotated with their effective settings' pk (a subquery per request)."""
    return requests.annotate(**{EFFECTIVE_POLICY: effective_policy_id()})


def role_policies() -> list[tuple[int, int, str, str | None]]:
    """(pk, role id, role kind, scope path or None) of every role's settings: a few rows
    (one per role, and the overrides at scopes)."""
    return list(RolePolicy.objects.values_list("pk", "role_id", "role__kind", "scope__path"))


def effective_policy_in(ids: set[int], policies=None) -> Q:
    """Requests whose effective settings (as `effective_policy_id` picks them: the deepest
    along the scope's ancestry; a directory role's own) are among `ids`, as conditions on the
    request's role and scope path. Built from the settings, which are few, so that a list
    of 1,500 pending requests compares columns instead of running a subquery for each."""
    policies = role_policies() if policies is None else policies
    overrides: dict[int, list[str]] = {}
    for _, role_id, kind, path in policies:
        if path is not None and kind != RoleKind.DIRECTORY:
            overrides.setdefault(role_id, []).append(path)
    condition = Q(pk__in=[])
    for pk, role_id, kind, path in policies:
        if pk not in ids or (path is not None and kind == RoleKind.DIRECTORY):
            continue  # not asked about; or an override, which a directory role never takes
        below = overrides.get(role_id, []) if kind != RoleKind.DIRECTORY else []
        if path is None:
            here, deeper = Q(role_id=role_id), below
        else:
            here = Q(role_id=role_id, scope__path__startswith=path)
            deeper = [other for other in below if other != path and other.startswith(path)]
        for other in deeper:  # a more specific override takes the request there
            here &= ~Q(scope__path__startswith=other)
        condition |= here
    return condition


def named_approver_policies(user) -> tuple[set[int], set[int]]:
    """(settings that name any approver, settings that name the user, directly or by group):
    one query, over the settings rather than the requests, so that a condition on thousands of
    requests compares ids instead of searching the permission tables row by row."""
    approve = Subquery(Permission.objects.filter(codename=APPROVE_PERMISSION).values("pk")[:1])
    memberships = get_user_model().groups.through.objects.filter(
        user_id=user.pk, group_id=OuterRef("group_id")
    )
    by_user = (
        RolePolicyUserObjectPermission.objects.filter(permission_id=approve)
        .annotate(mine=ExpressionWrapper(Q(user_id=user.pk), output_field=BooleanField()))
        .values_list("content_object_id", "mine")
    )
    by_group = (
        RolePolicyGroupObjectPermission.objects.filter(permission_id=approve)
        .annotate(mine=Exists(memberships))
        .values_list("content_object_id", "mine")
    )
    named, mine = set(), set()
    for policy_id, is_mine in by_user.union(by_group, all=True):
        named.add(policy_id)
        if is_mine:
            mine.add(policy_id)
    return named, mine


def decidable_condition(user, grants: authz.Grants, named=None) -> Q | None:
    """`may_decide(user, request, grants)` as a condition on requests (on their action,
    role, scope path and people); None when the user decides nothing at all.

    `named`: `named_approver_policies(user)`, when the caller has read it already."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    named, mine = named if named is not None else named_approver_policies(user)
    manages = manages_condition(grants)
    if manages is None and not mine:
        return None  # named approver nowhere, administrator of nothing: most people
    policies = role_policies() if (mine or named) else []
    by_approvers = effective_policy_in(mine, policies) if mine else Q(pk__in=[])
    if manages is not None:
        by_approvers |= ~effective_policy_in(named, policies) & manages if named else manages
    decided_by = Q(action__in=DECIDED_BY_APPROVERS) & by_approvers
    if manages is not None:
        decided_by |= Q(action__in=DECIDED_BY_ADMINISTRATORS) & manages
    return decided_by & ~Q(requested_by=user) & ~Q(principal_user=user)


def decidable_by(requests, user, grants: authz.Grants):
    """The requests (whatever their state) the user may decide: one query, whatever the rows,
    after one over the settings (`named_approver_policies`)."""
    condition = decidable_condition(user, grants)
    if condition is None:
        return requests.none()
    return requests.filter(condition)


def is_named_approver(user) -> bool:
    """Whether the user is named as an approver in any role's settings, directly or by group."""
    return bool(named_approver_policies(user)[1])


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
    if is_requester(user, request):
        return True
    grants = grants or authz.grants_for(user)
    if grants.can_manage_directory() or grants.can_manage_role(request.role, request.scope):
        return True
    if may_decide(user, request, grants):
        return True
    return ApprovalDecision.objects.filter(request=request, approver=user).exists()


def request_for_viewer(user, request_id, grants: authz.Grants | None = None) -> RoleRequest:
    """The request when the user may see it; otherwise a 404, audited (ids do not leak)."""
    # Role and scope joined: a join of eight tables took PostgreSQL 9 to 15 ms to plan, for
    # one row. Its people (often one person, often the viewer) from one query.
    request = (
        RoleRequest.objects.select_related("role", "scope")
        .prefetch_related("principal_group", "target_assignment", "result_assignment")
        .filter(pk=request_id)
        .first()
    )
    if request is not None:
        attach_people([request], "principal_user", "requested_by", "completed_by", known=[user])
    if request is not None and may_view(user, request, grants):
        return request
    authz.deny(user, what=f"view request {request_id}", target=request, not_found=True)


def refuse_decision(actor, request_id, request: RoleRequest | None, message: str):
    """Audit a decision the actor may not make, and refuse it (403), through authz.deny."""
    authz.deny(
        actor,
        what=message,
        target=request,
        principal=request.principal_name if request else "",
        role=request.role.name if request else "",
        scope=request.scope.path if request else "",
        role_request_id=request.pk if request else None,
    )


NOT_YOURS = "Request #{} is not one you may decide."


def require_may_decide(actor, request_id, request: RoleRequest | None, grants=None) -> None:
    """Refuse (audited, PermissionDenied) anyone who may not decide the request."""
    if request is None:
        refuse_decision(
            actor, request_id, None, f"Request #{request_id} is not one you may decide."
        )
    if is_requester(actor, request):
        refuse_decision(actor, request_id, request, "You cannot decide your own request.")
    if not may_decide(actor, request, grants):
        refuse_decision(
            actor, request_id, request, f"Request #{request_id} is not one you may decide."
        )
