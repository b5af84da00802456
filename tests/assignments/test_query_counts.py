"""List pages ask the database a fixed number of questions, however many rows they show."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from assignments.models import Assignment, AssignmentKind, Role, RoleKind, Scope, ScopeKind
from tests.assignments.activation_support import relax
from tests.factories import assign, make_group, make_scope, make_user, role, root

pytestmark = pytest.mark.django_db


def queries_for(client, url: str) -> int:
    """The queries of a load that counts afresh (nothing kept in the cache)."""
    client.get(url)  # the first request of a session does its own bookkeeping
    cache.clear()
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

    add(6, 0)  # every shape on every tab: users and groups, eligible and active
    baseline = queries_for(client, url)
    add(30, 6)

    with django_assert_max_num_queries(baseline):
        response = client.get(url)
    assert len(response.context["page_obj"].object_list) > 3


def test_resource_role_detail_query_count_does_not_grow(
    client_for, resource_owner, tree, django_assert_max_num_queries
):
    client = client_for(resource_owner)
    url = reverse("assignments:scope_role_detail", args=[tree["rg"].pk, role("Reader").pk])

    add_members(6, 0, "Reader", scope=tree["rg"], by=resource_owner)  # every shape
    baseline = queries_for(client, url)
    add_members(15, 6, "Reader", scope=tree["rg"], by=resource_owner)
    add_members(15, 21, "Reader", scope=tree["sub"], by=resource_owner)

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

    add(6, 0)  # every shape on every tab: users and groups, eligible and active
    baseline = queries_for(client, url)
    add(30, 6)

    with django_assert_max_num_queries(baseline):
        client.get(url)


# Deep pages cost what page one costs -----------------------------------------------------


def many_scopes(parent, count: int) -> list[Scope]:
    """`count` resource groups below `parent`, inserted at once (paths built as save() does)."""
    Scope.objects.bulk_create(
        Scope(
            name=f"Group {number:04d}",
            slug=f"g{number:04d}",
            kind=ScopeKind.RESOURCE_GROUP,
            parent=parent,
            path=f"{parent.path}resourceGroups/g{number:04d}/",
            depth=parent.depth + 1,
        )
        for number in range(count)
    )
    return list(Scope.objects.filter(parent=parent).order_by("path"))


def many_members(role_name: str, count: int, *, scope=None, kind=AssignmentKind.ACTIVE, end=None):
    now = timezone.now()
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"bulk{number:05d}", display_name=f"Bulk {number:05d}")
        for number in range(count)
    )
    Assignment.objects.bulk_create(
        Assignment(
            principal_user=user,
            role=role(role_name),
            scope=scope or root(),
            kind=kind,
            start=now - timedelta(days=60, minutes=number),
            end=end or now + timedelta(days=30),
        )
        for number, user in enumerate(users)
    )


def captured(client, url: str):
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return response, len(queries)


def test_a_deep_page_of_the_resources_tree_costs_what_page_one_costs(
    client_for, security_reader, tree
):
    groups = many_scopes(tree["sub"], 200)
    deep_group = groups[150]  # past the first three pages of 50
    assign(make_user("deep"), "Reader", scope=deep_group, kind=AssignmentKind.ELIGIBLE)
    client = client_for(security_reader)
    url = reverse("assignments:resources")

    first, first_queries = captured(client, url)
    deep, deep_queries = captured(client, url + "?page=4")

    assert deep_queries == first_queries
    shown = {scope.pk: scope for scope in deep.context["page_obj"]}
    assert shown[deep_group.pk].eligible_count == 1  # counted for the page's scopes
    assert deep.context["page_obj"].number == 4
    assert deep.context["page_obj"].paginator.count == Scope.objects.count()
    paths = [scope.path for scope in first.context["page_obj"]]
    assert paths == sorted(paths)  # tree order: every parent before its children


@pytest.mark.parametrize("tab", ["eligible", "active", "expired"])
def test_a_deep_page_of_a_busy_role_costs_what_page_one_costs(client_for, pra, tab):
    kind = AssignmentKind.ELIGIBLE if tab == "eligible" else AssignmentKind.ACTIVE
    end = timezone.now() - timedelta(days=1) if tab == "expired" else None
    many_members("Billing Administrator", 200, kind=kind, end=end)
    client = client_for(pra)
    url = reverse("assignments:role_detail", args=[role("Billing Administrator").pk])
    url += f"?tab={tab}"

    first, first_queries = captured(client, url)
    page = first.context["page_obj"]
    seen = list(page)
    for _ in range(4):  # four pages on, by the Next links
        page = captured(client, f"{url}&after={page.next_cursor}")[0].context["page_obj"]
        seen += list(page)
    deep, deep_queries = captured(client, f"{url}&after={page.next_cursor}")

    assert deep_queries == first_queries
    assert len(deep.context["page_obj"]) == 25
    assert deep.context["page_obj"].count == 200
    assert len({a.pk for a in seen + list(deep.context["page_obj"])}) == 150


def test_a_deep_page_of_a_role_at_a_scope_costs_what_page_one_costs(
    client_for, resource_owner, tree
):
    many_members("Reader", 120, scope=tree["sub"])
    client = client_for(resource_owner)
    url = reverse("assignments:scope_role_detail", args=[tree["rg"].pk, role("Reader").pk])
    url += "?tab=active"

    first, first_queries = captured(client, url)
    after = first.context["page_obj"].next_cursor
    deep, deep_queries = captured(client, f"{url}&after={after}")

    assert deep_queries == first_queries
    assert deep.context["page_obj"].has_previous
    assert {a.membership for a in deep.context["page_obj"]} == {
        "Inherited from Subscription Production"
    }


# Self-service pages do not carry the tree below an eligible scope -----------------------


@pytest.mark.parametrize(
    "page", ["my roles: eligible", "my roles: active", "my roles: expired", "activate form"]
)
def test_self_service_pages_do_not_grow_with_the_scopes_below_an_eligible_one(
    client_for, eligible_user, tree, page
):
    relax("Contributor")  # no MFA to set up first
    client = client_for(eligible_user)
    eligible = Assignment.objects.get(principal_user=eligible_user, role__kind="resource")
    if page == "activate form":
        url = reverse("assignments:activate") + f"?eligible={eligible.pk}"
    else:
        url = reverse("assignments:my_roles") + f"?tab={page.split(': ')[1]}"

    small, small_queries = captured(client, url)
    many_scopes(tree["sub"], 300)
    many_scopes(tree["rg"], 300)
    large, large_queries = captured(client, url)

    assert large_queries == small_queries
    assert abs(len(large.content) - len(small.content)) < 200
    assert b"Group 0299" not in large.content


# An activation ---------------------------------------------------------------------------------


def statements(context) -> list[str]:
    """The statements a request ran, without the savepoints of the test's own transaction
    (outside a test, atomic() opens a real transaction, which is not a statement here)."""
    return [
        q["sql"]
        for q in context.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT"))
    ]


@pytest.mark.parametrize("role_name", ["Privileged Role Administrator", "Contributor"])
def test_an_activation_with_mfa_and_a_reason_takes_at_most_12_queries(
    client_for, eligible_user, tree, role_name, django_capture_on_commit_callbacks
):
    from tests.assignments.activation_support import code_for, make_device, set_policy

    set_policy(role_name, require_mfa_on_activation=True, require_approval=False)
    device = make_device(eligible_user)
    client = client_for(eligible_user)
    eligible = Assignment.objects.get(principal_user=eligible_user, role__name=role_name)
    many_scopes(tree["sub"], 50)  # scopes below the eligible one cost nothing
    for _ in range(20):  # nor do the user's other roles
        assign(eligible_user, "Reader", scope=tree["vm"], kind=AssignmentKind.ELIGIBLE)
    data = {
        "eligible": [eligible.pk],
        "justification": "Incident 42",
        "duration_hours": "1",
        "mfa_code": code_for(device),
    }
    with (
        CaptureQueriesContext(connection) as context,
        django_capture_on_commit_callbacks(execute=False) as queued,
    ):
        response = client.post(reverse("assignments:activate"), data)
    assert response.status_code == 302, response.content[:2000]
    assert Assignment.objects.filter(activated_from=eligible).exists()
    ran = statements(context)
    assert len(ran) <= 12, "\n".join(ran)
    # The mail leaves the request: queued for a worker, not rendered and sent here.
    assert mail.outbox == []
    assert queued, "the activation's mail job was not queued"
