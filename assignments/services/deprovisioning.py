"""Deprovisioning: a person who leaves loses access that second.

`user_deprovision` is what SCIM's `active: false` (and a User Administrator's "Deactivate")
does: the account is inactive (it cannot sign in, and its sessions end on their next request,
since Django's backend no longer loads an inactive user), every active assignment of the user
that has not ended ends now (one not started is canceled), and every open request of theirs is
canceled. The ends are written as the portal's other removals write them (an admin_remove
request per assignment, `pim.assignment.removed`), so the time engine records them and mails
the holders, as it does for a deactivation. Eligible assignments stay: the account can no
longer use them, and an administrator decides on reactivation. `user_reprovision` makes the
account active again and restores nothing.
"""

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from assignments import authz, signals
from assignments.catalog import GLOBAL_ADMINISTRATOR, Perm
from assignments.models import (
    OPEN_STATUSES,
    Assignment,
    RequestStatus,
    RoleRequest,
)
from assignments.services.bulk import assignments_end_as_removed, lock_assignments
from assignments.services.common import request_snapshot
from assignments.signals import request_canceled
from audit import log as audit_log
from pim_portal.actor import Actor, user_of

# Roles whose holders only a directory administrator may deactivate (as in Entra ID, where a
# User Administrator cannot disable a Global Administrator).
_PRIVILEGED_PERMISSIONS = {Perm.MANAGE_DIRECTORY, Perm.MANAGE_PROVISIONING}


@dataclass
class DeprovisionOutcome:
    """What deprovisioning did: the assignments it ended, the requests it canceled, and
    whether the account was already inactive (then only what was left over is swept)."""

    user: object
    ended: list[int] = field(default_factory=list)
    canceled: list[int] = field(default_factory=list)
    was_active: bool = True


def _is_privileged(user, now) -> bool:
    """A superuser, or someone holding (eligible or active, in force) a role that manages
    directory roles or provisioning."""
    if user.is_superuser:
        return True
    held = (
        Assignment.objects.in_force(now)
        .for_user(user)
        .values_list("role__permissions", flat=True)
        .distinct()
    )
    return any(_PRIVILEGED_PERMISSIONS & set(perms or []) for perms in held)


def _authorize(actor: Actor, user, now) -> None:
    """User Administrators (users.manage) and the system; a privileged account only by a
    directory administrator; never oneself."""
    if actor.is_system:
        return
    if actor.pk == user.pk:
        authz.deny(actor, what=f"deactivate their own account {user.get_username()!r}")
    grants = authz.grants_for(actor)
    if not grants.can_manage_users():
        authz.deny(actor, what=f"deactivate the account {user.get_username()!r}", target=user)
    if _is_privileged(user, now) and not grants.can_manage_directory():
        authz.deny(
            actor,
            what=f"deactivate the account {user.get_username()!r}, which holds a privileged "
            "role: only a Privileged Role or Global Administrator may",
            target=user,
        )


def _refuse_last_global_admin(user, now) -> None:
    """Refuse deactivating the last active account that holds Global Administrator in force
    (directly, by activation, or through a group): no one could administer the portal."""
    held = (
        Assignment.objects.in_force(now)
        .active()
        .filter(role__name=GLOBAL_ADMINISTRATOR)
        .values_list("principal_user_id", "principal_group_id")
    )
    held = list(held)
    users = {u for u, _ in held if u is not None}
    groups = {g for _, g in held if g is not None}
    membership = get_user_model().groups.through.objects
    via_groups = set(
        membership.filter(group_id__in=groups, user__is_active=True).values_list(
            "user_id", flat=True
        )
    )
    holders = via_groups | set(
        get_user_model().objects.filter(pk__in=users, is_active=True).values_list("pk", flat=True)
    )
    if user.pk in holders and not holders - {user.pk}:
        raise ValidationError(
            f"{user} holds the last active Global Administrator assignment: assign another "
            "Global Administrator before deactivating this account.",
            code="last_global_administrator",
        )


def _cancel_open_requests(user, *, actor: Actor, reason: str, now) -> list[int]:
    """Cancel the user's requests pending approval or scheduled (an activation not started
    is ended at its start: it never is in force), audited; approvers are told after commit."""
    requests = list(
        RoleRequest.objects.select_for_update(of=("self",))
        .with_related()
        .filter(principal_user=user, status__in=OPEN_STATUSES)
        .order_by("pk")
    )
    if not requests:
        return []
    events, pending = [], []
    for request in requests:
        before = request_snapshot(request)
        if request.status == RequestStatus.PENDING_APPROVAL:
            pending.append(request.pk)
        request.status = RequestStatus.CANCELED
        request.completed_at = now
        request.completed_by = user_of(actor)
        request.status_note = reason
        events.append(
            {
                "action": "pim.request.canceled",
                "actor": actor,
                "target": request,
                "principal": request.principal_name,
                "role": request.role.name,
                "scope": request.scope.path,
                "role_request_id": request.pk,
                "before": before,
                "after": request_snapshot(request),
                "message": f"The account was deactivated: {reason}",
            }
        )
    RoleRequest.objects.filter(pk__in=[r.pk for r in requests]).update(
        status=RequestStatus.CANCELED,
        completed_at=now,
        completed_by=user_of(actor),
        status_note=reason,
    )
    audit_log.record_many(events)

    def announce():
        for request_id in pending:
            request_canceled.send(sender=RoleRequest, request_id=request_id, actor_id=actor.pk)

    transaction.on_commit(announce)
    return [r.pk for r in requests]


def user_deprovision(actor: Actor, user, *, reason: str) -> DeprovisionOutcome:
    """Deactivate the account and end its access now: every active assignment of the user not
    ended (activations and administrators' active assignments) ends this second, every open
    request is canceled. Refused for oneself, for a privileged account unless the actor
    manages directory roles, and for the last active Global Administrator. Done again on an
    inactive account, it sweeps whatever was left (idempotent)."""
    actor = Actor.of(actor)
    now = timezone.now()
    _authorize(actor, user, now)
    User = get_user_model()
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        outcome = DeprovisionOutcome(user=user, was_active=user.is_active)
        if user.is_active:
            _refuse_last_global_admin(user, now)
            User.objects.filter(pk=user.pk).update(is_active=False)
            user.is_active = False
            signals.accounts_changed.send(sender=User, user_ids=[user.pk])
            audit_log.record(
                action="pim.user.deactivated",
                actor=actor,
                target=user,
                principal=user,
                before={"is_active": True},
                after={"is_active": False},
                message=reason,
            )
        # Open requests first: a scheduled activation's request is canceled with its reason.
        outcome.canceled = _cancel_open_requests(user, actor=actor, reason=reason, now=now)
        ids = list(
            Assignment.objects.not_ended(now)
            .active()
            .filter(principal_user=user)
            .values_list("pk", flat=True)
        )
        rows = lock_assignments(ids)
        if rows:
            assignments_end_as_removed(
                rows,
                actor=actor,
                justification=reason,
                message=f"The account was deactivated: {reason}",
                now=now,
            )
            outcome.ended = [a.pk for a in rows]
    return outcome


def user_reprovision(actor: Actor, user, *, reason: str = ""):
    """Make a deactivated account active again. Nothing it lost is restored: its ended
    assignments stay ended and its canceled requests canceled. Returns the user."""
    actor = Actor.of(actor)
    if not actor.is_system:
        grants = authz.grants_for(actor)
        if not grants.can_manage_users():
            authz.deny(actor, what=f"reactivate the account {user.get_username()!r}", target=user)
        if _is_privileged(user, timezone.now()) and not grants.can_manage_directory():
            authz.deny(
                actor,
                what=f"reactivate the account {user.get_username()!r}, which holds a "
                "privileged role: only a Privileged Role or Global Administrator may",
                target=user,
            )
    User = get_user_model()
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        if user.is_active:
            return user
        User.objects.filter(pk=user.pk).update(is_active=True)
        signals.accounts_changed.send(sender=User, user_ids=[user.pk])
        user.is_active = True
        audit_log.record(
            action="pim.user.reactivated",
            actor=actor,
            target=user,
            principal=user,
            before={"is_active": False},
            after={"is_active": True},
            message=reason,
        )
    return user


def user_eligibility_remove(actor: Actor, user, *, reason: str) -> list[int]:
    """Remove the user's own eligible assignments not ended (what a deleted account leaves
    behind), each as an administrator's removal, audited with `actor`. The ids removed."""
    from assignments.services.bulk import assignments_remove_many

    ids = list(
        Assignment.objects.not_ended()
        .eligible()
        .filter(principal_user=user)
        .values_list("pk", flat=True)
    )
    if not ids:
        return []
    outcome = assignments_remove_many(
        actor=actor, assignment_ids=ids, justification=reason, message=reason
    )
    return outcome.removed


__all__ = [
    "DeprovisionOutcome",
    "user_deprovision",
    "user_eligibility_remove",
    "user_reprovision",
]
