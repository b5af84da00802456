"""Approve requests keeps each approver's list (approvals.services.kept_inbox): a second load
reads no request but its page's own, and every write that changes the list, a change of the
approver's grants and the first approval deadline passing make it read again."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals import services
from approvals.models import ApprovalDecision
from assignments import counts
from assignments import services as assignment_services
from assignments.models import Assignment, RequestStatus, RoleRequest
from tests.approvals.conftest import PRA, needs_approval, new_requester, submit
from tests.factories import make_group, make_user, role

pytestmark = pytest.mark.django_db

INBOX = reverse("approvals:inbox")
T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def load(client, **query) -> tuple[object, int]:
    """(the inbox page, how many times it read the requests of the inbox: 0 when kept)."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(INBOX, query)
    assert response.status_code == 200
    read = sum('AS "can_decide"' in q["sql"] for q in queries.captured_queries)
    return response, read


def shown(response) -> list[int]:
    return [item.request.pk for item in response.context["items"]]


def test_a_second_load_uses_the_kept_list_and_menus(approver, pra_needs_alex, client_for):
    requests = [submit(new_requester(f"user{n}")) for n in range(3)]
    client = client_for(approver)
    with CaptureQueriesContext(connection) as first_queries:
        first, read = load(client)
    assert read == 1
    with CaptureQueriesContext(connection) as again_queries:
        again, read = load(client)
    assert read == 0
    assert sorted(shown(again)) == sorted(r.pk for r in requests)
    assert again.context["decidable_count"] == 3
    assert again.context["options"] == first.context["options"]
    # The menus' labels were kept with the rows: no query of scopes or people for them.
    label_reads = (
        'SELECT "assignments_scope"."id" AS "pk"',
        'SELECT "pim_portal_user"."id" AS "pk"',
    )
    for queries, expected in ((first_queries, 2), (again_queries, 0)):
        sql = [q["sql"] for q in queries.captured_queries]
        assert len([q for q in sql if q.startswith(label_reads)]) == expected


def test_a_new_request_shows_at_once(approver, pra_needs_alex, client_for):
    submit(new_requester("ann"))
    client = client_for(approver)
    load(client)
    newcomer = new_requester("bob")
    submit(newcomer)
    response, read = load(client)
    assert read == 1
    assert response.context["decidable_count"] == 2
    assert (newcomer.pk, str(newcomer)) in response.context["options"]["requesters"]


def test_a_decision_of_another_approver_takes_the_request_out_at_once(
    approver, eligible_user, client_for
):
    other = make_user("olga")
    needs_approval(PRA, approvers=[approver, other])
    request = submit(eligible_user)
    client = client_for(approver)
    assert shown(load(client)[0]) == [request.pk]
    services.decision_record(actor=other, request_id=request.pk, approve=False, justification="No")
    response, read = load(client)
    assert read == 1
    assert shown(response) == []
    assert response.context["decidable_count"] == 0


def test_a_request_leaves_the_inbox_when_its_approval_deadline_passes(
    approver, client_for, settings
):
    settings.PIM_APPROVALS_INBOX_SECONDS = 3600  # the deadline, not the cache's time, decides
    with time_machine.travel(T0, tick=False) as clock:
        needs_approval(PRA, approvers=[approver], window=timedelta(minutes=10))
        soon = submit(new_requester("ann"))
        client = client_for(approver)
        load(client)
        clock.move_to(T0 + timedelta(minutes=9))
        assert load(client)[1] == 0  # nothing lapses before the first deadline
        clock.move_to(T0 + timedelta(minutes=10, seconds=1))
        response, read = load(client)
    assert read == 1
    assert soon.pk not in shown(response)
    assert response.context["decidable_count"] == 0


def test_naming_an_approver_in_the_role_settings_shows_them_the_requests(
    approver, pra, pra_needs_alex, client_for
):
    request = submit(new_requester("ann"))
    newcomer = make_user("nina")
    client = client_for(newcomer)
    assert shown(load(client)[0]) == []
    assignment_services.policy_update(
        actor=pra,
        role=role(PRA),
        values={"require_approval": True},
        approver_users=[approver, newcomer],
    )
    response, read = load(client)
    assert read == 1
    assert shown(response) == [request.pk]


def test_joining_a_group_named_as_approver_shows_its_requests(approver, client_for):
    approvers = make_group("PRA approvers")
    needs_approval(PRA, groups=[approvers])
    request = submit(new_requester("ann"))
    client = client_for(approver)
    assert shown(load(client)[0]) == []
    approver.groups.add(approvers)
    assert shown(load(client)[0]) == [request.pk]


def test_losing_the_role_that_let_one_cancel_empties_the_inbox(pra, eligible_user, client_for):
    needs_approval(PRA, approvers=[make_user("alex")])
    request = submit(eligible_user)
    client = client_for(pra)
    assert shown(load(client)[0]) == [request.pk]  # a Privileged Role Administrator cancels
    Assignment.objects.filter(principal_user=pra).delete()
    assert shown(load(client)[0]) == []  # kept, it would still list the request


def test_writes_that_send_no_signal_move_the_generation_too(pending, approver):
    before = counts.REQUESTS.current()
    RoleRequest.objects.filter(pk=pending.pk).update(status_note="Checked")
    after_update = counts.REQUESTS.current()
    ApprovalDecision.objects.bulk_create([])
    after_bulk = counts.REQUESTS.current()
    assert len({before, after_update, after_bulk}) == 3


def test_a_request_no_longer_waiting_is_not_listed_from_a_kept_list(
    approver, pra_needs_alex, client_for, monkeypatch
):
    """A list kept by another process (each with its own cache) may name a request decided
    meanwhile: the page reads its own requests afresh, and only those still waiting."""
    request = submit(new_requester("ann"))
    client = client_for(approver)
    load(client)
    monkeypatch.setattr(counts.REQUESTS, "move", lambda: None)  # written where no one sees
    RoleRequest.objects.filter(pk=request.pk).update(status=RequestStatus.CANCELED)
    response, read = load(client)
    assert read == 0
    assert shown(response) == []


def test_with_no_seconds_every_load_reads(approver, pra_needs_alex, client_for, settings):
    settings.PIM_APPROVALS_INBOX_SECONDS = 0
    submit(new_requester("ann"))
    client = client_for(approver)
    assert load(client)[1] == 1
    assert load(client)[1] == 1


@pytest.mark.django_db(transaction=True)
def test_what_others_kept_before_the_commit_is_forgotten_after_it(approver, pra_needs_alex):
    with transaction.atomic():
        submit(new_requester("ann"))
        inside = counts.REQUESTS.current()  # moved at once: the writer reads what it wrote
    assert counts.REQUESTS.current() != inside  # and again at commit
