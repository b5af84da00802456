"""Fixtures of the connector tests."""

import itertools
import re

import pytest

from connectors.models import Connector, Mapping
from tests.connectors import ldap_server
from tests.connectors.pg_server import pg_server  # noqa: F401  (a fixture for every module)
from tests.factories import role

# --- LDAP: a real OpenLDAP slapd (tests/connectors/ldap_server.py) -------------------------


@pytest.fixture(scope="session")
def slapd(tmp_path_factory):
    """One slapd for the session, on free loopback ports; skipped where OpenLDAP is missing."""
    reason = ldap_server.missing()
    if reason:
        pytest.skip(reason)
    server = ldap_server.Slapd(tmp_path_factory.mktemp("slapd"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


_group_numbers = itertools.count(1)


@pytest.fixture
def ldap_group(slapd, request):
    """Make throw-away groups: `ldap_group(*member_dns, object_class="groupOfNames")` adds one
    with the real `ldapmodify` and returns its DN (a group with no members gets the
    placeholder: both group classes must have one); they are deleted after the test."""
    made = []

    def make(*members: str, object_class: str = "groupOfNames") -> str:
        name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40]
        dn = f"cn={name}-{next(_group_numbers)},{ldap_server.GROUPS}"
        attribute = "uniqueMember" if object_class == "groupOfUniqueNames" else "member"
        members = members or [ldap_server.PLACEHOLDER]
        lines = [f"dn: {dn}", f"objectClass: {object_class}", f"cn: {dn[3:].split(',')[0]}"]
        lines += [f"{attribute}: {member}" for member in members]
        slapd.add("\n".join(lines) + "\n")
        made.append(dn)
        return dn

    yield make
    for dn in made:
        slapd.delete(dn)


@pytest.fixture
def ldap_members(slapd):
    """A group's members as the real `ldapsearch` reads them: `ldap_members(dn)`."""

    def read(dn: str, attribute: str = "member") -> set[str]:
        return set(slapd.values(dn, attribute))

    return read


# --- end of LDAP --------------------------------------------------------------------------


# --- A connector to the local PostgreSQL server (tests/connectors/pg_server.py) ------------


@pytest.fixture
def connector(pg_server):  # noqa: F811  (the fixture imported above)
    return Connector.objects.create(
        name="pg-prod",
        display_name="PostgreSQL prod",
        kind="postgresql",
        host="127.0.0.1",
        port=5432,
        username=pg_server.portal,
        options={
            "dbname": pg_server.dbname,
            "sslmode": "disable",
            "account_template": pg_server.prefix + "{username}",
            "lowercase": True,
        },
        timeout=3,
    )


@pytest.fixture
def mapping(connector, tree, pg_server):  # noqa: F811
    return Mapping.objects.create(
        connector=connector,
        role=role("Contributor"),
        scope=tree["rg"],
        target=pg_server.readwrite,
    )
