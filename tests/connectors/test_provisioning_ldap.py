"""The provisioning engine against a real OpenLDAP server (slapd, started by the fixture):
an active assignment in force makes its holder a member of the mapped group, its end takes
them out on the second, drift is found and enforced. Time is moved explicitly; the group is
read with the real ldapsearch."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from assignments.models import AssignmentKind
from connectors import provisioning
from connectors.models import Connector, DriftFinding, Mapping, Provisioning, ProvisioningState
from connectors.reconcile import reconcile_connector
from connectors.tasks import assignments_changed
from tests.connectors import ldap_server
from tests.factories import assign, make_group, make_user, role

pytestmark = pytest.mark.django_db

ALICE = ldap_server.USERS["alice"][0]
BOB = ldap_server.USERS["bob"][0]


@pytest.fixture
def group(ldap_group):
    return ldap_group()


@pytest.fixture
def mapping(slapd, group, tree, monkeypatch):
    monkeypatch.setenv("PIM_TEST_LDAP_PASSWORD", ldap_server.ADMIN_PASSWORD)
    connector = Connector.objects.create(
        name="ldap-corp",
        display_name="Corporate directory",
        kind="ldap",
        host="127.0.0.1",
        port=slapd.port,
        username=ldap_server.ADMIN_DN,
        secret_ref="env:PIM_TEST_LDAP_PASSWORD",
        options={
            "member_attribute": "member",
            "placeholder_member": ldap_server.PLACEHOLDER,
            "user_dn_template": f"uid={{username}},{ldap_server.PEOPLE}",
            "username_attribute": "uid",
        },
    )
    return Mapping.objects.create(
        connector=connector, role=role("Owner"), scope=tree["sub"], target=group
    )


def members(ldap_members, group) -> set[str]:
    return {m.lower() for m in ldap_members(group)} - {ldap_server.PLACEHOLDER.lower()}


def sync() -> None:
    while provisioning.sync_batch(timezone.now(), 100):
        pass


def test_an_activation_is_a_group_membership_until_its_end(mapping, group, ldap_members, tree):
    alice = make_user("alice")
    end = timezone.now() + timedelta(hours=1)
    held = assign(alice, "Owner", scope=tree["sub"], end=end)
    assignments_changed([held.pk])
    assert members(ldap_members, group) == {ALICE.lower()}
    row = Provisioning.objects.get(mapping=mapping, user=alice)
    assert (row.state, row.due_at) == (ProvisioningState.PROVISIONED, end)
    with time_machine.travel(end - timedelta(seconds=1), tick=False):
        sync()
    assert members(ldap_members, group) == {ALICE.lower()}  # not a second early
    with time_machine.travel(end, tick=False):
        sync()
    assert members(ldap_members, group) == set()
    row.refresh_from_db()
    assert row.state == ProvisioningState.DEPROVISIONED


def test_the_members_of_a_group_principal_are_members_one_by_one(
    mapping, group, ldap_members, tree
):
    team = make_group("prod-admins", make_user("alice"), make_user("bob"))
    held = assign(team, "Owner", scope=tree["root"])  # above the mapping's scope
    assignments_changed([held.pk])
    assert members(ldap_members, group) == {ALICE.lower(), BOB.lower()}


def test_an_eligible_assignment_puts_nobody_in_the_group(mapping, group, ldap_members, tree):
    held = assign(make_user("alice"), "Owner", scope=tree["sub"], kind=AssignmentKind.ELIGIBLE)
    assignments_changed([held.pk])
    assert members(ldap_members, group) == set()


def test_a_member_added_in_the_directory_is_drift_and_removed_when_enforced(
    mapping, group, ldap_members, slapd
):
    bob = make_user("bob")
    slapd.modify(f"dn: {group}\nchangetype: modify\nadd: member\nmember: {BOB}\n")
    reconcile_connector(mapping.connector)
    finding = DriftFinding.objects.get()
    assert (finding.user, finding.is_open) == (bob, True)
    assert members(ldap_members, group) == {BOB.lower()}
    Mapping.objects.filter(pk=mapping.pk).update(enforce=True)
    mapping.connector.refresh_from_db()
    reconcile_connector(mapping.connector)
    assert members(ldap_members, group) == set()
    finding.refresh_from_db()
    assert finding.resolution == "removed"
