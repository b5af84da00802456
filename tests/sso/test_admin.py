"""The Django admin shows where an account or group comes from, and does not change it."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from pim_portal.models import GroupIdentity, Source
from tests.factories import make_user


@pytest.fixture
def superuser_client(db):
    admin = make_user("root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    return client


def test_an_sso_accounts_provider_owned_fields_are_read_only(superuser_client):
    user = make_user(
        "olivia", source=Source.OIDC, oidc_issuer="https://idp.example.com", oidc_subject="s-1"
    )

    page = superuser_client.get(f"/admin/pim_portal/user/{user.pk}/change/").content.decode()

    assert "s-1" in page and "https://idp.example.com" in page
    assert 'name="username"' not in page
    assert 'name="email"' not in page
    assert 'name="oidc_subject"' not in page
    assert 'name="time_zone"' in page  # the portal's own fields stay editable


def test_a_local_accounts_fields_stay_editable_but_not_its_link(superuser_client):
    user = make_user("paul")

    page = superuser_client.get(f"/admin/pim_portal/user/{user.pk}/change/").content.decode()

    assert 'name="username"' in page
    assert 'name="oidc_subject"' not in page


def test_group_identities_are_listed_read_only(superuser_client):
    group = Group.objects.create(name="Cloud operators")
    GroupIdentity.objects.create(group=group, source=Source.OIDC, claim_value="cloud-ops")

    listing = superuser_client.get("/admin/pim_portal/groupidentity/")

    assert listing.status_code == 200
    assert "cloud-ops" in listing.content.decode()
    change = superuser_client.get(f"/admin/pim_portal/groupidentity/{group.pk}/change/")
    assert 'name="claim_value"' not in change.content.decode()
