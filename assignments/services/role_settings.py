"""Role settings: a role's activation, assignment and notification rules, and its approvers."""

from collections.abc import Iterable

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db import transaction

from assignments import authz, counts
from assignments.models import (
    Role,
    RolePolicy,
    RolePolicyGroupObjectPermission,
    RolePolicyUserObjectPermission,
    Scope,
)
from assignments.queries import APPROVE_PERMISSION, policy_approvers
from audit import log as audit_log
from pim_portal.actor import Actor, user_of

POLICY_FIELDS = [
    "activation_max_duration",
    "require_mfa_on_activation",
    "require_justification_on_activation",
    "require_ticket_on_activation",
    "require_approval",
    "approvals_required",
    "approval_window",
    "allow_permanent_eligible",
    "eligible_expire_after_days",
    "allow_permanent_active",
    "active_expire_after_days",
    "require_mfa_on_active_assignment",
    "require_justification_on_active_assignment",
    "notifications",
]


def policy_snapshot(policy: RolePolicy) -> dict:
    data = {name: getattr(policy, name) for name in POLICY_FIELDS}
    for name in ("activation_max_duration", "approval_window"):
        data[name] = str(data[name])
    users, groups = policy_approvers(policy)
    data["approvers"] = sorted(
        [f"user:{u.username}" for u in users] + [f"group:{g.name}" for g in groups]
    )
    return data


def _set_approvers(policy: RolePolicy, users: Iterable, groups: Iterable[Group]) -> None:
    permission = Permission.objects.get(
        codename=APPROVE_PERMISSION, content_type__app_label="assignments"
    )
    RolePolicyUserObjectPermission.objects.filter(content_object=policy).delete()
    RolePolicyGroupObjectPermission.objects.filter(content_object=policy).delete()
    RolePolicyUserObjectPermission.objects.bulk_create(
        RolePolicyUserObjectPermission(content_object=policy, user=u, permission=permission)
        for u in users
    )
    RolePolicyGroupObjectPermission.objects.bulk_create(
        RolePolicyGroupObjectPermission(content_object=policy, group=g, permission=permission)
        for g in groups
    )
    counts.REQUESTS.move_now_and_after_commit()  # bulk_create sends no post_save


def policy_update(
    *,
    actor: Actor,
    role: Role,
    scope: Scope | None = None,
    values: dict,
    approver_users: Iterable = (),
    approver_groups: Iterable[Group] = (),
) -> RolePolicy:
    """Save a role's settings (role-wide, or at a scope for a resource role) and its approvers.

    Requiring approval of a resource role without naming approvers is refused; for a directory
    role the in-force Privileged Role and Global Administrators approve when none are named.
    """
    if role.is_directory_role:
        scope = None
    actor = Actor.of(actor)
    authz.require_manage_role(actor, role, scope)
    approver_users, approver_groups = list(approver_users), list(approver_groups)
    unknown = set(values) - set(POLICY_FIELDS)
    if unknown:
        raise ValueError(f"Unknown role settings: {sorted(unknown)}")
    with transaction.atomic():
        policy = RolePolicy.objects.select_for_update().filter(role=role, scope=scope).first()
        created = policy is None
        if created:
            # A scope's own settings start from the ones it inherited.
            inherited = RolePolicy.objects.effective_for(role, scope)
            policy = RolePolicy(role=role, scope=scope)
            for name in POLICY_FIELDS:
                setattr(policy, name, getattr(inherited, name))
        before = None if created else policy_snapshot(policy)
        for name, value in values.items():
            setattr(policy, name, value)
        # Judged on the resulting settings: approval kept on while approvers are dropped counts.
        needs_approvers = policy.require_approval and not role.is_directory_role
        if needs_approvers and not approver_users and not approver_groups:
            raise ValidationError(
                "Name at least one approver: approval of a resource role needs approvers."
            )
        policy.updated_by = user_of(actor)
        policy.full_clean()
        policy.save()
        _set_approvers(policy, approver_users, approver_groups)
        audit_log.record(
            action="pim.policy.updated",
            actor=actor,
            target=policy,
            role=role.name,
            scope=scope.path if scope else "",
            before=before,
            after=policy_snapshot(policy),
        )
    return policy


def policy_reset(*, actor: Actor, role: Role, scope: Scope) -> None:
    """Drop a scope's own settings of a resource role: it inherits from above again."""
    actor = Actor.of(actor)
    authz.require_manage_role(actor, role, scope)
    with transaction.atomic():
        policy = RolePolicy.objects.select_for_update().filter(role=role, scope=scope).first()
        if policy is None:
            return
        before = policy_snapshot(policy)
        audit_log.record(
            action="pim.policy.updated",
            actor=actor,
            target=policy,
            role=role.name,
            scope=scope.path,
            before=before,
            after=None,
            message="Settings at this scope removed; inherited settings apply.",
        )
        policy.delete()
