"""Error pages: the portal's layout, what happened in plain words, and where to go next."""

import pytest
from django.conf import settings
from django.template.loader import get_template
from django.test import RequestFactory
from django.urls import reverse
from django.views import defaults

NAVIGATION = 'class="navbar navbar-expand-lg'


@pytest.fixture(autouse=True)
def _debug_off():
    # Django's test runner turns DEBUG off, so these are the pages users see in production.
    assert settings.DEBUG is False


def test_forbidden_page_has_the_navigation_and_links_onwards(client_for, outsider):
    response = client_for(outsider).get(reverse("assignments:directory_roles"))

    content = response.content.decode()
    assert response.status_code == 403
    assert NAVIGATION in content
    assert "You may not open this page" in content
    assert "Refused: view directory roles" in content
    assert f'href="{reverse("assignments:my_roles")}"' in content
    assert f'href="{reverse("dashboard")}"' in content


def test_not_found_page_has_the_navigation_and_links_onwards(client_for, outsider, tree):
    response = client_for(outsider).get(reverse("assignments:scope_detail", args=[tree["sub"].pk]))

    content = response.content.decode()
    assert response.status_code == 404
    assert NAVIGATION in content
    assert "There is nothing here" in content
    assert f'href="{reverse("assignments:my_roles")}"' in content


def test_not_found_page_does_not_repeat_the_private_reason(client_for, outsider, tree):
    response = client_for(outsider).get(reverse("assignments:scope_detail", args=[tree["sub"].pk]))

    assert tree["sub"].path not in response.content.decode()


def test_not_found_for_an_unknown_address_uses_the_layout(client_for, outsider):
    response = client_for(outsider).get("/no-such-page/")

    assert response.status_code == 404
    assert NAVIGATION in response.content.decode()


def test_not_found_signed_out_offers_sign_in(client):
    response = client.get("/no-such-page/")

    content = response.content.decode()
    assert response.status_code == 404
    assert NAVIGATION not in content
    assert f'href="{reverse("login")}"' in content


def test_bad_request_page_uses_the_layout(rf_user_request):
    response = defaults.bad_request(rf_user_request, Exception("bad"))

    content = response.content.decode()
    assert response.status_code == 400
    assert NAVIGATION in content
    assert "could not read that request" in content


def test_server_error_page_renders_without_a_request_or_the_database():
    # No database fixture: any query here raises, as it would with the database down.
    response = defaults.server_error(RequestFactory().get("/"))

    content = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong on our side" in content
    assert f'href="{reverse("assignments:my_roles")}"' in content


def test_server_error_template_stands_alone():
    # It must not extend base.html, whose navigation reads grants from the database.
    source = get_template("500.html").template.source
    assert "{% extends" not in source


@pytest.fixture
def rf_user_request(outsider):
    request = RequestFactory().get("/")
    request.user = outsider
    return request
