"""What member tables, My roles and the request pages say: starts, ends, statuses in words."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from assignments.models import AssignmentKind, RequestAction, RequestStatus, RoleRequest, Scope
from pim_portal.templatetags.pim import status_words_for
from tests.factories import assign, make_user, role

pytestmark = pytest.mark.django_db

READER = "Security Reader"


def url(name: str, *args) -> str:
    return reverse(f"assignments:{name}", args=args)


def headers(content: str, table_id: str | None = None) -> list[str]:
    table = content
    if table_id:
        table = content[content.index(f'id="{table_id}"') :]
    head = table[table.index("<thead>") : table.index("</thead>")]
    return [
        re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<th[^>]*>(.*?)</th>", head)
    ]


def make_request(user, status: str, action: str = RequestAction.SELF_ACTIVATE, **fields):
    return RoleRequest.objects.create(
        action=action,
        status=status,
        principal_user=user,
        requested_by=user,
        role=role(READER),
        scope=Scope.objects.root(),
        kind=AssignmentKind.ACTIVE,
        **fields,
    )


# Member tables of a role -------------------------------------------------------------------


def test_member_table_says_when_an_assignment_that_has_not_started_starts(client_for, pra):
    now = timezone.now()
    assign(
        make_user("ann"),
        READER,
        kind=AssignmentKind.ELIGIBLE,
        start=now + timedelta(days=2, minutes=5),
        end=now + timedelta(days=30),
    )

    content = client_for(pra).get(url("role_detail", role(READER).pk)).content.decode()

    assert '<td class="time-left">starts in 2 days' in content
    assert "29 days" not in content  # not counted to the end while it has not started


def test_member_table_counts_time_remaining_to_the_end_once_started(client_for, pra):
    now = timezone.now()
    assign(
        make_user("ann"),
        READER,
        kind=AssignmentKind.ELIGIBLE,
        start=now - timedelta(days=1),
        end=now + timedelta(days=3, minutes=5),
    )

    content = client_for(pra).get(url("role_detail", role(READER).pk)).content.decode()

    assert '<td class="time-left">3 days' in content


def test_expired_tab_shows_the_end_once_under_ended(client_for, pra):
    now = timezone.now()
    ended = now - timedelta(days=2)
    assign(
        make_user("ann"),
        READER,
        kind=AssignmentKind.ELIGIBLE,
        start=now - timedelta(days=20),
        end=ended,
    )

    response = client_for(pra).get(url("role_detail", role(READER).pk), {"tab": "expired"})

    content = response.content.decode()
    columns = headers(content)
    assert "Ended" in columns
    assert "Time remaining" not in columns and "End" not in columns
    assert content.count(f"{timezone.localtime(ended):%Y-%m-%d %H:%M}") == 1


# My roles ---------------------------------------------------------------------------------


def test_my_roles_expired_tab_shows_the_end_once(client_for, outsider):
    now = timezone.now()
    ended = now - timedelta(days=3)
    assign(outsider, READER, kind=AssignmentKind.ELIGIBLE, start=now - timedelta(days=9), end=ended)

    response = client_for(outsider).get(url("my_roles"), {"tab": "expired"})

    content = response.content.decode()
    assert headers(content, "my-roles-table").count("Ended") == 1
    assert "Time remaining" not in headers(content, "my-roles-table")
    assert content.count(f"{timezone.localtime(ended):%Y-%m-%d %H:%M}") == 1


def test_my_roles_rows_carry_labels_for_the_phone_layout(client_for, eligible_user):
    content = client_for(eligible_user).get(url("my_roles")).content.decode()

    assert 'class="table table-hover align-middle table-stack" id="my-roles-table"' in content
    assert 'data-label="Time remaining"' in content


# Statuses in words --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "action", "words"),
    [
        ("pending_approval", "self_activate", "Waiting for approval"),
        ("scheduled", "self_activate", "Scheduled"),
        ("provisioned", "self_activate", "Activated"),
        ("provisioned", "admin_assign", "Assigned"),
        ("provisioned", "admin_remove", "Removed"),
        ("provisioned", "admin_update", "Updated"),
        ("provisioned", "admin_extend", "Extended"),
        ("provisioned", "self_extend", "Extended"),
        ("provisioned", "admin_renew", "Renewed"),
        ("provisioned", "self_renew", "Renewed"),
        ("revoked", "self_deactivate", "Deactivated"),
        ("revoked", "self_activate", "Ended"),
        ("denied", "self_activate", "Denied"),
        ("canceled", "self_activate", "Canceled"),
        ("expired", "self_activate", "Not decided in time"),
        ("failed", "admin_assign", "Failed"),
        ("provisioned", "", "Done"),
    ],
)
def test_status_words(status, action, words):
    assert status_words_for(status, action) == words


def test_my_requests_shows_statuses_in_words(client_for, outsider):
    make_request(outsider, RequestStatus.PROVISIONED)
    make_request(
        outsider,
        RequestStatus.PENDING_APPROVAL,
        approval_deadline=timezone.now() + timedelta(hours=4),
    )

    content = client_for(outsider).get(url("my_requests")).content.decode()

    assert ">Activated</span>" in content
    assert ">Waiting for approval</span>" in content
    assert ">Provisioned<" not in content and ">Pending approval<" not in content


def test_my_requests_says_a_request_past_its_deadline_was_not_decided_in_time(client_for, outsider):
    # The sweep has not run: the clock alone says it lapsed.
    make_request(
        outsider,
        RequestStatus.PENDING_APPROVAL,
        approval_deadline=timezone.now() - timedelta(minutes=1),
    )

    content = client_for(outsider).get(url("my_requests")).content.decode()

    assert ">Not decided in time</span>" in content
    assert ">Waiting for approval</span>" not in content


def test_my_requests_status_filter_offers_words(client_for, outsider):
    content = client_for(outsider).get(url("my_requests")).content.decode()

    assert '<option value="pending_approval">Waiting for approval</option>' in content
    assert '<option value="expired">Not decided in time</option>' in content


def test_request_page_shows_the_status_in_words(client_for, outsider):
    request = make_request(
        outsider,
        RequestStatus.PENDING_APPROVAL,
        approval_deadline=timezone.now() + timedelta(hours=4),
    )

    response = client_for(outsider).get(reverse("approvals:request_detail", args=[request.pk]))

    assert response.status_code == 200
    assert (
        '<span id="request-status"><span class="badge text-bg-warning">Waiting for approval'
        in response.content.decode()
    )
