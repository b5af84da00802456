"""The reviewer's pages of an access review instance: deciding, results, CSV, applying."""

import csv
import io
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from assignments.models import Assignment, AssignmentKind
from reviews import services
from reviews.models import (
    ApplyResult,
    Decision,
    GroupHandling,
    InstanceStatus,
    ReviewerType,
    ReviewItem,
)
from tests.conftest import signed_in
from tests.factories import assign, make_group, make_user, role
from tests.reviews.conftest import events

pytestmark = pytest.mark.django_db

REASON = "Still on the web team"


def members(count: int, prefix: str = "member", scope=None, **fields) -> list:
    """`count` users eligible for Contributor at the scope (Production, by default)."""
    people = []
    for number in range(count):
        user = make_user(f"{prefix}{number:03d}", display_name=f"{prefix.title()} {number:03d}")
        for name, value in fields.items():
            setattr(user, name, value)
        user.save()
        assign(user, "Contributor", scope=scope, kind=AssignmentKind.ELIGIBLE)
        people.append(user)
    return people


def review_of(owner, scope, *, name="Contributors of Production", **settings):
    """A review of Contributor at the scope, started now; its first instance."""
    settings.setdefault("reviewer_type", ReviewerType.SELECTED)
    settings.setdefault("duration_days", 7)
    review = services.review_create(
        actor=owner,
        name=name,
        roles=[role("Contributor")],
        scope=scope,
        start=None,
        **settings,
    )
    return review.instances.get()


def detail_url(instance, query: str = "") -> str:
    return reverse("reviews:instance_detail", args=[instance.pk]) + query


def url(name: str, instance) -> str:
    return reverse(f"reviews:{name}", args=[instance.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def decisions(instance) -> dict[str, str]:
    return dict(instance.items.values_list("principal_name", "decision"))


def item_named(instance, name: str) -> ReviewItem:
    return instance.items.get(principal_name=name)


@pytest.fixture
def instance(tree, resource_owner, approver):
    """Three members of Production's Contributors, reviewed by Alex (a named reviewer)."""
    members(3, scope=tree["sub"])
    return review_of(resource_owner, tree["sub"], reviewer_users=[approver])


# --- The instance page -------------------------------------------------------------------------


def test_a_manager_reviewer_sees_only_the_items_of_the_people_they_manage(
    tree, resource_owner, approver, outsider
):
    mine = members(2, prefix="report", scope=tree["sub"], manager=approver)
    members(2, prefix="other", scope=tree["sub"], manager=outsider)
    instance = review_of(
        resource_owner,
        tree["sub"],
        reviewer_type=ReviewerType.MANAGER,
        reviewer_users=[resource_owner],  # the fallback
    )
    page = signed_in(approver).get(detail_url(instance)).content.decode()
    for user in mine:
        assert user.display_name in page
    assert "Other 000" not in page
    assert "Other 001" not in page
    assert "2 in all" not in page  # one page
    assert page.count('name="item"') == 2


def test_the_instance_page_shows_recommendation_and_progress(instance, approver):
    response = signed_in(approver).get(detail_url(instance))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Contributors of Production" in page
    assert "Has never activated the role" in page
    assert "0 of 3 decided" in page
    assert "Accept recommendations" in page


def test_an_administrator_who_is_no_reviewer_sees_every_item_read_only(instance, resource_owner):
    page = signed_in(resource_owner).get(detail_url(instance)).content.decode()
    assert "Member 000" in page and "Member 002" in page
    assert 'name="item"' not in page
    assert "shown read-only" in page
    assert 'id="progress-by-reviewer"' in page


def test_an_administrator_who_is_a_reviewer_decides_from_the_instance_page(tree, resource_owner):
    members(2, scope=tree["sub"])
    instance = review_of(resource_owner, tree["sub"], reviewer_users=[resource_owner])
    item = item_named(instance, "Member 000")
    services.items_decide(
        actor=resource_owner, instance=instance, decision=Decision.DENY, item_ids=[item.pk]
    )
    page = signed_in(resource_owner).get(detail_url(instance)).content.decode()
    assert page.count('name="item"') == 2
    assert f'<option value="{resource_owner.pk}">Olivia Owner</option>' in page
    assert 'id="progress-by-reviewer"' in page


def test_an_outsider_gets_404_on_the_instance_page(instance, outsider):
    assert signed_in(outsider).get(detail_url(instance)).status_code == 404


def test_self_review_asks_to_keep_or_give_up_access(tree, resource_owner):
    (member,) = members(1, scope=tree["sub"])
    instance = review_of(resource_owner, tree["sub"], reviewer_type=ReviewerType.SELF)
    page = signed_in(member).get(detail_url(instance)).content.decode()
    assert "Review your access" in page
    assert "Keep access" in page
    assert "Give up access" in page
    assert 'name="decision" value="dont_know"' not in page


def test_after_the_end_the_page_is_read_only_with_a_link_to_the_results(instance, approver):
    with time_machine.travel(instance.end + timedelta(seconds=1), tick=False):
        page = signed_in(approver).get(detail_url(instance)).content.decode()
    assert "This review ended at" in page
    assert url("results", instance) in page
    assert 'name="item"' not in page
    assert 'id="bulk-decision"' not in page


def test_a_decided_item_stays_selectable_and_shows_its_decision(instance, approver):
    item = item_named(instance, "Member 000")
    services.items_decide(
        actor=approver, instance=instance, decision=Decision.DENY, item_ids=[item.pk]
    )
    page = signed_in(approver).get(detail_url(instance)).content.decode()
    assert f'name="item" value="{item.pk}"' in page
    assert "Deny</span>" in page


def test_the_instance_page_query_count_does_not_grow_with_items(tree, resource_owner, approver):
    def queries_for(user, instance) -> int:
        client = signed_in(user)
        client.get(detail_url(instance))  # warm the session
        with CaptureQueriesContext(connection) as captured:
            assert client.get(detail_url(instance)).status_code == 200
        return len(captured)

    members(3, prefix="few", scope=tree["sub"])
    few = review_of(resource_owner, tree["sub"], reviewer_users=[approver])
    members(30, prefix="many", scope=tree["rg"])
    many = review_of(resource_owner, tree["rg"], name="Web", reviewer_users=[approver])
    assert (few.items.count(), many.items.count()) == (3, 30)
    assert queries_for(approver, few) == queries_for(approver, many)
    assert queries_for(resource_owner, few) == queries_for(resource_owner, many)


def test_the_query_count_does_not_grow_with_named_reviewers_and_group_members(
    tree, resource_owner, approver, outsider
):
    """An administrator's page of a manager review of members of groups: the page's reviewers
    and groups are read in one query each, however many rows show them."""

    def queries_for(instance) -> int:
        client = signed_in(resource_owner)
        client.get(detail_url(instance))
        with CaptureQueriesContext(connection) as captured:
            assert client.get(detail_url(instance)).status_code == 200
        return len(captured)

    def manager_review_of(count: int, scope, name: str):
        reports = members(count, prefix=f"{name.lower()}-report", scope=scope, manager=approver)
        group = make_group(f"{name} team", *members(count, prefix=f"{name.lower()}-member"))
        assign(group, "Contributor", scope=scope, kind=AssignmentKind.ELIGIBLE)
        for report in reports:
            report.groups.add(group)
        return review_of(
            resource_owner,
            scope,
            name=name,
            reviewer_type=ReviewerType.MANAGER,
            reviewer_users=[outsider],
            group_handling=GroupHandling.MEMBERS,
        )

    few = manager_review_of(2, tree["sub"], "Few")
    many = manager_review_of(12, tree["rg"], "Many")
    assert few.items.filter(reviewer=approver, principal_group__isnull=False).exists()
    assert many.items.count() > few.items.count()
    assert queries_for(few) == queries_for(many)


def test_the_rows_show_the_group_of_a_member_and_a_group_as_a_whole(tree, resource_owner, approver):
    hana = make_user("hana", display_name="Hana")
    group = make_group("Web & <Ops>", hana)
    assign(group, "Contributor", scope=tree["sub"], kind=AssignmentKind.ELIGIBLE)
    by_member = review_of(
        resource_owner,
        tree["sub"],
        name="By member",
        reviewer_users=[approver],
        group_handling=GroupHandling.MEMBERS,
    )
    as_whole = review_of(resource_owner, tree["sub"], name="As a whole", reviewer_users=[approver])
    client = signed_in(approver)
    page = client.get(detail_url(by_member)).content.decode()
    assert 'Hana <span class="small text-muted">via Web &amp; &lt;Ops&gt;</span>' in page
    page = client.get(detail_url(as_whole)).content.decode()
    assert 'Web &amp; &lt;Ops&gt; <span class="small text-muted">(group)</span>' in page


def test_an_administrator_sees_who_reviews_each_item(tree, resource_owner, approver, outsider):
    members(1, prefix="report", scope=tree["sub"], manager=approver)
    members(1, prefix="loner", scope=tree["sub"])
    instance = review_of(
        resource_owner,
        tree["sub"],
        reviewer_type=ReviewerType.MANAGER,
        reviewer_users=[outsider],  # the fallback, for Loner 000
    )
    page = signed_in(resource_owner).get(detail_url(instance)).content.decode()
    assert '<th scope="col">Reviewer</th>' in page
    assert '<td data-label="Reviewer">Alex Approver</td>' in page
    assert (
        '<td data-label="Reviewer"><span class="text-muted">The review\'s reviewers</span>' in page
    )


def test_an_administrator_whose_only_item_is_her_own_reads_the_page(tree, resource_owner):
    """Named a reviewer by the kept counts, she decides none: her page asks the items."""
    assign(resource_owner, "Contributor", scope=tree["sub"], kind=AssignmentKind.ELIGIBLE)
    instance = review_of(resource_owner, tree["sub"], reviewer_users=[resource_owner])
    assert list(instance.items.values_list("principal_user", flat=True)) == [resource_owner.pk]
    page = signed_in(resource_owner).get(detail_url(instance)).content.decode()
    assert "shown read-only" in page
    assert 'name="item"' not in page
    assert "Olivia Owner" in page


def test_a_reviewer_whose_filter_matches_nothing_still_has_the_page(instance, approver):
    response = signed_in(approver).get(detail_url(instance, "?q=nobody"))
    assert response.status_code == 200
    assert "No item matches these filters." in response.content.decode()


def test_an_outsider_gets_an_audited_404_whatever_the_filters_and_page(instance, outsider):
    client = signed_in(outsider)
    for query in ("", "?q=nobody", "?page=2", "?decision=not_reviewed"):
        assert client.get(detail_url(instance, query)).status_code == 404
    refusals = events("pim.security.forbidden", actor=outsider)
    assert refusals.count() == 4
    assert all(f"instance {instance.pk}" in event.message for event in refusals)


def test_the_pages_read_progress_from_the_kept_counts_not_the_items(tree, resource_owner, approver):
    """An administrator's instance page and results page, unfiltered: no COUNT or GROUP BY
    over the items (ten thousand of them, in a real review), only the page of rows."""
    members(3, prefix="few", scope=tree["sub"])
    instance = review_of(resource_owner, tree["sub"], reviewer_users=[approver])
    client = signed_in(resource_owner)
    for page_url in (detail_url(instance), url("results", instance)):
        client.get(page_url)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(page_url).status_code == 200
        over_items = [
            q["sql"]
            for q in captured.captured_queries
            if 'FROM "reviews_reviewitem"' in q["sql"]
            and ("COUNT(" in q["sql"].upper() or "GROUP BY" in q["sql"].upper())
        ]
        assert over_items == [], page_url
    assert "0 of 3 decided" in client.get(detail_url(instance)).content.decode()
    totals = client.get(url("results", instance)).context["decision_totals"]
    assert [(value, n) for value, _, n, _ in totals if n] == [(Decision.NOT_REVIEWED, 3)]


# --- Deciding --------------------------------------------------------------------------------


def test_deciding_one_item_records_the_decision_and_its_reason(instance, approver):
    item = item_named(instance, "Member 001")
    response = signed_in(approver).post(
        url("decide", instance),
        {"item": [item.pk], "decision": "approve", "reason": REASON},
        follow=True,
    )
    item.refresh_from_db()
    assert (item.decision, item.reason, item.decided_by) == (Decision.APPROVE, REASON, approver)
    assert "1 decision recorded." in messages_of(response)


def test_bulk_decide_records_every_checked_item(instance, approver):
    chosen = [item_named(instance, name).pk for name in ("Member 000", "Member 002")]
    response = signed_in(approver).post(
        url("decide", instance), {"item": chosen, "decision": "deny", "reason": "Left"}, follow=True
    )
    assert "2 decisions recorded." in messages_of(response)
    assert decisions(instance) == {
        "Member 000": Decision.DENY,
        "Member 001": Decision.NOT_REVIEWED,
        "Member 002": Decision.DENY,
    }


def test_all_items_that_match_the_filter_are_decided(tree, resource_owner, approver):
    members(2, prefix="intern", scope=tree["sub"])
    members(2, prefix="staff", scope=tree["sub"])
    instance = review_of(resource_owner, tree["sub"], reviewer_users=[approver])
    response = signed_in(approver).post(
        url("decide", instance),
        {"all_matching": "1", "decision": "deny", "reason": "Internship over", "query": "q=intern"},
    )
    assert response.status_code == 302
    assert response["Location"] == detail_url(instance, "?q=intern")
    assert decisions(instance) == {
        "Intern 000": Decision.DENY,
        "Intern 001": Decision.DENY,
        "Staff 000": Decision.NOT_REVIEWED,
        "Staff 001": Decision.NOT_REVIEWED,
    }


def test_the_redirect_after_a_decision_keeps_the_filters_and_the_page(instance, approver):
    item = item_named(instance, "Member 000")
    response = signed_in(approver).post(
        url("decide", instance),
        {
            "item": [item.pk],
            "decision": "dont_know",
            "query": "decision=not_reviewed&page=2&next=https://evil.example",
        },
    )
    assert response["Location"] == detail_url(instance, "?decision=not_reviewed&page=2")


def test_a_decision_changes_until_the_end(instance, approver):
    item = item_named(instance, "Member 000")
    client = signed_in(approver)
    for decision in ("deny", "approve"):
        client.post(
            url("decide", instance), {"item": [item.pk], "decision": decision, "reason": REASON}
        )
    item.refresh_from_db()
    assert item.decision == Decision.APPROVE


def test_approving_without_a_reason_is_refused_when_the_review_requires_one(instance, approver):
    item = item_named(instance, "Member 000")
    response = signed_in(approver).post(
        url("decide", instance), {"item": [item.pk], "decision": "approve"}, follow=True
    )
    assert "Give a reason to approve: this review requires one." in messages_of(response)
    item.refresh_from_db()
    assert item.decision == Decision.NOT_REVIEWED


def test_a_decision_without_items_is_refused(instance, approver):
    response = signed_in(approver).post(url("decide", instance), {"decision": "deny"}, follow=True)
    assert "Select the items to decide, or all that match the filter." in messages_of(response)


def test_decisions_after_the_end_are_refused_and_nothing_changes(instance, approver):
    item = item_named(instance, "Member 000")
    with time_machine.travel(instance.end + timedelta(minutes=1), tick=False):
        response = signed_in(approver).post(
            url("decide", instance),
            {"item": [item.pk], "decision": "deny", "reason": "Too late"},
            follow=True,
        )
    assert any(
        "decisions can no longer be made or changed" in message for message in messages_of(response)
    )
    item.refresh_from_db()
    assert item.decision == Decision.NOT_REVIEWED


def test_an_outsider_posting_a_decision_gets_404_and_nothing_changes(instance, outsider):
    item = item_named(instance, "Member 000")
    response = signed_in(outsider).post(
        url("decide", instance), {"item": [item.pk], "decision": "deny", "reason": "x"}
    )
    assert response.status_code == 404
    assert set(decisions(instance).values()) == {Decision.NOT_REVIEWED}


def test_an_administrator_who_is_no_reviewer_cannot_decide(instance, resource_owner):
    item = item_named(instance, "Member 000")
    response = signed_in(resource_owner).post(
        url("decide", instance), {"item": [item.pk], "decision": "deny", "reason": "x"}
    )
    assert response.status_code == 403
    assert set(decisions(instance).values()) == {Decision.NOT_REVIEWED}


def test_deciding_by_get_is_not_allowed(instance, approver):
    assert signed_in(approver).get(url("decide", instance)).status_code == 405


def test_accepting_recommendations_takes_each_items_recommendation(tree, resource_owner, approver):
    (active_user,) = members(1, prefix="busy", scope=tree["sub"])
    members(1, prefix="idle", scope=tree["sub"])
    eligible = Assignment.objects.get(principal_user=active_user)
    assign(active_user, "Contributor", scope=tree["sub"], activated_from=eligible)
    instance = review_of(resource_owner, tree["sub"], reviewer_users=[approver])
    response = signed_in(approver).post(url("accept_recommendations", instance), follow=True)
    assert "Recommendations accepted: 2 decisions recorded." in messages_of(response)
    assert decisions(instance) == {"Busy 000": Decision.APPROVE, "Idle 000": Decision.DENY}


# --- Results, CSV, applying --------------------------------------------------------------------


def test_the_results_page_lists_each_decision_with_its_reviewer_and_totals(
    instance, approver, resource_owner
):
    item = item_named(instance, "Member 000")
    services.items_decide(
        actor=approver, instance=instance, decision=Decision.DENY, reason="Left", item_ids=[item.pk]
    )
    response = signed_in(resource_owner).get(url("results", instance))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Alex Approver" in page
    assert "Left" in page
    totals = dict((label, n) for _, label, n, _ in response.context["decision_totals"])
    assert totals == {"Not reviewed": 2, "Approve": 0, "Deny": 1, "Don't know": 0}
    assert url("results_export", instance) in page


def test_a_reviewer_sees_the_results_of_their_own_items_only(
    tree, resource_owner, approver, outsider
):
    members(1, prefix="report", scope=tree["sub"], manager=approver)
    members(1, prefix="other", scope=tree["sub"], manager=outsider)
    instance = review_of(
        resource_owner,
        tree["sub"],
        reviewer_type=ReviewerType.MANAGER,
        reviewer_users=[resource_owner],
    )
    page = signed_in(approver).get(url("results", instance)).content.decode()
    assert "Report 000" in page
    assert "Other 000" not in page
    assert url("results_export", instance) not in page


def test_the_results_show_a_default_decision_as_no_response(tree, resource_owner, approver):
    members(1, scope=tree["sub"])
    instance = review_of(
        resource_owner, tree["sub"], reviewer_users=[approver], default_decision="remove"
    )
    with time_machine.travel(instance.end + timedelta(minutes=1), tick=False):
        services.instance_complete_due(instance.pk)
        page = signed_in(resource_owner).get(url("results", instance)).content.decode()
    assert "No response: the review's default" in page


def csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_the_results_csv_has_a_header_and_a_row_per_item(instance, resource_owner, approver):
    item = item_named(instance, "Member 001")
    services.items_decide(
        actor=approver,
        instance=instance,
        decision=Decision.APPROVE,
        reason=REASON,
        item_ids=[item.pk],
    )
    response = signed_in(resource_owner).get(url("results_export", instance))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    header, *rows = csv_rows(response)
    assert header[:4] == ["principal", "type", "via group", "role"]
    assert [row[0] for row in rows] == ["Member 000", "Member 001", "Member 002"]
    decided = dict(zip(header, rows[1], strict=True))
    assert decided["decision"] == "approve"
    assert decided["reviewer"] == "Alex Approver"
    assert decided["reason"] == REASON
    assert decided["scope"] == item.scope.path


def test_the_results_csv_prefixes_cells_a_spreadsheet_would_run(tree, resource_owner, approver):
    members(1, prefix="evil", scope=tree["sub"])
    get_user_model().objects.filter(username="evil000").update(display_name="=HYPERLINK(1)")
    instance = review_of(resource_owner, tree["sub"], reviewer_users=[approver])
    _, row = csv_rows(signed_in(resource_owner).get(url("results_export", instance)))
    assert row[0] == "'=HYPERLINK(1)"


def test_the_results_csv_is_404_for_a_reviewer_who_is_no_administrator(instance, approver):
    assert signed_in(approver).get(url("results_export", instance)).status_code == 404


def test_a_manager_applies_the_results_and_the_denied_assignment_is_removed(
    instance, approver, resource_owner
):
    denied = item_named(instance, "Member 000")
    services.items_decide(
        actor=approver,
        instance=instance,
        decision=Decision.DENY,
        reason="Left",
        item_ids=[denied.pk],
    )
    with time_machine.travel(instance.end + timedelta(minutes=1), tick=False):
        client = signed_in(resource_owner)
        page = client.get(url("results", instance)).content.decode()
        assert 'id="apply-form"' in page
        response = client.post(url("apply", instance), follow=True)
        assert not Assignment.objects.in_force().filter(pk=denied.assignment_id).exists()
    assert response.redirect_chain[-1][0] == url("results", instance)
    assert any(m.startswith("Results applied: 1 removed") for m in messages_of(response))
    instance.refresh_from_db()
    assert instance.status == InstanceStatus.APPLIED
    denied.refresh_from_db()
    assert denied.apply_result == ApplyResult.REMOVED
    others = instance.items.exclude(pk=denied.pk)
    assert Assignment.objects.in_force().filter(pk__in=others.values("assignment_id")).count() == 2


def test_a_reviewer_who_is_no_manager_cannot_apply(instance, approver):
    with time_machine.travel(instance.end + timedelta(minutes=1), tick=False):
        response = signed_in(approver).post(url("apply", instance))
    assert response.status_code == 403
    instance.refresh_from_db()
    assert instance.applied_at is None


def test_applying_before_the_end_is_refused_with_a_message(instance, resource_owner):
    response = signed_in(resource_owner).post(url("apply", instance), follow=True)
    assert any("its results are applied once it ends" in m for m in messages_of(response))
