"""The Approve requests pages: inbox, a request's page, decisions one by one and in bulk."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalDecision
from assignments import services
from assignments.models import Assignment, AssignmentKind, RequestStatus, RoleRequest
from audit.models import AuditEvent
from tests.approvals.conftest import CONTRIBUTOR, PRA, needs_approval, new_requester, submit
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

INBOX = reverse("approvals:inbox")
BULK = reverse("approvals:bulk_decide")


def detail_url(request) -> str:
    return reverse("approvals:request_detail", args=[request.pk])


def decide_url(request) -> str:
    return reverse("approvals:decide", args=[request.pk])


def cancel_url(request) -> str:
    return reverse("approvals:request_cancel_admin", args=[request.pk])


def status_of(request) -> str:
    return RoleRequest.objects.get(pk=request.pk).status


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# --- Inbox -----------------------------------------------------------------------------------


def test_inbox_shows_the_request_with_its_details(pending, approver, client_for):
    response = client_for(approver).get(INBOX)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Erin Eligible" in page
    assert "Privileged Role Administrator" in page
    assert "Incident 42: rotate the keys" in page
    assert "1 hour" in page  # the requested duration
    assert f'name="request" value="{pending.pk}"' in page


def test_inbox_has_an_empty_state(approver, client_for):
    response = client_for(approver).get(INBOX)
    assert "No requests are waiting for your decision." in response.content.decode()


def test_inbox_filters_by_role_and_keeps_them_in_the_url(
    pending, approver, tree, client_for, eligible_user
):
    needs_approval(CONTRIBUTOR, approvers=[approver])
    other = submit(new_requester("rob", CONTRIBUTOR, tree["sub"]), CONTRIBUTOR, scope=tree["sub"])
    client = client_for(approver)
    response = client.get(INBOX, {"role": pending.role_id})
    ids = [item.request.pk for item in response.context["items"]]
    assert ids == [pending.pk]
    response = client.get(INBOX, {"scope": tree["sub"].pk})
    assert [item.request.pk for item in response.context["items"]] == [other.pk]
    response = client.get(INBOX, {"requester": eligible_user.pk})
    assert [item.request.pk for item in response.context["items"]] == [pending.pk]
    assert (
        "No request waiting for you matches" in client.get(INBOX, {"role": 999999}).content.decode()
    )


def test_inbox_paginates(approver, pra_needs_alex, client_for):
    for n in range(27):
        submit(new_requester(f"user{n}"))
    client = client_for(approver)
    first = client.get(INBOX)
    assert len(first.context["items"]) == 25
    second = client.get(INBOX, {"page": 2})
    assert len(second.context["items"]) == 2


def test_inbox_query_count_does_not_grow_with_rows(
    approver, pra_needs_alex, client_for, django_assert_max_num_queries, settings
):
    settings.PIM_APPROVALS_INBOX_SECONDS = 0  # read on both loads, not kept from the first
    client = client_for(approver)
    for n in range(2):
        submit(new_requester(f"user{n}"))
    client.get(INBOX)  # warm the session
    with django_assert_max_num_queries(20) as few:
        client.get(INBOX)
    for n in range(2, 20):
        submit(new_requester(f"user{n}"))
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(INBOX)
    assert len(response.context["items"]) == 20


def test_navigation_badge_counts_requests_waiting_for_the_user(pending, approver, client_for):
    response = client_for(approver).get(INBOX)
    assert 'Requests waiting for your decision">1<' in response.content.decode()


def test_navigation_shows_no_badge_when_nothing_waits(pending, outsider, client_for):
    response = client_for(outsider).get(INBOX)
    assert "Requests waiting for your decision" not in response.content.decode()


def test_pra_sees_anyones_pending_request_with_a_cancel_button(pending, pra, client_for):
    page = client_for(pra).get(INBOX).content.decode()
    assert "Erin Eligible" in page
    assert f'form="cancel-{pending.pk}"' in page
    assert "Not yours to decide." in page
    assert f'name="request" value="{pending.pk}"' not in page


# --- A request's page -----------------------------------------------------------------------


def test_request_page_shows_details_timeline_and_buttons_to_the_approver(
    pending, approver, client_for
):
    response = client_for(approver).get(detail_url(pending))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Timeline" in page and "Requested: activate" in page
    assert 'value="approve"' in page and 'value="deny"' in page


def test_request_page_reads_the_settings_the_decisions_and_the_people_once(
    pending, approver, client_for
):
    """Letting the approver in and offering the decision ask the same of the role's settings;
    the timeline, the count of decisions and "you decided already" read the same decisions."""
    client = client_for(approver)
    client.get(detail_url(pending))  # the session's first request does its own bookkeeping
    with CaptureQueriesContext(connection) as captured:
        assert client.get(detail_url(pending)).status_code == 200

    def reading(table: str) -> int:
        return sum(f'FROM "{table}"' in q["sql"] for q in captured.captured_queries)

    assert reading("assignments_rolepolicy") == 1
    assert reading("approvals_approvaldecision") == 1
    assert reading("pim_portal_user") == 2  # the viewer (the session's), then the people


def test_request_page_shows_the_requester_no_buttons(pending, eligible_user, client_for):
    page = client_for(eligible_user).get(detail_url(pending)).content.decode()
    assert 'value="approve"' not in page
    assert "someone else must decide it" in page


def test_request_page_timeline_shows_each_decision_with_its_reason(
    pending, approver, eligible_user, client_for
):
    client_for(approver).post(
        decide_url(pending), {"decision": "approve", "justification": "On call this week"}
    )
    page = client_for(eligible_user).get(detail_url(pending)).content.decode()
    assert "On call this week" in page
    assert "Approved" in page and "In force" in page


def test_request_page_is_a_404_for_someone_unrelated(pending, outsider, client_for):
    response = client_for(outsider).get(detail_url(pending))
    assert response.status_code == 404
    assert AuditEvent.objects.filter(action="pim.security.forbidden", actor=outsider).exists()


def test_extend_request_page_lets_the_administrator_change_start_end_and_type(
    eligible_user, pra, client_for
):
    assignment = Assignment.objects.get(principal_user=eligible_user, role__name=PRA)
    Assignment.objects.filter(pk=assignment.pk).update(end=timezone.now() + timedelta(days=3))
    request = services.request_extend(
        actor=eligible_user, assignment_id=assignment.pk, justification="Still needed"
    )
    client = client_for(pra)
    page = client.get(detail_url(request)).content.decode()
    assert 'name="end"' in page and 'name="kind"' in page and 'name="start"' in page
    new_end = timezone.localtime(timezone.now() + timedelta(days=20)).replace(second=0)
    response = client.post(
        decide_url(request),
        {
            "decision": "approve",
            "justification": "Project extended",
            "start": timezone.localtime(request.start).strftime("%Y-%m-%dT%H:%M"),
            "end": new_end.strftime("%Y-%m-%dT%H:%M"),
            "kind": AssignmentKind.ELIGIBLE,
        },
    )
    assert response.status_code == 302
    assignment.refresh_from_db()
    assert assignment.end == new_end.replace(microsecond=0)


def test_extend_approved_with_an_end_in_the_year_9999_is_refused_on_the_page(
    eligible_user, pra, client_for
):
    assignment = Assignment.objects.get(principal_user=eligible_user, role__name=PRA)
    Assignment.objects.filter(pk=assignment.pk).update(end=timezone.now() + timedelta(days=3))
    request = services.request_extend(
        actor=eligible_user, assignment_id=assignment.pk, justification="Still needed"
    )
    response = client_for(pra).post(
        decide_url(request),
        {"decision": "approve", "justification": "Ok", "end": "9999-12-31T23:59"},
    )
    assert response.status_code == 400
    content = response.content.decode()
    assert "Enter a date between the years 1900 and 9000." in content
    assert 'value="9999-12-31T23:59"' in content
    assert status_of(request) == RequestStatus.PENDING_APPROVAL


# --- Deciding one --------------------------------------------------------------------------


def test_approving_from_the_request_page_activates_the_role(
    pending, approver, client_for, eligible_user
):
    response = client_for(approver).post(
        decide_url(pending), {"decision": "approve", "justification": "Fine"}, follow=True
    )
    assert response.redirect_chain[-1][0] == INBOX
    assert any("Request approved." in m for m in messages_of(response))
    assert status_of(pending) == RequestStatus.PROVISIONED
    assert Assignment.objects.in_force().active().filter(principal_user=eligible_user).exists()


def test_denying_from_the_request_page(pending, approver, client_for):
    client_for(approver).post(decide_url(pending), {"decision": "deny", "justification": "No"})
    assert status_of(pending) == RequestStatus.DENIED


def test_a_decision_without_justification_is_refused_on_the_page(pending, approver, client_for):
    response = client_for(approver).post(
        decide_url(pending), {"decision": "approve", "justification": ""}
    )
    assert response.status_code == 400
    assert "Give a justification for your decision." in response.content.decode()
    assert status_of(pending) == RequestStatus.PENDING_APPROVAL


def test_a_bad_decision_value_is_refused_not_a_server_error(pending, approver, client_for):
    response = client_for(approver).post(
        decide_url(pending), {"decision": "maybe", "justification": "x"}
    )
    assert response.status_code == 400
    assert status_of(pending) == RequestStatus.PENDING_APPROVAL


def test_deciding_ones_own_request_is_refused_clearly_and_audited(eligible_user, tree, client_for):
    needs_approval(PRA, approvers=[eligible_user])
    request = submit(eligible_user)
    response = client_for(eligible_user).post(
        decide_url(request), {"decision": "approve", "justification": "Me"}
    )
    assert response.status_code == 403
    assert "You cannot decide your own request." in response.content.decode()
    assert AuditEvent.objects.filter(
        action="pim.security.forbidden", actor=eligible_user, role_request_id=request.pk
    ).exists()
    assert status_of(request) == RequestStatus.PENDING_APPROVAL


def test_deciding_a_guessed_id_is_a_404_and_audited(pending, outsider, client_for):
    response = client_for(outsider).post(
        decide_url(pending), {"decision": "approve", "justification": "x"}
    )
    assert response.status_code == 404
    assert AuditEvent.objects.filter(action="pim.security.forbidden", actor=outsider).exists()
    assert status_of(pending) == RequestStatus.PENDING_APPROVAL


def test_losing_the_race_shows_a_clear_message(pending, approver, tree, client_for):
    other = make_user("ann")
    needs_approval(PRA, approvers=[approver, other])
    client_for(other).post(decide_url(pending), {"decision": "deny", "justification": "No"})
    response = client_for(approver).post(
        decide_url(pending), {"decision": "approve", "justification": "Yes"}, follow=True
    )
    assert response.status_code == 200
    assert any("already denied by Ann" in m for m in messages_of(response))
    assert status_of(pending) == RequestStatus.DENIED


def test_a_double_click_records_one_decision(pending, approver, client_for):
    client = client_for(approver)
    data = {"decision": "approve", "justification": "Yes"}
    client.post(decide_url(pending), data)
    response = client.post(decide_url(pending), data, follow=True)
    assert any("You already decided" in m for m in messages_of(response))
    assert ApprovalDecision.objects.count() == 1
    assert Assignment.objects.filter(activated_from__isnull=False).count() == 1


def test_a_forged_post_without_csrf_token_is_refused(pending, approver):
    client = Client(enforce_csrf_checks=True)
    client.login(username=approver.username, password=PASSWORD)
    response = client.post(decide_url(pending), {"decision": "approve", "justification": "x"})
    assert response.status_code == 403
    assert status_of(pending) == RequestStatus.PENDING_APPROVAL
    response = client.post(BULK, {"request": [pending.pk], "decision": "approve"})
    assert response.status_code == 403
    assert status_of(pending) == RequestStatus.PENDING_APPROVAL


def test_get_on_decide_is_not_allowed(pending, approver, client_for):
    assert client_for(approver).get(decide_url(pending)).status_code == 405


# --- Bulk ------------------------------------------------------------------------------------


def test_bulk_approve_reports_mixed_outcomes(approver, tree, client_for):
    other = make_user("ann")
    needs_approval(PRA, approvers=[approver, other])
    fresh = [submit(new_requester(f"user{n}")) for n in range(2)]
    taken = submit(new_requester("taken"))
    client_for(other).post(decide_url(taken), {"decision": "approve", "justification": "ok"})
    client = client_for(approver)
    response = client.post(
        BULK,
        {
            "request": [r.pk for r in fresh] + [taken.pk],
            "decision": "approve",
            "justification": "Maintenance window",
            "next": INBOX + "?role=1",
        },
        follow=True,
    )
    assert response.redirect_chain[-1][0] == INBOX + "?role=1"
    assert any(
        "2 approved; 1 was already decided by another approver" in m for m in messages_of(response)
    )
    page = response.content.decode()
    assert "What happened" in page and "already approved by Ann" in page
    assert {status_of(r) for r in fresh} == {RequestStatus.PROVISIONED}
    # The result is shown once.
    assert "What happened" not in client.get(INBOX).content.decode()


def test_bulk_with_a_guessed_id_refuses_it_and_audits(pending, approver, outsider, client_for):
    response = client_for(outsider).post(
        BULK,
        {"request": [pending.pk], "decision": "approve", "justification": "x"},
        follow=True,
    )
    assert any("1 was not yours to decide" in m for m in messages_of(response))
    assert status_of(pending) == RequestStatus.PENDING_APPROVAL
    assert AuditEvent.objects.filter(action="pim.security.forbidden", actor=outsider).exists()


def test_bulk_without_selection_says_so(approver, client_for):
    response = client_for(approver).post(
        BULK, {"decision": "approve", "justification": "x"}, follow=True
    )
    assert any("Select at least one request." in m for m in messages_of(response))


def test_bulk_without_justification_decides_nothing(pending, approver, client_for):
    response = client_for(approver).post(
        BULK, {"request": [pending.pk], "decision": "approve", "justification": ""}, follow=True
    )
    assert any("Give a justification" in m for m in messages_of(response))
    assert status_of(pending) == RequestStatus.PENDING_APPROVAL


def test_bulk_with_too_many_ids_decides_nothing(pending, approver, client_for):
    ids = [pending.pk, *range(10**6, 10**6 + 1000)]
    response = client_for(approver).post(
        BULK, {"request": ids, "decision": "approve", "justification": "x"}, follow=True
    )
    assert any("Decide at most 1,000 requests at once." in m for m in messages_of(response))
    assert status_of(pending) == RequestStatus.PENDING_APPROVAL


def test_bulk_with_garbage_ids_is_refused_not_a_server_error(approver, client_for):
    response = client_for(approver).post(
        BULK, {"request": ["1; DROP TABLE"], "decision": "approve", "justification": "x"}
    )
    assert response.status_code == 302


# --- Cancel ----------------------------------------------------------------------------------


def test_pra_cancels_a_pending_request_from_the_inbox(pending, pra, client_for):
    response = client_for(pra).post(cancel_url(pending), {"next": INBOX}, follow=True)
    assert response.redirect_chain[-1][0] == INBOX
    assert status_of(pending) == RequestStatus.CANCELED


def test_an_approver_cannot_cancel_and_is_told_so(pending, approver, client_for):
    response = client_for(approver).post(cancel_url(pending))
    assert response.status_code == 403
    assert "not one you may cancel" in response.content.decode()
    assert status_of(pending) == RequestStatus.PENDING_APPROVAL


def test_canceling_an_already_decided_request_shows_a_message(pending, approver, pra, client_for):
    client_for(approver).post(decide_url(pending), {"decision": "approve", "justification": "ok"})
    response = client_for(pra).post(cancel_url(pending), follow=True)
    assert any("already approved" in m for m in messages_of(response))
    assert status_of(pending) == RequestStatus.PROVISIONED
