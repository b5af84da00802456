"""The API token pages: one's own tokens, made (the secret shown once) and revoked with a
confirmation; directory administrators see and revoke everyone's."""

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import time_machine
from django.urls import reverse
from django.utils import timezone

from assignments.api import tokens
from audit.models import AuditEvent
from pim_portal.actor import Actor
from pim_portal.models import AccessToken
from tests.api.conftest import ApiClient, make_token
from tests.factories import make_user


def test_the_page_lists_only_ones_own_tokens(client_for, outsider, approver):
    make_token(outsider, "mine")
    make_token(approver, "theirs")
    page = client_for(outsider).get(reverse("api_tokens"))
    assert page.status_code == 200
    assert "mine" in page.content.decode() and "theirs" not in page.content.decode()


def test_the_page_has_an_empty_state(client_for, outsider):
    page = client_for(outsider).get(reverse("api_tokens"))
    assert "You have no API token yet" in page.content.decode()


def test_creating_shows_the_secret_once(client_for, outsider):
    browser = client_for(outsider)
    with time_machine.travel(timezone.now(), tick=False):
        response = browser.post(
            reverse("api_token_create"), {"name": "deploy", "expires_in_days": 7}
        )

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    secret = re.search(r'id="token-secret">(pim_api_[^<]+)<', response.content.decode()).group(1)
    token = AccessToken.objects.get(owner=outsider, name="deploy")
    assert token.expires_at - token.created_at == timedelta(days=7)
    assert ApiClient(secret).access("oscar", "Reader").status_code == 200
    assert secret not in browser.get(reverse("api_tokens")).content.decode()
    assert AuditEvent.objects.filter(action="pim.api_token.created", actor=outsider).exists()


def test_the_default_lifetime_is_offered(client_for, outsider, settings):
    settings.API_TOKEN_DEFAULT_DAYS = 90
    page = client_for(outsider).get(reverse("api_tokens"))
    assert 'name="expires_in_days" value="90"' in page.content.decode()


def test_a_lifetime_past_the_maximum_is_refused_on_the_form(client_for, outsider, settings):
    settings.API_TOKEN_MAX_DAYS = 30
    response = client_for(outsider).post(
        reverse("api_token_create"), {"name": "deploy", "expires_in_days": 31}
    )
    assert response.status_code == 400
    assert "A token lasts at most 30 days." in response.content.decode()
    assert not AccessToken.objects.filter(owner=outsider).exists()


def test_a_duplicate_name_is_refused_on_the_form(client_for, outsider):
    make_token(outsider, "deploy")
    response = client_for(outsider).post(
        reverse("api_token_create"), {"name": "deploy", "expires_in_days": 5}
    )
    assert response.status_code == 400
    assert "You already have a token named" in response.content.decode()


def test_revoking_asks_for_confirmation_then_revokes(client_for, outsider):
    token = make_token(outsider)
    browser = client_for(outsider)
    url = reverse("api_token_revoke", args=[token.pk])

    confirm = browser.get(url)
    token.refresh_from_db()
    assert confirm.status_code == 200 and token.revoked_at is None
    assert "Revoke the token" in confirm.content.decode()

    response = browser.post(url)
    assert response.status_code == 302 and response["Location"] == reverse("api_tokens")
    token.refresh_from_db()
    assert token.revoked_by == outsider
    assert ApiClient(token.secret).access("oscar", "Reader").status_code == 401


def test_another_users_token_is_404_to_a_non_administrator(client_for, outsider, security_reader):
    token = make_token(outsider)
    browser = client_for(security_reader)
    url = reverse("api_token_revoke", args=[token.pk])
    assert browser.get(url).status_code == 404
    assert browser.post(url).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    refusal = AuditEvent.objects.filter(action="pim.security.foreign_object").latest("pk")
    assert refusal.actor == security_reader and refusal.message == f"revoke API token {token.pk}"


def test_a_scim_token_is_not_revoked_here(client_for, global_admin):
    from pim_portal.scim import tokens as scim_tokens

    scim, _ = scim_tokens.token_create(actor=Actor.of(global_admin), name="okta")
    url = reverse("api_token_revoke", args=[scim.pk])
    assert client_for(global_admin).post(url).status_code == 404


def test_an_administrator_revokes_anyones_token(client_for, outsider, pra):
    token = make_token(outsider)
    response = client_for(pra).post(reverse("api_token_revoke", args=[token.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("api_tokens_all")
    token.refresh_from_db()
    assert token.revoked_by == pra


def test_revoking_a_revoked_token_says_so(client_for, outsider):
    token = make_token(outsider)
    tokens.api_token_revoke(Actor.of(outsider), token=token)
    browser = client_for(outsider)
    response = browser.post(reverse("api_token_revoke", args=[token.pk]), follow=True)
    assert "already revoked" in response.content.decode()


def test_every_users_tokens_are_for_administrators(client_for, outsider, security_reader, pra):
    make_token(outsider, "oscars")
    make_token(security_reader, "sams")
    assert client_for(security_reader).get(reverse("api_tokens_all")).status_code == 403
    assert AuditEvent.objects.filter(
        action="pim.security.forbidden", message="view every user's API tokens"
    ).exists()
    page = client_for(pra).get(reverse("api_tokens_all")).content.decode()
    assert "oscars" in page and "sams" in page


def test_the_administrators_list_filters_by_status_and_search(client_for, outsider, pra):
    make_token(outsider, "live")
    dead = make_token(outsider, "dead")
    tokens.api_token_revoke(Actor.of(outsider), token=dead)
    browser = client_for(pra)
    usable = browser.get(reverse("api_tokens_all")).content.decode()
    revoked = browser.get(reverse("api_tokens_all"), {"status": "revoked"}).content.decode()
    searched = browser.get(reverse("api_tokens_all"), {"q": "nomatch"}).content.decode()
    assert "live" in usable and ">dead<" not in usable
    assert ">dead<" in revoked and ">live<" not in revoked
    assert "No API token matches." in searched


def test_times_are_shown_in_the_viewers_zone(client_for, outsider):
    outsider.time_zone = "Asia/Tokyo"
    outsider.save()
    token = make_token(outsider)
    page = client_for(outsider).get(reverse("api_tokens")).content.decode()
    local = timezone.localtime(token.expires_at, timezone=ZoneInfo("Asia/Tokyo"))
    assert f"{local:%Y-%m-%d %H:%M} JST" in page


def test_the_administrators_list_runs_flat_queries(client_for, pra, django_assert_max_num_queries):
    browser = client_for(pra)
    for number in range(3):
        make_token(make_user(f"few{number}"))
    with django_assert_max_num_queries(100) as few:
        browser.get(reverse("api_tokens_all"))
    for number in range(20):
        owner = make_user(f"many{number}")
        token = make_token(owner)
        if number % 2:
            tokens.api_token_revoke(Actor.of(pra), token=token)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = browser.get(reverse("api_tokens_all"), {"status": "all"})
    assert response.content.decode().count("data-token=") == 23


def test_the_own_list_runs_flat_queries(client_for, outsider, django_assert_max_num_queries):
    browser = client_for(outsider)
    make_token(outsider, "first")
    with django_assert_max_num_queries(100) as few:
        browser.get(reverse("api_tokens"))
    for number in range(20):
        make_token(outsider, f"token {number}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = browser.get(reverse("api_tokens"))
    assert response.content.decode().count("data-token=") == 21
