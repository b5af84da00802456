"""Every refused single sign-on: a clear page, a 4xx status, an audit event with the reason."""

from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import time_machine
from django.contrib.auth import get_user_model
from django.test import Client

from audit.models import AuditEvent
from tests.sso.conftest import (
    FOREIGN_KEY_CLIENT_ID,
    OTHER_AUDIENCE_CLIENT_ID,
    SHORT_LIVED_CLIENT_ID,
    back_to_portal,
    configure_sso,
    sso_sign_in,
    start,
)

User = get_user_model()


def refused(response, status: int, words: str, reason: str, *, signs_in=False) -> None:
    """The page says `words`, answers `status`, signs nobody in, and the audit names `reason`."""
    page = response.content.decode()
    assert response.status_code == status, page
    assert "Single sign-on failed" in page
    assert words in page
    assert 'href="/login/"' in page  # the way back to sign-in
    if not signs_in:
        assert "_auth_user_id" not in response.wsgi_request.session
    event = AuditEvent.objects.filter(action="pim.security.sso_failed").latest("id")
    assert event.after["reason"] == reason, event.after


def with_param(url: str, **params) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(params)
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_a_token_for_another_audience_is_refused(client, sso, settings):
    configure_sso(settings, sso, client_id=OTHER_AUDIENCE_CLIENT_ID)
    account = sso.account()

    response = sso_sign_in(client, sso, account["sub"])

    refused(response, 400, "issued for another application", "wrong_audience")
    event = AuditEvent.objects.get(action="pim.security.sso_failed")
    assert "another-app" in event.after["detail"]
    assert not User.objects.filter(oidc_subject=account["sub"]).exists()


def test_an_expired_token_is_refused(client, sso, settings):
    configure_sso(settings, sso, client_id=SHORT_LIVED_CLIENT_ID)  # ID tokens live 1 s
    account = sso.account()
    callback = sso.authorize(start(client), account["sub"])

    # Past the token's second and the minute of leeway for clocks that differ.
    with time_machine.travel(timedelta(minutes=5)):
        response = back_to_portal(client, callback)

    refused(response, 400, "The ID token has expired.", "expired")


def test_a_replayed_state_is_refused(client, sso):
    account = sso.account()
    callback = sso.authorize(start(client), account["sub"])
    assert back_to_portal(client, callback).status_code == 302
    signed_in_events = AuditEvent.objects.filter(action="pim.security.sso_signin").count()

    response = back_to_portal(client, callback)

    # Refused (the user stays signed in from the first answer, but nothing signs in again).
    refused(response, 400, "was already used", "state_replayed", signs_in=True)
    assert AuditEvent.objects.filter(action="pim.security.sso_signin").count() == signed_in_events


def test_an_answer_for_a_sign_in_started_in_another_browser_is_refused(client, sso):
    account = sso.account()
    callback = sso.authorize(start(client), account["sub"])

    response = back_to_portal(Client(), callback)

    refused(response, 400, "does not belong to a sign-in started in this browser", "state_unknown")


def test_a_token_with_another_sign_ins_nonce_is_refused(client, sso):
    account = sso.account()
    authorize = with_param(start(client), nonce="a-nonce-from-another-sign-in")

    response = back_to_portal(client, sso.authorize(authorize, account["sub"]))

    refused(response, 400, "its nonce does not match", "wrong_nonce")


def test_a_token_signed_by_another_key_is_refused(client, sso, settings):
    configure_sso(settings, sso, client_id=FOREIGN_KEY_CLIENT_ID)
    account = sso.account()

    response = sso_sign_in(client, sso, account["sub"])

    refused(response, 400, "signature is not the identity provider", "bad_signature")


def test_a_code_already_used_is_refused_by_the_provider(client, sso):
    account = sso.account()
    first = sso.authorize(start(client), account["sub"])
    back_to_portal(client, first)
    client.logout()
    # A new sign-in in this browser, answered with the old (spent) code.
    second = sso.authorize(start(client), account["sub"])
    spent = with_param(second, code=dict(parse_qsl(urlsplit(first).query))["code"])

    response = back_to_portal(client, spent)

    refused(response, 400, "refused to complete the sign-in", "token_exchange_failed")


def test_the_provider_refusing_access_is_a_clear_page(client, sso):
    account = sso.account()

    response = sso_sign_in(client, sso, account["sub"], action="cancel")

    refused(response, 400, "The identity provider did not sign you in.", "provider_error")
    assert "access_denied" in response.content.decode()
    assert "The user canceled the sign-in." in response.content.decode()


def test_a_callback_without_a_code_is_refused(client, sso):
    authorize = start(client)
    state = dict(parse_qsl(urlsplit(authorize).query))["state"]

    response = client.get(f"/oidc/callback/?state={state}")

    refused(response, 400, "it has no code", "no_code")
