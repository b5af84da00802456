"""Choosing users and groups by searching, and the settings the add and activate forms follow."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from assignments.forms.manage import RolePolicyForm
from assignments.forms.principals import MAX_MATCHES, PrincipalsField
from assignments.models import Assignment, AssignmentKind, RolePolicy
from tests.assignments.test_manage_views import add_data, settings_data
from tests.factories import make_group, make_scope, make_user, role

pytestmark = pytest.mark.django_db

User = get_user_model()


def url(name: str, *args) -> str:
    return reverse(f"assignments:{name}", args=args)


def search(client, q: str, kind: str = "any"):
    response = client.get(url("principal_search"), {"q": q, "kind": kind})
    assert response.status_code == 200
    return response.json()


def labels(matches) -> list[str]:
    return [match["label"] for match in matches]


def many_users(count: int, prefix: str = "member") -> None:
    User.objects.bulk_create(
        User(
            username=f"{prefix}{number:05d}",
            display_name=f"Member {number:05d}",
            email=f"{prefix}{number:05d}@example.com",
        )
        for number in range(count)
    )


# The search ------------------------------------------------------------------------------


def test_search_matches_a_user_by_user_name_display_name_or_email(client_for, pra):
    make_user("ewalsh", display_name="Erin Walsh", email="erin.w@example.com")
    client = client_for(pra)

    for q in ("EWAL", "walsh", "erin.w@"):
        assert search(client, q) == [
            {
                "id": f"user:{User.objects.get(username='ewalsh').pk}",
                "label": "Erin Walsh (ewalsh)",
                "detail": "erin.w@example.com",
            }
        ]


def test_search_matches_groups_by_name(client_for, pra):
    group = make_group("Night Shift Operators")

    assert search(client_for(pra), "shift") == [
        {"id": f"group:{group.pk}", "label": "Night Shift Operators (group)", "detail": ""}
    ]


def test_search_by_kind_leaves_out_the_other_kind(client_for, pra):
    make_user("ops-anna", display_name="Anna Ops")
    make_group("ops-team")
    client = client_for(pra)

    assert labels(search(client, "ops", kind="user")) == ["Anna Ops (ops-anna)"]
    assert labels(search(client, "ops", kind="group")) == ["ops-team (group)"]


def test_search_leaves_out_deactivated_users(client_for, pra):
    make_user("gone", display_name="Gone Person", is_active=False)

    assert search(client_for(pra), "gone") == []


def test_search_puts_names_that_start_with_the_letters_first(client_for, pra):
    make_user("xbob", display_name="Aaron Bobson")
    make_user("bobby", display_name="Bobby Tables")

    assert labels(search(client_for(pra), "bob")) == [
        "Bobby Tables (bobby)",
        "Aaron Bobson (xbob)",
    ]


def test_search_answers_at_most_twenty(client_for, pra):
    many_users(30)

    assert len(search(client_for(pra), "member")) == MAX_MATCHES == 20


def test_search_without_letters_answers_nothing(client_for, pra):
    assert search(client_for(pra), "  ") == []


def test_search_with_a_nul_byte_is_no_server_error(client_for, pra):
    make_user("nina", display_name="Nina Null")

    assert labels(search(client_for(pra), "ni\x00na")) == ["Nina Null (nina)"]


def test_search_is_refused_to_those_who_may_not_assign_roles(client_for, security_reader):
    response = client_for(security_reader).get(url("principal_search"), {"q": "a"})

    assert response.status_code == 403


def test_search_query_count_does_not_grow_with_users(client_for, pra):
    client = client_for(pra)
    search(client, "warm")  # the first request after sign-in saves the session
    many_users(10, prefix="few")
    with CaptureQueriesContext(connection) as few:
        search(client, "few")
    many_users(2000, prefix="lots")
    with CaptureQueriesContext(connection) as lots:
        search(client, "lots")

    assert len(lots) == len(few)


def test_with_two_thousand_users_the_add_page_lists_none_and_search_finds_the_few(client_for, pra):
    many_users(2000)
    make_user("zed1", display_name="Zed Quasar")
    make_user("zed2", display_name="Zelda Quasar")
    client = client_for(pra)

    page = client.get(url("assignment_add")).content.decode()

    assert "member00042" not in page and "Member 01999" not in page
    assert len(page) < 60_000  # the 2,000 users as options would be several hundred KB
    assert labels(search(client, "quasar")) == ["Zed Quasar (zed1)", "Zelda Quasar (zed2)"]


# The field -------------------------------------------------------------------------------


def test_field_cleans_keys_to_users_and_groups_in_order():
    ann, group = make_user("ann"), make_group("Readers")

    chosen = PrincipalsField().clean([f"group:{group.pk}", f"user:{ann.pk}", f"user:{ann.pk}"])

    assert chosen == [group, ann]


def test_field_takes_typed_user_and_group_names_without_scripts():
    ann, group = make_user("ann"), make_group("Night Shift")

    assert PrincipalsField().clean(["ANN, night shift"]) == [ann, group]


def test_field_refuses_an_unknown_id_naming_it():
    with pytest.raises(ValidationError) as refused:
        PrincipalsField().clean(["user:999999"])

    assert refused.value.code == "unknown"
    assert "user:999999" in refused.value.messages[0]


def test_field_refuses_a_deactivated_user():
    gone = make_user("gone", is_active=False)

    with pytest.raises(ValidationError) as refused:
        PrincipalsField().clean([f"user:{gone.pk}"])

    assert refused.value.code == "unknown"


def test_field_refuses_an_unknown_name_naming_it():
    with pytest.raises(ValidationError) as refused:
        PrincipalsField().clean(["nobody-here"])

    assert refused.value.messages == [
        "Not a user or group of the portal: “nobody-here”. Search and pick from the matches."
    ]


def test_field_required_says_choose_one():
    with pytest.raises(ValidationError) as refused:
        PrincipalsField().clean([])

    assert refused.value.code == "required"


def test_add_form_posting_an_unknown_principal_shows_the_error_on_the_field(client_for, pra):
    data = add_data(role_name="Security Reader")
    data["principals"] = ["user:999999"]

    response = client_for(pra).post(url("assignment_add"), data)

    assert response.status_code == 200
    assert "user:999999" in response.context["form"].errors["principals"][0]
    assert not Assignment.objects.filter(role=role("Security Reader")).exists()


def test_add_form_takes_a_typed_user_name(client_for, pra):
    ann = make_user("ann")
    data = add_data(role_name="Security Reader")
    data["principals"] = ["ann"]

    response = client_for(pra).post(url("assignment_add"), data)

    assert response.status_code == 302
    assert Assignment.objects.get(role=role("Security Reader")).principal_user == ann


def test_add_form_shows_the_chosen_again_after_an_error(client_for, pra):
    ann = make_user("ann", display_name="Ann Other")
    data = add_data(ann, role_name="Security Reader", end="not a date")

    content = client_for(pra).post(url("assignment_add"), data).content.decode()

    assert f'value="user:{ann.pk}" id="id_principals_1" checked' in content
    assert "Ann Other (ann)" in content


def test_settings_page_shows_the_named_approvers_as_chosen(client_for, pra, approver):
    target = role("Security Reader")
    client = client_for(pra)
    client.post(
        url("policy_edit", target.pk),
        settings_data(target, require_approval=True, approvers=[f"user:{approver.pk}"]),
    )

    content = client.get(url("policy_edit", target.pk)).content.decode()

    assert f'value="user:{approver.pk}"' in content
    assert "Alex Approver (alex)" in content
    assert "data-principal-picker" in content


def test_settings_form_refuses_an_unknown_approver(pra):
    target = role("Security Reader")
    policy = RolePolicy.objects.effective_for(target)
    data = settings_data(target, approvers=["group:424242"])

    form = RolePolicyForm(data, policy=policy, approvers=([], []), read_only=False)

    assert not form.is_valid()
    assert "group:424242" in form.errors["approvers"][0]


# Role settings beside Add assignments ------------------------------------------------------


def test_role_settings_answer_the_chosen_roles_settings(client_for, pra):
    reader = role("Security Reader")
    RolePolicy.objects.filter(role=reader, scope=None).update(require_mfa_on_active_assignment=True)

    answer = client_for(pra).get(url("role_settings"), {"role": reader.pk}).json()

    assert answer["role"] == "Security Reader"
    assert answer["directory"] is True
    assert answer["mfa_on_active"] is True
    assert ["MFA on active assignment", "Yes"] in answer["summary"]


def test_role_settings_follow_the_scope_chosen(client_for, resource_owner, tree):
    contributor = role("Contributor")
    RolePolicy.objects.create(role=contributor, scope=tree["rg"], active_expire_after_days=3)
    client = client_for(resource_owner)

    at_sub = client.get(url("role_settings"), {"role": contributor.pk, "scope": tree["sub"].pk})
    at_rg = client.get(url("role_settings"), {"role": contributor.pk, "scope": tree["rg"].pk})

    assert ["Active assignments", "at most 3 days"] not in at_sub.json()["summary"]
    assert ["Active assignments", "at most 3 days"] in at_rg.json()["summary"]


def test_role_settings_of_a_resource_role_without_scope_ask_for_the_scope(
    client_for, resource_owner
):
    answer = (
        client_for(resource_owner)
        .get(url("role_settings"), {"role": role("Contributor").pk})
        .json()
    )

    assert answer["needs_scope"] is True
    assert answer["summary"] == []


def test_role_settings_of_a_role_the_viewer_may_not_assign_are_not_found(
    client_for, resource_owner
):
    response = client_for(resource_owner).get(
        url("role_settings"), {"role": role("Security Reader").pk}
    )

    assert response.status_code == 404


def test_role_settings_with_a_unicode_digit_are_not_found_not_a_server_error(client_for, pra):
    response = client_for(pra).get(url("role_settings"), {"role": "\u00b2"})

    assert response.status_code == 404


def test_add_page_carries_the_settings_address_and_the_mfa_field(client_for, pra):
    content = client_for(pra).get(url("assignment_add")).content.decode()

    assert f'data-role-settings-url="{url("role_settings")}"' in content
    assert 'id="div_id_mfa_code"' in content


# What the activate page follows --------------------------------------------------------------


@pytest.fixture
def contributor_needs_more_below(tree):
    """Contributor asks nothing at Production, a ticket and a code on its resource group."""
    contributor = role("Contributor")
    RolePolicy.objects.filter(role=contributor, scope=None).update(
        require_mfa_on_activation=False, require_ticket_on_activation=False
    )
    RolePolicy.objects.create(
        role=contributor,
        scope=tree["rg"],
        require_mfa_on_activation=True,
        require_ticket_on_activation=True,
    )
    return contributor


def activation_answer(client, eligible, scope=None) -> dict:
    query = {"eligible": eligible.pk}
    if scope is not None:
        query[f"scope_{eligible.pk}"] = scope.pk
    response = client.get(url("activation_settings"), query)
    assert response.status_code == 200
    return json.loads(response.content)


def test_activation_at_the_eligible_scope_needs_no_ticket_or_code(
    client_for, eligible_user, tree, contributor_needs_more_below
):
    eligible = Assignment.objects.get(principal_user=eligible_user, role__kind="resource")

    answer = activation_answer(client_for(eligible_user), eligible, tree["sub"])

    assert answer == {"mfa": False, "ticket": False, "justification": True}


def test_activation_at_a_narrower_scope_follows_its_settings(
    client_for, eligible_user, tree, contributor_needs_more_below
):
    eligible = Assignment.objects.get(principal_user=eligible_user, role__kind="resource")

    answer = activation_answer(client_for(eligible_user), eligible, tree["rg"])

    assert answer["mfa"] is True and answer["ticket"] is True


def test_activation_settings_say_nothing_of_someone_elses_eligibility(
    client_for, outsider, eligible_user, tree, contributor_needs_more_below
):
    eligible = Assignment.objects.get(principal_user=eligible_user, role__kind="resource")

    answer = activation_answer(client_for(outsider), eligible, tree["rg"])

    assert answer == {"mfa": False, "ticket": False, "justification": False}


def test_activate_page_carries_the_settings_address(client_for, eligible_user):
    RolePolicy.objects.filter(role=role("Contributor"), scope=None).update(
        require_mfa_on_activation=False
    )
    eligible = Assignment.objects.get(
        principal_user=eligible_user, role__kind="resource", kind=AssignmentKind.ELIGIBLE
    )

    content = (
        client_for(eligible_user).get(url("activate"), {"eligible": eligible.pk}).content.decode()
    )

    assert f'data-activation-settings-url="{url("activation_settings")}"' in content


# Scopes below one's own: the activate form's and My roles' scope search -------------------


def scope_search(client, **query):
    response = client.get(url("my_scope_search"), query)
    assert response.status_code == 200
    return response.json()


def test_scope_search_answers_the_scopes_at_and_below_the_eligible_scope(
    client_for, eligible_user, tree
):
    eligible = Assignment.objects.get(principal_user=eligible_user, role__kind="resource")
    client = client_for(eligible_user)

    everything = scope_search(client, eligible=eligible.pk)
    by_name = scope_search(client, eligible=eligible.pk, q="VM-01")
    by_path = scope_search(client, eligible=eligible.pk, q="resourceGroups/web")
    outside = scope_search(client, eligible=eligible.pk, q="Sandbox")

    assert [r["id"] for r in everything["results"]] == [
        tree["sub"].pk,
        tree["rg"].pk,
        tree["vm"].pk,
    ]
    assert not everything["more"]
    assert by_name["results"] == [
        {"id": tree["vm"].pk, "label": str(tree["vm"]), "path": tree["vm"].path}
    ]
    assert [r["id"] for r in by_path["results"]] == [tree["rg"].pk, tree["vm"].pk]
    assert outside["results"] == []


def test_scope_search_answers_at_most_20_and_says_there_are_more(client_for, eligible_user, tree):
    for number in range(25):
        make_scope(f"vm{number:02d}", "resource", tree["rg"])
    eligible = Assignment.objects.get(principal_user=eligible_user, role__kind="resource")

    answer = scope_search(client_for(eligible_user), eligible=eligible.pk, q="vm")

    assert len(answer["results"]) == 20
    assert answer["more"]


def test_scope_search_without_an_eligible_searches_below_the_users_resource_scopes(
    client_for, eligible_user, tree
):
    answer = scope_search(client_for(eligible_user), q="web")

    assert [r["id"] for r in answer["results"]] == [tree["rg"].pk, tree["vm"].pk]


def test_scope_search_of_someone_elses_eligible_assignment_is_a_404(
    client_for, eligible_user, outsider, tree
):
    eligible = Assignment.objects.get(principal_user=eligible_user, role__kind="resource")

    response = client_for(outsider).get(url("my_scope_search"), {"eligible": eligible.pk})

    assert response.status_code == 404


def test_scope_search_for_someone_without_resource_roles_is_empty(client_for, outsider, tree):
    assert scope_search(client_for(outsider), q="")["results"] == []
