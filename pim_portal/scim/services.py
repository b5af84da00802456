"""What SCIM provisioning changes: users and groups made, changed and deleted by the identity
provider, each change in the request's one transaction with its audit event, the token named as
the actor (`Actor.system('SCIM token "okta"')`).

Who owns what:
- SCIM may write any user but the portal's protected accounts (superusers and emergency access
  accounts), which are managed in the portal only; a user it writes becomes `source=scim`, with
  the provider's externalId.
- SCIM may write the groups it made and the groups the identity provider named at sign-in
  (`source` scim or oidc), never a group made in the portal, whose members are the portal
  administrators' decision (they may hold privileged roles).
- `active: false` deprovisions the user at once (assignments.services.deprovisioning); `true`
  reactivates the account and restores nothing.
- Deleting a user deprovisions it, removes its eligible assignments and its group memberships,
  and keeps the row inactive under a name that frees its userName: the audit trail names it
  (an audit event's actor cannot be deleted). SCIM answers 404 for it from then on.
- Deleting a group takes its members out (which ends the activations made through it) and ends
  its assignments; the row is deleted when no assignment or request ever named it, or else kept,
  emptied, under a name that frees its displayName.
"""

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from scim2_models import (
    ForbiddenException,
    InvalidValueException,
    NotFoundException,
    UniquenessException,
)

from assignments.models import Assignment, RoleRequest
from assignments.services import assignments_remove_many
from assignments.services.deprovisioning import (
    user_deprovision,
    user_eligibility_remove,
    user_reprovision,
)
from audit import log as audit_log
from pim_portal.actor import Actor
from pim_portal.models import GroupIdentity, Source

DELETED_PREFIX = "~deleted-"  # never a valid userName: "~" is refused by the validator
NAME_MAX = 150

User = get_user_model()


@dataclass
class UserFields:
    """A user as SCIM writes it (the whole new state: PUT and PATCH are applied first)."""

    username: str
    external_id: str = ""
    first_name: str = ""
    last_name: str = ""
    display_name: str = ""
    email: str = ""
    active: bool | None = None
    manager_id: int | None = None


@dataclass
class GroupFields:
    name: str
    external_id: str = ""
    member_ids: set[int] = field(default_factory=set)


# --- Reads ---------------------------------------------------------------------------------


def users():
    """The users SCIM sees: all but those it deleted."""
    return User.objects.exclude(username__startswith=DELETED_PREFIX)


def groups():
    """The groups SCIM sees: all but those it deleted and kept."""
    return Group.objects.exclude(name__startswith=DELETED_PREFIX)


def user_for_write(user_id) -> "User":
    """The user SCIM may change (locked), or a SCIM error: 404, or 403 for a protected account."""
    user = users().select_for_update().filter(pk=_pk(user_id)).first()
    if user is None:
        raise NotFoundException(detail=f"No user {user_id}.")
    if user.is_superuser or user.is_emergency_access:
        kind = "an emergency access account" if user.is_emergency_access else "a superuser"
        raise ForbiddenException(
            detail=f"{user.get_username()!r} is {kind} of the portal: it is managed in the "
            "portal only, never by provisioning."
        )
    return user


def group_for_write(group_id) -> Group:
    group = groups().select_for_update().filter(pk=_pk(group_id)).first()
    if group is None:
        raise NotFoundException(detail=f"No group {group_id}.")
    identity = GroupIdentity.objects.filter(group=group).first()
    if identity is None or identity.source == Source.LOCAL:
        raise ForbiddenException(
            detail=f"The group {group.name!r} was made in the portal: its members are managed "
            "in the portal only, never by provisioning."
        )
    return group


def _pk(value) -> int | None:
    try:
        pk = int(str(value))
    except (TypeError, ValueError):
        return None
    return pk if pk > 0 else None


# --- Validation ----------------------------------------------------------------------------


def _text(value, attribute: str, limit: int = NAME_MAX) -> str:
    value = (value or "").strip()
    if len(value) > limit:
        raise InvalidValueException(detail=f"{attribute} is longer than {limit} characters.")
    return value


def clean_user(fields: UserFields) -> UserFields:
    """Refuse what the portal cannot store, with the attribute named (400 invalidValue)."""
    fields.username = _text(fields.username, "userName")
    if not fields.username:
        raise InvalidValueException(detail="userName is required.")
    try:
        UnicodeUsernameValidator()(fields.username)
    except ValidationError:
        raise InvalidValueException(
            detail=f"userName {fields.username!r} may hold only letters, digits and @ . + - _"
        ) from None
    fields.external_id = _text(fields.external_id, "externalId", 255)
    fields.first_name = _text(fields.first_name, "name.givenName")
    fields.last_name = _text(fields.last_name, "name.familyName")
    fields.display_name = _text(fields.display_name, "displayName")
    fields.email = _text(fields.email, "emails.value", 254)
    if fields.email:
        try:
            validate_email(fields.email)
        except ValidationError:
            raise InvalidValueException(
                detail=f"emails.value {fields.email!r} is not an e-mail address."
            ) from None
    return fields


def clean_group(fields: GroupFields) -> GroupFields:
    fields.name = _text(fields.name, "displayName")
    if not fields.name:
        raise InvalidValueException(detail="displayName is required.")
    if fields.name.startswith(DELETED_PREFIX):
        raise InvalidValueException(detail=f"displayName may not start with {DELETED_PREFIX!r}.")
    fields.external_id = _text(fields.external_id, "externalId", 255)
    return fields


def _check_manager(fields: UserFields, user_id: int | None) -> None:
    if fields.manager_id is None:
        return
    if fields.manager_id == user_id:
        raise InvalidValueException(detail="A user cannot be their own manager.")
    if not users().filter(pk=fields.manager_id).exists():
        raise InvalidValueException(detail=f"manager {fields.manager_id} is not a user here.")


def _check_members(member_ids: set[int]) -> None:
    if not member_ids:
        return
    found = set(users().filter(pk__in=member_ids).values_list("pk", flat=True))
    missing = sorted(member_ids - found)
    if missing:
        raise InvalidValueException(
            detail=f"members: no user {', '.join(map(str, missing[:10]))} here "
            "(members are users, by their id)."
        )


def _username_taken(username: str, user_id: int | None) -> None:
    taken = User.objects.filter(username__iexact=username)
    if user_id is not None:
        taken = taken.exclude(pk=user_id)
    if taken.exists():
        raise UniquenessException(detail=f"userName {username!r} is already taken.")


def _group_name_taken(name: str, group_id: int | None) -> None:
    taken = Group.objects.filter(name__iexact=name)
    if group_id is not None:
        taken = taken.exclude(pk=group_id)
    if taken.exists():
        raise UniquenessException(detail=f"displayName {name!r} is already taken by a group.")


# --- Users ---------------------------------------------------------------------------------

_USER_COLUMNS = ("username", "external_id", "first_name", "last_name", "email", "manager_id")


def _user_state(user) -> dict:
    return {
        "username": user.username,
        "external_id": user.external_id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "display_name": user.display_name,
        "email": user.email,
        "manager_id": user.manager_id,
        "is_active": user.is_active,
        "source": user.source,
    }


def scim_user_create(*, actor: Actor, fields: UserFields):
    """A user the identity provider provisions: source scim, no password (they sign in with
    single sign-on). Active unless the provider says otherwise."""
    fields = clean_user(fields)
    _username_taken(fields.username, None)
    _check_manager(fields, None)
    with transaction.atomic():
        user = User(
            username=fields.username,
            external_id=fields.external_id,
            first_name=fields.first_name,
            last_name=fields.last_name,
            display_name=fields.display_name,
            email=fields.email,
            manager_id=fields.manager_id,
            is_active=fields.active is not False,
            source=Source.SCIM,
        )
        user.set_unusable_password()
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:
            raise UniquenessException(
                detail=f"userName {fields.username!r} is already taken."
            ) from None
        audit_log.record(
            action="pim.scim.user_created",
            actor=actor,
            target=user,
            principal=user,
            after=_user_state(user),
        )
    return user


def scim_user_update(*, actor: Actor, user_id, fields: UserFields):
    """Give a user the state SCIM sends (PUT, or PATCH applied). `active` moving to false
    deprovisions the user at once; back to true reactivates the account. `active` absent keeps
    it as it is (a PUT without it is not a deactivation)."""
    fields = clean_user(fields)
    with transaction.atomic():
        user = user_for_write(user_id)
        _username_taken(fields.username, user.pk)
        _check_manager(fields, user.pk)
        before = _user_state(user)
        user.username = fields.username
        user.external_id = fields.external_id
        user.first_name, user.last_name = fields.first_name, fields.last_name
        user.email = fields.email
        user.manager_id = fields.manager_id
        # An empty displayName is computed again from the name (User.save).
        user.display_name = fields.display_name
        user.source = Source.SCIM
        user.save(update_fields=[*_USER_COLUMNS, "display_name", "source"])
        after = _user_state(user)
        changed = {key for key in after if before[key] != after[key]}
        if changed:
            audit_log.record(
                action="pim.scim.user_updated",
                actor=actor,
                target=user,
                principal=user,
                before={key: before[key] for key in sorted(changed)},
                after={key: after[key] for key in sorted(changed)},
            )
        _apply_active(actor, user, fields.active)
        user.refresh_from_db()
    return user


def _apply_active(actor: Actor, user, active: bool | None) -> None:
    if active is False and user.is_active:
        try:
            user_deprovision(actor, user, reason="The identity provider set the user inactive.")
        except ValidationError as error:
            raise InvalidValueException(detail=" ".join(error.messages)) from None
    elif active is True and not user.is_active:
        user_reprovision(actor, user, reason="The identity provider set the user active.")


def scim_user_delete(*, actor: Actor, user_id) -> None:
    """The identity provider deleted the user: deprovisioned at once, eligible assignments and
    group memberships removed, the row kept inactive (see the module's docstring)."""
    with transaction.atomic():
        user = user_for_write(user_id)
        reason = "The identity provider deleted the user."
        try:
            user_deprovision(actor, user, reason=reason)
        except ValidationError as error:
            raise InvalidValueException(detail=" ".join(error.messages)) from None
        removed = user_eligibility_remove(actor, user, reason=reason)
        group_ids = list(user.groups.values_list("pk", flat=True))
        user.groups.clear()  # through the m2m: the receivers end what the groups gave
        username = user.username
        user.username = f"{DELETED_PREFIX}{user.pk}-{username}"[:NAME_MAX]
        user.external_id = ""
        user.is_active = False
        user.save(update_fields=["username", "external_id", "is_active"])
        audit_log.record(
            action="pim.scim.user_deleted",
            actor=actor,
            target=user,
            principal=user,
            before={"username": username, "groups": group_ids},
            after={"username": user.username, "eligible_assignments_removed": removed},
            message=reason,
        )


# --- Groups --------------------------------------------------------------------------------


def _record_members(actor: Actor, group: Group, user_ids, action: str) -> None:
    if not user_ids:
        return
    names = dict(User.objects.filter(pk__in=user_ids).values_list("pk", "display_name"))
    audit_log.record_many(
        {
            "action": action,
            "actor": actor,
            "target": group,
            "principal": names.get(user_id, str(user_id)),
            ("after" if action.endswith("added") else "before"): {
                "member": names.get(user_id, str(user_id)),
                "group": group.name,
            },
        }
        for user_id in sorted(user_ids)
    )


def _set_members(actor: Actor, group: Group, wanted: set[int]) -> None:
    """Members added and removed through the m2m, so `group_membership_changed` ends the
    activations of those who leave; each change audited."""
    current = set(group.user_set.values_list("pk", flat=True))
    added, removed = wanted - current, current - wanted
    if removed:
        group.user_set.remove(*removed)
        _record_members(actor, group, removed, "pim.group.member_removed")
    if added:
        group.user_set.add(*added)
        _record_members(actor, group, added, "pim.group.member_added")


def scim_group_create(*, actor: Actor, fields: GroupFields) -> Group:
    fields = clean_group(fields)
    _group_name_taken(fields.name, None)
    _check_members(fields.member_ids)
    with transaction.atomic():
        try:
            with transaction.atomic():
                group = Group.objects.create(name=fields.name)
        except IntegrityError:
            raise UniquenessException(
                detail=f"displayName {fields.name!r} is already taken."
            ) from None
        GroupIdentity.objects.create(
            group=group, source=Source.SCIM, external_id=fields.external_id
        )
        audit_log.record(
            action="pim.scim.group_created",
            actor=actor,
            target=group,
            principal=group,
            after={"name": group.name, "external_id": fields.external_id},
        )
        _set_members(actor, group, fields.member_ids)
    return group


def scim_group_update(*, actor: Actor, group_id, fields: GroupFields) -> Group:
    fields = clean_group(fields)
    with transaction.atomic():
        group = group_for_write(group_id)
        _group_name_taken(fields.name, group.pk)
        _check_members(fields.member_ids)
        identity = group.identity
        before = {"name": group.name, "external_id": identity.external_id}
        if group.name != fields.name:
            group.name = fields.name
            group.save(update_fields=["name"])
        identity.external_id, identity.source = fields.external_id, Source.SCIM
        identity.save(update_fields=["external_id", "source"])
        after = {"name": group.name, "external_id": identity.external_id}
        if before != after:
            audit_log.record(
                action="pim.scim.group_updated",
                actor=actor,
                target=group,
                principal=group,
                before=before,
                after=after,
            )
        _set_members(actor, group, fields.member_ids)
    return group


def scim_group_delete(*, actor: Actor, group_id) -> None:
    with transaction.atomic():
        group = group_for_write(group_id)
        name = group.name
        _set_members(actor, group, set())
        in_use = Assignment.objects.filter(principal_group=group)
        ending = list(in_use.not_ended().values_list("pk", flat=True))
        if ending:
            assignments_remove_many(
                actor=actor,
                assignment_ids=ending,
                message="The identity provider deleted the group.",
            )
        referenced = (
            in_use.exists() or RoleRequest.objects.filter(Q(principal_group=group)).exists()
        )
        if referenced:
            group.name = f"{DELETED_PREFIX}{group.pk}-{name}"[:NAME_MAX]
            group.save(update_fields=["name"])
            GroupIdentity.objects.filter(group=group).update(external_id="")
        audit_log.record(
            action="pim.scim.group_deleted",
            actor=actor,
            target=group,
            principal=name,
            before={"name": name},
            after={"kept_as": group.name} if referenced else None,
            message="The identity provider deleted the group.",
        )
        if not referenced:
            group.delete()
