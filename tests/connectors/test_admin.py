"""The Django admin of connectors: changes go through the services (checked, audited); what
the engine records is read-only. A superuser drives it with real POSTs, as in a browser."""

import json

import pytest

from assignments.models import Scope
from audit.models import AuditEvent
from connectors.models import Connector, DriftFinding, Mapping, Provisioning
from tests.conftest import signed_in
from tests.connectors.test_pages import (
    GROUP,
    LDAP_OPTIONS,
    finding,
    make_connector,
    make_mapping,
    provisioning,
)
from tests.factories import assign, make_user, role

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(db):
    """A superuser who is also a Global Administrator: the services let them manage."""
    user = make_user("root-admin", is_superuser=True, is_staff=True)
    assign(user, "Global Administrator", permanent=True)
    return user


@pytest.fixture
def admin_client(superuser):
    return signed_in(superuser)


def connector_data(**changes) -> dict:
    data = {
        "name": "ldap-corp",
        "display_name": "Corporate directory",
        "kind": "ldap",
        "host": "ldap.contoso.example",
        "port": "389",
        "username": "cn=pim,dc=contoso,dc=example",
        "secret_ref": "env:PIM_LDAP_PASSWORD",
        "options": json.dumps(LDAP_OPTIONS),
        "timeout": "5",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_adding_a_connector_goes_through_the_service(admin_client, superuser):
    response = admin_client.post("/admin/connectors/connector/add/", connector_data())

    assert response.status_code == 302
    connector = Connector.objects.get(name="ldap-corp")
    assert connector.created_by == superuser
    # The options are what the kind's own form makes of them (its defaults filled in).
    assert connector.options["user_dn_template"] == LDAP_OPTIONS["user_dn_template"]
    assert connector.options["start_tls"] is False
    event = AuditEvent.objects.get(action="pim.connector.created")
    assert event.actor_id == superuser.pk


def test_the_admin_refuses_a_literal_password_and_does_not_show_it_back(admin_client):
    response = admin_client.post(
        "/admin/connectors/connector/add/", connector_data(secret_ref="hunter2-the-password")
    )

    assert response.status_code == 200
    text = response.content.decode()
    assert "Name where the password is, not the password" in text
    assert "hunter2-the-password" not in text
    assert not Connector.objects.exists()


def test_the_admin_checks_the_options_with_the_kinds_form(admin_client):
    options = {**LDAP_OPTIONS, "use_ssl": True, "start_tls": True}

    response = admin_client.post(
        "/admin/connectors/connector/add/", connector_data(options=json.dumps(options))
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["options"]
    assert "start_tls: Choose LDAPS or StartTLS, not both." in errors
    assert not Connector.objects.exists()


def test_changing_a_connector_is_audited_with_before_and_after(admin_client):
    connector = make_connector(display_name="Old name")

    response = admin_client.post(
        f"/admin/connectors/connector/{connector.pk}/change/",
        connector_data(display_name="New name", port=str(connector.port), host="127.0.0.1"),
    )

    assert response.status_code == 302
    connector.refresh_from_db()
    assert (connector.name, connector.display_name) == ("ldap-corp", "New name")
    event = AuditEvent.objects.get(action="pim.connector.updated")
    assert (event.before["display_name"], event.after["display_name"]) == ("Old name", "New name")


def test_deleting_a_connector_is_audited(admin_client):
    connector = make_connector()
    make_mapping(connector)

    response = admin_client.post(
        f"/admin/connectors/connector/{connector.pk}/delete/", {"post": "yes"}
    )

    assert response.status_code == 302
    assert not Connector.objects.exists()
    event = AuditEvent.objects.get(action="pim.connector.deleted")
    assert event.message == "1 mappings deleted with it."


def test_mappings_are_made_changed_and_deleted_through_the_services(admin_client):
    connector = make_connector()
    root = Scope.objects.root()

    admin_client.post(
        "/admin/connectors/mapping/add/",
        {
            "connector": connector.pk,
            "role": role("Security Reader").pk,
            "scope": root.pk,
            "target": GROUP,
        },
    )
    mapping = Mapping.objects.get()
    admin_client.post(f"/admin/connectors/mapping/{mapping.pk}/change/", {"enforce": "on"})
    mapping.refresh_from_db()
    assert mapping.enforce is True
    admin_client.post(f"/admin/connectors/mapping/{mapping.pk}/delete/", {"post": "yes"})

    assert not Mapping.objects.exists()
    actions = list(
        AuditEvent.objects.filter(action__startswith="pim.connector.mapping_")
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == [
        "pim.connector.mapping_created",
        "pim.connector.mapping_updated",
        "pim.connector.mapping_deleted",
    ]


def test_a_mapping_the_target_refuses_is_a_message_and_nothing_is_saved(admin_client):
    connector = make_connector(enabled=True, secret_ref="")

    response = admin_client.post(
        "/admin/connectors/mapping/add/",
        {
            "connector": connector.pk,
            "role": role("Security Reader").pk,
            "scope": Scope.objects.root().pk,
            "target": GROUP,
        },
        follow=True,
    )

    assert messages_of(response) == [
        f"could not reach ldap://127.0.0.1:{connector.port}: connection refused"
    ]
    assert not Mapping.objects.exists()
    assert not AuditEvent.objects.filter(action="pim.connector.mapping_created").exists()


def test_provisioning_rows_and_findings_are_read_only(admin_client):
    mapping = make_mapping(make_connector())
    row = provisioning(mapping, "ann")
    found = finding(mapping, "uid=mallory,dc=example")

    for model, pk in (("provisioning", row.pk), ("driftfinding", found.pk)):
        assert admin_client.get(f"/admin/connectors/{model}/").status_code == 200
        assert admin_client.get(f"/admin/connectors/{model}/add/").status_code == 403
        change = admin_client.get(f"/admin/connectors/{model}/{pk}/change/")
        assert change.status_code == 200
        assert 'name="_save"' not in change.content.decode()
        assert admin_client.post(f"/admin/connectors/{model}/{pk}/delete/").status_code == 403
    assert Provisioning.objects.count() == 1 and DriftFinding.objects.count() == 1


def test_a_superuser_who_may_not_manage_connectors_sees_them_read_only(db):
    plain = make_user("plain-root", is_superuser=True, is_staff=True)
    client = signed_in(plain)
    connector = make_connector(display_name="Untouched")

    assert client.get("/admin/connectors/connector/").status_code == 200
    response = client.post(
        f"/admin/connectors/connector/{connector.pk}/change/",
        connector_data(display_name="Changed", port=str(connector.port)),
    )

    assert response.status_code == 403
    assert client.get("/admin/connectors/connector/add/").status_code == 403
    connector.refresh_from_db()
    assert connector.display_name == "Untouched"
    assert not AuditEvent.objects.filter(action__startswith="pim.connector.").exists()
