"""Helpers for the approvals tests: role settings that need approval, and requests to decide."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission

from assignments import services
from assignments.models import (
    Assignment,
    AssignmentKind,
    RolePolicy,
    RolePolicyGroupObjectPermission,
    RolePolicyUserObjectPermission,
)
from tests.factories import assign, make_user, role

PRA = "Privileged Role Administrator"
CONTRIBUTOR = "Contributor"


def needs_approval(
    role_name: str,
    *,
    scope=None,
    approvers=(),
    groups=(),
    approvals_required: int = 1,
    window: timedelta = timedelta(hours=24),
    **settings,
) -> RolePolicy:
    """Settings that require approval (and no MFA), naming the given approvers."""
    values = {
        "require_mfa_on_activation": False,
        "require_justification_on_activation": True,
        "require_ticket_on_activation": False,
        "require_approval": True,
        "approvals_required": approvals_required,
        "approval_window": window,
        **settings,
    }
    policy, _ = RolePolicy.objects.update_or_create(
        role=role(role_name), scope=scope, defaults=values
    )
    permission = Permission.objects.get(
        codename="approve_rolepolicy", content_type__app_label="assignments"
    )
    RolePolicyUserObjectPermission.objects.filter(content_object=policy).delete()
    RolePolicyGroupObjectPermission.objects.filter(content_object=policy).delete()
    for user in approvers:
        RolePolicyUserObjectPermission.objects.create(
            content_object=policy, user=user, permission=permission
        )
    for group in groups:
        RolePolicyGroupObjectPermission.objects.create(
            content_object=policy, group=group, permission=permission
        )
    return policy


def eligible_for(user, role_name: str, scope=None) -> Assignment:
    found = Assignment.objects.eligible().filter(principal_user=user, role__name=role_name)
    if scope is not None:
        found = found.filter(scope=scope)
    return found.first() or assign(user, role_name, scope=scope, kind=AssignmentKind.ELIGIBLE)


def submit(
    user,
    role_name: str = PRA,
    *,
    scope=None,
    duration=timedelta(hours=1),
    start=None,
    justification="Incident 42: rotate the keys",
    **kw,
):
    """The user asks to activate the role (eligible for it at `scope` or the root)."""
    eligible = eligible_for(user, role_name, scope)
    return services.request_activate(
        actor=user,
        eligible=eligible,
        start=start,
        duration=duration,
        justification=justification,
        mfa_verified=True,
        **kw,
    )


def new_requester(username: str, role_name: str = PRA, scope=None):
    user = make_user(username)
    assign(user, role_name, scope=scope, kind=AssignmentKind.ELIGIBLE)
    return user


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Hashing a password properly takes most of a second; these tests make many users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def pra_needs_alex(approver, tree):
    """Activating Privileged Role Administrator needs Alex's approval."""
    return needs_approval(PRA, approvers=[approver])


@pytest.fixture
def pending(eligible_user, pra_needs_alex):
    """Erin's pending request to activate Privileged Role Administrator."""
    return submit(eligible_user)
