"""The administrator's pages of access reviews, through the HTTP client, as the personas."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from reviews import services
from reviews.models import AccessReview, InstanceStatus, ReviewerType
from tests.factories import assign, make_group, make_user, role

pytestmark = pytest.mark.django_db


def url(name: str, *args) -> str:
    return reverse(f"reviews:{name}", args=args)


def flash(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def html(response) -> str:
    return response.content.decode()


def form_data(roles, reviewers=(), scope=None, **changes) -> dict:
    """What the create form posts: a one-time review starting now, by selected reviewers."""
    data = {
        "name": "Privileged roles, spring",
        "description": "Who still needs it?",
        "roles": [r.pk for r in roles],
        "scope": scope.pk if scope else "",
        "scope_path": "",
        "assignment_types": "both",
        "include_users": "on",
        "include_groups": "on",
        "group_handling": "whole",
        "inactive_days": "",
        "reviewer_type": "selected",
        "reviewers": [f"user:{r.pk}" for r in reviewers],
        "start_when": "now",
        "start": "",
        "duration_days": "14",
        "recurrence": "one_time",
        "recurrence_end": "never",
        "recurrence_end_date": "",
        "recurrence_count": "",
        "default_decision": "no_change",
        "require_reason_on_approve": "on",
        "reminders": "on",
        "notify_emails": "",
        "recommendations": "on",
        "lookback_days": "30",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def create_review(actor, roles, scope=None, reviewers=(), **fields):
    """A review made through the service, as the form would make it."""
    values = {
        "actor": actor,
        "name": "Review",
        "roles": roles,
        "scope": scope,
        "assignment_types": "both",
        "include_users": True,
        "include_groups": True,
        "group_handling": "whole",
        "reviewer_type": ReviewerType.SELECTED,
        "reviewer_users": list(reviewers),
        "duration_days": 14,
        "recurrence": "one_time",
        "recurrence_end": "never",
        "auto_apply": False,
        "default_decision": "no_change",
        "require_reason_on_approve": True,
        "reminders": True,
        "recommendations": True,
        "lookback_days": 30,
    }
    values.update(fields)
    return services.review_create(**values)


@pytest.fixture
def reviewer(db):
    return make_user("rita", display_name="Rita Reviewer")


def forbidden_message() -> str:
    return AuditEvent.objects.filter(action="pim.security.forbidden").latest("pk").message


# Creating a review -----------------------------------------------------------------------


def test_pra_creates_a_directory_review_through_the_form(client_for, pra, reviewer):
    response = client_for(pra).post(
        url("review_create"), form_data([role("Global Administrator")], [reviewer])
    )

    review = AccessReview.objects.get()
    assert response.status_code == 302
    assert response.url == url("review_detail", review.pk)
    assert [r.name for r in review.roles.all()] == ["Global Administrator"]
    assert review.scope.is_root
    assert services.reviewers_of(review) == ([reviewer], [])
    assert review.instances.count() == 1
    assert flash(response) == [
        "Access review “Privileged roles, spring” created: its first occurrence has started."
    ]


def test_owner_creates_a_resource_review_at_production(client_for, resource_owner, reviewer, tree):
    response = client_for(resource_owner).post(
        url("review_create"),
        form_data([role("Contributor"), role("Reader")], [reviewer], scope=tree["sub"]),
    )

    assert response.status_code == 302
    review = AccessReview.objects.get()
    assert review.scope == tree["sub"]
    assert {r.name for r in review.roles.all()} == {"Contributor", "Reader"}


def test_owner_may_type_the_path_of_a_scope_below_production(
    client_for, resource_owner, reviewer, tree
):
    response = client_for(resource_owner).post(
        url("review_create"),
        form_data([role("Reader")], [reviewer], scope_path=tree["rg"].path.rstrip("/")),
    )

    assert response.status_code == 302
    assert AccessReview.objects.get().scope == tree["rg"]


def test_owner_is_refused_a_review_of_directory_roles(client_for, resource_owner, reviewer, tree):
    response = client_for(resource_owner).post(
        url("review_create"),
        form_data([role("Security Reader")], [reviewer], scope=tree["sub"]),
    )

    assert response.status_code == 403
    assert forbidden_message() == "create an access review of Security Reader at " + (
        tree["sub"].path
    )
    assert not AccessReview.objects.exists()


def test_owner_is_refused_a_review_at_a_scope_above_theirs(
    client_for, resource_owner, reviewer, tree
):
    response = client_for(resource_owner).post(
        url("review_create"), form_data([role("Reader")], [reviewer], scope=tree["mg"])
    )

    assert response.status_code == 403
    assert forbidden_message() == f"create an access review of Reader at {tree['mg'].path}"
    assert not AccessReview.objects.exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_outsider_is_refused_the_form(client_for, outsider, reviewer, method):
    data = form_data([role("Global Administrator")], [reviewer]) if method == "post" else None

    response = getattr(client_for(outsider), method)(url("review_create"), data)

    assert response.status_code == 403
    assert forbidden_message() == "create access reviews"


def test_security_reader_is_refused_the_form(client_for, security_reader):
    response = client_for(security_reader).get(url("review_create"))

    assert response.status_code == 403
    assert forbidden_message() == "create access reviews"


def test_form_offers_the_owners_top_scope_not_the_whole_tree(client_for, resource_owner, tree):
    response = client_for(resource_owner).get(url("review_create"))

    offered = [value for value, _ in response.context["form"].fields["scope"].choices if value]
    assert offered == [tree["sub"].pk]
    assert "data-scope-search-url" in html(response)


def test_form_offers_only_the_roles_the_viewer_manages(client_for, resource_owner):
    response = client_for(resource_owner).get(url("review_create"))

    offered = {label for _, label in response.context["form"].fields["roles"].choices}
    assert "Owner (resource role)" in offered
    assert not any("directory role" in label for label in offered)


def test_scope_search_answers_scopes_in_the_owners_reach_only(client_for, resource_owner, tree):
    response = client_for(resource_owner).get(url("scope_search"), {"q": ""})

    paths = [scope["path"] for scope in response.json()["results"]]
    assert paths == [tree["sub"].path, tree["rg"].path, tree["vm"].path]


def test_scope_search_matches_by_name(client_for, resource_owner, tree):
    response = client_for(resource_owner).get(url("scope_search"), {"q": "web-vm"})

    assert [scope["id"] for scope in response.json()["results"]] == [tree["vm"].pk]


def test_start_is_read_in_the_viewers_time_zone(client_for, reviewer):
    berliner = make_user("bert", time_zone="Europe/Berlin")
    assign(berliner, "Privileged Role Administrator", permanent=True)

    with time_machine.travel(datetime(2030, 1, 10, 12, 0, tzinfo=UTC), tick=False):
        response = client_for(berliner).post(
            url("review_create"),
            form_data(
                [role("Global Administrator")],
                [reviewer],
                start_when="later",
                start="2030-03-01T09:00",
            ),
        )

    assert response.status_code == 302
    review = AccessReview.objects.get()
    assert review.time_zone == "Europe/Berlin"
    assert review.start == datetime(2030, 3, 1, 8, 0, tzinfo=UTC)
    assert review.instances.count() == 0
    assert flash(response) == [
        "Access review “Privileged roles, spring” created: it starts at 2030-03-01 09:00 CET."
    ]


def test_manager_review_takes_the_fallback_reviewers(client_for, pra, reviewer):
    group = make_group("Fallback", reviewer)

    response = client_for(pra).post(
        url("review_create"),
        form_data(
            [role("Global Administrator")],
            reviewer_type="manager",
            fallback_reviewers=[f"group:{group.pk}"],
        ),
    )

    assert response.status_code == 302
    review = AccessReview.objects.get()
    assert review.reviewer_type == ReviewerType.MANAGER
    assert services.reviewers_of(review) == ([], [group])


def test_selected_reviewers_are_required(client_for, pra):
    response = client_for(pra).post(url("review_create"), form_data([role("Global Administrator")]))

    assert response.status_code == 200
    assert response.context["form"].errors["reviewers"] == [
        "Choose at least one reviewer: a user or a group."
    ]


def test_bad_notify_address_is_refused_on_its_field(client_for, pra, reviewer):
    response = client_for(pra).post(
        url("review_create"),
        form_data(
            [role("Global Administrator")], [reviewer], notify_emails="ops@example.com, not-mail"
        ),
    )

    assert response.status_code == 200
    assert response.context["form"].errors["notify_emails"] == [
        "Not valid e-mail addresses: not-mail. Separate addresses with commas."
    ]


def test_notify_addresses_are_saved_as_a_list(client_for, pra, reviewer):
    client_for(pra).post(
        url("review_create"),
        form_data(
            [role("Global Administrator")],
            [reviewer],
            notify_emails="ops@example.com; audit@example.com",
        ),
    )

    assert AccessReview.objects.get().notify_emails == ["audit@example.com", "ops@example.com"]


def test_unknown_scope_path_is_refused_on_its_field(client_for, resource_owner, reviewer):
    response = client_for(resource_owner).post(
        url("review_create"), form_data([role("Reader")], [reviewer], scope_path="/nowhere")
    )

    assert response.status_code == 200
    assert response.context["form"].errors["scope_path"] == ["No scope has the path “/nowhere”."]


# Bad schedules come back with the message and what was typed -----------------------------


def _bad_schedule(client_for, pra, reviewer, **schedule):
    data = form_data(
        [role("Global Administrator")],
        [reviewer],
        name="Weekly admins",
        notify_emails="ops@example.com",
        start_when="later",
        start="2030-03-04T09:00",
        **schedule,
    )
    with time_machine.travel(datetime(2030, 1, 10, 12, 0, tzinfo=UTC), tick=False):
        return client_for(pra).post(url("review_create"), data)


def _kept(response, reviewer) -> None:
    page = html(response)
    assert 'value="Weekly admins"' in page
    assert 'value="ops@example.com"' in page
    assert 'value="2030-03-04T09:00"' in page
    assert f'value="user:{reviewer.pk}"' in page
    assert not AccessReview.objects.exists()


def test_recurrence_ending_before_the_start_is_refused_and_the_form_kept(client_for, pra, reviewer):
    response = _bad_schedule(
        client_for,
        pra,
        reviewer,
        recurrence="weekly",
        duration_days="5",
        recurrence_end="on_date",
        recurrence_end_date="2030-02-01",
    )

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "The recurrence ends on 2030-02-01, before the review first starts (2030-03-04): "
        "it would never occur."
    ]
    _kept(response, reviewer)


def test_recurrence_after_no_occurrence_is_refused_and_the_form_kept(client_for, pra, reviewer):
    response = _bad_schedule(
        client_for,
        pra,
        reviewer,
        recurrence="monthly",
        recurrence_end="after_count",
        recurrence_count="0",
    )

    assert response.status_code == 200
    assert response.context["form"].errors["recurrence_count"] == [
        "A recurrence ends after one occurrence at least, or it would never occur."
    ]
    _kept(response, reviewer)


def test_recurrence_after_a_count_not_given_is_refused_and_the_form_kept(client_for, pra, reviewer):
    response = _bad_schedule(
        client_for, pra, reviewer, recurrence="monthly", recurrence_end="after_count"
    )

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "Say after how many occurrences the recurrence ends (at least one)."
    ]
    _kept(response, reviewer)


def test_duration_longer_than_the_period_is_refused_and_the_form_kept(client_for, pra, reviewer):
    response = _bad_schedule(client_for, pra, reviewer, recurrence="weekly", duration_days="10")

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "A weekly review can last at most 7 days, or two occurrences would overlap."
    ]
    _kept(response, reviewer)


def test_start_later_without_a_date_is_refused(client_for, pra, reviewer):
    response = client_for(pra).post(
        url("review_create"),
        form_data([role("Global Administrator")], [reviewer], start_when="later"),
    )

    assert response.status_code == 200
    assert response.context["form"].errors["start"] == [
        "Choose when the review starts, or start it now."
    ]


def test_fields_that_do_not_apply_are_ignored(client_for, pra, reviewer):
    response = client_for(pra).post(
        url("review_create"),
        form_data(
            [role("Global Administrator")],
            [reviewer],
            start="not a date",
            recurrence_count="0",
            fallback_reviewers="nobody-by-that-name",
        ),
    )

    assert response.status_code == 302
    review = AccessReview.objects.get()
    assert (review.recurrence_end, review.recurrence_count) == ("never", None)


# The review's page -----------------------------------------------------------------------


def test_review_detail_shows_settings_reviewers_and_occurrences(client_for, pra, reviewer):
    review = create_review(pra, [role("Global Administrator")], reviewers=[reviewer])

    response = client_for(pra).get(url("review_detail", review.pk))

    page = html(response)
    assert response.status_code == 200
    assert "Rita Reviewer" in page
    assert "Selected users or groups" in page
    instance = review.instances.get()
    assert url("instance_detail", instance.pk) in page
    assert url("results", instance.pk) in page
    assert url("review_edit", review.pk) in page
    assert url("review_stop", review.pk) in page


def test_review_detail_is_read_only_for_a_security_reader(
    client_for, pra, security_reader, reviewer
):
    review = create_review(pra, [role("Global Administrator")], reviewers=[reviewer])

    response = client_for(security_reader).get(url("review_detail", review.pk))

    assert response.status_code == 200
    assert url("review_edit", review.pk) not in html(response)
    assert url("review_stop", review.pk) not in html(response)


def test_review_detail_is_a_404_for_the_outsider(client_for, pra, outsider, reviewer):
    review = create_review(pra, [role("Global Administrator")], reviewers=[reviewer])

    response = client_for(outsider).get(url("review_detail", review.pk))

    assert response.status_code == 404
    assert forbidden_message() == f"view access review {review.pk}"


def test_review_detail_of_a_review_elsewhere_is_a_404_for_the_owner(
    client_for, pra, resource_owner, reviewer
):
    review = create_review(pra, [role("Global Administrator")], reviewers=[reviewer])

    response = client_for(resource_owner).get(url("review_detail", review.pk))

    assert response.status_code == 404


# Editing ---------------------------------------------------------------------------------


def edit_data(review, reviewers, **changes) -> dict:
    data = {
        "name": review.name,
        "description": review.description,
        "reviewers": [f"user:{r.pk}" for r in reviewers],
        "default_decision": review.default_decision,
        "require_reason_on_approve": "on",
        "reminders": "on",
        "notify_emails": "",
        "recommendations": "on",
        "lookback_days": str(review.lookback_days),
    }
    data.update(changes)
    return data


def test_editing_changes_the_name_reviewers_and_completion_settings(client_for, pra, reviewer):
    review = create_review(pra, [role("Global Administrator")], reviewers=[reviewer])
    other = make_user("otto")

    response = client_for(pra).post(
        url("review_edit", review.pk),
        edit_data(
            review,
            [other],
            name="Renamed",
            auto_apply="on",
            default_decision="remove",
            notify_emails="ops@example.com",
        ),
    )

    assert response.status_code == 302
    review.refresh_from_db()
    assert (review.name, review.auto_apply, review.default_decision) == (
        "Renamed",
        True,
        "remove",
    )
    assert review.notify_emails == ["ops@example.com"]
    assert services.reviewers_of(review) == ([other], [])
    assert flash(response) == ["Access review “Renamed” saved."]


def test_edit_form_has_no_fields_fixed_once_created(client_for, pra, reviewer):
    review = create_review(pra, [role("Global Administrator")], reviewers=[reviewer])

    response = client_for(pra).get(url("review_edit", review.pk))

    fields = set(response.context["form"].fields)
    assert not fields & {"roles", "scope", "reviewer_type", "start", "duration_days", "recurrence"}
    assert response.context["form"]["reviewers"].value() == [f"user:{reviewer.pk}"]


def test_editing_a_recurrence_end_before_the_start_is_refused(client_for, pra, reviewer):
    with time_machine.travel(datetime(2030, 1, 10, 12, 0, tzinfo=UTC), tick=False):
        review = create_review(
            pra,
            [role("Global Administrator")],
            reviewers=[reviewer],
            recurrence="weekly",
            duration_days=5,
            start=datetime(2030, 3, 4, 9, 0, tzinfo=UTC),
        )
        response = client_for(pra).post(
            url("review_edit", review.pk),
            edit_data(
                review,
                [reviewer],
                name="Kept name",
                recurrence_end="on_date",
                recurrence_end_date="2030-02-01",
            ),
        )

    assert response.status_code == 200
    assert "before the review first starts" in response.context["form"].non_field_errors()[0]
    assert 'value="Kept name"' in html(response)
    review.refresh_from_db()
    assert review.recurrence_end == "never"


def test_edit_is_refused_to_a_security_reader(client_for, pra, security_reader, reviewer):
    review = create_review(pra, [role("Global Administrator")], reviewers=[reviewer])

    response = client_for(security_reader).get(url("review_edit", review.pk))

    assert response.status_code == 403
    assert forbidden_message() == f"manage access review {review.pk}"


def test_edit_is_a_404_for_the_outsider(client_for, pra, outsider, reviewer):
    review = create_review(pra, [role("Global Administrator")], reviewers=[reviewer])

    response = client_for(outsider).post(url("review_edit", review.pk), {"name": "Mine"})

    assert response.status_code == 404
    review.refresh_from_db()
    assert review.name == "Review"


# Stopping --------------------------------------------------------------------------------


def test_stop_asks_for_confirmation_first(client_for, pra, reviewer):
    review = create_review(pra, [role("Global Administrator")], reviewers=[reviewer])

    response = client_for(pra).get(url("review_stop", review.pk))

    assert response.status_code == 200
    assert "ends now" in html(response)
    review.refresh_from_db()
    assert review.stopped_at is None


def test_stopping_ends_the_occurrence_in_progress(client_for, pra, reviewer):
    review = create_review(
        pra, [role("Global Administrator")], reviewers=[reviewer], recurrence="monthly"
    )

    response = client_for(pra).post(url("review_stop", review.pk))

    assert response.status_code == 302
    assert response.url == url("review_detail", review.pk)
    review.refresh_from_db()
    assert review.stopped_at is not None
    assert review.next_start is None
    instance = review.instances.get()
    assert instance.end <= timezone.now()
    assert instance.status_at() != InstanceStatus.IN_PROGRESS
    assert flash(response) == ["Access review “Review” stopped: no further occurrences."]


def test_stopping_twice_says_it_was_already_stopped(client_for, pra, reviewer):
    review = create_review(pra, [role("Global Administrator")], reviewers=[reviewer])
    client = client_for(pra)
    client.post(url("review_stop", review.pk), follow=True)

    response = client.post(url("review_stop", review.pk))

    assert flash(response) == ["This review was already stopped."]


def test_stop_is_refused_to_a_security_reader(client_for, pra, security_reader, reviewer):
    review = create_review(pra, [role("Global Administrator")], reviewers=[reviewer])

    response = client_for(security_reader).post(url("review_stop", review.pk))

    assert response.status_code == 403
    review.refresh_from_db()
    assert review.stopped_at is None


# Review access (the index) -----------------------------------------------------------------


def test_index_lists_the_reviews_waiting_for_the_reviewer(client_for, pra, reviewer):
    member = make_user("mia")
    assign(member, "Global Administrator")
    review = create_review(pra, [role("Global Administrator")], reviewers=[reviewer])

    response = client_for(reviewer).get(url("index"))

    assert response.status_code == 200
    instance = review.instances.get()
    assert [row["instance"] for row in response.context["inbox"]] == [instance]
    assert url("instance_detail", instance.pk) in html(response)
    assert response.context["section"] == "reviews"
    assert not response.context["may_see"]


def test_index_empty_states(client_for, outsider):
    response = client_for(outsider).get(url("index"))

    assert "No access review is waiting for your decisions." in html(response)
    assert "New access review" not in html(response)


def test_index_shows_new_review_to_those_who_manage(client_for, pra):
    response = client_for(pra).get(url("index"))

    assert url("review_create") in html(response)
    assert "No access reviews yet." in html(response)


def test_index_lists_only_the_reviews_the_viewer_may_see(
    client_for, pra, resource_owner, reviewer, tree
):
    create_review(pra, [role("Global Administrator")], reviewers=[reviewer], name="Admins")
    create_review(
        resource_owner, [role("Reader")], scope=tree["sub"], reviewers=[reviewer], name="Prod"
    )

    response = client_for(resource_owner).get(url("index"))

    assert [r.name for r in response.context["page_obj"]] == ["Prod"]


def test_index_shows_the_latest_occurrence_status_by_the_clock(client_for, pra, reviewer):
    create_review(pra, [role("Global Administrator")], reviewers=[reviewer], duration_days=1)

    with time_machine.travel(timezone.now() + timedelta(days=2)):
        response = client_for(pra).get(url("index"))

    assert response.context["page_obj"][0].state == "Completed"


def test_index_filter_by_name_survives_paging(client_for, pra, reviewer):
    for number in range(27):
        create_review(
            pra,
            [role("Global Administrator")],
            reviewers=[reviewer],
            name=f"Admins {number}",
            start=timezone.now() + timedelta(days=1),
        )

    response = client_for(pra).get(url("index"), {"q": "admins"})

    assert response.context["page_obj"].paginator.count == 27
    assert "?q=admins&amp;page=2" in html(response)


def _index_queries(client) -> int:
    client.get(url("index"))  # warm: the content types' cache, the session
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url("index")).status_code == 200
    return len(captured)


def test_index_query_count_does_not_grow_with_reviews(client_for, pra, reviewer, tree):
    assign(pra, "Owner", scope=tree["sub"], permanent=True)
    client = client_for(pra)

    def make(count: int) -> None:
        for number in range(count):
            if number % 2:
                create_review(pra, [role("Global Administrator")], reviewers=[reviewer])
            else:
                create_review(
                    pra,
                    [role("Reader"), role("Contributor")],
                    scope=tree["sub"],
                    reviewers=[reviewer],
                    reviewer_type=ReviewerType.SELF,
                    start=timezone.now() + timedelta(days=3),
                )

    make(2)
    few = _index_queries(client)
    make(10)
    many = _index_queries(client)

    assert many == few


def test_index_inbox_query_count_does_not_grow_with_instances(client_for, pra, reviewer):
    for number in range(2):
        assign(make_user(f"member{number}"), "Global Administrator")
    client = client_for(reviewer)
    create_review(pra, [role("Global Administrator")], reviewers=[reviewer])
    few = _index_queries(client)
    for _ in range(5):
        create_review(pra, [role("Global Administrator")], reviewers=[reviewer])
    many = _index_queries(client)

    assert many == few
