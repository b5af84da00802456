"""Removing many assignments, or many members from their groups, in one set-based change.

What an access review applies: `assignment_remove` for thousands of rows at once, with the same
rules (the actor manages each role at its scope; the last active Global Administrator stays;
activations end with the eligibility they came from; an assignment not started is canceled),
the same request per removal and the same audit events, in a fixed number of statements per
chunk rather than a dozen per row.
"""

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from assignments import authz, signals
from assignments.catalog import GLOBAL_ADMINISTRATOR
from assignments.models import (
    Assignment,
    RequestAction,
    RequestStatus,
    Role,
    RoleRequest,
)
from assignments.services.groups import activations_end_on_leaving_group
from audit import log as audit_log
from pim_portal.actor import Actor, user_of

CHUNK = 1000


@dataclass
class RemovalOutcome:
    removed: list[int] = field(default_factory=list)
    already_ended: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)


def _chunks(ids: list[int]):
    for at in range(0, len(ids), CHUNK):
        yield ids[at : at + CHUNK]


def lock_assignments(ids: list[int]) -> list[Assignment]:
    """The assignments, locked, in id order (chunk by chunk: every locker takes them in the
    same order)."""
    rows: list[Assignment] = []
    for chunk in _chunks(sorted(ids)):
        locked = Assignment.objects.select_for_update(of=("self",)).filter(pk__in=chunk)
        rows += list(locked.with_related().order_by("pk"))
    return rows


def _membership():
    return get_user_model().groups.through


def _global_admin_remains(now, *, ending: set[int], leaving: set[tuple[int, int]]) -> bool:
    """Whether an active account still holds Global Administrator, active and in force, once
    the assignments `ending` end (with the activations made from them) and the (user, group)
    pairs `leaving` are out of their groups (with the activations made through them)."""
    held = (
        Assignment.objects.in_force(now)
        .active()
        .filter(role__name=GLOBAL_ADMINISTRATOR)
        .exclude(pk__in=ending)
        .exclude(activated_from__in=ending)
    )
    direct = held.filter(principal_user__is_active=True).values_list(
        "principal_user_id", "activated_from__principal_group_id"
    )
    for user_id, via_group in direct:
        if via_group is None or (user_id, via_group) not in leaving:
            return True
    groups = held.filter(principal_group__isnull=False).values("principal_group_id")
    members = _membership().objects.filter(group_id__in=groups, user__is_active=True)
    return any(pair not in leaving for pair in members.values_list("user_id", "group_id"))


def _lock_global_administrator() -> None:
    """Serialise every removal that could take the last Global Administrator (as
    assignment_remove does): two reviews removing the last two at once keep one."""
    Role.objects.select_for_update().filter(name=GLOBAL_ADMINISTRATOR).first()


def global_admins_to_keep(removing: list[Assignment], now) -> set[int]:
    """The Global Administrator rows to keep, as removing them one by one would: each goes
    while another active Global Administrator remains, and the last one stays."""
    global_admins = [a for a in removing if a.role.name == GLOBAL_ADMINISTRATOR]
    if not global_admins:
        return set()
    _lock_global_administrator()
    if not _global_admin_remains(now, ending=set(), leaving=set()):
        return set()  # none is active now: removing these leaves nothing worse
    ending: set[int] = set()
    keep: set[int] = set()
    for assignment in global_admins:
        if _global_admin_remains(now, ending=ending | {assignment.pk}, leaving=set()):
            ending.add(assignment.pk)
        else:
            keep.add(assignment.pk)
    return keep


def _end(rows: list[Assignment], *, actor, now) -> None:
    """End rows now; those not started end at their start (never in force, never reported)."""
    started = [a.pk for a in rows if a.start <= now]
    later = [a.pk for a in rows if a.start > now]
    ended_by = user_of(actor)
    for chunk in _chunks(started):
        Assignment.objects.filter(pk__in=chunk).update(end=now, ended_by=ended_by)
    for chunk in _chunks(later):
        Assignment.objects.filter(pk__in=chunk).update(
            end=F("start"), ended_by=ended_by, start_processed_at=now, end_processed_at=now
        )
        RoleRequest.objects.filter(
            result_assignment__in=chunk, status=RequestStatus.SCHEDULED
        ).update(status=RequestStatus.CANCELED, completed_at=now)
    for assignment in rows:
        assignment.end = max(now, assignment.start)
    signals.assignments_changed.send(sender=Assignment, assignments=rows)


def _requests(rows: list[Assignment], *, actor, justification: str, now) -> dict[int, int]:
    """One provisioned admin_remove request per removed assignment: {assignment: request}."""
    requests = []
    for assignment in rows:
        request = RoleRequest(
            action=RequestAction.ADMIN_REMOVE,
            status=RequestStatus.PROVISIONED,
            role=assignment.role,
            scope=assignment.scope,
            kind=assignment.kind,
            requested_by=user_of(actor),
            target_assignment=assignment,
            completed_at=now,
            completed_by=user_of(actor),
            end=assignment.end,
            justification=justification,
        )
        request.set_principal(assignment.principal)
        requests.append(request)
    made = RoleRequest.objects.bulk_create(requests, batch_size=CHUNK)
    return {request.target_assignment_id: request.pk for request in made}


def _events(rows, befores: dict, *, actor, request_of: dict, message: str):
    for assignment in rows:
        yield {
            "action": "pim.assignment.removed",
            "actor": actor,
            "target": assignment,
            "principal": assignment.principal_name,
            "role": assignment.role.name,
            "scope": assignment.scope.path,
            "role_request_id": request_of.get(assignment.pk),
            "before": befores[assignment.pk],
            "after": assignment.snapshot(),
            "message": message,
        }


def _refusals(rows: list[Assignment], *, actor, grants, keep: set[int], now, outcome):
    """Split the locked rows: what to remove, what had ended, what is refused (audited)."""
    removing = []
    for assignment in rows:
        if assignment.has_ended(now):
            outcome.already_ended.append(assignment.pk)
        elif not grants.can_manage_role(assignment.role, assignment.scope):
            outcome.refused[assignment.pk] = (
                f"You may not manage {assignment.role} at {assignment.scope}."
            )
        elif assignment.pk in keep:
            outcome.refused[assignment.pk] = (
                f"{assignment.principal_name} holds the last active Global Administrator "
                "assignment: assign another Global Administrator before removing this one."
            )
        else:
            removing.append(assignment)
    refused = [a for a in rows if a.pk in outcome.refused]
    if refused:
        audit_log.record_many(
            {
                "action": "pim.security.forbidden",
                "actor": actor,
                "target": a,
                "principal": a.principal_name,
                "role": a.role.name,
                "scope": a.scope.path,
                "message": f"remove assignment {a.pk}: {outcome.refused[a.pk]}",
            }
            for a in refused
        )
    return removing


def assignments_end_as_removed(
    rows: list[Assignment], *, actor, justification: str, message: str, now
) -> dict[int, int]:
    """End locked rows now, each as a removal: its provisioned admin_remove request and its
    pim.assignment.removed event (for callers that decided already who may end what, such as
    deprovisioning). {assignment id: request id}."""
    befores = {a.pk: a.snapshot() for a in rows}
    _end(rows, actor=actor, now=now)
    request_of = _requests(rows, actor=actor, justification=justification, now=now)
    audit_log.record_many(
        _events(rows, befores, actor=actor, request_of=request_of, message=message)
    )
    return request_of


def assignments_remove_many(
    *, actor: Actor, assignment_ids, justification: str = "", message: str = ""
) -> RemovalOutcome:
    """End many assignments now, each as `assignment_remove` would, in one transaction.

    Each assignment is judged on its own: one the actor may not manage, or the last active
    Global Administrator, is refused (audited) and the rest are removed. An activation ends
    with the eligible assignment it was activated from. `message` goes into the audit events.
    """
    actor = Actor.of(actor)
    grants = authz.grants_for(actor)
    outcome = RemovalOutcome()
    now = timezone.now()
    with transaction.atomic():
        rows = lock_assignments(list(set(assignment_ids)))
        candidates = [
            a for a in rows if not a.has_ended(now) and grants.can_manage_role(a.role, a.scope)
        ]
        keep = global_admins_to_keep(candidates, now)
        removing = _refusals(rows, actor=actor, grants=grants, keep=keep, now=now, outcome=outcome)
        if not removing:
            return outcome
        activations = lock_assignments(
            list(
                Assignment.objects.not_ended(now)
                .filter(activated_from__in=[a.pk for a in removing])
                .exclude(pk__in=[a.pk for a in removing])
                .values_list("pk", flat=True)
            )
        )
        befores = {a.pk: a.snapshot() for a in (*removing, *activations)}
        _end([*removing, *activations], actor=actor, now=now)
        request_of = _requests(removing, actor=actor, justification=justification, now=now)
        why = message or justification
        audit_log.record_many(
            _events(removing, befores, actor=actor, request_of=request_of, message=why)
        )
        request_of_activation = {a.pk: request_of.get(a.activated_from_id) for a in activations}
        audit_log.record_many(
            _events(
                activations,
                befores,
                actor=actor,
                request_of=request_of_activation,
                message="The eligible assignment it was activated from was removed.",
            )
        )
        outcome.removed = [a.pk for a in removing]
    return outcome


@dataclass
class MembershipOutcome:
    removed: list[tuple[int, int]] = field(default_factory=list)
    refused: dict[tuple[int, int], str] = field(default_factory=dict)


def _holding_global_admin(pairs: list[tuple[int, int]], now) -> list[tuple[int, int]]:
    """The pairs whose group holds Global Administrator in force (active, or eligible with an
    activation of the member's): leaving it could take the last one."""
    groups = {group_id for _, group_id in pairs}
    held = Assignment.objects.in_force(now).filter(
        role__name=GLOBAL_ADMINISTRATOR, principal_group__in=groups
    )
    active = set(held.active().values_list("principal_group_id", flat=True))
    activated = set(
        Assignment.objects.in_force(now)
        .active()
        .filter(activated_from__in=held.eligible(), activated_from__principal_group__in=groups)
        .values_list("principal_user_id", "activated_from__principal_group_id")
    )
    return [pair for pair in pairs if pair[1] in active or pair in activated]


def _refuse_last_global_admin(pairs, now, outcome: MembershipOutcome) -> list[tuple[int, int]]:
    touching = _holding_global_admin(pairs, now)
    if not touching:
        return pairs
    _lock_global_administrator()
    if not _global_admin_remains(now, ending=set(), leaving=set()):
        return pairs
    leaving = {pair for pair in pairs if pair not in touching}
    for pair in touching:
        if _global_admin_remains(now, ending=set(), leaving=leaving | {pair}):
            leaving.add(pair)
        else:
            outcome.refused[pair] = (
                "Leaving the group would leave no active Global Administrator: assign another "
                "Global Administrator first."
            )
    return [pair for pair in pairs if pair in leaving]


def group_members_remove(*, actor: Actor, pairs, justification: str = "") -> MembershipOutcome:
    """Take users out of groups ((user id, group id) pairs), audited; what their membership
    activated ends with it. For directory administrators and the system. A member whose
    leaving would take the last active Global Administrator stays (refused, audited)."""
    actor = Actor.of(actor)
    grants = authz.grants_for(actor)
    if not grants.can_manage_directory():
        authz.deny(actor, what="remove members from groups")
    outcome = MembershipOutcome()
    pairs = sorted(set(pairs))
    if not pairs:
        return outcome
    membership = _membership()
    now = timezone.now()
    with transaction.atomic():
        pairs = _refuse_last_global_admin(pairs, now, outcome)
        for at in range(0, len(pairs), CHUNK):
            chunk = pairs[at : at + CHUNK]
            wanted = Q(pk__in=[])
            for user_id, group_id in chunk:
                wanted |= Q(user_id=user_id, group_id=group_id)
            rows = list(
                membership.objects.filter(wanted).select_related("user", "group").order_by("pk")
            )
            membership.objects.filter(pk__in=[row.pk for row in rows]).delete()
            audit_log.record_many(
                {
                    "action": "pim.group.member_removed",
                    "actor": actor,
                    "target": row.group,
                    "principal": str(row.user),
                    "before": {"member": str(row.user), "group": row.group.name},
                    "message": justification,
                }
                for row in rows
            )
            outcome.removed += [(row.user_id, row.group_id) for row in rows]
            activations_end_on_leaving_group(
                user_ids={row.user_id for row in rows}, group_ids={row.group_id for row in rows}
            )
        if outcome.refused:
            names = dict(
                get_user_model()
                .objects.filter(pk__in={user_id for user_id, _ in outcome.refused})
                .values_list("pk", "display_name")
            )
            groups = {g.pk: g for g in Group.objects.filter(pk__in={g for _, g in outcome.refused})}
            audit_log.record_many(
                {
                    "action": "pim.security.forbidden",
                    "actor": actor,
                    "target": groups.get(group_id),
                    "principal": names.get(user_id, user_id),
                    "message": f"remove {names.get(user_id, user_id)} from the group "
                    f"{groups.get(group_id)}: {why}",
                }
                for (user_id, group_id), why in outcome.refused.items()
            )
    return outcome
