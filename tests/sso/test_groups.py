"""The groups claim: portal groups made and followed; leaving one ends what it gave."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from assignments import services
from assignments.authz import grants_for
from assignments.models import Assignment, AssignmentKind, RolePolicy
from audit.models import AuditEvent
from pim_portal.models import GroupIdentity, Source
from tests.factories import assign, make_group, role
from tests.sso.conftest import sso_sign_in

User = get_user_model()
PRA = "Privileged Role Administrator"


def oidc_group(claim_value: str, name: str | None = None) -> Group:
    group = Group.objects.create(name=name or claim_value)
    GroupIdentity.objects.create(group=group, source=Source.OIDC, claim_value=claim_value)
    return group


def test_groups_in_the_claim_become_portal_groups_with_the_user_in_them(client, sso):
    account = sso.account(groups=["pim-operators", "0f9c-guid-of-a-group"])

    sso_sign_in(client, sso, account["sub"])

    user = User.objects.get(oidc_subject=account["sub"])
    identities = GroupIdentity.objects.filter(source=Source.OIDC).select_related("group")
    assert sorted((i.claim_value, i.group.name) for i in identities) == [
        ("0f9c-guid-of-a-group", "0f9c-guid-of-a-group"),
        ("pim-operators", "pim-operators"),
    ]
    assert sorted(user.groups.values_list("name", flat=True)) == [
        "0f9c-guid-of-a-group",
        "pim-operators",
    ]
    assert AuditEvent.objects.filter(action="pim.group.created").count() == 2


def test_a_claim_value_named_like_a_local_group_gets_its_own_group(client, sso):
    local = make_group("auditors")
    account = sso.account(groups=["auditors"])

    sso_sign_in(client, sso, account["sub"])

    user = User.objects.get(oidc_subject=account["sub"])
    assert list(user.groups.values_list("name", flat=True)) == ["auditors (single sign-on)"]
    assert not local.user_set.exists()


def test_an_existing_oidc_group_is_found_by_its_claim_value_not_its_name(client, sso):
    group = oidc_group("a1b2", name="Cloud Operators")
    account = sso.account(groups=["a1b2"])

    sso_sign_in(client, sso, account["sub"])

    assert list(group.user_set.values_list("oidc_subject", flat=True)) == [account["sub"]]
    assert Group.objects.count() == 1


def test_leaving_a_group_at_the_provider_leaves_it_here_but_not_local_or_scim_groups(client, sso):
    account = sso.account(groups=["team-a", "team-b"])
    sso_sign_in(client, sso, account["sub"])
    user = User.objects.get(oidc_subject=account["sub"])
    local = make_group("local-group", user)
    scim = make_group("scim-group", user)
    GroupIdentity.objects.create(group=scim, source=Source.SCIM, external_id="x")
    sso.change(account["sub"], groups=["team-b"])

    sso_sign_in(Client(), sso, account["sub"])

    assert sorted(user.groups.values_list("name", flat=True)) == [
        "local-group",
        "scim-group",
        "team-b",
    ]
    assert local.user_set.filter(pk=user.pk).exists()
    event = AuditEvent.objects.filter(action="pim.security.sso_signin").latest("id")
    assert event.after["groups_removed"] == ["team-a"]
    assert event.after["groups_added"] == []


def test_no_groups_claim_leaves_memberships_alone(client, sso):
    account = sso.account(groups=["team-c"])
    sso_sign_in(client, sso, account["sub"])
    sso.change(account["sub"], groups=None)  # the provider stops sending the claim

    sso_sign_in(Client(), sso, account["sub"])

    user = User.objects.get(oidc_subject=account["sub"])
    assert list(user.groups.values_list("name", flat=True)) == ["team-c"]


@pytest.mark.usefixtures("tree")
def test_leaving_a_group_at_the_provider_ends_the_activation_it_gave(client, sso):
    RolePolicy.objects.filter(role=role(PRA), scope=None).update(require_mfa_on_activation=False)
    group = oidc_group("identity-admins")
    eligible = assign(group, PRA, kind=AssignmentKind.ELIGIBLE)
    account = sso.account(groups=["identity-admins"], amr=["pwd", "mfa"])
    sso_sign_in(client, sso, account["sub"])
    user = User.objects.get(oidc_subject=account["sub"])
    activation = services.request_activate(
        actor=user, eligible=eligible, duration=timedelta(hours=2), justification="on call"
    ).result_assignment
    assert grants_for(user).can_manage_directory()
    sso.change(account["sub"], groups=[])

    sso_sign_in(Client(), sso, account["sub"])

    assert not group.user_set.filter(pk=user.pk).exists()
    assert not Assignment.objects.get(pk=activation.pk).is_in_force()
    assert not grants_for(User.objects.get(pk=user.pk)).can_manage_directory()
    ended = AuditEvent.objects.get(action="pim.assignment.removed")
    assert ended.target_id == str(activation.pk)
    assert "left the group identity-admins" in ended.message
