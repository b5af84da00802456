"""Changes made in the Django admin are audited or go through the services (issue 7, defect 3).

A superuser drives the admin with real POSTs, as they would in a browser.
"""

import json
from datetime import timedelta

import pytest
from django import forms
from django.utils import timezone

from approvals.models import ApprovalDecision
from assignments.models import (
    Assignment,
    RequestAction,
    RequestStatus,
    Role,
    RolePolicy,
    RoleRequest,
    Scope,
)
from audit import log as audit_log
from audit.models import AuditEvent
from tests.conftest import signed_in
from tests.factories import AssignmentKind, ScopeKind, assign, make_group, make_scope, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(db):
    return make_user("root-admin", is_superuser=True, is_staff=True)


@pytest.fixture
def admin_client(superuser):
    return signed_in(superuser)


def last_event(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).order_by("-id").first()


def form_data(response) -> dict:
    """The POST a browser would send for the admin form as it was rendered."""
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field.widget, forms.MultiWidget):
            for index, part in enumerate(field.widget.decompress(value)):
                data[f"{name}_{index}"] = "" if part is None else str(part)
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, list | tuple):
            data[name] = [str(item) for item in value]
        elif value is not None:
            data[name] = str(value)
    return data


def change(client, url: str, **overrides):
    data = {**form_data(client.get(url)), **overrides}
    return client.post(url, {k: v for k, v in data.items() if v is not None})


def errors_of(response) -> str:
    return " ".join(str(e) for e in response.context["adminform"].form.non_field_errors())


# --- Roles --------------------------------------------------------------------------------


def test_changing_a_roles_permissions_is_audited_with_before_and_after(admin_client, superuser):
    reader = Role.objects.get(name="Reader")
    url = f"/admin/assignments/role/{reader.pk}/change/"

    response = change(admin_client, url, permissions=["resources.view"])

    assert response.status_code == 302
    reader.refresh_from_db()
    assert reader.permissions == ["resources.view"]
    event = last_event("pim.role.changed")
    assert event.before["permissions"] == []
    assert event.after["permissions"] == ["resources.view"]
    assert (event.actor, event.role) == (superuser, "Reader")


def test_a_built_in_roles_name_and_kind_cannot_be_changed_in_the_admin(admin_client):
    owner = Role.objects.get(name="Owner")
    url = f"/admin/assignments/role/{owner.pk}/change/"

    change(admin_client, url, name="Boss", kind="directory", description="Changed.")

    owner.refresh_from_db()
    assert (owner.name, owner.kind, owner.description) == ("Owner", "resource", "Changed.")


def test_creating_a_role_in_the_admin_is_audited_and_not_built_in(admin_client, superuser):
    response = admin_client.post(
        "/admin/assignments/role/add/",
        {
            "name": "Auditor",
            "description": "",
            "kind": "resource",
            "permissions": ["resources.view"],
        },
    )

    assert response.status_code == 302
    role = Role.objects.get(name="Auditor")
    assert role.is_builtin is False
    assert last_event("pim.role.created").after["permissions"] == ["resources.view"]


def test_deleting_an_unused_role_in_the_admin_is_audited(admin_client):
    role = Role.objects.create(name="Temporary", kind="resource", is_builtin=False)

    admin_client.post(f"/admin/assignments/role/{role.pk}/delete/", {"post": "yes"})

    assert not Role.objects.filter(pk=role.pk).exists()
    assert last_event("pim.role.deleted").before["name"] == "Temporary"


def test_deleting_a_role_with_its_own_settings_is_audited_with_them(admin_client):
    role = Role.objects.create(name="Temporary", kind="resource", is_builtin=False)
    RolePolicy.objects.create(role=role)

    response = admin_client.post(f"/admin/assignments/role/{role.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert last_event("pim.role.deleted").before["role_settings_removed"] == 1


def test_deleting_a_role_that_has_assignments_is_refused_cleanly(admin_client, outsider):
    assign(outsider, "Reader")
    reader = Role.objects.get(name="Reader")

    response = admin_client.post(f"/admin/assignments/role/{reader.pk}/delete/", {"post": "yes"})

    assert response.status_code == 200
    assert "Cannot delete" in response.content.decode()
    assert Role.objects.filter(pk=reader.pk).exists()
    assert last_event("pim.role.deleted") is None


# --- Users and groups ---------------------------------------------------------------------


def test_adding_a_user_to_a_group_on_the_user_form_is_audited(admin_client, outsider, superuser):
    approvers = make_group("Approvers")
    url = f"/admin/pim_portal/user/{outsider.pk}/change/"

    response = change(admin_client, url, groups=[str(approvers.pk)])

    assert response.status_code == 302
    assert list(outsider.groups.all()) == [approvers]
    event = last_event("pim.user.changed")
    assert event.before["groups"] == []
    assert event.after["groups"] == ["Approvers"]
    assert event.after["groups_added"] == ["Approvers"]
    assert "added Approvers" in event.message
    assert event.actor == superuser


def test_deactivating_a_user_in_the_admin_is_audited(admin_client, outsider):
    url = f"/admin/pim_portal/user/{outsider.pk}/change/"

    change(admin_client, url, is_active=None)

    outsider.refresh_from_db()
    assert outsider.is_active is False
    event = last_event("pim.user.changed")
    assert (event.before, event.after) == ({"is_active": True}, {"is_active": False})


def test_making_a_user_superuser_in_the_admin_is_audited(admin_client, outsider):
    change(admin_client, f"/admin/pim_portal/user/{outsider.pk}/change/", is_superuser="on")

    assert last_event("pim.user.changed").after == {"is_superuser": True}


def test_saving_a_user_unchanged_writes_no_event(admin_client, outsider):
    change(admin_client, f"/admin/pim_portal/user/{outsider.pk}/change/")

    assert last_event("pim.user.changed") is None


def test_adding_a_user_in_the_admin_is_audited_without_the_password(admin_client):
    secret = "a-long-new-password-0451"
    admin_client.post(
        "/admin/pim_portal/user/add/",
        {"username": "newbie", "usable_password": "true", "password1": secret, "password2": secret},
    )

    event = last_event("pim.user.created")
    assert event.after["username"] == "newbie"
    assert event.after["password"] == "set"
    recorded = json.dumps([event.before, event.after, event.message])
    assert "pbkdf2" not in recorded and "md5" not in recorded and secret not in recorded


def test_changing_a_password_in_the_admin_is_audited_without_the_hash(admin_client, outsider):
    secret = "another-long-password-0452"
    response = admin_client.post(
        f"/admin/pim_portal/user/{outsider.pk}/password/",
        {"password1": secret, "password2": secret},
    )

    assert response.status_code == 302
    event = last_event("pim.user.password_changed")
    assert event.after == {"password": "changed"}
    assert event.principal == str(outsider)


def test_deleting_a_user_who_holds_an_assignment_is_refused(admin_client, outsider):
    assign(outsider, "Reader")

    response = admin_client.post(f"/admin/pim_portal/user/{outsider.pk}/delete/", {"post": "yes"})

    assert response.status_code == 200
    assert "holds 1 role assignment that has not ended" in response.content.decode()
    assert outsider.__class__.objects.filter(pk=outsider.pk).exists()


def test_deleting_a_user_with_past_assignments_is_refused_as_history(admin_client, outsider):
    now = timezone.now()
    assign(outsider, "Reader", start=now - timedelta(days=9), end=now - timedelta(days=2))

    response = admin_client.post(f"/admin/pim_portal/user/{outsider.pk}/delete/", {"post": "yes"})

    assert "keeps the history of 1 past role assignment" in response.content.decode()
    assert outsider.__class__.objects.filter(pk=outsider.pk).exists()


def test_deleting_a_user_in_the_admin_is_audited(admin_client, outsider):
    admin_client.post(f"/admin/pim_portal/user/{outsider.pk}/delete/", {"post": "yes"})

    event = last_event("pim.user.deleted")
    assert event.before["username"] == "oscar"
    assert "_password" not in event.before


def test_adding_members_on_the_group_page_is_audited(admin_client, outsider):
    group = make_group("Operators")
    url = f"/admin/auth/group/{group.pk}/change/"

    response = change(admin_client, url, members=[str(outsider.pk)])

    assert response.status_code == 302
    assert list(group.user_set.all()) == [outsider]
    event = last_event("pim.group.changed")
    assert event.after["members_added"] == ["oscar"]
    assert "members" not in event.after  # only the change, not the whole (long) list


def test_removing_a_member_on_the_group_page_ends_what_the_group_gave(admin_client, tree):
    member = make_user("mia")
    group = make_group("Operators", member)
    eligible = assign(group, "Contributor", scope=tree["sub"], kind=AssignmentKind.ELIGIBLE)
    activation = assign(member, "Contributor", scope=tree["sub"], activated_from=eligible)

    change(admin_client, f"/admin/auth/group/{group.pk}/change/", members=[])

    activation.refresh_from_db()
    assert activation.end <= timezone.now()
    assert last_event("pim.group.changed").after["members_removed"] == ["mia"]


def test_the_group_members_picker_searches_users(admin_client, outsider):
    response = admin_client.get(
        "/admin/autocomplete/",
        {"app_label": "pim_portal", "model_name": "user", "field_name": "manager", "term": "osc"},
    )

    assert response.status_code == 200
    assert [row["text"] for row in response.json()["results"]] == [str(outsider)]


def test_renaming_a_group_in_the_admin_is_audited(admin_client):
    group = make_group("Ops")

    change(admin_client, f"/admin/auth/group/{group.pk}/change/", name="Operations")

    event = last_event("pim.group.changed")
    assert (event.before, event.after) == ({"name": "Ops"}, {"name": "Operations"})


# --- Scopes -------------------------------------------------------------------------------


def test_creating_a_scope_in_the_admin_goes_through_the_service(admin_client, tree):
    response = admin_client.post(
        "/admin/assignments/scope/add/",
        {"name": "Data", "slug": "data", "kind": "resource_group", "parent": tree["sub"].pk},
    )

    assert response.status_code == 302
    scope = Scope.objects.get(slug="data")
    assert scope.path == f"{tree['sub'].path}resourceGroups/data/"
    assert last_event("pim.scope.created").after["path"] == scope.path


def test_moving_a_scope_in_the_admin_rewrites_the_paths_below(admin_client, tree):
    fabrikam = make_scope("Fabrikam", ScopeKind.MANAGEMENT_GROUP, tree["root"], slug="fabrikam")
    url = f"/admin/assignments/scope/{tree['sub'].pk}/change/"

    response = change(admin_client, url, parent=str(fabrikam.pk))

    assert response.status_code == 302
    vm = Scope.objects.get(pk=tree["vm"].pk)
    assert vm.path == (
        "/managementGroups/fabrikam/subscriptions/prod/resourceGroups/web/resources/web-vm-01/"
    )
    assert last_event("pim.scope.moved").after["descendants_rewritten"] == 2


def test_renaming_a_scope_slug_in_the_admin_rewrites_the_paths_below(admin_client, tree):
    change(admin_client, f"/admin/assignments/scope/{tree['sub'].pk}/change/", slug="production")

    assert Scope.objects.get(pk=tree["rg"].pk).path.startswith(
        "/managementGroups/contoso/subscriptions/production/"
    )
    assert last_event("pim.scope.renamed").before["slug"] == "prod"


def test_a_scope_the_tree_does_not_allow_is_a_form_error(admin_client, tree):
    response = admin_client.post(
        "/admin/assignments/scope/add/",
        {"name": "Web", "slug": "web2", "kind": "resource_group", "parent": tree["root"].pk},
    )

    assert response.status_code == 200
    assert "A resource group cannot be placed under the directory root" in errors_of(response)
    assert not Scope.objects.filter(slug="web2").exists()


def test_moving_a_scope_under_its_descendant_is_a_form_error(admin_client, tree):
    url = f"/admin/assignments/scope/{tree['mg'].pk}/change/"
    nested = make_scope("Inner", ScopeKind.MANAGEMENT_GROUP, tree["mg"], slug="inner")

    response = change(admin_client, url, parent=str(nested.pk))

    assert response.status_code == 200
    assert "cannot be moved under itself or one of its own descendants" in errors_of(response)


def test_deleting_a_scope_with_an_assignment_in_the_admin_is_refused_cleanly(
    admin_client, tree, outsider
):
    assign(outsider, "Reader", scope=tree["vm"])

    response = admin_client.post(
        f"/admin/assignments/scope/{tree['vm'].pk}/delete/", {"post": "yes"}
    )

    assert response.status_code == 200
    assert "at or below it that has not ended" in response.content.decode()
    assert Scope.objects.filter(pk=tree["vm"].pk).exists()


def test_deleting_a_leaf_scope_in_the_admin_goes_through_the_service(admin_client, tree):
    response = admin_client.post(
        f"/admin/assignments/scope/{tree['vm'].pk}/delete/", {"post": "yes"}
    )

    assert response.status_code == 302
    assert not Scope.objects.filter(pk=tree["vm"].pk).exists()
    assert last_event("pim.scope.removed").before["path"] == tree["vm"].path


# --- What stays read-only -----------------------------------------------------------------


@pytest.fixture
def records(tree, outsider, superuser):
    """One row of every model the admin shows read-only."""
    assignment = assign(outsider, "Reader", scope=tree["sub"])
    request = RoleRequest(
        action=RequestAction.ADMIN_ASSIGN,
        status=RequestStatus.PROVISIONED,
        role=assignment.role,
        scope=assignment.scope,
        kind=assignment.kind,
        requested_by=superuser,
        start=assignment.start,
        end=assignment.start + timedelta(days=1),
    )
    request.set_principal(outsider)
    request.save()
    decision = ApprovalDecision.objects.create(
        request=request,
        approver=superuser,
        approver_name="Root",
        decision="approve",
        justification="ok",
    )
    event = audit_log.record(action="pim.bootstrap", message="An event to look at.")
    return {
        "assignments/assignment": assignment,
        "assignments/rolerequest": request,
        "assignments/rolepolicy": assignment.role.policies.first(),
        "approvals/approvaldecision": decision,
        "audit/auditevent": event,
    }


READ_ONLY = [
    "assignments/assignment",
    "assignments/rolerequest",
    "assignments/rolepolicy",
    "approvals/approvaldecision",
    "audit/auditevent",
]


@pytest.mark.parametrize("model", READ_ONLY)
def test_the_admin_refuses_to_add(admin_client, records, model):
    assert admin_client.get(f"/admin/{model}/add/").status_code == 403
    assert admin_client.post(f"/admin/{model}/add/", {}).status_code == 403


@pytest.mark.parametrize("model", READ_ONLY)
def test_the_admin_refuses_to_change(admin_client, records, model):
    url = f"/admin/{model}/{records[model].pk}/change/"
    assert admin_client.post(url, {}).status_code == 403


@pytest.mark.parametrize("model", READ_ONLY)
def test_the_admin_refuses_to_delete(admin_client, records, model):
    url = f"/admin/{model}/{records[model].pk}/delete/"
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert type(records[model]).objects.filter(pk=records[model].pk).exists()


def test_the_admin_offers_no_bulk_delete_of_assignments(admin_client, records):
    response = admin_client.get("/admin/assignments/assignment/")
    assert "delete_selected" not in response.content.decode()
    assert Assignment.objects.exists()


def test_authenticators_cannot_be_added_changed_or_deleted_in_the_admin(admin_client, outsider):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.create(user=outsider, name="Phone", confirmed=True)
    base = "/admin/otp_totp/totpdevice/"
    assert admin_client.get(base).status_code == 200
    assert admin_client.get(f"{base}add/").status_code == 403
    assert admin_client.post(f"{base}{device.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.post(f"{base}{device.pk}/change/", {"name": "Other"}).status_code == 403
    device.refresh_from_db()
    assert device.name == "Phone"
