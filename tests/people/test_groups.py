"""Group membership in the portal: adding and removing members (a removal ends what the group
gave), role-assignable groups kept for Global and Privileged Role Administrators, and groups
an identity provider owns read-only."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assignments.models import AssignmentKind
from audit.models import AuditEvent
from pim_portal.models import GroupIdentity, Source
from tests.factories import assign, make_group, make_user

pytestmark = pytest.mark.django_db


def as_(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def mo(db):
    return make_user("mo", display_name="Mo Member")


@pytest.fixture
def helpdesk(db):
    return make_group("Helpdesk")


@pytest.fixture
def tier0(db):
    """Role-assignable: eligible for Privileged Role Administrator."""
    group = make_group("Tier 0")
    assign(group, "Privileged Role Administrator", kind=AssignmentKind.ELIGIBLE)
    return group


def add(client, group, member):
    return client.post(reverse("people:group_detail", args=[group.pk]), {"member": member})


def remove(client, group, user):
    return client.post(reverse("people:group_member_remove", args=[group.pk, user.pk]))


def refusal(actor) -> str:
    return AuditEvent.objects.get(action="pim.security.forbidden", actor_id=actor.pk).message


def test_user_admin_adds_a_member_audited(user_admin, helpdesk, mo):
    response = add(as_(user_admin), helpdesk, "mo")

    assert response.status_code == 302
    assert helpdesk.user_set.filter(pk=mo.pk).exists()
    event = AuditEvent.objects.get(action="pim.group.member_added")
    assert (event.actor, event.target_id, event.after) == (
        user_admin,
        str(helpdesk.pk),
        {"member": "mo"},
    )


def test_adding_a_member_twice_changes_nothing(user_admin, helpdesk, mo):
    add(as_(user_admin), helpdesk, "mo")
    add(as_(user_admin), helpdesk, "mo@example.com")
    assert AuditEvent.objects.filter(action="pim.group.member_added").count() == 1


def test_an_unknown_member_is_refused_on_the_form(user_admin, helpdesk):
    response = add(as_(user_admin), helpdesk, "nobody")
    assert response.status_code == 200
    assert response.context["form"].errors.as_data()["member"][0].code == "member_unknown"


def test_removing_a_member_ends_the_activations_made_through_the_group(clock, user_admin, mo):
    group = make_group("Readers", mo)
    eligible = assign(group, "Security Reader", kind=AssignmentKind.ELIGIBLE)
    activation = assign(mo, "Security Reader", activated_from=eligible)

    response = remove(as_(user_admin), group, mo)

    assert response.status_code == 302
    assert not group.user_set.filter(pk=mo.pk).exists()
    activation.refresh_from_db()
    assert activation.end <= timezone.now()
    assert AuditEvent.objects.filter(action="pim.group.member_removed").count() == 1
    assert AuditEvent.objects.filter(action="pim.assignment.removed").count() == 1


def test_user_admin_may_not_change_a_role_assignable_group(user_admin, tier0, mo):
    response = add(as_(user_admin), tier0, "mo")

    assert response.status_code == 403
    assert "it is role-assignable" in refusal(user_admin)
    assert not tier0.user_set.exists()


def test_user_admin_may_not_remove_from_a_role_assignable_group(user_admin, tier0, mo):
    tier0.user_set.add(mo)
    assert remove(as_(user_admin), tier0, mo).status_code == 403
    assert tier0.user_set.filter(pk=mo.pk).exists()


def test_pra_changes_a_role_assignable_group(pra, tier0, mo):
    assert add(as_(pra), tier0, "mo").status_code == 302
    assert tier0.user_set.filter(pk=mo.pk).exists()


def test_global_admin_changes_a_role_assignable_group(global_admin, tier0, mo):
    assert add(as_(global_admin), tier0, "mo").status_code == 302


def test_user_admin_may_not_change_the_groups_of_an_administrator(user_admin, helpdesk, pra):
    response = add(as_(user_admin), helpdesk, "pat")
    assert response.status_code == 403
    assert "only a Global Administrator may" in refusal(user_admin)


def test_provider_groups_members_are_read_only(user_admin, mo):
    group = make_group("Engineering", mo)
    GroupIdentity.objects.create(group=group, source=Source.SCIM, external_id="g-1")

    response = remove(as_(user_admin), group, mo)
    page = as_(user_admin).get(response["Location"]).content.decode()

    assert group.user_set.filter(pk=mo.pk).exists()
    assert "change its members in your identity provider" in page
    assert 'id="member-add"' not in page
    assert not AuditEvent.objects.filter(action="pim.group.member_removed").exists()


def test_removing_someone_who_is_not_a_member_is_a_404(user_admin, helpdesk, mo):
    assert remove(as_(user_admin), helpdesk, mo).status_code == 404


def test_group_list_shows_members_source_and_role_assignable(user_admin, tier0, mo):
    make_group("Helpdesk", mo, make_user("nia"))
    sso = make_group("Sales")
    GroupIdentity.objects.create(group=sso, source=Source.OIDC, claim_value="sales")
    page = as_(user_admin).get(reverse("people:group_list"))
    rows = {group.name: group for group in page.context["groups"]}
    assert rows["Helpdesk"].member_count == 2
    assert rows["Tier 0"].role_assignable and not rows["Helpdesk"].role_assignable
    assert "Single sign-on" in page.content.decode()


def test_group_list_search_and_source_filter(user_admin):
    make_group("Helpdesk")
    make_group("Finance")
    scim = make_group("Help Center")
    GroupIdentity.objects.create(group=scim, source=Source.SCIM)
    client = as_(user_admin)

    def names(**q):
        return [g.name for g in client.get(reverse("people:group_list"), q).context["groups"]]

    assert names(q="help") == ["Help Center", "Helpdesk"]
    assert names(q="help", source="local") == ["Helpdesk"]
    assert names(source="scim") == ["Help Center"]


def test_group_page_lists_and_searches_members(global_reader, mo):
    group = make_group("Helpdesk", mo, make_user("nia", display_name="Nia Other"))
    client = as_(global_reader)
    page = client.get(reverse("people:group_detail", args=[group.pk]), {"q": "mo"})
    assert [m.username for m in page.context["members"]] == ["mo"]
    assert 'id="member-add"' not in page.content.decode()  # a reader only looks


def test_group_page_empty_state(user_admin):
    group = Group.objects.create(name="Empty")
    page = as_(user_admin).get(reverse("people:group_detail", args=[group.pk]))
    assert "This group has no members." in page.content.decode()
