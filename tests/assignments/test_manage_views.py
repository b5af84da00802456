"""The administrator pages, through the HTTP client, as the personas who use them."""

import csv
import io
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.messages import get_messages
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from assignments import queries, services
from assignments.forms.manage import RolePolicyForm
from assignments.models import Assignment, AssignmentKind, RolePolicy
from audit.models import AuditEvent
from pim_portal.mail import send_templated_mail
from tests.factories import assign, make_group, make_user, role

pytestmark = pytest.mark.django_db


def url(name: str, *args) -> str:
    return reverse(f"assignments:{name}", args=args)


def local(value) -> str:
    """A moment as a datetime-local input holds it, in the active (viewer's) time zone."""
    return timezone.localtime(value).strftime("%Y-%m-%dT%H:%M")


def page_rows(response) -> list:
    return list(response.context["page_obj"].object_list)


def flash(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# Directory roles -------------------------------------------------------------------------


def test_directory_roles_counts_eligible_active_and_permanent_members(
    client_for, pra, eligible_user
):
    response = client_for(pra).get(url("directory_roles"))

    assert response.status_code == 200
    pra_role = next(r for r in page_rows(response) if r.name == "Privileged Role Administrator")
    assert (pra_role.eligible_count, pra_role.active_count, pra_role.permanent_count) == (
        1,
        1,
        0 + 1,
    )


def test_directory_roles_counts_only_assignments_in_force(client_for, pra):
    now = timezone.now()
    ended = make_user("ed")
    later = make_user("lou")
    assign(
        ended, "Billing Administrator", start=now - timedelta(days=9), end=now - timedelta(days=1)
    )
    assign(
        later, "Billing Administrator", start=now + timedelta(days=1), end=now + timedelta(days=9)
    )

    response = client_for(pra).get(url("directory_roles"))

    billing = next(r for r in page_rows(response) if r.name == "Billing Administrator")
    assert (billing.eligible_count, billing.active_count) == (0, 0)


def test_directory_roles_search_by_name(client_for, security_reader):
    response = client_for(security_reader).get(url("directory_roles"), {"q": "reader"})

    assert {r.name for r in page_rows(response)} == {"Security Reader", "Global Reader"}
    assert 'value="reader"' in response.content.decode()


def test_directory_roles_search_without_match_shows_empty_state(client_for, security_reader):
    response = client_for(security_reader).get(url("directory_roles"), {"q": "nothing-like"})

    assert "No directory role matches that name." in response.content.decode()


def test_directory_roles_link_to_each_role(client_for, security_reader):
    response = client_for(security_reader).get(url("directory_roles"))

    assert url("role_detail", role("Global Reader").pk) in response.content.decode()


# Role detail -----------------------------------------------------------------------------


def test_role_detail_eligible_tab_lists_eligible_members_only(client_for, pra, eligible_user):
    response = client_for(pra).get(url("role_detail", role("Privileged Role Administrator").pk))

    assert [a.principal_user for a in page_rows(response)] == [eligible_user]
    assert page_rows(response)[0].membership == "Direct"


def test_role_detail_active_tab_lists_active_members(client_for, pra, eligible_user):
    response = client_for(pra).get(
        url("role_detail", role("Privileged Role Administrator").pk), {"tab": "active"}
    )

    assert [a.principal_user for a in page_rows(response)] == [pra]
    assert "Permanent" in response.content.decode()


def test_role_detail_expired_tab_lists_ended_newest_first(client_for, pra):
    now = timezone.now()
    older = assign(
        make_user("old"),
        "Billing Administrator",
        start=now - timedelta(days=20),
        end=now - timedelta(days=10),
    )
    newer = assign(
        make_user("new"),
        "Billing Administrator",
        start=now - timedelta(days=20),
        end=now - timedelta(days=2),
    )

    response = client_for(pra).get(
        url("role_detail", role("Billing Administrator").pk), {"tab": "expired"}
    )

    assert page_rows(response) == [newer, older]
    assert url("assignment_renew", newer.pk) in response.content.decode()


def test_role_detail_shows_a_group_member_as_the_group(client_for, pra):
    group = make_group("Billing team", make_user("bea"))
    assign(group, "Billing Administrator", kind=AssignmentKind.ELIGIBLE)

    response = client_for(pra).get(url("role_detail", role("Billing Administrator").pk))

    (row,) = page_rows(response)
    assert row.principal_type == "Group"
    assert "Billing team" in response.content.decode()


def test_role_detail_filters_by_principal_name(client_for, pra):
    assign(make_user("ann", display_name="Ann Able"), "Billing Administrator")
    assign(make_user("bob", display_name="Bob Baker"), "Billing Administrator")

    response = client_for(pra).get(
        url("role_detail", role("Billing Administrator").pk), {"tab": "active", "q": "bak"}
    )

    assert [str(a.principal) for a in page_rows(response)] == ["Bob Baker"]


def test_role_detail_pages_by_25_newest_first_with_a_cursor(client_for, pra):
    for number in range(30):
        assign(make_user(f"user{number}"), "Billing Administrator")
    newest_first = list(
        Assignment.objects.filter(role__name="Billing Administrator").order_by("-start", "-pk")
    )

    client = client_for(pra)
    target = url("role_detail", role("Billing Administrator").pk)
    first = client.get(target, {"tab": "active"})
    after = first.context["page_obj"].next_cursor
    second = client.get(target, {"tab": "active", "after": after})
    before = second.context["page_obj"].previous_cursor
    back = client.get(target, {"tab": "active", "before": before})

    assert page_rows(first) == newest_first[:25]
    assert page_rows(second) == newest_first[25:]
    assert not second.context["page_obj"].has_next
    assert page_rows(back) == newest_first[:25]
    assert not back.context["page_obj"].has_previous
    assert f'href="?tab=active&amp;after={after}"' in first.content.decode()
    assert "30 in all" in first.content.decode()


def test_expired_members_page_by_their_end_most_recent_first(client_for, pra):
    now = timezone.now()
    for number in range(30):
        assign(
            make_user(f"user{number}"),
            "Billing Administrator",
            start=now - timedelta(days=40),
            end=now - timedelta(days=30 - number),
        )
    most_recent_first = list(
        Assignment.objects.filter(role__name="Billing Administrator").order_by("-end", "-pk")
    )

    client = client_for(pra)
    target = url("role_detail", role("Billing Administrator").pk)
    first = client.get(target, {"tab": "expired"})
    second = client.get(target, {"tab": "expired", "after": first.context["page_obj"].next_cursor})

    assert page_rows(first) + page_rows(second) == most_recent_first


@pytest.mark.parametrize("name", ["after", "before"])
@pytest.mark.parametrize(
    "cursor", ["junk", "1.2.3", "12", "1.", ".5", "-99999999999999999.1", "1.\x00"]
)
def test_a_bad_cursor_gives_page_one(client_for, pra, name, cursor):
    for number in range(30):
        assign(make_user(f"user{number}"), "Billing Administrator")
    client = client_for(pra)
    target = url("role_detail", role("Billing Administrator").pk)

    response = client.get(target, {"tab": "active", name: cursor})

    assert response.status_code == 200
    assert page_rows(response) == page_rows(client.get(target, {"tab": "active"}))
    assert not response.context["page_obj"].has_previous


def test_role_detail_shows_actions_to_a_manager(client_for, pra, eligible_user):
    assignment = Assignment.objects.get(principal_user=eligible_user, role__kind="directory")

    response = client_for(pra).get(url("role_detail", assignment.role_id))

    content = response.content.decode()
    for action in ("assignment_update", "assignment_remove", "assignment_extend"):
        assert url(action, assignment.pk) in content
    assert f"{url('assignment_add')}?role={assignment.role_id}&amp;scope=" in content


def test_role_detail_hides_actions_from_a_reader(client_for, security_reader, eligible_user):
    assignment = Assignment.objects.get(principal_user=eligible_user, role__kind="directory")

    response = client_for(security_reader).get(url("role_detail", assignment.role_id))

    content = response.content.decode()
    assert str(eligible_user) in content
    assert url("assignment_update", assignment.pk) not in content
    assert "Add assignments" not in content


def test_resource_role_page_marks_members_inherited_from_above(client_for, resource_owner, tree):
    response = client_for(resource_owner).get(
        url("scope_role_detail", tree["rg"].pk, role("Owner").pk), {"tab": "active"}
    )

    (row,) = page_rows(response)
    assert row.principal_user == resource_owner
    assert row.membership == "Inherited from Subscription Production"
    assert "Inherited from Subscription Production" in response.content.decode()


def test_resource_role_page_offers_no_action_on_assignments_from_above_the_owner(
    client_for, resource_owner, tree
):
    above = assign(make_user("max"), "Reader", scope=tree["mg"])

    response = client_for(resource_owner).get(
        url("scope_role_detail", tree["sub"].pk, role("Reader").pk), {"tab": "active"}
    )

    assert page_rows(response) == [above]
    assert url("assignment_update", above.pk) not in response.content.decode()


# Resources -------------------------------------------------------------------------------


def test_resources_shows_only_the_scopes_the_owner_may_view(client_for, resource_owner, tree):
    response = client_for(resource_owner).get(url("resources"))

    assert [s.name for s in page_rows(response)] == ["Production", "Web", "web-vm-01"]
    assert [len(s.indent) for s in page_rows(response)] == [0, 1, 2]


def test_resources_shows_every_scope_to_a_reader(client_for, security_reader, tree):
    response = client_for(security_reader).get(url("resources"))

    assert [s.name for s in page_rows(response)][:3] == ["Directory", "Contoso", "Production"]
    assert len(page_rows(response)) == 6


def test_resources_counts_resource_role_members_held_at_each_scope(
    client_for, resource_owner, eligible_user, tree
):
    response = client_for(resource_owner).get(url("resources"))

    production = page_rows(response)[0]
    assert (production.eligible_count, production.active_count) == (1, 1)
    assert production.permanent_count == 1


def test_resources_search_by_scope_name(client_for, security_reader, tree):
    response = client_for(security_reader).get(url("resources"), {"q": "web"})

    assert [s.name for s in page_rows(response)] == ["Web", "web-vm-01"]


def test_scope_detail_shows_breadcrumb_children_and_roles(client_for, resource_owner, tree):
    response = client_for(resource_owner).get(url("scope_detail", tree["rg"].pk))

    content = response.content.decode()
    assert [node.name for node, _ in response.context["breadcrumb"]] == [
        "Directory",
        "Contoso",
        "Production",
        "Web",
    ]
    # Olivia may open Production but not what lies above it.
    assert [can for _, can in response.context["breadcrumb"]] == [False, False, True, True]
    assert [child.name for child in page_rows(response)] == ["web-vm-01"]
    assert url("scope_role_detail", tree["rg"].pk, role("Owner").pk) in content


def test_scope_detail_counts_members_inherited_from_above(client_for, resource_owner, tree):
    assign(make_user("rita"), "Owner", scope=tree["rg"], kind=AssignmentKind.ELIGIBLE)

    response = client_for(resource_owner).get(url("scope_detail", tree["rg"].pk))

    owner = next(r for r in response.context["roles"] if r.name == "Owner")
    assert (owner.direct_eligible, owner.direct_active) == (1, 0)
    assert [(i["scope"], i["active"]) for i in owner.inherited] == [(tree["sub"], 1)]
    assert owner.total == 2
    assert "1 eligible, 1 active from Subscription Production" not in response.content.decode()
    assert "0 eligible, 1 active from Subscription Production" in response.content.decode()


def test_scope_outside_the_owners_reach_is_not_found(client_for, resource_owner, tree):
    response = client_for(resource_owner).get(url("scope_detail", tree["other_sub"].pk))

    assert response.status_code == 404


# Add assignments -------------------------------------------------------------------------


def add_data(*principals, role_name: str, scope=None, **fields) -> dict:
    data = {
        "principals": [
            f"group:{p.pk}" if p.__class__.__name__ == "Group" else f"user:{p.pk}"
            for p in principals
        ],
        "role": role(role_name).pk,
        "scope": scope.pk if scope else "",
        "kind": AssignmentKind.ELIGIBLE,
        "start": "",
        "end": "",
        "justification": "",
        "ticket_number": "",
        "ticket_system": "",
        "mfa_code": "",
    }
    data.update(fields)
    return data


def test_add_form_has_every_field_and_an_assign_button(client_for, pra):
    response = client_for(pra).get(url("assignment_add"))

    content = response.content.decode()
    assert 'value="Assign"' in content
    assert "data-principal-picker" in content  # a search, not a list of every user
    for name in ("principals", "role", "scope", "kind", "permanent", "start", "end"):
        assert f'name="{name}"' in content
    for name in ("justification", "ticket_number", "ticket_system", "mfa_code"):
        assert f'name="{name}"' in content
    assert 'type="datetime-local"' in content


def test_add_form_preselects_role_and_scope_from_the_query(client_for, resource_owner, tree):
    contributor = role("Contributor")

    response = client_for(resource_owner).get(
        url("assignment_add"), {"role": contributor.pk, "scope": tree["rg"].pk}
    )

    form = response.context["form"]
    assert form.initial["role"] == contributor.pk
    assert form.initial["scope"] == tree["rg"].pk
    assert response.context["policy"].role == contributor


def test_add_form_offers_only_roles_and_scopes_the_owner_manages(client_for, resource_owner, tree):
    response = client_for(resource_owner).get(url("assignment_add"))

    form = response.context["form"]
    assert {r.kind for r in form.fields["role"].queryset} == {"resource"}
    assert {s.name for s in form.fields["scope"].queryset} == {"Production", "Web", "web-vm-01"}


def test_pra_assigns_two_users_eligible_with_the_default_end(client_for, pra):
    ann, bob = make_user("ann"), make_user("bob")

    response = client_for(pra).post(
        url("assignment_add"), add_data(ann, bob, role_name="Security Reader")
    )

    reader = role("Security Reader")
    assert response.status_code == 302
    assert response["Location"] == url("role_detail", reader.pk)
    made = Assignment.objects.filter(role=reader, kind=AssignmentKind.ELIGIBLE)
    assert {a.principal_user for a in made} == {ann, bob}
    for assignment in made:
        assert assignment.scope.is_root
        assert abs(assignment.end - assignment.start - timedelta(days=365)) < timedelta(seconds=5)
    assert flash(response) == ["2 principals assigned to Security Reader as eligible."]


def test_assigning_a_group_makes_the_group_the_principal(client_for, pra):
    group = make_group("Readers", make_user("ann"))

    client_for(pra).post(url("assignment_add"), add_data(group, role_name="Security Reader"))

    assert Assignment.objects.get(role=role("Security Reader")).principal_group == group


def test_owner_assigns_a_resource_role_and_returns_to_its_scope_page(
    client_for, resource_owner, tree
):
    ann = make_user("ann")

    response = client_for(resource_owner).post(
        url("assignment_add"), add_data(ann, role_name="Contributor", scope=tree["rg"])
    )

    assert response["Location"] == url("scope_role_detail", tree["rg"].pk, role("Contributor").pk)
    assert Assignment.objects.get(principal_user=ann).scope == tree["rg"]


def test_owner_cannot_assign_outside_their_scope(client_for, resource_owner, tree):
    ann = make_user("ann")

    response = client_for(resource_owner).post(
        url("assignment_add"), add_data(ann, role_name="Contributor", scope=tree["other_sub"])
    )

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Assignment.objects.filter(principal_user=ann).exists()


def test_resource_role_needs_a_scope(client_for, resource_owner):
    ann = make_user("ann")

    response = client_for(resource_owner).post(
        url("assignment_add"), add_data(ann, role_name="Contributor")
    )

    assert "Choose the scope where Contributor applies." in response.content.decode()


def test_add_needs_a_principal(client_for, pra):
    response = client_for(pra).post(url("assignment_add"), add_data(role_name="Security Reader"))

    assert "Choose at least one user or group." in response.content.decode()


def test_permanent_assignment_refused_when_settings_forbid_it(client_for, pra):
    ann = make_user("ann")

    response = client_for(pra).post(
        url("assignment_add"), add_data(ann, role_name="Security Reader", permanent="on")
    )

    assert response.status_code == 200
    assert (
        "Permanent eligible assignments are not allowed for Security Reader"
        in response.content.decode()
    )
    assert not Assignment.objects.filter(principal_user=ann).exists()


def test_assignment_longer_than_settings_allow_refused(client_for, pra):
    ann = make_user("ann")
    end = timezone.now() + timedelta(days=400)

    response = client_for(pra).post(
        url("assignment_add"), add_data(ann, role_name="Security Reader", end=local(end))
    )

    assert (
        "The settings of Security Reader allow eligible assignments of at most 365 days."
        in response.content.decode()
    )
    assert not Assignment.objects.filter(principal_user=ann).exists()


def test_assignment_shorter_than_five_minutes_refused(client_for, pra):
    ann = make_user("ann")
    start = timezone.now() + timedelta(hours=1)

    response = client_for(pra).post(
        url("assignment_add"),
        add_data(
            ann,
            role_name="Security Reader",
            start=local(start),
            end=local(start + timedelta(minutes=2)),
        ),
    )

    assert "An assignment must last at least 5 minutes." in response.content.decode()
    assert not Assignment.objects.filter(principal_user=ann).exists()


def test_assignment_ending_before_it_starts_refused(client_for, pra):
    ann = make_user("ann")
    start = timezone.now() + timedelta(days=2)

    response = client_for(pra).post(
        url("assignment_add"),
        add_data(
            ann,
            role_name="Security Reader",
            start=local(start),
            end=local(start - timedelta(days=1)),
        ),
    )

    assert "The end must be after the start." in response.content.decode()
    assert not Assignment.objects.filter(principal_user=ann).exists()


def test_active_assignment_without_justification_refused(client_for, pra):
    ann = make_user("ann")

    response = client_for(pra).post(
        url("assignment_add"),
        add_data(ann, role_name="Security Reader", kind=AssignmentKind.ACTIVE),
    )

    assert (
        "A justification is required for active assignments of Security Reader."
        in response.content.decode()
    )
    assert not Assignment.objects.filter(principal_user=ann).exists()


def test_every_broken_rule_is_shown_at_once(client_for, pra):
    ann = make_user("ann")

    response = client_for(pra).post(
        url("assignment_add"),
        add_data(ann, role_name="Security Reader", kind=AssignmentKind.ACTIVE, permanent="on"),
    )

    content = response.content.decode()
    assert "Permanent active assignments are not allowed" in content
    assert "A justification is required for active assignments" in content


def test_existing_holder_refused(client_for, pra, eligible_user):
    response = client_for(pra).post(
        url("assignment_add"), add_data(eligible_user, role_name="Privileged Role Administrator")
    )

    assert "Erin Eligible already has an eligible assignment" in response.content.decode()


def test_times_are_read_in_the_viewers_time_zone(client_for, pra):
    pra.time_zone = "Europe/Berlin"
    pra.save()
    ann = make_user("ann")
    start = (timezone.now() + timedelta(days=3)).astimezone(ZoneInfo("Europe/Berlin"))
    start = start.replace(hour=10, minute=0, second=0, microsecond=0)

    client_for(pra).post(
        url("assignment_add"),
        add_data(
            ann,
            role_name="Security Reader",
            start=start.strftime("%Y-%m-%dT%H:%M"),
            end=(start + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
        ),
    )

    assignment = Assignment.objects.get(principal_user=ann)
    assert assignment.start == start
    assert assignment.end == start + timedelta(days=1)


def test_start_in_the_year_9999_is_refused_with_a_message_and_kept_on_the_form(client_for, pra):
    ann = make_user("ann")

    response = client_for(pra).post(
        url("assignment_add"),
        add_data(ann, role_name="Security Reader", start="9999-12-31T23:59"),
    )

    assert response.status_code == 200
    content = response.content.decode()
    assert "Enter a date between the years 1900 and 9000." in content
    assert 'value="9999-12-31T23:59"' in content
    assert not Assignment.objects.filter(principal_user=ann).exists()


def test_assignment_mails_the_assignee(client_for, pra, django_capture_on_commit_callbacks):
    ann = make_user("ann")

    with django_capture_on_commit_callbacks(execute=True):
        client_for(pra).post(url("assignment_add"), add_data(ann, role_name="Security Reader"))

    to_ann = [m for m in mail.outbox if m.to == ["ann@example.com"]]
    assert [m.subject for m in to_ann] == ["PIM: you are eligible for Security Reader"]
    assert "activate it on My roles" in to_ann[0].body


def require_mfa_on_active(role_name: str, actor) -> None:
    services.policy_update(
        actor=actor,
        role=role(role_name),
        values={"require_mfa_on_active_assignment": True},
    )


def test_active_assignment_needs_mfa_code_when_settings_require_it(client_for, pra):
    require_mfa_on_active("Security Reader", pra)
    TOTPDevice.objects.create(user=pra, name="phone", confirmed=True)
    ann = make_user("ann")

    response = client_for(pra).post(
        url("assignment_add"),
        add_data(
            ann,
            role_name="Security Reader",
            kind=AssignmentKind.ACTIVE,
            justification="Audit",
            mfa_code="000000",
        ),
    )

    assert "That MFA code is not right" in response.content.decode()
    assert not Assignment.objects.filter(principal_user=ann).exists()


def test_active_assignment_with_right_mfa_code_is_made(client_for, pra):
    require_mfa_on_active("Security Reader", pra)
    device = TOTPDevice.objects.create(user=pra, name="phone", confirmed=True)
    ann = make_user("ann")

    response = client_for(pra).post(
        url("assignment_add"),
        add_data(
            ann,
            role_name="Security Reader",
            kind=AssignmentKind.ACTIVE,
            justification="Audit",
            mfa_code=f"{totp(device.bin_key):06d}",
        ),
    )

    assert response.status_code == 302
    assert Assignment.objects.get(principal_user=ann).kind == AssignmentKind.ACTIVE


def test_mfa_needs_an_enrolled_device(client_for, pra):
    require_mfa_on_active("Security Reader", pra)

    response = client_for(pra).post(
        url("assignment_add"),
        add_data(
            make_user("ann"),
            role_name="Security Reader",
            kind=AssignmentKind.ACTIVE,
            justification="Audit",
        ),
    )

    assert "set up your authenticator app first" in response.content.decode()


# Update, remove, extend, renew -----------------------------------------------------------


def directory_assignment(user) -> Assignment:
    return Assignment.objects.get(principal_user=user, role__kind="directory")


def test_update_form_shows_current_values(client_for, pra, eligible_user):
    assignment = directory_assignment(eligible_user)

    response = client_for(pra).get(url("assignment_update", assignment.pk))

    assert response.status_code == 200
    assert f'value="{local(assignment.end)}"' in response.content.decode()


def test_update_moves_the_end(client_for, pra, eligible_user):
    assignment = directory_assignment(eligible_user)
    new_end = timezone.now().replace(second=0, microsecond=0) + timedelta(days=60)

    response = client_for(pra).post(
        url("assignment_update", assignment.pk), {"end": local(new_end), "justification": ""}
    )

    assert response.status_code == 302
    assignment.refresh_from_db()
    assert assignment.end == new_end


def test_update_beyond_the_settings_shows_the_rule(client_for, pra, eligible_user):
    assignment = directory_assignment(eligible_user)

    response = client_for(pra).post(
        url("assignment_update", assignment.pk),
        {"end": local(timezone.now() + timedelta(days=500))},
    )

    assert "allow eligible assignments of at most 365 days" in response.content.decode()


def test_update_to_an_end_in_the_year_9999_is_refused_where_permanent_is_allowed(
    client_for, pra, eligible_user
):
    # Stored, such an end broke every page that shows it to a viewer east of UTC.
    assignment = directory_assignment(eligible_user)
    RolePolicy.objects.update_or_create(
        role=assignment.role, scope=None, defaults={"allow_permanent_eligible": True}
    )

    response = client_for(pra).post(
        url("assignment_update", assignment.pk), {"end": "9999-12-31T23:59"}
    )

    assert response.status_code == 200
    assert "Enter a date between the years 1900 and 9000." in response.content.decode()
    end = assignment.end
    assignment.refresh_from_db()
    assert assignment.end == end


def test_remove_asks_for_a_justification(client_for, pra, eligible_user):
    assignment = directory_assignment(eligible_user)

    response = client_for(pra).post(url("assignment_remove", assignment.pk), {})

    assert "Say why the assignment is removed." in response.content.decode()
    assignment.refresh_from_db()
    assert not assignment.has_ended()


def test_remove_page_confirms(client_for, pra, eligible_user):
    assignment = directory_assignment(eligible_user)

    response = client_for(pra).get(url("assignment_remove", assignment.pk))

    assert 'data-confirm="Remove Erin Eligible from Privileged Role Administrator?"' in (
        response.content.decode()
    )


def test_remove_ends_the_assignment(client_for, pra, eligible_user):
    assignment = directory_assignment(eligible_user)

    response = client_for(pra).post(
        url("assignment_remove", assignment.pk), {"justification": "Left the team"}
    )

    assert response.status_code == 302
    assignment.refresh_from_db()
    assert assignment.has_ended()
    assert assignment.ended_by == pra


def test_removing_the_last_global_administrator_is_refused_with_a_message(
    client_for, pra, global_admin
):
    assignment = directory_assignment(global_admin)

    response = client_for(pra).post(
        url("assignment_remove", assignment.pk), {"justification": "Cleanup"}, follow=True
    )

    assert "holds the last active Global Administrator assignment" in response.content.decode()
    assignment.refresh_from_db()
    assert assignment.end is None


def test_extend_moves_the_end_later(client_for, pra, eligible_user):
    assignment = directory_assignment(eligible_user)
    new_end = timezone.now().replace(second=0, microsecond=0) + timedelta(days=200)

    response = client_for(pra).post(
        url("assignment_extend", assignment.pk), {"end": local(new_end), "justification": "More"}
    )

    assert response.status_code == 302
    assignment.refresh_from_db()
    assert assignment.end == new_end


def test_extend_to_an_earlier_end_is_refused(client_for, pra, eligible_user):
    assignment = directory_assignment(eligible_user)

    response = client_for(pra).post(
        url("assignment_extend", assignment.pk),
        {"end": local(assignment.end - timedelta(days=1))},
    )

    assert "The new end must be later than the current end." in response.content.decode()


def test_renew_gives_the_role_again(client_for, pra):
    now = timezone.now()
    ann = make_user("ann")
    ended = assign(
        ann,
        "Security Reader",
        kind=AssignmentKind.ELIGIBLE,
        start=now - timedelta(days=10),
        end=now - timedelta(days=1),
    )

    response = client_for(pra).post(url("assignment_renew", ended.pk), {"justification": "Back"})

    assert response.status_code == 302
    renewed = Assignment.objects.not_ended().get(principal_user=ann)
    assert abs(renewed.end - renewed.start - timedelta(days=365)) < timedelta(seconds=5)


def test_renew_of_an_assignment_in_force_is_refused(client_for, pra, eligible_user):
    assignment = directory_assignment(eligible_user)

    response = client_for(pra).post(url("assignment_renew", assignment.pk), {})

    assert "This assignment has not ended: extend it instead." in response.content.decode()


# Role settings ---------------------------------------------------------------------------


def settings_data(role_obj, scope=None, **changes) -> dict:
    """The settings form as a browser would send it, with some values changed."""
    policy = RolePolicy.objects.effective_for(role_obj, scope)
    values = {**RolePolicyForm.initial_from(policy, [], []), **changes}
    data = {}
    for name, value in values.items():
        if value is True:
            data[name] = "on"
        elif value is False or value is None:
            continue
        elif isinstance(value, list):
            data[name] = value
        else:
            data[name] = str(value)
    return data


def test_reader_sees_settings_read_only(client_for, security_reader):
    response = client_for(security_reader).get(
        url("policy_edit", role("Privileged Role Administrator").pk)
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert "Save settings" not in content
    assert all(field.disabled for field in response.context["form"].fields.values())
    assert response.context["source"] == "Role default"


def test_pra_edits_directory_role_settings_with_approvers_and_notifications(
    client_for, pra, approver
):
    group = make_group("Approvers")
    target = role("Security Reader")
    data = settings_data(
        target,
        activation_max_hours="2.5",
        require_approval=True,
        approvals_required="2",
        approval_window_hours="4",
        allow_permanent_eligible=True,
        approvers=[f"user:{approver.pk}", f"group:{group.pk}"],
        notify__eligible_assigned__admin__enabled=False,
        notify__activated__approver__additional="soc@example.com, lead@example.com",
        notify__active_assigned__assignee__critical_only=True,
    )

    response = client_for(pra).post(url("policy_edit", target.pk), data)

    assert response.status_code == 302
    policy = RolePolicy.objects.get(role=target, scope=None)
    assert policy.activation_max_duration == timedelta(hours=2, minutes=30)
    assert policy.require_approval and policy.approvals_required == 2
    assert policy.approval_window == timedelta(hours=4)
    assert policy.allow_permanent_eligible
    assert queries.policy_approvers(policy) == ([approver], [group])
    assert policy.notification("eligible_assigned", "admin")["enabled"] is False
    assert policy.notification("activated", "approver")["additional"] == [
        "soc@example.com",
        "lead@example.com",
    ]
    assert policy.notification("active_assigned", "assignee")["critical_only"] is True


@pytest.mark.parametrize("hours", ["0.25", "24.5", "0"])
def test_activation_duration_outside_half_an_hour_to_a_day_refused(client_for, pra, hours):
    target = role("Security Reader")

    response = client_for(pra).post(
        url("policy_edit", target.pk), settings_data(target, activation_max_hours=hours)
    )

    assert (
        "The activation maximum duration must be between 30 minutes (0.5) and 24 hours."
        in response.content.decode()
    )
    assert RolePolicy.objects.effective_for(target).activation_max_duration == timedelta(hours=8)


def test_bad_notification_address_refused(client_for, pra):
    target = role("Security Reader")

    response = client_for(pra).post(
        url("policy_edit", target.pk),
        settings_data(target, notify__activated__admin__additional="soc@example.com, not-mail"),
    )

    assert "Not valid e-mail addresses: not-mail." in response.content.decode()


def test_resource_role_approval_without_approvers_refused(client_for, resource_owner, tree):
    contributor = role("Contributor")

    response = client_for(resource_owner).post(
        url("scope_policy_edit", tree["sub"].pk, contributor.pk),
        settings_data(contributor, tree["sub"], require_approval=True),
    )

    assert (
        "Name at least one approver: approval of a resource role needs approvers."
        in response.content.decode()
    )
    assert not RolePolicy.objects.filter(role=contributor, scope=tree["sub"]).exists()


def test_settings_saved_at_a_scope_are_inherited_below_it(client_for, resource_owner, tree):
    contributor = role("Contributor")
    client = client_for(resource_owner)
    client.post(
        url("scope_policy_edit", tree["sub"].pk, contributor.pk),
        settings_data(contributor, tree["sub"], activation_max_hours="3"),
    )

    here = client.get(url("scope_policy_edit", tree["sub"].pk, contributor.pk))
    below = client.get(url("scope_policy_edit", tree["rg"].pk, contributor.pk))

    assert here.context["source"] == "Set at this scope"
    assert below.context["source"] == "Inherited from Subscription Production"
    assert below.context["policy"].activation_max_duration == timedelta(hours=3)
    assert "Reset to inherited" in here.content.decode()
    assert "Reset to inherited" not in below.content.decode()


def test_reset_to_inherited_drops_the_scopes_own_settings(client_for, resource_owner, tree):
    contributor = role("Contributor")
    services.policy_update(
        actor=resource_owner,
        role=contributor,
        scope=tree["sub"],
        values={"activation_max_duration": timedelta(hours=1)},
    )

    response = client_for(resource_owner).post(
        url("scope_policy_edit", tree["sub"].pk, contributor.pk), {"reset": "1"}
    )

    assert response.status_code == 302
    assert not RolePolicy.objects.filter(role=contributor, scope=tree["sub"]).exists()


# CSV export ------------------------------------------------------------------------------


def csv_rows(response) -> list[dict]:
    assert response.streaming, "the export streams its rows"
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_role_export_lists_members_in_utc(client_for, pra, eligible_user):
    response = client_for(pra).get(url("role_export", role("Privileged Role Administrator").pk))

    assert response["Content-Type"].startswith("text/csv")
    rows = csv_rows(response)
    assert list(rows[0]) == [
        "principal",
        "type",
        "role",
        "scope",
        "kind",
        "membership",
        "start",
        "end",
        "assigned by",
        "justification",
    ]
    erin = next(r for r in rows if r["principal"] == "Erin Eligible")
    expected_end = directory_assignment(eligible_user).end.astimezone(ZoneInfo("UTC"))
    assert erin["end"] == expected_end.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (erin["type"], erin["kind"], erin["membership"]) == ("User", "eligible", "Direct")
    pat = next(r for r in rows if r["principal"] == "Pat Admin")
    assert pat["end"] == ""


def test_export_is_audited(client_for, pra):
    client_for(pra).get(url("role_export", role("Privileged Role Administrator").pk))

    event = AuditEvent.objects.get(action="pim.assignment.exported")
    assert event.actor == pra
    assert event.role == "Privileged Role Administrator"
    assert event.message == "1 assignment exported as CSV."


def test_scope_export_marks_inherited_members(client_for, resource_owner, tree):
    assign(make_user("ann", display_name="Ann Able"), "Owner", scope=tree["rg"])

    response = client_for(resource_owner).get(
        url("scope_export", tree["rg"].pk), {"role": role("Owner").pk}
    )

    memberships = {r["principal"]: r["membership"] for r in csv_rows(response)}
    assert memberships == {
        "Ann Able": "Direct",
        "Olivia Owner": "Inherited from Subscription Production",
    }


def test_export_cells_cannot_run_as_formulas(client_for, pra):
    assign(make_user("eve", display_name="=HYPERLINK(1)"), "Billing Administrator")

    response = client_for(pra).get(url("role_export", role("Billing Administrator").pk))

    assert csv_rows(response)[0]["principal"] == "'=HYPERLINK(1)"


# Refusals and mail -----------------------------------------------------------------------


def test_a_refused_page_is_audited(client_for, outsider):
    response = client_for(outsider).get(url("directory_roles"))

    assert response.status_code == 403
    event = AuditEvent.objects.get(action="pim.security.forbidden")
    assert event.actor == outsider


def test_directory_role_is_assigned_at_the_root_whatever_scope_is_sent(client_for, pra, tree):
    assign(pra, "Owner", scope=tree["sub"], permanent=True)
    ann = make_user("ann")

    response = client_for(pra).post(
        url("assignment_add"), add_data(ann, role_name="Security Reader", scope=tree["sub"])
    )

    assert response.status_code == 302
    assert Assignment.objects.get(principal_user=ann).scope.is_root


def test_assignment_mails_the_role_administrators(
    client_for, pra, django_capture_on_commit_callbacks
):
    ann = make_user("ann", display_name="Ann Able")

    with django_capture_on_commit_callbacks(execute=True):
        client_for(pra).post(url("assignment_add"), add_data(ann, role_name="Security Reader"))

    (to_pat,) = [m for m in mail.outbox if m.to == ["pat@example.com"]]
    assert to_pat.subject == "PIM: Ann Able made eligible in Security Reader"
    assert url("role_detail", role("Security Reader").pk) in to_pat.body
    assert "Ann Able" in to_pat.alternatives[0][0]


def test_ending_soon_and_ended_mails_render(pra):
    assignment = assign(pra, "Security Reader")
    context = {"assignment": assignment, "days": 1, "link": "http://portal/my/roles/"}

    send_templated_mail(
        template="assignments/mail/ending_soon", recipients=["pat@example.com"], context=context
    )
    send_templated_mail(
        template="assignments/mail/ended", recipients=["pat@example.com"], context=context
    )

    assert [m.subject for m in mail.outbox] == [
        "PIM: your Security Reader assignment ends in 1 day",
        "PIM: your Security Reader role has ended",
    ]
    assert "http://portal/my/roles/" in mail.outbox[0].body
