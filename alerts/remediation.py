"""The actions an alert's page offers to fix what it found, each through the services that
make such changes (which check the actor at their door and write the audit events).

Each takes the actor and the alert and acts on the items the alert lists (`affected` ids,
what the administrator saw and confirmed), and returns the message to show.
"""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone

from alerts.models import Alert
from assignments import services as assignment_services
from assignments.models import Assignment, Role, RoleKind, RolePolicy
from assignments.queries import policy_approvers
from assignments.services.standing import standing_make_eligible_many
from connectors.services import drift_remove
from pim_portal.actor import Actor


def _ids(alert: Alert) -> list[int]:
    return [entry["id"] for entry in alert.affected or [] if isinstance(entry.get("id"), int)]


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _justification(alert: Alert) -> str:
    return f"Security alert: {alert.title}"


def _removal_message(outcome) -> str:
    parts = [f"Removed {_plural(len(outcome.removed), 'assignment')}."]
    if outcome.already_ended:
        parts.append(f"{_plural(len(outcome.already_ended), 'assignment')} had already ended.")
    for reason in dict.fromkeys(outcome.refused.values()):
        parts.append(f"Not removed: {reason}")
    return " ".join(parts)


def remove_assignments(actor: Actor, alert: Alert) -> str:
    """Remove the assignments the alert lists (each as assignment_remove would)."""
    outcome = assignment_services.assignments_remove_many(
        actor=actor, assignment_ids=_ids(alert), justification=_justification(alert)
    )
    return _removal_message(outcome)


def remove_users_from_roles(actor: Actor, alert: Alert, *, role_names) -> str:
    """Take the users the alert lists out of the named directory roles: their own assignments
    (and activations) end; a role held through a group stays, for the group's owner to fix."""
    user_ids = _ids(alert)
    now = timezone.now()
    held = Assignment.objects.not_ended(now).filter(
        role__kind=RoleKind.DIRECTORY, role__name__in=role_names
    )
    own = list(held.filter(principal_user__in=user_ids).values_list("pk", flat=True))
    through_groups = (
        held.filter(principal_group__user__in=user_ids)
        .values_list("principal_group__user", flat=True)
        .distinct()
        .count()
    )
    outcome = assignment_services.assignments_remove_many(
        actor=actor, assignment_ids=own, justification=_justification(alert)
    )
    message = _removal_message(outcome)
    if through_groups:
        message += (
            f" {_plural(through_groups, 'account')} still "
            f"{'holds' if through_groups == 1 else 'hold'} a privileged role through a group: "
            "take them out of the group, or review its assignments."
        )
    return message


def require_mfa_on_activation(actor: Actor, alert: Alert) -> str:
    """Turn on "require MFA on activation" in the settings of each role the alert lists,
    keeping every other setting and the approvers as they are."""
    roles = list(Role.objects.filter(pk__in=_ids(alert), kind=RoleKind.DIRECTORY).order_by("name"))
    changed = []
    for role in roles:
        policy = RolePolicy.objects.filter(role=role, scope__isnull=True).first()
        if policy is not None and policy.require_mfa_on_activation:
            continue
        users, groups = policy_approvers(policy) if policy else ([], [])
        assignment_services.policy_update(
            actor=actor,
            role=role,
            values={"require_mfa_on_activation": True},
            approver_users=users,
            approver_groups=groups,
        )
        changed.append(role.name)
    if not changed:
        return "Every role listed already requires MFA on activation."
    return f"Activating {', '.join(changed)} now requires MFA."


def make_eligible(actor: Actor, alert: Alert) -> str:
    """Replace the permanent active assignments the alert lists by eligible ones."""
    ids = _ids(alert)
    made = standing_make_eligible_many(
        actor=actor, assignment_ids=ids, justification=_justification(alert)
    )
    message = f"Made {_plural(made, 'assignment')} eligible: they are activated when needed."
    if made < len(ids):
        left = len(ids) - made
        message += (
            f" {_plural(left, 'assignment')} stayed as they were (ended meanwhile, or the "
            "last active Global Administrator)."
        )
    return message


def set_end_dates(actor: Actor, alert: Alert) -> str:
    """Give each permanent eligible assignment the alert lists an end: the longest eligible
    assignment its role's settings allow, from now."""
    now = timezone.now()
    rows = list(
        Assignment.objects.not_ended(now)
        .eligible()
        .filter(pk__in=_ids(alert), end__isnull=True)
        .with_related()
        .order_by("pk")
    )
    ended, problems = 0, []
    for assignment in rows:
        policy = RolePolicy.objects.effective_for(assignment.role, assignment.scope)
        end = now + timedelta(days=policy.eligible_expire_after_days)
        try:
            assignment_services.assignment_update(
                actor=actor,
                assignment=assignment,
                start=None,
                end=end,
                justification=_justification(alert),
            )
        except ValidationError as error:
            problems += [f"{assignment.principal_name}: {m}" for m in error.messages]
            continue
        ended += 1
    message = f"Set an end date on {_plural(ended, 'eligible assignment')}."
    if problems:
        message += " Not changed: " + " ".join(problems)
    return message


def remove_drift(actor: Actor, alert: Alert) -> str:
    """Take the members the alert lists out of their target objects (connectors' drift)."""
    removed, problems = drift_remove(actor, finding_ids=_ids(alert))
    parts = [f"Removed {_plural(removed, 'member')} from the connected systems."]
    parts += [f"Not removed: {problem}" for problem in dict.fromkeys(problems)]
    return " ".join(parts)
