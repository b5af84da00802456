"""An engineer activates a role that a connector makes true in a real OpenLDAP group: My roles
says "Provisioned", and the directory (read with ldapsearch) has them in the group; after they
deactivate, they are gone from it."""

import pytest

from assignments.models import AssignmentKind, ScopeKind
from connectors.models import Connector, Mapping
from tests.assignments.activation_support import set_policy
from tests.connectors import ldap_server
from tests.factories import assign, make_scope, make_user, role, root

pytestmark = pytest.mark.browser


def test_an_activation_mapped_to_an_ldap_group_is_provisioned_and_deprovisioned(
    page, login, slapd, ldap_group, ldap_members, monkeypatch
):
    monkeypatch.setenv("PIM_TEST_LDAP_PASSWORD", ldap_server.ADMIN_PASSWORD)
    sub = make_scope("Production", ScopeKind.SUBSCRIPTION, root(), slug="prod")
    rg = make_scope("db-prod", ScopeKind.RESOURCE_GROUP, sub, slug="db-prod")
    set_policy("Contributor", require_mfa_on_activation=False, require_approval=False)
    alice = make_user("alice", display_name="Alice Engineer")
    assign(alice, "Contributor", scope=rg, kind=AssignmentKind.ELIGIBLE)
    group = ldap_group()
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
    Mapping.objects.create(connector=connector, role=role("Contributor"), scope=rg, target=group)
    alice_dn = ldap_server.USERS["alice"][0]

    login(page, "alice")
    page.goto("/my/roles/")
    page.locator("#my-roles-table tbody tr", has_text="Contributor").get_by_role(
        "link", name="Activate"
    ).click()
    page.fill("[name=justification]", "Migrate the orders table")
    page.get_by_role("button", name="Activate").click()
    page.wait_for_url("**/my/roles/?tab=active")

    row = page.locator("#my-roles-table tbody tr", has_text="Contributor")
    status = row.locator(".provisioning-status")
    assert "Corporate directory" in status.inner_text()
    assert status.get_attribute("data-state") == "provisioned"
    assert "Provisioned" in status.inner_text()
    assert ldap_server.PLACEHOLDER.lower() in {m.lower() for m in ldap_members(group)}
    assert alice_dn in ldap_members(group)

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Deactivate").click()
    page.wait_for_url("**/my/roles/?tab=active")
    assert page.get_by_role("alert").filter(has_text="is deactivated").count()
    assert alice_dn not in ldap_members(group)

    page.goto("/my/roles/?tab=expired")
    ended = page.locator("#my-roles-table tbody tr", has_text="Contributor").first
    assert ended.locator(".provisioning-status").get_attribute("data-state") == "deprovisioned"
