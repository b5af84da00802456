"""The dashboard: numbers against hand-counted data, who sees which tiles, the view of people
who administer nothing, the charts, standing access made eligible or removed in bulk, and a
query count that does not grow with rows."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from alerts.models import Alert, AlertSetting, AlertStatus, Severity
from assignments.models import Assignment, AssignmentKind, RequestAction, RequestStatus, RoleRequest
from audit.models import AuditEvent
from pim_portal import dashboard
from tests.conftest import signed_in
from tests.factories import assign, make_group, make_user, role, root
from tests.reviews.conftest import create_review

GA = "Global Administrator"
PRA = "Privileged Role Administrator"
USER_ADMIN = "User Administrator"
T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)

# The bulk action's address, until pim_portal/urls.py has it (then this only repeats it, and
# can go); until then the page shows standing access without the form.
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _counted_live(settings):
    """Every load counts afresh (the minute's cache has its own test)."""
    settings.PIM_DASHBOARD_COUNTS_SECONDS = 0


def page(user, query: str = ""):
    response = signed_in(user).get(reverse("dashboard") + query)
    assert response.status_code == 200
    return response


def holders_of(response, name: str):
    return response.context["holders"].of(name)


def activation(user, role_name: str, start: datetime, *, scope=None) -> Assignment:
    eligible = assign(
        user, role_name, scope=scope, kind=AssignmentKind.ELIGIBLE, start=start - timedelta(days=1)
    )
    return assign(
        user,
        role_name,
        scope=scope,
        start=start,
        end=start + timedelta(hours=2),
        activated_from=eligible,
    )


# --- People per privileged role, counted by hand -------------------------------------------


def test_a_groups_two_members_count_two(security_reader):
    make_group("helpdesk", make_user("hana"), make_user("hugo"))
    group = make_group("helpdesk-leads", make_user("lena"), make_user("lars"))
    assign(group, USER_ADMIN, kind=AssignmentKind.ELIGIBLE)
    counted = holders_of(page(security_reader), USER_ADMIN)
    assert (counted.eligible, counted.active, counted.total) == (2, 0, 2)


def test_a_user_holding_a_role_directly_and_through_a_group_counts_once(security_reader):
    ursula = make_user("ursula")
    assign(ursula, USER_ADMIN, permanent=True)
    assign(make_group("admins", ursula), USER_ADMIN, permanent=True)
    assign(make_group("more-admins", ursula), USER_ADMIN, kind=AssignmentKind.ELIGIBLE)
    counted = holders_of(page(security_reader), USER_ADMIN)
    assert (counted.eligible, counted.active, counted.permanent, counted.total) == (1, 1, 1, 1)


def test_people_per_privileged_role_match_a_hand_count(security_reader, pra, global_admin):
    """PRA: Pat (permanent), Ann (time-bound, and eligible), Bob and Cid through a group
    (eligible), Ann again through that group: 4 people, 3 eligible, 2 active, 1 permanent."""
    ann, bob, cid = make_user("ann"), make_user("bob"), make_user("cid")
    assign(ann, PRA)
    assign(ann, PRA, kind=AssignmentKind.ELIGIBLE)
    assign(make_group("pra-candidates", ann, bob, cid), PRA, kind=AssignmentKind.ELIGIBLE)
    response = page(security_reader)
    counted = holders_of(response, PRA)
    assert (counted.eligible, counted.timebound, counted.permanent) == (3, 1, 1)
    assert (counted.active, counted.total) == (2, 4)
    row = re.search(
        r'<tr data-role="Privileged Role Administrator">.*?</tr>', response.content.decode()
    )
    assert 'data-col="total">4<' in row.group(0)


def test_someone_in_two_privileged_roles_counts_once_in_all(security_reader, pra):
    assign(pra, GA, kind=AssignmentKind.ELIGIBLE)
    everyone = page(security_reader).context["holders"].everyone
    assert (everyone.total, everyone.eligible, everyone.active) == (1, 1, 1)


def test_ended_and_upcoming_assignments_are_not_counted(security_reader):
    now = datetime.now(UTC)
    assign(make_user("ended"), PRA, start=now - timedelta(days=9), end=now - timedelta(days=1))
    assign(make_user("later"), PRA, start=now + timedelta(days=1), end=now + timedelta(days=9))
    assert holders_of(page(security_reader), PRA).total == 0


def test_a_role_that_is_not_privileged_is_not_listed(security_reader):
    assign(make_user("billy"), "Billing Administrator", permanent=True)
    response = page(security_reader)
    assert "Billing Administrator" not in {h.role.name for h in response.context["holders"].roles}
    assert response.context["holders"].everyone.total == 0  # Sam's Security Reader neither


# --- The other tiles -----------------------------------------------------------------------


def test_open_alerts_are_counted_by_severity(security_reader):
    for kind, severity in [("a", Severity.HIGH), ("b", Severity.HIGH), ("c", Severity.LOW)]:
        Alert.objects.create(kind=kind, severity=severity, title=f"Alert {kind}")
    Alert.objects.create(
        kind="d", severity=Severity.MEDIUM, title="Fixed", status=AlertStatus.RESOLVED
    )
    response = page(security_reader)
    counts = {row["severity"]: row["count"] for row in response.context["alerts_by_severity"]}
    assert counts == {Severity.HIGH: 2, Severity.MEDIUM: 0, Severity.LOW: 1}
    assert response.context["alerts_open"] == 3
    assert f'href="{reverse("alerts:alert_list")}?severity=high"' in response.content.decode()


def test_the_most_severe_open_alerts_come_first(security_reader):
    Alert.objects.create(kind="low", severity=Severity.LOW, title="Low one")
    high = Alert.objects.create(kind="high", severity=Severity.HIGH, title="High one")
    top = page(security_reader).context["top_alerts"]
    assert top[0] == high
    assert reverse("alerts:alert_detail", args=[high.pk]) in page(security_reader).content.decode()


def test_pending_approvals_counts_requests_still_decidable(security_reader, eligible_user):
    now = datetime.now(UTC)
    for deadline in (now + timedelta(hours=1), now - timedelta(minutes=1)):
        RoleRequest.objects.create(
            principal_user=make_user(f"asker{deadline.minute}{deadline.second}"),
            action=RequestAction.SELF_ACTIVATE,
            status=RequestStatus.PENDING_APPROVAL,
            role=role(PRA),
            scope=root(),
            kind=AssignmentKind.ACTIVE,
            approval_deadline=deadline,
        )
    assert page(security_reader).context["pending_total"] == 1


def test_access_reviews_in_progress_are_counted(security_reader, resource_owner, approver, tree):
    create_review(resource_owner, scope=tree["sub"], reviewer_users=[approver])
    create_review(
        resource_owner,
        scope=tree["sub"],
        reviewer_users=[approver],
        start=datetime.now(UTC) + timedelta(days=3),
        name="Later",
    )
    assert page(security_reader).context["reviews_in_progress"] == 1


def test_assignments_made_in_the_last_30_days_count_users_and_groups(security_reader):
    with time_machine.travel(datetime.now(UTC) - timedelta(days=31)):
        assign(make_user("old"), USER_ADMIN)
    assign(make_user("new1"), USER_ADMIN)
    assign(make_user("new2"), "Reader")
    assign(make_group("team"), USER_ADMIN, kind=AssignmentKind.ELIGIBLE)
    activation(make_user("act"), PRA, datetime.now(UTC) - timedelta(minutes=5))  # not made
    counts = page(security_reader).context["counts"]
    # Sam's own Security Reader was made just now, as were the activation's eligibility.
    assert (counts.made_to_users, counts.made_to_groups) == (4, 1)


def test_resource_roles_count_just_in_time_time_bound_and_permanent(security_reader, tree):
    assign(make_user("r1"), "Reader", scope=tree["rg"], kind=AssignmentKind.ELIGIBLE)
    assign(make_user("r2"), "Reader", scope=tree["vm"], kind=AssignmentKind.ELIGIBLE)
    assign(make_user("r3"), "Contributor", scope=tree["sub"])
    assign(make_user("r4"), "Owner", scope=tree["other_sub"], permanent=True)
    resource = page(security_reader).context["counts"].resource
    assert (resource.eligible, resource.timebound, resource.permanent) == (2, 1, 1)


# --- Who sees what ---------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["security_reader", "pra", "global_admin"])
def test_directory_viewers_see_the_directory_tiles(persona, request):
    response = page(request.getfixturevalue(persona))
    content = response.content.decode()
    for tile in ("alerts", "pending", "reviews", "made"):
        assert f'data-tile="{tile}"' in content
    assert 'id="users-per-role"' in content and 'id="standing-access"' in content


def test_a_resource_owner_sees_the_resource_roles_at_their_scopes_only(resource_owner, tree):
    assign(make_user("inside"), "Reader", scope=tree["rg"], kind=AssignmentKind.ELIGIBLE)
    assign(make_user("outside"), "Reader", scope=tree["other_sub"], kind=AssignmentKind.ELIGIBLE)
    assign(make_user("director"), PRA, permanent=True)
    response = page(resource_owner)
    content = response.content.decode()
    assert response.context["counts"].resource.eligible == 1
    assert response.context["counts"].directory.total == 0
    assert 'data-tile="alerts"' not in content and 'id="standing-access"' not in content
    assert 'id="types-chart"' in content


def test_someone_who_administers_nothing_lands_on_their_own_view(outsider):
    content = page(outsider).content.decode()
    assert 'id="dashboard-own"' in content
    assert 'data-tile="alerts"' not in content and 'id="activations-chart"' not in content


def test_the_own_view_lists_their_eligible_and_active_roles(eligible_user, tree):
    active = assign(eligible_user, "Reader", scope=tree["rg"])
    response = page(eligible_user)
    listed = {a.pk for a in response.context["own_roles"]}
    assert listed == set(
        Assignment.objects.filter(principal_user=eligible_user).values_list("pk", flat=True)
    )
    assert active.pk in listed
    assert f'href="{reverse("assignments:my_roles")}?tab=eligible"' in response.content.decode()


def test_the_own_view_lists_roles_held_through_a_group(outsider):
    assign(make_group("readers", outsider), "Security Reader", kind=AssignmentKind.ELIGIBLE)
    response = page(outsider)
    assert [a.role.name for a in response.context["own_roles"]] == ["Security Reader"]
    assert "through the group readers" in response.content.decode()


def test_the_own_view_lists_their_pending_requests(eligible_user):
    request = RoleRequest.objects.create(
        principal_user=eligible_user,
        requested_by=eligible_user,
        action=RequestAction.SELF_ACTIVATE,
        status=RequestStatus.PENDING_APPROVAL,
        role=role(PRA),
        scope=Assignment.objects.get(principal_user=eligible_user, role__name=PRA).scope,
        kind=AssignmentKind.ACTIVE,
        approval_deadline=datetime.now(UTC) + timedelta(hours=4),
    )
    response = page(eligible_user)
    assert response.context["own_requests"] == [request]
    assert response.context["my_pending"] == 1
    assert reverse("approvals:request_detail", args=[request.pk]) in response.content.decode()


def test_the_own_view_lists_the_reviews_waiting_for_them(resource_owner, approver, tree):
    assign(make_user("cora"), "Contributor", scope=tree["sub"], permanent=True)
    review = create_review(resource_owner, scope=tree["sub"], reviewer_users=[approver])
    response = page(approver)
    assert [row["instance"].review for row in response.context["my_reviews"]] == [review]
    assert 'data-tile="my-reviews">1<' in response.content.decode()


def test_the_own_view_counts_the_approvals_waiting_for_them(eligible_user, approver):
    from django.contrib.auth.models import Permission  # noqa: F401 (guardian's model)
    from guardian.shortcuts import assign_perm

    from assignments.models import RolePolicy

    policy = RolePolicy.objects.get(role=role(PRA), scope__isnull=True)
    assign_perm("assignments.approve_rolepolicy", approver, policy)
    RoleRequest.objects.create(
        principal_user=eligible_user,
        requested_by=eligible_user,
        action=RequestAction.SELF_ACTIVATE,
        status=RequestStatus.PENDING_APPROVAL,
        role=role(PRA),
        scope=Assignment.objects.get(principal_user=eligible_user, role__name=PRA).scope,
        kind=AssignmentKind.ACTIVE,
        approvals_required=1,
        approval_deadline=datetime.now(UTC) + timedelta(hours=4),
    )
    assert 'data-tile="my-approvals">1<' in page(approver).content.decode()


# --- Charts ----------------------------------------------------------------------------------


def test_the_week_chart_has_seven_bars_and_the_month_chart_thirty(security_reader):
    content = page(security_reader).content.decode()
    week = re.search(r'data-chart="week".*?</svg>', content, re.S).group(0)
    month = re.search(r'data-chart="month".*?</svg>', content, re.S).group(0)
    assert week.count("<g data-day=") == 7
    assert month.count("<g data-day=") == 30


def test_activations_count_on_the_day_they_started(db):
    with time_machine.travel(T0, tick=False):
        security_reader = make_user("sam", time_zone="UTC")
        assign(security_reader, "Security Reader", permanent=True)
        for days_ago, n in ((0, 2), (3, 1), (10, 4)):
            for number in range(n):
                activation(make_user(f"a{days_ago}-{number}"), PRA, T0 - timedelta(days=days_ago))
        response = page(security_reader)
    week, month = response.context["charts"]["week"], response.context["charts"]["month"]
    assert [bar.total for bar in week.days] == [0, 0, 0, 1, 0, 0, 2]
    assert month.total == 7 and week.total == 3
    assert sum(len(bar.segments) for bar in month.days) == 3  # one role: a segment per busy day


def test_activation_days_are_the_viewers_own(db):
    viewer = make_user("kiri", time_zone="Pacific/Auckland")  # UTC+13 in January
    with time_machine.travel(T0, tick=False):
        assign(viewer, "Security Reader", permanent=True)
        activation(make_user("late"), PRA, datetime(2026, 1, 15, 11, 30, tzinfo=UTC))
        response = page(viewer)
    week = response.context["charts"]["week"]
    assert week.days[-1].day.isoformat() == "2026-01-16"  # already the 16th in Auckland
    assert week.days[-1].total == 1
    assert '<g data-day="2026-01-16" data-count="1">' in response.content.decode()


def test_the_five_busiest_roles_have_a_colour_and_the_rest_share_other_roles(security_reader):
    now = datetime.now(UTC) - timedelta(minutes=30)
    names = [GA, PRA, USER_ADMIN, "Security Administrator", "Application Administrator",
             "Helpdesk Administrator", "Billing Administrator"]  # fmt: skip
    for rank, name in enumerate(names):
        for number in range(len(names) - rank):
            activation(make_user(f"u{rank}-{number}"), name, now)
    series = page(security_reader).context["charts"]["month"].series
    assert [s.label for s in series] == [*names[:5], "Other roles"]
    today = page(security_reader).context["charts"]["month"].days[-1]
    assert [s.count for s in today.segments] == [7, 6, 5, 4, 3, 2 + 1]


def test_the_types_chart_draws_eligible_active_and_permanent(security_reader):
    assign(make_user("e1"), USER_ADMIN, kind=AssignmentKind.ELIGIBLE)
    assign(make_user("t1"), USER_ADMIN)
    content = page(security_reader).content.decode()
    chart = re.search(r'data-chart="types-1".*?</svg>', content, re.S).group(0)
    # Sam's own Security Reader is the one permanent.
    assert re.findall(r'data-type="([^"]+)" data-count="(\d+)"', chart) == [
        ("Eligible", "1"),
        ("Active (time-bound)", "1"),
        ("Active (permanent)", "1"),
    ]


# --- Insights --------------------------------------------------------------------------------


def test_too_many_global_administrators_is_shown_above_the_alerts_thresholds(security_reader):
    for number in range(2):  # the alert's default: more than 2, and more than 10%
        assign(make_user(f"ga{number}"), GA, kind=AssignmentKind.ELIGIBLE)
    response = page(security_reader)
    assert not response.context["too_many_global_admins"]
    assign(make_user("one-too-many"), GA)
    response = page(security_reader)
    assert response.context["too_many_global_admins"]
    assert "Too many Global Administrators" in response.content.decode()
    assert reverse("assignments:role_detail", args=[role(GA).pk]) in response.content.decode()


def test_global_administrators_within_the_alerts_share_are_not_too_many(security_reader):
    for number in range(3):
        assign(make_user(f"ga{number}"), GA)
    for number in range(27):  # 3 of 30 privileged people: 10%, not more
        assign(make_user(f"ua{number}"), USER_ADMIN)
    response = page(security_reader)
    assert response.context["global_admin_percent"] == 10
    assert not response.context["too_many_global_admins"]


def test_the_global_administrator_thresholds_are_the_alerts_settings(security_reader):
    AlertSetting.objects.create(kind="too_many_global_admins", thresholds={"count": 5})
    for number in range(4):
        assign(make_user(f"ga{number}"), GA)
    assert not page(security_reader).context["too_many_global_admins"]


def test_a_deactivated_account_is_not_counted(security_reader):
    assign(make_user("gone", is_active=False), GA, permanent=True)
    assign(make_group("team", make_user("left", is_active=False)), GA)
    assert holders_of(page(security_reader), GA).total == 0


def test_standing_access_lists_permanent_active_assignments_of_privileged_roles(
    security_reader, pra
):
    timed = assign(make_user("timed"), PRA)
    eligible = assign(make_user("eli"), PRA, kind=AssignmentKind.ELIGIBLE, permanent=True)
    breakglass = assign(make_user("glass", is_emergency_access=True), GA, permanent=True)
    listed = list(page(security_reader).context["standing_page"].object_list)
    assert [a.principal_user for a in listed] == [pra]  # not Sam's Security Reader either
    assert {timed, eligible, breakglass}.isdisjoint(listed)


def test_standing_access_is_paginated_and_filtered_by_role(security_reader):
    for number in range(dashboard.STANDING_PAGE_SIZE + 2):
        assign(make_user(f"perm{number}"), USER_ADMIN, permanent=True)
    assign(make_user("perm-ga"), GA, permanent=True)
    response = page(security_reader, "?standing_page=2")
    assert response.context["standing_page"].paginator.count == dashboard.STANDING_PAGE_SIZE + 3
    assert len(response.context["standing_page"].object_list) == 3
    response = page(security_reader, f"?standing_role={role(GA).pk}")
    assert [a.role.name for a in response.context["standing_page"].object_list] == [GA]


@pytest.mark.urls("pim_portal.urls")
def test_the_bulk_action_has_its_address_in_the_portals_urls():
    assert reverse("dashboard_standing_access") == "/dashboard/standing-access/"


def test_a_reader_sees_standing_access_without_the_bulk_form(security_reader, pra):
    content = page(security_reader).content.decode()
    assert 'id="standing-form"' not in content
    assert 'id="standing-form"' in page(pra).content.decode()


# --- Standing access: make eligible, remove --------------------------------------------------


def post_standing(user, action: str, ids, justification: str = "Just in time from now on"):
    return signed_in(user).post(
        reverse("dashboard_standing_access"),
        {"assignment": [str(pk) for pk in ids], "action": action, "justification": justification},
    )


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_remove_ends_the_selected_standing_assignments(pra, global_admin):
    ulla = assign(make_user("ulla"), USER_ADMIN, permanent=True)
    response = post_standing(pra, "remove", [ulla.pk])
    assert response.status_code == 302 and response.url == reverse("dashboard")
    ulla.refresh_from_db()
    assert ulla.end is not None
    event = AuditEvent.objects.get(action="pim.assignment.removed", target_id=str(ulla.pk))
    assert (event.actor_id, event.message) == (pra.pk, "Just in time from now on")
    assert messages_of(response) == ["Removed 1 standing assignment."]


def test_make_eligible_replaces_standing_access_by_an_eligible_assignment(pra, global_admin):
    ulla = make_user("ulla")
    standing = assign(ulla, USER_ADMIN, permanent=True)
    response = post_standing(pra, "make_eligible", [standing.pk])
    standing.refresh_from_db()
    assert standing.end is not None
    eligible = Assignment.objects.in_force().eligible().get(principal_user=ulla)
    assert eligible.role.name == USER_ADMIN
    created = AuditEvent.objects.get(action="pim.assignment.created", target_id=str(eligible.pk))
    assert created.actor_id == pra.pk
    assert messages_of(response) == ["Made eligible 1 standing assignment."]


def test_the_last_active_global_administrator_is_kept(pra, global_admin):
    standing = Assignment.objects.get(principal_user=global_admin, role__name=GA)
    response = post_standing(pra, "remove", [standing.pk])
    standing.refresh_from_db()
    assert standing.end is None
    assert any("last active Global Administrator" in text for text in messages_of(response))


def test_an_assignment_that_is_not_standing_access_is_left_alone(pra):
    timed = assign(make_user("timed"), USER_ADMIN)
    response = post_standing(pra, "remove", [timed.pk])
    timed.refresh_from_db()
    assert timed.end > datetime.now(UTC)
    assert messages_of(response) == [
        "1 selected assignment left as it was: no longer standing access (ended or changed "
        "meanwhile), or kept by a rule."
    ]


@pytest.mark.parametrize("persona", ["security_reader", "resource_owner", "outsider"])
@pytest.mark.parametrize("action", ["remove", "make_eligible"])
def test_only_directory_administrators_change_standing_access(persona, action, request, pra):
    viewer = request.getfixturevalue(persona)
    standing = Assignment.objects.get(principal_user=pra)
    response = post_standing(viewer, action, [standing.pk])
    assert response.status_code == 403
    standing.refresh_from_db()
    assert standing.end is None
    refused = AuditEvent.objects.get(action="pim.security.forbidden", actor=viewer)
    assert refused.message == "change standing access from the dashboard"


def test_nothing_selected_is_refused_with_a_message(pra):
    response = post_standing(pra, "remove", [])
    assert messages_of(response) == ["Choose at least one assignment."]


def test_a_change_without_a_justification_is_refused(pra):
    standing = assign(make_user("ulla"), USER_ADMIN, permanent=True)
    response = post_standing(pra, "remove", [standing.pk], justification="")
    standing.refresh_from_db()
    assert standing.end is None
    assert messages_of(response) == ["Say why the standing access changes."]


def test_the_change_goes_back_to_the_page_it_came_from(pra):
    standing = assign(make_user("ulla"), USER_ADMIN, permanent=True)
    back = reverse("dashboard") + "?standing_page=2#standing-access"
    response = signed_in(pra).post(
        reverse("dashboard_standing_access"),
        {"assignment": [standing.pk], "action": "remove", "justification": "x", "next": back},
    )
    assert response.url == back


def test_the_change_never_goes_back_to_another_site(pra):
    standing = assign(make_user("ulla"), USER_ADMIN, permanent=True)
    response = signed_in(pra).post(
        reverse("dashboard_standing_access"),
        {"assignment": [standing.pk], "action": "remove", "justification": "x",
         "next": "https://evil.example/"},
    )  # fmt: skip
    assert response.url == reverse("dashboard")


# --- Query counts ----------------------------------------------------------------------------


def queries_for(client, url: str) -> int:
    client.get(url)  # the first request of a session does its own bookkeeping
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


def grow(count: int, start: int, tree) -> None:
    """People of every shape: direct and through groups, eligible, active, permanent, in
    privileged and resource roles; their activations; alerts; pending requests."""
    now = datetime.now(UTC)
    for number in range(start, start + count):
        user = make_user(f"grown{number}")
        kind = AssignmentKind.ELIGIBLE if number % 2 else AssignmentKind.ACTIVE
        assign(user, [GA, PRA, USER_ADMIN][number % 3], kind=kind, permanent=number % 4 == 0)
        assign(make_group(f"grown-team{number}", user, make_user(f"mate{number}")), USER_ADMIN)
        assign(user, "Reader", scope=tree["rg"], kind=kind)
        activation(
            user, "Contributor", now - timedelta(days=number % 30, minutes=5), scope=tree["vm"]
        )
        Alert.objects.create(kind=f"grown{number}", severity=Severity.HIGH, title="Grown")
        RoleRequest.objects.create(
            principal_user=user,
            requested_by=user,
            action=RequestAction.SELF_ACTIVATE,
            status=RequestStatus.PENDING_APPROVAL,
            role=role(PRA),
            scope=tree["root"],
            kind=AssignmentKind.ACTIVE,
            approval_deadline=now + timedelta(hours=4),
        )


@pytest.mark.parametrize("persona", ["pra", "security_reader", "resource_owner"])
def test_the_administrators_dashboard_query_count_does_not_grow(persona, request, tree):
    client = signed_in(request.getfixturevalue(persona))
    grow(3, 0, tree)
    baseline = queries_for(client, reverse("dashboard"))
    grow(30, 3, tree)
    assert queries_for(client, reverse("dashboard")) == baseline


def test_the_own_view_query_count_does_not_grow(outsider, tree):
    client = signed_in(outsider)

    def mine(count: int, start: int) -> None:
        for number in range(start, start + count):
            assign(outsider, "Reader", scope=tree["rg"], kind=AssignmentKind.ELIGIBLE)
            assign(make_group(f"own-team{number}", outsider), "Contributor", scope=tree["vm"])

    mine(3, 0)
    baseline = queries_for(client, reverse("dashboard"))
    mine(30, 3)
    assert queries_for(client, reverse("dashboard")) == baseline


# --- Counted once a minute -------------------------------------------------------------------


def held_in(response, name: str) -> int:
    """The users holding the role in the page's own table (drawn now or kept)."""
    row = re.search(
        rf'<tr data-role="{re.escape(name)}">.*?data-col="total">(\d+)<', response.content.decode()
    )
    return int(row.group(1)) if row else 0


def standing_in(response) -> list[int]:
    """The standing access assignments the page lists."""
    return [int(pk) for pk in re.findall(r'<tr data-assignment="(\d+)"', response.content.decode())]


def test_the_counts_are_kept_for_a_minute_and_the_page_says_when(settings, security_reader):
    settings.PIM_DASHBOARD_COUNTS_SECONDS = 60
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        counted = page(security_reader).context["counted_at"]
        assign(make_user("ulla"), USER_ADMIN)
        again = page(security_reader)
        assert held_in(again, USER_ADMIN) == 0
        assert again.context["counted_at"] == counted
        clock.shift(timedelta(seconds=61))
        assert held_in(page(security_reader), USER_ADMIN) == 1


@pytest.mark.django_db(transaction=True)  # the kept part is forgotten after commit
def test_the_kept_insights_are_drawn_again_after_a_write_of_assignments(settings, security_reader):
    settings.PIM_DASHBOARD_COUNTS_SECONDS = 60
    before = standing_in(page(security_reader))
    ulla = assign(make_user("ulla"), USER_ADMIN, permanent=True)
    assert standing_in(page(security_reader)) == sorted([*before, ulla.pk])


def test_the_kept_insights_are_drawn_again_when_the_open_alerts_change(settings, security_reader):
    settings.PIM_DASHBOARD_COUNTS_SECONDS = 60
    assert "data-alert=" not in page(security_reader).content.decode()
    alert = Alert.objects.create(kind="high", severity=Severity.HIGH, title="High one")
    assert f'data-alert="{alert.pk}"' in page(security_reader).content.decode()
    Alert.objects.filter(pk=alert.pk).update(status=AlertStatus.RESOLVED)
    assert "data-alert=" not in page(security_reader).content.decode()


def test_the_kept_insights_hold_no_form_token(settings, pra):
    """Each session has its own token: the kept part, the same for every administrator, has
    none, and the standing access form it ties its checkboxes and buttons to is outside it."""
    settings.PIM_DASHBOARD_COUNTS_SECONDS = 60
    first, second = page(pra), page(pra)
    assert first.context["directory_part"] == second.context["directory_part"]
    kept = first.context["directory_part"]
    assert "csrfmiddlewaretoken" not in kept and 'id="standing-form"' not in kept
    assert 'form="standing-form"' in kept
    form = re.search(r'<form[^>]*id="standing-form".*?</form>', first.content.decode(), re.S)
    assert form and 'name="csrfmiddlewaretoken"' in form.group(0)
