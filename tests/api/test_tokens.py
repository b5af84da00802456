"""API tokens: made by their owner, shown once, stored hashed, expiring, revocable, acting as
their owner at each request, every use and refusal audited (without a row per request)."""

import hashlib
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.test import Client
from django.utils import timezone

from assignments.api import tokens
from audit.models import AuditEvent
from pim_portal.actor import Actor
from pim_portal.models import AccessToken
from pim_portal.people import services as people_services
from pim_portal.scim import tokens as scim_tokens
from tests.api.conftest import ApiClient, error_of, make_token
from tests.factories import assign, make_user


def events(action: str, **fields):
    return AuditEvent.objects.filter(action=action, **fields)


def test_only_the_hash_and_a_prefix_are_stored(pra):
    token = make_token(pra)
    stored = AccessToken.objects.get(pk=token.pk)
    assert stored.secret_hash == hashlib.sha256(token.secret.encode()).hexdigest()
    assert token.secret.startswith("pim_api_") and token.secret.startswith(stored.prefix)
    assert len(token.secret) > 40 and len(stored.prefix) < 16
    row = AccessToken.objects.filter(pk=token.pk).values().get()
    assert token.secret not in {str(value) for value in row.values()}
    assert stored.kind == AccessToken.Kind.API and stored.owner == pra


def test_creation_is_audited_without_the_secret(pra):
    token = make_token(pra, "deploy")
    event = events("pim.api_token.created", target_id=str(token.pk)).get()
    assert event.actor == pra and event.after["name"] == "deploy"
    assert token.secret not in str(event.after) + event.message


def test_a_token_lasts_the_default_days(outsider, settings):
    settings.API_TOKEN_DEFAULT_DAYS = 90
    token = make_token(outsider)
    assert token.expires_at - token.created_at == timedelta(days=90)


def test_an_expiry_past_the_maximum_is_refused(outsider, settings):
    settings.API_TOKEN_MAX_DAYS = 30
    with pytest.raises(ValidationError, match="at most 30 days"):
        make_token(outsider, expires_at=timezone.now() + timedelta(days=31))


def test_an_expiry_in_the_past_is_refused(outsider):
    with pytest.raises(ValidationError, match="must be in the future"):
        make_token(outsider, expires_at=timezone.now() - timedelta(seconds=1))


def test_a_second_usable_token_of_the_same_name_is_refused(outsider):
    make_token(outsider, "deploy")
    with pytest.raises(ValidationError, match="already have a token named 'DEPLOY'"):
        make_token(outsider, "DEPLOY")


def test_another_user_may_use_the_same_name(outsider, approver):
    make_token(outsider, "deploy")
    assert make_token(approver, "deploy").owner == approver


def test_nobody_makes_a_token_acting_as_someone_else(pra, outsider):
    with pytest.raises(PermissionDenied):
        tokens.api_token_create(Actor.of(pra), owner=outsider, name="impersonation")
    assert not AccessToken.objects.filter(owner=outsider).exists()
    refusal = events("pim.security.forbidden", actor=pra).get()
    assert refusal.message == "create an API token acting as 'oscar'"


def test_the_system_may_make_one_for_a_user(outsider):
    token, _ = tokens.api_token_create(Actor.system("tests"), owner=outsider, name="made")
    assert token.owner == outsider and token.created_by is None


def test_a_token_authenticates_as_its_owner(pra, outsider):
    api = ApiClient(make_token(pra).secret)
    response = api.access("oscar", "Global Administrator")
    assert response.status_code == 200
    assert response.json_body["principal"]["displayName"] == "Oscar Outsider"


def test_no_token_is_401_with_a_bearer_challenge(db):
    response = ApiClient(None).access("oscar", "Global Administrator")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="PIM Portal"'
    assert error_of(response)["code"] == "unauthenticated"
    assert error_of(response)["message"].startswith("A bearer token is required")


def test_another_scheme_is_401(pra):
    response = ApiClient(None).access("pat", "Reader", headers={"Authorization": "Basic cGF0Og=="})
    assert response.status_code == 401
    assert error_of(response)["message"].startswith("A bearer token is required")


def test_an_unknown_token_is_401_and_not_audited(db):
    response = ApiClient("pim_api_" + "x" * 43).access("oscar", "Reader")
    assert response.status_code == 401
    assert error_of(response)["message"] == "The bearer token is not valid."
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert not events("pim.api_token.refused").exists()


def test_a_scim_token_does_not_open_the_api(global_admin):
    _, secret = scim_tokens.token_create(actor=Actor.of(global_admin), name="okta")
    response = ApiClient(secret).access("gina", "Global Administrator")
    assert response.status_code == 401
    assert error_of(response)["message"] == "The bearer token is not valid."


def test_an_api_token_does_not_open_scim(pra):
    token = make_token(pra)
    response = Client().get("/scim/v2/Users", headers={"Authorization": f"Bearer {token.secret}"})
    assert response.status_code == 401


def test_a_token_works_until_the_second_it_expires(outsider):
    token = make_token(outsider)
    api = ApiClient(token.secret)
    with time_machine.travel(token.expires_at - timedelta(seconds=1), tick=False):
        assert api.access("oscar", "Reader").status_code == 200
    with time_machine.travel(token.expires_at, tick=False):
        response = api.access("oscar", "Reader")
    assert response.status_code == 401
    assert error_of(response)["message"] == "The bearer token is expired."
    refused = events("pim.api_token.refused", target_id=str(token.pk)).get()
    assert refused.actor == outsider and "which is expired" in refused.message


def test_a_revoked_token_is_401_at_once(outsider):
    token = make_token(outsider)
    api = ApiClient(token.secret)
    assert api.access("oscar", "Reader").status_code == 200
    tokens.api_token_revoke(Actor.of(outsider), token=token)
    response = api.access("oscar", "Reader")
    assert response.status_code == 401
    assert error_of(response)["message"] == "The bearer token is revoked."
    assert events("pim.api_token.revoked", target_id=str(token.pk), actor=outsider).exists()
    assert events("pim.api_token.refused", target_id=str(token.pk)).exists()


def test_a_deactivated_owner_makes_the_token_401(pra, outsider):
    token = make_token(outsider)
    api = ApiClient(token.secret)
    assert api.access("oscar", "Reader").status_code == 200
    people_services.user_deactivate(Actor.system("tests"), outsider, reason="left the company")
    response = api.access("oscar", "Reader")
    assert response.status_code == 401
    assert error_of(response)["message"] == "The bearer token is of a deactivated account."
    assert events("pim.api_token.refused", target_id=str(token.pk)).exists()


def test_a_flood_of_refused_requests_writes_one_event_a_minute(outsider):
    token = make_token(outsider)
    tokens.api_token_revoke(Actor.of(outsider), token=token)
    api = ApiClient(token.secret)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for _ in range(20):
            assert api.access("oscar", "Reader").status_code == 401
    assert events("pim.api_token.refused", target_id=str(token.pk)).count() == 1


def test_use_is_audited_once_a_minute_per_token(outsider):
    token = make_token(outsider)
    api = ApiClient(token.secret)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for _ in range(5):
            assert api.access("oscar", "Reader").status_code == 200
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        api.access("oscar", "Reader")
    used = events("pim.api_token.used", target_id=str(token.pk))
    assert used.count() == 2 and used.first().actor == outsider
    token.refresh_from_db()
    assert token.last_used_at == start + timedelta(seconds=61)


def test_an_owner_who_loses_a_role_loses_it_in_the_api_at_once(security_reader, outsider):
    api = ApiClient(make_token(security_reader).secret)
    assert api.access("oscar", "Global Administrator").status_code == 200
    holding = security_reader_assignment(security_reader)
    holding.end = timezone.now()
    holding.save(update_fields=["end"])
    response = api.access("oscar", "Global Administrator")
    assert response.status_code == 403
    assert "may ask only about themselves" in error_of(response)["message"]


def security_reader_assignment(user):
    from assignments.models import Assignment

    return Assignment.objects.get(principal_user=user, role__name="Security Reader")


def test_an_owner_whose_role_ends_loses_it_at_the_end_second(outsider):
    reader = make_user("rita")
    now = timezone.now()
    assign(reader, "Security Reader", start=now - timedelta(hours=1), end=now + timedelta(hours=1))
    api = ApiClient(make_token(reader).secret)
    with time_machine.travel(now + timedelta(hours=1) - timedelta(seconds=1), tick=False):
        assert api.access("oscar", "Global Administrator").status_code == 200
    with time_machine.travel(now + timedelta(hours=1), tick=False):
        assert api.access("oscar", "Global Administrator").status_code == 403


def test_an_api_token_does_not_open_a_portal_page(pra):
    token = make_token(pra)
    response = Client().get("/my/roles/", headers={"Authorization": f"Bearer {token.secret}"})
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_session_does_not_open_the_api(pra, client_for):
    response = client_for(pra).get("/api/v1/access", {"principal": "pat", "role": "Reader"})
    assert response.status_code == 401


def test_the_owner_revokes_their_own_token(outsider):
    token = make_token(outsider)
    revoked = tokens.api_token_revoke(Actor.of(outsider), token=token)
    assert revoked.revoked_at is not None and revoked.revoked_by == outsider


def test_a_directory_administrator_revokes_anyones_token(pra, outsider):
    token = make_token(outsider)
    assert tokens.api_token_revoke(Actor.of(pra), token=token).revoked_by == pra


def test_someone_else_may_not_revoke_a_token(security_reader, outsider):
    token = make_token(outsider)
    with pytest.raises(Http404):
        tokens.api_token_revoke(Actor.of(security_reader), token=token)
    token.refresh_from_db()
    assert token.revoked_at is None
    assert events("pim.security.forbidden", actor=security_reader).get().message == (
        f"revoke API token {token.pk}"
    )


def test_revoking_twice_is_refused(outsider):
    token = make_token(outsider)
    tokens.api_token_revoke(Actor.of(outsider), token=token)
    with pytest.raises(ValidationError, match="already revoked"):
        tokens.api_token_revoke(Actor.of(outsider), token=token)


def test_a_deactivated_account_gets_no_token(outsider):
    outsider.is_active = False
    outsider.save()
    with pytest.raises(ValidationError, match="deactivated"):
        tokens.api_token_create(Actor.system("tests"), owner=outsider, name="late")
