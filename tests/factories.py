"""Plain helpers to build test data directly (services are what the tests exercise)."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from assignments.models import Assignment, AssignmentKind, Role, Scope, ScopeKind

PASSWORD = "correct-horse-battery-staple"


def make_user(username: str, **fields):
    fields.setdefault("email", f"{username}@example.com")
    fields.setdefault("display_name", username.capitalize())
    return get_user_model().objects.create_user(username=username, password=PASSWORD, **fields)


def make_group(name: str, *members) -> Group:
    group = Group.objects.create(name=name)
    group.user_set.add(*members)
    return group


def role(name: str) -> Role:
    return Role.objects.get(name=name)


def root() -> Scope:
    return Scope.objects.root()


def make_scope(name: str, kind: str, parent: Scope, slug: str | None = None) -> Scope:
    return Scope.objects.create(name=name, slug=slug or name.lower(), kind=kind, parent=parent)


def assign(
    principal,
    role_name: str,
    *,
    scope: Scope | None = None,
    kind: str = AssignmentKind.ACTIVE,
    start=None,
    end=None,
    permanent: bool = False,
    **fields,
) -> Assignment:
    now = timezone.now()
    start = start or now - timedelta(minutes=1)
    if end is None and not permanent:
        end = now + timedelta(days=30)
    assignment = Assignment(
        role=role(role_name),
        scope=scope or root(),
        kind=kind,
        start=start,
        end=end,
        **fields,
    )
    assignment.set_principal(principal)
    assignment.save()
    return assignment


__all__ = ["ScopeKind", "AssignmentKind"]
