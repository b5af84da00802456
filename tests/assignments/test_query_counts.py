"""List pages ask the database a fixed number of questions, however many rows they show."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from assignments.models import Assignment, AssignmentKind, Role, RoleKind, ScopeKind
from tests.factories import assign, make_group, make_scope, make_user, role

pytestmark = pytest.mark.django_db


def queries_for(client, url: str) -> int:
    client.get(url)  # the first request of a session does its own bookkeeping
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


def add_members(count: int, start: int, role_name: str, scope=None, by=None) -> None:
    """Members of every shape: users and groups, eligible and active, with who assigned them."""
    for number in range(start, start + count):
        kind = AssignmentKind.ELIGIBLE if number % 2 else AssignmentKind.ACTIVE
        if number % 3 == 0:
            principal = make_group(f"group{number}", make_user(f"member{number}"))
        else:
            principal = make_user(f"user{number}")
        assign(principal, role_name, scope=scope, kind=kind, created_by=by)


def test_directory_roles_query_count_does_not_grow(client_for, pra, django_assert_max_num_queries):
    client = client_for(pra)
    url = reverse("assignments:directory_roles")

    def add_roles(count: int, start: int) -> None:
        for number in range(start, start + count):
            Role.objects.create(name=f"Custom role {number:02d}", kind=RoleKind.DIRECTORY)
            add_members(2, number * 2, f"Custom role {number:02d}", by=pra)

    add_roles(3, 0)
    baseline = queries_for(client, url)
    add_roles(30, 3)

    with django_assert_max_num_queries(baseline):
        client.get(url)


@pytest.mark.parametrize("tab", ["eligible", "active", "expired"])
def test_role_detail_query_count_does_not_grow(client_for, pra, tab, django_assert_max_num_queries):
    client = client_for(pra)
    url = reverse("assignments:role_detail", args=[role("Billing Administrator").pk]) + (
        f"?tab={tab}"
    )

    def add(count: int, start: int) -> None:
        add_members(count, start, "Billing Administrator", by=pra)
        if tab == "expired":
            Assignment.objects.filter(role__name="Billing Administrator").update(end=timezone.now())

    add(3, 0)
    baseline = queries_for(client, url)
    add(30, 3)

    with django_assert_max_num_queries(baseline):
        response = client.get(url)
    assert len(response.context["page_obj"].object_list) > 3


def test_resource_role_detail_query_count_does_not_grow(
    client_for, resource_owner, tree, django_assert_max_num_queries
):
    client = client_for(resource_owner)
    url = reverse("assignments:scope_role_detail", args=[tree["rg"].pk, role("Reader").pk])

    add_members(3, 0, "Reader", scope=tree["rg"], by=resource_owner)
    baseline = queries_for(client, url)
    add_members(15, 3, "Reader", scope=tree["rg"], by=resource_owner)
    add_members(15, 18, "Reader", scope=tree["sub"], by=resource_owner)

    with django_assert_max_num_queries(baseline):
        client.get(url)


def test_resources_query_count_does_not_grow(
    client_for, security_reader, tree, django_assert_max_num_queries
):
    client = client_for(security_reader)
    url = reverse("assignments:resources")

    def add_scopes(count: int, start: int) -> None:
        for number in range(start, start + count):
            group = make_scope(f"rg{number}", ScopeKind.RESOURCE_GROUP, tree["sub"])
            make_scope(f"vm{number}", ScopeKind.RESOURCE, group)
            add_members(1, number, "Reader", scope=group)

    add_scopes(3, 0)
    baseline = queries_for(client, url)
    add_scopes(30, 3)

    with django_assert_max_num_queries(baseline):
        client.get(url)


def test_scope_detail_query_count_does_not_grow(
    client_for, resource_owner, tree, django_assert_max_num_queries
):
    client = client_for(resource_owner)
    url = reverse("assignments:scope_detail", args=[tree["rg"].pk])

    def add(count: int, start: int) -> None:
        for number in range(start, start + count):
            make_scope(f"vm{number}", ScopeKind.RESOURCE, tree["rg"])
        role_names = ["Reader", "Contributor", "Owner", "User Access Administrator"]
        for number in range(start, start + count):
            scope = tree["rg"] if number % 2 else tree["sub"]
            add_members(1, number, role_names[number % 4], scope=scope)

    add(3, 0)
    baseline = queries_for(client, url)
    add(30, 3)

    with django_assert_max_num_queries(baseline):
        client.get(url)
