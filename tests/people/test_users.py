"""Users in the portal: create, edit, deactivate and reactivate, reset MFA; the guard rails
(a User Administrator does not touch administrators, nobody deactivates themselves) and the
fields an identity provider owns."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from assignments.models import Assignment, AssignmentKind
from audit.models import AuditEvent
from pim_portal.models import Source
from tests.factories import PASSWORD, assign, make_group, make_user
from tests.people.conftest import phone_of

pytestmark = pytest.mark.django_db

User = get_user_model()


def as_(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def refusals(actor):
    return AuditEvent.objects.filter(action="pim.security.forbidden", actor_id=actor.pk)


@pytest.fixture
def mo(db):
    return make_user("mo", display_name="Mo Member")


@pytest.fixture
def scim_user(db):
    return make_user("sky", display_name="Sky Scim", source=Source.SCIM, external_id="ext-1")


@pytest.fixture
def sso_user(db):
    return make_user("olga", display_name="Olga Oidc", source=Source.OIDC)


# Create ------------------------------------------------------------------------------------


def create(client, **fields):
    data = {
        "username": "newbie",
        "display_name": "New Bie",
        "email": "newbie@example.com",
        "time_zone": "Europe/Berlin",
        "password_choice": "generate",
        **fields,
    }
    return client.post(reverse("people:user_create"), data)


def test_user_admin_creates_a_local_user_with_a_one_time_password_shown_once(user_admin):
    response = create(as_(user_admin))

    assert response.status_code == 200
    user = User.objects.get(username="newbie")
    assert (user.display_name, user.email, user.time_zone, user.source) == (
        "New Bie",
        "newbie@example.com",
        "Europe/Berlin",
        Source.LOCAL,
    )
    password = response.context["one_time_password"]
    assert len(password) == 20 and user.check_password(password)
    assert password in response.content.decode()
    event = AuditEvent.objects.get(action="pim.user.created")
    assert event.actor == user_admin and password not in str(event.after)


def test_created_user_with_a_set_password_signs_in(clock, user_admin):
    create(as_(user_admin), password_choice="set", password="a-long-enough-passphrase")
    client = Client()
    client.post(reverse("login"), {"username": "newbie", "password": "a-long-enough-passphrase"})
    assert "_auth_user_id" in client.session


def test_a_weak_password_is_refused_with_the_rule(user_admin):
    response = create(as_(user_admin), password_choice="set", password="12345678")
    assert response.status_code == 200
    assert not User.objects.filter(username="newbie").exists()
    assert "This password is too common." in response.content.decode()


def test_no_password_user_cannot_sign_in_with_one(user_admin):
    create(as_(user_admin), password_choice="none")
    assert not User.objects.get(username="newbie").has_usable_password()


def test_a_taken_username_is_refused_whatever_its_case(user_admin, mo):
    response = create(as_(user_admin), username="MO")
    assert response.context["form"].errors.as_data()["username"][0].code == "username_taken"
    assert User.objects.filter(username__iexact="mo").count() == 1


def test_an_unknown_time_zone_is_refused(user_admin):
    response = create(as_(user_admin), time_zone="Mars/Olympus_Mons")
    assert "is not a time zone" in response.content.decode()
    assert not User.objects.filter(username="newbie").exists()


def test_an_unknown_manager_is_refused(user_admin):
    response = create(as_(user_admin), manager="nobody-here")
    assert response.context["form"].errors.as_data()["manager"][0].code == "manager_unknown"


def test_manager_is_found_by_e_mail(user_admin, mo):
    create(as_(user_admin), manager="MO@example.com")
    assert User.objects.get(username="newbie").manager == mo


# Edit --------------------------------------------------------------------------------------


def edit(client, user, **fields):
    data = {
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "manager": "",
        "time_zone": user.time_zone,
        **fields,
    }
    return client.post(reverse("people:user_edit", args=[user.pk]), data)


def test_user_admin_edits_a_local_user_audited(user_admin, mo):
    response = edit(as_(user_admin), mo, display_name="Maurice Member", email="mm@example.com")

    assert response.status_code == 302
    mo.refresh_from_db()
    assert (mo.display_name, mo.email) == ("Maurice Member", "mm@example.com")
    event = AuditEvent.objects.get(action="pim.user.changed")
    assert event.before == {"display_name": "Mo Member", "email": "mo@example.com"}
    assert event.after == {"display_name": "Maurice Member", "email": "mm@example.com"}


@pytest.mark.parametrize(
    ("field", "value"),
    [("username", "sky2"), ("display_name", "Other"), ("email", "other@example.com")],
)
def test_provider_owned_field_of_a_scim_user_is_refused(user_admin, scim_user, field, value):
    response = edit(as_(user_admin), scim_user, **{field: value})

    assert response.status_code == 200
    errors = response.context["form"].errors.as_data()[field]
    assert errors[0].code == "provider_owned"
    scim_user.refresh_from_db()
    assert getattr(scim_user, field) != value
    assert not AuditEvent.objects.filter(action="pim.user.changed").exists()


def test_provider_owned_field_of_an_sso_user_is_refused(user_admin, sso_user):
    response = edit(as_(user_admin), sso_user, email="other@example.com")
    assert response.context["form"].errors.as_data()["email"][0].code == "provider_owned"


def test_fields_the_provider_does_not_own_stay_editable(user_admin, scim_user, mo):
    response = edit(as_(user_admin), scim_user, manager="mo", time_zone="Asia/Tokyo")
    assert response.status_code == 302
    scim_user.refresh_from_db()
    assert (scim_user.manager, scim_user.time_zone) == (mo, "Asia/Tokyo")


def test_provider_users_page_says_where_to_change_them(user_admin, scim_user):
    page = as_(user_admin).get(reverse("people:user_detail", args=[scim_user.pk]))
    text = page.content.decode()
    assert "provisioned by SCIM from your identity provider" in text
    assert "SCIM provisioning" in text  # the source badge
    edit_page = as_(user_admin).get(reverse("people:user_edit", args=[scim_user.pk]))
    assert edit_page.content.decode().count("readonly") >= 3


def test_nobody_is_their_own_manager(user_admin, mo):
    response = edit(as_(user_admin), mo, manager="mo")
    assert response.context["form"].errors.as_data()["manager"][0].code == "manager_self"


# Guard rails: administrators are changed only by a Global Administrator ------------------------


@pytest.fixture
def eligible_ga(db):
    user = make_user("gale", display_name="Gale Eligible")
    assign(user, "Global Administrator", kind=AssignmentKind.ELIGIBLE)
    return user


@pytest.mark.parametrize(
    "url", ["people:user_edit", "people:user_deactivate", "people:user_mfa_reset"]
)
def test_user_admin_may_not_change_an_eligible_global_administrator(user_admin, eligible_ga, url):
    response = as_(user_admin).post(reverse(url, args=[eligible_ga.pk]))

    assert response.status_code == 403
    assert "only a Global Administrator may" in refusals(user_admin).get().message
    eligible_ga.refresh_from_db()
    assert eligible_ga.is_active


def test_user_admin_may_not_change_a_pra_through_a_group(user_admin, mo):
    assign(make_group("Tier 0", mo), "Privileged Role Administrator", permanent=True)
    response = as_(user_admin).post(reverse("people:user_deactivate", args=[mo.pk]))
    assert response.status_code == 403
    assert "holds or is eligible for an administrator role" in refusals(user_admin).get().message


def test_user_admin_may_not_change_someone_who_becomes_an_administrator_later(user_admin, mo):
    now = timezone.now()
    assign(mo, "Global Administrator", start=now + timedelta(days=1), end=now + timedelta(days=2))
    assert as_(user_admin).post(reverse("people:user_mfa_reset", args=[mo.pk])).status_code == 403


def test_user_admin_may_not_change_a_superuser(user_admin):
    root = make_user("root", is_superuser=True, is_staff=True)
    assert as_(user_admin).post(reverse("people:user_mfa_reset", args=[root.pk])).status_code == 403


def test_global_administrator_may_deactivate_an_eligible_global_administrator(
    global_admin, eligible_ga
):
    response = as_(global_admin).post(
        reverse("people:user_deactivate", args=[eligible_ga.pk]), {"reason": "Left"}
    )
    assert response.status_code == 302
    eligible_ga.refresh_from_db()
    assert not eligible_ga.is_active


def test_user_admin_page_shows_no_actions_for_an_administrator(user_admin, eligible_ga):
    page = as_(user_admin).get(reverse("people:user_detail", args=[eligible_ga.pk]))
    assert not page.context["may_edit"] and not page.context["may_deactivate"]
    assert "only a Global Administrator changes this account" in page.content.decode()


def test_nobody_deactivates_themselves(global_admin):
    response = as_(global_admin).post(reverse("people:user_deactivate", args=[global_admin.pk]))
    assert response.status_code == 403
    assert "nobody does this to their own account" in refusals(global_admin).get().message


def test_nobody_resets_their_own_mfa_here(user_admin):
    response = as_(user_admin).post(reverse("people:user_mfa_reset", args=[user_admin.pk]))
    assert response.status_code == 403


# Deactivate and reactivate ------------------------------------------------------------------------


def test_deactivation_ends_access_now_and_the_account_cannot_sign_in(clock, user_admin, mo):
    activation = assign(mo, "Reader", kind=AssignmentKind.ACTIVE)
    client = Client()
    assert client.login(username="mo", password=PASSWORD)

    response = as_(user_admin).post(
        reverse("people:user_deactivate", args=[mo.pk]), {"reason": "Left the company"}
    )

    assert response.status_code == 302
    mo.refresh_from_db()
    assert not mo.is_active
    activation.refresh_from_db()
    assert activation.end <= timezone.now()
    assert not Assignment.objects.in_force().filter(pk=activation.pk).exists()
    event = AuditEvent.objects.get(action="pim.user.deactivated")
    assert (event.actor, event.message) == (user_admin, "Left the company")
    assert client.get(reverse("dashboard")).status_code == 302  # the session is gone
    assert not Client().login(username="mo", password=PASSWORD)


def test_reactivation_makes_the_account_active_again(user_admin, mo):
    as_(user_admin).post(reverse("people:user_deactivate", args=[mo.pk]))
    response = as_(user_admin).post(reverse("people:user_reactivate", args=[mo.pk]))
    assert response.status_code == 302
    mo.refresh_from_db()
    assert mo.is_active
    assert AuditEvent.objects.filter(action="pim.user.reactivated").count() == 1


def test_scim_users_active_is_the_providers(user_admin, scim_user):
    client = as_(user_admin)
    response = client.post(reverse("people:user_deactivate", args=[scim_user.pk]), follow=True)
    scim_user.refresh_from_db()
    assert scim_user.is_active
    assert "provisioned by SCIM" in response.content.decode()


def test_sso_user_can_be_deactivated_here(user_admin, sso_user):
    as_(user_admin).post(reverse("people:user_deactivate", args=[sso_user.pk]))
    sso_user.refresh_from_db()
    assert not sso_user.is_active


# Reset MFA ----------------------------------------------------------------------------------------


def test_mfa_reset_removes_every_authenticator_audited_and_mailed(
    user_admin, mo, django_capture_on_commit_callbacks
):
    phone_of(mo)
    phone_of(mo, name="Tablet")
    with django_capture_on_commit_callbacks(execute=True):
        response = as_(user_admin).post(reverse("people:user_mfa_reset", args=[mo.pk]))

    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=mo).exists()
    event = AuditEvent.objects.get(action="pim.security.mfa_reset")
    assert event.actor == user_admin and event.target_id == str(mo.pk)
    assert [m.to for m in mail.outbox] == [["mo@example.com"]]
    assert "removed every authenticator app" in mail.outbox[0].body
    assert "Uma Useradmin" in mail.outbox[0].body


def test_after_a_reset_the_next_sign_in_asks_to_add_an_authenticator(clock, user_admin, mo):
    assign(mo, "Reader", kind=AssignmentKind.ELIGIBLE)
    phone_of(mo)
    as_(user_admin).post(reverse("people:user_mfa_reset", args=[mo.pk]))
    client = Client()
    client.post(reverse("login"), {"username": "mo", "password": PASSWORD})
    assert "More information required" in client.get(reverse("login_code")).content.decode()


# The user's page ---------------------------------------------------------------------------------


def test_user_page_shows_groups_assignments_and_sign_in_methods(global_admin, mo):
    make_group("Helpdesk", mo)
    assign(mo, "Security Reader", kind=AssignmentKind.ELIGIBLE)
    phone_of(mo, name="Mo's phone")
    page = as_(global_admin).get(reverse("people:user_detail", args=[mo.pk])).content.decode()
    assert "Helpdesk" in page
    assert "Security Reader" in page and "Eligible" in page
    assert "Mo&#x27;s phone" in page


def test_user_admin_sees_that_assignments_exist_without_seeing_them(user_admin, mo):
    assign(mo, "Security Reader", kind=AssignmentKind.ELIGIBLE)
    page = as_(user_admin).get(reverse("people:user_detail", args=[mo.pk]))
    assert page.context["assignments"] == []
    assert "1 assignment in all, including some you may not see" in page.content.decode()


def test_unknown_user_is_a_404(global_admin):
    assert as_(global_admin).get(reverse("people:user_detail", args=[999999])).status_code == 404
