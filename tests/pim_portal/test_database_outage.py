"""A lost database: kept connections are health-checked, and an outage answers 503 'try again'
(not 'your session was deleted', not a bare 500)."""

import pytest
from django.db import (
    IntegrityError,
    OperationalError,
    close_old_connections,
    connection,
    connections,
)
from django.test import Client
from django.urls import reverse

from pim_portal.middleware import is_database_outage

OUTAGE = "The database is not reachable; try again in a moment."

pytestmark = pytest.mark.django_db


def _signed_in(user) -> Client:
    client = Client(raise_request_exception=False)  # answer as in production, do not re-raise
    client.force_login(user)
    return client


def refuse(statement: str = "", error=OperationalError):
    """An execute wrapper: statements containing `statement` fail as when the server is gone."""

    def wrapper(execute, sql, params, many, context):
        if statement in sql:
            raise error("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    return wrapper


# The outage's page ------------------------------------------------------------------------


def test_outage_while_saving_the_session_answers_503_not_session_deleted(outsider):
    client = _signed_in(outsider)
    with connection.execute_wrapper(refuse('UPDATE "django_session"')):
        response = client.get(reverse("dashboard"))
    assert response.status_code == 503  # Django's own middleware answered 400 "session deleted"
    assert OUTAGE in response.content.decode()


def test_outage_while_saving_the_session_keeps_the_session(outsider):
    client = _signed_in(outsider)
    with connection.execute_wrapper(refuse('UPDATE "django_session"')):
        client.get(reverse("dashboard"))
    assert client.get(reverse("dashboard")).status_code == 200


def test_outage_for_every_query_answers_503_with_a_page_that_needs_no_database(outsider):
    client = _signed_in(outsider)
    with connection.execute_wrapper(refuse()):
        response = client.get(reverse("assignments:my_roles"))
    assert response.status_code == 503
    assert OUTAGE in response.content.decode()
    assert response["Retry-After"] == "10"


def test_outage_page_has_the_portals_layout(outsider):
    client = _signed_in(outsider)
    with connection.execute_wrapper(refuse()):
        response = client.get(reverse("dashboard"))
    assert "vendor/bootstrap/bootstrap.min.css" in response.content.decode()


def test_other_database_errors_are_still_server_errors(outsider):
    client = _signed_in(outsider)
    with connection.execute_wrapper(refuse(error=IntegrityError)):
        response = client.get(reverse("dashboard"))
    assert response.status_code == 500


# Recognising an outage ----------------------------------------------------------------------


def _raised_while_handling(cause: Exception, error: Exception) -> Exception:
    try:
        try:
            raise cause
        except Exception:
            raise error  # noqa: B904  (the implicit context is what is being tested)
    except Exception as raised:
        return raised


def test_an_operational_error_is_an_outage():
    assert is_database_outage(OperationalError("connection refused"))


def test_an_error_raised_while_handling_an_outage_is_an_outage():
    assert is_database_outage(_raised_while_handling(OperationalError("gone"), ValueError("x")))


def test_an_integrity_error_is_not_an_outage():
    assert not is_database_outage(IntegrityError("duplicate key"))


def test_no_exception_is_not_an_outage():
    assert not is_database_outage(None)


# Connection health checks -------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_request_after_the_servers_restart_gets_a_new_connection(outsider):
    """A kept connection the server dropped (as a restart does) is replaced, not failed on."""
    client = _signed_in(outsider)
    kept = connection.settings_dict["CONN_MAX_AGE"]
    connection.settings_dict["CONN_MAX_AGE"] = 60
    try:
        connection.close()
        connection.ensure_connection()  # a connection kept for 60 s, as in production
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        killer = connections.create_connection("default")
        try:
            with killer.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        finally:
            killer.close()

        # What a server does as each request starts (the test client skips it): old or broken
        # connections are closed, and the kept one is due a health check at its first use.
        close_old_connections()
        response = client.get(reverse("dashboard"))
    finally:
        connection.settings_dict["CONN_MAX_AGE"] = kept
        connection.close()
    assert response.status_code == 200
