"""Single sign-on against a real OpenID provider: accounts found, made, kept apart."""

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from audit.models import AuditEvent
from pim_portal.models import Source
from pim_portal.sso.config import check_settings
from tests.factories import make_user
from tests.sso.conftest import sso_sign_in, start

User = get_user_model()


def signed_in_user(client):
    return client.session.get("_auth_user_id")


def test_first_sign_in_creates_the_user_from_the_claims_and_signs_them_in(client, sso):
    account = sso.account(name="Alice Archer", email="alice.archer@corp.example")

    response = sso_sign_in(client, sso, account["preferred_username"], next_url="/my/roles/")

    assert response.status_code == 302
    assert response["Location"] == "/my/roles/"
    user = User.objects.get(oidc_subject=account["sub"])
    assert signed_in_user(client) == str(user.pk)
    assert (user.username, user.email, user.display_name) == (
        account["preferred_username"],
        "alice.archer@corp.example",
        "Alice Archer",
    )
    assert user.source == Source.OIDC
    assert user.oidc_issuer == sso.issuer
    assert not user.has_usable_password()
    event = AuditEvent.objects.get(action="pim.security.sso_signin")
    assert event.after["subject"] == account["sub"]
    assert event.after["created"] is True
    assert AuditEvent.objects.filter(action="pim.user.created", target_id=str(user.pk)).exists()


def test_the_portal_sends_pkce_a_nonce_and_its_scopes(client, sso):
    authorize = start(client)

    assert "code_challenge_method=S256" in authorize
    assert "code_challenge=" in authorize
    assert "nonce=" in authorize
    assert "scope=openid+email+profile+groups" in authorize


def test_second_sign_in_matches_by_subject_even_after_a_username_change(client, sso):
    account = sso.account()
    sso_sign_in(client, sso, account["preferred_username"])
    user = User.objects.get(oidc_subject=account["sub"])
    sso.change(account["sub"], preferred_username="renamed-at-provider", name="New Name")

    response = sso_sign_in(Client(), sso, "renamed-at-provider")

    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.username, user.display_name) == ("renamed-at-provider", "New Name")
    assert User.objects.filter(oidc_subject=account["sub"]).count() == 1
    event = AuditEvent.objects.filter(action="pim.security.sso_signin").latest("id")
    assert event.after["created"] is False
    assert event.after["changed"]["username"] == [account["preferred_username"], user.username]


def test_a_username_taken_by_another_sso_account_is_made_unique(client, sso):
    make_user("carol", source=Source.OIDC, oidc_issuer=sso.issuer, oidc_subject="someone-else")
    account = sso.account(preferred_username="carol", email="carol.two@corp.example")

    response = sso_sign_in(client, sso, account["sub"])

    assert response.status_code == 302
    assert User.objects.get(oidc_subject=account["sub"]).username == "carol-2"


def test_a_local_account_with_the_same_username_is_not_taken_over(client, sso):
    local = make_user("dave", email="dave@example.com")
    account = sso.account(preferred_username="dave", email="dave.sso@corp.example")

    response = sso_sign_in(client, sso, account["sub"])

    assert response.status_code == 403
    assert "not linked to your organization" in response.content.decode()
    assert signed_in_user(client) is None
    local.refresh_from_db()
    assert local.oidc_subject == "" and local.email == "dave@example.com"
    assert not User.objects.filter(oidc_subject=account["sub"]).exists()
    event = AuditEvent.objects.get(action="pim.security.sso_failed")
    assert event.after["reason"] == "account_conflict"
    assert event.target_id == str(local.pk)


def test_a_local_account_with_the_same_email_is_not_taken_over(client, sso):
    local = make_user("erika", email="erika@corp.example")
    account = sso.account(preferred_username="erika.m", email="Erika@corp.example")

    response = sso_sign_in(client, sso, account["sub"])

    assert response.status_code == 403
    event = AuditEvent.objects.get(action="pim.security.sso_failed")
    assert event.after["reason"] == "account_conflict"
    assert "same e-mail" in event.after["detail"]
    assert event.target_id == str(local.pk)


def test_a_local_account_linked_to_the_subject_signs_in(client, sso):
    account = sso.account(preferred_username="frank")
    local = make_user("frank", oidc_issuer=sso.issuer, oidc_subject=account["sub"])

    response = sso_sign_in(client, sso, account["sub"])

    assert response.status_code == 302
    assert signed_in_user(client) == str(local.pk)


def test_a_scim_account_is_linked_by_username_at_its_first_sign_in(client, sso):
    provisioned = make_user("grace", source=Source.SCIM, external_id="okta-17")
    account = sso.account(preferred_username="grace")

    response = sso_sign_in(client, sso, account["sub"])

    assert response.status_code == 302
    provisioned.refresh_from_db()
    assert (provisioned.oidc_issuer, provisioned.oidc_subject) == (sso.issuer, account["sub"])
    assert signed_in_user(client) == str(provisioned.pk)
    event = AuditEvent.objects.get(action="pim.security.sso_signin")
    assert event.after["linked"] == "scim account"


def test_no_account_is_made_when_creating_users_is_off(client, sso, settings):
    settings.OIDC_CREATE_USERS = False
    account = sso.account()

    response = sso_sign_in(client, sso, account["sub"])

    assert response.status_code == 403
    assert "accounts are not created at single sign-on" in response.content.decode()
    assert not User.objects.filter(oidc_subject=account["sub"]).exists()
    assert AuditEvent.objects.get(action="pim.security.sso_failed").after["reason"] == "no_account"


def test_an_inactive_user_cannot_sign_in(client, sso):
    account = sso.account(name="Renamed Meanwhile")
    user = make_user(
        "henry",
        source=Source.OIDC,
        oidc_issuer=sso.issuer,
        oidc_subject=account["sub"],
        is_active=False,
    )

    response = sso_sign_in(client, sso, account["sub"])

    assert response.status_code == 403
    assert "Your account here is deactivated." in response.content.decode()
    assert signed_in_user(client) is None
    user.refresh_from_db()
    assert user.display_name == "Henry"  # nothing taken from the claims
    event = AuditEvent.objects.get(action="pim.security.sso_failed")
    assert event.after["reason"] == "user_inactive"
    assert event.target_id == str(user.pk)


def test_a_deactivated_users_session_ends_at_the_next_request(client, sso):
    account = sso.account()
    sso_sign_in(client, sso, account["sub"])
    assert client.get("/").status_code == 200

    User.objects.filter(oidc_subject=account["sub"]).update(is_active=False)

    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_sign_in_page_offers_the_provider_by_name(client, sso):
    page = client.get("/login/?next=/my/roles/").content.decode()

    assert "Sign in with Contoso" in page
    assert 'href="/oidc/authenticate/?next=/my/roles/"' in page


@pytest.mark.django_db
def test_single_sign_on_is_off_without_an_issuer(client, settings):
    settings.OIDC_ISSUER = ""

    assert "Sign in with" not in client.get("/login/").content.decode()
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404


@pytest.mark.django_db
def test_a_provider_that_cannot_be_reached_is_a_clear_page(client, settings, unused_port):
    settings.OIDC_ISSUER = f"http://127.0.0.1:{unused_port}"
    settings.OIDC_CLIENT_ID, settings.OIDC_CLIENT_SECRET = "pim-portal", "secret"

    response = client.get("/oidc/authenticate/")

    assert response.status_code == 502
    assert "configuration could not be read" in response.content.decode()
    event = AuditEvent.objects.get(action="pim.security.sso_failed")
    assert event.after["reason"] == "discovery_failed"


@pytest.mark.parametrize(
    ("issuer", "problem"),
    [
        ("http://idp.example.com", "must be reached over https"),
        ("ftp://idp.example.com", "is not an http"),
    ],
)
def test_an_issuer_that_is_not_https_fails_loudly(issuer, problem):
    with pytest.raises(ImproperlyConfigured, match=problem):
        check_settings(
            issuer=issuer,
            client_id="c",
            client_secret="s",
            scopes=["openid"],
            sign_algo="RS256",
            leeway=60,
        )


def test_a_symmetric_signing_algorithm_is_refused():
    with pytest.raises(ImproperlyConfigured, match="OIDC_SIGN_ALGO='HS256'"):
        check_settings(
            issuer="https://idp.example.com",
            client_id="c",
            client_secret="s",
            scopes=["openid"],
            sign_algo="HS256",
            leeway=60,
        )
