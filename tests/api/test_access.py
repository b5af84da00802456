"""GET /api/v1/access: is a role in force now, through which assignment, until when; the
clock decides (the rule of time), with the clock moved explicitly."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from assignments.models import AssignmentKind
from tests.api.conftest import ApiClient, error_of, make_token
from tests.factories import assign, make_group, make_user, role

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PROD = "/managementGroups/contoso/subscriptions/prod/"
VM = PROD + "resourceGroups/web/resources/web-vm-01/"


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def api(clock, pra):
    """A Privileged Role Administrator's token: may ask about anyone."""
    return ApiClient(make_token(pra).secret)


@pytest.fixture
def dana(clock):
    return make_user("dana", display_name="Dana Dev", email="dana@example.com")


def z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def answer(api, principal, role_name, scope=None):
    response = api.access(principal, role_name, scope)
    assert response.status_code == 200, response.json_body
    return response.json_body


def test_an_active_assignment_in_force_answers_with_all_its_fields(api, tree, dana):
    held = assign(
        dana,
        "Contributor",
        scope=tree["sub"],
        start=T0 - timedelta(hours=1),
        end=T0 + timedelta(hours=8),
    )

    body = answer(api, "dana", "Contributor", PROD)

    contributor = role("Contributor")
    assert body == {
        "principal": {
            "id": str(dana.pk),
            "type": "user",
            "displayName": "Dana Dev",
            "accountEnabled": True,
        },
        "role": {"id": str(contributor.pk), "displayName": "Contributor", "kind": "resource"},
        "scope": {"id": str(tree["sub"].pk), "path": PROD, "displayName": "Production"},
        "inForce": True,
        "eligible": False,
        "assignments": [
            {
                "id": str(held.pk),
                "kind": "active",
                "memberType": "direct",
                "principal": {
                    "id": str(dana.pk),
                    "type": "user",
                    "displayName": "Dana Dev",
                    "accountEnabled": True,
                },
                "scope": {"id": str(tree["sub"].pk), "path": PROD},
                "inherited": False,
                "start": z(T0 - timedelta(hours=1)),
                "end": z(T0 + timedelta(hours=8)),
                "activatedFrom": None,
            }
        ],
        "until": z(T0 + timedelta(hours=8)),
        "checkedAt": z(T0),
    }


def test_no_assignment_is_not_in_force(api, tree, dana):
    body = answer(api, "dana", "Owner", PROD)
    assert body["inForce"] is False and body["eligible"] is False
    assert body["assignments"] == [] and body["until"] is None


def test_an_assignment_not_yet_started_is_not_in_force_until_its_start(api, tree, dana, clock):
    assign(
        dana,
        "Contributor",
        scope=tree["sub"],
        start=T0 + timedelta(hours=1),
        end=T0 + timedelta(hours=2),
    )
    assert answer(api, "dana", "Contributor", PROD)["inForce"] is False
    clock.move_to(T0 + timedelta(hours=1) - timedelta(seconds=1))
    assert answer(api, "dana", "Contributor", PROD)["inForce"] is False
    clock.move_to(T0 + timedelta(hours=1))
    assert answer(api, "dana", "Contributor", PROD)["inForce"] is True


def test_an_assignment_is_gone_at_the_second_it_ends(api, tree, dana, clock):
    assign(
        dana,
        "Contributor",
        scope=tree["sub"],
        start=T0 - timedelta(hours=1),
        end=T0 + timedelta(hours=1),
    )
    clock.move_to(T0 + timedelta(hours=1) - timedelta(seconds=1))
    assert answer(api, "dana", "Contributor", PROD)["inForce"] is True
    clock.move_to(T0 + timedelta(hours=1))
    body = answer(api, "dana", "Contributor", PROD)
    assert body["inForce"] is False and body["until"] is None and body["assignments"] == []
    assert body["checkedAt"] == z(T0 + timedelta(hours=1))


def test_a_role_held_through_a_group_names_the_group(api, tree, dana):
    operators = make_group("Web operators", dana)
    held = assign(operators, "Contributor", scope=tree["sub"], permanent=True)

    body = answer(api, "dana", "Contributor", PROD)

    assert body["inForce"] is True and body["until"] is None  # permanent
    (through,) = body["assignments"]
    assert through["id"] == str(held.pk) and through["memberType"] == "group"
    assert through["principal"] == {
        "id": str(operators.pk),
        "type": "group",
        "displayName": "Web operators",
    }


def test_a_group_that_is_left_gives_nothing(api, tree, dana):
    operators = make_group("Web operators", dana)
    assign(operators, "Contributor", scope=tree["sub"], permanent=True)
    operators.user_set.remove(dana)
    assert answer(api, "dana", "Contributor", PROD)["inForce"] is False


def test_a_role_held_above_holds_below_it(api, tree, dana):
    assign(dana, "Reader", scope=tree["sub"], permanent=True)

    body = answer(api, "dana", "Reader", VM)

    assert body["inForce"] is True and body["scope"]["path"] == VM
    (held,) = body["assignments"]
    assert held["inherited"] is True and held["scope"]["path"] == PROD


def test_a_role_held_below_does_not_hold_above_it(api, tree, dana):
    assign(dana, "Reader", scope=tree["rg"], permanent=True)
    assert answer(api, "dana", "Reader", PROD)["inForce"] is False


def test_a_role_held_at_a_sibling_does_not_hold(api, tree, dana):
    assign(dana, "Reader", scope=tree["other_sub"], permanent=True)
    assert answer(api, "dana", "Reader", PROD)["inForce"] is False


def test_a_directory_role_held_at_the_root_holds_everywhere(api, tree, dana):
    assign(dana, "Security Reader", permanent=True)
    assert answer(api, "dana", "Security Reader")["scope"]["path"] == "/"
    assert answer(api, "dana", "Security Reader", PROD)["inForce"] is True


def test_eligible_only_is_not_in_force_but_eligible(api, tree, dana):
    assign(dana, "Contributor", scope=tree["mg"], kind=AssignmentKind.ELIGIBLE)

    body = answer(api, "dana", "Contributor", PROD)

    assert body["inForce"] is False and body["eligible"] is True
    assert body["assignments"] == [] and body["until"] is None


def test_an_eligible_assignment_that_ended_is_not_eligible(api, tree, dana, clock):
    assign(
        dana,
        "Contributor",
        scope=tree["sub"],
        kind=AssignmentKind.ELIGIBLE,
        start=T0 - timedelta(days=1),
        end=T0 + timedelta(days=1),
    )
    clock.move_to(T0 + timedelta(days=1))
    assert answer(api, "dana", "Contributor", PROD)["eligible"] is False


def test_an_activation_names_the_eligible_assignment_it_came_from(api, tree, dana):
    eligible = assign(dana, "Contributor", scope=tree["sub"], kind=AssignmentKind.ELIGIBLE)
    active = assign(
        dana, "Contributor", scope=tree["sub"], end=T0 + timedelta(hours=4), activated_from=eligible
    )

    body = answer(api, "dana", "Contributor", PROD)

    assert body["eligible"] is True and body["inForce"] is True
    assert [(a["id"], a["activatedFrom"]) for a in body["assignments"]] == [
        (str(active.pk), str(eligible.pk))
    ]


def test_until_is_the_latest_end_and_null_when_one_is_permanent(api, tree, dana, clock):
    assign(
        dana, "Reader", scope=tree["mg"], start=T0 - timedelta(hours=1), end=T0 + timedelta(hours=2)
    )
    assign(
        dana,
        "Reader",
        scope=tree["sub"],
        start=T0 - timedelta(minutes=5),
        end=T0 + timedelta(hours=5),
    )
    body = answer(api, "dana", "Reader", PROD)
    assert len(body["assignments"]) == 2 and body["until"] == z(T0 + timedelta(hours=5))

    make_group("Readers", dana)
    assign(dana.groups.get(), "Reader", scope=tree["root"], permanent=True)
    body = answer(api, "dana", "Reader", PROD)
    assert len(body["assignments"]) == 3 and body["until"] is None


def test_a_group_principal_holds_what_is_assigned_to_it(api, tree, dana):
    operators = make_group("Web operators", dana)
    assign(operators, "Contributor", scope=tree["sub"], permanent=True)
    assign(dana, "Owner", scope=tree["sub"], permanent=True)  # the member's, not the group's

    held = answer(api, "group:Web operators", "Contributor", PROD)
    not_held = answer(api, "group:web operators", "Owner", PROD)

    assert held["principal"] == {
        "id": str(operators.pk),
        "type": "group",
        "displayName": "Web operators",
    }
    assert held["inForce"] is True and held["assignments"][0]["memberType"] == "direct"
    assert not_held["inForce"] is False


def test_a_deactivated_account_holds_nothing(api, tree, dana):
    assign(dana, "Reader", scope=tree["sub"], permanent=True)
    dana.is_active = False
    dana.save()

    body = answer(api, "dana", "Reader", PROD)

    assert body["principal"]["accountEnabled"] is False
    assert body["inForce"] is False and body["assignments"] == []


@pytest.mark.parametrize("principal", ["dana", "DANA", "dana@example.com", "Dana@Example.com"])
def test_a_user_is_named_by_username_or_e_mail_in_any_case(api, dana, principal):
    assert answer(api, principal, "Reader")["principal"]["id"] == str(dana.pk)


def test_a_user_is_named_by_id(api, dana):
    assert answer(api, str(dana.pk), "Reader")["principal"]["displayName"] == "Dana Dev"


def test_an_e_mail_two_users_share_names_nobody(api, dana):
    make_user("dana2", email="dana@example.com")
    response = api.access("dana@example.com", "Reader")
    assert response.status_code == 404
    assert error_of(response)["target"] == "principal"


def test_a_role_is_named_by_id_or_name_in_any_case(api, dana):
    contributor = role("Contributor")
    assert answer(api, "dana", str(contributor.pk))["role"]["displayName"] == "Contributor"
    assert answer(api, "dana", "contributor")["role"]["id"] == str(contributor.pk)


def test_a_scope_is_named_by_id_or_by_path_with_or_without_its_last_slash(api, tree, dana):
    assert answer(api, "dana", "Reader", str(tree["sub"].pk))["scope"]["path"] == PROD
    assert answer(api, "dana", "Reader", PROD.rstrip("/"))["scope"]["path"] == PROD


def test_the_scope_is_the_directory_by_default(api, tree, dana):
    assert answer(api, "dana", "Reader")["scope"] == {
        "id": str(tree["root"].pk),
        "path": "/",
        "displayName": tree["root"].name,
    }


@pytest.mark.parametrize(
    ("params", "target", "message"),
    [
        ({"principal": "nobody", "role": "Reader"}, "principal", "No user 'nobody'."),
        ({"principal": "group:Nobody", "role": "Reader"}, "principal", "No group 'Nobody'."),
        ({"principal": "dana", "role": "Ownr"}, "role", "No role 'Ownr'."),
        (
            {"principal": "dana", "role": "Reader", "scope": "/nowhere/"},
            "scope",
            "No scope '/nowhere/'.",
        ),
        ({"principal": "dana", "role": "Reader", "scope": "999999"}, "scope", "No scope '999999'."),
    ],
)
def test_an_unknown_principal_role_or_scope_is_404_naming_it(api, dana, params, target, message):
    response = api.get(params=params)
    assert response.status_code == 404
    assert error_of(response)["code"] == "itemNotFound"
    assert error_of(response)["target"] == target and error_of(response)["message"] == message


def test_answers_are_not_cached(api, dana):
    response = api.access("dana", "Reader")
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Type"] == "application/json"
