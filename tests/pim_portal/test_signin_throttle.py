"""Password guessing: failed sign-ins are throttled per account and per address, and audited."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from tests.factories import PASSWORD, make_user

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LIMIT = settings.AXES_FAILURE_LIMIT
ADDRESS_LIMIT = settings.SIGNIN_ADDRESS_FAILURE_LIMIT
COOL_OFF = settings.AXES_COOLOFF_TIME

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def alice(db):
    return make_user("alice")


def sign_in(username: str, password: str, ip: str = "198.51.100.20", client=None):
    client = client or Client()
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def signed_in(response) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.client.session


def events(action: str):
    return AuditEvent.objects.filter(action=action).order_by("id")


# Per account ------------------------------------------------------------------------------


def test_defaults_lock_an_account_after_5_failures_for_15_minutes():
    assert (5, 20, timedelta(minutes=15)) == (LIMIT, ADDRESS_LIMIT, COOL_OFF)


def test_failures_below_the_limit_leave_the_account_open(clock, alice):
    for _ in range(LIMIT - 1):
        assert sign_in("alice", "wrong").status_code == 200
    assert signed_in(sign_in("alice", PASSWORD))


def test_thirty_wrong_passwords_lock_the_account_at_the_limit(clock, alice):
    statuses = [sign_in("alice", f"guess-{n}").status_code for n in range(30)]
    assert statuses[: LIMIT - 1] == [200] * (LIMIT - 1)  # the form again, "wrong password"
    assert statuses[LIMIT - 1 :] == [429] * (30 - LIMIT + 1)


def test_every_failed_sign_in_is_audited_with_the_username_and_no_password(clock, alice):
    for n in range(30):
        sign_in("alice", f"guess-{n}")
    failed = list(events("pim.security.signin_failed"))
    assert len(failed) == 30
    assert all(event.message == "Failed sign-in as 'alice'." for event in failed)
    assert all(event.target_id == str(alice.pk) for event in failed)
    assert all(event.ip == "198.51.100.20" for event in failed)
    assert not any("guess" in str(event.__dict__) for event in failed)


def test_failed_sign_in_for_an_unknown_username_is_audited(clock):
    sign_in("nobody", "wrong")
    event = events("pim.security.signin_failed").get()
    assert event.message == "Failed sign-in as 'nobody'."
    assert event.target_id == ""


def test_lock_out_is_audited_with_its_duration(clock, alice):
    for n in range(LIMIT):
        sign_in("alice", f"guess-{n}")
    event = events("pim.security.signin_locked").get()
    assert event.message == (
        "Sign-in as 'alice' refused: too many failures; account 'alice' locked for 15 minutes."
    )
    assert event.target_id == str(alice.pk)


def test_every_attempt_while_locked_out_is_audited(clock, alice):
    for n in range(LIMIT + 3):
        sign_in("alice", f"guess-{n}")
    assert events("pim.security.signin_locked").count() == 4


def test_locked_out_page_says_why_and_for_how_long(clock, alice):
    for n in range(LIMIT - 1):
        sign_in("alice", f"guess-{n}")
    response = sign_in("alice", "one-more")
    assert response.status_code == 429
    assert "Too many failed sign-ins for this account. Try again in 15 minutes." in (
        response.content.decode()
    )
    rendered = [template.name for template in response.templates]
    assert "registration/locked_out.html" in rendered
    assert "base.html" in rendered


def test_correct_password_is_refused_while_locked_out(clock, alice):
    for n in range(LIMIT):
        sign_in("alice", f"guess-{n}")
    response = sign_in("alice", PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in response.client.session


def test_correct_password_from_another_address_is_refused_while_the_account_is_locked(clock, alice):
    for n in range(LIMIT):
        sign_in("alice", f"guess-{n}", ip="198.51.100.20")
    assert sign_in("alice", PASSWORD, ip="203.0.113.9").status_code == 429


def test_account_opens_again_after_the_cool_off(clock, alice):
    for n in range(LIMIT + 2):
        sign_in("alice", f"guess-{n}")
    clock.shift(COOL_OFF - timedelta(seconds=1))
    assert sign_in("alice", PASSWORD).status_code == 429  # and the wait starts again
    clock.shift(COOL_OFF + timedelta(seconds=1))
    assert signed_in(sign_in("alice", PASSWORD))


def test_successful_sign_in_clears_the_accounts_failures(clock, alice):
    for n in range(LIMIT - 1):
        sign_in("alice", f"guess-{n}")
    assert signed_in(sign_in("alice", PASSWORD))
    for n in range(LIMIT - 1):
        assert sign_in("alice", f"again-{n}").status_code == 200
    assert signed_in(sign_in("alice", PASSWORD))


def test_lock_out_of_one_account_leaves_others_open(clock, alice):
    make_user("bob")
    for n in range(LIMIT):
        sign_in("alice", f"guess-{n}")
    assert signed_in(sign_in("bob", PASSWORD))


def test_admin_sign_in_is_throttled_too(clock, alice):
    for n in range(LIMIT):
        Client().post(
            reverse("admin:login"),
            {"username": "alice", "password": f"guess-{n}"},
            REMOTE_ADDR="198.51.100.20",
        )
    assert events("pim.security.signin_locked").count() == 1


# Per client address -------------------------------------------------------------------------


def spray(count: int, ip: str = "192.0.2.50"):
    """Wrong passwords for `count` different usernames from one address (none locks)."""
    return [sign_in(f"user{n}", "Winter2026!", ip=ip).status_code for n in range(count)]


def test_address_is_locked_after_its_limit_across_usernames(clock):
    statuses = spray(ADDRESS_LIMIT + 2)
    assert statuses[: ADDRESS_LIMIT - 1] == [200] * (ADDRESS_LIMIT - 1)
    assert statuses[ADDRESS_LIMIT - 1 :] == [429] * 3


def test_locked_address_cannot_sign_in_to_any_account(clock, alice):
    spray(ADDRESS_LIMIT)
    response = sign_in("alice", PASSWORD, ip="192.0.2.50")
    assert response.status_code == 429
    assert "Too many failed sign-ins from your network address. Try again in 15 minutes." in (
        response.content.decode()
    )


def test_locked_address_leaves_other_addresses_open(clock, alice):
    spray(ADDRESS_LIMIT)
    assert signed_in(sign_in("alice", PASSWORD, ip="198.51.100.20"))


def test_address_lock_out_is_audited_naming_the_address(clock):
    spray(ADDRESS_LIMIT)
    event = events("pim.security.signin_locked").get()
    assert "address 192.0.2.50 locked for 15 minutes" in event.message


def test_own_successful_sign_in_does_not_clear_the_addresss_failures(clock, alice):
    spray(ADDRESS_LIMIT - 1)
    assert signed_in(sign_in("alice", PASSWORD, ip="192.0.2.50"))
    assert sign_in("user-next", "Winter2026!", ip="192.0.2.50").status_code == 429


def test_address_is_the_one_our_proxy_saw(clock, settings):
    settings.BEHIND_TLS_PROXY = True
    for n in range(ADDRESS_LIMIT):
        Client().post(
            reverse("login"),
            {"username": f"user{n}", "password": "x"},
            REMOTE_ADDR="10.0.0.2",  # the proxy itself
            HTTP_X_FORWARDED_FOR=f"6.6.6.{n}, 192.0.2.77",  # a forged first hop each time
        )
    event = events("pim.security.signin_locked").get()
    assert "address 192.0.2.77 locked" in event.message


# The test client's login() has no request to throttle --------------------------------------


def test_test_client_login_still_signs_in(alice):
    assert Client().login(username="alice", password=PASSWORD)


def test_test_client_login_failure_is_audited(alice):
    assert not Client().login(username="alice", password="wrong")
    assert events("pim.security.signin_failed").get().message == "Failed sign-in as 'alice'."
