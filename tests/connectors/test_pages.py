"""The administrators' connector pages: connectors, mappings, provisioning rows, drift findings.

No target is needed for most of them: a disabled connector reads nothing, and one pointed at a
closed loopback port answers "connection refused" at once. The PostgreSQL ones run against the
local server (tests/connectors/pg_server.py) and skip without it.
"""

import socket
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from connectors.models import Connector, DriftFinding, Mapping, Provisioning, ProvisioningState
from connectors.targets import kind_choices
from tests.connectors.pg_server import pg_server
from tests.factories import assign, make_group, make_user, role

__all__ = ["pg_server"]  # the fixture, imported for pytest

pytestmark = pytest.mark.django_db

State = ProvisioningState
MANAGERS = "only Global Administrators and Privileged Role Administrators manage connectors"
VIEWERS = "only those who may view directory roles see connectors"
LDAP_OPTIONS = {
    "member_attribute": "member",
    "username_attribute": "uid",
    "user_dn_template": "uid={username},ou=people,dc=contoso,dc=example",
}
GROUP = "cn=db-admins,ou=groups,dc=contoso,dc=example"
PROD = "/managementGroups/contoso/subscriptions/prod/"


def closed_port() -> int:
    """A loopback port nobody listens on (it was free a moment ago): connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_connector(name: str = "ldap-corp", **fields) -> Connector:
    values = {
        "display_name": name.replace("-", " ").title(),
        "kind": "ldap",
        "host": "127.0.0.1",
        "port": closed_port(),
        "enabled": False,
        "secret_ref": "env:PIM_TEST_LDAP_PASSWORD",
        "options": dict(LDAP_OPTIONS),
    }
    values.update(fields)
    return Connector.objects.create(name=name, **values)


def make_mapping(connector: Connector, role_name: str = "Security Reader", **fields) -> Mapping:
    from assignments.models import Scope

    fields.setdefault("scope", Scope.objects.root())
    fields.setdefault("target", GROUP)
    return Mapping.objects.create(connector=connector, role=role(role_name), **fields)


def provisioning(mapping: Mapping, username: str, state: str = State.PROVISIONED, **fields):
    now = timezone.now()
    if state == State.FAILED:
        fields.setdefault("failed_operation", "revoke")
        fields.setdefault("error", "could not reach ldap://127.0.0.1:1: connection refused")
        fields.setdefault("failing_since", now - timedelta(hours=1))
        fields.setdefault("attempts", 3)
        fields.setdefault("due_at", now + timedelta(minutes=5))
    return Provisioning.objects.create(
        mapping=mapping,
        user=make_user(username),
        state=state,
        account=f"uid={username},ou=people,dc=contoso,dc=example",
        synced_at=now,
        **fields,
    )


def finding(mapping: Mapping, account: str, **fields) -> DriftFinding:
    now = timezone.now()
    fields.setdefault("first_seen_at", now - timedelta(days=2))
    fields.setdefault("last_seen_at", now)
    return DriftFinding.objects.create(mapping=mapping, account=account, **fields)


def ldap_form(**changes) -> dict:
    data = {
        "name": "ldap-corp",
        "display_name": "Corporate directory",
        "host": "ldap.contoso.example",
        "port": "389",
        "username": "cn=pim,ou=services,dc=contoso,dc=example",
        "secret_ref": "env:PIM_LDAP_PASSWORD",
        "timeout": "5",
        "enabled": "on",
        "options-start_tls": "on",
        "options-member_attribute": "member",
        "options-username_attribute": "uid",
        "options-user_dn_template": "uid={username},ou=people,dc=contoso,dc=example",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def refusals(what: str) -> int:
    return AuditEvent.objects.filter(
        action="pim.security.forbidden", message__contains=what
    ).count()


# --- The list -----------------------------------------------------------------------------


def test_list_shows_each_connector_with_its_counts(client_for, security_reader, tree):
    corp = make_connector("ldap-corp", display_name="Corporate directory", port=389)
    make_connector("pg-prod", kind="postgresql", host="db.example", port=None, options={})
    readers = make_mapping(corp)
    owners = make_mapping(corp, "Owner", scope=tree["sub"], target="cn=owners,dc=example")
    provisioning(readers, "ann")
    provisioning(owners, "bea")
    provisioning(owners, "cal", State.FAILED)
    provisioning(owners, "dan", State.DEPROVISIONED)
    finding(readers, "uid=mallory,ou=people,dc=contoso,dc=example")
    finding(readers, "uid=old,ou=people,dc=example", resolved_at=timezone.now())
    Connector.objects.filter(pk=corp.pk).update(last_error="invalid credentials for cn=pim")

    response = client_for(security_reader).get(reverse("connectors:connector_list"))

    assert response.status_code == 200
    rows = {c.name: c for c in response.context["connectors"]}
    assert (rows["ldap-corp"].mapping_count, rows["ldap-corp"].provisioned) == (2, 2)
    assert (rows["ldap-corp"].failed, rows["ldap-corp"].open_findings) == (1, 1)
    assert (rows["pg-prod"].mapping_count, rows["pg-prod"].provisioned) == (0, 0)
    text = response.content.decode()
    assert "LDAP group membership" in text and "PostgreSQL role grants" in text
    assert "127.0.0.1:389" in text
    assert "invalid credentials for cn=pim" in text
    assert response.context["section"] == "connectors"


def test_list_without_connectors_says_what_a_connector_is(client_for, security_reader):
    response = client_for(security_reader).get(reverse("connectors:connector_list"))

    assert "No connector yet. A connector links the portal to a system" in response.content.decode()


def test_new_connector_button_is_for_managers_only(client_for, security_reader, pra):
    url = reverse("connectors:connector_list")
    new = reverse("connectors:connector_create")

    assert new in client_for(pra).get(url).content.decode()
    assert new not in client_for(security_reader).get(url).content.decode()


@pytest.mark.parametrize("persona", ["outsider", "eligible_user", "resource_owner"])
def test_list_refuses_those_who_may_not_view_directory_roles(request, client_for, persona):
    user = request.getfixturevalue(persona)

    response = client_for(user).get(reverse("connectors:connector_list"))

    assert response.status_code == 403
    assert VIEWERS in response.content.decode()
    assert refusals(VIEWERS) == 1


def test_list_query_count_does_not_grow_with_connectors(
    client_for, security_reader, django_assert_max_num_queries
):
    def connectors(first: int, last: int) -> None:
        for number in range(first, last):
            connector = make_connector(f"c{number:02d}")
            mapping = make_mapping(connector, target=f"cn=g{number},dc=example")
            provisioning(mapping, f"user{number}")
            finding(mapping, f"uid=x{number},dc=example")

    client = client_for(security_reader)
    url = reverse("connectors:connector_list")
    connectors(0, 3)
    client.get(url)
    with django_assert_max_num_queries(30) as few:
        assert client.get(url).status_code == 200
    connectors(3, 30)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(url)
    assert len(response.context["connectors"]) == 25


# --- Creating a connector -------------------------------------------------------------------


def test_the_first_step_offers_every_kind_with_its_label(client_for, pra):
    response = client_for(pra).get(reverse("connectors:connector_create"))

    text = response.content.decode()
    for name, label in kind_choices():
        assert label in text
        assert reverse("connectors:connector_create_kind", args=[name]) in text


@pytest.mark.parametrize("kind_name", [name for name, _ in kind_choices()])
def test_the_form_of_each_kind_renders_its_options_prefixed(client_for, pra, kind_name):
    response = client_for(pra).get(reverse("connectors:connector_create_kind", args=[kind_name]))

    assert response.status_code == 200
    options = response.context["forms"].options
    assert options.prefix == "options"
    text = response.content.decode()
    for field in options:
        assert f'name="options-{field.name}"' in text
    assert "env:NAME or file:/path — the password itself is never stored" in text


def test_an_unknown_kind_is_not_found(client_for, pra):
    response = client_for(pra).get(reverse("connectors:connector_create_kind", args=["ftp"]))

    assert response.status_code == 404


def test_creating_an_ldap_connector_stores_its_options_and_audits_it(client_for, pra):
    response = client_for(pra).post(
        reverse("connectors:connector_create_kind", args=["ldap"]), ldap_form(), follow=True
    )

    connector = Connector.objects.get(name="ldap-corp")
    assert response.redirect_chain[-1][0] == reverse(
        "connectors:connector_detail", args=[connector.pk]
    )
    assert "Connector Corporate directory created" in " ".join(messages_of(response))
    assert (connector.kind, connector.host, connector.port) == ("ldap", "ldap.contoso.example", 389)
    assert connector.secret_ref == "env:PIM_LDAP_PASSWORD"
    assert connector.options["start_tls"] is True
    assert connector.options["user_dn_template"] == "uid={username},ou=people,dc=contoso,dc=example"
    assert connector.created_by == pra
    event = AuditEvent.objects.get(action="pim.connector.created")
    assert event.after["secret_ref"] == "env:PIM_LDAP_PASSWORD"


def test_a_literal_password_is_refused_and_never_shown_back(client_for, pra):
    response = client_for(pra).post(
        reverse("connectors:connector_create_kind", args=["ldap"]),
        ldap_form(secret_ref="Tr0ub4dor&3"),
    )

    assert response.status_code == 200
    assert not Connector.objects.exists()
    text = response.content.decode()
    assert "Name where the password is, not the password" in text
    assert "Tr0ub4dor" not in text
    assert not AuditEvent.objects.filter(action="pim.connector.created").exists()


def test_errors_of_the_connection_and_of_the_options_show_together(client_for, pra):
    response = client_for(pra).post(
        reverse("connectors:connector_create_kind", args=["ldap"]),
        ldap_form(host="", **{"options-use_ssl": "on"}),  # LDAPS and StartTLS together
    )

    forms = response.context["forms"]
    assert "host" in forms.connection.errors
    assert "Choose LDAPS or StartTLS, not both." in forms.options.errors["start_tls"]
    assert not Connector.objects.exists()
    # What was typed stays (no lost data).
    assert 'value="Corporate directory"' in response.content.decode()


def test_a_name_in_use_is_refused(client_for, pra):
    make_connector("ldap-corp")

    response = client_for(pra).post(
        reverse("connectors:connector_create_kind", args=["ldap"]), ldap_form()
    )

    assert "A connector has this name already" in response.content.decode()
    assert Connector.objects.count() == 1


def test_a_global_administrator_creates_a_postgresql_connector(client_for, global_admin):
    data = {
        "name": "pg-prod",
        "display_name": "Production database",
        "host": "db.contoso.example",
        "port": "",
        "username": "pim_portal",
        "secret_ref": "file:/run/secrets/pg",
        "timeout": "3",
        "options-dbname": "postgres",
        "options-sslmode": "verify-full",
        "options-account_template": "{username}",
        "options-lowercase": "on",
    }

    response = client_for(global_admin).post(
        reverse("connectors:connector_create_kind", args=["postgresql"]), data
    )

    connector = Connector.objects.get(name="pg-prod")
    assert response.status_code == 302
    assert (connector.port, connector.enabled, connector.timeout) == (None, False, 3.0)
    assert connector.options["sslmode"] == "verify-full"


# --- A connector's page ---------------------------------------------------------------------


def test_the_page_shows_connection_mappings_findings_and_failures(
    client_for, security_reader, tree
):
    connector = make_connector(username="cn=pim,ou=services,dc=contoso,dc=example")
    mapping = make_mapping(connector, enforce=True)
    provisioning(mapping, "ann")
    provisioning(mapping, "bea", State.PENDING_PROVISIONING)
    provisioning(mapping, "cal", State.FAILED, error="no account uid=cal in the directory")
    mallory = make_user("mallory")
    finding(mapping, "uid=mallory,ou=people,dc=contoso,dc=example", user=mallory)
    Mapping.objects.filter(pk=mapping.pk).update(last_error="no group cn=db-admins")

    response = client_for(security_reader).get(
        reverse("connectors:connector_detail", args=[connector.pk])
    )

    assert response.status_code == 200
    text = response.content.decode()
    assert "env:PIM_TEST_LDAP_PASSWORD" in text
    assert "cn=pim,ou=services,dc=contoso,dc=example" in text
    [shown] = response.context["mappings"]
    assert (shown.provisioned, shown.pending, shown.failed) == (1, 1, 1)
    assert "no group cn=db-admins" in text
    assert "Access granted outside PIM" in text
    assert "uid=mallory,ou=people,dc=contoso,dc=example" in text
    assert "the mapping enforces" in text
    assert "no account uid=cal in the directory" in text
    # A viewer sees no button that changes anything.
    assert reverse("connectors:connector_test", args=[connector.pk]) not in text
    assert reverse("connectors:mapping_create", args=[connector.pk]) not in text


def test_managers_get_the_buttons_and_retry_only_when_something_failed(client_for, pra):
    connector = make_connector()
    mapping = make_mapping(connector)
    url = reverse("connectors:connector_detail", args=[connector.pk])
    retry = reverse("connectors:connector_retry", args=[connector.pk])

    text = client_for(pra).get(url).content.decode()
    assert reverse("connectors:connector_test", args=[connector.pk]) in text
    assert reverse("connectors:connector_reconcile", args=[connector.pk]) in text
    assert reverse("connectors:mapping_create", args=[connector.pk]) in text
    assert retry not in text

    provisioning(mapping, "cal", State.FAILED)
    assert retry in client_for(pra).get(url).content.decode()


def test_the_secret_itself_is_never_shown(client_for, pra, monkeypatch):
    monkeypatch.setenv("PIM_TEST_LDAP_PASSWORD", "s3cr3t-value-never-shown")
    connector = make_connector()
    client = client_for(pra)

    for name in ("connector_detail", "connector_update", "connector_delete"):
        text = client.get(reverse(f"connectors:{name}", args=[connector.pk])).content.decode()
        assert "s3cr3t-value-never-shown" not in text
    text = client.get(reverse("connectors:connector_update", args=[connector.pk])).content.decode()
    assert 'value="env:PIM_TEST_LDAP_PASSWORD"' in text


def test_findings_and_failures_are_capped_with_a_link_to_all(client_for, security_reader):
    connector = make_connector()
    mapping = make_mapping(connector)
    for number in range(12):
        finding(mapping, f"uid=x{number},dc=example")
        provisioning(mapping, f"user{number}", State.FAILED)

    response = client_for(security_reader).get(
        reverse("connectors:connector_detail", args=[connector.pk])
    )

    assert len(response.context["findings"]) == 10
    assert len(response.context["failures"]) == 10
    text = response.content.decode()
    assert "See all 12 open findings" in text
    assert "See all 12 failures" in text


def test_the_page_query_count_does_not_grow_with_rows(
    client_for, security_reader, django_assert_max_num_queries
):
    connector = make_connector()

    def rows(first: int, last: int) -> None:
        for number in range(first, last):
            mapping = make_mapping(connector, target=f"cn=g{number},dc=example")
            provisioning(mapping, f"ok{number}")
            provisioning(mapping, f"bad{number}", State.FAILED)
            finding(mapping, f"uid=x{number},dc=example", user=make_user(f"x{number}"))

    client = client_for(security_reader)
    url = reverse("connectors:connector_detail", args=[connector.pk])
    rows(0, 3)
    client.get(url)
    with django_assert_max_num_queries(30) as few:
        client.get(url)
    rows(3, 30)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(url)
    assert len(response.context["mappings"]) == 30


@pytest.mark.parametrize("persona", ["outsider", "eligible_user", "resource_owner"])
def test_a_connector_is_not_found_for_those_who_may_not_view(request, client_for, persona):
    connector = make_connector()
    mapping = make_mapping(connector)
    client = client_for(request.getfixturevalue(persona))

    for url in (
        reverse("connectors:connector_detail", args=[connector.pk]),
        reverse("connectors:connector_findings", args=[connector.pk]),
        reverse("connectors:connector_failures", args=[connector.pk]),
        reverse("connectors:mapping_detail", args=[mapping.pk]),
    ):
        assert client.get(url).status_code == 404, url


def test_an_unknown_connector_is_not_found(client_for, pra):
    response = client_for(pra).get(reverse("connectors:connector_detail", args=[999999]))

    assert response.status_code == 404


def _manager_posts(connector: Connector, mapping: Mapping) -> list[tuple[str, dict]]:
    return [
        (reverse("connectors:connector_test", args=[connector.pk]), {}),
        (reverse("connectors:connector_reconcile", args=[connector.pk]), {}),
        (reverse("connectors:connector_retry", args=[connector.pk]), {}),
        (reverse("connectors:connector_update", args=[connector.pk]), ldap_form()),
        (reverse("connectors:connector_delete", args=[connector.pk]), {}),
        (reverse("connectors:connector_create_kind", args=["ldap"]), ldap_form(name="other")),
        (
            reverse("connectors:mapping_create", args=[connector.pk]),
            {"role": role("Owner").pk, "scope": "", "target": "cn=x,dc=example"},
        ),
        (reverse("connectors:mapping_update", args=[mapping.pk]), {"enforce": "on"}),
        (reverse("connectors:mapping_delete", args=[mapping.pk]), {}),
    ]


def test_a_security_reader_may_look_but_every_change_is_refused_with_the_rule(
    client_for, security_reader
):
    connector = make_connector()
    mapping = make_mapping(connector)
    failed = provisioning(mapping, "cal", State.FAILED)
    client = client_for(security_reader)
    before = AuditEvent.objects.exclude(action="pim.security.forbidden").count()

    for url, data in _manager_posts(connector, mapping):
        response = client.post(url, data)
        assert response.status_code == 403, url
        assert MANAGERS in response.content.decode(), url

    assert refusals(MANAGERS) == len(_manager_posts(connector, mapping))
    assert AuditEvent.objects.exclude(action="pim.security.forbidden").count() == before
    connector.refresh_from_db()
    mapping.refresh_from_db()
    failed.refresh_from_db()
    assert (connector.display_name, connector.last_error, mapping.enforce) == (
        "Ldap Corp",
        "",
        False,
    )
    assert failed.due_at > timezone.now()  # not retried
    assert Connector.objects.count() == 1 and Mapping.objects.count() == 1


def test_a_security_reader_may_not_open_the_forms_either(client_for, security_reader):
    connector = make_connector()
    mapping = make_mapping(connector)
    client = client_for(security_reader)

    for url in (
        reverse("connectors:connector_create"),
        reverse("connectors:connector_create_kind", args=["ldap"]),
        reverse("connectors:connector_update", args=[connector.pk]),
        reverse("connectors:connector_delete", args=[connector.pk]),
        reverse("connectors:mapping_create", args=[connector.pk]),
        reverse("connectors:mapping_update", args=[mapping.pk]),
        reverse("connectors:mapping_delete", args=[mapping.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 403, url
        assert MANAGERS in response.content.decode(), url


# --- Test, reconcile, retry -----------------------------------------------------------------


def test_testing_an_unreachable_connector_shows_the_targets_error(client_for, pra):
    connector = make_connector(enabled=True, secret_ref="")

    response = client_for(pra).post(
        reverse("connectors:connector_test", args=[connector.pk]), follow=True
    )

    expected = f"could not reach ldap://127.0.0.1:{connector.port}: connection refused"
    [message] = messages_of(response)
    assert message == f"Test of {connector} failed: {expected}"
    connector.refresh_from_db()
    assert connector.last_error == expected
    event = AuditEvent.objects.get(action="pim.connector.tested")
    assert event.after == {"problems": [expected]}


def test_testing_a_postgresql_connector_that_works_says_so(client_for, pra, pg_server):
    connector = pg_connector(pg_server)
    make_mapping(connector, target=pg_server.readwrite)

    response = client_for(pra).post(
        reverse("connectors:connector_test", args=[connector.pk]), follow=True
    )

    assert messages_of(response) == ["Connection works: signed in and found every mapped object."]


def test_testing_names_each_mapped_object_that_is_missing(client_for, pra, pg_server):
    connector = pg_connector(pg_server)
    make_mapping(connector, target=pg_server.readwrite)
    make_mapping(connector, "Owner", target=pg_server.prefix + "missing")

    response = client_for(pra).post(
        reverse("connectors:connector_test", args=[connector.pk]), follow=True
    )

    [message] = messages_of(response)
    assert message.startswith(f"Test of {connector} failed: {pg_server.prefix}missing: ")
    assert "no role" in message


def test_reconcile_now_is_audited_and_says_what_happens(client_for, pra):
    connector = make_connector(enabled=True)

    response = client_for(pra).post(
        reverse("connectors:connector_reconcile", args=[connector.pk]), follow=True
    )

    assert f"Reconciliation of {connector} requested" in messages_of(response)[0]
    assert AuditEvent.objects.filter(action="pim.connector.reconcile_requested").count() == 1


def test_reconciling_a_disabled_connector_warns_that_it_reads_nothing(client_for, pra):
    connector = make_connector(enabled=False)

    response = client_for(pra).post(
        reverse("connectors:connector_reconcile", args=[connector.pk]), follow=True
    )

    assert "is disabled: reconciliation reads nothing" in messages_of(response)[0]


def test_retry_makes_every_failed_row_due_now(client_for, pra):
    connector = make_connector()
    mapping = make_mapping(connector)
    rows = [provisioning(mapping, name, State.FAILED) for name in ("cal", "dee")]
    provisioning(mapping, "ann")

    response = client_for(pra).post(
        reverse("connectors:connector_retry", args=[connector.pk]), follow=True
    )

    assert messages_of(response) == ["2 failed grants or revocations are tried again now."]
    for row in rows:
        row.refresh_from_db()
        assert row.due_at <= timezone.now()
    event = AuditEvent.objects.get(action="pim.connector.retry_requested")
    assert event.after == {"rows": 2}


# --- Editing and deleting a connector -------------------------------------------------------


def test_the_edit_form_starts_from_the_connector_and_saves_changes(client_for, pra):
    connector = make_connector(display_name="Old name", options=dict(LDAP_OPTIONS))
    url = reverse("connectors:connector_update", args=[connector.pk])
    client = client_for(pra)

    form = client.get(url).context["forms"]
    assert form.connection["display_name"].value() == "Old name"
    assert form.options["user_dn_template"].value() == LDAP_OPTIONS["user_dn_template"]
    assert "name" not in form.connection.fields  # the name stays what it is

    response = client.post(
        url,
        ldap_form(name="renamed", display_name="New name", enabled=None, port=str(connector.port)),
    )

    assert response.status_code == 302
    connector.refresh_from_db()
    assert (connector.name, connector.display_name) == ("ldap-corp", "New name")
    assert connector.options["start_tls"] is True
    event = AuditEvent.objects.get(action="pim.connector.updated")
    assert (event.before["display_name"], event.after["display_name"]) == ("Old name", "New name")


def test_the_delete_page_says_members_stay_in_the_target(client_for, pra):
    connector = make_connector()
    mapping = make_mapping(connector)
    provisioning(mapping, "ann")
    url = reverse("connectors:connector_delete", args=[connector.pk])
    client = client_for(pra)

    text = client.get(url).content.decode()
    assert "Members stay in the target." in text
    assert "The 1 member the portal put in" in text

    response = client.post(url, follow=True)

    assert response.redirect_chain[-1][0] == reverse("connectors:connector_list")
    assert "The members it put in its target stay there." in messages_of(response)[0]
    assert not Connector.objects.exists()
    assert AuditEvent.objects.filter(action="pim.connector.deleted").count() == 1


# --- Mappings -------------------------------------------------------------------------------


def test_the_mapping_form_names_the_object_as_the_kind_does(client_for, pra, tree):
    connector = make_connector()

    response = client_for(pra).get(reverse("connectors:mapping_create", args=[connector.pk]))

    text = response.content.decode()
    assert "Group DN" in text
    assert "cn=db-admins,ou=groups,dc=contoso,dc=example" in text  # the kind's help
    assert "Remove members found in the target that no assignment explains." in text
    assert PROD in response.context["scope_paths"]


def test_a_mapping_of_a_disabled_connector_is_saved_without_reading_the_target(
    client_for, pra, tree
):
    connector = make_connector(enabled=False)

    response = client_for(pra).post(
        reverse("connectors:mapping_create", args=[connector.pk]),
        {"role": role("Contributor").pk, "scope": PROD.rstrip("/"), "target": f" {GROUP} "},
        follow=True,
    )

    mapping = Mapping.objects.get()
    assert response.redirect_chain[-1][0] == reverse("connectors:mapping_detail", args=[mapping.pk])
    assert (mapping.role, mapping.scope, mapping.target) == (
        role("Contributor"),
        tree["sub"],
        GROUP,
    )
    assert "nothing was read or changed in the target" in messages_of(response)[0]
    event = AuditEvent.objects.get(action="pim.connector.mapping_created")
    assert (event.role, event.scope) == ("Contributor", PROD)


def test_an_unreachable_target_refuses_the_mapping_on_the_target_field(client_for, pra):
    connector = make_connector(enabled=True, secret_ref="")
    data = {"role": role("Owner").pk, "scope": "", "target": GROUP, "enforce": "on"}

    response = client_for(pra).post(reverse("connectors:mapping_create", args=[connector.pk]), data)

    assert response.status_code == 200
    errors = response.context["form"].errors["target"]
    assert errors == [f"could not reach ldap://127.0.0.1:{connector.port}: connection refused"]
    text = response.content.decode()
    assert "connection refused" in text
    assert f'value="{GROUP}"' in text  # what was typed stays
    assert not Mapping.objects.exists()
    assert not AuditEvent.objects.filter(action="pim.connector.mapping_created").exists()


def test_a_role_missing_in_postgresql_is_refused_in_the_servers_words(client_for, pra, pg_server):
    connector = pg_connector(pg_server)
    url = reverse("connectors:mapping_create", args=[connector.pk])
    client = client_for(pra)
    missing = pg_server.prefix + "nope"

    response = client.post(url, {"role": role("Owner").pk, "target": missing})

    [error] = response.context["form"].errors["target"]
    assert error.startswith(f'no role "{missing}" on')
    assert not Mapping.objects.exists()

    response = client.post(url, {"role": role("Owner").pk, "target": pg_server.readwrite})

    assert response.status_code == 302
    assert Mapping.objects.get().target == pg_server.readwrite


def test_the_same_mapping_twice_is_refused(client_for, pra):
    connector = make_connector()
    make_mapping(connector, "Owner")

    response = client_for(pra).post(
        reverse("connectors:mapping_create", args=[connector.pk]),
        {"role": role("Owner").pk, "scope": "/", "target": GROUP},
    )

    assert response.context["form"].errors["target"] == [
        "This role at this scope is mapped to it already."
    ]
    assert Mapping.objects.count() == 1


def test_a_scope_path_that_does_not_exist_is_refused(client_for, pra, tree):
    connector = make_connector()

    response = client_for(pra).post(
        reverse("connectors:mapping_create", args=[connector.pk]),
        {"role": role("Owner").pk, "scope": "/subscriptions/nowhere", "target": GROUP},
    )

    assert response.context["form"].errors["scope"] == [
        "No scope has the path “/subscriptions/nowhere”."
    ]
    assert not Mapping.objects.exists()


def test_a_directory_role_is_mapped_in_the_whole_directory_only(client_for, pra, tree):
    connector = make_connector()

    response = client_for(pra).post(
        reverse("connectors:mapping_create", args=[connector.pk]),
        {"role": role("Security Reader").pk, "scope": PROD, "target": GROUP},
    )

    [error] = response.context["form"].errors["scope"]
    assert "is a directory role, held in the whole directory" in error
    assert not Mapping.objects.exists()


def test_the_mapping_page_shows_rows_in_graphs_words(client_for, security_reader):
    connector = make_connector()
    mapping = make_mapping(connector)
    helpdesk = make_group("Helpdesk")
    through = assign(helpdesk, "Security Reader")
    provisioning(mapping, "ann", via_assignment=through)
    provisioning(mapping, "bea", State.PENDING_PROVISIONING)
    provisioning(mapping, "cal", State.FAILED, error="cal has no account in the directory")
    provisioning(mapping, "dee", State.PENDING_DEPROVISIONING)
    provisioning(mapping, "eve", State.DEPROVISIONED)
    finding(mapping, "uid=gone,dc=example", resolved_at=timezone.now(), resolution="removed")
    finding(mapping, "uid=mallory,dc=example")

    response = client_for(security_reader).get(
        reverse("connectors:mapping_detail", args=[mapping.pk])
    )

    text = response.content.decode()
    for words in (
        "Provisioned",
        "Pending provisioning",
        "Pending deprovisioning",
        "Deprovisioned",
        "Failed",
    ):
        assert f">{words}</span>" in text
    assert "Revoke failed: cal has no account in the directory" in text
    assert f"#{through.pk}" in text and "through the group Helpdesk" in text
    assert [f.account for f in response.context["findings"]] == [
        "uid=mallory,dc=example",
        "uid=gone,dc=example",
    ]
    assert "removed by enforcement" in text
    assert response.context["total"] == 5


def test_the_mapping_page_filters_by_state_in_the_url(client_for, security_reader):
    connector = make_connector()
    mapping = make_mapping(connector)
    provisioning(mapping, "ann")
    failed = provisioning(mapping, "cal", State.FAILED)
    url = reverse("connectors:mapping_detail", args=[mapping.pk])

    response = client_for(security_reader).get(url, {"state": "failed"})

    assert [row.pk for row in response.context["rows"]] == [failed.pk]
    assert response.context["state"] == "failed"
    ignored = client_for(security_reader).get(url, {"state": "nonsense"})
    assert len(ignored.context["rows"]) == 2


def test_the_mapping_page_query_count_does_not_grow_with_rows(
    client_for, security_reader, django_assert_max_num_queries
):
    connector = make_connector()
    mapping = make_mapping(connector)
    group = make_group("Readers")
    through = assign(group, "Security Reader")

    def rows(first: int, last: int) -> None:
        for number in range(first, last):
            state = State.FAILED if number % 2 else State.PROVISIONED
            provisioning(mapping, f"user{number:02d}", state, via_assignment=through)

    client = client_for(security_reader)
    url = reverse("connectors:mapping_detail", args=[mapping.pk])
    rows(0, 5)
    client.get(url)
    with django_assert_max_num_queries(30) as few:
        client.get(url)
    rows(5, 50)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(url)
    assert len(response.context["rows"]) == 50


def test_switching_enforcement_on_is_audited(client_for, pra):
    connector = make_connector()
    mapping = make_mapping(connector)
    url = reverse("connectors:mapping_update", args=[mapping.pk])
    client = client_for(pra)

    assert "Remove members found in the target" in client.get(url).content.decode()
    response = client.post(url, {"enforce": "on"}, follow=True)

    mapping.refresh_from_db()
    assert mapping.enforce is True
    assert "are removed at the next reconciliation" in messages_of(response)[0]
    event = AuditEvent.objects.get(action="pim.connector.mapping_updated")
    assert (event.before["enforce"], event.after["enforce"]) == (False, True)


def test_deleting_a_mapping_says_its_members_stay(client_for, pra):
    connector = make_connector()
    mapping = make_mapping(connector)
    provisioning(mapping, "ann")
    provisioning(mapping, "bea")
    url = reverse("connectors:mapping_delete", args=[mapping.pk])
    client = client_for(pra)

    text = client.get(url).content.decode()
    assert "Members stay in the target." in text and "The 2 members the portal put there" in text

    response = client.post(url, follow=True)

    assert response.redirect_chain[-1][0] == reverse(
        "connectors:connector_detail", args=[connector.pk]
    )
    assert "The members it put there stay there." in messages_of(response)[0]
    assert not Mapping.objects.exists()
    assert AuditEvent.objects.filter(action="pim.connector.mapping_deleted").count() == 1


# --- Findings and failures pages ------------------------------------------------------------


def test_the_findings_page_filters_open_and_resolved(client_for, security_reader):
    connector = make_connector()
    mapping = make_mapping(connector)
    other = make_mapping(connector, "Owner", target="cn=other,dc=example")
    open_one = finding(mapping, "uid=open,dc=example")
    resolved = finding(
        mapping, "uid=gone,dc=example", resolved_at=timezone.now(), resolution="gone"
    )
    elsewhere = finding(other, "uid=elsewhere,dc=example")
    url = reverse("connectors:connector_findings", args=[connector.pk])
    client = client_for(security_reader)

    def shown(**query) -> set[int]:
        return {f.pk for f in client.get(url, query).context["findings"]}

    assert shown() == {open_one.pk, elsewhere.pk}
    assert shown(status="resolved") == {resolved.pk}
    assert shown(status="all", mapping=mapping.pk) == {open_one.pk, resolved.pk}
    assert shown(status="bogus") == {open_one.pk, elsewhere.pk}


def test_the_failures_page_lists_every_failure(client_for, security_reader):
    connector = make_connector()
    mapping = make_mapping(connector)
    rows = [provisioning(mapping, f"user{n}", State.FAILED) for n in range(12)]
    provisioning(mapping, "ann")

    response = client_for(security_reader).get(
        reverse("connectors:connector_failures", args=[connector.pk])
    )

    assert {row.pk for row in response.context["failures"]} == {row.pk for row in rows}
    assert "Revoke" in response.content.decode()


# --- PostgreSQL, for the tests that need a real target ---------------------------------------


def pg_connector(server) -> Connector:
    return Connector.objects.create(
        name="pg-prod",
        display_name="Production database",
        kind="postgresql",
        host="127.0.0.1",
        port=5432,
        username=server.portal,
        secret_ref="",  # trust authentication on the test server
        timeout=3.0,
        enabled=True,
        options={"dbname": server.dbname, "account_template": server.prefix + "{username}"},
    )


# --- The audit log's words for what connectors do ------------------------------------------


def test_every_connector_action_code_has_a_display_text_and_a_category():
    import re
    from pathlib import Path

    from audit.graph import category, is_failure
    from audit.logdisplay import describe

    source = "".join(
        (Path(__file__).parents[2] / "connectors" / name).read_text()
        for name in ("services.py", "provisioning.py", "reconcile.py")
    )
    codes = set(re.findall(r'"(pim\.connector\.[a-z_]+)"', source))

    assert len(codes) >= 14
    for code in codes:
        assert describe(code) != code, code
        assert category(code) == "ProvisioningManagement", code
    assert is_failure("pim.connector.provisioning_failed")
    assert not is_failure("pim.connector.revoked")
