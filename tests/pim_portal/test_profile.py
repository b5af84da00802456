"""The profile at /account/: display name (local accounts), time zone (everyone, from the
list), and how this session signed in."""

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from pim_portal import signin_mfa
from pim_portal.models import Source
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def as_(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def save(client, **data):
    return client.post(reverse("account"), data)


@pytest.fixture
def una(db):
    return make_user("una", display_name="Una Local")


def test_local_user_changes_display_name_and_time_zone_audited(una):
    response = save(as_(una), display_name="Una L.", time_zone="Europe/Paris")

    assert response.status_code == 302
    una.refresh_from_db()
    assert (una.display_name, una.time_zone) == ("Una L.", "Europe/Paris")
    event = AuditEvent.objects.get(action="pim.user.changed")
    assert event.actor == una
    assert event.before == {"display_name": "Una Local", "time_zone": "UTC"}
    assert event.after == {"display_name": "Una L.", "time_zone": "Europe/Paris"}


def test_pages_show_times_in_the_chosen_zone(una):
    client = as_(una)
    save(client, display_name="Una Local", time_zone="Asia/Tokyo")
    assert "times shown in Asia/Tokyo" in client.get(reverse("account")).content.decode()


def test_an_unknown_time_zone_is_refused_and_nothing_changes(una):
    response = save(as_(una), display_name="Una New", time_zone="Mars/Olympus")

    assert response.status_code == 200
    assert "“Mars/Olympus” is not a time zone: pick one from the list." in (
        response.content.decode()
    )
    una.refresh_from_db()
    assert (una.display_name, una.time_zone) == ("Una Local", "UTC")
    assert not AuditEvent.objects.filter(action="pim.user.changed").exists()


def test_an_empty_display_name_is_refused(una):
    response = save(as_(una), display_name="  ", time_zone="UTC")
    assert response.status_code == 200
    una.refresh_from_db()
    assert una.display_name == "Una Local"


def test_saving_nothing_new_writes_no_event(una):
    save(as_(una), display_name="Una Local", time_zone="UTC")
    assert not AuditEvent.objects.filter(action="pim.user.changed").exists()


def test_a_providers_user_may_not_change_their_name(db):
    user = make_user("sky", display_name="Sky Scim", source=Source.SCIM)
    response = save(as_(user), display_name="Someone Else", time_zone="UTC")
    assert response.status_code == 200
    assert response.context["form"].errors.as_data()["display_name"][0].code == "provider_owned"
    user.refresh_from_db()
    assert user.display_name == "Sky Scim"


def test_a_providers_user_changes_their_time_zone(db):
    user = make_user("olga", display_name="Olga", source=Source.OIDC)
    response = save(as_(user), time_zone="America/New_York")  # the name left out: read-only
    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.display_name, user.time_zone) == ("Olga", "America/New_York")


def test_the_page_shows_how_this_session_signed_in(una):
    client = Client()
    client.post(reverse("login"), {"username": "una", "password": PASSWORD})
    page = client.get(reverse("account")).content.decode()
    assert "Password" in page
    assert signin_mfa.MFA_LABELS[signin_mfa.MFA_NONE] in page
    assert "Kept in the portal" in page


def test_the_page_shows_an_authenticator_code_sign_in(una):
    client = as_(una)
    session = client.session
    session[signin_mfa.SESSION_METHOD] = signin_mfa.METHOD_SSO
    session[signin_mfa.SESSION_MFA] = signin_mfa.MFA_PROVIDER
    session.save()
    page = client.get(reverse("account")).content.decode()
    assert "Single sign-on" in page
    assert "Multifactor authentication at the identity provider" in page
