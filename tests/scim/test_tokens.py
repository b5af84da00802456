"""SCIM tokens: shown once, stored hashed, with an expiry, revocable, each use audited, and
good for SCIM only."""

import hashlib
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from pim_portal.actor import Actor
from pim_portal.models import AccessToken
from pim_portal.scim import tokens
from tests.scim.conftest import ScimClient


def test_only_the_hash_and_a_prefix_are_stored(scim_token):
    stored = AccessToken.objects.get(pk=scim_token.pk)
    assert stored.secret_hash == hashlib.sha256(scim_token.secret.encode()).hexdigest()
    assert scim_token.secret.startswith(stored.prefix) and len(stored.prefix) < 16
    assert len(scim_token.secret) > 40
    row = AccessToken.objects.filter(pk=scim_token.pk).values().get()
    assert scim_token.secret not in {str(v) for v in row.values()}


def test_a_token_expires_by_default_after_a_year(scim_token):
    assert scim_token.expires_at - scim_token.created_at == timedelta(days=365)


def test_an_expiry_past_the_maximum_is_refused(global_admin, settings):
    settings.SCIM_TOKEN_MAX_DAYS = 30
    with pytest.raises(ValidationError, match="at most 30 days"):
        tokens.token_create(
            actor=Actor.of(global_admin),
            name="okta",
            expires_at=timezone.now() + timedelta(days=31),
        )


def test_a_second_active_token_of_the_same_name_is_refused(scim_token, global_admin):
    with pytest.raises(ValidationError, match="already in use"):
        tokens.token_create(actor=Actor.of(global_admin), name="OKTA")


def test_an_api_token_of_the_same_name_does_not_block_a_scim_token(global_admin):
    from assignments.api.tokens import api_token_create

    api_token_create(Actor.of(global_admin), owner=global_admin, name="okta")
    token, _ = tokens.token_create(actor=Actor.of(global_admin), name="okta")
    assert token.kind == AccessToken.Kind.SCIM


def test_only_a_global_administrator_creates_tokens(pra):
    with pytest.raises(PermissionDenied):
        tokens.token_create(actor=Actor.of(pra), name="okta")
    assert AuditEvent.objects.filter(
        action="pim.security.forbidden", message="create a SCIM token"
    ).exists()


def test_an_expired_token_is_401_and_audited(scim, scim_token):
    with time_machine.travel(scim_token.expires_at + timedelta(seconds=1), tick=False):
        response = scim.get("Users")
    assert response.status_code == 401
    assert response.json_body["detail"] == "The bearer token is expired."
    assert AuditEvent.objects.filter(
        action="pim.security.token_refused", target_id=str(scim_token.pk)
    ).exists()


def test_a_token_works_until_the_second_it_expires(scim, scim_token):
    with time_machine.travel(scim_token.expires_at - timedelta(seconds=1), tick=False):
        assert scim.get("Users").status_code == 200


def test_a_revoked_token_is_401_at_once(scim, scim_token, global_admin):
    assert scim.get("Users").status_code == 200
    tokens.token_revoke(actor=Actor.of(global_admin), token_id=scim_token.pk)
    response = scim.get("Users")
    assert response.status_code == 401
    assert response.json_body["detail"] == "The bearer token is revoked."


def test_use_is_audited_once_a_minute_per_token(scim, scim_token):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for _ in range(5):
            assert scim.get("Users").status_code == 200
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        scim.get("Users")
    used = AuditEvent.objects.filter(action="pim.scim.token_used", target_id=str(scim_token.pk))
    assert used.count() == 2
    assert used.first().actor_name == 'system (SCIM token "okta")'
    scim_token.refresh_from_db()
    assert scim_token.last_used_at == start + timedelta(seconds=61)


def test_a_scim_token_does_not_open_a_portal_page(scim_token):
    response = Client().get("/my/roles/", headers={"Authorization": f"Bearer {scim_token.secret}"})
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_scim_token_is_not_a_password(scim_token, global_admin):
    assert not Client().login(username=global_admin.username, password=scim_token.secret)
    response = Client().post(
        "/login/", {"username": global_admin.username, "password": scim_token.secret}
    )
    assert response.status_code == 200  # the form again, not a redirect into the portal
    assert "_auth_user_id" not in Client().session


def test_a_session_does_not_open_scim(global_admin, client_for):
    browser = client_for(global_admin)
    response = browser.get("/scim/v2/Users")
    assert response.status_code == 401


def test_the_scim_client_is_not_authenticated_on_pages(scim):
    response = scim.client.get("/", headers=scim.headers)
    assert response.status_code == 302


def test_revoking_twice_is_refused(scim_token, global_admin):
    tokens.token_revoke(actor=Actor.of(global_admin), token_id=scim_token.pk)
    with pytest.raises(ValidationError, match="already revoked"):
        tokens.token_revoke(actor=Actor.of(global_admin), token_id=scim_token.pk)


def test_an_unknown_token_is_not_audited(db):
    before = AuditEvent.objects.count()
    assert ScimClient("pim_scim_guess").get("Users").status_code == 401
    assert AuditEvent.objects.count() == before


def test_the_admin_shows_tokens_read_only_without_their_hash(scim_token):
    from tests.factories import make_user

    admin_user = make_user("root", is_superuser=True, is_staff=True)
    browser = Client()
    browser.force_login(admin_user)
    listing = browser.get("/admin/pim_portal/accesstoken/")
    assert listing.status_code == 200 and b"okta" in listing.content
    page = browser.get(f"/admin/pim_portal/accesstoken/{scim_token.pk}/change/")
    assert page.status_code == 200
    assert scim_token.secret_hash.encode() not in page.content
    assert scim_token.secret.encode() not in page.content
    assert b'name="name"' not in page.content  # nothing to edit
    assert browser.get("/admin/pim_portal/accesstoken/add/").status_code == 403
