"""Standing access made just-in-time: permanent active assignments replaced by eligible ones.

What the "permanent active assignments of privileged roles" alert and the dashboard's "make
eligible" do. Each principal keeps the role at the same scope, but as an eligible assignment
made by `assignment_create` (with its rules, request, audit event and mail), and the active
one is removed by `assignments_remove_many` (with its rules: the last active Global
Administrator stays, and its request and audit event).
"""

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from assignments import authz
from assignments.models import Assignment, AssignmentKind, RolePolicy
from assignments.services.administration import assignment_create
from assignments.services.bulk import assignments_remove_many, global_admins_to_keep
from pim_portal.actor import Actor

MADE_ELIGIBLE = "Made eligible: standing access replaced by just-in-time activation."


def _eligible_end(role, scope, now):
    """The longest eligible assignment the role's effective settings allow (None: permanent)."""
    policy = RolePolicy.objects.effective_for(role, scope)
    if policy.allow_permanent_eligible:
        return None
    return now + timedelta(days=policy.eligible_expire_after_days)


def _holding_eligible(rows: list[Assignment], now) -> set[tuple]:
    """(role, scope, user, group) of the rows' principals already eligible there (one query)."""
    if not rows:
        return set()
    existing = (
        Assignment.objects.not_ended(now)
        .eligible()
        .filter(
            role__in={a.role_id for a in rows},
            scope__in={a.scope_id for a in rows},
        )
        .filter(
            Q(principal_user__in={a.principal_user_id for a in rows if a.principal_user_id})
            | Q(principal_group__in={a.principal_group_id for a in rows if a.principal_group_id})
        )
        .values_list("role_id", "scope_id", "principal_user_id", "principal_group_id")
    )
    return set(existing)


def standing_make_eligible_many(*, actor: Actor, assignment_ids, justification: str = "") -> int:
    """Replace each permanent active assignment (not an activation) among `assignment_ids` by
    an eligible assignment of the same principal, role and scope, lasting as long as the
    role's settings allow; the active one is removed. Others in the list are left alone.

    Refused as a whole (403, audited) when the actor may not manage one of them. The eligible
    assignments are made before the active ones go, so an administrator can make their own
    standing access eligible. Returns how many were made eligible.
    """
    actor = Actor.of(actor)
    now = timezone.now()
    rows = list(
        Assignment.objects.in_force(now)
        .active()
        .filter(pk__in=set(assignment_ids), end__isnull=True, activated_from__isnull=True)
        .with_related()
        .order_by("pk")
    )
    grants = authz.grants_for(actor)
    for assignment in rows:
        if not grants.can_manage_role(assignment.role, assignment.scope):
            authz.deny(
                actor,
                what=f"make {assignment} eligible",
                target=assignment,
                principal=assignment.principal_name,
                role=assignment.role.name,
                scope=assignment.scope.path,
            )
    if not rows:
        return 0
    why = justification or MADE_ELIGIBLE
    with transaction.atomic():
        # The removal keeps the last active Global Administrator: leave that one as it is
        # rather than make it eligible too (it would then hold both).
        keep = global_admins_to_keep(rows, now)
        rows = [assignment for assignment in rows if assignment.pk not in keep]
        if not rows:
            return 0
        held = _holding_eligible(rows, now)
        by_place: dict[tuple, list] = {}
        for assignment in rows:
            place = (assignment.role_id, assignment.scope_id)
            if (*place, assignment.principal_user_id, assignment.principal_group_id) in held:
                continue  # eligible already: only the standing access goes
            by_place.setdefault(place, []).append(assignment)
        for same_place in by_place.values():
            first = same_place[0]
            assignment_create(
                actor=actor,
                principals=[a.principal for a in same_place],
                role=first.role,
                scope=first.scope,
                kind=AssignmentKind.ELIGIBLE,
                end=_eligible_end(first.role, first.scope, now),
                justification=why,
            )
        outcome = assignments_remove_many(
            actor=actor, assignment_ids=[a.pk for a in rows], justification=why
        )
    return len(outcome.removed)
