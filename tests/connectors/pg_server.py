"""A real PostgreSQL server for the connector tests: throw-away roles and a database per test.

The server is the local one (127.0.0.1:5432, user postgres, trust), whatever Django's own
database is; without it the tests skip, saying so. Every name starts with a prefix of its own
(`pimt_<random>_`) so that tests running at the same time never meet, and everything with the
prefix is dropped afterwards, also when the test failed. Checks read the server with psql (or,
without psql, a connection of their own), never with the code under test.
"""

import secrets
import shutil
import subprocess
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql

from connectors.targets.base import Connection

HOST, PORT, SUPERUSER = "127.0.0.1", 5432, "postgres"


def _superuser(dbname: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(
        host=HOST, port=PORT, user=SUPERUSER, dbname=dbname, connect_timeout=3, autocommit=True
    )


def independent_query(query: str) -> list[str]:
    """Rows of one column, read as the superuser outside the code under test."""
    if shutil.which("psql"):
        done = subprocess.run(
            ["psql", "-h", HOST, "-p", str(PORT), "-U", SUPERUSER, "-d", "postgres", "-XAt"]
            + ["-v", "ON_ERROR_STOP=1", "-c", query],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return done.stdout.splitlines()
    with _superuser() as conn:
        return [str(row[0]) for row in conn.execute(query).fetchall()]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def direct_members(role: str) -> set[str]:
    """The direct members of a role, as the server says."""
    return set(
        independent_query(
            "SELECT u.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
            f" JOIN pg_roles u ON u.oid = m.member WHERE r.rolname = {_literal(role)}"
        )
    )


@dataclass
class PgServer:
    """The names one test may use; `portal` is the connector's login: no superuser, no
    CREATEROLE, ADMIN OPTION on `readwrite` only (so it may not grant `readonly`)."""

    prefix: str
    dbname: str
    readwrite: str
    readonly: str
    alice: str
    bob: str
    portal: str
    admin: psycopg.Connection

    def connection(self, **changes) -> Connection:
        options = {"dbname": self.dbname, "account_template": self.prefix + "{username}"}
        options.update(changes.pop("options", {}))
        fields = {
            "host": HOST,
            "port": PORT,
            "username": self.portal,
            "secret": "",
            "options": options,
            "timeout": 3.0,
        }
        fields.update(changes)
        return Connection(**fields)

    def execute(self, statement: str | sql.Composable, *params) -> None:
        self.admin.execute(statement, params or None)

    def create_role(self, suffix: str, *, login: bool = True) -> str:
        name = self.prefix + suffix
        self.execute(
            sql.SQL("CREATE ROLE {} " + ("LOGIN" if login else "NOLOGIN")).format(
                sql.Identifier(name)
            )
        )
        return name


def _server_or_skip() -> psycopg.Connection:
    try:
        return _superuser()
    except psycopg.Error as exc:
        pytest.skip(
            f"the PostgreSQL connector tests need a PostgreSQL server at {HOST}:{PORT} "
            f"(user {SUPERUSER}, trust): {exc}"
        )


def _drop_everything(admin: psycopg.Connection, prefix: str, dbname: str) -> None:
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
    pattern = prefix.replace("_", r"\_") + "%"
    names = [
        name
        for (name,) in admin.execute(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE %s ORDER BY rolname", (pattern,)
        )
    ]
    # The connector's login last: on PostgreSQL 16 it is the grantor of what it granted.
    names.sort(key=lambda name: name.endswith("_portal"))
    for name in names:
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture
def pg_server():
    """Throw-away roles and a database on the local server, dropped afterwards."""
    admin = _server_or_skip()
    prefix = f"pimt_{secrets.token_hex(4)}_"
    server = PgServer(
        prefix=prefix,
        dbname=prefix + "db",
        readwrite=prefix + "prod_readwrite",
        readonly=prefix + "prod_readonly",
        alice=prefix + "alice",
        bob=prefix + "bob",
        portal=prefix + "portal",
        admin=admin,
    )
    try:
        server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(server.dbname)))
        for name in (server.readwrite, server.readonly):
            server.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
        for name in (server.alice, server.bob):
            server.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
        server.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEROLE").format(
                sql.Identifier(server.portal)
            )
        )
        server.execute(
            sql.SQL("GRANT {} TO {} WITH ADMIN OPTION").format(
                sql.Identifier(server.readwrite), sql.Identifier(server.portal)
            )
        )
        yield server
    finally:
        try:
            _drop_everything(admin, prefix, server.dbname)
        finally:
            admin.close()
