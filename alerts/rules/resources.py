"""Rules about resource roles, one alert per scope: assignments outside PIM, too many owners,
too many permanent owners."""

from collections import defaultdict
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import Q

from alerts.rules.base import (
    AFFECTED_LIMIT,
    OWNER,
    Finding,
    assignment_item,
    made_outside_pim,
    plural,
    scope_label,
    with_labels,
)
from assignments.models import Assignment, RoleKind


def _by_scope(rows) -> dict:
    grouped = defaultdict(list)
    for assignment in rows:
        grouped[assignment.scope].append(assignment)
    return grouped


def assigned_outside_pim(thresholds: dict, now: datetime) -> list[Finding]:
    """Active resource role assignments in force that no request made, by scope."""
    outside = made_outside_pim(
        Assignment.objects.in_force(now).active().filter(role__kind=RoleKind.RESOURCE)
    )
    findings = []
    for scope, rows in _by_scope(with_labels(outside).order_by("scope__path", "pk")).items():
        findings.append(
            Finding(
                key=str(scope.pk),
                title=f"{plural(len(rows), 'assignment')} made outside PIM at {scope}",
                description=f"These active role assignments at {scope_label(scope)} were not "
                "made through the portal: no request made them, so nobody approved, justified "
                "or was told of them.",
                affected=[assignment_item(a) for a in rows[:AFFECTED_LIMIT]],
                total=len(rows) if len(rows) > AFFECTED_LIMIT else None,
            )
        )
    return findings


def _owners_by_scope(assignments) -> list[tuple]:
    """(scope, its Owner assignments, the accounts they give Owner) for every scope with an
    Owner assignment: one query for the assignments, one for the groups' members."""
    rows = list(
        with_labels(assignments.filter(role__name=OWNER, role__kind=RoleKind.RESOURCE))
        .filter(Q(principal_user__isnull=True) | Q(principal_user__is_active=True))
        .order_by("scope__path", "pk")
    )
    group_ids = {a.principal_group_id for a in rows if a.principal_group_id}
    members = defaultdict(set)
    if group_ids:
        membership = get_user_model().groups.through.objects.filter(
            group_id__in=group_ids, user__is_active=True
        )
        for group_id, user_id in membership.values_list("group_id", "user_id"):
            members[group_id].add(user_id)
    result = []
    for scope, held in _by_scope(rows).items():
        accounts = set()
        for assignment in held:
            if assignment.principal_user_id:
                accounts.add(assignment.principal_user_id)
            else:
                accounts |= members[assignment.principal_group_id]
        result.append((scope, held, accounts))
    return result


def _too_many(assignments, limit: int, *, what: str, description: str) -> list[Finding]:
    findings = []
    for scope, held, accounts in _owners_by_scope(assignments):
        if len(accounts) <= limit:
            continue
        findings.append(
            Finding(
                key=str(scope.pk),
                title=f"{plural(len(accounts), what)} of {scope}",
                description=description.format(
                    count=plural(len(accounts), "account"), scope=scope_label(scope), limit=limit
                ),
                affected=[assignment_item(a) for a in held[:AFFECTED_LIMIT]],
                total=len(held) if len(held) > AFFECTED_LIMIT else None,
            )
        )
    return findings


def too_many_owners(thresholds: dict, now: datetime) -> list[Finding]:
    """Scopes where more accounts than allowed are Owner (eligible or active, directly or
    through a group), counting the assignments made at that scope."""
    return _too_many(
        Assignment.objects.in_force(now),
        thresholds["count"],
        what="owner",
        description="{count} are Owner of {scope} (eligible or active, directly or through "
        "a group); the settings allow {limit}. Every owner can change everything there, "
        "including who has access.",
    )


def too_many_permanent_owners(thresholds: dict, now: datetime) -> list[Finding]:
    """Scopes where more accounts than allowed are permanent active Owner."""
    return _too_many(
        Assignment.objects.in_force(now).active().filter(end__isnull=True),
        thresholds["count"],
        what="permanent owner",
        description="{count} are permanent active Owner of {scope}; the settings allow "
        "{limit}. Permanent owners hold that access around the clock, with no activation.",
    )
