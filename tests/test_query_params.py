"""Bad query strings are ignored or refused, never a server error (issue 7, defect 6).

`?q=%00` reached PostgreSQL, which refuses NUL; `?role=%C2%B2` is a Unicode digit that
`str.isdigit()` accepts and `int()` refuses. Both answered 500 before.
"""

import pytest
from django.urls import reverse

from pim_portal.params import clean_text, positive_int
from tests.factories import role

pytestmark = pytest.mark.django_db

SUPERSCRIPT_TWO = "%C2%B2"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("12", 12),
        ("²", None),
        ("٣", None),
        ("0", None),
        ("-1", None),
        ("1e3", None),
        ("9" * 19, None),
    ],
)
def test_positive_int_takes_only_ascii_ids_the_database_can_hold(value, expected):
    assert positive_int(value) == expected


def test_clean_text_drops_nul_and_control_characters():
    assert clean_text(" Erin\x00\x07 ") == "Erin"


@pytest.mark.parametrize(
    "url_name", ["assignments:directory_roles", "assignments:resources", "assignments:my_roles"]
)
def test_nul_in_the_search_is_ignored(client_for, pra, resource_owner, url_name):
    viewer = resource_owner if url_name == "assignments:resources" else pra
    response = client_for(viewer).get(reverse(url_name) + "?q=%00&tab=%00")
    assert response.status_code == 200


def test_nul_in_a_role_members_search_is_ignored(client_for, pra):
    url = reverse("assignments:role_detail", args=[role("Global Administrator").pk])
    response = client_for(pra).get(url + "?q=a%00b")
    assert response.status_code == 200
    assert response.context["q"] == "ab"


def test_unicode_digit_role_and_scope_on_the_add_page_are_ignored(client_for, pra):
    url = reverse("assignments:assignment_add")
    response = client_for(pra).get(f"{url}?role={SUPERSCRIPT_TWO}&scope={SUPERSCRIPT_TWO}")
    assert response.status_code == 200
    assert "role" not in response.context["form"].initial


def test_unicode_digit_role_on_the_csv_export_is_a_404(client_for, resource_owner, tree):
    url = reverse("assignments:scope_export", args=[tree["sub"].pk])
    assert client_for(resource_owner).get(f"{url}?role={SUPERSCRIPT_TWO}").status_code == 404
    assert client_for(resource_owner).get(f"{url}?role={'9' * 30}").status_code == 404


def test_unicode_digit_scope_on_my_roles_is_ignored(client_for, eligible_user):
    response = client_for(eligible_user).get(
        reverse("assignments:my_roles") + f"?scope={SUPERSCRIPT_TWO}"
    )
    assert response.status_code == 200
    assert response.context["at_scope"] is None


def test_unicode_digit_on_the_activate_page_sends_back_to_my_roles(client_for, eligible_user):
    response = client_for(eligible_user).get(
        reverse("assignments:activate") + f"?eligible={SUPERSCRIPT_TWO}"
    )
    assert response.status_code == 302
