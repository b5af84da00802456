"""The account page: a user's authenticators, adding one (a second needs the first), removing one
with a current code, and an administrator's reset. Every change and every refusal is audited."""

from binascii import unhexlify
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent
from pim_portal import authenticators, mfa
from pim_portal.actor import Actor
from tests.factories import make_user

T0 = datetime(2026, 3, 2, 9, 0, 10, tzinfo=UTC)
ENROLL = "/account/mfa/"

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def user(db):
    return make_user("una")


@pytest.fixture
def browser(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def phone(user):
    return TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)


def code_for_key(key: str) -> str:
    return f"{totp(unhexlify(key)):06d}"


def code_for(device: TOTPDevice) -> str:
    return code_for_key(device.key)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def enrolment_key(client) -> str:
    """The secret the enrolment page shows (kept in the session until confirmed)."""
    return client.get(reverse("mfa_enroll")).context["key"]


def events(action: str):
    return AuditEvent.objects.filter(action=action)


def field_errors(response, field: str) -> list[str]:
    return response.context["form"].errors.get(field, [])


# Opening pages ---------------------------------------------------------------------------


def test_url_of_the_enrolment_page_is_kept_for_existing_links():
    assert reverse("mfa_enroll") == ENROLL


def test_opening_the_enrolment_page_creates_no_device(browser):
    browser.get(reverse("mfa_enroll"))
    browser.get(reverse("mfa_enroll"))
    assert not TOTPDevice.objects.exists()


def test_opening_the_account_page_creates_no_device(browser):
    assert browser.get(reverse("account")).status_code == 200
    assert not TOTPDevice.objects.exists()


def test_enrolment_page_shows_the_same_secret_when_reloaded(browser):
    assert enrolment_key(browser) == enrolment_key(browser)


def test_enrolment_secrets_differ_between_users(browser):
    other = Client()
    other.force_login(make_user("otto"))
    assert enrolment_key(browser) != enrolment_key(other)


def test_account_page_lists_the_users_authenticators_with_added_and_last_use(
    clock, browser, user, phone
):
    TOTPDevice.objects.create(user=user, name="Work tablet", confirmed=True)
    mfa.verify_code(user, code_for(phone))
    page = browser.get(reverse("account")).content.decode()
    assert "Phone" in page
    assert "Work tablet" in page
    assert "2026-03-02 09:00 UTC" in page  # added (both) and Phone's last use
    assert "Never" in page  # the tablet was never used


def test_account_page_shows_no_one_elses_authenticators(browser):
    TOTPDevice.objects.create(user=make_user("otto"), name="Otto's phone", confirmed=True)
    response = browser.get(reverse("account"))
    assert "Otto" not in response.content.decode()
    assert response.context["devices"] == []


def test_account_page_does_not_list_unconfirmed_leftovers(browser, user):
    TOTPDevice.objects.create(user=user, name="Half set up", confirmed=False)
    assert "Half set up" not in browser.get(reverse("account")).content.decode()


# Adding the first authenticator ------------------------------------------------------------


def test_first_authenticator_is_added_with_its_name_and_first_code(clock, browser, user):
    key = enrolment_key(browser)
    response = browser.post(ENROLL, {"name": "Pixel", "code": code_for_key(key)})
    assert response.status_code == 302
    device = TOTPDevice.objects.get(user=user)
    assert (device.name, device.confirmed, device.key) == ("Pixel", True, key)


def test_adding_an_authenticator_is_audited(clock, browser, user):
    browser.post(ENROLL, {"name": "Pixel", "code": code_for_key(enrolment_key(browser))})
    event = events("pim.security.mfa_enrolled").get()
    assert event.actor == user
    assert event.after == {"device": TOTPDevice.objects.get().pk, "name": "Pixel"}


def test_wrong_first_code_adds_nothing_and_says_so_on_the_code(clock, browser):
    response = browser.post(
        ENROLL, {"name": "Pixel", "code": wrong(code_for_key(enrolment_key(browser)))}
    )
    assert response.status_code == 200
    assert field_errors(response, "code") == [
        "That code is not right. Check the time on your phone and retry."
    ]
    assert not TOTPDevice.objects.exists()


def test_wrong_first_code_is_audited_as_a_refusal(clock, browser):
    browser.post(ENROLL, {"name": "Pixel", "code": wrong(code_for_key(enrolment_key(browser)))})
    event = events("pim.security.mfa_enrol_refused").get()
    assert event.message == "Adding authenticator 'Pixel': the new app's code was wrong."


def test_the_confirming_code_cannot_be_used_again(clock, browser, user):
    code = code_for_key(enrolment_key(browser))
    browser.post(ENROLL, {"name": "Pixel", "code": code})
    assert not mfa.verify_code(user, code)


def test_a_new_secret_is_offered_after_an_authenticator_was_added(clock, browser):
    key = enrolment_key(browser)
    browser.post(ENROLL, {"name": "Pixel", "code": code_for_key(key)})
    assert enrolment_key(browser) != key


def test_adding_returns_to_the_page_that_sent_the_user(clock, browser):
    key = enrolment_key(browser)
    response = browser.post(
        ENROLL, {"name": "Pixel", "code": code_for_key(key), "next": "/my/roles/"}
    )
    assert response["Location"] == "/my/roles/"


def test_adding_without_a_next_page_returns_to_the_account(clock, browser):
    response = browser.post(ENROLL, {"name": "Pixel", "code": code_for_key(enrolment_key(browser))})
    assert response["Location"] == reverse("account")


def test_adding_clears_unconfirmed_devices_left_by_the_old_page(clock, browser, user):
    TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    browser.post(ENROLL, {"name": "Pixel", "code": code_for_key(enrolment_key(browser))})
    assert list(TOTPDevice.objects.values_list("name", "confirmed")) == [("Pixel", True)]


# Adding another: needs the one the user has -----------------------------------------------


def test_second_authenticator_without_a_code_from_the_first_is_refused(clock, browser, phone):
    key = enrolment_key(browser)
    response = browser.post(ENROLL, {"name": "Tablet", "code": code_for_key(key)})
    assert response.status_code == 200
    assert field_errors(response, "current_code") == [
        "Enter a current code from an authenticator you already have."
    ]
    assert list(TOTPDevice.objects.values_list("name", flat=True)) == ["Phone"]


def test_second_authenticator_with_a_wrong_code_from_the_first_is_refused(clock, browser, phone):
    key = enrolment_key(browser)
    response = browser.post(
        ENROLL,
        {"name": "Tablet", "code": code_for_key(key), "current_code": wrong(code_for(phone))},
    )
    assert field_errors(response, "current_code") == [
        "Enter a current code from an authenticator you already have."
    ]
    assert TOTPDevice.objects.count() == 1


def test_new_apps_own_code_does_not_stand_in_for_the_existing_one(clock, browser, phone):
    key = enrolment_key(browser)
    code = code_for_key(key)
    response = browser.post(ENROLL, {"name": "Tablet", "code": code, "current_code": code})
    assert field_errors(response, "current_code")
    assert TOTPDevice.objects.count() == 1


def test_refused_second_authenticator_is_audited(clock, browser, phone):
    browser.post(ENROLL, {"name": "Tablet", "code": code_for_key(enrolment_key(browser))})
    event = events("pim.security.mfa_enrol_refused").get()
    assert event.message == (
        "Adding authenticator 'Tablet': no valid code from an existing authenticator."
    )
    assert not events("pim.security.mfa_enrolled").exists()


def test_second_authenticator_with_a_current_code_from_the_first_is_added(
    clock, browser, user, phone
):
    key = enrolment_key(browser)
    response = browser.post(
        ENROLL, {"name": "Tablet", "code": code_for_key(key), "current_code": code_for(phone)}
    )
    assert response.status_code == 302
    assert sorted(mfa.confirmed_devices(user).values_list("name", flat=True)) == [
        "Phone",
        "Tablet",
    ]


def test_enrolment_page_asks_for_a_code_from_the_existing_one(browser, phone):
    form = browser.get(reverse("mfa_enroll")).context["form"]
    assert "current_code" in form.fields


def test_enrolment_page_of_a_first_authenticator_does_not_ask_for_another_code(browser):
    form = browser.get(reverse("mfa_enroll")).context["form"]
    assert "current_code" not in form.fields


def test_typo_in_the_new_code_does_not_use_up_the_existing_code(clock, browser, phone):
    key = enrolment_key(browser)
    current = code_for(phone)
    browser.post(
        ENROLL, {"name": "Tablet", "code": wrong(code_for_key(key)), "current_code": current}
    )
    response = browser.post(
        ENROLL, {"name": "Tablet", "code": code_for_key(key), "current_code": current}
    )
    assert response.status_code == 302


# Removing one ------------------------------------------------------------------------------


def remove_url(device) -> str:
    return reverse("mfa_remove", args=[device.pk])


def test_authenticator_is_removed_with_a_current_code(clock, browser, phone):
    response = browser.post(remove_url(phone), {"code": code_for(phone)})
    assert response.status_code == 302
    assert response["Location"] == reverse("account")
    assert not TOTPDevice.objects.exists()


def test_authenticator_can_be_removed_with_a_code_from_another_one(clock, browser, user, phone):
    tablet = TOTPDevice.objects.create(user=user, name="Tablet", confirmed=True)
    browser.post(remove_url(phone), {"code": code_for(tablet)})
    assert list(TOTPDevice.objects.values_list("name", flat=True)) == ["Tablet"]


def test_removing_is_audited(clock, browser, user, phone):
    browser.post(remove_url(phone), {"code": code_for(phone)})
    event = events("pim.security.mfa_removed").get()
    assert event.actor == user
    assert event.before == {"device": phone.pk, "name": "Phone"}


def test_removing_with_a_wrong_code_keeps_it_and_says_so(clock, browser, phone):
    response = browser.post(remove_url(phone), {"code": wrong(code_for(phone))})
    assert response.status_code == 200
    assert field_errors(response, "code") == [
        "That code is not right. Enter a current code from one of your authenticators."
    ]
    assert TOTPDevice.objects.filter(pk=phone.pk).exists()


def test_removing_with_a_wrong_code_is_audited_as_a_refusal(clock, browser, phone):
    browser.post(remove_url(phone), {"code": wrong(code_for(phone))})
    event = events("pim.security.mfa_remove_refused").get()
    assert event.message == "Removing authenticator 'Phone': the code was wrong."


def test_opening_the_remove_page_removes_nothing(browser, phone):
    assert browser.get(remove_url(phone)).status_code == 200
    assert TOTPDevice.objects.filter(pk=phone.pk).exists()


def test_someone_elses_authenticator_cannot_be_removed_and_is_404(clock, browser):
    others = TOTPDevice.objects.create(user=make_user("otto"), name="Otto's", confirmed=True)
    response = browser.post(remove_url(others), {"code": code_for(others)})
    assert response.status_code == 404
    assert TOTPDevice.objects.filter(pk=others.pk).exists()
    assert events("pim.security.forbidden").get().message == f"remove authenticator {others.pk}"


def test_after_removing_the_last_one_a_new_first_one_needs_no_old_code(clock, browser, phone):
    browser.post(remove_url(phone), {"code": code_for(phone)})
    response = browser.post(ENROLL, {"name": "New", "code": code_for_key(enrolment_key(browser))})
    assert response.status_code == 302


# An administrator's reset ------------------------------------------------------------------


@pytest.fixture
def superuser(db):
    return make_user("root", is_staff=True, is_superuser=True)


def test_admin_action_removes_every_authenticator_of_the_user(clock, superuser, user, phone):
    TOTPDevice.objects.create(user=user, name="Tablet", confirmed=True)
    kept = TOTPDevice.objects.create(user=superuser, name="Admin's", confirmed=True)
    admin = Client()
    admin.force_login(superuser)
    response = admin.post(
        reverse("admin:pim_portal_user_changelist"),
        {"action": "reset_mfa", "_selected_action": [user.pk]},
    )
    assert response.status_code == 302
    assert list(TOTPDevice.objects.all()) == [kept]


def test_admin_reset_is_audited_naming_the_administrator(superuser, user, phone):
    authenticators.authenticators_reset(actor=Actor.of(superuser), user=user)
    event = events("pim.security.mfa_reset").get()
    assert event.actor == superuser
    assert event.target_id == str(user.pk)
    assert event.before == {"devices": [{"device": phone.pk, "name": "Phone"}]}


def test_after_a_reset_the_user_adds_a_new_one_without_an_old_code(
    clock, superuser, browser, user, phone
):
    authenticators.authenticators_reset(actor=superuser, user=user)
    response = browser.post(ENROLL, {"name": "New", "code": code_for_key(enrolment_key(browser))})
    assert response.status_code == 302


def test_replayed_code_cannot_remove_an_authenticator(clock, browser, user, phone):
    code = code_for(phone)
    assert mfa.verify_code(user, code)
    browser.post(remove_url(phone), {"code": code})
    assert TOTPDevice.objects.filter(pk=phone.pk).exists()


def test_next_steps_code_removes_after_one_was_used(clock, browser, user, phone):
    assert mfa.verify_code(user, code_for(phone))
    clock.shift(timedelta(seconds=30))
    browser.post(remove_url(phone), {"code": code_for(phone)})
    assert not TOTPDevice.objects.exists()
