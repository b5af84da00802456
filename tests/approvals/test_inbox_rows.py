"""The rows of Approve requests, written in Python (approvals.templatetags.inbox_rows): every
value escaped, and the cells the template wrote for each kind of request and viewer."""

from datetime import UTC, datetime, timedelta

from django.contrib.auth.models import Group
from django.urls import reverse

from approvals.services import InboxItem
from approvals.templatetags.inbox_rows import inbox_rows
from assignments.models import (
    AssignmentKind,
    RequestAction,
    Role,
    RoleRequest,
    Scope,
    ScopeKind,
)
from pim_portal.models import User

NOW = datetime(2027, 1, 2, 12, 0, tzinfo=UTC)
ROLE = Role(pk=1, name="Owner <&>")
SCOPE = Scope(pk=2, name='Prod "web"', kind=ScopeKind.SUBSCRIPTION, path="/contoso/<prod>/")
ANN = User(pk=7, username="ann", display_name="Ann <O'Neil>")


def item(*, can_decide=True, can_cancel=False, approvals=0, decided_by_me=False, **fields):
    """An unsaved activation request of Ann, as the inbox reads it."""
    values = {
        "pk": 42,
        "action": RequestAction.SELF_ACTIVATE,
        "role": ROLE,
        "scope": SCOPE,
        "kind": AssignmentKind.ACTIVE,
        "requested_by": ANN,
        "principal_user": ANN,
        "created_at": NOW - timedelta(hours=3),
        "duration": timedelta(hours=2),
        "justification": "Fix <b>prod</b>",
        "approval_deadline": NOW + timedelta(days=1),
        **fields,
    }
    return InboxItem(
        request=RoleRequest(**values),
        can_decide=can_decide,
        can_cancel=can_cancel,
        approvals=approvals,
        decided_by_me=decided_by_me,
    )


def test_every_value_of_a_row_is_escaped():
    html = inbox_rows(
        [item(ticket_system="Jira <x>", ticket_number='OPS-1 "a"', can_cancel=True)], NOW
    )
    assert "<b>" not in html and "<x>" not in html
    assert "<td>Ann &lt;O&#x27;Neil&gt;</td>" in html
    assert "<td>Owner &lt;&amp;&gt;</td>" in html
    assert "<td>Subscription Prod &quot;web&quot;</td>" in html
    assert '<td class="text-break">Fix &lt;b&gt;prod&lt;/b&gt;</td>' in html
    assert "<td>Jira &lt;x&gt; OPS-1 &quot;a&quot;</td>" in html
    assert (
        'aria-label="Select the request of Ann &lt;O&#x27;Neil&gt; for Owner &lt;&amp;&gt;"' in html
    )
    assert 'data-confirm="Cancel this request of Ann &lt;O&#x27;Neil&gt;?"' in html


def test_an_activation_shows_its_start_duration_waiting_and_deadline():
    html = inbox_rows([item()], NOW)
    assert '<td>On approval<div class="small text-muted">2 hours</div></td>' in html
    assert "<td>3\xa0hours</td>" in html  # waiting, measured to the page's now
    assert '<span class="text-muted">—</span>' in html  # no ticket
    assert "2027-01-03 12:00 UTC" in html
    link = reverse("approvals:request_detail", args=[42])
    assert f'<a class="btn btn-sm btn-outline-secondary" href="{link}">Review</a>' in html


def test_an_administrators_request_shows_its_type_and_end():
    end = datetime(2027, 6, 30, 8, 0, tzinfo=UTC)
    html = inbox_rows([item(action=RequestAction.ADMIN_ASSIGN, kind="eligible", end=end)], NOW)
    assert "<td>Eligible until 2027-06-30 08:00 UTC</td>" in html
    permanent = inbox_rows([item(action=RequestAction.ADMIN_ASSIGN, kind="eligible")], NOW)
    assert "<td>Eligible until Permanent</td>" in permanent


def test_a_checkbox_only_for_what_the_viewer_decides():
    deciding = inbox_rows([item()], NOW)
    assert 'name="request" value="42"' in deciding
    reading = inbox_rows([item(can_decide=False, can_cancel=True)], NOW)
    assert 'name="request"' not in reading
    assert ">View</a>" in reading and "Not yours to decide." in reading
    assert 'form="cancel-42"' in reading
    assert 'form="cancel-42"' not in deciding


def test_several_approvals_are_counted_and_the_own_approval_noted():
    html = inbox_rows([item(approvals_required=2, approvals=1, decided_by_me=True)], NOW)
    assert '<div class="small text-muted">1 of 2 approvals</div>' in html
    assert "You approved it; it waits for others." in html
    single = inbox_rows([item(approvals_required=1)], NOW)
    assert "approvals</div>" not in single


def test_a_request_for_a_group_names_the_group():
    group = Group(pk=5, name="Ops <night>")
    html = inbox_rows([item(principal_user=None, principal_group=group)], NOW)
    assert 'Ann &lt;O&#x27;Neil&gt; <span class="text-muted">for Ops &lt;night&gt;</span>' in html


def test_a_long_justification_is_cut():
    html = inbox_rows([item(justification="x" * 200)], NOW)
    assert f'<td class="text-break">{"x" * 119}…</td>' in html
