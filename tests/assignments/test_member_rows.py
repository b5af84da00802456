"""The rows of a role's member table, written in Python (assignments.templatetags.member_rows):
every value escaped, and the cells the template wrote, for who manages and who only reads."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from assignments.extensions import ProvisioningStatus
from assignments.models import Assignment, AssignmentKind, Scope, ScopeKind
from assignments.templatetags.member_rows import member_rows

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
SCOPE = Scope(pk=2, name='Prod "web"', kind=ScopeKind.SUBSCRIPTION, path="/contoso/<prod>/")
IN_FORCE_TABS = ["eligible", "active"]

User = get_user_model()


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def member(**fields) -> Assignment:
    """An unsaved assignment of a user, labelled as the role page's view labels them."""
    can_manage = fields.pop("can_manage", True)
    membership = fields.pop("membership", "Direct")
    provisioning = fields.pop("provisioning", ())
    principal = fields.pop("principal", None) or User(
        pk=7, username="ann", display_name="Ann <O'Neil>", email=""
    )
    fields.setdefault("start", NOW - timedelta(days=1))
    fields.setdefault("end", NOW + timedelta(days=3, minutes=5))
    row = Assignment(pk=42, scope=SCOPE, kind=AssignmentKind.ELIGIBLE, **fields)
    row.set_principal(principal)
    row.membership, row.can_manage, row.provisioning = membership, can_manage, provisioning
    return row


def test_every_value_of_a_row_is_escaped():
    user = User(pk=7, username="ann", display_name="Ann <O'Neil>", email="a&b@example.com")
    maker = User(pk=8, username="bob", display_name='Bob "<b>" & co')
    failed = ProvisioningStatus("LDAP <corp>", "failed", "1 <failed>", error="bind & <refused>")
    html = member_rows(
        [member(principal=user, created_by=maker, provisioning=[failed], membership="Via <x>")],
        tab="eligible",
    )
    assert "<b>" not in html and "<corp>" not in html and "<refused>" not in html
    assert "Ann &lt;O&#x27;Neil&gt;" in html
    assert '<span class="text-muted small">a&amp;b@example.com</span>' in html
    assert '<span title="/contoso/&lt;prod&gt;/">Subscription Prod &quot;web&quot;</span>' in html
    assert "<td>Bob &quot;&lt;b&gt;&quot; &amp; co</td>" in html
    assert '<span class="text-muted">Via &lt;x&gt;</span>' in html
    assert '<span class="text-muted">LDAP &lt;corp&gt;</span>' in html
    assert '<span class="badge text-bg-danger">1 &lt;failed&gt;</span>' in html
    assert '<div class="text-danger text-break">bind &amp; &lt;refused&gt;</div>' in html


def test_a_group_name_is_escaped():
    html = member_rows([member(principal=Group(pk=5, name='Ops <&> "on call"'))], tab="eligible")
    assert "Ops &lt;&amp;&gt; &quot;on call&quot;" in html


@pytest.mark.parametrize("tab", IN_FORCE_TABS)
def test_a_manager_may_update_extend_and_remove_an_assignment_in_force(tab):
    html = member_rows([member()], tab=tab)
    assert '<a class="btn btn-sm btn-outline-secondary" href="/assignments/42/update/">' in html
    assert '<a class="btn btn-sm btn-outline-secondary" href="/assignments/42/extend/">' in html
    assert '<a class="btn btn-sm btn-outline-danger" href="/assignments/42/remove/">' in html
    assert "Renew" not in html


@pytest.mark.parametrize("tab", IN_FORCE_TABS)
def test_a_permanent_assignment_cannot_be_extended(tab):
    html = member_rows([member(end=None)], tab=tab)
    assert ">Update</a>" in html and ">Remove</a>" in html
    assert "Extend" not in html


def test_the_expired_tab_offers_renew_alone():
    html = member_rows([member(end=NOW - timedelta(days=1))], tab="expired")
    assert (
        '<a class="btn btn-sm btn-outline-primary" href="/assignments/42/renew/">Renew</a>' in html
    )
    assert "Update" not in html and "Extend" not in html and "Remove" not in html


@pytest.mark.parametrize("tab", [*IN_FORCE_TABS, "expired"])
def test_no_action_for_someone_who_cannot_manage(tab):
    html = member_rows([member(can_manage=False)], tab=tab)
    assert '<td class="text-end text-nowrap"></td>' in html
    assert "btn" not in html


def test_an_activation_is_marked_activated():
    activated = member_rows([member(activated_from_id=9)], tab="active")
    assert (
        '</i> Ann &lt;O&#x27;Neil&gt; <span class="badge text-bg-light border">activated'
        in activated
    )
    assigned = member_rows([member()], tab="active")
    assert "activated" not in assigned


def test_the_expired_tab_has_no_time_remaining():
    in_force = member_rows([member()], tab="eligible")
    assert '<td class="time-left">3 days 5 minutes</td>' in in_force
    expired = member_rows([member(end=NOW - timedelta(days=1))], tab="expired")
    assert "time-left" not in expired


def test_a_dash_when_nobody_is_named_as_assigner():
    html = member_rows([member()], tab="eligible")
    assert "<td>—</td>" in html


def test_a_user_is_shown_with_their_email_and_a_group_as_a_group():
    user = User(pk=7, username="ann", display_name="Ann", email="ann@example.com")
    html = member_rows([member(principal=user)], tab="eligible")
    assert (
        '<i class="bi bi-person" aria-hidden="true"></i> Ann <span class="text-muted small">'
        in html
    )
    assert "<td>User</td>" in html
    group = member_rows([member(principal=Group(pk=5, name="Ops"))], tab="eligible")
    assert '<td><i class="bi bi-people" aria-hidden="true"></i> Ops</td>' in group
    assert "<td>Group</td>" in group
