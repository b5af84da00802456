"""Who may see and change users and groups in the portal (the guard rails of Entra ID).

- Viewing the Users and Groups pages: User Administrators and Global Administrators
  (users.manage), and directory viewers (Global Reader, Security Reader, Privileged Role
  Administrator...: directory.view), read-only.
- Changing a user or a group's membership: users.manage. A *protected* user — a superuser, or
  anyone who holds or is eligible for a role that grants directory.manage (Global
  Administrator, Privileged Role Administrator), directly or through a group, now or later —
  is changed (edited, deactivated, MFA reset, groups changed) only by an actor who also holds
  directory.manage: a Global Administrator.
- A *role-assignable* group — eligible or active for a role that grants directory.manage — has
  its membership changed only by a Global or Privileged Role Administrator (directory.manage),
  since a new member is a new administrator.
- Nobody deactivates themselves or resets their own MFA here.
- Fields the identity provider owns are read-only (see `provider_owned_fields`).
"""

from django.contrib.auth.models import Group
from django.db.models import Exists, OuterRef, Q

from assignments import authz
from assignments.catalog import Perm
from assignments.models import Assignment, Role
from pim_portal.actor import Actor
from pim_portal.models import Source

# The provider owns these fields of its users (username, names, e-mail; SCIM also `active`).
PROVIDER_USER_FIELDS = {
    Source.SCIM: ("username", "display_name", "first_name", "last_name", "email", "is_active"),
    Source.OIDC: ("username", "display_name", "first_name", "last_name", "email"),
}
WHERE_TO_CHANGE = {
    Source.SCIM: "This user is provisioned by SCIM from your identity provider: change their "
    "username, name, e-mail and whether they are active there (a change made here would be "
    "overwritten at the next sync).",
    Source.OIDC: "This user signs in with single sign-on: change their username, name and "
    "e-mail in your identity provider; the portal takes them from the provider at each sign-in.",
}
GROUP_WHERE_TO_CHANGE = {
    Source.SCIM: "This group is provisioned by SCIM: change its members in your identity provider.",
    Source.OIDC: "This group comes from your identity provider's groups claim: change its "
    "members there; they are updated here at each member's sign-in.",
}


def provider_owned_fields(user) -> tuple[str, ...]:
    return PROVIDER_USER_FIELDS.get(user.source, ())


def group_source(group) -> str:
    # The reverse one-to-one raises an AttributeError subclass when there is none.
    identity = getattr(group, "identity", None)
    return identity.source if identity is not None else Source.LOCAL


def is_provider_group(group) -> bool:
    return group_source(group) != Source.LOCAL


def _managing_role_ids() -> list[int]:
    """Roles granting directory.manage (Global and Privileged Role Administrator, and any
    custom role that does): their holders administer the portal."""
    return [
        pk
        for pk, permissions in Role.objects.values_list("pk", "permissions")
        if Perm.MANAGE_DIRECTORY in (permissions or [])
    ]


def _managing_assignments(role_ids=None):
    """Eligible or active assignments of a managing role, in force now or starting later."""
    role_ids = _managing_role_ids() if role_ids is None else role_ids
    return Assignment.objects.not_ended().filter(role__in=role_ids)


def is_protected(user) -> bool:
    """A superuser, or holding or eligible for a role that grants directory.manage."""
    if user.is_superuser:
        return True
    groups = Group.objects.filter(user=user).values("pk")
    return (
        _managing_assignments()
        .filter(Q(principal_user=user) | Q(principal_group__in=groups))
        .exists()
    )


def is_role_assignable(group) -> bool:
    """Eligible or active (now or later) for a role that grants directory.manage."""
    return _managing_assignments().filter(principal_group=group).exists()


def role_assignable_annotation():
    """For group lists: `Exists(...)` of the rule above, one subquery for every row."""
    return Exists(_managing_assignments().filter(principal_group=OuterRef("pk")))


# --- Viewing ---------------------------------------------------------------------------------


def may_view_people(grants: authz.Grants) -> bool:
    return grants.can_manage_users() or grants.can_view_directory()


def require_view_people(actor, grants: authz.Grants | None = None) -> authz.Grants:
    grants = grants if grants is not None else authz.grants_for(actor)
    if not may_view_people(grants):
        authz.deny(
            actor,
            what="view users and groups: only User Administrators, Global Administrators and "
            "directory readers may",
        )
    return grants


# --- Changing --------------------------------------------------------------------------------


def require_manage_users(actor, grants: authz.Grants | None = None, *, what: str):
    grants = grants if grants is not None else authz.grants_for(actor)
    if not grants.can_manage_users():
        authz.deny(actor, what=f"{what}: only a User Administrator or Global Administrator may")
    return grants


def require_change_user(actor, user, grants: authz.Grants | None = None, *, what: str):
    """users.manage, and directory.manage too when the user is protected."""
    actor = Actor.of(actor)
    grants = require_manage_users(actor, grants, what=what)
    if not actor.is_system and is_protected(user) and not grants.can_manage_directory():
        authz.deny(
            actor,
            what=f"{what}: {user.get_username()!r} holds or is eligible for an administrator "
            "role (Global or Privileged Role Administrator); only a Global Administrator may",
            target=user,
        )
    return grants


def require_not_self(actor, user, *, what: str) -> None:
    actor = Actor.of(actor)
    if not actor.is_system and actor.pk == user.pk:
        authz.deny(actor, what=f"{what}: nobody does this to their own account", target=user)


def require_change_membership(actor, group, users, grants: authz.Grants | None = None):
    """The rules for adding or removing `users` as members of `group`."""
    actor = Actor.of(actor)
    grants = grants if grants is not None else authz.grants_for(actor)
    what = f"change the members of the group {group.name!r}"
    if actor.is_system:
        return grants
    if is_role_assignable(group):
        if not grants.can_manage_directory():
            authz.deny(
                actor,
                what=f"{what}: it is role-assignable (eligible or active for an administrator "
                "role), so only a Global or Privileged Role Administrator may",
                target=group,
            )
        return grants
    require_manage_users(actor, grants, what=what)
    for user in users:
        require_change_user(actor, user, grants, what=what)
    return grants
