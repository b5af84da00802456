"""SCIM Groups: create with members, members added and removed (Entra ID's and Okta's ways),
replace, delete; leaving a group through SCIM ends the activations it made possible."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group

from assignments import services
from assignments.authz import grants_for
from assignments.models import Assignment, AssignmentKind
from audit.models import AuditEvent
from pim_portal.models import GroupIdentity, Source
from tests.assignments.activation_support import relax
from tests.factories import assign, make_group, make_user
from tests.scim.conftest import GROUP_SCHEMA, patch_body

PRA = "Privileged Role Administrator"
TOKEN_ACTOR = 'system (SCIM token "okta")'


def group_payload(name="Identity Team", *members, **fields):
    body = {"schemas": [GROUP_SCHEMA], "displayName": name, "externalId": f"g-{name}"}
    if members:
        body["members"] = [{"value": str(m.pk)} for m in members]
    body.update(fields)
    return body


@pytest.fixture
def mia(db):
    return make_user("mia", display_name="Mia Member")


@pytest.fixture
def team(scim, mia):
    response = scim.post("Groups", group_payload("Identity Team", mia))
    assert response.status_code == 201, response.json_body
    return Group.objects.get(pk=response.json_body["id"])


def _activate_through(group, user):
    relax(PRA)
    eligible = assign(group, PRA, kind=AssignmentKind.ELIGIBLE)
    activation = services.request_activate(
        actor=user, eligible=eligible, duration=timedelta(hours=2), justification="on call"
    ).result_assignment
    assert grants_for(user).can_manage_directory()
    return activation


def test_a_created_group_has_its_identity_and_members(scim, team, mia):
    identity = GroupIdentity.objects.get(group=team)
    assert (identity.source, identity.external_id) == (Source.SCIM, "g-Identity Team")
    assert list(team.user_set.all()) == [mia]
    body = scim.get(f"Groups/{team.pk}").json_body
    assert body["displayName"] == "Identity Team"
    assert [m["value"] for m in body["members"]] == [str(mia.pk)]
    assert AuditEvent.objects.filter(action="pim.group.member_added", actor_name=TOKEN_ACTOR)


def test_groups_are_filtered_by_display_name_and_external_id(scim, team):
    make_group("Other")
    for query in (
        'displayName eq "identity team"',
        'externalId eq "g-Identity Team"',
        'displayName sw "Ident"',
        'displayName co "ty te"',
    ):
        body = scim.get("Groups", QUERY_STRING=f"filter={query}").json_body
        assert [r["id"] for r in body["Resources"]] == [str(team.pk)], query


def test_groups_listed_without_members_when_excluded(scim, team):
    body = scim.get("Groups", QUERY_STRING="excludedAttributes=members").json_body
    assert body["totalResults"] == 1 and "members" not in body["Resources"][0]


def test_entra_adds_members_with_a_capitalised_op(scim, team):
    sam = make_user("sam2")
    op = {"op": "Add", "path": "members", "value": [{"value": str(sam.pk)}]}
    assert scim.patch(f"Groups/{team.pk}", patch_body(op)).status_code in (200, 204)
    assert set(team.user_set.values_list("username", flat=True)) == {"mia", "sam2"}


def test_entra_removes_a_member_with_its_value_and_the_activation_ends(scim, team, mia):
    activation = _activate_through(team, mia)
    op = {"op": "Remove", "path": "members", "value": [{"value": str(mia.pk)}]}

    response = scim.patch(f"Groups/{team.pk}", patch_body(op))

    assert response.status_code in (200, 204), response.json_body
    assert not team.user_set.exists()
    assert not Assignment.objects.get(pk=activation.pk).is_in_force()
    assert not grants_for(mia).can_manage_directory()
    removed = AuditEvent.objects.get(action="pim.group.member_removed")
    assert removed.actor_name == TOKEN_ACTOR


def test_okta_removes_a_member_by_a_value_filter(scim, team, mia):
    activation = _activate_through(team, mia)
    op = {"op": "remove", "path": f'members[value eq "{mia.pk}"]'}
    assert scim.patch(f"Groups/{team.pk}", patch_body(op)).status_code in (200, 204)
    assert not team.user_set.exists()
    assert not Assignment.objects.get(pk=activation.pk).is_in_force()


def test_a_replace_sets_the_members_and_name(scim, team, mia):
    other = make_user("otto")
    body = group_payload("Identity Team (renamed)", other)
    response = scim.put(f"Groups/{team.pk}", body)
    assert response.status_code == 200, response.json_body
    team.refresh_from_db()
    assert team.name == "Identity Team (renamed)"
    assert list(team.user_set.all()) == [other]


def test_a_member_that_does_not_exist_is_refused_and_nothing_changes(scim, team, mia):
    op = {"op": "add", "path": "members", "value": [{"value": "424242"}]}
    response = scim.patch(f"Groups/{team.pk}", patch_body(op))
    assert response.status_code == 400
    assert response.json_body["scimType"] == "invalidValue"
    assert "424242" in response.json_body["detail"]
    assert list(team.user_set.all()) == [mia]


def test_a_group_with_an_unknown_member_is_not_created(scim):
    response = scim.post("Groups", {**group_payload("Ghosts"), "members": [{"value": "9999"}]})
    assert response.status_code == 400 and response.json_body["scimType"] == "invalidValue"
    assert not Group.objects.filter(name="Ghosts").exists()


def test_a_duplicate_display_name_is_a_uniqueness_conflict(scim, team):
    response = scim.post("Groups", group_payload("identity TEAM"))
    assert response.status_code == 409 and response.json_body["scimType"] == "uniqueness"


def test_a_group_made_in_the_portal_is_refused(scim, mia):
    local = make_group("Portal admins")
    op = {"op": "add", "path": "members", "value": [{"value": str(mia.pk)}]}
    response = scim.patch(f"Groups/{local.pk}", patch_body(op))
    assert response.status_code == 403
    assert "made in the portal" in response.json_body["detail"]
    assert not local.user_set.exists()


def test_deleting_an_unused_group_deletes_it(scim, team):
    assert scim.delete(f"Groups/{team.pk}").status_code == 204
    assert not Group.objects.filter(pk=team.pk).exists()
    assert AuditEvent.objects.filter(action="pim.scim.group_deleted", actor_name=TOKEN_ACTOR)


def test_deleting_a_group_with_assignments_ends_them_and_keeps_the_row(scim, team, mia):
    activation = _activate_through(team, mia)

    assert scim.delete(f"Groups/{team.pk}").status_code == 204

    team.refresh_from_db()
    assert team.name.startswith("~deleted-") and not team.user_set.exists()
    assert not Assignment.objects.in_force().filter(principal_group=team).exists()
    assert not Assignment.objects.get(pk=activation.pk).is_in_force()
    assert scim.get(f"Groups/{team.pk}").status_code == 404
    assert scim.post("Groups", group_payload("Identity Team")).status_code == 201
