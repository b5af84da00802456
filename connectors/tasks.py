"""Workers' jobs of the connectors: react to changes, provision due rows, reconcile.

Provisioning is due work of the time engine ("connector provisioning"): the timekeeper sends
a worker as soon as a row is due (an end, a scheduled start, a retry). A change made now (an
activation, a removal, a group left) queues `assignments_changed` or `users_changed`, which
make the rows of the people concerned due and provision them at once. `reconcile_all`, every
CONNECTOR_RECONCILE_MINUTES, compares every target with the desired state and catches up
whatever was missed while workers or targets were down. Every job is idempotent.
"""

from django.conf import settings
from django.contrib.auth.models import Group
from django.db.models import Q
from django.utils import timezone
from django_q.models import Schedule

from assignments.models import Assignment
from connectors import provisioning
from connectors.models import Connector, Mapping, Provisioning
from connectors.queries import mappings_covering
from connectors.reconcile import Result, reconcile_connector
from pim_portal import timekeeper

PROVISIONING = "connector provisioning"
RECONCILE_SCHEDULE = "pim: reconcile connectors"


def register_due_work() -> None:
    timekeeper.register(
        timekeeper.DueWork(
            name=PROVISIONING,
            next_due=provisioning.next_due,
            run_batch=provisioning.sync_batch,
        )
    )
    from connectors.webhooks.tasks import register_due_work as register_webhooks

    register_webhooks()


def provision_due(seconds: float = 30) -> int:
    """Sync every due row now, in batches (a worker's job; the time engine does the same)."""
    return timekeeper.drain(PROVISIONING, seconds=seconds)


def _members_of(group_ids) -> dict[int, set[int]]:
    members: dict[int, set[int]] = {g: set() for g in group_ids}
    for group, user in Group.user_set.through.objects.filter(group__in=group_ids).values_list(
        "group", "user"
    ):
        members[group].add(user)
    return members


def assignments_changed(assignment_ids: list[int]) -> int:
    """Assignments were made, changed or ended: their holders' rows in the mappings they can
    put people in are due now. Then provision."""
    assignments = list(
        Assignment.objects.active().filter(pk__in=assignment_ids).select_related("scope")
    )
    covering = mappings_covering(assignments)
    members = _members_of({a.principal_group_id for a in assignments if a.principal_group_id})
    pairs = set()
    for assignment in assignments:
        users = (
            {assignment.principal_user_id}
            if assignment.principal_user_id
            else members[assignment.principal_group_id]
        )
        pairs |= {(m.pk, u) for m in covering[assignment.pk] for u in users}
    provisioning.mark_due(pairs)
    return provision_due()


def users_changed(user_ids: list[int]) -> int:
    """Users joined or left groups, or their account was turned off or on: every row of theirs,
    and every mapping their active assignments can reach, is due now. Then provision."""
    now = timezone.now()
    pairs = set(Provisioning.objects.filter(user__in=user_ids).values_list("mapping", "user"))
    groups = Group.user_set.through.objects.filter(user__in=user_ids)
    held = list(
        Assignment.objects.not_ended(now)
        .active()
        .filter(Q(principal_user__in=user_ids) | Q(principal_group__in=groups.values("group")))
        .select_related("scope")
    )
    covering = mappings_covering(held)
    member_of: dict[int, set[int]] = {}
    for user, group in groups.values_list("user", "group"):
        member_of.setdefault(group, set()).add(user)
    for assignment in held:
        users = (
            {assignment.principal_user_id}
            if assignment.principal_user_id
            else member_of.get(assignment.principal_group_id, set())
        )
        pairs |= {(m.pk, u) for m in covering[assignment.pk] for u in users}
    provisioning.mark_due(pairs)
    return provision_due()


def reconcile(connector_id: int) -> dict:
    """Reconcile one connector now (its page's "Reconcile now"), then provision."""
    connector = Connector.objects.filter(pk=connector_id).first()
    if connector is None:
        return {}
    result = reconcile_connector(connector)
    provision_due()
    return vars(result)


def reconcile_mapping(mapping_id: int) -> dict:
    """A mapping made or changed: reconcile its connector, then provision."""
    mapping = Mapping.objects.filter(pk=mapping_id).select_related("connector").first()
    return reconcile(mapping.connector_id) if mapping else {}


def reconcile_all() -> dict:
    """The periodic reconciliation of every enabled connector."""
    total = Result()
    for connector in Connector.objects.filter(enabled=True):
        total.merge(reconcile_connector(connector))
    provision_due()
    return vars(total)


def ensure_periodic_schedules(**kwargs) -> None:
    """Create (or re-time) the periodic reconciliation once, after migrate."""
    Schedule.objects.update_or_create(
        name=RECONCILE_SCHEDULE,
        defaults={
            "func": "connectors.tasks.reconcile_all",
            "schedule_type": Schedule.MINUTES,
            "minutes": settings.CONNECTOR_RECONCILE_MINUTES,
            "repeats": -1,
        },
    )
