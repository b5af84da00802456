"""Leaving a group ends the activations made from the group's eligibility."""

from datetime import timedelta

import pytest

from assignments import services
from assignments.authz import grants_for
from assignments.models import Assignment, AssignmentKind, RolePolicy
from audit.models import AuditEvent
from tests.factories import assign, make_group, make_user, role

PRA = "Privileged Role Administrator"


@pytest.fixture
def member(db):
    RolePolicy.objects.filter(role=role(PRA), scope=None).update(require_mfa_on_activation=False)
    user = make_user("mia")
    group = make_group("Identity Team", user)
    eligible = assign(group, PRA, kind=AssignmentKind.ELIGIBLE)
    request = services.request_activate(
        actor=user, eligible=eligible, duration=timedelta(hours=2), justification="on call"
    )
    assert grants_for(user).can_manage_directory()
    return user, group, request.result_assignment


def test_removing_the_member_from_the_group_ends_the_activation(member):
    user, group, activation = member

    group.user_set.remove(user)

    assert not grants_for(user).can_manage_directory()
    assert not Assignment.objects.get(pk=activation.pk).is_in_force()


def test_removing_the_group_from_the_user_ends_the_activation(member):
    user, group, activation = member

    user.groups.remove(group)

    assert not grants_for(user).can_manage_directory()


def test_clearing_the_group_ends_the_activation_and_is_audited(member):
    user, group, activation = member

    group.user_set.clear()

    assert not grants_for(user).can_manage_directory()
    event = AuditEvent.objects.filter(action="pim.assignment.removed").latest("id")
    assert event.target_id == str(activation.pk)
    assert "left the group Identity Team" in event.message


def test_leaving_another_group_keeps_the_activation(member):
    user, group, activation = member
    other = make_group("Book Club", user)

    other.user_set.remove(user)

    assert grants_for(user).can_manage_directory()


def test_a_direct_activation_survives_leaving_a_group(db):
    RolePolicy.objects.filter(role=role(PRA), scope=None).update(require_mfa_on_activation=False)
    user = make_user("noah")
    group = make_group("Identity Team", user)
    assign(group, PRA, kind=AssignmentKind.ELIGIBLE)
    direct = assign(user, PRA, kind=AssignmentKind.ELIGIBLE)
    services.request_activate(
        actor=user, eligible=direct, duration=timedelta(hours=2), justification="on call"
    )

    group.user_set.remove(user)

    assert grants_for(user).can_manage_directory()
