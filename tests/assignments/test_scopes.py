"""The resource tree's services: paths below a renamed or moved scope follow it (issue 7,
defect 2), the tree's shape is enforced, and every change is audited."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assignments import authz, services
from assignments.models import Role, RolePolicy, Scope, ScopeKind
from audit.models import AuditEvent
from pim_portal.actor import Actor
from tests.factories import AssignmentKind, assign, make_scope, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(db):
    return make_user("root-admin", is_superuser=True, is_staff=True)


@pytest.fixture
def fabrikam(tree):
    """A second management group, nested in Contoso (so a move there changes depths)."""
    return make_scope("Fabrikam", ScopeKind.MANAGEMENT_GROUP, tree["mg"], slug="fabrikam")


def messages_of(excinfo) -> str:
    return " ".join(excinfo.value.messages)


def fresh(scope: Scope) -> Scope:
    return Scope.objects.get(pk=scope.pk)


def last_event(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).order_by("-id").first()


def test_moving_a_subscription_rewrites_every_descendant_path_and_depth(tree, fabrikam, superuser):
    services.scope_move(actor=superuser, scope=tree["sub"], new_parent=fabrikam)

    base = "/managementGroups/contoso/managementGroups/fabrikam/subscriptions/prod/"
    assert (fresh(tree["sub"]).path, fresh(tree["sub"]).depth) == (base, 3)
    assert (fresh(tree["rg"]).path, fresh(tree["rg"]).depth) == (f"{base}resourceGroups/web/", 4)
    assert (fresh(tree["vm"]).path, fresh(tree["vm"]).depth) == (
        f"{base}resourceGroups/web/resources/web-vm-01/",
        5,
    )
    assert fresh(tree["sub"]).parent == fabrikam


def test_moving_leaves_scopes_outside_the_subtree_alone(tree, fabrikam, superuser):
    services.scope_move(actor=superuser, scope=tree["sub"], new_parent=fabrikam)

    assert fresh(tree["other_sub"]).path == "/managementGroups/contoso/subscriptions/sandbox/"
    assert fresh(tree["mg"]).path == "/managementGroups/contoso/"


def test_authorization_follows_a_moved_scope(tree, superuser):
    elsewhere = make_scope("Fabrikam", ScopeKind.MANAGEMENT_GROUP, tree["root"], slug="fabrikam")
    old_owner = make_user("olga")
    new_owner = make_user("nina")
    assign(old_owner, "Owner", scope=tree["mg"], permanent=True)
    assign(new_owner, "Owner", scope=elsewhere, permanent=True)

    services.scope_move(actor=superuser, scope=tree["sub"], new_parent=elsewhere)

    for moved in (fresh(tree["sub"]), fresh(tree["vm"])):
        assert not authz.grants_for(old_owner).can_manage_scope(moved)
        assert authz.grants_for(new_owner).can_manage_scope(moved)


def test_renaming_the_slug_rewrites_paths_below(tree, superuser):
    services.scope_rename(actor=superuser, scope=tree["sub"], slug="production")

    assert fresh(tree["sub"]).path == "/managementGroups/contoso/subscriptions/production/"
    assert fresh(tree["vm"]).path == (
        "/managementGroups/contoso/subscriptions/production/resourceGroups/web/resources/web-vm-01/"
    )


def test_renaming_only_the_name_keeps_every_path(tree, superuser):
    renamed = services.scope_rename(actor=superuser, scope=tree["sub"], name="Prod (EU)")

    assert (renamed.name, renamed.path) == ("Prod (EU)", tree["sub"].path)
    assert fresh(tree["vm"]).path == tree["vm"].path


def test_a_resource_group_under_the_root_is_refused_naming_the_rule(tree, superuser):
    with pytest.raises(ValidationError) as refused:
        services.scope_create(
            actor=superuser,
            parent=tree["root"],
            kind=ScopeKind.RESOURCE_GROUP,
            name="Web",
            slug="w",
        )
    assert "A resource group cannot be placed under the directory root" in messages_of(refused)
    assert "only management groups and subscriptions can" in messages_of(refused)
    assert not Scope.objects.filter(slug="w").exists()


def test_moving_a_resource_under_a_subscription_is_refused_naming_the_rule(tree, superuser):
    with pytest.raises(ValidationError) as refused:
        services.scope_move(actor=superuser, scope=tree["vm"], new_parent=tree["other_sub"])
    assert "A resource cannot be placed under Subscription Sandbox" in messages_of(refused)
    assert fresh(tree["vm"]).parent == tree["rg"]


def test_nothing_can_be_created_under_a_resource(tree, superuser):
    with pytest.raises(ValidationError) as refused:
        services.scope_create(
            actor=superuser, parent=tree["vm"], kind=ScopeKind.RESOURCE, name="Disk", slug="disk"
        )
    assert "a resource has no children" in messages_of(refused)


def test_moving_a_scope_under_its_own_descendant_is_refused(tree, superuser):
    nested = make_scope("Inner", ScopeKind.MANAGEMENT_GROUP, tree["mg"], slug="inner")

    with pytest.raises(ValidationError) as refused:
        services.scope_move(actor=superuser, scope=tree["mg"], new_parent=nested)
    assert "cannot be moved under itself or one of its own descendants" in messages_of(refused)
    assert fresh(nested).path == "/managementGroups/contoso/managementGroups/inner/"


def test_the_root_cannot_be_moved(tree, superuser):
    with pytest.raises(ValidationError) as refused:
        services.scope_move(actor=superuser, scope=tree["root"], new_parent=tree["mg"])
    assert "The directory root cannot be moved" in messages_of(refused)


def test_a_second_root_is_refused(tree, superuser):
    with pytest.raises(ValidationError) as refused:
        services.scope_create(
            actor=superuser, parent=tree["mg"], kind=ScopeKind.ROOT, name="Two", slug="two"
        )
    assert "There is one directory root" in messages_of(refused)


def test_a_slug_taken_by_a_sibling_is_refused(tree, superuser):
    with pytest.raises(ValidationError) as refused:
        services.scope_rename(actor=superuser, scope=tree["other_sub"], slug="PROD")
    assert "slugs are unique among a scope's children" in messages_of(refused)


def test_moving_next_to_a_sibling_with_the_same_slug_is_refused(tree, fabrikam, superuser):
    make_scope("Prod", ScopeKind.SUBSCRIPTION, fabrikam, slug="prod")

    with pytest.raises(ValidationError) as refused:
        services.scope_move(actor=superuser, scope=tree["sub"], new_parent=fabrikam)
    assert "slugs are unique among a scope's children" in messages_of(refused)


def test_a_slug_with_a_slash_is_refused(tree, superuser):
    with pytest.raises(ValidationError) as refused:
        services.scope_rename(actor=superuser, scope=tree["sub"], slug="a/b")
    assert "may contain only letters, numbers, underscores and hyphens" in messages_of(refused)


def test_removing_a_scope_with_an_assignment_in_force_is_refused(tree, superuser):
    assign(make_user("val"), "Reader", scope=tree["vm"])

    with pytest.raises(ValidationError) as refused:
        services.scope_remove(actor=superuser, scope=tree["vm"])
    assert "1 assignment at or below it that has not ended" in messages_of(refused)
    assert Scope.objects.filter(pk=tree["vm"].pk).exists()


def test_removing_a_scope_with_an_eligible_assignment_to_come_is_refused(tree, superuser):
    from datetime import timedelta

    from django.utils import timezone

    later = timezone.now() + timedelta(days=2)
    assign(make_user("val"), "Reader", scope=tree["vm"], kind=AssignmentKind.ELIGIBLE, start=later)

    with pytest.raises(ValidationError) as refused:
        services.scope_remove(actor=superuser, scope=tree["vm"])
    assert "not ended: remove them first" in messages_of(refused)


def test_removing_a_scope_with_children_is_refused_naming_them(tree, superuser):
    with pytest.raises(ValidationError) as refused:
        services.scope_remove(actor=superuser, scope=tree["rg"])
    assert "still has scopes below it (web-vm-01)" in messages_of(refused)


def test_removing_a_leaf_deletes_it_and_the_settings_overridden_there(tree, superuser):
    RolePolicy.objects.create(role=Role.objects.get(name="Reader"), scope=tree["vm"])

    services.scope_remove(actor=superuser, scope=tree["vm"])

    assert not Scope.objects.filter(pk=tree["vm"].pk).exists()
    assert not RolePolicy.objects.filter(scope_id=tree["vm"].pk).exists()
    event = last_event("pim.scope.removed")
    assert event.before["path"] == tree["vm"].path
    assert event.before["role_settings_removed"] == 1
    assert event.actor == superuser


def test_creating_a_scope_is_audited_with_its_place(tree, superuser):
    scope = services.scope_create(
        actor=superuser, parent=tree["sub"], kind=ScopeKind.RESOURCE_GROUP, name="Data", slug="data"
    )

    assert scope.path == "/managementGroups/contoso/subscriptions/prod/resourceGroups/data/"
    event = last_event("pim.scope.created")
    assert event.after == {
        "name": "Data",
        "slug": "data",
        "kind": "resource_group",
        "path": scope.path,
        "parent": tree["sub"].path,
    }
    assert (event.actor, event.target_id) == (superuser, str(scope.pk))


def test_moving_is_audited_with_before_after_and_the_descendants_rewritten(
    tree, fabrikam, superuser
):
    services.scope_move(actor=superuser, scope=tree["sub"], new_parent=fabrikam)

    event = last_event("pim.scope.moved")
    assert event.before["path"] == "/managementGroups/contoso/subscriptions/prod/"
    assert event.before["parent"] == "/managementGroups/contoso/"
    assert event.after["path"] == fresh(tree["sub"]).path
    assert event.after["parent"] == fabrikam.path
    assert event.after["descendants_rewritten"] == 2


def test_renaming_is_audited_with_before_and_after(tree, superuser):
    services.scope_rename(actor=superuser, scope=tree["sub"], name="Production EU", slug="prod-eu")

    event = last_event("pim.scope.renamed")
    assert (event.before["name"], event.before["slug"]) == ("Production", "prod")
    assert (event.after["name"], event.after["slug"]) == ("Production EU", "prod-eu")
    assert event.after["path"].endswith("/subscriptions/prod-eu/")
    assert event.after["descendants_rewritten"] == 2


def test_an_owner_at_the_parent_may_add_a_scope_below_it(tree, resource_owner):
    scope = services.scope_create(
        actor=resource_owner,
        parent=tree["sub"],
        kind=ScopeKind.RESOURCE_GROUP,
        name="Data",
        slug="data",
    )
    assert scope.parent == tree["sub"]


def test_an_owner_of_a_scope_may_not_rename_it_away(tree, resource_owner):
    """Renaming changes the path its own grant hangs on: that is for whoever holds the parent."""
    with pytest.raises(PermissionDenied) as refused:
        services.scope_rename(actor=resource_owner, scope=tree["sub"], slug="mine")
    assert "change the scope tree below /managementGroups/contoso/" in str(refused.value)
    assert last_event("pim.security.forbidden").actor == resource_owner


def test_a_move_needs_the_right_at_the_new_parent_too(tree, fabrikam):
    owner = make_user("olga")
    assign(owner, "Owner", scope=tree["sub"], permanent=True)  # holds the old parent (of rg)

    with pytest.raises(PermissionDenied) as refused:
        services.scope_move(actor=owner, scope=tree["rg"], new_parent=tree["other_sub"])
    assert "below /managementGroups/contoso/subscriptions/sandbox/" in str(refused.value)
    assert fresh(tree["rg"]).parent == tree["sub"]


def test_an_outsider_may_not_create_a_scope(tree, outsider):
    with pytest.raises(PermissionDenied):
        services.scope_create(
            actor=outsider, parent=tree["root"], kind=ScopeKind.SUBSCRIPTION, name="X", slug="x"
        )
    assert last_event("pim.security.forbidden").message == "change the scope tree below /"


def test_the_system_may_change_the_tree_and_is_named(tree, fabrikam):
    services.scope_move(
        actor=Actor.system("connector azure"), scope=tree["sub"], new_parent=fabrikam
    )

    event = last_event("pim.scope.moved")
    assert (event.actor, event.actor_name) == (None, "system (connector azure)")


def _subtree(parent: Scope, resource_groups: int, resources_each: int) -> Scope:
    sub = make_scope("Big", ScopeKind.SUBSCRIPTION, parent, slug=f"big-{resource_groups}")
    for g in range(resource_groups):
        rg = make_scope(f"rg{g}", ScopeKind.RESOURCE_GROUP, sub)
        for r in range(resources_each):
            make_scope(f"r{g}-{r}", ScopeKind.RESOURCE, rg)
    return sub


def _queries_to_move(scope: Scope, new_parent: Scope, actor) -> int:
    with CaptureQueriesContext(connection) as queries:
        services.scope_move(actor=actor, scope=scope, new_parent=new_parent)
    return len(queries)


def test_moving_a_subtree_of_fifty_scopes_runs_few_queries(
    tree, fabrikam, superuser, django_assert_max_num_queries
):
    big = _subtree(tree["mg"], resource_groups=7, resources_each=6)  # 1 + 7 + 42 = 50
    assert Scope.objects.at_or_below(big).count() == 50
    services.scope_rename(actor=superuser, scope=tree["vm"], name="vm")  # the chain head exists

    with django_assert_max_num_queries(13):
        services.scope_move(actor=superuser, scope=big, new_parent=fabrikam)
    assert (
        Scope.objects.filter(path__startswith=f"{fabrikam.path}subscriptions/big-7/").count() == 50
    )


def test_the_queries_of_a_move_do_not_grow_with_the_subtree(tree, fabrikam, superuser):
    small = _subtree(tree["mg"], resource_groups=1, resources_each=3)
    big = _subtree(tree["mg"], resource_groups=7, resources_each=6)
    services.scope_rename(actor=superuser, scope=tree["vm"], name="vm")  # the chain head exists

    assert _queries_to_move(small, fabrikam, superuser) == _queries_to_move(
        big, fabrikam, superuser
    )
