"""SCIM Users: create, read, replace, patch (Entra ID's and Okta's ways), delete, list."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assignments import services
from assignments.authz import grants_for
from assignments.models import Assignment, AssignmentKind, RequestAction, RoleRequest
from audit.models import AuditEvent
from pim_portal.models import Source
from tests.assignments.activation_support import relax
from tests.factories import assign, make_group, make_user
from tests.scim.conftest import USER_SCHEMA, patch_body, user_payload

User = get_user_model()
TOKEN_ACTOR = 'system (SCIM token "okta")'
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@pytest.fixture
def alice(scim):
    response = scim.post("Users", user_payload(displayName="Alice E."))
    assert response.status_code == 201, response.json_body
    return User.objects.get(pk=response.json_body["id"])


# --- Create and read ---------------------------------------------------------------------------


def test_a_created_user_is_scim_sourced_active_and_audited(scim):
    response = scim.post("Users", user_payload(displayName="Alice E."))

    assert response.status_code == 201
    assert response["Content-Type"] == "application/scim+json"
    body = response.json_body
    user = User.objects.get(pk=body["id"])
    assert (user.username, user.source, user.external_id) == (
        "alice@example.com",
        Source.SCIM,
        "ext-alice@example.com",
    )
    assert (user.first_name, user.last_name, user.email) == (
        "Alice",
        "Example",
        "alice@example.com",
    )
    assert user.is_active and not user.has_usable_password()
    assert body["meta"]["location"].endswith(f"/scim/v2/Users/{user.pk}")
    event = AuditEvent.objects.get(action="pim.scim.user_created")
    assert event.actor_name == TOKEN_ACTOR and event.target_id == str(user.pk)


def test_a_created_user_reads_back(scim, alice):
    body = scim.get(f"Users/{alice.pk}").json_body
    assert body["userName"] == "alice@example.com"
    assert body["displayName"] == "Alice E."
    assert body["name"] == {"givenName": "Alice", "familyName": "Example"}
    assert body["emails"] == [{"value": "alice@example.com", "type": "work"}]
    assert body["active"] is True
    assert body["schemas"] == [USER_SCHEMA]


def test_a_user_without_active_is_created_active(scim):
    payload = user_payload()
    del payload["active"]
    response = scim.post("Users", payload)
    assert response.status_code == 201 and response.json_body["active"] is True


def test_an_unknown_user_is_404(scim):
    response = scim.get("Users/999999")
    assert response.status_code == 404
    assert response.json_body["status"] == "404"


def test_the_groups_of_a_user_are_listed(scim, alice):
    group = make_group("Ops", alice)
    body = scim.get(f"Users/{alice.pk}").json_body
    assert [g["value"] for g in body["groups"]] == [str(group.pk)]
    assert body["groups"][0]["display"] == "Ops"


def test_the_manager_is_set_through_the_enterprise_extension(scim, alice):
    boss = make_user("boss")
    payload = user_payload("bob@example.com")
    payload["schemas"].append(ENTERPRISE)
    payload[ENTERPRISE] = {"manager": {"value": str(boss.pk)}, "department": "ignored"}
    response = scim.post("Users", payload)
    assert response.status_code == 201, response.json_body
    assert User.objects.get(pk=response.json_body["id"]).manager == boss
    assert response.json_body[ENTERPRISE]["manager"]["value"] == str(boss.pk)


def test_entra_sets_the_manager_with_a_bare_id(scim, alice):
    boss = make_user("boss")
    op = {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": str(boss.pk)}
    response = scim.patch(f"Users/{alice.pk}", patch_body(op))
    assert response.status_code in (200, 204), response.json_body
    alice.refresh_from_db()
    assert alice.manager == boss


# --- Lists, filters and paging -----------------------------------------------------------------


@pytest.fixture
def people(scim):
    for name, given in [("ann", "Ann"), ("anna", "Anna"), ("bert", "Bert"), ("carl", "Carl")]:
        payload = user_payload(f"{name}@corp.example", externalId=f"E-{name.upper()}")
        payload["name"] = {"givenName": given, "familyName": "Corp"}
        payload["displayName"] = f"{given} of Corp"
        assert scim.post("Users", payload).status_code == 201


def _names(response):
    assert response.status_code == 200, response.json_body
    return sorted(r["userName"] for r in response.json_body["Resources"])


@pytest.mark.parametrize(
    "query, expected",
    [
        ('userName eq "ANN@corp.example"', ["ann@corp.example"]),
        ('userName sw "ann"', ["ann@corp.example", "anna@corp.example"]),
        ('userName co "ert"', ["bert@corp.example"]),
        ('externalId eq "E-BERT"', ["bert@corp.example"]),
        ('externalId eq "e-bert"', []),  # caseExact
        ('displayName co "anna"', ["anna@corp.example"]),
        ('emails co "carl@"', ["carl@corp.example"]),
        ('emails.value eq "carl@corp.example"', ["carl@corp.example"]),
        ('emails[type eq "work" and value sw "bert"]', ["bert@corp.example"]),
        ('userName sw "ann" and displayName co "anna"', ["anna@corp.example"]),
        (
            'userName eq "bert@corp.example" or userName eq "carl@corp.example"',
            ["bert@corp.example", "carl@corp.example"],
        ),
        (
            'not (userName sw "a") and name.familyName eq "corp"',
            ["bert@corp.example", "carl@corp.example"],
        ),
    ],
)
def test_filters(scim, people, query, expected):
    response = scim.get("Users", QUERY_STRING=f"filter={query}")
    assert _names(response) == expected


def test_paging_with_start_index_and_count(scim, people):
    # The token's owner, Gina, is a user too: five in all, in id order.
    first = scim.get("Users", QUERY_STRING="startIndex=1&count=2").json_body
    second = scim.get("Users", QUERY_STRING="startIndex=3&count=2").json_body
    assert first["totalResults"] == second["totalResults"] == 5
    assert (first["startIndex"], first["itemsPerPage"]) == (1, 2)
    assert second["startIndex"] == 3
    ids = [r["id"] for r in first["Resources"] + second["Resources"]]
    assert len(set(ids)) == 4 and ids == sorted(ids, key=int)


def test_count_zero_answers_the_total_only(scim, people):
    body = scim.get("Users", QUERY_STRING="count=0").json_body
    assert body["totalResults"] == 5 and not body.get("Resources")


def test_a_list_of_users_takes_as_many_queries_for_many_users_as_for_few(scim):
    scim.get("Users")  # the token's first use this minute is audited: not part of a list

    def queries_for_list():
        with CaptureQueriesContext(connection) as captured:
            response = scim.get("Users", QUERY_STRING="count=100")
        assert response.status_code == 200
        return len(captured), response.json_body["totalResults"]

    group = make_group("Everyone")
    for n in range(3):
        group.user_set.add(make_user(f"few{n}"))
    few, total_few = queries_for_list()
    for n in range(40):
        group.user_set.add(make_user(f"many{n}", manager=User.objects.first()))
    many, total_many = queries_for_list()
    assert total_many == total_few + 40
    assert many == few


# --- Replace (PUT, as Okta sends it) -----------------------------------------------------------


def test_okta_full_replace_changes_every_field_and_audits_what_changed(scim, alice):
    payload = user_payload("alice.new@example.com", externalId="okta-1")
    payload["name"] = {"givenName": "Alicia", "familyName": "Nova"}
    payload["emails"] = [{"value": "alicia@example.com", "type": "work", "primary": True}]
    payload["id"] = str(alice.pk)

    response = scim.put(f"Users/{alice.pk}", payload)

    assert response.status_code == 200, response.json_body
    alice.refresh_from_db()
    assert (alice.username, alice.external_id, alice.first_name, alice.email) == (
        "alice.new@example.com",
        "okta-1",
        "Alicia",
        "alicia@example.com",
    )
    event = AuditEvent.objects.get(action="pim.scim.user_updated")
    assert event.before["username"] == "alice@example.com"
    assert event.after["username"] == "alice.new@example.com"
    assert event.actor_name == TOKEN_ACTOR


def test_a_replace_without_active_keeps_the_user_active(scim, alice):
    payload = user_payload()
    del payload["active"]
    assert scim.put(f"Users/{alice.pk}", payload).status_code == 200
    alice.refresh_from_db()
    assert alice.is_active


def test_okta_deactivates_with_a_replace(scim, alice):
    response = scim.put(f"Users/{alice.pk}", user_payload(active=False))
    assert response.status_code == 200 and response.json_body["active"] is False
    alice.refresh_from_db()
    assert not alice.is_active


# --- Patch (Entra ID's capitals and strings, Okta's plain ops) ---------------------------------


def test_entra_replace_without_path_with_a_false_string_deprovisions(scim, alice, tree):
    relax("Privileged Role Administrator")
    eligible = assign(alice, "Privileged Role Administrator", kind=AssignmentKind.ELIGIBLE)
    activation = services.request_activate(
        actor=alice, eligible=eligible, duration=timedelta(hours=1), justification="x"
    ).result_assignment
    assert grants_for(alice).can_manage_directory()

    response = scim.patch(
        f"Users/{alice.pk}", patch_body({"op": "Replace", "value": {"active": "False"}})
    )

    assert response.status_code in (200, 204), response.json_body
    alice.refresh_from_db()
    assert not alice.is_active
    assert not Assignment.objects.get(pk=activation.pk).is_in_force()
    removal = AuditEvent.objects.get(action="pim.assignment.removed", target_id=str(activation.pk))
    assert removal.actor_name == TOKEN_ACTOR


def test_entra_reactivates_with_a_true_string(scim, alice):
    scim.patch(
        f"Users/{alice.pk}", patch_body({"op": "Replace", "path": "active", "value": "False"})
    )
    response = scim.patch(
        f"Users/{alice.pk}", patch_body({"op": "Replace", "path": "active", "value": "True"})
    )
    assert response.status_code in (200, 204)
    alice.refresh_from_db()
    assert alice.is_active


def test_entra_replaces_the_work_email_by_its_value_path(scim, alice):
    op = {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "alice@new.example"}
    assert scim.patch(f"Users/{alice.pk}", patch_body(op)).status_code in (200, 204)
    alice.refresh_from_db()
    assert alice.email == "alice@new.example"


def test_entra_adds_a_work_email_to_a_user_without_one(scim):
    payload = user_payload("noemail")
    del payload["emails"]
    user_id = scim.post("Users", payload).json_body["id"]
    op = {"op": "Add", "path": 'emails[type eq "work"].value', "value": "n@example.com"}
    assert scim.patch(f"Users/{user_id}", patch_body(op)).status_code in (200, 204)
    assert User.objects.get(pk=user_id).email == "n@example.com"


def test_patch_given_name_and_display_name(scim, alice):
    body = patch_body(
        {"op": "replace", "path": "name.givenName", "value": "Ally"},
        {"op": "Replace", "path": "displayName", "value": "Ally X"},
    )
    assert scim.patch(f"Users/{alice.pk}", body).status_code in (200, 204)
    alice.refresh_from_db()
    assert (alice.first_name, alice.display_name) == ("Ally", "Ally X")


def test_okta_patch_replace_active_false(scim, alice):
    body = patch_body({"op": "replace", "value": {"active": False}})
    assert scim.patch(f"Users/{alice.pk}", body).status_code in (200, 204)
    alice.refresh_from_db()
    assert not alice.is_active


def test_patch_remove_the_external_id(scim, alice):
    assert scim.patch(f"Users/{alice.pk}", patch_body({"op": "remove", "path": "externalId"}))
    alice.refresh_from_db()
    assert alice.external_id == ""


def test_active_cannot_be_removed(scim, alice):
    response = scim.patch(f"Users/{alice.pk}", patch_body({"op": "remove", "path": "active"}))
    assert response.status_code == 400
    alice.refresh_from_db()
    assert alice.is_active


# --- Delete ------------------------------------------------------------------------------------


def test_deleting_a_user_deprovisions_removes_eligibility_and_keeps_the_row(scim, alice, tree):
    relax("Privileged Role Administrator")
    eligible = assign(alice, "Privileged Role Administrator", kind=AssignmentKind.ELIGIBLE)
    activation = services.request_activate(
        actor=alice, eligible=eligible, duration=timedelta(hours=1), justification="x"
    ).result_assignment
    make_group("Ops", alice)

    response = scim.delete(f"Users/{alice.pk}")

    assert response.status_code == 204
    alice.refresh_from_db()
    assert not alice.is_active and alice.username.startswith("~deleted-")
    assert not alice.groups.exists()
    assert not Assignment.objects.in_force().filter(principal_user=alice).exists()
    assert Assignment.objects.get(pk=activation.pk).end is not None
    removal = RoleRequest.objects.get(target_assignment=eligible, action=RequestAction.ADMIN_REMOVE)
    assert removal.requested_by is None  # the system, for the token
    assert AuditEvent.objects.filter(
        action="pim.assignment.removed", target_id=str(eligible.pk), actor_name=TOKEN_ACTOR
    ).exists()
    assert scim.get(f"Users/{alice.pk}").status_code == 404
    assert (
        scim.get("Users", QUERY_STRING='filter=userName eq "alice@example.com"').json_body[
            "totalResults"
        ]
        == 0
    )


def test_a_deleted_users_name_can_be_provisioned_again(scim, alice):
    scim.delete(f"Users/{alice.pk}")
    response = scim.post("Users", user_payload())
    assert response.status_code == 201 and response.json_body["id"] != str(alice.pk)


# --- What SCIM may not touch -------------------------------------------------------------------


@pytest.mark.parametrize("field", ["is_superuser", "is_emergency_access"])
def test_a_protected_local_account_is_refused(scim, field):
    protected = make_user("root", **{field: True})

    response = scim.patch(
        f"Users/{protected.pk}", patch_body({"op": "replace", "value": {"active": False}})
    )

    assert response.status_code == 403
    assert "managed in the portal only" in response.json_body["detail"]
    protected.refresh_from_db()
    assert protected.is_active
    assert scim.delete(f"Users/{protected.pk}").status_code == 403


def test_a_local_user_is_adopted_by_the_first_write(scim):
    local = make_user("lou")
    response = scim.patch(
        f"Users/{local.pk}", patch_body({"op": "replace", "path": "externalId", "value": "x-1"})
    )
    assert response.status_code in (200, 204)
    local.refresh_from_db()
    assert (local.source, local.external_id) == (Source.SCIM, "x-1")
