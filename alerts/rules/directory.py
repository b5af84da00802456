"""Rules about directory roles: assignments outside PIM, too many Global Administrators,
unused and stale privileged accounts, roles without MFA, activations too frequent, and
standing access (eligibility that never expires, permanent active assignments)."""

from collections import defaultdict
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, F, OuterRef, Q

from alerts.rules.base import (
    AFFECTED_LIMIT,
    Finding,
    assignment_item,
    cut,
    directory_assignments,
    item,
    made_outside_pim,
    not_emergency_access,
    plural,
    role_url,
    with_labels,
)
from assignments.catalog import GLOBAL_ADMINISTRATOR
from assignments.models import Assignment, RoleKind, RolePolicy
from pim_portal.humanize import duration_words


def _holders(assignments):
    """Active accounts holding one of `assignments`: directly, or as a member of the group
    that holds it (one subquery each side)."""
    users = assignments.filter(principal_user__isnull=False).values("principal_user")
    groups = assignments.filter(principal_group__isnull=False).values("principal_group")
    return (
        get_user_model()
        .objects.filter(Q(pk__in=users) | Q(groups__in=groups), is_active=True)
        .distinct()
    )


def _assignment_findings(rows, total, *, title: str, description: str) -> list[Finding]:
    if not rows:
        return []
    return [
        Finding(
            key="",
            title=title.format(count=plural(total or len(rows), "assignment")),
            description=description,
            affected=[assignment_item(a) for a in rows],
            total=total,
        )
    ]


# --- Roles assigned outside PIM ------------------------------------------------------------


def assigned_outside_pim(thresholds: dict, now: datetime) -> list[Finding]:
    """Active directory role assignments in force that no request made."""
    outside = made_outside_pim(
        Assignment.objects.in_force(now).active().filter(role__kind=RoleKind.DIRECTORY)
    )
    rows, total = cut(with_labels(outside).order_by("role__name", "pk"))
    return _assignment_findings(
        rows,
        total,
        title="{count} made outside PIM",
        description="These active directory role assignments were not made through the "
        "portal: no request made them, so nobody approved, justified or was told of them. "
        "They were written through the Django admin or straight into the database.",
    )


# --- Too many Global Administrators --------------------------------------------------------


def too_many_global_admins(thresholds: dict, now: datetime) -> list[Finding]:
    """More Global Administrators than the count allowed, who are also more than the share
    of privileged users allowed (both must hold, as in Entra)."""
    global_admins = list(
        _holders(directory_assignments(now, [GLOBAL_ADMINISTRATOR])).order_by(
            "display_name", "username"
        )
    )
    privileged = _holders(directory_assignments(now)).count()
    count = len(global_admins)
    if not privileged or count <= thresholds["count"]:
        return []
    share = 100 * count / privileged
    if share <= thresholds["percent"]:
        return []
    return [
        Finding(
            key="",
            title=f"{count} Global Administrators",
            description=(
                f"{plural(count, 'account')} hold Global Administrator (eligible or active), "
                f"{round(share)}% of the {plural(privileged, 'account')} in a privileged "
                f"role; the settings allow {thresholds['count']} and {thresholds['percent']}%."
            ),
            total=count if count > AFFECTED_LIMIT else None,
            affected=[
                item(f"{user} ({user.username})", "", user.pk)
                for user in global_admins[:AFFECTED_LIMIT]
            ],
        )
    ]


# --- Administrators not using their privileged roles ---------------------------------------


def not_using_roles(thresholds: dict, now: datetime) -> list[Finding]:
    """Eligible assignments of privileged roles, older than N days, not activated in them."""
    cutoff = now - timedelta(days=thresholds["days"])
    used = (
        Assignment.objects.filter(activated_from=OuterRef("pk"), start__lte=now)
        .filter(Q(end__isnull=True) | Q(end__gt=cutoff))
        .exclude(end=F("start"))
    )
    unused = (
        directory_assignments(now)
        .eligible()
        .filter(not_emergency_access(), start__lte=cutoff)
        .filter(~Exists(used))
    )
    rows, total = cut(with_labels(unused).order_by("role__name", "pk"))
    return _assignment_findings(
        rows,
        total,
        title="{count} not activated in " + f"{thresholds['days']} days",
        description=(
            "These eligible assignments of privileged roles have not been activated in the "
            f"last {thresholds['days']} days. Access nobody uses is a risk nobody watches."
        ),
    )


# --- Potential stale accounts in a privileged role -----------------------------------------


def stale_accounts(thresholds: dict, now: datetime) -> list[Finding]:
    """Accounts in a privileged role (eligible or active, directly or through a group) that
    have not signed in for N days (or never, when made longer ago than that)."""
    cutoff = now - timedelta(days=thresholds["days"])
    stale = (
        _holders(directory_assignments(now))
        .filter(is_emergency_access=False)
        .filter(Q(last_login__lte=cutoff) | Q(last_login__isnull=True, date_joined__lte=cutoff))
        .order_by("display_name", "username", "pk")
    )
    users, total = cut(stale)
    if not users:
        return []
    days = thresholds["days"]
    return [
        Finding(
            key="",
            title=f"{plural(total or len(users), 'account')} without a sign-in in {days} days",
            description=(
                "These accounts hold a privileged role but have not signed in for "
                f"{days} days or more. They may be shared or service accounts nobody looks "
                "after, or belong to people who left."
            ),
            affected=[
                item(
                    f"{user} ({user.username})" + ("" if user.last_login else ", never signed in"),
                    "",
                    user.pk,
                )
                for user in users
            ],
            total=total,
        )
    ]


# --- Roles that don't require MFA on activation --------------------------------------------


def no_mfa_on_activation(thresholds: dict, now: datetime) -> list[Finding]:
    """Directory roles whose settings let them be activated without an MFA code."""
    policies = list(
        RolePolicy.objects.filter(
            scope__isnull=True, role__kind=RoleKind.DIRECTORY, require_mfa_on_activation=False
        )
        .select_related("role")
        .order_by("role__name")
    )
    if not policies:
        return []
    return [
        Finding(
            key="",
            title=f"{plural(len(policies), 'role')} activated without MFA",
            description="The settings of these directory roles do not ask for an MFA code on "
            "activation: whoever takes over an eligible account can activate them.",
            affected=[item(p.role.name, role_url(p.role_id), p.role_id) for p in policies],
        )
    ]


# --- Roles activated too frequently --------------------------------------------------------

# How far back activations are looked at, as Entra does.
FREQUENT_LOOKBACK = timedelta(days=30)


def _bursts(starts: list[datetime], count: int, window: timedelta) -> int:
    """The most activations within any `window` (0 when never `count`)."""
    most, first = 0, 0
    for last, start in enumerate(starts):
        while start - starts[first] > window:
            first += 1
        most = max(most, last - first + 1)
    return most if most >= count else 0


def activated_too_frequently(thresholds: dict, now: datetime) -> list[Finding]:
    """Users who activated one directory role `count` times within `minutes`, in 30 days."""
    count, window = thresholds["count"], timedelta(minutes=thresholds["minutes"])
    activations = Assignment.objects.active().filter(
        activated_from__isnull=False,
        principal_user__isnull=False,
        role__kind=RoleKind.DIRECTORY,
        start__gt=now - FREQUENT_LOOKBACK,
        start__lte=now,
    )
    # Only the (user, role) pairs with enough activations in all are worth a closer look.
    pairs = set(
        activations.order_by()
        .values("principal_user", "role")
        .annotate(n=Count("pk"))
        .filter(n__gte=count)
        .values_list("principal_user", "role")
    )
    if not pairs:
        return []
    starts: dict[tuple, list] = defaultdict(list)
    names: dict[tuple, tuple] = {}
    rows = (
        activations.filter(principal_user__in={u for u, _ in pairs}, role__in={r for _, r in pairs})
        .order_by("principal_user", "role", "start")
        .values_list(
            "principal_user",
            "role",
            "start",
            "principal_user__display_name",
            "principal_user__username",
            "role__name",
        )
    )
    for user_id, role_id, start, display_name, username, role_name in rows:
        if (user_id, role_id) in pairs:
            starts[(user_id, role_id)].append(start)
            names[(user_id, role_id)] = (display_name or username, role_name)
    affected = []
    for pair in sorted(starts, key=lambda p: names[p]):
        most = _bursts(starts[pair], count, window)
        if most:
            who, role_name = names[pair]
            affected.append(
                item(
                    f"{who}: {most} activations of {role_name} within {duration_words(window)}",
                    role_url(pair[1]),
                    pair[0],
                )
            )
    if not affected:
        return []
    return [
        Finding(
            key="",
            title=f"{plural(len(affected), 'user')} activating a role too often",
            description=(
                f"These users activated the same role {count} times or more within "
                f"{duration_words(window)} in the last 30 days: the activation may be too "
                "short for their work, or a script may be activating it."
            ),
            affected=affected,
        )
    ]


# --- Standing access -----------------------------------------------------------------------


def eligible_never_expires(thresholds: dict, now: datetime) -> list[Finding]:
    """Eligible assignments of privileged roles with no end."""
    rows, total = cut(
        with_labels(directory_assignments(now).eligible().filter(end__isnull=True)).order_by(
            "role__name", "pk"
        )
    )
    return _assignment_findings(
        rows,
        total,
        title="{count} eligible for ever",
        description="These eligible assignments of privileged roles never expire: nobody has "
        "to confirm that they are still needed.",
    )


def permanent_active(thresholds: dict, now: datetime) -> list[Finding]:
    """Permanent active assignments of privileged roles (standing access), except emergency
    access accounts, which are meant to hold it."""
    standing = (
        directory_assignments(now)
        .active()
        .filter(end__isnull=True, activated_from__isnull=True)
        .filter(not_emergency_access())
    )
    rows, total = cut(with_labels(standing).order_by("role__name", "pk"))
    return _assignment_findings(
        rows,
        total,
        title="{count} with standing access",
        description="These privileged roles are held permanently and active: they work "
        "without an activation, an MFA code or a justification, around the clock.",
    )
