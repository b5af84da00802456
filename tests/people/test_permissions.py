"""The permission matrix of the Users and Groups pages: every URL × persona × GET/POST.

Global Administrators change everything; User Administrators change users and ordinary
groups; Privileged Role Administrators and Global Readers (directory viewers) only look; a
plain user gets 403 for the lists and 404 for one user or group, so ids do not leak. Forms are
posted empty: who may gets the form back with its errors (200). Every refusal is audited.
"""

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from tests.factories import make_group, make_user

pytestmark = pytest.mark.django_db

PERSONAS = ["global_admin", "user_admin", "pra", "global_reader", "outsider"]


def expect(ga, ua, pra, reader, plain):
    return dict(zip(PERSONAS, [ga, ua, pra, reader, plain], strict=True))


VIEW_LIST = expect(200, 200, 200, 200, 403)
VIEW_OBJECT = expect(200, 200, 200, 200, 404)
CHANGE_FORM = expect(200, 200, 403, 403, 404)
CHANGE_LIST = expect(200, 200, 403, 403, 403)
ALL_405 = expect(405, 405, 405, 405, 405)
REDIRECT_WHEN_ALLOWED = expect(302, 302, 403, 403, 404)


@pytest.fixture
def world(db):
    member = make_user("mo", display_name="Mo Member")
    group = make_group("Helpdesk", member)
    return {"user": member, "group": group}


CASES = [
    ("people:user_list", lambda w: [], "get", VIEW_LIST),
    ("people:user_list", lambda w: [], "post", ALL_405),
    ("people:group_list", lambda w: [], "get", VIEW_LIST),
    ("people:group_list", lambda w: [], "post", ALL_405),
    ("people:user_create", lambda w: [], "get", CHANGE_LIST),
    ("people:user_create", lambda w: [], "post", CHANGE_LIST),
    ("people:user_detail", lambda w: [w["user"].pk], "get", VIEW_OBJECT),
    ("people:user_detail", lambda w: [w["user"].pk], "post", ALL_405),
    ("people:user_edit", lambda w: [w["user"].pk], "get", CHANGE_FORM),
    ("people:user_edit", lambda w: [w["user"].pk], "post", CHANGE_FORM),
    ("people:user_deactivate", lambda w: [w["user"].pk], "get", CHANGE_FORM),
    ("people:user_reactivate", lambda w: [w["user"].pk], "get", CHANGE_FORM),
    ("people:user_mfa_reset", lambda w: [w["user"].pk], "get", CHANGE_FORM),
    ("people:user_mfa_reset", lambda w: [w["user"].pk], "post", REDIRECT_WHEN_ALLOWED),
    ("people:group_detail", lambda w: [w["group"].pk], "get", VIEW_OBJECT),
    ("people:group_detail", lambda w: [w["group"].pk], "post", CHANGE_FORM),
    (
        "people:group_member_remove",
        lambda w: [w["group"].pk, w["user"].pk],
        "post",
        REDIRECT_WHEN_ALLOWED,
    ),
    ("people:group_member_remove", lambda w: [w["group"].pk, w["user"].pk], "get", ALL_405),
]


def _params():
    for number, (name, args, method, expected) in enumerate(CASES):
        for persona in ["anonymous", *PERSONAS]:
            status = 302 if persona == "anonymous" else expected[persona]
            yield pytest.param(
                name, args, method, persona, status, id=f"{number:02d}-{name}-{method}-{persona}"
            )


@pytest.mark.parametrize(("name", "args", "method", "persona", "expected"), list(_params()))
def test_people_permission_matrix(request, world, name, args, method, persona, expected):
    client = Client()
    if persona != "anonymous":
        client.force_login(request.getfixturevalue(persona))
    url = reverse(name, args=args(world))

    response = getattr(client, method)(url)

    assert response.status_code == expected, f"{method.upper()} {url} as {persona}"
    if persona == "anonymous":
        assert response["Location"].startswith(reverse("login"))


def test_every_people_page_is_in_the_matrix():
    from pim_portal.people import urls

    names = {f"people:{pattern.name}" for pattern in urls.urlpatterns}
    assert names - {case[0] for case in CASES} == set()


def refusal(user) -> AuditEvent:
    return AuditEvent.objects.filter(action="pim.security.forbidden", actor_id=user.pk).get()


def test_plain_user_is_refused_the_list_with_the_rule(outsider):
    client = Client()
    client.force_login(outsider)
    client.get(reverse("people:user_list"))
    assert "only User Administrators, Global Administrators and directory readers" in (
        refusal(outsider).message
    )


def test_reader_is_refused_a_change_with_the_rule(world, global_reader):
    client = Client()
    client.force_login(global_reader)
    client.post(reverse("people:user_edit", args=[world["user"].pk]))
    assert "only a User Administrator or Global Administrator may" in refusal(global_reader).message


def test_pra_is_refused_an_ordinary_groups_membership_with_the_rule(world, pra):
    client = Client()
    client.force_login(pra)
    client.post(reverse("people:group_member_remove", args=[world["group"].pk, world["user"].pk]))
    assert "only a User Administrator or Global Administrator may" in refusal(pra).message
    assert world["group"].user_set.filter(pk=world["user"].pk).exists()


def test_navigation_shows_users_and_groups_to_those_who_may_see_them(user_admin, outsider):
    admin_client, plain = Client(), Client()
    admin_client.force_login(user_admin)
    plain.force_login(outsider)
    users = reverse("people:user_list")
    assert f'href="{users}"' in admin_client.get(reverse("account")).content.decode()
    assert f'href="{users}"' not in plain.get(reverse("account")).content.decode()
