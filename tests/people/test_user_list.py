"""The Users list: search ("starts with" on display name, username and e-mail), filters that
survive paging, an empty state, and a query count flat in the number of users, up to ten
thousand of them."""

import time

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from pim_portal.models import GroupIdentity, Source
from tests.factories import make_user
from tests.people.conftest import phone_of

pytestmark = pytest.mark.django_db

User = get_user_model()
URL = "/users/"


def as_(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def names(client, **query):
    return [u.username for u in client.get(reverse("people:user_list"), query).context["users"]]


def bulk_users(count: int, *, prefix="bulk", source=Source.LOCAL, with_phones=False):
    users = [
        User(
            username=f"{prefix}{n:05d}",
            display_name=f"{prefix.capitalize()} {n:05d}",
            email=f"{prefix}{n:05d}@example.com",
            source=source,
            password="!",
        )
        for n in range(count)
    ]
    made = User.objects.bulk_create(users, batch_size=2000)
    if with_phones:
        for user in User.objects.filter(username__startswith=prefix)[:count]:
            phone_of(user)
    return made


def test_url():
    assert reverse("people:user_list") == URL


@pytest.fixture
def people(db):
    make_user("anna", display_name="Anna Berg", email="a.berg@contoso.com")
    make_user("bert", display_name="Bert Anders", email="bert@contoso.com")
    make_user(
        "carl",
        display_name="Carl Carlsson",
        email="ANNAS-assistant@contoso.com",
        source=Source.SCIM,
    )
    make_user("dora", display_name="Dora Dahl", is_active=False, source=Source.OIDC)


def test_search_matches_the_start_of_name_username_or_email(user_admin, people):
    client = as_(user_admin)
    assert names(client, q="ann") == ["anna", "carl"]  # Anna's name; Carl's e-mail
    assert names(client, q="BERT") == ["bert"]
    assert names(client, q="a.berg@") == ["anna"]
    assert names(client, q="berg") == []  # "starts with", as Entra ID's search


def test_filters_by_source_and_status(user_admin, people):
    client = as_(user_admin)
    assert names(client, source="scim") == ["carl"]
    assert names(client, source="oidc") == ["dora"]
    assert names(client, status="inactive") == ["dora"]
    assert "dora" not in names(client, status="active")


def test_unknown_filter_values_are_ignored(user_admin, people):
    client = as_(user_admin)
    response = client.get(reverse("people:user_list"), {"source": "x' OR 1=1", "status": "?"})
    assert response.status_code == 200
    assert len(response.context["users"]) == 5  # everyone, Uma included


def test_empty_state_of_a_search(user_admin):
    page = as_(user_admin).get(reverse("people:user_list"), {"q": "zzz"})
    assert "No user matches the search and filters." in page.content.decode()


def test_filters_survive_paging(user_admin):
    bulk_users(60)
    page = as_(user_admin).get(reverse("people:user_list"), {"q": "bulk", "source": "local"})
    assert page.context["page_obj"].paginator.count == 60
    assert "?q=bulk&amp;source=local&amp;page=2" in page.content.decode()


def test_a_long_search_is_cut_not_refused(user_admin):
    response = as_(user_admin).get(reverse("people:user_list"), {"q": "x" * 5000})
    assert response.status_code == 200


def test_new_user_button_only_for_managers(user_admin, global_reader):
    create = reverse("people:user_create")
    assert create in as_(user_admin).get(URL).content.decode()
    assert create not in as_(global_reader).get(URL).content.decode()


# Query counts ----------------------------------------------------------------------------------


def _queries(client, **query) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(URL, query)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("query", [{}, {"q": "bulk"}, {"status": "active", "source": "local"}])
def test_user_list_query_count_does_not_grow_with_users(user_admin, query):
    client = as_(user_admin)
    client.get(URL)  # the session's first page does its own bookkeeping
    bulk_users(3, with_phones=True)
    few = _queries(client, **query)
    bulk_users(120, prefix="bulkmore", with_phones=True)
    assert _queries(client, **query) == few


def test_group_list_query_count_does_not_grow_with_groups(user_admin):
    client = as_(user_admin)
    member = make_user("mo")

    def make(n, prefix):
        for i in range(n):
            group = Group.objects.create(name=f"{prefix}{i}")
            group.user_set.add(member)
            GroupIdentity.objects.create(group=group, source=Source.SCIM)

    client.get(URL)  # the session's first page does its own bookkeeping
    make(2, "a")
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("people:group_list"))
    make(60, "b")
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("people:group_list"))
    assert len(many.captured_queries) == len(few.captured_queries)


def test_ten_thousand_users_list_and_search_fast(user_admin):
    started = time.monotonic()
    bulk_users(10_000)
    made = time.monotonic() - started
    client = as_(user_admin)
    client.get(URL)  # the session's first page does its own bookkeeping

    queries = {}
    timings = {}
    for label, query in {
        "list": {},
        "search": {"q": "bulk 0999"},
        "email": {"q": "bulk09999@"},
        "last page": {"page": "last"},
    }.items():
        started = time.monotonic()
        queries[label] = _queries(client, **query)
        timings[label] = time.monotonic() - started

    assert made < 10, f"bulk_create of 10,000 users took {made:.1f}s"
    assert max(timings.values()) < 2, timings
    assert len(set(queries.values())) == 1, queries  # the same few queries, whatever the page
    page = client.get(URL, {"q": "bulk 0999"})
    assert page.context["page_obj"].paginator.count == 10  # 09990 … 09999
    assert page.context["page_obj"].paginator.num_pages == 1
    assert client.get(URL).context["page_obj"].paginator.count == 10_001
