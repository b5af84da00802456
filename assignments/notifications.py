"""Who is told of what, per the role's notification settings. Sent after commit."""

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.urls import reverse

from assignments import authz
from assignments.catalog import Perm
from assignments.models import (
    Assignment,
    AssignmentKind,
    NotificationEvent,
    RecipientKind,
    Role,
    RolePolicy,
    Scope,
)
from pim_portal.mail import absolute_url, send_templated_mail


def is_critical(role: Role) -> bool:
    """Roles that can hand out privilege: the 'critical only' notification setting's roles."""
    return bool({Perm.MANAGE_DIRECTORY, Perm.MANAGE_RESOURCES} & set(role.permissions or []))


def role_page(role: Role, scope: Scope) -> str:
    """The page listing the role's members where an administrator of that scope can see it."""
    if role.is_directory_role:
        return reverse("assignments:role_detail", args=[role.pk])
    return reverse("assignments:scope_role_detail", args=[scope.pk, role.pk])


def principal_addresses(principal) -> list[str]:
    if principal is None:
        return []
    if hasattr(principal, "email"):
        return [principal.email] if principal.email else []
    return [u.email for u in principal.user_set.filter(is_active=True) if u.email]


def approver_users(policy: RolePolicy):
    """Users named as approvers of the policy, directly or through a group."""
    User = get_user_model()
    if policy.pk is None:
        return User.objects.none()
    return User.objects.filter(
        Q(rolepolicyuserobjectpermission__content_object=policy)
        | Q(groups__rolepolicygroupobjectpermission__content_object=policy),
        is_active=True,
    ).distinct()


def recipients(policy: RolePolicy, event: str, kind: str, default: list[str]) -> list[str]:
    setting = policy.notification(event, kind)
    if not setting["enabled"]:
        return []
    if setting["critical_only"] and not is_critical(policy.role):
        return []
    addresses = list(default) if setting["default_recipients"] else []
    return addresses + list(setting.get("additional") or [])


def notify_assigned(assignment_id: int) -> int:
    """An administrator made someone eligible or active: tell admins and the assignee."""
    assignment = Assignment.objects.with_related().filter(pk=assignment_id).first()
    if assignment is None:
        return 0
    policy = RolePolicy.objects.effective_for(assignment.role, assignment.scope)
    event = (
        NotificationEvent.ELIGIBLE_ASSIGNED
        if assignment.kind == AssignmentKind.ELIGIBLE
        else NotificationEvent.ACTIVE_ASSIGNED
    )
    context = {
        "assignment": assignment,
        "link": absolute_url(reverse("assignments:my_roles")),
        "admin_link": absolute_url(role_page(assignment.role, assignment.scope)),
    }
    admins = [
        u.email for u in authz.role_administrators(assignment.role, assignment.scope) if u.email
    ]
    sent = send_templated_mail(
        template="assignments/mail/assigned_admin",
        recipients=recipients(policy, event, RecipientKind.ADMIN, admins),
        context=context,
    )
    sent += send_templated_mail(
        template="assignments/mail/assigned_assignee",
        recipients=recipients(
            policy, event, RecipientKind.ASSIGNEE, principal_addresses(assignment.principal)
        ),
        context=context,
    )
    return sent


def notify_activated(request_id: int) -> int:
    """An eligible member activated (or asked to): tell admins, the requester and approvers."""
    from assignments.models import RoleRequest

    request = RoleRequest.objects.with_related().filter(pk=request_id).first()
    if request is None:
        return 0
    policy = RolePolicy.objects.effective_for(request.role, request.scope)
    event = NotificationEvent.ACTIVATED
    context = {
        "request": request,
        "link": absolute_url(reverse("assignments:my_requests")),
    }
    # The requester is told once, as the requester, even when they hold an admin role now.
    admins = [
        u.email
        for u in authz.role_administrators(request.role, request.scope)
        if u.email and u.pk != request.requested_by_id
    ]
    approvers = [
        u.email for u in approver_users(policy) if u.email and u.pk != request.requested_by_id
    ]
    sent = send_templated_mail(
        template="assignments/mail/activated_admin",
        recipients=recipients(policy, event, RecipientKind.ADMIN, admins),
        context=context,
    )
    sent += send_templated_mail(
        template="assignments/mail/activated_requester",
        recipients=recipients(
            policy, event, RecipientKind.ASSIGNEE, principal_addresses(request.requested_by)
        ),
        context=context,
    )
    if not policy.require_approval:
        # When approval is required, the approvals app sends approvers the request to decide.
        sent += send_templated_mail(
            template="assignments/mail/activated_admin",
            recipients=recipients(policy, event, RecipientKind.APPROVER, approvers),
            context=context,
        )
    return sent
