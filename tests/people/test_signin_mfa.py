"""Sign-in MFA: a code after the password for anyone who holds or is eligible for a role; the
enrolment of a first authenticator; wrong codes counted with wrong passwords; the time limit;
the Django admin's sign-in under the same rule; emergency access still followed up."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core import checks
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from assignments.models import AssignmentKind
from audit.models import AuditEvent
from pim_portal import signin_mfa
from pim_portal.backends import SIGNIN_REFUSED
from pim_portal.models import EmergencyAccessUse
from tests.factories import PASSWORD, assign, make_group, make_user
from tests.people.conftest import code_for, phone_of, wrong

pytestmark = pytest.mark.django_db

ADDRESS = "198.51.100.7"
CODE_URL = "/login/code/"


def password_step(username, password=PASSWORD, client=None, url="login", next_url=None):
    client = client or Client()
    data = {"username": username, "password": password}
    if next_url:
        data["next"] = next_url
    response = client.post(reverse(url), data, REMOTE_ADDR=ADDRESS)
    return client, response


def code_step(client, code):
    return client.post(reverse("login_code"), {"code": code}, REMOTE_ADDR=ADDRESS)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def events(action):
    return AuditEvent.objects.filter(action=action)


@pytest.fixture
def erin(clock, eligible_user):
    """Eligible for Privileged Role Administrator, with an authenticator."""
    phone_of(eligible_user)
    return eligible_user


def device_of(user) -> TOTPDevice:
    return TOTPDevice.objects.get(user=user)


# Who must -------------------------------------------------------------------------------------


def test_interface_urls():
    assert reverse("login_code") == CODE_URL


def test_privileged_setting_is_the_default(settings):
    del settings.SIGNIN_MFA
    assert signin_mfa.signin_mfa_setting() == signin_mfa.PRIVILEGED


def test_eligible_user_is_asked_for_a_code(eligible_user):
    assert signin_mfa.signin_mfa_required(eligible_user)


def test_active_role_holder_is_asked_for_a_code(pra):
    assert signin_mfa.signin_mfa_required(pra)


def test_user_with_no_role_is_not_asked(outsider):
    assert not signin_mfa.signin_mfa_required(outsider)


def test_role_through_a_group_counts(outsider):
    assign(make_group("Helpdesk", outsider), "Reader", kind=AssignmentKind.ELIGIBLE)
    assert signin_mfa.signin_mfa_required(outsider)


def test_eligibility_starting_later_counts(outsider):
    from django.utils import timezone

    now = timezone.now()
    assign(outsider, "Reader", start=now + timedelta(days=3), end=now + timedelta(days=9))
    assert signin_mfa.signin_mfa_required(outsider)


def test_ended_assignment_does_not_count(outsider):
    from django.utils import timezone

    now = timezone.now()
    assign(outsider, "Reader", start=now - timedelta(days=9), end=now - timedelta(days=3))
    assert not signin_mfa.signin_mfa_required(outsider)


def test_everyone_setting_asks_a_user_with_no_role(settings, outsider):
    settings.SIGNIN_MFA = "everyone"
    assert signin_mfa.signin_mfa_required(outsider)


def test_off_setting_asks_nobody(settings, pra):
    settings.SIGNIN_MFA = "off"
    assert not signin_mfa.signin_mfa_required(pra)


def test_off_setting_warns_at_check_deploy(settings):
    settings.SIGNIN_MFA = "off"
    warnings = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])
    assert "pim_portal.W010" in [w.id for w in warnings]


def test_privileged_setting_does_not_warn(settings):
    settings.SIGNIN_MFA = "privileged"
    warnings = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])
    assert "pim_portal.W010" not in [w.id for w in warnings]


# The password step ------------------------------------------------------------------------------


def test_right_password_of_a_privileged_user_leads_to_the_code_step_not_a_session(erin):
    client, response = password_step("erin")

    assert response.status_code == 302
    assert response["Location"] == CODE_URL
    assert not signed_in(client)


def test_code_step_page_asks_for_the_code(erin):
    client, _ = password_step("erin")
    page = client.get(CODE_URL).content.decode()
    assert "Enter code" in page
    assert "Enter the code displayed in the authenticator app" in page


def test_user_with_no_role_signs_in_with_the_password_alone(clock, outsider):
    client, response = password_step("oscar")

    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")
    assert signed_in(client)
    assert client.session[signin_mfa.SESSION_MFA] == signin_mfa.MFA_NONE
    assert client.session[signin_mfa.SESSION_METHOD] == signin_mfa.METHOD_PASSWORD


def test_everyone_setting_sends_a_user_with_no_role_to_the_code_step(clock, settings, outsider):
    settings.SIGNIN_MFA = "everyone"
    phone_of(outsider)
    client, response = password_step("oscar")
    assert response["Location"] == CODE_URL
    assert not signed_in(client)


def test_wrong_password_never_reaches_the_code_step(erin):
    client, response = password_step("erin", "wrong")
    assert response.status_code == 200
    assert signin_mfa.SESSION_PENDING not in client.session


def test_code_step_without_a_password_step_goes_back_to_sign_in(erin):
    client = Client()
    response = code_step(client, code_for(device_of(erin)))
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert not signed_in(client)


def test_local_login_rule_still_refuses_before_the_code_step(settings, erin):
    settings.LOCAL_LOGIN = "breakglass"
    client, response = password_step("erin")
    assert response.status_code == 200
    assert "reserved for emergency access accounts" in response.content.decode()
    assert signin_mfa.SESSION_PENDING not in client.session
    assert events(SIGNIN_REFUSED).count() == 1


# The code step --------------------------------------------------------------------------------


def test_right_code_signs_in_and_records_how(erin):
    client, _ = password_step("erin")
    response = code_step(client, code_for(device_of(erin)))

    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")
    assert signed_in(client)
    assert int(client.session["_auth_user_id"]) == erin.pk
    assert client.session[signin_mfa.SESSION_MFA] == "totp"
    assert client.session[signin_mfa.SESSION_METHOD] == "password"
    assert signin_mfa.SESSION_PENDING not in client.session


def test_right_code_is_audited(erin):
    client, _ = password_step("erin")
    code_step(client, code_for(device_of(erin)))
    event = events(signin_mfa.SIGNED_IN).get()
    assert event.actor == erin
    assert event.after == {"method": "password", "mfa": "totp"}


def test_next_page_is_kept_through_the_code_step(erin):
    client, _ = password_step("erin", next_url="/my/roles/")
    response = code_step(client, code_for(device_of(erin)))
    assert response["Location"] == "/my/roles/"


def test_next_page_elsewhere_is_ignored(erin):
    client, _ = password_step("erin", next_url="https://evil.example/")
    response = code_step(client, code_for(device_of(erin)))
    assert response["Location"] == reverse("dashboard")


def test_wrong_code_is_refused_with_the_reason_and_audited(erin):
    client, _ = password_step("erin")
    response = code_step(client, wrong(code_for(device_of(erin))))

    assert response.status_code == 200
    assert not signed_in(client)
    assert response.context["form"].errors.as_data()["code"][0].code == "code_wrong"
    assert "That code is not right" in response.content.decode()
    event = events(signin_mfa.MFA_FAILED).get()
    assert event.target_id == str(erin.pk)
    assert "wrong or already used verification code" in event.message


def test_code_used_once_cannot_be_used_again(erin):
    code = code_for(device_of(erin))
    client, _ = password_step("erin")
    code_step(client, code)
    assert signed_in(client)

    again, _ = password_step("erin")
    response = code_step(again, code)  # the same 30-second step: a replay

    assert not signed_in(again)
    assert response.context["form"].errors.as_data()["code"][0].code == "code_wrong"


def test_right_code_after_a_wrong_one_signs_in(clock, erin):
    client, _ = password_step("erin")
    code_step(client, wrong(code_for(device_of(erin))))
    clock.shift(timedelta(seconds=5))  # django-otp's own back-off after a failure
    code_step(client, code_for(device_of(erin)))
    assert signed_in(client)


# Throttling: five wrong codes lock the account like five wrong passwords ----------------------


def test_five_wrong_codes_lock_the_account(erin):
    client, _ = password_step("erin")
    bad = wrong(code_for(device_of(erin)))
    statuses = [code_step(client, bad).status_code for _ in range(5)]

    assert statuses == [200, 200, 200, 200, 429]
    assert not signed_in(client)
    assert events(signin_mfa.MFA_FAILED).count() == 5
    locked = events("pim.security.signin_locked").get()
    assert "account 'erin' locked for 15 minutes" in locked.message


def test_lock_out_by_codes_refuses_the_password_too(erin):
    client, _ = password_step("erin")
    bad = wrong(code_for(device_of(erin)))
    for _ in range(5):
        code_step(client, bad)

    _, response = password_step("erin")
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()


def test_lock_out_ends_the_half_signed_in_state(erin):
    client, _ = password_step("erin")
    bad = wrong(code_for(device_of(erin)))
    for _ in range(5):
        code_step(client, bad)
    response = code_step(client, code_for(device_of(erin)))
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert not signed_in(client)


def test_wrong_passwords_and_wrong_codes_share_one_limit(erin):
    for n in range(3):
        password_step("erin", f"guess-{n}")
    client, _ = password_step("erin")
    bad = wrong(code_for(device_of(erin)))
    assert code_step(client, bad).status_code == 200
    assert code_step(client, bad).status_code == 429


def test_code_step_of_a_locked_account_refuses_even_a_right_code(clock, erin):
    client, _ = password_step("erin")
    other, _ = password_step("erin")  # a second browser half-signed in
    bad = wrong(code_for(device_of(erin)))
    for _ in range(5):
        code_step(client, bad)
    clock.shift(timedelta(seconds=40))
    response = code_step(other, code_for(device_of(erin)))
    assert response.status_code == 429
    assert not signed_in(other)


def test_lock_out_ends_after_the_cool_off(clock, erin):
    client, _ = password_step("erin")
    bad = wrong(code_for(device_of(erin)))
    for _ in range(5):
        code_step(client, bad)
    clock.shift(timedelta(minutes=16))
    client, _ = password_step("erin")
    code_step(client, code_for(device_of(erin)))
    assert signed_in(client)


# The time limit --------------------------------------------------------------------------------


def test_code_after_the_time_limit_is_refused_and_audited(clock, erin):
    client, _ = password_step("erin")
    clock.shift(timedelta(minutes=5, seconds=1))
    response = code_step(client, code_for(device_of(erin)))

    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert not signed_in(client)
    assert signin_mfa.SESSION_PENDING not in client.session
    assert "took too long" in client.get(reverse("login")).content.decode()
    assert events(signin_mfa.MFA_EXPIRED).get().target_id == str(erin.pk)


def test_code_just_within_the_time_limit_signs_in(clock, erin):
    client, _ = password_step("erin")
    clock.shift(timedelta(minutes=4, seconds=59))
    code_step(client, code_for(device_of(erin)))
    assert signed_in(client)


def test_time_limit_is_a_setting(clock, settings, erin):
    settings.SIGNIN_MFA_TIMEOUT = 60
    client, _ = password_step("erin")
    clock.shift(timedelta(seconds=61))
    code_step(client, code_for(device_of(erin)))
    assert not signed_in(client)


def test_account_deactivated_during_the_code_step_is_not_signed_in(erin):
    client, _ = password_step("erin")
    type(erin).objects.filter(pk=erin.pk).update(is_active=False)
    code_step(client, code_for(device_of(erin)))
    assert not signed_in(client)


def test_password_changed_during_the_code_step_voids_it(erin):
    client, _ = password_step("erin")
    erin.set_password("another-long-passphrase")
    erin.save()
    code_step(client, code_for(device_of(erin)))
    assert not signed_in(client)


# Enrolment: More information required -------------------------------------------------------------


def test_privileged_user_without_authenticator_is_asked_to_add_one(clock, eligible_user):
    client, _ = password_step("erin")
    response = client.get(CODE_URL)
    page = response.content.decode()
    assert "More information required" in page
    assert "set up an authenticator app before you sign in" in page
    assert not TOTPDevice.objects.exists()  # opening the page saves no device


def test_enrolment_with_its_first_code_signs_in(clock, eligible_user):
    from binascii import unhexlify

    from django_otp.oath import totp

    client, _ = password_step("erin")
    client.get(CODE_URL)
    key = client.session[signin_mfa.SESSION_ENROL_SECRET]
    response = client.post(
        CODE_URL, {"name": "Work phone", "code": f"{totp(unhexlify(key)):06d}"}, REMOTE_ADDR=ADDRESS
    )

    assert response.status_code == 302
    assert signed_in(client)
    assert client.session[signin_mfa.SESSION_MFA] == "totp"
    device = TOTPDevice.objects.get(user=eligible_user)
    assert (device.name, device.confirmed) == ("Work phone", True)
    assert events("pim.security.mfa_enrolled").count() == 1


def test_enrolment_with_a_wrong_code_saves_nothing_and_counts(clock, eligible_user):
    from binascii import unhexlify

    from django_otp.oath import totp

    client, _ = password_step("erin")
    client.get(CODE_URL)
    key = client.session[signin_mfa.SESSION_ENROL_SECRET]
    bad = wrong(f"{totp(unhexlify(key)):06d}")
    statuses = [
        client.post(CODE_URL, {"name": "x", "code": bad}, REMOTE_ADDR=ADDRESS).status_code
        for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 200, 429]
    assert not signed_in(client)
    assert not TOTPDevice.objects.exists()
    assert events("pim.security.mfa_enrol_refused").count() == 5


def test_enrolment_is_not_offered_to_a_user_who_has_an_authenticator(erin):
    client, _ = password_step("erin")
    assert "More information required" not in client.get(CODE_URL).content.decode()


# The Django admin's sign-in --------------------------------------------------------------------


@pytest.fixture
def admin_erin(erin):
    erin.is_staff = erin.is_superuser = True
    erin.save()
    return erin


def test_admin_sign_in_of_a_privileged_user_leads_to_the_code_step(admin_erin):
    client, response = password_step("erin", url="admin:login", next_url="/admin/")
    assert response.status_code == 302
    assert response["Location"] == CODE_URL
    assert not signed_in(client)
    assert client.get("/admin/").status_code == 302  # still not in


def test_admin_sign_in_after_the_code_reaches_the_admin(admin_erin):
    client, _ = password_step("erin", url="admin:login", next_url="/admin/")
    response = code_step(client, code_for(device_of(admin_erin)))
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_admin_sign_in_page_still_shows(clock):
    response = Client().get(reverse("admin:login"))
    assert response.status_code == 200
    assert "Django administration" in response.content.decode()


def test_admin_sign_in_of_a_staff_user_with_no_role_needs_no_code(clock):
    make_user("stan", is_staff=True, is_superuser=True)
    client, response = password_step("stan", url="admin:login", next_url="/admin/")
    assert response["Location"] == "/admin/"
    assert signed_in(client)


def test_admin_sign_in_refuses_a_non_staff_user(clock, outsider):
    client, response = password_step("oscar", url="admin:login")
    assert response.status_code == 200
    assert not signed_in(client)


# Emergency access ------------------------------------------------------------------------------


@pytest.fixture
def breakglass(clock):
    user = make_user("breakglass", display_name="Break Glass", is_emergency_access=True)
    assign(user, "Global Administrator", permanent=True)
    phone_of(user)
    return user


def test_emergency_account_is_followed_up_once_it_passes_the_code_step(breakglass):
    client, _ = password_step("breakglass")
    assert not EmergencyAccessUse.objects.exists()  # a password alone is not a sign-in

    code_step(client, code_for(device_of(breakglass)))

    use = EmergencyAccessUse.objects.get()
    assert use.user == breakglass
    assert use.session_key == client.session.session_key
    assert events("pim.security.emergency_access_used").count() == 1


def test_emergency_account_signs_in_with_local_login_off(settings, breakglass):
    settings.LOCAL_LOGIN = "off"
    client, response = password_step("breakglass")
    assert response["Location"] == CODE_URL
    code_step(client, code_for(device_of(breakglass)))
    assert signed_in(client)


def test_group_membership_alone_needs_no_code(clock, outsider):
    Group.objects.create(name="Everyone")
    client, _ = password_step("oscar")
    assert signed_in(client)
