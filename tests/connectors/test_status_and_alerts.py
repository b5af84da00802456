"""What people see of the connectors outside their pages: the provisioning status on My roles
and on a role's members, the request's timeline, and the security alerts about drift and
revocations that could not be applied."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from alerts import services as alert_services
from alerts.models import Severity
from assignments.models import AssignmentKind
from assignments.services import request_activate, request_deactivate
from connectors import provisioning
from connectors.models import Connector, DriftFinding
from connectors.reconcile import reconcile_connector
from connectors.tasks import assignments_changed
from pim_portal.actor import Actor
from tests.alerts.conftest import labels, scan, the_open_alert
from tests.assignments.activation_support import set_policy
from tests.factories import assign, make_group, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(db):
    return make_user("alice")


def activate(user, eligible, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return request_activate(
            actor=Actor(user=user),
            eligible=eligible,
            justification="Migrate the orders table",
            duration=timedelta(hours=1),
        )


def test_my_roles_shows_the_activation_provisioned(
    mapping, alice, tree, client_for, django_capture_on_commit_callbacks
):
    set_policy("Contributor", require_mfa_on_activation=False, require_approval=False)
    eligible = assign(alice, "Contributor", scope=tree["rg"], kind=AssignmentKind.ELIGIBLE)
    activate(alice, eligible, django_capture_on_commit_callbacks)
    page = client_for(alice).get(reverse("assignments:my_roles") + "?tab=active")
    [status] = page.context["entries"][0]["provisioning"]
    assert (status.state, status.label) == ("provisioned", "Provisioned")
    assert status.where == f"PostgreSQL prod: {mapping.target}"
    assert b'data-state="provisioned"' in page.content


def test_my_roles_shows_a_failure_with_its_error(
    mapping, tree, client_for, django_capture_on_commit_callbacks
):
    set_policy("Contributor", require_mfa_on_activation=False, require_approval=False)
    nobody = make_user("nobody")  # no login role in the server
    eligible = assign(nobody, "Contributor", scope=tree["rg"], kind=AssignmentKind.ELIGIBLE)
    activate(nobody, eligible, django_capture_on_commit_callbacks)
    page = client_for(nobody).get(reverse("assignments:my_roles") + "?tab=active")
    assert b'data-state="failed"' in page.content
    assert b"nobody has no account in PostgreSQL prod" in page.content


def test_a_group_assignment_on_the_role_page_counts_its_members_states(
    mapping, tree, client_for, resource_owner
):
    members = [make_user(f"member{i}") for i in range(3)]
    group = make_group("db-operators", *members)
    held = assign(group, "Contributor", scope=tree["rg"])
    assignments_changed([held.pk])  # member0..2 have no login role: all fail
    url = reverse("assignments:scope_role_detail", args=[tree["rg"].pk, held.role_id])
    page = client_for(resource_owner).get(url + "?tab=active")
    row = next(a for a in page.context["page_obj"] if a.pk == held.pk)
    [status] = row.provisioning
    assert (status.state, status.label) == ("failed", "3 failed")


def test_the_role_page_costs_one_query_more_whatever_the_members(
    mapping, tree, client_for, resource_owner, django_assert_max_num_queries
):
    url = reverse("assignments:scope_role_detail", args=[tree["rg"].pk, mapping.role_id])
    client = client_for(resource_owner)

    def add(count, offset):
        for i in range(count):
            held = assign(make_user(f"m{offset + i}"), "Contributor", scope=tree["rg"])
            assignments_changed([held.pk])

    add(2, 0)
    client.get(url + "?tab=active")
    with django_assert_max_num_queries(50) as few:
        client.get(url + "?tab=active")
    add(10, 100)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(url + "?tab=active")
    assert all(a.provisioning for a in response.context["page_obj"])


def test_the_requests_timeline_says_provisioned_then_deprovisioned(
    mapping, alice, tree, client_for, pg_server, django_capture_on_commit_callbacks
):
    set_policy("Contributor", require_mfa_on_activation=False, require_approval=False)
    eligible = assign(alice, "Contributor", scope=tree["rg"], kind=AssignmentKind.ELIGIBLE)
    request = activate(alice, eligible, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        request_deactivate(actor=Actor(user=alice), assignment_id=request.result_assignment_id)
    page = client_for(alice).get(reverse("approvals:request_detail", args=[request.pk]))
    titles = [entry.title for entry in page.context["timeline"]]
    assert "Provisioned in PostgreSQL prod" in titles
    assert "Deprovisioned in PostgreSQL prod" in titles
    assert titles.index("Provisioned in PostgreSQL prod") < titles.index(
        "Deprovisioned in PostgreSQL prod"
    )


def test_access_granted_outside_pim_in_a_connected_system_opens_a_high_alert(
    mapping, connector, pg_server
):
    pg_server.execute(f'GRANT "{pg_server.readwrite}" TO "{pg_server.bob}"')
    make_user("bob")
    reconcile_connector(connector)
    scan("access_granted_outside_pim_in_connected_systems")
    alert = the_open_alert("access_granted_outside_pim_in_connected_systems")
    assert alert.severity == Severity.HIGH
    [label] = labels(alert)
    assert label.startswith(f"bob in {pg_server.readwrite} in PostgreSQL prod")


def test_the_alerts_remediation_removes_the_member_from_the_target(
    mapping, connector, pg_server, global_admin
):
    from tests.connectors.pg_server import direct_members

    pg_server.execute(f'GRANT "{pg_server.readwrite}" TO "{pg_server.bob}"')
    reconcile_connector(connector)
    scan("access_granted_outside_pim_in_connected_systems")
    alert = the_open_alert("access_granted_outside_pim_in_connected_systems")
    message = alert_services.remediate(global_admin, alert)
    assert message == "Removed 1 member from the connected systems."
    assert pg_server.bob not in direct_members(pg_server.readwrite)
    assert DriftFinding.objects.get().resolution == "removed"


def test_a_revocation_that_cannot_be_applied_opens_a_high_alert(mapping, connector, alice, tree):
    end = timezone.now() + timedelta(minutes=5)
    held = assign(alice, "Contributor", scope=tree["rg"], end=end)
    assignments_changed([held.pk])
    Connector.objects.filter(pk=connector.pk).update(port=1)
    with time_machine.travel(end, tick=False):
        provisioning.sync_batch(timezone.now(), 10)
    scan("connected_system_revoke_failed")
    alert = the_open_alert("connected_system_revoke_failed")
    [label] = labels(alert)
    assert label.startswith(f"alice in {mapping.target} in PostgreSQL prod")
    assert "could not reach" in label
