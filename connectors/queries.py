"""The desired state of mappings, read from the assignments by the rule of time.

A user belongs in a mapping's target object while an active assignment of the mapping's role,
at its scope or above, is in force for them (directly or through a group they are a member
of) and their account is active. Nothing here is stored: it is the same question every page
asks, `Assignment.objects.in_force(now).active()`, asked for one mapping or one user.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db.models import Count, Q

from assignments.choices import ancestor_paths
from assignments.models import Assignment
from connectors.models import Mapping, Provisioning, ProvisioningState

MAPPED_ROLES_KEY = "connectors:mapped-roles"
MAPPED_ROLES_SECONDS = 30


def _covering(mapping: Mapping):
    """Active assignments of the mapping's role at its scope or above (any time)."""
    return Assignment.objects.active().filter(
        role_id=mapping.role_id, scope__path__in=ancestor_paths(mapping.scope.path)
    )


def desired_users(mapping: Mapping, now: datetime):
    """The active users who belong in the mapping's target object at `now`."""
    held = _covering(mapping).in_force(now)
    direct = held.filter(principal_user__isnull=False).values("principal_user")
    groups = held.filter(principal_group__isnull=False).values("principal_group")
    members = Group.user_set.through.objects.filter(group__in=groups).values("user")
    return get_user_model().objects.filter(Q(pk__in=direct) | Q(pk__in=members), is_active=True)


@dataclass(frozen=True)
class Holding:
    """Whether a user belongs in a mapping now, through which assignment, and when that may
    change next (the earliest future start or end among the assignments that could give it)."""

    in_force: bool
    via: Assignment | None
    next_change: datetime | None


def holdings(rows: list[Provisioning], now: datetime) -> dict[int, Holding]:
    """`Holding` of each provisioning row (by its pk), in two queries for the whole batch."""
    if not rows:
        return {}
    users = {row.user_id for row in rows}
    groups_of: dict[int, set[int]] = {user: set() for user in users}
    for user, group in Group.user_set.through.objects.filter(user__in=users).values_list(
        "user", "group"
    ):
        groups_of[user].add(group)
    all_groups = set().union(*groups_of.values())
    paths = {path for row in rows for path in ancestor_paths(row.mapping.scope.path)}
    candidates = list(
        Assignment.objects.not_ended(now)
        .active()
        .filter(role__in={row.mapping.role_id for row in rows}, scope__path__in=paths)
        .filter(Q(principal_user__in=users) | Q(principal_group__in=all_groups))
        .select_related("scope")
    )
    of_principal: dict[tuple[str, int], list[Assignment]] = defaultdict(list)
    for a in candidates:
        key = (
            ("user", a.principal_user_id)
            if a.principal_user_id
            else ("group", a.principal_group_id)
        )
        of_principal[key].append(a)
    result = {}
    for row in rows:
        user = row.user
        held = of_principal[("user", user.pk)] + [
            a for group in groups_of[user.pk] for a in of_principal[("group", group)]
        ]
        mine = [
            a
            for a in held
            if a.role_id == row.mapping.role_id and row.mapping.scope.path.startswith(a.scope.path)
        ]
        now_in = [a for a in mine if a.is_in_force(now)]
        changes = [a.start for a in mine if a.start > now] + [
            a.end for a in mine if a.end is not None and a.end > now
        ]
        via = max(now_in, key=lambda a: (a.end is None, a.end or now), default=None)
        if via is None:  # a scheduled activation: the one that will put them in
            via = min((a for a in mine if a.start > now), key=lambda a: a.start, default=None)
        result[row.pk] = Holding(
            in_force=bool(now_in) and user.is_active,
            via=via,
            next_change=min(changes, default=None),
        )
    return result


def mapped_role_ids() -> set[int]:
    """The roles some mapping makes true, kept a few seconds: asked on every assignment change,
    it must cost no query. A mapping made in another process is seen within seconds, and
    reconciliation catches up anything missed meanwhile."""
    roles = cache.get(MAPPED_ROLES_KEY)
    if roles is None:
        roles = set(Mapping.objects.values_list("role_id", flat=True).distinct())
        cache.set(MAPPED_ROLES_KEY, roles, MAPPED_ROLES_SECONDS)
    return roles


def forget_mapped_roles() -> None:
    cache.delete(MAPPED_ROLES_KEY)


def mappings_covering(assignments: list[Assignment]) -> dict[int, list[Mapping]]:
    """For each assignment (by pk), the mappings it can put people in: same role, the mapping's
    scope at or below the assignment's."""
    roles = {a.role_id for a in assignments}
    mappings = list(
        Mapping.objects.filter(role__in=roles, connector__enabled=True).select_related("scope")
    )
    return {
        a.pk: [
            m for m in mappings if m.role_id == a.role_id and m.scope.path.startswith(a.scope.path)
        ]
        for a in assignments
    }


def status_counts(mapping_ids) -> dict[int, dict[str, int]]:
    """{mapping: {state: how many users}} in one query, for the connector pages."""
    counts: dict[int, dict[str, int]] = {pk: {} for pk in mapping_ids}
    rows = (
        Provisioning.objects.filter(mapping__in=mapping_ids)
        .values_list("mapping", "state")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for mapping, state, n in rows:
        counts[mapping][state] = n
    return counts


def assignment_statuses(assignments) -> dict:
    """The provisioning status of each assignment on a page (one query): for a user's
    assignment, the state of each mapping it put them in; for a group's, the states of its
    members counted. Registered with `assignments.extensions` (apps.py)."""
    from assignments.extensions import ProvisioningStatus

    mapped = mapped_role_ids()
    ids = [a.pk for a in assignments if a.role_id in mapped and a.kind == "active"]
    if not ids:
        return {}  # no query for the pages of roles no connector makes true
    rows = (
        Provisioning.objects.filter(via_assignment__in=ids)
        .select_related("mapping__connector")
        .only(
            "via_assignment",
            "state",
            "error",
            "mapping__target",
            "mapping__connector__display_name",
        )
        .order_by("mapping__connector__display_name", "mapping__target", "pk")
    )
    grouped: dict[tuple[int, int], list[Provisioning]] = {}
    for row in rows:
        grouped.setdefault((row.via_assignment_id, row.mapping_id), []).append(row)
    result: dict[int, list] = {}
    for (assignment, _mapping), members in grouped.items():
        where = f"{members[0].mapping.connector}: {members[0].mapping.target}"
        if len(members) == 1:
            row = members[0]
            status = ProvisioningStatus(where, row.state, row.get_state_display(), row.error)
        else:
            states = {}
            for row in members:
                states[row.state] = states.get(row.state, 0) + 1
            worst = next((s for s in WORST_FIRST if s in states), members[0].state)
            label = ", ".join(
                f"{n} {ProvisioningState(s).label.lower()}" for s, n in sorted(states.items())
            )
            errors = "; ".join(dict.fromkeys(r.error for r in members if r.error))
            status = ProvisioningStatus(where, worst, label, errors)
        result.setdefault(assignment, []).append(status)
    return result


WORST_FIRST = (
    ProvisioningState.FAILED,
    ProvisioningState.PENDING_DEPROVISIONING,
    ProvisioningState.PENDING_PROVISIONING,
    ProvisioningState.PROVISIONED,
    ProvisioningState.DEPROVISIONED,
)
