"""The provisioning engine against a real PostgreSQL server: who holds a role, active and in
force at a mapping's scope or above, is a member of the mapped database role, and nobody else
the portal put there. Time is moved explicitly; the target is read with psql."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from assignments.models import AssignmentKind
from assignments.services.deprovisioning import user_deprovision
from audit.models import AuditEvent
from connectors import provisioning
from connectors.models import Connector, DriftFinding, Mapping, Provisioning, ProvisioningState
from connectors.reconcile import reconcile_connector
from connectors.tasks import assignments_changed, provision_due, users_changed
from pim_portal.actor import Actor
from tests.connectors.pg_server import direct_members
from tests.factories import assign, make_group, make_user

pytestmark = pytest.mark.django_db
State = ProvisioningState


@pytest.fixture
def alice(db):
    return make_user("alice", email="alice@contoso.example")


@pytest.fixture
def bob(db):
    return make_user("bob", email="bob@contoso.example")


def sync(now=None) -> int:
    """Every due row, here and now (what a worker does)."""
    done = 0
    while did := provisioning.sync_batch(now or timezone.now(), 100):
        done += did
    return done


def members(pg_server) -> set[str]:
    """The mapped role's members, but the portal's own login (it holds ADMIN OPTION)."""
    return direct_members(pg_server.readwrite) - {pg_server.portal}


def events(action):
    return list(AuditEvent.objects.filter(action=action))


def row_of(mapping, user) -> Provisioning:
    return Provisioning.objects.get(mapping=mapping, user=user)


def test_an_active_assignment_in_force_at_the_scope_above_is_granted(
    mapping,
    alice,
    tree,
    pg_server,
):
    held = assign(alice, "Contributor", scope=tree["sub"])  # above the mapping's scope
    assignments_changed([held.pk])
    assert members(pg_server) == {pg_server.alice}
    row = row_of(mapping, alice)
    assert row.state == State.PROVISIONED
    assert row.account == pg_server.alice
    assert row.via_assignment_id == held.pk
    assert row.due_at == held.end  # it looks again exactly at the end
    [granted] = events("pim.connector.granted")
    assert granted.actor_name == "system (connector pg-prod)"
    assert granted.principal == "alice"


def test_an_eligible_assignment_grants_nothing(mapping, alice, tree, pg_server):
    held = assign(alice, "Contributor", scope=tree["rg"], kind=AssignmentKind.ELIGIBLE)
    assignments_changed([held.pk])
    assert members(pg_server) == set()
    assert not Provisioning.objects.exists()


def test_an_assignment_at_a_scope_below_the_mapping_grants_nothing(
    mapping,
    alice,
    tree,
    pg_server,
):
    held = assign(alice, "Contributor", scope=tree["vm"])
    assignments_changed([held.pk])
    assert members(pg_server) == set()


def test_the_end_is_revoked_when_it_comes_and_audited_once(
    mapping,
    alice,
    tree,
    pg_server,
):
    end = timezone.now() + timedelta(hours=1)
    held = assign(alice, "Contributor", scope=tree["rg"], end=end)
    assignments_changed([held.pk])
    assert sync(end - timedelta(seconds=1)) == 0  # nothing due before the end
    assert members(pg_server) == {pg_server.alice}
    with time_machine.travel(end, tick=False):
        assert sync() == 1
    assert members(pg_server) == set()
    row = row_of(mapping, alice)
    assert row.state == State.DEPROVISIONED
    assert row.due_at is None
    assert len(events("pim.connector.revoked")) == 1
    assert sync(end + timedelta(minutes=5)) == 0  # done once


def test_a_scheduled_activation_is_granted_only_from_its_start(
    mapping,
    alice,
    tree,
    pg_server,
):
    start = timezone.now() + timedelta(hours=2)
    held = assign(
        alice, "Contributor", scope=tree["rg"], start=start, end=start + timedelta(hours=1)
    )
    assignments_changed([held.pk])
    assert members(pg_server) == set()
    row = row_of(mapping, alice)
    assert row.state == State.PENDING_PROVISIONING
    assert row.due_at == start
    with time_machine.travel(start, tick=False):
        sync()
    assert members(pg_server) == {pg_server.alice}


def test_members_of_a_group_principal_are_granted_one_by_one(
    mapping,
    alice,
    bob,
    tree,
    pg_server,
):
    group = make_group("db-operators", alice, bob)
    held = assign(group, "Contributor", scope=tree["rg"])
    assignments_changed([held.pk])
    assert members(pg_server) == {pg_server.alice, pg_server.bob}


def test_leaving_the_group_revokes(
    mapping,
    alice,
    bob,
    tree,
    pg_server,
    django_capture_on_commit_callbacks,
):
    group = make_group("db-operators", alice, bob)
    held = assign(group, "Contributor", scope=tree["rg"])
    assignments_changed([held.pk])
    with django_capture_on_commit_callbacks(execute=True):
        group.user_set.remove(bob)
    assert members(pg_server) == {pg_server.alice}
    assert row_of(mapping, bob).state == State.DEPROVISIONED


def test_joining_the_group_grants(
    mapping,
    alice,
    bob,
    tree,
    pg_server,
    django_capture_on_commit_callbacks,
):
    group = make_group("db-operators", alice)
    held = assign(group, "Contributor", scope=tree["rg"])
    assignments_changed([held.pk])
    with django_capture_on_commit_callbacks(execute=True):
        group.user_set.add(bob)
    assert members(pg_server) == {pg_server.alice, pg_server.bob}


def test_an_activation_made_through_the_service_is_granted_after_commit(
    mapping,
    tree,
    pg_server,
    django_capture_on_commit_callbacks,
):
    from assignments.services import request_activate
    from tests.assignments.activation_support import set_policy

    set_policy("Contributor", require_mfa_on_activation=False, require_approval=False)
    erin = make_user("erin")
    eligible = assign(erin, "Contributor", scope=tree["rg"], kind=AssignmentKind.ELIGIBLE)
    pg_server.create_role("erin")
    with django_capture_on_commit_callbacks(execute=True):
        request_activate(
            actor=Actor(user=erin),
            eligible=eligible,
            justification="Deploy the fix",
            duration=timedelta(hours=1),
        )
    assert members(pg_server) == {pg_server.prefix + "erin"}


def test_a_removed_assignment_is_revoked(
    mapping,
    alice,
    tree,
    pg_server,
    resource_owner,
    django_capture_on_commit_callbacks,
):
    from assignments.services import assignment_remove

    held = assign(alice, "Contributor", scope=tree["rg"])
    assignments_changed([held.pk])
    with django_capture_on_commit_callbacks(execute=True):
        assignment_remove(
            actor=Actor(user=resource_owner), assignment=held, justification="Left the team"
        )
    assert members(pg_server) == set()


def test_a_deprovisioned_user_is_revoked(
    mapping,
    alice,
    tree,
    pg_server,
    global_admin,
    django_capture_on_commit_callbacks,
):
    group = make_group("db-operators", alice)
    held = assign(group, "Contributor", scope=tree["rg"])  # through a group: it stays
    assignments_changed([held.pk])
    with django_capture_on_commit_callbacks(execute=True):
        user_deprovision(Actor(user=global_admin), alice, reason="Left the company")
    assert members(pg_server) == set()
    assert row_of(mapping, alice).state == State.DEPROVISIONED


def test_a_user_without_an_account_in_the_target_fails_saying_why(
    mapping,
    tree,
    pg_server,
):
    nobody = make_user("nobody")
    held = assign(nobody, "Contributor", scope=tree["rg"])
    assignments_changed([held.pk])
    row = row_of(mapping, nobody)
    assert row.state == State.FAILED
    assert row.failed_operation == "grant"
    assert "nobody has no account in PostgreSQL prod" in row.error
    assert len(events("pim.connector.provisioning_failed")) == 1


def test_a_target_that_is_down_fails_loudly_then_converges_when_back(
    mapping,
    connector,
    alice,
    tree,
    pg_server,
    global_admin,
    django_capture_on_commit_callbacks,
):
    end = timezone.now() + timedelta(minutes=10)
    held = assign(alice, "Contributor", scope=tree["rg"], end=end)
    assignments_changed([held.pk])
    Connector.objects.filter(pk=connector.pk).update(port=1)  # nothing listens there
    with time_machine.travel(end, tick=False), django_capture_on_commit_callbacks(execute=True):
        sync()
    with time_machine.travel(end, tick=False):
        row = row_of(mapping, alice)
        assert row.state == State.FAILED
        assert row.failed_operation == "revoke"
        assert "could not reach" in row.error
        assert row.due_at == end + timedelta(seconds=5)  # retried with backoff
        # The administrators are told that access could not be taken away.
        assert [m.to for m in mail.outbox] == [[global_admin.email]]
        assert "could not be removed" in mail.outbox[0].subject
    with time_machine.travel(end + timedelta(seconds=5), tick=False):
        sync()
        row = row_of(mapping, alice)
        assert (row.attempts, row.due_at) == (2, end + timedelta(seconds=15))
    assert len(events("pim.connector.provisioning_failed")) == 1  # said once, not per retry
    assert len(mail.outbox) == 1
    assert members(pg_server) == {pg_server.alice}  # still there: the loud part matters
    Connector.objects.filter(pk=connector.pk).update(port=5432)
    with time_machine.travel(end + timedelta(seconds=15), tick=False):
        sync()
    assert members(pg_server) == set()
    assert row_of(mapping, alice).state == State.DEPROVISIONED


def test_a_grant_already_applied_by_a_worker_that_died_is_recorded_once(
    mapping,
    alice,
    tree,
    pg_server,
):
    held = assign(alice, "Contributor", scope=tree["rg"])
    # The worker granted, then died before its transaction committed: the target has it, the
    # row is still due.
    pg_server.execute(f'GRANT "{pg_server.readwrite}" TO "{pg_server.alice}"')
    provisioning.mark_due({(mapping.pk, alice.pk)})
    sync()
    assert members(pg_server) == {pg_server.alice}
    assert row_of(mapping, alice).state == State.PROVISIONED
    assert len(events("pim.connector.granted")) == 1
    assignments_changed([held.pk])  # told again: nothing more happens
    assert len(events("pim.connector.granted")) == 1


def test_a_disabled_connector_changes_nothing(mapping, connector, alice, tree, pg_server):
    Connector.objects.filter(pk=connector.pk).update(enabled=False)
    held = assign(alice, "Contributor", scope=tree["rg"])
    provisioning.mark_due({(mapping.pk, alice.pk)})
    assignments_changed([held.pk])
    assert members(pg_server) == set()
    assert row_of(mapping, alice).due_at is None


def test_reconciliation_finds_access_granted_outside_pim(
    mapping,
    connector,
    alice,
    bob,
    tree,
    pg_server,
):
    held = assign(alice, "Contributor", scope=tree["rg"])
    assignments_changed([held.pk])
    pg_server.execute(f'GRANT "{pg_server.readwrite}" TO "{pg_server.bob}"')  # behind its back
    result = reconcile_connector(connector)
    assert (result.drift_found, result.drift_removed) == (1, 0)
    [finding] = DriftFinding.objects.all()
    assert (finding.account, finding.user) == (pg_server.bob, bob)
    assert finding.is_open
    assert members(pg_server) == {pg_server.alice, pg_server.bob}  # not enforcing: reported only
    [found] = events("pim.connector.drift_found")
    assert found.principal == "bob"
    reconcile_connector(connector)  # seen again: the same finding, not a new one
    assert DriftFinding.objects.count() == 1
    assert len(events("pim.connector.drift_found")) == 1


def test_an_enforcing_mapping_removes_access_granted_outside_pim(
    mapping,
    connector,
    bob,
    pg_server,
):
    Mapping.objects.filter(pk=mapping.pk).update(enforce=True)
    pg_server.execute(f'GRANT "{pg_server.readwrite}" TO "{pg_server.bob}"')
    result = reconcile_connector(connector)
    assert (result.drift_found, result.drift_removed) == (1, 1)
    assert members(pg_server) == set()
    finding = DriftFinding.objects.get()
    assert (finding.resolution, finding.is_open) == ("removed", False)
    assert len(events("pim.connector.drift_removed")) == 1


def test_reconciliation_grants_a_member_removed_in_the_target(
    mapping,
    connector,
    alice,
    tree,
    pg_server,
):
    held = assign(alice, "Contributor", scope=tree["rg"])
    assignments_changed([held.pk])
    pg_server.execute(f'REVOKE "{pg_server.readwrite}" FROM "{pg_server.alice}"')
    result = reconcile_connector(connector)
    assert result.to_grant == 1
    provision_due()
    assert members(pg_server) == {pg_server.alice}
    assert not DriftFinding.objects.exists()


def test_a_finding_gone_from_the_target_is_resolved(mapping, connector, bob, pg_server):
    pg_server.execute(f'GRANT "{pg_server.readwrite}" TO "{pg_server.bob}"')
    reconcile_connector(connector)
    pg_server.execute(f'REVOKE "{pg_server.readwrite}" FROM "{pg_server.bob}"')
    reconcile_connector(connector)
    finding = DriftFinding.objects.get()
    assert finding.resolution == "gone"


def test_reconciling_a_target_that_is_down_records_the_error(mapping, connector):
    Connector.objects.filter(pk=connector.pk).update(port=1)
    connector.refresh_from_db()
    result = reconcile_connector(connector)
    assert result.errors and "could not reach" in result.errors[0]
    connector.refresh_from_db()
    assert "could not reach" in connector.last_error


def test_users_changed_of_a_deactivated_account_revokes(
    mapping,
    alice,
    tree,
    pg_server,
):
    held = assign(alice, "Contributor", scope=tree["rg"])
    assignments_changed([held.pk])
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    users_changed([alice.pk])
    assert members(pg_server) == set()
