"""Reads that several places share (pages, services, mail, the approvals app)."""

from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.db.models import F
from django.db.models.functions import Collate

from assignments.models import Assignment, RolePolicy

APPROVE_PERMISSION = "approve_rolepolicy"


def attach_people(rows, *fields: str, known=()) -> None:
    """Set the user foreign keys `fields` of every row from one query (none for the `known`
    users, such as the viewer): the same people recur (the principal is often who made the
    row), and each prefetch is a query of its own."""
    people = {user.pk: user for user in known}
    wanted = {getattr(row, f"{name}_id") for row in rows for name in fields} - {None, *people}
    if wanted:
        people.update(get_user_model().objects.in_bulk(wanted))
    for row in rows:
        for name in fields:
            if (person := people.get(getattr(row, f"{name}_id"))) is not None:
                setattr(row, name, person)


def eligible_assignments(user, at: datetime | None = None):
    """The eligible assignments the user may activate now: directly or through a group. With
    what activating reads of them (not who made them: PostgreSQL planned the join of seven
    tables in 4 ms, for a page that reads one row)."""
    return (
        Assignment.objects.in_force(at)
        .eligible()
        .for_user(user)
        .select_related("principal_user", "principal_group", "role", "scope")
    )


def policy_approvers(policy: RolePolicy) -> tuple[list, list[Group]]:
    """The users and groups named as approvers of these settings."""
    if policy.pk is None:
        return [], []
    users = list(
        get_user_model().objects.filter(
            rolepolicyuserobjectpermission__content_object=policy,
            rolepolicyuserobjectpermission__permission__codename=APPROVE_PERMISSION,
        )
    )
    groups = list(
        Group.objects.filter(
            rolepolicygroupobjectpermission__content_object=policy,
            rolepolicygroupobjectpermission__permission__codename=APPROVE_PERMISSION,
        )
    )
    return users, groups


def tree_order():
    """Scopes in tree order: parents before children, each subtree in one run, which is the
    paths in byte order. PostgreSQL compares in the database's collation, which may skip the
    slashes, so it is told "C" (and has an index on that, migration 0004); SQLite compares
    bytes already."""
    if connection.vendor == "postgresql":
        return Collate("path", "C").asc()
    return F("path").asc()
