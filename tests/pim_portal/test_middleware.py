"""Middleware: sign-in required, absolute session timeout, the viewer's time zone, request ids."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.urls import reverse

from audit import log as audit_log
from audit.models import AuditEvent
from tests.factories import assign, make_user

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _is_login_redirect(response) -> bool:
    return response.status_code == 302 and response.url.startswith(reverse("login"))


# Sign-in required --------------------------------------------------------------------------


def test_anonymous_request_to_a_page_redirects_to_login(db):
    response = Client().get(reverse("dashboard"))
    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={reverse('dashboard')}"


def test_anonymous_request_to_an_app_page_redirects_to_login(db):
    response = Client().get(reverse("assignments:my_roles"))
    assert _is_login_redirect(response)


def test_login_page_is_open_to_anonymous_users(db):
    assert Client().get(reverse("login")).status_code == 200


def test_health_check_is_open_to_anonymous_users(db):
    response = Client().get(reverse("healthz"))
    assert response.status_code == 200
    assert response.content == b"ok"


def test_signed_in_user_sees_the_dashboard(outsider):
    assert _signed_in(outsider).get(reverse("dashboard")).status_code == 200


# Absolute session timeout ------------------------------------------------------------------


def test_session_ends_after_the_absolute_timeout_even_when_active(outsider):
    timeout = timedelta(seconds=settings.SESSION_ABSOLUTE_TIMEOUT)
    step = timedelta(minutes=20)  # well inside the idle timeout
    assert step < timedelta(seconds=settings.SESSION_COOKIE_AGE)
    with time_machine.travel(T0, tick=False) as clock:
        client = _signed_in(outsider)
        assert client.get(reverse("dashboard")).status_code == 200
        elapsed = timedelta(0)
        while elapsed + step <= timeout:
            clock.shift(step)
            elapsed += step
            assert client.get(reverse("dashboard")).status_code == 200, elapsed
        clock.move_to(T0 + timeout + timedelta(seconds=1))
        response = client.get(reverse("dashboard"))
    assert _is_login_redirect(response)


def test_session_is_signed_out_after_the_absolute_timeout(outsider):
    with time_machine.travel(T0, tick=False) as clock:
        client = _signed_in(outsider)
        client.get(reverse("dashboard"))
        clock.shift(timedelta(seconds=settings.SESSION_ABSOLUTE_TIMEOUT + 1))
        client.get(reverse("dashboard"))  # the request that finds the session too old
        assert "_auth_user_id" not in client.session
        assert _is_login_redirect(client.get(reverse("dashboard")))


def test_session_survives_until_the_absolute_timeout(outsider, settings):
    settings.SESSION_COOKIE_AGE = settings.SESSION_ABSOLUTE_TIMEOUT * 2
    with time_machine.travel(T0, tick=False) as clock:
        client = _signed_in(outsider)
        client.get(reverse("dashboard"))
        clock.shift(timedelta(seconds=settings.SESSION_ABSOLUTE_TIMEOUT))
        assert client.get(reverse("dashboard")).status_code == 200


def test_idle_session_ends_after_the_idle_timeout(outsider):
    with time_machine.travel(T0, tick=False) as clock:
        client = _signed_in(outsider)
        assert client.get(reverse("dashboard")).status_code == 200
        clock.shift(timedelta(seconds=settings.SESSION_COOKIE_AGE + 1))
        assert _is_login_redirect(client.get(reverse("dashboard")))


def test_activity_renews_the_idle_timeout_at_most_once_a_minute(outsider):
    from django.contrib.sessions.models import Session

    def expiry(client):
        return Session.objects.get(session_key=client.session.session_key).expire_date

    idle = timedelta(seconds=settings.SESSION_COOKIE_AGE)
    with time_machine.travel(T0, tick=False) as clock:
        client = _signed_in(outsider)
        client.get(reverse("dashboard"))
        assert expiry(client) == T0 + idle
        clock.shift(timedelta(seconds=30))
        client.get(reverse("dashboard"))  # within the minute: no write
        assert expiry(client) == T0 + idle
        clock.shift(timedelta(seconds=31))
        client.get(reverse("dashboard"))  # a minute on: renewed from now
        assert expiry(client) == T0 + timedelta(seconds=61) + idle
        # Active every 20 minutes for an hour: never idle for the timeout, never signed out.
        for _ in range(3):
            clock.shift(timedelta(minutes=20))
            assert client.get(reverse("dashboard")).status_code == 200


# Time zone ---------------------------------------------------------------------------------


def test_users_time_zone_is_active_on_a_page(db):
    viewer = make_user("vera", time_zone="Europe/Paris")
    with time_machine.travel(T0, tick=False):
        assign(viewer, "Security Reader", permanent=True)
        audit_log.record(action="pim.test.event", message="shown on the dashboard")
        response = _signed_in(viewer).get(reverse("dashboard"))
    assert "2026-01-15 13:00 CET" in response.content.decode()


def test_utc_user_sees_utc(db):
    viewer = make_user("ulf", time_zone="UTC")
    with time_machine.travel(T0, tick=False):
        assign(viewer, "Security Reader", permanent=True)
        audit_log.record(action="pim.test.event", message="shown on the dashboard")
        response = _signed_in(viewer).get(reverse("dashboard"))
    assert "2026-01-15 12:00 UTC" in response.content.decode()


def test_time_zone_is_not_left_active_after_the_request(db):
    from django.utils import timezone

    viewer = make_user("vera", time_zone="Asia/Tokyo")
    _signed_in(viewer).get(reverse("dashboard"))
    assert timezone.get_current_timezone_name() == settings.TIME_ZONE


# Request context ---------------------------------------------------------------------------


def test_response_carries_a_request_id(outsider):
    response = _signed_in(outsider).get(reverse("dashboard"))
    assert len(response["X-Request-ID"]) == 36


def test_audit_events_written_in_a_request_carry_its_ip_and_id(outsider):
    from binascii import unhexlify

    from django_otp.oath import totp

    client = _signed_in(outsider)
    key = client.get(reverse("mfa_enroll")).context["key"]  # the secret waits in the session
    code = f"{totp(unhexlify(key)):06d}"
    response = client.post(
        reverse("mfa_enroll"), {"name": "Phone", "code": code}, REMOTE_ADDR="198.51.100.4"
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="pim.security.mfa_enrolled")
    assert event.ip == "198.51.100.4"
    assert event.http_request_id == response["X-Request-ID"]


def test_audit_records_the_address_our_proxy_saw_when_behind_it(outsider, settings):
    from audit.models import AuditEvent
    from tests.conftest import signed_in

    settings.BEHIND_TLS_PROXY = True
    client = signed_in(outsider)

    client.get("/roles/", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7")

    event = AuditEvent.objects.filter(action="pim.security.forbidden").latest("id")
    assert event.ip == "198.51.100.7"


def test_audit_ignores_forwarded_for_when_not_behind_a_proxy(outsider, settings):
    from audit.models import AuditEvent
    from tests.conftest import signed_in

    settings.BEHIND_TLS_PROXY = False
    client = signed_in(outsider)

    client.get("/roles/", HTTP_X_FORWARDED_FOR="6.6.6.6")

    event = AuditEvent.objects.filter(action="pim.security.forbidden").latest("id")
    assert event.ip == "127.0.0.1"
