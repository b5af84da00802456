"""Users and groups kept in the portal: every change one transaction with its audit event.

The rules (who may, the guard rails, provider-owned fields) are in `rules`; each service
checks them at its door against the actor.
"""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils.crypto import get_random_string

from assignments.services.deprovisioning import user_deprovision, user_reprovision
from audit import log as audit_log
from pim_portal import jobs, mail
from pim_portal.actor import Actor
from pim_portal.authenticators import authenticators_reset
from pim_portal.models import TIME_ZONE_CHOICES, Source
from pim_portal.people import rules

USER_CREATED = "pim.user.created"
USER_CHANGED = "pim.user.changed"
MEMBER_ADDED = "pim.group.member_added"
MEMBER_REMOVED = "pim.group.member_removed"

PASSWORD_GENERATE, PASSWORD_SET, PASSWORD_NONE = "generate", "set", "none"
ONE_TIME_PASSWORD_LENGTH = 20
MFA_RESET_MAIL = "people/mail/mfa_reset"

EDITABLE_FIELDS = ("username", "display_name", "email", "manager", "time_zone")
TIME_ZONES = frozenset(name for name, _ in TIME_ZONE_CHOICES)


@dataclass
class CreatedUser:
    user: object
    one_time_password: str = ""  # shown once, never kept


def _field_error(field: str, message: str, code: str) -> ValidationError:
    return ValidationError({field: ValidationError(message, code=code)})


def _check_time_zone(time_zone: str) -> None:
    if time_zone not in TIME_ZONES:
        raise _field_error(
            "time_zone",
            f"“{str(time_zone)[:64]}” is not a time zone: pick one from the list.",
            "time_zone_unknown",
        )


def _check_username_free(username: str, *, exclude_pk=None) -> None:
    users = get_user_model().objects.alias(username_lower=Lower("username"))
    taken = users.filter(username_lower=username.lower())
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise _field_error("username", f"The username “{username}” is taken.", "username_taken")


def _state(user) -> dict:
    return {
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "manager": user.manager.username if user.manager_id else None,
        "time_zone": user.time_zone,
        "is_active": user.is_active,
        "source": user.source,
    }


# --- Users -------------------------------------------------------------------------------------


def user_create(
    actor: Actor,
    *,
    username: str,
    display_name: str,
    email: str = "",
    manager=None,
    time_zone: str = "UTC",
    password_choice: str = PASSWORD_GENERATE,
    password: str = "",
) -> CreatedUser:
    """Create a local user. The initial password is generated (and returned to be shown once),
    set by the administrator (checked against the password rules), or none (single sign-on
    only). User Administrators and Global Administrators."""
    actor = Actor.of(actor)
    rules.require_manage_users(actor, what=f"create the user {username!r}")
    username = (username or "").strip()
    if not username:
        raise _field_error("username", "Give the user a username.", "username_missing")
    _check_username_free(username)
    _check_time_zone(time_zone)
    User = get_user_model()
    user = User(
        username=username,
        display_name=(display_name or "").strip(),
        email=(email or "").strip(),
        manager=manager,
        time_zone=time_zone,
        source=Source.LOCAL,
    )
    one_time = ""
    if password_choice == PASSWORD_SET:
        try:
            validate_password(password, user)
        except ValidationError as error:
            raise ValidationError({"password": error.error_list}) from None
        user.set_password(password)
    elif password_choice == PASSWORD_GENERATE:
        one_time = get_random_string(ONE_TIME_PASSWORD_LENGTH)
        user.set_password(one_time)
    elif password_choice == PASSWORD_NONE:
        user.set_unusable_password()
    else:
        raise _field_error("password_choice", "Choose how the user gets a password.", "invalid")
    with transaction.atomic():
        user.save()
        audit_log.record(
            action=USER_CREATED,
            actor=actor,
            target=user,
            principal=user,
            after={**_state(user), "password": password_choice},
            message=f"{user} created in the portal ("
            + {
                PASSWORD_GENERATE: "one-time password generated",
                PASSWORD_SET: "password set by the administrator",
                PASSWORD_NONE: "no password: single sign-on only",
            }[password_choice]
            + ").",
        )
    return CreatedUser(user=user, one_time_password=one_time)


def user_update(actor: Actor, user, *, changes: dict):
    """Change a user's details (username, display name, e-mail, manager, time zone).

    Refused: without users.manage; a protected user without directory.manage; a field the
    identity provider owns (its users' username, names and e-mail).
    """
    actor = Actor.of(actor)
    rules.require_change_user(actor, user, what=f"change the user {user.get_username()!r}")
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(f"These cannot be changed here: {', '.join(sorted(unknown))}.")
    User = get_user_model()
    with transaction.atomic():
        user = (
            User.objects.select_for_update(of=("self",)).select_related("manager").get(pk=user.pk)
        )
        before = _state(user)
        wanted = {
            name: (value.strip() if isinstance(value, str) else value)
            for name, value in changes.items()
        }
        changed = {
            name: value
            for name, value in wanted.items()
            if (getattr(user, name) if name != "manager" else user.manager) != value
        }
        owned = [name for name in changed if name in rules.provider_owned_fields(user)]
        if owned:
            where = rules.WHERE_TO_CHANGE[user.source]
            raise ValidationError(
                {
                    name: ValidationError(
                        f"Set by the identity provider: {where}", code="provider_owned"
                    )
                    for name in owned
                }
            )
        if "username" in changed:
            if not changed["username"]:
                raise _field_error("username", "Give the user a username.", "username_missing")
            _check_username_free(changed["username"], exclude_pk=user.pk)
        if "time_zone" in changed:
            _check_time_zone(changed["time_zone"])
        manager = changed.get("manager")
        if manager is not None and manager.pk == user.pk:
            raise _field_error("manager", "Nobody is their own manager.", "manager_self")
        if not changed:
            return user
        for name, value in changed.items():
            setattr(user, name, value)
        user.save()
        after = _state(user)
        old = {k: v for k, v in before.items() if after[k] != v}
        audit_log.record(
            action=USER_CHANGED,
            actor=actor,
            target=user,
            principal=user,
            before=old,
            after={k: after[k] for k in old},
            message=f"{user} changed in the portal: {', '.join(sorted(old))}.",
        )
    return user


def user_deactivate(actor: Actor, user, *, reason: str):
    """Deactivate the account and end its access now (deprovisioning). Refused for oneself,
    for a protected user unless a Global Administrator, and for SCIM users (the provider
    owns `active`)."""
    actor = Actor.of(actor)
    what = f"deactivate the user {user.get_username()!r}"
    rules.require_not_self(actor, user, what=what)
    rules.require_change_user(actor, user, what=what)
    if "is_active" in rules.provider_owned_fields(user):
        raise ValidationError(rules.WHERE_TO_CHANGE[user.source], code="provider_owned")
    reason = (reason or "").strip() or f"Deactivated in the portal by {actor}."
    with transaction.atomic():
        return user_deprovision(actor, user, reason=reason)


def user_reactivate(actor: Actor, user, *, reason: str = ""):
    """Make a deactivated account active again (nothing it lost is restored)."""
    actor = Actor.of(actor)
    what = f"reactivate the user {user.get_username()!r}"
    rules.require_not_self(actor, user, what=what)
    rules.require_change_user(actor, user, what=what)
    if "is_active" in rules.provider_owned_fields(user):
        raise ValidationError(rules.WHERE_TO_CHANGE[user.source], code="provider_owned")
    reason = (reason or "").strip() or f"Reactivated in the portal by {actor}."
    with transaction.atomic():
        return user_reprovision(actor, user, reason=reason)


def user_mfa_reset(actor: Actor, user) -> int:
    """Remove every authenticator of the user (a lost phone), audited and mailed to the user:
    their next sign-in or activation that needs MFA walks them through adding one."""
    actor = Actor.of(actor)
    what = f"reset the MFA of {user.get_username()!r}"
    rules.require_not_self(actor, user, what=what)
    rules.require_change_user(actor, user, what=what)
    with transaction.atomic():
        removed = authenticators_reset(actor=actor, user=user)
        if user.email:
            jobs.enqueue("pim_portal.people.services.mail_mfa_reset", user.pk, str(actor))
    return removed


def mail_mfa_reset(user_id: int, actor_name: str) -> int:
    """The task `user_mfa_reset` queues: tell the user their authenticators were removed."""
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None or not user.email:
        return 0
    return mail.send_templated_mail(
        template=MFA_RESET_MAIL,
        recipients=[user.email],
        context={
            "account": user,
            "actor_name": actor_name,
            "link": mail.absolute_url(reverse("account")),
        },
    )


# --- Groups ------------------------------------------------------------------------------------


def _refuse_provider_group(group) -> None:
    source = rules.group_source(group)
    if source != Source.LOCAL:
        raise ValidationError(rules.GROUP_WHERE_TO_CHANGE[source], code="provider_group")


def group_members_add(actor: Actor, group, *, users) -> list:
    """Add members to a group the portal keeps. Role-assignable groups: only Global and
    Privileged Role Administrators; protected users: only Global Administrators. Returns the
    users added (those already members are left as they are)."""
    actor = Actor.of(actor)
    users = list(users)
    rules.require_change_membership(actor, group, users)
    _refuse_provider_group(group)
    with transaction.atomic():
        present = set(
            group.user_set.filter(pk__in=[u.pk for u in users]).values_list("pk", flat=True)
        )
        added = [user for user in users if user.pk not in present]
        if not added:
            return []
        group.user_set.add(*added)
        audit_log.record_many(
            [
                {
                    "action": MEMBER_ADDED,
                    "actor": actor,
                    "target": group,
                    "principal": user,
                    "after": {"member": user.username},
                    "message": f"{user} added to the group {group}.",
                }
                for user in added
            ]
        )
    return added


def group_member_remove(actor: Actor, group, *, user) -> bool:
    """Remove a member (through the membership relation, so the activations they made
    through the group's eligibility end at once). False when they were not a member."""
    actor = Actor.of(actor)
    rules.require_change_membership(actor, group, [user])
    _refuse_provider_group(group)
    with transaction.atomic():
        if not group.user_set.filter(pk=user.pk).exists():
            return False
        group.user_set.remove(user)  # m2m_changed: activations through the group end
        audit_log.record(
            action=MEMBER_REMOVED,
            actor=actor,
            target=group,
            principal=user,
            before={"member": user.username},
            message=f"{user} removed from the group {group}.",
        )
    return True


# --- One's own profile -------------------------------------------------------------------------


def profile_update(actor: Actor, *, display_name: str | None = None, time_zone: str | None = None):
    """A user changes their own display name (local accounts only: the identity provider owns
    the others') and time zone (everyone, from the list)."""
    actor = Actor.of(actor)
    if actor.is_system:
        raise ValueError("A profile is changed by its own user.")
    User = get_user_model()
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=actor.pk)
        before = {"display_name": user.display_name, "time_zone": user.time_zone}
        if display_name is not None:
            display_name = display_name.strip()
            if display_name != user.display_name:
                if "display_name" in rules.provider_owned_fields(user):
                    raise _field_error(
                        "display_name",
                        "Your name comes from your organization's identity provider: change "
                        "it there.",
                        "provider_owned",
                    )
                if not display_name:
                    raise _field_error(
                        "display_name", "Your display name cannot be empty.", "required"
                    )
                user.display_name = display_name
        if time_zone is not None and time_zone != user.time_zone:
            _check_time_zone(time_zone)
            user.time_zone = time_zone
        after = {"display_name": user.display_name, "time_zone": user.time_zone}
        old = {k: v for k, v in before.items() if after[k] != v}
        if not old:
            return user
        user.save(update_fields=list(old))
        audit_log.record(
            action=USER_CHANGED,
            actor=actor,
            target=user,
            principal=user,
            before=old,
            after={k: after[k] for k in old},
            message=f"{user} changed their profile: {', '.join(sorted(old))}.",
        )
    return user
