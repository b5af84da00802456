"""The Provisioning page: Global Administrators only; a token shown once; revocation."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from pim_portal.actor import Actor
from pim_portal.models import AccessToken
from pim_portal.scim import tokens
from tests.factories import assign, make_user

NEXT_MONTH = (timezone.localdate() + timedelta(days=30)).isoformat()


@pytest.fixture
def user_admin(db):
    user = make_user("uma", display_name="Uma Users")
    assign(user, "User Administrator", permanent=True)
    return user


PAGES = [
    ("get", "/provisioning/", {}),
    ("post", "/provisioning/tokens/", {"name": "okta", "expires_on": NEXT_MONTH}),
    ("post", "/provisioning/tokens/1/revoke/", {}),
]
REFUSED_RULE = {
    "/provisioning/": "view the Provisioning page",
    "/provisioning/tokens/": "create a SCIM token",
    "/provisioning/tokens/1/revoke/": "revoke SCIM token 1",
}


@pytest.mark.parametrize("persona", ["pra", "user_admin", "outsider", "security_reader"])
@pytest.mark.parametrize("method, url, data", PAGES)
def test_everyone_but_a_global_administrator_is_refused(
    db, request, client_for, persona, method, url, data
):
    user = request.getfixturevalue(persona)
    response = getattr(client_for(user), method)(url, data)
    assert response.status_code == 403
    event = AuditEvent.objects.filter(action="pim.security.forbidden").latest("pk")
    assert event.message == REFUSED_RULE[url] and event.actor_id == user.pk
    assert not AccessToken.objects.exists()


@pytest.mark.parametrize("method, url, data", PAGES)
def test_anonymous_is_sent_to_sign_in(db, method, url, data):
    response = getattr(Client(), method)(url, data)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_global_administrator_sees_the_page(global_admin, client_for):
    response = client_for(global_admin).get("/provisioning/")
    assert response.status_code == 200
    assert b"/scim/v2/" in response.content
    assert b"No SCIM token yet" in response.content


def test_a_new_token_is_shown_once(global_admin, client_for):
    browser = client_for(global_admin)
    response = browser.post("/provisioning/tokens/", {"name": "entra", "expires_on": NEXT_MONTH})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    page = response.content.decode()
    start = page.index('id="token-secret">') + len('id="token-secret">')
    secret = page[start : page.index("</pre>", start)]
    assert secret.startswith("pim_scim_")
    token = AccessToken.objects.get(name="entra")
    assert token.prefix in page and token.created_by == global_admin

    again = browser.get("/provisioning/").content.decode()
    assert secret not in again and token.prefix in again


def test_a_bad_expiry_keeps_the_form_with_the_reason(global_admin, client_for):
    response = client_for(global_admin).post(
        "/provisioning/tokens/", {"name": "entra", "expires_on": "2001-01-01"}
    )
    assert response.status_code == 400
    assert b"The expiry must be in the future." in response.content
    assert b'value="entra"' in response.content
    assert not AccessToken.objects.exists()


def test_revoking_from_the_page(global_admin, client_for):
    browser = client_for(global_admin)
    browser.post("/provisioning/tokens/", {"name": "entra", "expires_on": NEXT_MONTH})
    token = AccessToken.objects.get()
    response = browser.post(f"/provisioning/tokens/{token.pk}/revoke/", follow=True)
    assert b"is revoked" in response.content and b"Revoked" in response.content
    token.refresh_from_db()
    assert token.revoked_by == global_admin


def test_revoking_an_unknown_token_says_so(global_admin, client_for):
    response = client_for(global_admin).post("/provisioning/tokens/999/revoke/", follow=True)
    assert b"That token does not exist." in response.content


def test_the_token_list_takes_as_many_queries_for_many_tokens_as_for_few(global_admin, client_for):

    browser = client_for(global_admin)

    def make(n):
        for i in range(n):
            name = f"t{AccessToken.objects.count()}-{i}"
            tokens.token_create(actor=Actor.of(global_admin), name=name)

    make(2)
    browser.get("/provisioning/")  # the session's first save is not the list's
    with CaptureQueriesContext(connection) as few:
        assert browser.get("/provisioning/").status_code == 200
    make(20)
    with CaptureQueriesContext(connection) as many:
        assert browser.get("/provisioning/").status_code == 200
    assert len(many) == len(few)
