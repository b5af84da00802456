"""Self-service pages: My roles, Activate, Deactivate, Extend, Renew, My requests."""

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from assignments import queries, services
from assignments.authz import grants_for
from assignments.models import (
    Assignment,
    AssignmentKind,
    RequestAction,
    RequestStatus,
    RoleRequest,
)
from audit.models import AuditEvent
from tests.assignments.activation_support import code_for, make_device, relax, set_policy
from tests.factories import assign, make_group, make_user, role

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PRA = "Privileged Role Administrator"
MY_ROLES = reverse("assignments:my_roles")
MY_REQUESTS = reverse("assignments:my_requests")
ACTIVATE = reverse("assignments:activate")

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def erin(eligible_user, client_for):
    return client_for(eligible_user)


def eligible_for(user, role_name=PRA) -> Assignment:
    return queries.eligible_assignments(user).get(role__name=role_name)


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def activate_via_service(user, role_name=PRA, **kw):
    relax(role_name)
    kw.setdefault("duration", timedelta(hours=1))
    return services.request_activate(
        actor=user, eligible=eligible_for(user, role_name), justification="x", **kw
    )


def entries(response):
    return response.context["entries"]


# My roles -----------------------------------------------------------------------------------


def test_my_roles_lists_eligible_roles_with_activate(erin, eligible_user):
    response = erin.get(MY_ROLES)
    assert response.status_code == 200
    names = [e["assignment"].role.name for e in entries(response)]
    assert names == ["Contributor", PRA]
    assert all(e["can_activate"] for e in entries(response))
    page = response.content.decode()
    assert f'{ACTIVATE}?eligible={eligible_for(eligible_user).pk}"' in page
    assert 'name="eligible"' in page  # bulk checkboxes


def test_unknown_tab_shows_eligible(erin):
    assert erin.get(MY_ROLES + "?tab=nonsense").context["tab"] == "eligible"


def test_my_roles_shows_group_membership(tree, client_for):
    member = make_user("gwen")
    assign(make_group("Ops", member), PRA, kind=AssignmentKind.ELIGIBLE)
    [entry] = entries(client_for(member).get(MY_ROLES))
    assert entry["membership"] == "group"
    assert entry["membership_text"] == "Group Ops"
    assert entry["can_activate"]


def test_activation_through_a_group_says_so_on_the_active_tab(tree, client_for):
    member = make_user("gwen")
    assign(make_group("Ops", member), PRA, kind=AssignmentKind.ELIGIBLE)
    activate_via_service(member)
    [entry] = entries(client_for(member).get(MY_ROLES + "?tab=active"))
    assert entry["membership"] == "direct"
    assert "group ops" in entry["membership_text"].lower()
    assert entry["can_deactivate"]


def test_scope_filter_shows_inherited_roles(erin, tree):
    response = erin.get(MY_ROLES + f"?scope={tree['rg'].pk}")
    [entry] = entries(response)
    assert entry["assignment"].role.name == "Contributor"
    assert entry["membership"] == "inherited"
    assert entry["membership_text"] == "Inherited from Production"


def test_scope_filter_at_the_assigned_scope_is_direct(erin, tree):
    [entry] = entries(erin.get(MY_ROLES + f"?scope={tree['sub'].pk}"))
    assert entry["membership"] == "direct"


def test_scope_filter_ignores_scopes_out_of_the_users_reach(erin, tree):
    response = erin.get(MY_ROLES + f"?scope={tree['other_sub'].pk}")
    assert response.context["at_scope"] is None
    assert len(entries(response)) == 2


@pytest.mark.django_db(transaction=True)  # the kept menu is forgotten after commit
def test_the_scope_menu_is_kept_until_an_assignment_is_written(erin, eligible_user, tree):
    assert erin.get(MY_ROLES).context["scope_choices"] == [tree["sub"]]
    assign(eligible_user, "Reader", scope=tree["other_sub"], kind=AssignmentKind.ELIGIBLE)
    offered = erin.get(MY_ROLES + "?tab=active").context["scope_choices"]
    assert set(offered) == {tree["sub"], tree["other_sub"]}


def test_scope_filter_offers_the_users_own_scopes_and_the_one_chosen(erin, tree):
    plain = erin.get(MY_ROLES)
    chosen = erin.get(MY_ROLES + f"?scope={tree['vm'].pk}")

    assert plain.context["scope_choices"] == [tree["sub"]]
    assert chosen.context["scope_choices"] == [tree["sub"], tree["vm"]]
    assert chosen.context["at_scope"] == tree["vm"]
    html = plain.content.decode()
    assert f'data-scope-search-url="{reverse("assignments:my_scope_search")}"' in html
    assert tree["rg"].path not in html  # below the user's scope: searched for, not listed


def test_active_tab_shows_activation_end_and_deactivate(erin, eligible_user):
    eligible_user.time_zone = "Europe/Paris"
    eligible_user.save()
    activation = activate_via_service(eligible_user).result_assignment
    response = erin.get(MY_ROLES + "?tab=active")
    [entry] = entries(response)
    assert entry["assignment"] == activation
    assert entry["can_deactivate"]
    page = response.content.decode()
    assert "2026-03-02 11:00 CET" in page  # 10:00 UTC
    assert reverse("assignments:deactivate", args=[activation.pk]) in page
    assert "1 hour" in page  # time remaining


def test_eligible_row_says_it_is_already_active(erin, eligible_user):
    activate_via_service(eligible_user)
    entry = next(e for e in entries(erin.get(MY_ROLES)) if e["assignment"].role.name == PRA)
    assert entry["activation"] is not None
    assert not entry["can_activate"]
    assert "active until 2026-03-02 10:00 UTC" in erin.get(MY_ROLES).content.decode()


def test_resource_role_active_at_a_narrower_scope_can_still_be_activated(erin, eligible_user, tree):
    activate_via_service(eligible_user, "Contributor", scope=tree["rg"])
    rows = {e["assignment"].role.name: e for e in entries(erin.get(MY_ROLES))}
    assert rows["Contributor"]["activation"].scope == tree["rg"]
    assert rows["Contributor"]["can_activate"]
    assert "At Web: active until" in erin.get(MY_ROLES).content.decode()


def test_eligible_row_says_a_request_is_pending(erin, eligible_user):
    relax(PRA, require_approval=True)
    services.request_activate(actor=eligible_user, eligible=eligible_for(eligible_user))
    entry = next(e for e in entries(erin.get(MY_ROLES)) if e["assignment"].role.name == PRA)
    assert entry["pending"]
    assert not entry["can_activate"]


def test_pending_extend_request_does_not_block_activation(erin, eligible_user):
    eligible = eligible_for(eligible_user)
    Assignment.objects.filter(pk=eligible.pk).update(end=T0 + timedelta(days=5))
    services.request_extend(actor=eligible_user, assignment_id=eligible.pk, justification="x")
    entry = next(e for e in entries(erin.get(MY_ROLES)) if e["assignment"] == eligible)
    assert entry["can_activate"]
    assert not entry["pending"]


def test_scheduled_activation_shows_on_the_active_tab_as_scheduled(erin, eligible_user):
    activate_via_service(eligible_user, start=T0 + timedelta(days=1))
    [entry] = entries(erin.get(MY_ROLES + "?tab=active"))
    assert entry["upcoming"]


def test_administrator_assignment_has_no_deactivate(pra, client_for):
    [entry] = entries(client_for(pra).get(MY_ROLES + "?tab=active"))
    assert not entry["can_deactivate"]


def test_extend_shows_for_own_assignment_ending_within_14_days(erin, eligible_user):
    Assignment.objects.filter(pk=eligible_for(eligible_user).pk).update(end=T0 + timedelta(days=5))
    rows = {e["assignment"].role.name: e for e in entries(erin.get(MY_ROLES))}
    assert rows[PRA]["can_extend"]
    assert not rows["Contributor"]["can_extend"]  # ends in 30 days


def test_expired_tab_shows_renew_for_the_last_30_days(eligible_user, clock, client_for):
    eligible = eligible_for(eligible_user)
    clock.move_to(eligible.end + timedelta(days=2))
    response = client_for(eligible_user).get(MY_ROLES + "?tab=expired")
    assert all(e["can_renew"] for e in entries(response))
    assert reverse("assignments:renew_request", args=[eligible.pk]) in response.content.decode()


def test_expired_tab_forgets_after_30_days(eligible_user, clock, client_for):
    eligible = eligible_for(eligible_user)
    clock.move_to(eligible.end + timedelta(days=31))
    assert entries(client_for(eligible_user).get(MY_ROLES + "?tab=expired")) == []


def test_deactivated_activation_is_on_the_expired_tab_without_renew(erin, eligible_user, clock):
    activation = activate_via_service(eligible_user).result_assignment
    clock.shift(timedelta(minutes=1))
    services.request_deactivate(actor=eligible_user, assignment_id=activation.pk)
    [entry] = entries(erin.get(MY_ROLES + "?tab=expired"))
    assert entry["assignment"] == activation
    assert not entry["can_renew"]


@pytest.mark.parametrize("tab", ["eligible", "active", "expired"])
def test_my_roles_empty_state(outsider, client_for, tab):
    response = client_for(outsider).get(MY_ROLES + f"?tab={tab}")
    assert response.status_code == 200
    assert "bi-inbox" in response.content.decode()


def test_my_roles_paginates_and_keeps_the_tab(tree, client_for):
    user = make_user("many")
    for _ in range(30):
        assign(user, "Reader", scope=tree["rg"], kind=AssignmentKind.ELIGIBLE)
    response = client_for(user).get(MY_ROLES + "?tab=eligible&page=2")
    assert len(entries(response)) == 5
    assert "tab=eligible&amp;page=1" in response.content.decode()


@pytest.mark.parametrize("tab", ["eligible", "active", "expired"])
def test_my_roles_query_count_does_not_grow_with_rows(
    tree, client_for, django_assert_max_num_queries, clock, tab
):
    user = make_user("many")
    group = make_group("Ops", user)
    for number in range(12):
        principal = group if number % 2 else user
        eligible = assign(principal, "Reader", scope=tree["rg"], kind=AssignmentKind.ELIGIBLE)
        assign(
            user, "Reader", scope=tree["vm"], activated_from=eligible, end=T0 + timedelta(hours=1)
        )
        assign(
            user,
            "Reader",
            scope=tree["rg"],
            start=T0 - timedelta(days=3),
            end=T0 - timedelta(days=1),
        )
    client = client_for(user)
    with django_assert_max_num_queries(16):
        response = client.get(MY_ROLES + f"?tab={tab}&scope={tree['vm'].pk}")
    assert len(entries(response)) == 12


# Activate: the form -------------------------------------------------------------------------


def test_activate_form_for_one_role(erin, eligible_user):
    relax(PRA, require_justification_on_activation=True, activation_max_duration=timedelta(hours=4))
    response = erin.get(ACTIVATE + f"?eligible={eligible_for(eligible_user).pk}")
    assert response.status_code == 200
    form = response.context["form"]
    assert form["duration_hours"].value() == "4"
    assert "mfa_code" not in form.fields
    assert "ticket_number" not in form.fields
    assert form.requires_justification


def test_activate_form_asks_for_ticket_and_code_when_required(erin, eligible_user):
    relax(PRA, require_ticket_on_activation=True, require_mfa_on_activation=True)
    make_device(eligible_user)
    form = erin.get(ACTIVATE + f"?eligible={eligible_for(eligible_user).pk}").context["form"]
    assert {"ticket_number", "ticket_system", "mfa_code"} <= set(form.fields)


def test_activate_form_offers_the_eligible_scope_and_a_search_below_it(erin, eligible_user, tree):
    relax("Contributor")
    eligible = eligible_for(eligible_user, "Contributor")
    response = erin.get(ACTIVATE + f"?eligible={eligible.pk}")
    field = response.context["form"].fields[f"scope_{eligible.pk}"]
    assert [value for value, _ in field.choices] == [tree["sub"].pk]
    search = reverse("assignments:my_scope_search") + f"?eligible={eligible.pk}"
    assert field.widget.attrs["data-scope-search-url"] == search
    html = response.content.decode()
    assert f'data-scope-search-url="{search}"' in html
    assert "js/scope-picker.js" in html
    assert "web-vm-01" not in html  # the scopes below are searched for, not inlined


def test_activate_form_offers_the_narrower_scope_posted_back(erin, eligible_user, tree):
    relax("Contributor", require_justification_on_activation=True)
    eligible = eligible_for(eligible_user, "Contributor")
    response = post_activate(
        erin, [eligible.pk], justification="", **{f"scope_{eligible.pk}": tree["vm"].pk}
    )
    assert response.status_code == 200  # refused: no reason given
    form = response.context["form"]
    assert [v for v, _ in form.fields[f"scope_{eligible.pk}"].choices] == [
        tree["sub"].pk,
        tree["vm"].pk,
    ]
    assert form[f"scope_{eligible.pk}"].value() == str(tree["vm"].pk)


def test_activate_form_defaults_to_the_smallest_maximum(erin, eligible_user):
    relax(PRA, activation_max_duration=timedelta(hours=8))
    relax("Contributor", activation_max_duration=timedelta(hours=2))
    ids = [eligible_for(eligible_user).pk, eligible_for(eligible_user, "Contributor").pk]
    form = erin.get(ACTIVATE + "?" + "&".join(f"eligible={i}" for i in ids)).context["form"]
    assert form["duration_hours"].value() == "2"


def test_activate_asks_for_mfa_at_a_narrower_scope_override(erin, eligible_user, tree):
    relax("Contributor")
    set_policy("Contributor", scope=tree["vm"], require_mfa_on_activation=True)
    make_device(eligible_user)
    eligible = eligible_for(eligible_user, "Contributor")
    form = erin.get(ACTIVATE + f"?eligible={eligible.pk}").context["form"]
    assert "mfa_code" in form.fields


def test_user_without_device_is_sent_to_enroll_and_back(erin, eligible_user):
    relax(PRA, require_mfa_on_activation=True)
    url = ACTIVATE + f"?eligible={eligible_for(eligible_user).pk}"
    response = erin.get(url)
    assert response.status_code == 302
    target = urlparse(response["Location"])
    assert target.path == reverse("mfa_enroll")
    assert parse_qs(target.query)["next"] == [url]


def test_enrolment_page_returns_to_the_activate_page(erin, eligible_user):
    relax(PRA, require_mfa_on_activation=True)
    url = ACTIVATE + f"?eligible={eligible_for(eligible_user).pk}"
    from binascii import unhexlify

    from django_otp.oath import totp

    enroll = erin.get(erin.get(url)["Location"])
    code = f"{totp(unhexlify(enroll.context['key'])):06d}"  # the secret waits in the session
    response = erin.post(reverse("mfa_enroll"), {"name": "Phone", "code": code, "next": url})
    assert response["Location"] == url
    assert erin.get(url).status_code == 200


def test_activate_without_a_choice_goes_back_to_my_roles(erin):
    response = erin.get(ACTIVATE)
    assert response.status_code == 302
    assert "Choose at least one eligible role" in texts(response)[0]


def test_activate_form_for_someone_elses_assignment_is_404_and_audited(
    client_for, outsider, eligible_user
):
    response = client_for(outsider).get(ACTIVATE + f"?eligible={eligible_for(eligible_user).pk}")
    assert response.status_code == 404
    assert AuditEvent.objects.filter(action="pim.security.foreign_object", actor=outsider).exists()


def test_activate_form_with_junk_ids_goes_back(erin):
    response = erin.get(ACTIVATE + "?eligible=abc")
    assert response.status_code == 302


def test_activate_with_an_id_too_large_for_the_database_goes_back(erin):
    response = erin.get(ACTIVATE + "?eligible=99999999999999999999999")
    assert response.status_code == 302
    assert "Choose at least one eligible role" in texts(response)[0]


def test_posting_an_id_too_large_for_the_database_goes_back(erin):
    response = erin.post(ACTIVATE, {"eligible": "99999999999999999999999", "justification": "x"})
    assert response.status_code == 302
    assert "Choose at least one eligible role" in texts(response)[0]


# Activate: posting ---------------------------------------------------------------------------


def post_activate(client, ids, **data):
    data.setdefault("justification", "Incident 42")
    data.setdefault("duration_hours", "1")
    return client.post(ACTIVATE, {"eligible": ids, **data})


def test_activation_in_force_at_once(erin, eligible_user):
    relax(PRA)
    response = post_activate(erin, [eligible_for(eligible_user).pk])
    assert response.status_code == 302
    assert response["Location"] == MY_ROLES + "?tab=active"
    assert texts(response) == ["Privileged Role Administrator: active until 2026-03-02 10:00 UTC"]
    assert grants_for(eligible_user).can_manage_directory()


def test_activation_with_a_totp_code(erin, eligible_user):
    relax(PRA, require_mfa_on_activation=True)
    device = make_device(eligible_user)
    response = post_activate(erin, [eligible_for(eligible_user).pk], mfa_code=code_for(device))
    assert response.status_code == 302
    assert grants_for(eligible_user).can_manage_directory()


def test_wrong_totp_code_is_refused_on_the_form_and_audited(erin, eligible_user):
    relax(PRA, require_mfa_on_activation=True)
    make_device(eligible_user)
    response = post_activate(erin, [eligible_for(eligible_user).pk], mfa_code="000000")
    assert response.status_code == 200
    assert response.context["form"].errors["mfa_code"] == [
        "The MFA code is wrong or was already used."
    ]
    assert response.context["form"]["mfa_code"].value() == ""
    assert response.context["form"]["justification"].value() == "Incident 42"
    assert AuditEvent.objects.filter(action="pim.security.mfa_failed").count() == 1
    assert not grants_for(eligible_user).can_manage_directory()


def test_replayed_totp_code_is_refused(erin, eligible_user, clock):
    relax(PRA, require_mfa_on_activation=True)
    relax("Contributor", require_mfa_on_activation=True)
    device = make_device(eligible_user)
    code = code_for(device)
    post_activate(erin, [eligible_for(eligible_user).pk], mfa_code=code)
    response = post_activate(erin, [eligible_for(eligible_user, "Contributor").pk], mfa_code=code)
    assert response.status_code == 200
    assert "already used" in str(response.context["form"].errors["mfa_code"])


def test_activation_needing_approval_is_pending(erin, eligible_user):
    relax(PRA, require_approval=True)
    response = post_activate(erin, [eligible_for(eligible_user).pk])
    assert texts(response) == ["Privileged Role Administrator: pending approval"]
    assert RoleRequest.objects.get().status == RequestStatus.PENDING_APPROVAL
    assert not grants_for(eligible_user).can_manage_directory()


def test_future_start_is_read_in_the_viewers_time_zone(erin, eligible_user):
    relax(PRA)
    eligible_user.time_zone = "America/New_York"
    eligible_user.save()
    response = post_activate(erin, [eligible_for(eligible_user).pk], start="2026-03-03T08:00")
    assert "scheduled from 2026-03-03 08:00 EST" in texts(response)[0]
    request = RoleRequest.objects.get()
    assert request.status == RequestStatus.SCHEDULED
    assert request.start == datetime(2026, 3, 3, 13, 0, tzinfo=UTC)


def test_resource_role_activated_at_a_narrower_scope(erin, eligible_user, tree):
    relax("Contributor")
    eligible = eligible_for(eligible_user, "Contributor")
    response = post_activate(erin, [eligible.pk], **{f"scope_{eligible.pk}": tree["rg"].pk})
    assert texts(response)[0].startswith("Contributor at Web: active until")
    assert Assignment.objects.get(activated_from=eligible).scope == tree["rg"]


def test_resource_role_without_a_scope_choice_is_activated_at_the_eligible_scope(
    erin, eligible_user, tree
):
    relax("Contributor")
    eligible = eligible_for(eligible_user, "Contributor")
    post_activate(erin, [eligible.pk])
    assert Assignment.objects.get(activated_from=eligible).scope == tree["sub"]


def test_posting_without_a_device_sends_the_user_to_enroll(erin, eligible_user):
    relax(PRA, require_mfa_on_activation=True)
    response = post_activate(erin, [eligible_for(eligible_user).pk], mfa_code="123456")
    assert urlparse(response["Location"]).path == reverse("mfa_enroll")
    assert not RoleRequest.objects.exists()


def test_scope_outside_the_eligible_scope_is_refused(erin, eligible_user, tree):
    relax("Contributor")
    eligible = eligible_for(eligible_user, "Contributor")
    response = post_activate(erin, [eligible.pk], **{f"scope_{eligible.pk}": tree["other_sub"].pk})
    assert response.status_code == 200
    assert response.context["form"].errors[f"scope_{eligible.pk}"]
    assert not Assignment.objects.filter(activated_from=eligible).exists()


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"duration_hours": "9"}, "duration_hours", "allow activations of at most 8 hours"),
        ({"duration_hours": "0.05"}, "duration_hours", "must last at least 5 minutes"),
        ({"duration_hours": "0"}, "duration_hours", "must last at least 5 minutes"),
        ({"start": "2026-03-01T09:00"}, "start", "The start cannot be in the past."),
        ({"start": "2026-04-02T09:00"}, "start", "The start can be at most 30 days ahead."),
        ({"justification": ""}, "justification", "A justification is required to activate"),
        ({"ticket_system": ""}, "ticket_system", "A ticket number and ticket system are"),
    ],
    ids=["too-long", "too-short", "zero", "past", "too-far", "no-reason", "half-ticket"],
)
def test_bad_input_is_refused_on_its_field_and_nothing_done(
    erin, eligible_user, data, field, message
):
    relax(
        PRA,
        activation_max_duration=timedelta(hours=8),
        require_justification_on_activation=True,
        require_ticket_on_activation=True,
    )
    Assignment.objects.filter(pk=eligible_for(eligible_user).pk).update(end=T0 + timedelta(days=90))
    defaults = {"ticket_number": "INC-1", "ticket_system": "Jira"}
    response = post_activate(erin, [eligible_for(eligible_user).pk], **{**defaults, **data})
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert not RoleRequest.objects.exists()
    assert not Assignment.objects.filter(activated_from__isnull=False).exists()


def test_malformed_numbers_and_dates_are_form_errors(erin, eligible_user):
    relax(PRA)
    response = post_activate(
        erin, [eligible_for(eligible_user).pk], duration_hours="lots", start="tomorrow"
    )
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"duration_hours", "start"}


def test_double_submission_activates_once(erin, eligible_user):
    relax(PRA)
    ids = [eligible_for(eligible_user).pk]
    post_activate(erin, ids)
    second = post_activate(erin, ids)
    assert second.status_code == 200
    assert "already active or requested" in str(second.context["form"].non_field_errors())
    assert Assignment.objects.filter(activated_from__isnull=False).count() == 1


def test_bulk_activation_with_one_failing_item_reports_it(erin, eligible_user):
    relax(PRA)
    relax("Contributor", require_ticket_on_activation=True)
    ids = [eligible_for(eligible_user).pk, eligible_for(eligible_user, "Contributor").pk]
    response = post_activate(erin, ids)
    assert response.status_code == 302
    reported = texts(response)
    assert reported[0].startswith("Privileged Role Administrator: active until")
    assert reported[1].startswith("Contributor at Production: A ticket number and ticket system")
    assert grants_for(eligible_user).can_manage_directory()


def test_someone_elses_id_in_the_form_is_404_like_the_get_and_audited(
    erin, eligible_user, outsider
):
    relax(PRA)
    theirs = assign(outsider, "Reader", kind=AssignmentKind.ELIGIBLE)
    response = post_activate(erin, [eligible_for(eligible_user).pk, theirs.pk])
    assert response.status_code == 404
    assert not RoleRequest.objects.exists()
    assert AuditEvent.objects.filter(
        action="pim.security.foreign_object", actor=eligible_user
    ).exists()
    assert not Assignment.objects.filter(activated_from=theirs).exists()


def test_only_someone_elses_id_in_the_form_is_404(client_for, outsider, eligible_user):
    response = post_activate(client_for(outsider), [eligible_for(eligible_user).pk])
    assert response.status_code == 404
    assert AuditEvent.objects.filter(action="pim.security.foreign_object", actor=outsider).exists()


def test_too_many_roles_at_once_is_refused(erin):
    response = erin.get(ACTIVATE + "?" + "&".join(f"eligible={i}" for i in range(1, 30)))
    assert response.status_code == 302
    assert "at most 20" in texts(response)[0]


def test_activating_pra_lets_the_user_manage_directory_roles(erin, eligible_user):
    relax(PRA)
    assert erin.get(reverse("assignments:directory_roles")).status_code == 403
    post_activate(erin, [eligible_for(eligible_user).pk])
    assert erin.get(reverse("assignments:policy_edit", args=[role(PRA).pk])).status_code == 200


# Deactivate ----------------------------------------------------------------------------------


def test_deactivate_ends_the_activation(erin, eligible_user, clock):
    activation = activate_via_service(eligible_user).result_assignment
    clock.shift(timedelta(minutes=5))
    response = erin.post(reverse("assignments:deactivate", args=[activation.pk]))
    assert response["Location"] == MY_ROLES + "?tab=active"
    assert texts(response) == ["Privileged Role Administrator is deactivated."]
    assert not grants_for(eligible_user).can_manage_directory()
    assert entries(erin.get(MY_ROLES + "?tab=active")) == []


def test_deactivate_needs_post(erin, eligible_user):
    activation = activate_via_service(eligible_user).result_assignment
    assert erin.get(reverse("assignments:deactivate", args=[activation.pk])).status_code == 405


def test_deactivating_someone_elses_activation_is_404_and_audited(
    client_for, outsider, eligible_user
):
    activation = activate_via_service(eligible_user).result_assignment
    response = client_for(outsider).post(reverse("assignments:deactivate", args=[activation.pk]))
    assert response.status_code == 404
    assert AuditEvent.objects.filter(action="pim.security.forbidden", actor=outsider).exists()
    assert grants_for(eligible_user).can_manage_directory()


def test_deactivating_an_eligible_assignment_is_404_and_audited(erin, eligible_user):
    eligible = eligible_for(eligible_user)
    response = erin.post(reverse("assignments:deactivate", args=[eligible.pk]))
    assert response.status_code == 404
    assert eligible_for(eligible_user).end == eligible.end
    assert AuditEvent.objects.filter(
        action="pim.security.forbidden", actor=eligible_user, message__contains="deactivate"
    ).exists()


# Extend and renew -----------------------------------------------------------------------------


def test_extend_request_page_and_post(erin, eligible_user):
    eligible = eligible_for(eligible_user)
    Assignment.objects.filter(pk=eligible.pk).update(end=T0 + timedelta(days=5))
    url = reverse("assignments:extend_request", args=[eligible.pk])
    assert erin.get(url).status_code == 200
    response = erin.post(url, {"justification": "Still on call"})
    assert response["Location"] == MY_REQUESTS
    request = RoleRequest.objects.get()
    assert (request.action, request.status) == (
        RequestAction.SELF_EXTEND,
        RequestStatus.PENDING_APPROVAL,
    )


def test_extend_request_without_justification_says_so(erin, eligible_user):
    eligible = eligible_for(eligible_user)
    Assignment.objects.filter(pk=eligible.pk).update(end=T0 + timedelta(days=5))
    response = erin.post(reverse("assignments:extend_request", args=[eligible.pk]), {})
    assert response.status_code == 200
    assert "justification is required" in str(response.context["form"].non_field_errors())
    assert not RoleRequest.objects.exists()


def test_extend_page_for_an_assignment_far_from_its_end_goes_back(erin, eligible_user):
    response = erin.get(
        reverse("assignments:extend_request", args=[eligible_for(eligible_user).pk])
    )
    assert response.status_code == 302
    assert "within 14 days" in texts(response)[0]


def test_extend_post_far_from_the_end_is_refused(erin, eligible_user):
    url = reverse("assignments:extend_request", args=[eligible_for(eligible_user).pk])
    response = erin.post(url, {"justification": "x"})
    assert response.status_code == 200
    assert "within 14 days" in str(response.context["form"].non_field_errors())


def test_renew_request_page_and_post(eligible_user, clock, client_for):
    eligible = eligible_for(eligible_user)
    clock.move_to(eligible.end + timedelta(days=3))
    client = client_for(eligible_user)
    url = reverse("assignments:renew_request", args=[eligible.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"justification": "Back on the project"})
    assert response.status_code == 302
    assert RoleRequest.objects.get().action == RequestAction.SELF_RENEW


def test_renew_page_for_an_assignment_in_force_goes_back(erin, eligible_user):
    response = erin.get(reverse("assignments:renew_request", args=[eligible_for(eligible_user).pk]))
    assert response.status_code == 302


@pytest.mark.parametrize("name", ["extend_request", "renew_request"])
def test_extend_or_renew_someone_elses_assignment_is_404(client_for, outsider, eligible_user, name):
    url = reverse(f"assignments:{name}", args=[eligible_for(eligible_user).pk])
    assert client_for(outsider).get(url).status_code == 404
    assert client_for(outsider).post(url, {"justification": "x"}).status_code == 404
    assert not RoleRequest.objects.exists()


@pytest.mark.parametrize("name", ["extend_request", "renew_request"])
def test_an_activation_cannot_be_extended_or_renewed(erin, eligible_user, name):
    activation = activate_via_service(eligible_user).result_assignment
    assert erin.get(reverse(f"assignments:{name}", args=[activation.pk])).status_code == 404


# My requests ----------------------------------------------------------------------------------


def test_my_requests_lists_own_requests_newest_first(erin, eligible_user, outsider, clock):
    relax(PRA, require_approval=True)
    first = activate_via_service(eligible_user, "Contributor")
    clock.shift(timedelta(minutes=1))
    second = services.request_activate(
        actor=eligible_user, eligible=eligible_for(eligible_user), justification="x"
    )
    response = erin.get(MY_REQUESTS)
    assert list(response.context["page_obj"].object_list) == [second, first]


def test_my_requests_does_not_show_others(erin, pra, client_for):
    relax(PRA)
    other = make_user("olga")
    assign(other, PRA, kind=AssignmentKind.ELIGIBLE)
    activate_via_service(other)
    assert list(erin.get(MY_REQUESTS).context["page_obj"].object_list) == []


def test_my_requests_filters_by_status(erin, eligible_user):
    relax(PRA, require_approval=True)
    pending = services.request_activate(
        actor=eligible_user, eligible=eligible_for(eligible_user), justification="x"
    )
    activate_via_service(eligible_user, "Contributor")
    response = erin.get(MY_REQUESTS + "?status=pending_approval")
    assert list(response.context["page_obj"].object_list) == [pending]
    assert erin.get(MY_REQUESTS + "?status=bogus").context["status"] == ""


def test_my_requests_empty_state(client_for, outsider):
    response = client_for(outsider).get(MY_REQUESTS)
    assert response.status_code == 200
    assert "You have not made any request yet" in response.content.decode()


def test_my_requests_shows_cancel_on_open_requests_only(erin, eligible_user):
    relax(PRA, require_approval=True)
    pending = services.request_activate(
        actor=eligible_user, eligible=eligible_for(eligible_user), justification="x"
    )
    done = activate_via_service(eligible_user, "Contributor")
    page = erin.get(MY_REQUESTS).content.decode()
    assert reverse("assignments:request_cancel", args=[pending.pk]) in page
    assert reverse("assignments:request_cancel", args=[done.pk]) not in page


def test_my_requests_query_count_does_not_grow_with_rows(
    tree, client_for, django_assert_max_num_queries
):
    user = make_user("many")

    def add(first: int, last: int) -> None:
        for number in range(first, last):
            RoleRequest.objects.create(
                action=RequestAction.SELF_ACTIVATE,
                status=RequestStatus.DENIED,
                principal_user=user,
                requested_by=user,
                role=role("Reader"),
                scope=tree["vm"] if number % 2 else tree["rg"],
                kind=AssignmentKind.ACTIVE,
            )

    client = client_for(user)
    add(0, 2)
    # The session, the viewer, the grants, the page and its count, the people on its rows
    # (requester and principal, looked up by primary key), the navigation's counts.
    with django_assert_max_num_queries(11) as few:
        client.get(MY_REQUESTS)
    add(2, 20)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(MY_REQUESTS)
    assert len(response.context["page_obj"].object_list) == 20


def test_my_requests_paginates_and_keeps_the_filter(tree, client_for):
    user = make_user("many")
    for _ in range(30):
        RoleRequest.objects.create(
            action=RequestAction.SELF_ACTIVATE,
            status=RequestStatus.DENIED,
            principal_user=user,
            requested_by=user,
            role=role("Reader"),
            scope=tree["rg"],
            kind=AssignmentKind.ACTIVE,
        )
    response = client_for(user).get(MY_REQUESTS + "?status=denied&page=2")
    assert len(response.context["page_obj"].object_list) == 5
    assert "status=denied&amp;page=1" in response.content.decode()


def test_cancel_a_pending_request(erin, eligible_user):
    relax(PRA, require_approval=True)
    pending = services.request_activate(
        actor=eligible_user, eligible=eligible_for(eligible_user), justification="x"
    )
    response = erin.post(reverse("assignments:request_cancel", args=[pending.pk]))
    assert response["Location"] == MY_REQUESTS
    pending.refresh_from_db()
    assert pending.status == RequestStatus.CANCELED
    assert AuditEvent.objects.filter(action="pim.request.canceled").count() == 1


def test_cancel_a_scheduled_activation(erin, eligible_user, clock):
    request = activate_via_service(eligible_user, start=T0 + timedelta(hours=2))
    erin.post(reverse("assignments:request_cancel", args=[request.pk]))
    request.refresh_from_db()
    assert request.status == RequestStatus.CANCELED
    clock.move_to(T0 + timedelta(hours=2))
    assert not grants_for(eligible_user).can_manage_directory()


def test_cancel_a_finished_request_is_a_clear_refusal(erin, eligible_user):
    done = activate_via_service(eligible_user)
    response = erin.post(reverse("assignments:request_cancel", args=[done.pk]))
    assert texts(response) == ["That request is already provisioned."]


def test_cancel_someone_elses_request_is_404_and_audited(client_for, outsider, eligible_user):
    relax(PRA, require_approval=True)
    pending = services.request_activate(
        actor=eligible_user, eligible=eligible_for(eligible_user), justification="x"
    )
    response = client_for(outsider).post(reverse("assignments:request_cancel", args=[pending.pk]))
    assert response.status_code == 404
    assert AuditEvent.objects.filter(action="pim.security.forbidden", actor=outsider).exists()
    pending.refresh_from_db()
    assert pending.status == RequestStatus.PENDING_APPROVAL


def test_cancel_needs_post(erin):
    assert erin.get(reverse("assignments:request_cancel", args=[1])).status_code == 405


@pytest.mark.parametrize(
    "url",
    [
        MY_ROLES,
        MY_REQUESTS,
        ACTIVATE,
        reverse("assignments:deactivate", args=[1]),
        reverse("assignments:extend_request", args=[1]),
        reverse("assignments:renew_request", args=[1]),
        reverse("assignments:request_cancel", args=[1]),
    ],
)
def test_anonymous_is_sent_to_sign_in(client, url):
    response = client.post(url) if "cancel" in url or "deactivate" in url else client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_tab_counts_are_the_rows_each_tab_lists(tree, clock):
    """My roles counts its tabs in one aggregate: the same rows as the tabs' own querysets,
    with and without the scope filter, through groups, upcoming, ended and canceled ones."""
    from assignments.views.my import _tab_counts, _tab_querysets

    user = make_user("counted")
    group = make_group("Counted ops", user)
    eligible = assign(user, "Reader", scope=tree["rg"], kind=AssignmentKind.ELIGIBLE)
    assign(group, "Contributor", scope=tree["sub"], kind=AssignmentKind.ELIGIBLE)
    assign(user, "Reader", scope=tree["vm"], activated_from=eligible, end=T0 + timedelta(hours=1))
    assign(user, "Owner", scope=tree["rg"], start=T0 + timedelta(days=1))  # upcoming
    assign(user, "Reader", start=T0 - timedelta(days=3), end=T0 - timedelta(days=1))
    assign(user, "Reader", start=T0 - timedelta(days=90), end=T0 - timedelta(days=60))  # old
    canceled = T0 - timedelta(hours=2)
    assign(user, "Contributor", scope=tree["vm"], start=canceled, end=canceled)
    assign(
        user,
        "Global Reader",
        kind=AssignmentKind.ELIGIBLE,
        start=T0 - timedelta(days=2),
        end=T0 - timedelta(hours=1),
    )
    for at_scope in (None, tree["vm"]):
        querysets = _tab_querysets(user, T0)
        if at_scope is not None:
            querysets = {
                key: qs.filter(role__kind="resource").at_or_above(at_scope)
                for key, qs in querysets.items()
            }
        expected = {key: qs.count() for key, qs in querysets.items()}
        counted = _tab_counts(user, T0, at_scope)
        assert {key: counted[key] for key in expected} == expected
        assert all(expected.values()), expected  # every tab has rows to count
        # The first change: the activation's end (before any ended row leaves Expired).
        assert counted["next_change"] == T0 + timedelta(hours=1)


def test_the_tab_counts_change_next_when_an_ended_row_leaves_the_expired_tab(tree, clock):
    from assignments.views.my import _tab_counts

    user = make_user("counted")
    assign(user, "Reader", kind=AssignmentKind.ELIGIBLE, permanent=True)
    assign(user, "Reader", start=T0 - timedelta(days=3), end=T0 - timedelta(days=1))
    counted = _tab_counts(user, T0)
    assert (counted["eligible"], counted["expired"]) == (1, 1)
    assert counted["next_change"] == T0 + timedelta(days=29)
    later = _tab_counts(user, T0 + timedelta(days=29, seconds=1))
    assert later["expired"] == 0 and later["next_change"] is None


def test_my_roles_keeps_its_tab_counts_until_a_row_changes_tab(tree, clock, client_for, settings):
    settings.PIM_ASSIGNMENT_COUNTS_SECONDS = 3600  # the end, not the cache's time, decides
    user = make_user("counted")
    assign(user, "Reader", kind=AssignmentKind.ELIGIBLE, permanent=True)
    assign(user, "Reader", end=T0 + timedelta(minutes=10))
    client = client_for(user)

    def tabs_and_counting():
        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse("assignments:my_roles"))
        counted = sum('COUNT("assignments_assignment"."id") FILTER' in q["sql"] for q in queries)
        return [count for _, _, count in response.context["tabs"]], counted

    assert tabs_and_counting() == ([1, 1, 0], 1)
    clock.move_to(T0 + timedelta(minutes=9))
    assert tabs_and_counting() == ([1, 1, 0], 0)  # kept: nothing ends before
    clock.move_to(T0 + timedelta(minutes=10, seconds=1))
    assert tabs_and_counting() == ([1, 0, 1], 1)  # the activation ended: counted again
