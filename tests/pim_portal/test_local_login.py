"""LOCAL_LOGIN: who may sign in with a local password (all, breakglass, off)."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from audit.models import AuditEvent
from pim_portal.backends import REFUSED_MESSAGES, SIGNIN_REFUSED, local_login
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

BACKENDS = [
    "pim_portal.throttle.SignInThrottleBackend",
    "pim_portal.backends.LocalLoginBackend",
    "guardian.backends.ObjectPermissionBackend",
]


@pytest.fixture(autouse=True)
def _local_login_backend(settings):
    settings.AUTHENTICATION_BACKENDS = BACKENDS


@pytest.fixture
def normal(db):
    return make_user("erin", display_name="Erin Everyday")


@pytest.fixture
def emergency(db):
    return make_user("breakglass", display_name="Break Glass", is_emergency_access=True)


def sign_in(user, password=PASSWORD, url="login"):
    client = Client()
    response = client.post(
        reverse(url), {"username": user.username, "password": password}, REMOTE_ADDR="192.0.2.8"
    )
    return response


def signed_in(response) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.client.session


def refusals():
    return AuditEvent.objects.filter(action=SIGNIN_REFUSED)


def test_local_login_is_all_unless_set(settings):
    if hasattr(settings, "LOCAL_LOGIN"):
        del settings.LOCAL_LOGIN
    assert local_login() == "all"


@pytest.mark.parametrize(
    ("rule", "who"),
    [("all", "normal"), ("all", "emergency"), ("breakglass", "emergency"), ("off", "emergency")],
)
def test_password_sign_in_is_allowed_by_the_rule(settings, request, rule, who):
    settings.LOCAL_LOGIN = rule
    user = request.getfixturevalue(who)

    assert signed_in(sign_in(user))
    assert not refusals().exists()


@pytest.mark.parametrize("rule", ["breakglass", "off"])
def test_password_sign_in_of_a_normal_account_is_refused_with_the_rule_on_the_page(
    settings, normal, rule
):
    settings.LOCAL_LOGIN = rule

    response = sign_in(normal)

    assert response.status_code == 200
    assert "_auth_user_id" not in response.client.session
    assert response.context["form"].non_field_errors() == [REFUSED_MESSAGES[rule]]
    assert escape(REFUSED_MESSAGES[rule]) in response.content.decode()


def test_breakglass_refusal_says_only_emergency_accounts_may(settings, normal):
    settings.LOCAL_LOGIN = "breakglass"

    page = sign_in(normal).content.decode()

    assert "reserved for emergency access accounts" in page


def test_off_refusal_says_password_sign_in_is_off(settings, normal):
    settings.LOCAL_LOGIN = "off"

    page = sign_in(normal).content.decode()

    assert "Sign-in with a password is turned off here." in page


@pytest.mark.parametrize(
    ("rule", "why"),
    [
        ("breakglass", "LOCAL_LOGIN=breakglass allows password sign-in only to emergency access"),
        ("off", "LOCAL_LOGIN=off turns password sign-in off"),
    ],
)
def test_refused_sign_in_is_audited_naming_the_rule(settings, normal, rule, why):
    settings.LOCAL_LOGIN = rule

    sign_in(normal)

    event = refusals().get()
    assert event.message.startswith("Password sign-in as 'erin' refused: ")
    assert why in event.message
    assert event.after == {"why": f"local_login_{rule}"}
    assert (event.target_id, event.ip) == (str(normal.pk), "192.0.2.8")


def test_refused_sign_in_is_not_a_failed_sign_in(settings, normal):
    settings.LOCAL_LOGIN = "off"

    sign_in(normal)

    assert not AuditEvent.objects.filter(action="pim.security.signin_failed").exists()


def test_wrong_password_is_a_failed_sign_in_whatever_the_rule(settings, normal, emergency):
    """A rule applied before the password would tell which accounts are emergency ones."""
    settings.LOCAL_LOGIN = "off"

    pages = [sign_in(user, password="wrong").content.decode() for user in (normal, emergency)]

    assert all("Please enter a correct username and password" in page for page in pages)
    assert AuditEvent.objects.filter(action="pim.security.signin_failed").count() == 2
    assert not refusals().exists()


def test_the_admin_sign_in_page_follows_the_rule(settings):
    settings.LOCAL_LOGIN = "off"
    admin = make_user("root", is_staff=True, is_superuser=True)

    response = sign_in(admin, url="admin:login")

    assert "_auth_user_id" not in response.client.session
    assert escape(REFUSED_MESSAGES["off"]) in response.content.decode()


def test_an_unknown_rule_fails_loudly(settings, normal):
    settings.LOCAL_LOGIN = "sometimes"

    with pytest.raises(ImproperlyConfigured, match="LOCAL_LOGIN='sometimes'"):
        sign_in(normal)


def test_an_inactive_emergency_account_is_not_signed_in(settings, emergency):
    settings.LOCAL_LOGIN = "off"
    emergency.is_active = False
    emergency.save()

    assert not signed_in(sign_in(emergency))
