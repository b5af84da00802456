"""The PostgreSQL role-grant connector kind, against the local PostgreSQL server."""

import socket
import threading
import time

import psycopg
import pytest
from psycopg import sql

from connectors.targets import KINDS
from connectors.targets.base import TargetError
from connectors.targets.postgresql import PostgresOptionsForm, PostgresRoles
from tests.connectors.pg_server import direct_members, independent_query, pg_server
from tests.factories import make_user

__all__ = ["pg_server"]  # the fixture, imported for pytest


def target(server, **changes) -> PostgresRoles:
    return PostgresRoles(server.connection(**changes))


def test_kind_is_registered():
    assert KINDS["postgresql"] is PostgresRoles
    assert PostgresRoles.label == "PostgreSQL role grants"
    assert PostgresRoles.object_label == "Database role"


def test_grant_then_revoke_changes_membership_on_the_server(pg_server):
    with target(pg_server) as t:
        t.grant(pg_server.readwrite, pg_server.alice)
        assert pg_server.alice in direct_members(pg_server.readwrite)
        t.revoke(pg_server.readwrite, pg_server.alice)
    assert pg_server.alice not in direct_members(pg_server.readwrite)


def test_grant_twice_and_revoke_twice_change_nothing_the_second_time(pg_server):
    with target(pg_server) as t:
        t.grant(pg_server.readwrite, pg_server.alice)
        t.grant(pg_server.readwrite, pg_server.alice)
        assert direct_members(pg_server.readwrite) == {pg_server.portal, pg_server.alice}
        t.revoke(pg_server.readwrite, pg_server.alice)
        t.revoke(pg_server.readwrite, pg_server.alice)
    assert direct_members(pg_server.readwrite) == {pg_server.portal}


def test_members_lists_direct_members_but_not_the_portals_own_login(pg_server):
    team = pg_server.create_role("team", login=False)
    for member in (pg_server.alice, team):
        pg_server.execute(
            sql.SQL("GRANT {} TO {}").format(
                sql.Identifier(pg_server.readwrite), sql.Identifier(member)
            )
        )
    # Bob is in through the team only: not a direct member.
    pg_server.execute(
        sql.SQL("GRANT {} TO {}").format(sql.Identifier(team), sql.Identifier(pg_server.bob))
    )
    with target(pg_server) as t:
        assert t.members(pg_server.readwrite) == {pg_server.alice, team}
        assert t.members(pg_server.readonly) == set()


def test_members_of_a_missing_role_is_an_error(pg_server):
    with target(pg_server) as t, pytest.raises(TargetError, match=r'no role ".*_nope" on'):
        t.members(pg_server.prefix + "nope")


def test_is_member_reads_the_server(pg_server):
    pg_server.execute(
        sql.SQL("GRANT {} TO {}").format(
            sql.Identifier(pg_server.readonly), sql.Identifier(pg_server.bob)
        )
    )
    with target(pg_server) as t:
        assert t.is_member(pg_server.readonly, pg_server.bob)
        assert not t.is_member(pg_server.readonly, pg_server.alice)
        assert not t.is_member(pg_server.readwrite, pg_server.bob)


def test_account_of_applies_the_template_lower_cased(pg_server, db):
    user = make_user("Alice")
    with target(pg_server) as t:
        assert t.account_of(user) == pg_server.alice


def test_account_of_keeps_the_case_when_told_to(pg_server, db):
    carol = pg_server.create_role("Carol")
    user = make_user("Carol")
    with target(pg_server, options={"lowercase": False}) as t:
        assert t.account_of(user) == carol
        t.grant(pg_server.readwrite, carol)
    assert carol in direct_members(pg_server.readwrite)


def test_account_of_a_user_without_a_login_role_is_none(pg_server, db):
    user = make_user("dave")
    with target(pg_server) as t:
        assert t.account_of(user) is None


def test_username_of_inverts_the_template(pg_server):
    t = target(pg_server, options={"account_template": "db_{username}_x"})
    assert t.username_of("db_alice_x") == "alice"
    assert t.username_of("db__x") is None
    assert t.username_of("alice") is None
    assert t.username_of("db_alice") is None


def test_grant_to_a_missing_login_role_says_so(pg_server):
    with target(pg_server) as t, pytest.raises(TargetError, match=r'no login role ".*_dave" on'):
        t.grant(pg_server.readwrite, pg_server.prefix + "dave")


def test_check_object_of_a_missing_role_says_so(pg_server):
    missing = pg_server.prefix + "prod_admin"
    with target(pg_server) as t, pytest.raises(TargetError) as refused:
        t.check_object(missing)
    assert str(refused.value) == (
        f'no role "{missing}" on postgresql://127.0.0.1:5432/{pg_server.dbname}'
    )


def test_check_object_hints_at_the_lower_case_name(pg_server):
    with target(pg_server) as t, pytest.raises(TargetError, match="case-sensitive"):
        t.check_object(pg_server.readwrite.upper())


def test_check_object_of_a_role_the_login_may_not_grant_says_how_to_fix_it(pg_server):
    with target(pg_server) as t:
        t.check_object(pg_server.readwrite)  # it has ADMIN OPTION there
        with pytest.raises(TargetError) as refused:
            t.check_object(pg_server.readonly)
    assert str(refused.value).startswith(
        f"the portal's login {pg_server.portal} may not grant {pg_server.readonly} on "
    )
    assert str(refused.value).endswith("give it ADMIN OPTION or CREATEROLE")


def test_check_object_accepts_a_login_with_createrole(pg_server):
    pg_server.execute(sql.SQL("ALTER ROLE {} CREATEROLE").format(sql.Identifier(pg_server.portal)))
    with target(pg_server) as t:
        if t._conn.info.server_version >= 160000:
            pytest.skip("from PostgreSQL 16, CREATEROLE alone does not grant other roles")
        t.check_object(pg_server.readonly)


def test_grant_of_a_role_the_login_may_not_grant_is_refused(pg_server):
    with target(pg_server) as t, pytest.raises(TargetError) as refused:
        t.grant(pg_server.readonly, pg_server.alice)
    assert f"the portal's login {pg_server.portal} may not grant {pg_server.readonly}" in str(
        refused.value
    )
    assert direct_members(pg_server.readonly) == set()


def test_revoke_of_a_role_the_login_may_not_grant_is_refused(pg_server):
    pg_server.execute(
        sql.SQL("GRANT {} TO {}").format(
            sql.Identifier(pg_server.readonly), sql.Identifier(pg_server.alice)
        )
    )
    with target(pg_server) as t, pytest.raises(TargetError, match="may not revoke"):
        t.revoke(pg_server.readonly, pg_server.alice)
    assert direct_members(pg_server.readonly) == {pg_server.alice}


def test_a_login_role_that_does_not_exist_is_refused_clearly(pg_server):
    nobody = pg_server.prefix + "nobody"
    with pytest.raises(TargetError) as refused:
        target(pg_server, username=nobody).open()
    assert str(refused.value) == (
        f"the server refused the portal's login {nobody} on "
        f'postgresql://127.0.0.1:5432/{pg_server.dbname}: role "{nobody}" does not exist: '
        "create that login role or correct the connector's username"
    )


def test_a_missing_database_is_named(pg_server):
    with pytest.raises(TargetError, match=r'database "nodb" does not exist on .*database option'):
        target(pg_server, options={"dbname": "nodb"}).open()


def test_an_unreachable_port_fails_at_once(pg_server):
    with socket.socket() as closed:  # bound, not listening: the kernel refuses connections
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(TargetError) as refused:
            target(pg_server, port=port, timeout=5.0).open()
        elapsed = time.monotonic() - started
    assert str(refused.value).startswith(
        f"could not reach postgresql://127.0.0.1:{port}/{pg_server.dbname}: Connection refused"
    )
    assert elapsed < 1.0


def test_a_listener_that_never_answers_fails_within_the_timeout(pg_server):
    with socket.socket() as silent:  # the kernel accepts; nobody ever reads or writes
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(TargetError) as refused:
            target(pg_server, port=port, timeout=2.0).open()
        elapsed = time.monotonic() - started
    assert str(refused.value) == (
        f"could not reach postgresql://127.0.0.1:{port}/{pg_server.dbname} within 2 s"
    )
    assert 1.5 < elapsed < 2.0 + 1.5


def _hold_uncommitted_grant(role: str, member: str) -> psycopg.Connection:
    """Another session that granted and has not committed yet."""
    other = psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    other.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(member)))
    return other


def _wait_until_blocked(login: str, deadline: float) -> None:
    """Until the portal's session waits for the other one's lock (pg_stat_activity says so)."""
    while time.monotonic() < deadline:
        waiting = independent_query(
            "SELECT count(*) FROM pg_stat_activity"
            f" WHERE usename = '{login}' AND wait_event_type = 'Lock'"
        )
        if waiting != ["0"]:
            return
        time.sleep(0.02)
    raise AssertionError("the portal's GRANT never waited for the other session")


def test_a_concurrent_duplicate_grant_is_not_an_error(pg_server):
    other = _hold_uncommitted_grant(pg_server.readwrite, pg_server.alice)
    errors = []
    try:
        with target(pg_server, timeout=10.0) as t:

            def grant():
                try:
                    t.grant(pg_server.readwrite, pg_server.alice)
                except Exception as exc:
                    errors.append(exc)

            worker = threading.Thread(target=grant)
            worker.start()
            _wait_until_blocked(pg_server.portal, time.monotonic() + 5)
            other.commit()
            worker.join(timeout=10)
            assert not worker.is_alive()
    finally:
        other.close()
    assert errors == []
    assert pg_server.alice in direct_members(pg_server.readwrite)


def test_a_grant_waiting_on_a_lock_gives_up_within_the_timeout(pg_server):
    other = _hold_uncommitted_grant(pg_server.readwrite, pg_server.alice)
    try:
        with target(pg_server, timeout=1.0) as t:
            started = time.monotonic()
            with pytest.raises(
                TargetError, match="after 1 s waiting for a lock that another session holds"
            ):
                t.grant(pg_server.readwrite, pg_server.alice)
            assert time.monotonic() - started < 1.0 + 1.0
    finally:
        other.rollback()
        other.close()
    assert pg_server.alice not in direct_members(pg_server.readwrite)


def test_the_password_is_never_in_an_error(pg_server):
    password = "Tr0ub4dor-pimt-secret"
    nobody = pg_server.prefix + "nobody"
    messages = []
    for changes in ({"username": nobody}, {"options": {"dbname": "nodb"}}, {"port": 1}):
        with pytest.raises(TargetError) as refused:
            target(pg_server, secret=password, **changes).open()
        messages += [str(refused.value), repr(refused.value), repr(refused.value.__context__)]
    with target(pg_server, secret=password) as t, pytest.raises(TargetError) as refused:
        t.grant(pg_server.readonly, pg_server.alice)
    messages.append(str(refused.value))
    assert all(password not in message for message in messages)
    assert any(nobody in message for message in messages)


def test_the_password_is_scrubbed_if_the_server_repeats_it(pg_server):
    # A login named like its password is silly, but the server then says it back.
    password = pg_server.prefix + "hunter2"
    with pytest.raises(TargetError) as refused:
        target(pg_server, username=password, secret=password).open()
    assert password not in str(refused.value)
    assert "********" in str(refused.value)


def test_the_session_has_server_side_timeouts(pg_server):
    with target(pg_server, timeout=2.5) as t:
        settings = t._conn.execute(
            "SELECT current_setting('statement_timeout'), current_setting('lock_timeout'),"
            " current_setting('application_name')"
        ).fetchone()
    assert settings == ("2500ms", "2250ms", "pim-portal")


def test_close_after_the_server_dropped_the_session_does_not_raise(pg_server):
    t = target(pg_server)
    t.open()
    independent_query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        f" WHERE usename = '{pg_server.portal}'"
    )
    t.close()
    t.close()


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"sslmode": "allow"}, "sslmode", "Select a valid choice"),
        ({"account_template": "pg_user"}, "account_template", "must contain {username} once"),
        ({"account_template": "{user}"}, "account_template", "must contain {username} once"),
        (
            {"account_template": "{username}_{username}"},
            "account_template",
            "must contain {username} once",
        ),
        ({"account_template": "{username!r}"}, "account_template", "without a format"),
        ({"account_template": "{username"}, "account_template", "Unbalanced braces"),
        ({"dbname": ""}, "dbname", "This field is required"),
    ],
)
def test_options_form_refuses_bad_options(data, field, message):
    form = PostgresOptionsForm(data={**_good_options(), **data})
    assert not form.is_valid()
    assert message in " ".join(form.errors[field])


def _good_options() -> dict:
    return {"dbname": "postgres", "sslmode": "prefer", "account_template": "{username}"}


def test_options_form_keeps_good_options():
    form = PostgresOptionsForm(
        data={**_good_options(), "account_template": "db_{username}", "lowercase": "on"}
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data == {
        "dbname": "postgres",
        "sslmode": "prefer",
        "account_template": "db_{username}",
        "lowercase": True,
    }


def test_options_form_defaults():
    form = PostgresOptionsForm()
    assert form["dbname"].initial == "postgres"
    assert form["sslmode"].initial == "prefer"
    assert form["account_template"].initial == "{username}"
    assert form["lowercase"].initial is True
