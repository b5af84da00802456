"""The inbox, the badge and bulk decisions at the size of a real organization: SQL answers the
same as `may_decide`, in a number of queries that does not grow with the pending requests."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from approvals import authz as approvals_authz
from approvals import services
from approvals.services import Outcome
from assignments import authz
from assignments import services as assignment_services
from assignments.models import Assignment, RequestStatus, RoleRequest
from audit.models import AuditEvent
from tests.approvals.conftest import CONTRIBUTOR, PRA, needs_approval, new_requester, submit
from tests.factories import assign, make_group, make_user

pytestmark = pytest.mark.django_db

INBOX = reverse("approvals:inbox")
BULK = reverse("approvals:bulk_decide")


def requests_for_alex(first: int, last: int) -> list[RoleRequest]:
    return [submit(new_requester(f"user{n}")) for n in range(first, last)]


def queries(run) -> int:
    with CaptureQueriesContext(connection) as captured:
        run()
    return len(captured.captured_queries)


# --- Who decides, in SQL -------------------------------------------------------------------


def test_sql_answers_who_decides_exactly_as_may_decide(
    eligible_user, approver, pra, resource_owner, outsider, tree
):
    """Named users, named groups, administrators when no one is named, narrower settings at a
    scope, extend requests, and the requester's own: every persona × request agrees."""
    group_member = make_user("gus")
    approvers = make_group("Approvers", group_member)
    needs_approval(PRA, approvers=[approver])
    needs_approval(CONTRIBUTOR, scope=tree["sub"], groups=[approvers])
    needs_approval(CONTRIBUTOR, scope=tree["rg"], approvers=[outsider])
    requests = [
        submit(eligible_user),
        submit(new_requester("rob", CONTRIBUTOR, tree["sub"]), CONTRIBUTOR, scope=tree["sub"]),
        submit(new_requester("rita", CONTRIBUTOR, tree["rg"]), CONTRIBUTOR, scope=tree["rg"]),
        submit(new_requester("ray", CONTRIBUTOR, tree["other_sub"]), CONTRIBUTOR),
    ]
    needs_approval(PRA, approvers=[approver, eligible_user])  # Erin's own stays not hers
    extend_me = Assignment.objects.get(principal_user=eligible_user, role__name=CONTRIBUTOR)
    Assignment.objects.filter(pk=extend_me.pk).update(end=timezone.now() + timedelta(days=3))
    requests.append(
        assignment_services.request_extend(
            actor=eligible_user, assignment_id=extend_me.pk, justification="More time"
        )
    )
    people = [eligible_user, approver, pra, resource_owner, outsider, group_member]
    for person in people:
        grants = authz.grants_for(person)
        by_sql = set(
            approvals_authz.decidable_by(RoleRequest.objects.all(), person, grants).values_list(
                "pk", flat=True
            )
        )
        expected = {r.pk for r in requests if approvals_authz.may_decide(person, r, grants)}
        assert by_sql == expected, person
    assert any(
        approvals_authz.may_decide(p, r) for p in people for r in requests
    )  # the table is not empty of answers


def test_the_effective_settings_in_sql_are_the_ones_the_subquery_picks(tree):
    """effective_policy_in (conditions on role and scope path, built from the few settings)
    against effective_policy_id (the subquery per request it replaced): the same requests for
    every set of settings, with overrides nested two deep, beside each other, and on a
    directory role (which never takes an override)."""
    from approvals.authz import effective_policy_in, role_policies, with_effective_policy

    needs_approval(CONTRIBUTOR)
    for scope in (tree["sub"], tree["rg"], tree["other_sub"]):
        needs_approval(CONTRIBUTOR, scope=scope)
    needs_approval(PRA)
    needs_approval(PRA, scope=tree["sub"])  # ignored: a directory role's own settings apply
    for n, scope in enumerate(tree.values()):
        submit(new_requester(f"c{n}", CONTRIBUTOR, scope), CONTRIBUTOR, scope=scope)
    submit(new_requester("p0"), PRA)
    policies = role_policies()
    annotated = with_effective_policy(RoleRequest.objects.all())
    expected = dict(annotated.values_list("pk", "effective_policy_id"))
    assert len(set(expected.values())) >= 4, "the requests do not reach enough settings"
    for pk, *_ in policies:
        found = set(
            RoleRequest.objects.filter(effective_policy_in({pk}, policies)).values_list(
                "pk", flat=True
            )
        )
        assert found == {r for r, p in expected.items() if p == pk}, pk
        outside = set(
            RoleRequest.objects.exclude(effective_policy_in({pk}, policies)).values_list(
                "pk", flat=True
            )
        )
        assert outside == {r for r, p in expected.items() if p != pk}, pk


# --- The badge and the inbox -----------------------------------------------------------------


def test_the_badge_is_one_count_query_whatever_the_pending_requests(approver, pra_needs_alex):
    grants = authz.grants_for(approver)
    requests_for_alex(0, 3)
    with CaptureQueriesContext(connection) as few:
        assert services.inbox_count(approver, grants) == 3
    requests_for_alex(3, 30)
    with CaptureQueriesContext(connection) as many:
        assert services.inbox_count(approver, grants) == 30
    # Whether they are named approver anywhere (they manage nothing), the roles' settings
    # (a few rows), then one COUNT.
    assert len(few.captured_queries) == len(many.captured_queries) == 3
    assert "COUNT" in many.captured_queries[-1]["sql"].upper()


def test_the_badge_of_someone_who_decides_nothing_is_one_small_query(pra_needs_alex, outsider):
    requests_for_alex(0, 3)
    with CaptureQueriesContext(connection) as context:
        assert services.inbox_count(outsider, authz.grants_for(outsider)) == 0
    counted = [q["sql"] for q in context.captured_queries if "rolerequest" in q["sql"]]
    assert counted == [], "the requests were counted for someone named nowhere"


def test_the_badge_keeps_its_count_for_a_while_and_the_inbox_refreshes_it(
    approver, pra_needs_alex, client_for, settings
):
    settings.PIM_APPROVALS_BADGE_SECONDS = 30
    client = client_for(approver)
    requests_for_alex(0, 3)
    badge = 'Requests waiting for your decision">{}<'
    assert badge.format(3) in client.get(reverse("assignments:my_roles")).content.decode()
    requests_for_alex(3, 5)
    with CaptureQueriesContext(connection) as kept:
        page = client.get(reverse("assignments:my_roles")).content.decode()
    assert badge.format(3) in page, "the badge counted again within its seconds"
    assert not [
        q
        for q in kept.captured_queries
        if "COUNT" in q["sql"].upper() and "rolerequest" in q["sql"]
    ]
    # The inbox counts afresh, and the badge shows its count from then on.
    assert badge.format(5) in client.get(INBOX).content.decode()
    assert badge.format(5) in client.get(reverse("assignments:my_roles")).content.decode()


def test_deciding_makes_the_badge_count_again(approver, pra_needs_alex, client_for, settings):
    settings.PIM_APPROVALS_BADGE_SECONDS = 30
    client = client_for(approver)
    first, *_ = requests_for_alex(0, 2)
    assert services.badge_count(approver) == 2
    response = client.post(
        reverse("approvals:decide", args=[first.pk]),
        {
            "decision": "approve",
            "justification": "Checked",
            "next": reverse("assignments:my_roles"),
        },
    )
    assert response.status_code == 302
    page = client.get(reverse("assignments:my_roles")).content.decode()
    assert 'Requests waiting for your decision">1<' in page


def test_with_no_seconds_the_badge_counts_on_every_page(approver, pra_needs_alex, settings):
    settings.PIM_APPROVALS_BADGE_SECONDS = 0
    requests_for_alex(0, 2)
    assert services.badge_count(approver) == 2
    requests_for_alex(2, 4)
    assert services.badge_count(approver) == 4


def test_the_inbox_page_reads_only_its_own_requests_whole_whatever_the_pending_requests(
    approver, pra_needs_alex, client_for, settings
):
    settings.PIM_APPROVALS_INBOX_SECONDS = 0  # the reading itself (test_kept_inbox: keeping)
    client = client_for(approver)
    requests_for_alex(0, 3)
    client.get(INBOX)  # warm the session
    role_id = RoleRequest.objects.first().role_id
    few = queries(lambda: client.get(INBOX, {"role": role_id}))
    requests_for_alex(3, 30)
    with CaptureQueriesContext(connection) as many:
        response = client.get(INBOX, {"role": role_id, "page": 2})
    assert len(many.captured_queries) == few
    assert len(response.context["items"]) == 5
    assert response.context["decidable_count"] == 30
    # Every request of the inbox is read as a few ids (menus, counts, the page's ids); only
    # the page's own five requests (the last, after 25, soonest to lapse first) whole.
    pending = RoleRequest.objects.filter(role_id=role_id, status=RequestStatus.PENDING_APPROVAL)
    inbox_order = list(pending.order_by("approval_deadline", "pk").values_list("pk", flat=True))
    assert [item.request.pk for item in response.context["items"]] == inbox_order[25:]
    whole = [q["sql"] for q in many.captured_queries if '"justification"' in q["sql"]]
    assert len(whole) == 1
    ids = whole[0].split('"assignments_rolerequest"."id" IN (')[1].split(")")[0]
    assert sorted(map(int, re.findall(r"\d+", ids))) == sorted(inbox_order[25:])


# --- Bulk ------------------------------------------------------------------------------------


def bulk_approve(approver, requests, justification="Change window"):
    return services.decisions_record_bulk(
        actor=approver,
        request_ids=[r.pk for r in requests],
        approve=True,
        justification=justification,
    )


def test_bulk_approval_costs_at_most_three_queries_per_request_and_grows_linearly(
    approver, pra_needs_alex
):
    ten = requests_for_alex(0, 10)
    fifty = requests_for_alex(10, 60)
    with CaptureQueriesContext(connection) as small:
        results = bulk_approve(approver, ten)
    assert {r.outcome for r in results} == {Outcome.APPROVED}
    with CaptureQueriesContext(connection) as large:
        results = bulk_approve(approver, fifty)
    assert {r.outcome for r in results} == {Outcome.APPROVED}
    small_n, large_n = len(small.captured_queries), len(large.captured_queries)
    assert small_n <= 3 * 10
    assert large_n <= 3 * 50
    # Set-based: 40 more requests cost (almost) no more statements.
    assert large_n - small_n <= 4


def test_bulk_approval_does_for_each_request_what_one_approval_does(
    approver, pra_needs_alex, django_capture_on_commit_callbacks
):
    requests = requests_for_alex(0, 5)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        bulk_approve(approver, requests, justification="Night shift")
    for request in requests:
        request = RoleRequest.objects.get(pk=request.pk)
        assert request.status == RequestStatus.PROVISIONED
        assert request.completed_by == approver
        activation = request.result_assignment
        assert activation.is_in_force() and activation.activated_from_id is not None
        assert activation.start_processed_at is not None  # begun as made: no start to report
        assert request.approval_decisions.get().approver == approver
        events = AuditEvent.objects.filter(
            role_request_id=request.pk, action="pim.request.approved"
        )
        assert events.get().message == "Night shift"
        assert events.get().target_id == str(activation.pk)
    requesters = {r.requested_by.email for r in requests}
    told = {m.to[0] for m in mail.outbox if "was approved" in m.subject}
    assert told == requesters


def test_bulk_deny_of_many_writes_one_decision_and_one_event_each(approver, pra_needs_alex):
    requests = requests_for_alex(0, 12)
    results = services.decisions_record_bulk(
        actor=approver, request_ids=[r.pk for r in requests], approve=False, justification="Freeze"
    )
    assert services.bulk_summary(results) == "12 denied"
    ids = [r.pk for r in requests]
    assert (
        AuditEvent.objects.filter(role_request_id__in=ids, action="pim.request.denied").count()
        == 12
    )
    assert set(RoleRequest.objects.filter(pk__in=ids).values_list("status_note", flat=True)) == {
        "Freeze"
    }


def test_bulk_approval_that_needs_two_records_the_first_and_carries_out_the_second(tree):
    first, second = make_user("ann"), make_user("bob")
    needs_approval(PRA, approvers=[first, second], approvals_required=2)
    requests = requests_for_alex(0, 3)
    results = bulk_approve(first, requests)
    assert {r.outcome for r in results} == {Outcome.APPROVAL_RECORDED}
    assert results[0].message == "Approval recorded: it waits for 1 more approval."
    assert {r.outcome for r in bulk_approve(second, requests)} == {Outcome.APPROVED}
    assert {r.outcome for r in bulk_approve(first, requests)} == {Outcome.ALREADY_DECIDED}


def test_bulk_approval_of_a_request_whose_eligibility_ended_fails_it_alone(
    approver, pra_needs_alex
):
    requests = requests_for_alex(0, 3)
    Assignment.objects.filter(pk=requests[1].target_assignment_id).update(
        end=requests[1].created_at
    )
    results = bulk_approve(approver, requests)
    assert [r.outcome for r in results] == [Outcome.APPROVED, Outcome.FAILED, Outcome.APPROVED]
    assert "eligible assignment ended" in results[1].message
    assert RoleRequest.objects.get(pk=requests[1].pk).status == RequestStatus.FAILED


def test_bulk_approval_of_one_eligible_through_a_group_they_left_fails_it(approver, pra_needs_alex):
    member = make_user("gwen")
    team = make_group("Team", member)
    through_team = assign(team, PRA, kind="eligible")
    request = assignment_services.request_activate(
        actor=member,
        eligible=through_team,
        start=None,
        duration=timedelta(hours=1),
        justification="On call",
        mfa_verified=True,
    )
    team.user_set.remove(member)
    [result] = bulk_approve(approver, [request])
    assert result.outcome == Outcome.FAILED
    assert "no longer eligible" in result.message


def test_the_form_takes_up_to_a_thousand_ids(pending, approver, client_for):
    ids = [pending.pk, *range(10**6, 10**6 + 999)]
    response = client_for(approver).post(
        BULK, {"request": ids, "decision": "approve", "justification": "x"}, follow=True
    )
    assert any(
        "1 approved; 999 were not yours to decide" in str(m) for m in response.context["messages"]
    )
    assert RoleRequest.objects.get(pk=pending.pk).status == RequestStatus.PROVISIONED


def test_select_all_matching_decides_the_filtered_inbox_up_to_the_limit(
    approver, pra_needs_alex, tree, client_for, settings
):
    settings.PIM_BULK_DECISION_MAX = 4
    requests = requests_for_alex(0, 6)
    needs_approval(CONTRIBUTOR, approvers=[approver])
    other_role = submit(new_requester("rob", CONTRIBUTOR, tree["sub"]), CONTRIBUTOR)
    response = client_for(approver).post(
        BULK,
        {
            "all_matching": "1",
            "role": requests[0].role_id,
            "decision": "deny",
            "justification": "Freeze",
        },
        follow=True,
    )
    said = [str(m) for m in response.context["messages"]]
    assert any("Took 4 of the 6 matching requests" in m and "4 denied" in m for m in said)
    statuses = [RoleRequest.objects.get(pk=r.pk).status for r in requests]
    # Soonest to lapse first, as the inbox lists them.
    assert statuses == [RequestStatus.DENIED] * 4 + [RequestStatus.PENDING_APPROVAL] * 2
    assert RoleRequest.objects.get(pk=other_role.pk).status == RequestStatus.PENDING_APPROVAL


def test_select_all_matching_is_offered_when_the_inbox_has_more_pages(
    approver, pra_needs_alex, client_for
):
    requests_for_alex(0, 26)
    page = client_for(approver).get(INBOX).content.decode()
    assert 'name="all_matching"' in page and "Select all 26 that match" in page


def test_long_filter_menus_list_the_busiest_values_and_say_how_many_more(
    approver, pra_needs_alex, client_for, monkeypatch
):
    from approvals import views

    monkeypatch.setattr(views, "MENU_LIMIT", 3)
    made = requests_for_alex(0, 5)  # five requesters
    client = client_for(approver)
    response = client.get(INBOX)
    requesters = response.context["options"]["requesters"]
    assert len(requesters) == 3
    assert response.context["options"]["more"]["requesters"] == 2
    assert "2 more with fewer requests: choose a role first" in response.content.decode()
    # The one chosen is offered even when it is not among the busiest.
    chosen = next(r.requested_by_id for r in made if r.requested_by_id not in dict(requesters))
    response = client.get(INBOX, {"requester": chosen})
    assert chosen in dict(response.context["options"]["requesters"])
    assert len(response.context["items"]) == 1
