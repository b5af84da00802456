"""What the dashboard and the weekly digest read: people per privileged role, assignments by
type, activations per day, standing access, assignments made outside PIM.

Each read is one grouped query, whatever the number of rows, roles or days: the dashboard's
budget is a fixed number of queries (see tests/pim_portal/test_dashboard.py).

People, not assignments: a group's members count one by one, and a user who holds a role
directly and through a group (or through two groups) counts once for it. Deactivated accounts
hold nothing (they cannot sign in), so they are not counted, as in the alerts.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db import connection
from django.db.models import Case, Count, F, IntegerField, Q, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from alerts.rules.base import PRIVILEGED_DIRECTORY_ROLES, made_outside_pim, not_emergency_access
from assignments.catalog import GLOBAL_ADMINISTRATOR
from assignments.models import Assignment, AssignmentKind, Role, RoleKind


def privileged_roles() -> list[Role]:
    """The directory roles the alerts treat as privileged (their list is the one place)."""
    return list(
        Role.objects.filter(kind=RoleKind.DIRECTORY, name__in=PRIVILEGED_DIRECTORY_ROLES).order_by(
            "name"
        )
    )


# --- People per privileged role --------------------------------------------------------------


@dataclass
class Holders:
    """Distinct users holding a role (or any privileged role: `role` None) in force now."""

    role: Role | None = None
    eligible: int = 0
    timebound: int = 0  # active with an end (activations among them)
    permanent: int = 0  # active without an end
    active: int = 0  # active, time-bound or permanent (a user with both counts once)
    total: int = 0  # eligible or active


@dataclass
class HolderCounts:
    roles: list[Holders] = field(default_factory=list)
    everyone: Holders = field(default_factory=Holders)

    def of(self, name: str) -> Holders:
        for holders in self.roles:
            if holders.role is not None and holders.role.name == name:
                return holders
        return Holders()


def _flags():
    one = Value(1, output_field=IntegerField())

    def flag(condition):
        return Case(When(condition, then=one), default=Value(0), output_field=IntegerField())

    return {
        "is_eligible": flag(Q(kind=AssignmentKind.ELIGIBLE)),
        "is_timebound": flag(Q(kind=AssignmentKind.ACTIVE, end__isnull=False)),
        "is_permanent": flag(Q(kind=AssignmentKind.ACTIVE, end__isnull=True)),
    }


def _holder_rows_sql(role_ids: list[int], now: datetime) -> tuple[str, list]:
    """(role, user, eligible?, time-bound?, permanent?) per assignment in force, a group's
    assignment once per member: two ORM querysets, compiled and glued with UNION ALL."""
    held = Assignment.objects.in_force(now).filter(role_id__in=role_ids).order_by()
    fields = ("is_eligible", "is_timebound", "is_permanent")
    direct = (
        held.filter(principal_user__is_active=True)
        .annotate(**_flags())
        .values_list("role_id", "principal_user_id", *fields)
    )
    via_groups = (
        held.filter(principal_group__isnull=False, principal_group__user__is_active=True)
        .annotate(**_flags())
        .values_list("role_id", "principal_group__user", *fields)
    )
    direct_sql, direct_params = direct.query.sql_with_params()
    group_sql, group_params = via_groups.query.sql_with_params()
    return f"{direct_sql} UNION ALL {group_sql}", [*direct_params, *group_params]


_HOLDERS_SQL = """
WITH holders (role_id, user_id, is_eligible, is_timebound, is_permanent) AS ({rows}),
per_role AS (
    SELECT role_id, user_id, MAX(is_eligible) AS e, MAX(is_timebound) AS t,
           MAX(is_permanent) AS p
    FROM holders GROUP BY role_id, user_id
)
SELECT role_id, SUM(e), SUM(t), SUM(p), SUM(CASE WHEN t + p > 0 THEN 1 ELSE 0 END), COUNT(*)
FROM per_role GROUP BY role_id
UNION ALL
SELECT NULL, SUM(e), SUM(t), SUM(p), SUM(CASE WHEN t + p > 0 THEN 1 ELSE 0 END), COUNT(*)
FROM (
    SELECT user_id, MAX(e) AS e, MAX(t) AS t, MAX(p) AS p FROM per_role GROUP BY user_id
) AS per_user
"""


def holders_per_role(roles: list[Role], now: datetime | None = None) -> HolderCounts:
    """Distinct users per role and in all (eligible, time-bound active, permanent active), from
    assignments in force: one statement, grouped in the database."""
    now = now or timezone.now()
    counts = HolderCounts(roles=[Holders(role=role) for role in roles])
    if not roles:
        return counts
    rows_sql, params = _holder_rows_sql([role.pk for role in roles], now)
    with connection.cursor() as cursor:
        cursor.execute(_HOLDERS_SQL.format(rows=rows_sql), params)
        rows = cursor.fetchall()
    by_role = {holders.role.pk: holders for holders in counts.roles}
    for role_id, eligible, timebound, permanent, active, total in rows:
        holders = counts.everyone if role_id is None else by_role.get(role_id)
        if holders is None:
            continue
        holders.eligible, holders.timebound = int(eligible or 0), int(timebound or 0)
        holders.permanent, holders.active = int(permanent or 0), int(active or 0)
        holders.total = int(total or 0)
    return counts


# --- Assignments by type, and assignments made ----------------------------------------------


@dataclass
class TypeCounts:
    eligible: int = 0  # just-in-time: eligible, to be activated
    timebound: int = 0  # active until an end
    permanent: int = 0  # active without an end

    @property
    def total(self) -> int:
        return self.eligible + self.timebound + self.permanent


@dataclass
class AssignmentCounts:
    directory: TypeCounts
    resource: TypeCounts
    made_to_users: int
    made_to_groups: int
    made_since: datetime


def _in_force_q(now: datetime) -> Q:
    return Q(start__lte=now) & (Q(end__isnull=True) | Q(end__gt=now))


def assignment_counts(visible, now: datetime | None = None, *, made_days: int = 30):
    """Assignments in force by role kind and type, and assignments made in the last
    `made_days` days to users and to groups (not activations: those are not made by an
    administrator), over `visible` (a restricted queryset): one aggregate."""
    now = now or timezone.now()
    since = now - timedelta(days=made_days)
    in_force = _in_force_q(now)
    directory, resource = Q(role__kind=RoleKind.DIRECTORY), Q(role__kind=RoleKind.RESOURCE)
    eligible = Q(kind=AssignmentKind.ELIGIBLE)
    timebound = Q(kind=AssignmentKind.ACTIVE, end__isnull=False)
    permanent = Q(kind=AssignmentKind.ACTIVE, end__isnull=True)
    made = Q(created_at__gte=since, activated_from__isnull=True) & ~Q(end=F("start"))

    def count(condition):
        return Count("pk", filter=condition)

    row = visible.order_by().aggregate(
        d_eligible=count(in_force & directory & eligible),
        d_timebound=count(in_force & directory & timebound),
        d_permanent=count(in_force & directory & permanent),
        r_eligible=count(in_force & resource & eligible),
        r_timebound=count(in_force & resource & timebound),
        r_permanent=count(in_force & resource & permanent),
        made_users=count(made & Q(principal_user__isnull=False)),
        made_groups=count(made & Q(principal_group__isnull=False)),
    )
    return AssignmentCounts(
        directory=TypeCounts(row["d_eligible"], row["d_timebound"], row["d_permanent"]),
        resource=TypeCounts(row["r_eligible"], row["r_timebound"], row["r_permanent"]),
        made_to_users=row["made_users"],
        made_to_groups=row["made_groups"],
        made_since=since,
    )


# --- Activations per day ---------------------------------------------------------------------


def local_days(days: int, now: datetime | None = None) -> list[date]:
    """The last `days` calendar days in the current time zone, today last."""
    today = timezone.localdate(now or timezone.now())
    return [today - timedelta(days=n) for n in range(days - 1, -1, -1)]


def local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def activations(visible=None):
    """Active assignments made by activating an eligible one, that were in force at some
    point (a scheduled activation canceled before its start never was)."""
    rows = Assignment.objects.all() if visible is None else visible
    return rows.filter(kind=AssignmentKind.ACTIVE, activated_from__isnull=False).exclude(
        end=F("start")
    )


def activations_per_day(visible, days: list[date], now: datetime | None = None) -> list[tuple]:
    """(local day, role id, role name, activations) for activations that started on those
    days in the current time zone: one grouped query."""
    now = now or timezone.now()
    zone = timezone.get_current_timezone()
    rows = (
        activations(visible)
        .filter(start__gte=local_midnight(days[0]), start__lte=now)
        .annotate(day=TruncDate("start", tzinfo=zone))
        .order_by()
        .values_list("day", "role_id", "role__name")
        .annotate(n=Count("pk"))
    )
    return [(day, role_id, name, n) for day, role_id, name, n in rows]


# --- Standing access and assignments made outside PIM ---------------------------------------


def standing_access(now: datetime | None = None, roles: list[Role] | None = None):
    """Permanent active assignments of privileged roles in force (not of emergency access
    accounts, which are meant to hold it): the standing access that just-in-time activation
    is meant to replace, as the alert of that name finds it. By role id, then id: the index on
    (role, end, id) reads them in that order."""
    roles = privileged_roles() if roles is None else roles
    return (
        Assignment.objects.in_force(now or timezone.now())
        .active()
        .filter(role_id__in=[role.pk for role in roles], end__isnull=True)
        .filter(activated_from__isnull=True)
        .filter(not_emergency_access())
        .select_related("role", "principal_group")  # the people: assignments.queries.attach_people
        .order_by("role_id", "pk")
    )


def outside_pim(rows=None):
    """Assignments that no request made (nor changed): as the alert finds them."""
    return made_outside_pim(Assignment.objects.all() if rows is None else rows)


def global_administrators(counts: HolderCounts) -> Holders:
    return counts.of(GLOBAL_ADMINISTRATOR)
