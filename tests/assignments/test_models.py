"""Scopes, assignment querysets and the resolution of role settings along the scope tree."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from assignments.models import (
    Assignment,
    AssignmentKind,
    NotificationEvent,
    RecipientKind,
    RolePolicy,
    Scope,
    ScopeKind,
    ancestor_paths,
)
from tests.factories import assign, make_group, make_user, role

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


# Scope -------------------------------------------------------------------------------------


def test_root_path_is_a_slash(tree):
    assert tree["root"].path == "/"


def test_management_group_path_is_below_root(tree):
    assert tree["mg"].path == "/managementGroups/contoso/"


def test_subscription_path_is_below_its_management_group(tree):
    assert tree["sub"].path == "/managementGroups/contoso/subscriptions/prod/"


def test_resource_group_path_is_below_its_subscription(tree):
    assert tree["rg"].path == "/managementGroups/contoso/subscriptions/prod/resourceGroups/web/"


def test_resource_path_is_below_its_resource_group(tree):
    assert tree["vm"].path == (
        "/managementGroups/contoso/subscriptions/prod/resourceGroups/web/resources/web-vm-01/"
    )


def test_subscription_directly_below_root_has_a_short_path(tree):
    sub = Scope.objects.create(
        name="Direct", slug="direct", kind=ScopeKind.SUBSCRIPTION, parent=tree["root"]
    )
    assert sub.path == "/subscriptions/direct/"


def test_depth_counts_levels_below_root(tree):
    depths = [tree[key].depth for key in ("root", "mg", "sub", "rg", "vm")]
    assert depths == [0, 1, 2, 3, 4]


def test_ancestor_paths_lists_every_scope_above_root_first(tree):
    assert ancestor_paths(tree["vm"].path) == [
        "/",
        "/managementGroups/contoso/",
        "/managementGroups/contoso/subscriptions/prod/",
        "/managementGroups/contoso/subscriptions/prod/resourceGroups/web/",
        tree["vm"].path,
    ]


def test_ancestor_paths_of_root_is_root_only():
    assert ancestor_paths("/") == ["/"]


def test_ancestors_are_the_scope_and_those_above_it_root_first(tree):
    assert list(tree["rg"].ancestors()) == [tree["root"], tree["mg"], tree["sub"], tree["rg"]]


def test_at_or_above_excludes_siblings_and_descendants(tree):
    found = set(Scope.objects.at_or_above(tree["sub"]))
    assert found == {tree["root"], tree["mg"], tree["sub"]}


def test_at_or_below_excludes_siblings_and_ancestors(tree):
    found = set(Scope.objects.at_or_below(tree["sub"]))
    assert found == {tree["sub"], tree["rg"], tree["vm"]}


def test_at_or_below_does_not_match_a_sibling_sharing_a_slug_prefix(tree):
    Scope.objects.create(
        name="Prod 2", slug="prod2", kind=ScopeKind.SUBSCRIPTION, parent=tree["mg"]
    )
    assert {s.slug for s in Scope.objects.at_or_below(tree["sub"])} == {"prod", "web", "web-vm-01"}


def test_root_manager_method_returns_the_directory(tree):
    assert Scope.objects.root() == tree["root"]


def test_root_with_a_parent_violates_the_constraint(tree):
    bad = Scope(
        name="Second root", slug="x", kind=ScopeKind.ROOT, parent=tree["mg"], path="/x/", depth=1
    )
    with pytest.raises(IntegrityError):
        Scope.objects.bulk_create([bad])


def test_non_root_without_parent_violates_the_constraint(db):
    bad = Scope(name="Orphan", slug="orphan", kind=ScopeKind.SUBSCRIPTION, path="/o/", depth=1)
    with pytest.raises(IntegrityError):
        Scope.objects.bulk_create([bad])


def test_root_with_a_parent_fails_model_validation(tree):
    bad = Scope(name="Second root", slug="x", kind=ScopeKind.ROOT, parent=tree["mg"], path="/x/")
    with pytest.raises(ValidationError) as refused:
        bad.validate_constraints()
    [message] = refused.value.messages
    assert "scope_only_root_has_no_parent" in message


def test_is_at_or_below(tree):
    assert tree["vm"].is_at_or_below(tree["sub"])
    assert not tree["other_sub"].is_at_or_below(tree["sub"])


# Assignment querysets -----------------------------------------------------------------------


@pytest.fixture
def window(db):
    """An active assignment in force from T0 to T0 + 1 hour."""
    user = make_user("wendy")
    return assign(user, "Reader", start=T0, end=T0 + timedelta(hours=1))


def test_in_force_exactly_at_start(window):
    assert window in Assignment.objects.in_force(T0)
    assert window.is_in_force(T0)


def test_not_in_force_just_before_start(window):
    assert window not in Assignment.objects.in_force(T0 - timedelta(microseconds=1))


def test_not_in_force_exactly_at_end(window):
    end = T0 + timedelta(hours=1)
    assert window not in Assignment.objects.in_force(end)
    assert not window.is_in_force(end)


def test_in_force_just_before_end(window):
    assert window in Assignment.objects.in_force(T0 + timedelta(hours=1, microseconds=-1))


def test_permanent_assignment_is_in_force_long_after_start(db):
    held = assign(make_user("pete"), "Reader", start=T0, permanent=True)
    assert held.is_permanent
    assert held in Assignment.objects.in_force(T0 + timedelta(days=3650))


def test_upcoming_before_start_and_not_after(window):
    assert window in Assignment.objects.upcoming(T0 - timedelta(seconds=1))
    assert window not in Assignment.objects.upcoming(T0)


def test_ended_from_end_on(window):
    end = T0 + timedelta(hours=1)
    assert window not in Assignment.objects.ended(end - timedelta(seconds=1))
    assert window in Assignment.objects.ended(end)
    assert window.has_ended(end)


def test_not_ended_includes_upcoming_and_in_force_but_not_ended(window):
    assert window in Assignment.objects.not_ended(T0 - timedelta(days=1))
    assert window in Assignment.objects.not_ended(T0)
    assert window not in Assignment.objects.not_ended(T0 + timedelta(hours=1))


def test_permanent_assignment_never_ends(db):
    held = assign(make_user("pete"), "Reader", start=T0, permanent=True)
    assert held not in Assignment.objects.ended(T0 + timedelta(days=3650))


def test_in_force_follows_the_clock_when_time_moves(window):
    with time_machine.travel(T0 - timedelta(minutes=1), tick=False):
        assert window not in Assignment.objects.in_force()
    with time_machine.travel(T0 + timedelta(minutes=59), tick=False):
        assert window in Assignment.objects.in_force()
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        assert window not in Assignment.objects.in_force()
        assert window in Assignment.objects.ended()


def test_eligible_and_active_filter_by_kind(db):
    user = make_user("kim")
    eligible = assign(user, "Reader", kind=AssignmentKind.ELIGIBLE)
    active = assign(user, "Contributor", kind=AssignmentKind.ACTIVE)
    assert list(Assignment.objects.eligible()) == [eligible]
    assert list(Assignment.objects.active()) == [active]


def test_for_user_includes_direct_assignments(db):
    user = make_user("dora")
    held = assign(user, "Reader")
    assert list(Assignment.objects.for_user(user)) == [held]


def test_for_user_includes_assignments_through_a_group(db):
    member = make_user("gus")
    group = make_group("Operators", member)
    held = assign(group, "Reader")
    assert list(Assignment.objects.for_user(member)) == [held]


def test_for_user_excludes_groups_the_user_is_not_in(outsider):
    group = make_group("Operators", make_user("gus"))
    assign(group, "Reader")
    assert not Assignment.objects.for_user(outsider).exists()


def test_at_or_above_inherits_from_the_scope_above(tree):
    user = make_user("ivy")
    at_sub = assign(user, "Reader", scope=tree["sub"])
    at_root = assign(user, "Contributor", scope=tree["root"])
    found = set(Assignment.objects.at_or_above(tree["vm"]))
    assert found == {at_sub, at_root}


def test_at_or_above_excludes_a_sibling_subscription(tree):
    assign(make_user("ivy"), "Reader", scope=tree["other_sub"])
    assert not Assignment.objects.at_or_above(tree["rg"]).exists()


def test_at_or_below_finds_assignments_under_a_scope(tree):
    user = make_user("ivy")
    below = assign(user, "Reader", scope=tree["rg"])
    assign(user, "Reader", scope=tree["root"])
    assign(user, "Reader", scope=tree["other_sub"])
    assert list(Assignment.objects.at_or_below(tree["sub"])) == [below]


def test_assignment_with_both_principals_violates_the_constraint(db):
    user = make_user("bo")
    group = make_group("Both")
    bad = Assignment(
        principal_user=user,
        principal_group=group,
        role=role("Reader"),
        scope=Scope.objects.root(),
        kind=AssignmentKind.ACTIVE,
        start=T0,
    )
    with pytest.raises(IntegrityError):
        bad.save()


def test_assignment_ending_before_start_violates_the_constraint(db):
    bad = Assignment(
        principal_user=make_user("bo"),
        role=role("Reader"),
        scope=Scope.objects.root(),
        kind=AssignmentKind.ACTIVE,
        start=T0,
        end=T0 - timedelta(seconds=1),
    )
    with pytest.raises(IntegrityError):
        bad.save()


# Role settings resolution -------------------------------------------------------------------


def _scoped_policy(role_name, scope, **values):
    return RolePolicy.objects.create(role=role(role_name), scope=scope, **values)


def test_role_default_applies_when_no_scope_has_its_own(tree):
    policy = RolePolicy.objects.effective_for(role("Contributor"), tree["rg"])
    assert policy.scope_id is None
    assert policy.pk == RolePolicy.objects.get(role__name="Contributor", scope=None).pk


def test_subscription_policy_reaches_its_resource_groups(tree):
    own = _scoped_policy("Contributor", tree["sub"], activation_max_duration=timedelta(hours=2))
    assert RolePolicy.objects.effective_for(role("Contributor"), tree["rg"]) == own


def test_subscription_policy_reaches_its_resources(tree):
    own = _scoped_policy("Contributor", tree["sub"], activation_max_duration=timedelta(hours=2))
    assert RolePolicy.objects.effective_for(role("Contributor"), tree["vm"]) == own


def test_lower_scope_policy_wins_over_the_one_above(tree):
    _scoped_policy("Contributor", tree["sub"], activation_max_duration=timedelta(hours=2))
    lower = _scoped_policy("Contributor", tree["rg"], activation_max_duration=timedelta(hours=1))
    effective = RolePolicy.objects.effective_for(role("Contributor"), tree["vm"])
    assert effective == lower
    assert effective.activation_max_duration == timedelta(hours=1)


def test_sibling_subscription_is_not_affected(tree):
    _scoped_policy("Contributor", tree["sub"], activation_max_duration=timedelta(hours=2))
    effective = RolePolicy.objects.effective_for(role("Contributor"), tree["other_sub"])
    assert effective.scope_id is None
    assert effective.activation_max_duration == timedelta(hours=8)


def test_policy_of_another_role_is_not_used(tree):
    _scoped_policy("Reader", tree["sub"], activation_max_duration=timedelta(hours=2))
    effective = RolePolicy.objects.effective_for(role("Contributor"), tree["sub"])
    assert effective.scope_id is None


def test_directory_role_ignores_scope(tree):
    # A scoped row for a directory role must never be taken (they are held at the root only).
    _scoped_policy("Global Administrator", tree["sub"], activation_max_duration=timedelta(hours=1))
    effective = RolePolicy.objects.effective_for(role("Global Administrator"), tree["sub"])
    assert effective.scope_id is None
    assert effective.activation_max_duration == timedelta(hours=8)


def test_role_without_any_policy_row_gets_unsaved_defaults(db):
    reader = role("Reader")
    RolePolicy.objects.filter(role=reader).delete()
    effective = RolePolicy.objects.effective_for(reader)
    assert effective.pk is None
    assert effective.role == reader
    assert effective.activation_max_duration == timedelta(hours=8)


@pytest.fixture
def defaults(db):
    return RolePolicy.objects.effective_for(role("Privileged Role Administrator"))


def test_default_activation_lasts_at_most_8_hours(defaults):
    assert defaults.activation_max_duration == timedelta(hours=8)


def test_default_activation_requires_mfa_and_justification(defaults):
    assert defaults.require_mfa_on_activation
    assert defaults.require_justification_on_activation


def test_default_activation_requires_no_approval_and_no_ticket(defaults):
    assert not defaults.require_approval
    assert not defaults.require_ticket_on_activation


def test_default_eligible_assignments_expire_after_365_days(defaults):
    assert not defaults.allow_permanent_eligible
    assert defaults.max_assignment_duration(AssignmentKind.ELIGIBLE) == timedelta(days=365)


def test_default_active_assignments_expire_after_180_days(defaults):
    assert not defaults.allow_permanent_active
    assert defaults.max_assignment_duration(AssignmentKind.ACTIVE) == timedelta(days=180)


def test_default_active_assignment_requires_justification_not_mfa(defaults):
    assert defaults.require_justification_on_active_assignment
    assert not defaults.require_mfa_on_active_assignment


def test_default_notifications_are_all_on(defaults):
    for event in NotificationEvent:
        for recipient in RecipientKind:
            setting = defaults.notification(event, recipient)
            assert setting["enabled"], (event, recipient)
            assert setting["default_recipients"], (event, recipient)
            assert not setting["critical_only"], (event, recipient)


def test_every_built_in_role_has_role_wide_settings(db):
    from assignments.models import Role

    without = Role.objects.exclude(policies__scope__isnull=True)
    assert not without.exists()


def test_permanent_allowed_means_no_maximum_duration(defaults):
    defaults.allow_permanent_eligible = True
    assert defaults.max_assignment_duration(AssignmentKind.ELIGIBLE) is None
    assert defaults.allows_permanent(AssignmentKind.ELIGIBLE)
    assert not defaults.allows_permanent(AssignmentKind.ACTIVE)


def test_notification_setting_overrides_only_what_it_names(defaults):
    defaults.notifications = {"activated": {"admin": {"enabled": False}}}
    setting = defaults.notification(NotificationEvent.ACTIVATED, RecipientKind.ADMIN)
    assert setting["enabled"] is False
    assert setting["default_recipients"] is True
