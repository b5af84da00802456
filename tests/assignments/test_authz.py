"""The authorization module: permissions come only from assignments in force, held or inherited."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404

from assignments import authz
from assignments.authz import grants_for
from assignments.models import AssignmentKind
from audit.models import AuditEvent
from tests.factories import assign, make_group, make_user, role

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def test_permanent_pra_may_manage_directory(pra):
    assert grants_for(pra).can_manage_directory()


def test_global_administrator_may_manage_directory(global_admin):
    assert grants_for(global_admin).can_manage_directory()


def test_outsider_holds_nothing(outsider):
    grants = grants_for(outsider)
    assert grants.pairs == []
    assert not grants.can_view_directory()
    assert not grants.can_view_resources()


def test_anonymous_user_holds_nothing(db):
    assert grants_for(AnonymousUser()).pairs == []


def test_eligible_pra_grants_nothing(eligible_user):
    grants = grants_for(eligible_user)
    assert not grants.can_manage_directory()
    assert not grants.can_view_directory()


def test_eligible_owner_grants_nothing(tree):
    user = make_user("eve")
    assign(user, "Owner", scope=tree["sub"], kind=AssignmentKind.ELIGIBLE)
    assert not grants_for(user).can_manage_scope(tree["sub"])


def test_active_pra_grants_until_exactly_its_end(db):
    user = make_user("tom")
    end = T0 + timedelta(hours=1)
    assign(user, "Privileged Role Administrator", start=T0, end=end)
    assert grants_for(user, at=end - timedelta(microseconds=1)).can_manage_directory()
    assert not grants_for(user, at=end).can_manage_directory()


def test_active_pra_grants_nothing_before_its_start(db):
    user = make_user("tom")
    assign(user, "Privileged Role Administrator", start=T0, end=T0 + timedelta(hours=1))
    assert not grants_for(user, at=T0 - timedelta(seconds=1)).can_manage_directory()
    assert grants_for(user, at=T0).can_manage_directory()


def test_grants_follow_the_clock_without_any_job(db):
    user = make_user("tom")
    assign(user, "Privileged Role Administrator", start=T0, end=T0 + timedelta(hours=1))
    with time_machine.travel(T0 + timedelta(minutes=30), tick=False):
        assert grants_for(user).can_manage_directory()
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        assert not grants_for(user).can_manage_directory()


def test_inactive_user_holds_nothing(pra):
    pra.is_active = False
    pra.save()
    assert not grants_for(pra).can_manage_directory()


def test_grants_through_a_group(db):
    member = make_user("gus")
    assign(make_group("PIM admins", member), "Privileged Role Administrator", permanent=True)
    assert grants_for(member).can_manage_directory()


def test_eligible_group_grants_nothing(db):
    member = make_user("gus")
    group = make_group("PIM admins", member)
    assign(group, "Privileged Role Administrator", kind=AssignmentKind.ELIGIBLE)
    assert not grants_for(member).can_manage_directory()


def test_owner_at_subscription_may_manage_its_resource_group(resource_owner, tree):
    grants = grants_for(resource_owner)
    assert grants.can_manage_scope(tree["rg"])
    assert grants.can_manage_role(role("Contributor"), tree["vm"])


def test_owner_at_subscription_may_not_manage_the_sibling_subscription(resource_owner, tree):
    grants = grants_for(resource_owner)
    assert not grants.can_manage_scope(tree["other_sub"])
    assert not grants.can_view_scope(tree["other_sub"])


def test_owner_at_subscription_may_not_manage_the_scope_above(resource_owner, tree):
    assert not grants_for(resource_owner).can_manage_scope(tree["mg"])


def test_owner_at_subscription_may_not_manage_directory_roles(resource_owner, tree):
    grants = grants_for(resource_owner)
    assert not grants.can_manage_directory()
    assert not grants.can_manage_role(role("Privileged Role Administrator"), tree["sub"])
    assert not grants.can_view_role(role("Global Administrator"), tree["sub"])


def test_owner_may_view_resources(resource_owner):
    assert grants_for(resource_owner).can_view_resources()


def test_contributor_may_not_manage_resources(tree):
    user = make_user("carl")
    assign(user, "Contributor", scope=tree["sub"])
    assert not grants_for(user).can_manage_scope(tree["rg"])


def test_security_reader_may_view_but_not_manage(security_reader, tree):
    grants = grants_for(security_reader)
    assert grants.can_view_directory()
    assert grants.can_view_scope(tree["vm"])
    assert grants.can_view_role(role("Owner"), tree["sub"])
    assert not grants.can_manage_directory()
    assert not grants.can_manage_scope(tree["sub"])
    assert not grants.can_manage_role(role("Privileged Role Administrator"))


def test_security_administrator_may_view_but_not_manage(tree):
    user = make_user("sue")
    assign(user, "Security Administrator", permanent=True)
    grants = grants_for(user)
    assert grants.can_view_directory()
    assert not grants.can_manage_directory()


def test_pra_at_root_may_view_but_not_manage_resource_scopes(pra, tree):
    # Managing resource roles needs Owner or User Access Administrator (DESIGN, Authorization).
    grants = grants_for(pra)
    assert grants.can_view_scope(tree["vm"])
    assert not grants.can_manage_scope(tree["vm"])


def test_top_paths_drops_nested_scopes(tree):
    user = make_user("ivy")
    assign(user, "Owner", scope=tree["sub"])
    assign(user, "Owner", scope=tree["rg"])
    assert grants_for(user).top_paths("resources.manage") == [tree["sub"].path]


def test_grants_for_is_one_query(pra, django_assert_num_queries):
    with django_assert_num_queries(1):
        grants_for(pra)


# require_* helpers -------------------------------------------------------------------------


def test_require_manage_role_returns_grants_when_allowed(pra):
    grants = authz.require_manage_role(pra, role("Global Administrator"), None)
    assert grants.can_manage_directory()


def test_require_manage_role_refuses_and_audits(security_reader):
    with pytest.raises(PermissionDenied):
        authz.require_manage_role(security_reader, role("Global Administrator"), None)
    event = AuditEvent.objects.get(action="pim.security.forbidden")
    assert event.actor == security_reader
    assert "Global Administrator" in event.message


def test_require_view_scope_answers_404_and_audits(outsider, tree):
    with pytest.raises(Http404):
        authz.require_view_scope(outsider, tree["sub"])
    event = AuditEvent.objects.get(action="pim.security.forbidden")
    assert event.target_id == str(tree["sub"].pk)


def test_require_view_directory_refuses_anonymous_and_audits_without_actor(db):
    with pytest.raises(PermissionDenied):
        authz.require_view_directory(AnonymousUser())
    event = AuditEvent.objects.get(action="pim.security.forbidden")
    assert event.actor is None
