"""Creating a review, the snapshot each occurrence takes, and reviewers' decisions."""

from datetime import UTC, datetime, timedelta
from math import ceil

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assignments.models import Assignment, AssignmentKind, RoleRequest
from audit import log as audit_log
from audit.models import AuditEvent
from pim_portal import timekeeper
from reviews import authz as review_authz
from reviews import services
from reviews.models import (
    AccessReview,
    Decision,
    DefaultDecision,
    GroupHandling,
    Recommendation,
    Recurrence,
    ReviewerType,
    ReviewInstance,
    ReviewItem,
)
from reviews.services import occurrences
from tests.factories import assign, make_group, make_user, role
from tests.reviews.conftest import (
    CONTRIBUTOR,
    DAY,
    PRA,
    READER,
    activate_from,
    create_review,
    events,
    item_for,
    items_of,
    latest_instance,
    new_holder,
    reviewed_assignment_ids,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def messages(excinfo) -> list[str]:
    return excinfo.value.messages


def olivias_review(resource_owner, tree, reviewers=(), **settings) -> AccessReview:
    """A review of Contributor on Production, created by Olivia (its Owner)."""
    return create_review(
        resource_owner, scope=tree["sub"], reviewer_users=list(reviewers), **settings
    )


@pytest.fixture
def review(resource_owner, approver, erins_contributor, tree) -> AccessReview:
    """Olivia's review of Contributor on Production, Alex reviewing, started now."""
    return olivias_review(resource_owner, tree, [approver])


@pytest.fixture
def instance(review) -> ReviewInstance:
    return latest_instance(review)


def decide(actor, instance, decision=Decision.DENY, items=(), reason="Left the team", **kw):
    return services.items_decide(
        actor=actor,
        instance=instance,
        decision=decision,
        reason=reason,
        item_ids=[item.pk for item in items] if items else kw.pop("item_ids", None),
        **kw,
    )


# --- Who may create a review ---------------------------------------------------------------------


def test_an_outsider_may_not_create_a_review(outsider, approver, tree):
    with pytest.raises(PermissionDenied, match="create an access review of Contributor"):
        create_review(outsider, scope=tree["sub"], reviewer_users=[approver])
    assert events("pim.security.forbidden", actor=outsider).count() == 1
    assert not AccessReview.objects.exists()


def test_the_resource_owner_may_not_create_a_review_of_a_directory_role(
    resource_owner, approver, tree
):
    with pytest.raises(PermissionDenied, match=f"create an access review of {PRA} at /"):
        create_review(resource_owner, roles=[PRA], reviewer_users=[approver])
    assert events("pim.security.forbidden", actor=resource_owner).count() == 1
    assert not AccessReview.objects.exists()


def test_the_resource_owner_may_not_create_a_review_above_her_subscription(
    resource_owner, approver, tree
):
    with pytest.raises(PermissionDenied, match=tree["mg"].path):
        create_review(resource_owner, scope=tree["mg"], reviewer_users=[approver])
    assert events("pim.security.forbidden", actor=resource_owner).count() == 1
    assert not AccessReview.objects.exists()


def test_the_resource_owner_creates_a_review_of_resource_roles_at_her_subscription(
    resource_owner, approver, tree
):
    review = create_review(
        resource_owner, roles=[CONTRIBUTOR, READER], scope=tree["sub"], reviewer_users=[approver]
    )
    assert set(review.roles.values_list("name", flat=True)) == {CONTRIBUTOR, READER}
    assert review.scope == tree["sub"]
    assert review.created_by == resource_owner
    assert services.reviewers_of(review) == ([approver], [])


# --- Bad input -----------------------------------------------------------------------------------


def test_a_review_of_no_role_is_refused_with_a_message(pra, approver, tree):
    with pytest.raises(ValidationError) as refused:
        create_review(pra, roles=[], reviewer_users=[approver])
    assert "Choose at least one role to review." in messages(refused)
    assert not AccessReview.objects.exists()


def test_a_directory_role_below_the_directory_root_is_refused(pra, approver, tree):
    with pytest.raises(ValidationError) as refused:
        create_review(pra, roles=[PRA], scope=tree["sub"], reviewer_users=[approver])
    assert messages(refused) == [
        f"Directory roles ({PRA}) are held at the directory root: review them at the "
        "directory, or choose only resource roles for a narrower scope."
    ]


def test_selected_reviewers_must_name_at_least_one(resource_owner, tree):
    with pytest.raises(ValidationError) as refused:
        olivias_review(resource_owner, tree, reviewer_type=ReviewerType.SELECTED)
    assert messages(refused) == ["Name at least one reviewer."]


def test_a_manager_review_needs_a_fallback_reviewer(resource_owner, tree):
    with pytest.raises(ValidationError) as refused:
        olivias_review(resource_owner, tree, reviewer_type=ReviewerType.MANAGER)
    assert messages(refused) == ["Name a fallback reviewer for principals who have no manager."]


def test_a_review_of_neither_users_nor_groups_is_refused(resource_owner, approver, tree):
    with pytest.raises(ValidationError) as refused:
        olivias_review(resource_owner, tree, [approver], include_users=False, include_groups=False)
    assert messages(refused) == ["Review users, groups, or both."]


def test_taking_recommendations_needs_recommendations_turned_on(resource_owner, approver, tree):
    with pytest.raises(ValidationError) as refused:
        olivias_review(
            resource_owner,
            tree,
            [approver],
            default_decision=DefaultDecision.RECOMMENDATION,
            recommendations=False,
        )
    assert messages(refused) == ["Taking recommendations needs recommendations turned on."]


def test_a_bad_address_to_notify_is_refused(resource_owner, approver, tree):
    with pytest.raises(ValidationError) as refused:
        olivias_review(
            resource_owner, tree, [approver], notify_emails=["ciso@example.com", "not-an-address"]
        )
    assert messages(refused) == ["“not-an-address” is not an e-mail address."]
    assert not AccessReview.objects.exists()


def test_an_unknown_time_zone_is_refused_with_a_message(resource_owner, approver, tree):
    with pytest.raises(ValidationError) as refused:
        olivias_review(resource_owner, tree, [approver], time_zone="Mars/Olympus_Mons")
    assert messages(refused) == [
        "“Mars/Olympus_Mons” is not a time zone: choose one such as Europe/Berlin."
    ]
    assert not AccessReview.objects.exists()


# --- Creating ------------------------------------------------------------------------------------


def test_creating_a_review_is_audited(review, resource_owner):
    created = events("pim.review.created").get()
    assert created.actor == resource_owner
    assert created.target_id == str(review.pk)
    assert created.after["name"] == "Production access check"
    assert created.after["roles"] == [CONTRIBUTOR]
    assert created.after["reviewers"] == ["Alex Approver"]


def test_a_review_starting_now_begins_its_first_occurrence_at_once_with_its_snapshot(
    review, erins_contributor
):
    instance = ReviewInstance.objects.get(review=review)
    assert (instance.number, instance.start, instance.end) == (1, T0, T0 + 14 * DAY)
    assert reviewed_assignment_ids(instance) == {erins_contributor.pk}
    review.refresh_from_db()
    assert (review.occurrences, review.next_start) == (1, None)


def test_a_review_starting_later_has_no_occurrence_until_then(
    resource_owner, approver, erins_contributor, tree, clock
):
    review = olivias_review(resource_owner, tree, [approver], start=T0 + 2 * DAY)
    assert review.next_start == T0 + 2 * DAY
    clock.move_to(T0 + 2 * DAY - timedelta(seconds=1))
    assert timekeeper.run_due("review starts") == 0
    assert not ReviewInstance.objects.filter(review=review).exists()


def test_the_time_engine_starts_a_later_review_at_its_start_with_a_snapshot_taken_then(
    resource_owner, approver, erins_contributor, tree, clock
):
    review = olivias_review(resource_owner, tree, [approver], start=T0 + 2 * DAY)
    _, added_meanwhile = new_holder("fred", scope=tree["sub"])
    clock.move_to(T0 + 2 * DAY)
    assert timekeeper.run_due("review starts") == 1
    instance = ReviewInstance.objects.get(review=review)
    assert (instance.start, instance.end) == (T0 + 2 * DAY, T0 + 16 * DAY)
    assert reviewed_assignment_ids(instance) == {erins_contributor.pk, added_meanwhile.pk}


# --- Changing a review ---------------------------------------------------------------------------


def test_changing_a_review_is_audited_with_before_and_after(review, resource_owner):
    services.review_update(actor=resource_owner, review=review, name="Production, Q2")
    changed = events("pim.review.changed").get()
    assert (changed.actor, changed.before["name"], changed.after["name"]) == (
        resource_owner,
        "Production access check",
        "Production, Q2",
    )


def test_what_defines_the_snapshots_cannot_change(review, resource_owner):
    with pytest.raises(ValidationError, match="cannot change once a review exists"):
        services.review_update(actor=resource_owner, review=review, duration_days=30)
    review.refresh_from_db()
    assert review.duration_days == 14


def test_a_non_manager_may_not_change_a_review(review, approver):
    with pytest.raises(PermissionDenied, match=f"manage access review {review.pk}"):
        services.review_update(actor=approver, review=review, name="Mine now")
    assert events("pim.security.forbidden", actor=approver).count() == 1


def test_new_reviewers_decide_once_named(review, instance, resource_owner, erins_contributor):
    bea = make_user("bea")
    services.review_update(actor=resource_owner, review=review, reviewer_users=[bea])
    item = item_for(instance, erins_contributor)
    assert decide(bea, instance, Decision.DENY, [item]) == 1
    assert services.reviewers_of(review) == ([bea], [])


def test_ending_a_recurrence_sooner_cancels_the_later_occurrences(
    resource_owner, approver, erins_contributor, tree
):
    review = olivias_review(
        resource_owner, tree, [approver], recurrence=Recurrence.WEEKLY, duration_days=7
    )
    assert review.next_start == T0 + 7 * DAY
    services.review_update(
        actor=resource_owner, review=review, recurrence_end="after_count", recurrence_count=1
    )
    review.refresh_from_db()
    assert review.next_start is None


def test_raising_the_count_of_a_recurrence_that_ran_out_schedules_its_next_occurrence(
    resource_owner, approver, erins_contributor, tree
):
    review = olivias_review(
        resource_owner,
        tree,
        [approver],
        recurrence=Recurrence.WEEKLY,
        duration_days=7,
        recurrence_end="after_count",
        recurrence_count=1,
    )
    assert review.next_start is None  # its one occurrence is running
    services.review_update(actor=resource_owner, review=review, recurrence_count=3)
    review.refresh_from_db()
    assert review.next_start == T0 + 7 * DAY


# --- The snapshot --------------------------------------------------------------------------------


def test_the_snapshot_holds_the_in_force_assignments_of_the_roles_at_the_scope_and_below(
    resource_owner, approver, erins_contributor, tree
):
    _, at_rg = new_holder("fred", scope=tree["rg"], kind=AssignmentKind.ACTIVE)
    _, at_vm = new_holder("gus", scope=tree["vm"])
    new_holder("hal", scope=tree["other_sub"])  # a sibling subscription
    new_holder("ivy", scope=tree["mg"])  # above the scope
    new_holder("jay", READER, scope=tree["sub"])  # another role
    new_holder("kim", scope=tree["sub"], start=T0 - 10 * DAY, end=T0 - DAY)  # ended
    new_holder("lee", scope=tree["sub"], start=T0 + DAY, end=T0 + 9 * DAY)  # not started
    review = olivias_review(resource_owner, tree, [approver])
    assert reviewed_assignment_ids(latest_instance(review)) == {
        erins_contributor.pk,
        at_rg.pk,
        at_vm.pk,
    }


def test_the_snapshot_holds_only_the_chosen_assignment_type(
    resource_owner, approver, erins_contributor, tree
):
    new_holder("fred", scope=tree["sub"], kind=AssignmentKind.ACTIVE)
    review = olivias_review(resource_owner, tree, [approver], assignment_types="eligible")
    assert reviewed_assignment_ids(latest_instance(review)) == {erins_contributor.pk}


def test_only_active_assignments_when_active_is_chosen(
    resource_owner, approver, erins_contributor, tree
):
    _, active = new_holder("fred", scope=tree["sub"], kind=AssignmentKind.ACTIVE)
    review = olivias_review(resource_owner, tree, [approver], assignment_types="active")
    assert reviewed_assignment_ids(latest_instance(review)) == {active.pk}


def test_activations_are_not_reviewed_but_the_eligibility_they_came_from_is(
    resource_owner, approver, erins_contributor, tree
):
    activate_from(erins_contributor)
    review = olivias_review(resource_owner, tree, [approver], assignment_types="both")
    assert reviewed_assignment_ids(latest_instance(review)) == {erins_contributor.pk}


@pytest.fixture
def web_team(tree):
    """Hana and Ian, eligible for Contributor on Production as the group "Web team"."""
    hana, ian = make_user("hana", display_name="Hana"), make_user("ian", display_name="Ian")
    group = make_group("Web team", hana, ian)
    assignment = assign(
        group, CONTRIBUTOR, scope=tree["sub"], kind=AssignmentKind.ELIGIBLE, permanent=True
    )
    return {"group": group, "hana": hana, "ian": ian, "assignment": assignment}


def test_a_users_only_review_leaves_groups_out(
    resource_owner, approver, erins_contributor, web_team, tree
):
    review = olivias_review(resource_owner, tree, [approver], include_groups=False)
    assert reviewed_assignment_ids(latest_instance(review)) == {erins_contributor.pk}


def test_a_groups_only_review_leaves_users_out(
    resource_owner, approver, erins_contributor, web_team, tree
):
    review = olivias_review(resource_owner, tree, [approver], include_users=False)
    assert reviewed_assignment_ids(latest_instance(review)) == {web_team["assignment"].pk}


def test_a_group_reviewed_as_a_whole_is_one_item(resource_owner, approver, web_team, tree):
    review = olivias_review(resource_owner, tree, [approver], group_handling=GroupHandling.WHOLE)
    item = items_of(latest_instance(review)).get()
    assert (item.principal_group, item.principal_user, item.principal_name) == (
        web_team["group"],
        None,
        "Web team",
    )
    assert item.assignment == web_team["assignment"]


def test_a_group_expanded_to_its_members_is_one_item_per_member(
    resource_owner, approver, web_team, tree
):
    review = olivias_review(resource_owner, tree, [approver], group_handling=GroupHandling.MEMBERS)
    items = items_of(latest_instance(review))
    assert {(i.principal_user, i.principal_group, i.assignment) for i in items} == {
        (web_team["hana"], web_team["group"], web_team["assignment"]),
        (web_team["ian"], web_team["group"], web_team["assignment"]),
    }
    assert sorted(i.principal_name for i in items) == ["Hana", "Ian"]


def test_inactive_days_keeps_only_principals_with_no_activation_and_no_sign_in_in_that_time(
    resource_owner, approver, tree
):
    def holder(name, last_login=None):
        user = make_user(name, last_login=last_login)
        return assign(
            user, CONTRIBUTOR, scope=tree["sub"], kind=AssignmentKind.ELIGIBLE, permanent=True
        )

    stale = holder("stale", last_login=T0 - 60 * DAY)
    never = holder("never")
    holder("signed_in", last_login=T0 - 5 * DAY)
    activated = holder("activated", last_login=T0 - 60 * DAY)
    activate_from(activated, start=T0 - 5 * DAY)
    old_activation = holder("old_activation")
    activate_from(old_activation, start=T0 - 45 * DAY)
    review = olivias_review(resource_owner, tree, [approver], inactive_days=30)
    assert reviewed_assignment_ids(latest_instance(review)) == {
        stale.pk,
        never.pk,
        old_activation.pk,
    }


# --- Recommendations -----------------------------------------------------------------------------


def test_an_eligible_principal_who_activated_within_the_look_back_is_recommended_approval(
    resource_owner, approver, erins_contributor, tree
):
    activate_from(erins_contributor, start=T0 - 5 * DAY)
    review = olivias_review(resource_owner, tree, [approver], lookback_days=30)
    item = items_of(latest_instance(review)).get()
    assert item.recommendation == Recommendation.APPROVE
    assert (
        item.recommendation_reason == "Activated the role on 2026-02-25, within the last 30 days."
    )
    assert item.last_activation_at == T0 - 5 * DAY


def test_an_eligible_principal_who_never_activated_is_recommended_denial_with_the_reason(
    resource_owner, approver, erins_contributor, tree
):
    review = olivias_review(resource_owner, tree, [approver], lookback_days=30)
    item = items_of(latest_instance(review)).get()
    assert item.recommendation == Recommendation.DENY
    assert item.recommendation_reason == "Has never activated the role (look-back period 30 days)."


def test_an_eligible_principal_who_activated_before_the_look_back_is_recommended_denial(
    resource_owner, approver, erins_contributor, tree
):
    activate_from(erins_contributor, start=T0 - 40 * DAY)
    review = olivias_review(resource_owner, tree, [approver], lookback_days=30)
    item = items_of(latest_instance(review)).get()
    assert item.recommendation == Recommendation.DENY
    assert item.recommendation_reason == (
        "Has not activated the role in the last 30 days (last on 2026-01-21)."
    )


def test_an_active_principal_is_recommended_by_their_last_sign_in(resource_owner, approver, tree):
    recent = make_user("recent", last_login=T0 - 3 * DAY)
    away = make_user("away", last_login=T0 - 50 * DAY)
    for user in (recent, away):
        assign(user, CONTRIBUTOR, scope=tree["sub"], permanent=True)
    review = olivias_review(resource_owner, tree, [approver], assignment_types="active")
    by_user = {i.principal_user: i for i in items_of(latest_instance(review))}
    assert by_user[recent].recommendation == Recommendation.APPROVE
    assert by_user[recent].recommendation_reason.startswith("Signed in on 2026-02-27")
    assert by_user[away].recommendation == Recommendation.DENY
    assert by_user[away].recommendation_reason == (
        "Has not signed in in the last 30 days (last on 2026-01-11)."
    )


def test_no_recommendation_when_recommendations_are_off(
    resource_owner, approver, erins_contributor, tree
):
    review = olivias_review(resource_owner, tree, [approver], recommendations=False)
    item = items_of(latest_instance(review)).get()
    assert (item.recommendation, item.recommendation_reason) == (Recommendation.NONE, "")


# --- Reviewers of items --------------------------------------------------------------------------


def test_a_manager_review_names_each_principals_manager(
    resource_owner, approver, eligible_user, erins_contributor, tree
):
    mia = make_user("mia", display_name="Mia Manager")
    eligible_user.manager = mia
    eligible_user.save()
    review = olivias_review(resource_owner, tree, [approver], reviewer_type=ReviewerType.MANAGER)
    item = items_of(latest_instance(review)).get()
    assert item.reviewer == mia
    assert list(review_authz.decidable_items(mia, latest_instance(review))) == [item]
    assert not review_authz.decidable_items(approver, latest_instance(review)).exists()


def test_a_manager_review_leaves_principals_without_a_manager_to_the_fallback(
    resource_owner, approver, erins_contributor, tree
):
    review = olivias_review(resource_owner, tree, [approver], reviewer_type=ReviewerType.MANAGER)
    instance = latest_instance(review)
    item = items_of(instance).get()
    assert item.reviewer is None
    assert list(review_authz.decidable_items(approver, instance)) == [item]


def test_a_principal_whose_manager_was_deactivated_goes_to_the_fallback(
    resource_owner, approver, eligible_user, erins_contributor, tree
):
    """A manager who left cannot sign in to decide: the fallback reviewer does."""
    eligible_user.manager = make_user("max", is_active=False)
    eligible_user.save()
    review = olivias_review(resource_owner, tree, [approver], reviewer_type=ReviewerType.MANAGER)
    instance = latest_instance(review)
    assert items_of(instance).get().reviewer is None
    assert review_authz.decidable_items(approver, instance).count() == 1


def test_a_self_review_names_each_principal_as_their_own_reviewer(
    resource_owner, eligible_user, erins_contributor, web_team, tree
):
    review = olivias_review(resource_owner, tree, reviewer_type=ReviewerType.SELF)
    items = items_of(latest_instance(review))
    assert {(i.principal_user, i.reviewer) for i in items} == {
        (eligible_user, eligible_user),
        (web_team["hana"], web_team["hana"]),
        (web_team["ian"], web_team["ian"]),
    }


def test_each_occurrence_has_its_own_snapshot_taken_at_its_start(
    resource_owner, approver, erins_contributor, tree, clock
):
    review = olivias_review(
        resource_owner, tree, [approver], recurrence=Recurrence.WEEKLY, duration_days=7
    )
    _, added = new_holder("fred", scope=tree["sub"])
    clock.move_to(T0 + 7 * DAY)
    assert services.start_batch(T0 + 7 * DAY, 10) == 1
    first, second = ReviewInstance.objects.filter(review=review).order_by("number")
    assert reviewed_assignment_ids(first) == {erins_contributor.pk}
    assert reviewed_assignment_ids(second) == {erins_contributor.pk, added.pk}
    assert (second.number, second.start) == (2, T0 + 7 * DAY)


# --- Deciding ------------------------------------------------------------------------------------


def test_a_reviewer_decides_their_items(instance, approver, erins_contributor):
    item = item_for(instance, erins_contributor)
    assert decide(approver, instance, Decision.DENY, [item], reason="Moved to sales") == 1
    item.refresh_from_db()
    assert (item.decision, item.reason, item.decided_by, item.decided_at) == (
        Decision.DENY,
        "Moved to sales",
        approver,
        T0,
    )


def test_a_member_of_a_reviewer_group_decides(resource_owner, approver, erins_contributor, tree):
    reviewers = make_group("Production reviewers", approver)
    review = olivias_review(resource_owner, tree, reviewer_groups=[reviewers])
    instance = latest_instance(review)
    item = item_for(instance, erins_contributor)
    assert decide(approver, instance, Decision.DENY, [item]) == 1


def test_a_non_reviewer_is_refused_and_nothing_changes(instance, outsider, erins_contributor):
    item = item_for(instance, erins_contributor)
    with pytest.raises(PermissionDenied, match="not theirs to review"):
        decide(outsider, instance, Decision.DENY, [item])
    item.refresh_from_db()
    assert item.decision == Decision.NOT_REVIEWED
    assert events("pim.security.forbidden", actor=outsider).count() == 1
    assert not events("pim.review.decided").exists()


def test_a_named_reviewer_who_is_a_principal_does_not_decide_their_own_item(
    resource_owner, approver, erins_contributor, tree
):
    bea = make_user("bea")
    own = assign(approver, CONTRIBUTOR, scope=tree["sub"], permanent=True)
    review = olivias_review(resource_owner, tree, [approver, bea])
    instance = latest_instance(review)
    own_item = item_for(instance, own)
    assert own_item not in review_authz.decidable_items(approver, instance)
    with pytest.raises(PermissionDenied):
        decide(approver, instance, Decision.APPROVE, [own_item], reason="Still needed")
    own_item.refresh_from_db()
    assert own_item.decision == Decision.NOT_REVIEWED
    assert decide(bea, instance, Decision.APPROVE, [own_item], reason="Still needed") == 1


def test_a_reviewer_in_a_group_reviewed_as_a_whole_does_not_decide_that_groups_item(
    resource_owner, approver, web_team, tree
):
    web_team["group"].user_set.add(approver)
    review = olivias_review(resource_owner, tree, [approver], group_handling=GroupHandling.WHOLE)
    instance = latest_instance(review)
    group_item = items_of(instance).get()
    assert not review_authz.decidable_items(approver, instance).exists()
    with pytest.raises(PermissionDenied):
        decide(approver, instance, Decision.APPROVE, [group_item], reason="We need it")


def test_in_a_self_review_the_principal_decides_their_own_item(
    resource_owner, eligible_user, erins_contributor, tree
):
    review = olivias_review(resource_owner, tree, reviewer_type=ReviewerType.SELF)
    instance = latest_instance(review)
    item = item_for(instance, erins_contributor)
    assert decide(eligible_user, instance, Decision.DENY, [item], reason="No longer needed") == 1
    item.refresh_from_db()
    assert (item.decision, item.decided_by) == (Decision.DENY, eligible_user)


def test_approving_needs_a_reason_when_the_review_requires_one(
    resource_owner, approver, erins_contributor, tree
):
    review = olivias_review(resource_owner, tree, [approver], require_reason_on_approve=True)
    instance = latest_instance(review)
    item = item_for(instance, erins_contributor)
    with pytest.raises(ValidationError, match="Give a reason to approve"):
        decide(approver, instance, Decision.APPROVE, [item], reason="  ")
    item.refresh_from_db()
    assert item.decision == Decision.NOT_REVIEWED


def test_approving_needs_no_reason_when_the_review_does_not_require_one(
    instance, approver, erins_contributor
):
    item = item_for(instance, erins_contributor)
    assert decide(approver, instance, Decision.APPROVE, [item], reason="") == 1
    item.refresh_from_db()
    assert (item.decision, item.reason) == (Decision.APPROVE, "")


def test_a_decision_can_be_changed_until_the_end(instance, approver, erins_contributor, clock):
    item = item_for(instance, erins_contributor)
    decide(approver, instance, Decision.DENY, [item])
    clock.move_to(instance.end - timedelta(seconds=1))
    decide(approver, instance, Decision.APPROVE, [item], reason="Confirmed with her lead")
    item.refresh_from_db()
    assert (item.decision, item.reason) == (Decision.APPROVE, "Confirmed with her lead")


def test_deciding_after_the_end_is_refused(instance, approver, erins_contributor, clock):
    item = item_for(instance, erins_contributor)
    clock.move_to(instance.end)
    with pytest.raises(ValidationError, match="ended"):
        decide(approver, instance, Decision.DENY, [item])
    item.refresh_from_db()
    assert item.decision == Decision.NOT_REVIEWED


def test_deciding_after_the_review_was_stopped_is_refused_before_its_planned_end(
    review, instance, resource_owner, approver, erins_contributor, clock
):
    item = item_for(instance, erins_contributor)
    clock.move_to(T0 + DAY)
    services.review_stop(actor=resource_owner, review=review)
    clock.move_to(T0 + DAY + timedelta(seconds=1))
    with pytest.raises(ValidationError, match="ended"):
        decide(approver, instance, Decision.DENY, [item])


def test_deciding_all_that_match_the_filter_decides_only_the_reviewers_matching_items(
    resource_owner, approver, erins_contributor, tree
):
    bea = make_user("bea")
    recent, active_recent = new_holder("recent", scope=tree["sub"], kind=AssignmentKind.ACTIVE)
    recent.last_login = T0 - DAY
    recent.save()
    own = assign(approver, CONTRIBUTOR, scope=tree["sub"], permanent=True)  # not Alex's to decide
    review = olivias_review(resource_owner, tree, [approver, bea])
    instance = latest_instance(review)
    done = decide(approver, instance, Decision.DENY, filters={"recommendation": "deny"})
    decided = items_of(instance).exclude(decision=Decision.NOT_REVIEWED)
    assert done == 1
    assert {i.assignment_id for i in decided} == {erins_contributor.pk}
    assert item_for(instance, own).decision == Decision.NOT_REVIEWED
    assert item_for(instance, active_recent).decision == Decision.NOT_REVIEWED


def test_accepting_recommendations_takes_each_undecided_items_recommendation(
    resource_owner, approver, erins_contributor, tree
):
    recent, approve_me = new_holder("recent", scope=tree["sub"], kind=AssignmentKind.ACTIVE)
    recent.last_login = T0 - DAY
    recent.save()
    _, decided_before = new_holder("away", scope=tree["sub"], kind=AssignmentKind.ACTIVE)
    review = olivias_review(resource_owner, tree, [approver])
    instance = latest_instance(review)
    kept = item_for(instance, decided_before)
    decide(approver, instance, Decision.APPROVE, [kept], reason="On leave, back in May")
    taken = services.items_accept_recommendations(actor=approver, instance=instance)
    assert taken == 2
    assert item_for(instance, approve_me).decision == Decision.APPROVE
    assert item_for(instance, erins_contributor).decision == Decision.DENY
    kept.refresh_from_db()
    assert (kept.decision, kept.reason) == (Decision.APPROVE, "On leave, back in May")


def test_every_decision_is_audited_one_event_per_item(
    resource_owner, approver, erins_contributor, tree
):
    new_holder("fred", scope=tree["sub"])
    new_holder("gus", scope=tree["rg"])
    review = olivias_review(resource_owner, tree, [approver])
    instance = latest_instance(review)
    assert decide(approver, instance, Decision.DENY, filters={}, reason="Team disbanded") == 3
    decided = events("pim.review.decided")
    assert decided.count() == 3
    assert {e.principal for e in decided} == {"Erin Eligible", "Fred", "Gus"}
    assert {(e.actor, e.target_id, e.message) for e in decided} == {
        (approver, str(instance.pk), "Team disbanded")
    }
    assert {e.after["decision"] for e in decided} == {Decision.DENY}
    assert {e.before["decision"] for e in decided} == {Decision.NOT_REVIEWED}


# --- Scale ---------------------------------------------------------------------------------------
# Runs on SQLite and, with DATABASE_URL, on PostgreSQL (no marker skips it on either).


def bulk_holders(prefix: str, count: int, scope) -> list[int]:
    """`count` users (no e-mail, so no mail is rendered) eligible for Contributor at scope."""
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"{prefix}{n:05}", display_name=f"{prefix} {n:05}")
        for n in range(count)
    )
    contributor = role(CONTRIBUTOR)
    made = Assignment.objects.bulk_create(
        Assignment(
            principal_user=user,
            role=contributor,
            scope=scope,
            kind=AssignmentKind.ELIGIBLE,
            start=T0 - DAY,
            end=None,
            start_processed_at=T0 - DAY,
        )
        for user in users
    )
    return [a.pk for a in made]


def counted(call) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as captured:
        result = call()
    return len(captured.captured_queries), result


def insert_statements(model, rows: int, batch: int, chunk: int = 1000) -> int:
    """The INSERTs `bulk_create` makes for `rows` rows written `chunk` at a time, `batch` rows
    a statement, or fewer when the database takes fewer parameters (SQLite: 999 a statement,
    so about 40 review items; PostgreSQL: no such limit)."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    statements = 0
    for at in range(0, rows, chunk):
        rows_here = min(chunk, rows - at)
        per_statement = min(batch, connection.ops.bulk_batch_size(fields, [None] * rows_here))
        statements += ceil(rows_here / per_statement)
    return statements


def bulk_inserts(size: int) -> dict[str, int]:
    """The multi-row INSERTs of each step: one item, one decision event, one removal request and
    its event per assignment (the services' batches: items 1,000, audit 500, requests 1,000)."""
    audit = insert_statements(AuditEvent, size, audit_log.INSERT_BATCH)
    return {
        "snapshot": insert_statements(ReviewItem, size, occurrences.INSERT_BATCH, chunk=size),
        "decide": audit,
        "apply": insert_statements(RoleRequest, size, 1000) + audit,
    }


def review_lifecycle_queries(owner, reviewer, scope, size, clock) -> dict:
    """Create (snapshot), deny all that match, end and apply: the queries of each step."""
    assignment_ids = bulk_holders(f"s{size}-", size, scope)
    clock.move_to(T0)
    queries = {}
    queries["snapshot"], review = counted(
        lambda: create_review(
            owner, scope=scope, reviewer_users=[reviewer], auto_apply=True, duration_days=3
        )
    )
    instance = latest_instance(review)
    assert items_of(instance).count() == size
    queries["decide"], decided = counted(
        lambda: services.items_decide(
            actor=reviewer, instance=instance, decision=Decision.DENY, reason="x", filters={}
        )
    )
    assert decided == size
    clock.move_to(instance.end)
    queries["apply"], completed = counted(lambda: services.instance_complete_due(instance.pk))
    assert completed
    assert not Assignment.objects.in_force(instance.end).filter(pk__in=assignment_ids).exists()
    return queries


# One more chunk of 1,000 rows costs a step at most this many statements besides its INSERTs.
# Measured on applying, the costliest: 9 (the chunk's SELECT and UPDATE of items, the lock of
# the assignments, the read of their activations, their UPDATE, and two savepoints with their
# releases: the chunk's transaction and the removal's); one spare, say for a lock on the role.
PER_CHUNK = 10


def test_a_review_of_thousands_takes_no_more_queries_than_one_of_hundreds_but_per_chunk(
    tree, approver, clock
):
    """200 vs 2,000 items, each step: at most the extra multi-row INSERT batches (a database
    limit on SQLite, the services' batches on PostgreSQL) plus PER_CHUNK for the one extra
    chunk of 1,000 rows; nothing per item."""
    owner = make_user("max")
    assign(owner, "Owner", scope=tree["mg"], permanent=True)
    small = review_lifecycle_queries(owner, approver, tree["sub"], 200, clock)
    large = review_lifecycle_queries(owner, approver, tree["other_sub"], 2000, clock)
    extra_inserts = {step: bulk_inserts(2000)[step] - bulk_inserts(200)[step] for step in small}
    for step in ("snapshot", "decide", "apply"):
        bound = small[step] + extra_inserts[step] + PER_CHUNK
        assert large[step] <= bound, (step, small, large, extra_inserts)


# --- The counts kept on the instance ---------------------------------------------------------


def kept_counts_are_true(instance: ReviewInstance) -> list:
    from reviews.queries import count_items

    instance.refresh_from_db()
    assert instance.item_counts == count_items(instance.pk)
    return instance.item_counts


def test_the_counts_kept_on_an_instance_follow_every_change_of_its_items(
    resource_owner, approver, tree, clock
):
    holders = [new_holder(f"holder{n}", scope=tree["sub"]) for n in range(4)]
    review = create_review(
        resource_owner,
        scope=tree["sub"],
        reviewer_users=[approver],
        auto_apply=True,
        default_decision=DefaultDecision.APPROVE,
    )
    instance = latest_instance(review)
    counts = kept_counts_are_true(instance)
    assert sum(row[-1] for row in counts) == len(holders)
    assert {row[2] for row in counts} == {Decision.NOT_REVIEWED}

    first, second, *_ = items_of(instance).order_by("pk")
    services.items_decide(
        actor=approver, instance=instance, decision=Decision.DENY, item_ids=[first.pk]
    )
    kept_counts_are_true(instance)
    services.items_decide(
        actor=approver,
        instance=instance,
        decision=Decision.APPROVE,
        item_ids=[second.pk],
        reason="Still needed",
    )
    kept_counts_are_true(instance)
    services.items_accept_recommendations(actor=approver, instance=instance)
    kept_counts_are_true(instance)

    clock.move_to(instance.end)
    assert services.instance_complete_due(instance.pk)  # defaults, then applied
    counts = kept_counts_are_true(instance)
    assert Decision.NOT_REVIEWED not in {row[2] for row in counts}
    assert "" not in {row[3] for row in counts}, "what was applied was not counted"


def test_the_reviewer_inbox_counts_exactly_the_items_each_reviewer_decides(
    resource_owner, approver, tree
):
    """Review access counts from the kept counts less the reviewer's own items: the same
    totals and decided counts as decidable_items, for a fallback reviewer who is also a
    principal, a manager, a principal of a self-review, and someone who reviews nothing."""
    from reviews.queries import reviewer_inbox

    mia = make_user("mia", display_name="Mia Manager")
    holders = [new_holder(f"holder{n}", scope=tree["sub"])[0] for n in range(4)]
    for holder in holders[:2]:
        holder.manager = mia
        holder.save()
    assign(approver, CONTRIBUTOR, scope=tree["sub"], permanent=True)  # a reviewer holds it too
    managers = olivias_review(resource_owner, tree, [approver], reviewer_type=ReviewerType.MANAGER)
    selected = create_review(
        resource_owner, scope=tree["sub"], name="Selected", reviewer_users=[approver, mia]
    )
    own = create_review(
        resource_owner, scope=tree["sub"], name="Self", reviewer_type=ReviewerType.SELF
    )
    decide(approver, latest_instance(selected), items=[items_of(latest_instance(selected))[0]])
    decide(mia, latest_instance(managers), Decision.APPROVE, items=[], filters={})
    for who in (approver, mia, holders[0], holders[3], make_user("nobody")):
        found = {row["instance"].pk: (row["total"], row["decided"]) for row in reviewer_inbox(who)}
        expected = {}
        for review in (managers, selected, own):
            instance = latest_instance(review)
            theirs = review_authz.decidable_items(who, instance)
            if theirs.exists():
                expected[instance.pk] = (theirs.count(), theirs.decided().count())
        assert found == expected, who
    assert reviewer_inbox(approver), "the fallback reviewer has items to decide"
