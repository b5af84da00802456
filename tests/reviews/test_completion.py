"""The end of an occurrence: defaults for undecided items, completing once, and applying the
results (by itself or by an administrator) through the assignment services."""

import threading
from datetime import UTC, datetime

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction

from assignments import services as assignment_services
from assignments.models import Assignment, AssignmentKind
from pim_portal.actor import Actor
from reviews import services
from reviews.models import (
    ApplyResult,
    Decision,
    DefaultDecision,
    GroupHandling,
    InstanceStatus,
    ReviewInstance,
)
from tests.factories import assign, make_group, make_user
from tests.reviews.conftest import (
    CONTRIBUTOR,
    DAY,
    GLOBAL_ADMIN,
    HOUR,
    SECURITY_READER,
    activate_from,
    create_review,
    events,
    in_force_ids,
    item_for,
    items_of,
    latest_instance,
    mails_to,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
END = T0 + 3 * DAY

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def people(eligible_user, tree):
    """Erin (eligible, never activated: recommended denial), Fred (active, signed in yesterday:
    recommended approval) and Gus (active), all Contributors on Production; Jay, a Reader
    there, is outside the review."""
    fred = make_user("fred", display_name="Fred", last_login=T0 - DAY)
    gus = make_user("gus", display_name="Gus", last_login=T0 - DAY)
    jay = make_user("jay")
    return {
        "erin": Assignment.objects.get(principal_user=eligible_user, role__name=CONTRIBUTOR),
        "fred": assign(fred, CONTRIBUTOR, scope=tree["sub"], permanent=True),
        "gus": assign(gus, CONTRIBUTOR, scope=tree["rg"], permanent=True),
        "jay": assign(jay, "Reader", scope=tree["sub"], permanent=True),
    }


def start_review(resource_owner, approver, tree, **settings) -> ReviewInstance:
    """Olivia's three-day review of Contributor on Production, Alex reviewing; its instance."""
    settings.setdefault("duration_days", 3)
    review = create_review(resource_owner, scope=tree["sub"], reviewer_users=[approver], **settings)
    return latest_instance(review)


def decide(actor, instance, assignment, decision, reason="Reviewed with the team lead"):
    return services.items_decide(
        actor=actor,
        instance=instance,
        decision=decision,
        reason=reason,
        item_ids=[item_for(instance, assignment).pk],
    )


def finish(instance, clock) -> bool:
    """The end comes and the worker completes the instance (and applies, with auto-apply)."""
    clock.move_to(instance.end)
    return services.instance_complete_due(instance.pk)


def fresh(instance) -> ReviewInstance:
    return ReviewInstance.objects.get(pk=instance.pk)


# --- Defaults for undecided items ----------------------------------------------------------------


def test_no_change_leaves_undecided_items_not_reviewed(
    resource_owner, approver, people, tree, clock
):
    instance = start_review(
        resource_owner, approver, tree, default_decision=DefaultDecision.NO_CHANGE
    )
    decide(approver, instance, people["gus"], Decision.DENY)
    finish(instance, clock)
    erin = item_for(instance, people["erin"])
    assert (erin.decision, erin.defaulted) == (Decision.NOT_REVIEWED, False)
    assert item_for(instance, people["gus"]).decision == Decision.DENY


def test_remove_access_denies_undecided_items(resource_owner, approver, people, tree, clock):
    instance = start_review(resource_owner, approver, tree, default_decision=DefaultDecision.REMOVE)
    decide(approver, instance, people["fred"], Decision.APPROVE)
    finish(instance, clock)
    erin = item_for(instance, people["erin"])
    assert (erin.decision, erin.defaulted, erin.decided_at) == (Decision.DENY, True, END)
    assert erin.reason.startswith("No reviewer responded")
    fred = item_for(instance, people["fred"])
    assert (fred.decision, fred.defaulted) == (Decision.APPROVE, False)


def test_approve_access_approves_undecided_items(resource_owner, approver, people, tree, clock):
    instance = start_review(
        resource_owner, approver, tree, default_decision=DefaultDecision.APPROVE
    )
    decide(approver, instance, people["gus"], Decision.DENY)
    finish(instance, clock)
    erin = item_for(instance, people["erin"])
    assert (erin.decision, erin.defaulted) == (Decision.APPROVE, True)
    assert item_for(instance, people["gus"]).decision == Decision.DENY


def test_take_recommendations_gives_undecided_items_their_recommendation(
    resource_owner, approver, people, tree, clock
):
    instance = start_review(
        resource_owner, approver, tree, default_decision=DefaultDecision.RECOMMENDATION
    )
    decide(approver, instance, people["gus"], Decision.DENY)
    finish(instance, clock)
    assert item_for(instance, people["erin"]).decision == Decision.DENY  # never activated
    assert item_for(instance, people["fred"]).decision == Decision.APPROVE  # signed in
    assert {i.defaulted for i in items_of(instance).exclude(assignment=people["gus"])} == {True}
    gus = item_for(instance, people["gus"])
    assert (gus.decision, gus.defaulted) == (Decision.DENY, False)


def test_completing_is_idempotent(resource_owner, approver, people, tree, clock):
    instance = start_review(resource_owner, approver, tree)
    assert finish(instance, clock) is True
    assert services.instance_complete_due(instance.pk) is False
    assert (fresh(instance).status, fresh(instance).completed_at) == (
        InstanceStatus.COMPLETED,
        END,
    )
    assert events("pim.review.completed").count() == 1


# --- Auto-apply ----------------------------------------------------------------------------------


@pytest.fixture
def denied(resource_owner, approver, people, tree):
    """An auto-applied review in which Alex denies Erin and Gus and approves Fred."""
    instance = start_review(resource_owner, approver, tree, auto_apply=True)
    decide(approver, instance, people["erin"], Decision.DENY, "Moved to sales")
    decide(approver, instance, people["gus"], Decision.DENY, "Left the company")
    decide(approver, instance, people["fred"], Decision.APPROVE)
    return instance


def test_applying_removes_exactly_the_denied_assignments_and_nothing_else(denied, people, clock):
    before = in_force_ids(END)
    finish(denied, clock)
    after = in_force_ids(END)
    assert before - after == {people["erin"].pk, people["gus"].pk}
    assert after == before - {people["erin"].pk, people["gus"].pk}


def test_applying_ends_the_activations_of_a_removed_eligible_assignment(
    resource_owner, approver, people, tree, clock
):
    instance = start_review(resource_owner, approver, tree, auto_apply=True)
    decide(approver, instance, people["erin"], Decision.DENY)
    activation = activate_from(people["erin"], start=END - HOUR, hours=8)
    finish(instance, clock)
    activation.refresh_from_db()
    assert activation.end == END
    assert activation.pk not in in_force_ids(END)


def test_applying_moves_the_instance_from_completed_to_applied(denied, people, clock):
    finish(denied, clock)
    assert (fresh(denied).status, fresh(denied).applied_at) == (InstanceStatus.APPLIED, END)
    assert [e.action for e in events("pim.review.completed") | events("pim.review.applied")] == [
        "pim.review.completed",
        "pim.review.applied",
    ]
    results = {i.assignment_id: i.apply_result for i in items_of(denied)}
    assert results == {
        people["erin"].pk: ApplyResult.REMOVED,
        people["gus"].pk: ApplyResult.REMOVED,
        people["fred"].pk: ApplyResult.KEPT,
    }


def test_applying_is_audited_as_the_system_acting_for_the_review(denied, people, clock):
    finish(denied, clock)
    system = f"system (access review #{denied.review_id})"
    applied = events("pim.review.applied").get()
    assert (applied.actor, applied.actor_name) == (None, system)
    assert (applied.after["removed"], applied.after["kept"]) == (2, 1)
    removed = events("pim.assignment.removed")
    assert {(e.target_id, e.actor_name) for e in removed} == {
        (str(people["erin"].pk), system),
        (str(people["gus"].pk), system),
    }


def test_the_principal_whose_access_was_removed_is_mailed(
    denied, people, eligible_user, clock, run
):
    run(finish, denied, clock)
    assert len(mails_to(eligible_user, "removed")) == 1
    assert mails_to(people["fred"].principal_user, "removed") == []


# --- Applying by hand ----------------------------------------------------------------------------


@pytest.fixture
def by_hand(resource_owner, approver, people, tree):
    """A review without auto-apply in which Alex denies Erin."""
    instance = start_review(resource_owner, approver, tree, auto_apply=False)
    decide(approver, instance, people["erin"], Decision.DENY)
    return instance


def test_without_auto_apply_the_results_wait_for_an_administrator(
    by_hand, resource_owner, people, clock
):
    finish(by_hand, clock)
    assert fresh(by_hand).status == InstanceStatus.COMPLETED
    assert people["erin"].pk in in_force_ids(END)
    clock.move_to(END + DAY)
    outcome = services.instance_apply(actor=resource_owner, instance=by_hand)
    assert (outcome.removed, outcome.kept, outcome.failed) == (1, 2, 0)
    assert fresh(by_hand).status == InstanceStatus.APPLIED
    assert people["erin"].pk not in in_force_ids(END + DAY)
    assert events("pim.review.applied").get().actor == resource_owner


def test_a_non_manager_may_not_apply_the_results(by_hand, approver, people, clock):
    finish(by_hand, clock)
    with pytest.raises(PermissionDenied, match=f"manage access review {by_hand.review_id}"):
        services.instance_apply(actor=approver, instance=by_hand)
    assert events("pim.security.forbidden", actor=approver).count() == 1
    assert fresh(by_hand).status == InstanceStatus.COMPLETED
    assert people["erin"].pk in in_force_ids(END)


def test_applying_before_the_end_is_refused(by_hand, resource_owner, people):
    with pytest.raises(ValidationError, match="in progress until"):
        services.instance_apply(actor=resource_owner, instance=by_hand)
    assert fresh(by_hand).status == InstanceStatus.IN_PROGRESS
    assert people["erin"].pk in in_force_ids(T0)


def test_applying_twice_is_refused(by_hand, resource_owner, clock):
    finish(by_hand, clock)
    services.instance_apply(actor=resource_owner, instance=by_hand)
    with pytest.raises(ValidationError, match="already been applied"):
        services.instance_apply(actor=resource_owner, instance=by_hand)
    assert events("pim.review.applied").count() == 1


def test_applying_by_hand_completes_first_an_ended_instance_the_worker_has_not_seen(
    by_hand, resource_owner, people, clock
):
    clock.move_to(END + HOUR)
    outcome = services.instance_apply(actor=resource_owner, instance=by_hand)
    assert outcome.removed == 1
    assert [e.action for e in events("pim.review.completed") | events("pim.review.applied")] == [
        "pim.review.completed",
        "pim.review.applied",
    ]
    assert fresh(by_hand).status == InstanceStatus.APPLIED


def test_a_denied_assignment_that_ended_meanwhile_is_recorded_as_already_ended(
    by_hand, resource_owner, people, clock
):
    Assignment.objects.filter(pk=people["erin"].pk).update(end=END - HOUR)
    clock.move_to(END)
    outcome = services.instance_apply(actor=resource_owner, instance=by_hand)
    assert (outcome.removed, outcome.already_ended) == (0, 1)
    assert item_for(by_hand, people["erin"]).apply_result == ApplyResult.ALREADY_ENDED
    assert not events("pim.assignment.removed").exists()


# --- The last Global Administrator ---------------------------------------------------------------


def directory_review(pra, approver, roles):
    review = create_review(
        pra, roles=roles, reviewer_users=[approver], duration_days=3, auto_apply=False
    )
    return latest_instance(review)


def test_the_last_active_global_administrator_is_kept_while_the_other_denials_are_applied(
    pra, approver, global_admin, security_reader, clock
):
    instance = directory_review(pra, approver, [GLOBAL_ADMIN, SECURITY_READER])
    services.items_decide(
        actor=approver, instance=instance, decision=Decision.DENY, reason="x", filters={}
    )
    gina = Assignment.objects.get(principal_user=global_admin)
    sam = Assignment.objects.get(principal_user=security_reader)
    clock.move_to(END)
    outcome = services.instance_apply(actor=pra, instance=instance)
    assert (outcome.removed, outcome.failed) == (1, 1)
    kept = item_for(instance, gina)
    assert kept.apply_result == ApplyResult.FAILED
    assert "last active Global Administrator" in kept.apply_note
    assert item_for(instance, sam).apply_result == ApplyResult.REMOVED
    assert in_force_ids(END) >= {gina.pk} and sam.pk not in in_force_ids(END)


def test_of_several_denied_global_administrators_only_the_last_one_is_kept(
    pra, approver, global_admin, clock
):
    """As removing them one by one would: each removal leaves another, until the last."""
    for name in ("greg", "gail"):
        assign(make_user(name), GLOBAL_ADMIN, permanent=True)
    instance = directory_review(pra, approver, [GLOBAL_ADMIN])
    services.items_decide(
        actor=approver, instance=instance, decision=Decision.DENY, reason="x", filters={}
    )
    clock.move_to(END)
    outcome = services.instance_apply(actor=pra, instance=instance)
    assert (outcome.removed, outcome.failed) == (2, 1)
    left = Assignment.objects.in_force(END).filter(role__name=GLOBAL_ADMIN)
    assert left.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_reviews_removing_the_last_two_global_administrators_at_once_keep_one(global_admin):
    """Review A's removal of Gina holds its transaction open while review B removes Greg: B
    must wait for A and then keep Greg, as `assignment_remove` does (it locks the role)."""
    greg = assign(make_user("greg"), GLOBAL_ADMIN, permanent=True)
    gina = Assignment.objects.get(principal_user=global_admin, role__name=GLOBAL_ADMIN)
    first_removed, second_done = threading.Event(), threading.Event()
    outcomes = {}

    def review_a():
        try:
            with transaction.atomic():
                outcomes["a"] = assignment_services.assignments_remove_many(
                    actor=Actor.system("access review #1"), assignment_ids=[gina.pk]
                )
                first_removed.set()
                second_done.wait(timeout=3)  # B would block here on a lock, until A commits
        finally:
            connection.close()

    def review_b():
        try:
            assert first_removed.wait(timeout=30)
            outcomes["b"] = assignment_services.assignments_remove_many(
                actor=Actor.system("access review #2"), assignment_ids=[greg.pk]
            )
            second_done.set()
        finally:
            connection.close()

    threads = [threading.Thread(target=review_a), threading.Thread(target=review_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert set(outcomes) == {"a", "b"}
    assert outcomes["a"].removed == [gina.pk]
    assert greg.pk in outcomes["b"].refused
    assert Assignment.objects.in_force().filter(role__name=GLOBAL_ADMIN).count() == 1


# --- Groups reviewed member by member ------------------------------------------------------------


@pytest.fixture
def web_team(tree):
    """Hana and Ian are members of "Web team", eligible for Contributor on Production; Hana is
    also a member of "Ops" and has activated Contributor through Web team."""
    hana, ian = make_user("hana", display_name="Hana"), make_user("ian", display_name="Ian")
    group = make_group("Web team", hana, ian)
    ops = make_group("Ops", hana)
    eligible = assign(
        group, CONTRIBUTOR, scope=tree["sub"], kind=AssignmentKind.ELIGIBLE, permanent=True
    )
    return {"group": group, "ops": ops, "hana": hana, "ian": ian, "eligible": eligible}


@pytest.fixture
def hana_denied(resource_owner, approver, web_team, tree):
    instance = start_review(
        resource_owner, approver, tree, auto_apply=True, group_handling=GroupHandling.MEMBERS
    )
    hana_item = item_for(instance, web_team["eligible"], web_team["hana"])
    ian_item = item_for(instance, web_team["eligible"], web_team["ian"])
    for item, decision in ((hana_item, Decision.DENY), (ian_item, Decision.APPROVE)):
        services.items_decide(
            actor=approver, instance=instance, decision=decision, reason="x", item_ids=[item.pk]
        )
    return instance


def test_a_denied_member_of_a_group_reviewed_member_by_member_leaves_that_group_only(
    hana_denied, web_team, clock
):
    finish(hana_denied, clock)
    assert list(web_team["group"].user_set.all()) == [web_team["ian"]]
    assert list(web_team["hana"].groups.all()) == [web_team["ops"]]
    assert web_team["eligible"].pk in in_force_ids(END)  # the group keeps its eligibility
    item = item_for(hana_denied, web_team["eligible"], web_team["hana"])
    assert item.apply_result == ApplyResult.REMOVED


def test_the_activation_a_denied_member_made_through_the_group_ends(hana_denied, web_team, clock):
    activation = activate_from(
        web_team["eligible"], start=END - HOUR, hours=8, user=web_team["hana"]
    )
    finish(hana_denied, clock)
    activation.refresh_from_db()
    assert activation.end == END


def test_the_last_global_administrator_holding_it_through_a_group_stays_in_the_group(
    pra, approver, clock
):
    """Gina is the only Global Administrator, through "Admins": leaving it would leave none."""
    gina = make_user("gina", display_name="Gina Global")
    admins = make_group("Admins", gina)
    held = assign(admins, GLOBAL_ADMIN, permanent=True)
    review = create_review(
        pra,
        roles=[GLOBAL_ADMIN],
        reviewer_users=[approver],
        duration_days=3,
        group_handling=GroupHandling.MEMBERS,
    )
    instance = latest_instance(review)
    services.items_decide(
        actor=approver, instance=instance, decision=Decision.DENY, reason="x", filters={}
    )
    clock.move_to(END)
    outcome = services.instance_apply(actor=pra, instance=instance)
    assert list(admins.user_set.all()) == [gina]
    assert outcome.failed == 1
    assert item_for(instance, held, gina).apply_result == ApplyResult.FAILED


def test_a_resource_review_does_not_take_a_member_out_of_a_group_holding_a_directory_role(
    resource_owner, approver, global_admin, tree, clock
):
    """Olivia manages Production only: her review of Contributor there must not cost Hana the
    Global Administrator role she holds through the same group."""
    hana = make_user("hana", display_name="Hana")
    admins = make_group("Admins", hana)
    assign(admins, GLOBAL_ADMIN, permanent=True)
    contributor = assign(
        admins, CONTRIBUTOR, scope=tree["sub"], kind=AssignmentKind.ELIGIBLE, permanent=True
    )
    instance = start_review(
        resource_owner, approver, tree, auto_apply=True, group_handling=GroupHandling.MEMBERS
    )
    services.items_decide(
        actor=approver, instance=instance, decision=Decision.DENY, reason="x", filters={}
    )
    finish(instance, clock)
    assert list(hana.groups.all()) == [admins]
    assert item_for(instance, contributor, hana).apply_result == ApplyResult.FAILED


# --- Stopping, and the completion mail -----------------------------------------------------------


def test_stopping_a_review_ends_its_instance_now_and_completes_it(
    resource_owner, approver, people, tree, clock
):
    instance = start_review(resource_owner, approver, tree, duration_days=14)
    clock.move_to(T0 + DAY)
    review = services.review_stop(actor=resource_owner, review=instance.review)
    stopped = fresh(instance)
    assert (stopped.end, stopped.status, stopped.completed_at) == (
        T0 + DAY,
        InstanceStatus.COMPLETED,
        T0 + DAY,
    )
    assert (review.stopped_at, review.next_start) == (T0 + DAY, None)
    assert events("pim.review.stopped").get().actor == resource_owner


def test_stopping_an_auto_applied_review_applies_its_results(denied, resource_owner, people, clock):
    clock.move_to(T0 + DAY)
    services.review_stop(actor=resource_owner, review=denied.review)
    assert fresh(denied).status == InstanceStatus.APPLIED
    assert people["erin"].pk not in in_force_ids(T0 + DAY)


def test_the_completion_mail_goes_to_the_people_to_notify_and_the_creator(
    resource_owner, approver, people, tree, clock, run
):
    instance = start_review(
        resource_owner, approver, tree, notify_emails=["ciso@example.com", "Audit@Example.com"]
    )
    run(finish, instance, clock)
    for address in ("ciso@example.com", "audit@example.com", resource_owner.email):
        assert len(mails_to(address, "completed")) == 1, address
    assert mails_to(approver, "completed") == []


def test_applying_by_hand_an_auto_applied_instance_the_worker_had_not_completed_reports_it(
    denied, resource_owner, people, clock
):
    """Completing it first runs its auto-apply: the administrator hears what was applied."""
    clock.move_to(fresh(denied).end)
    outcome = services.instance_apply(actor=resource_owner, instance=denied)
    assert fresh(denied).status == InstanceStatus.APPLIED
    assert (outcome.removed, outcome.kept) == (2, 1)
    assert people["erin"].pk not in in_force_ids(fresh(denied).end)


def test_stopping_a_review_in_the_instant_its_occurrence_starts_ends_it_just_after(
    resource_owner, approver, people, tree, clock
):
    instance = start_review(resource_owner, approver, tree, duration_days=14)
    services.review_stop(actor=resource_owner, review=instance.review)
    stopped = fresh(instance)
    assert stopped.end > stopped.start
    assert stopped.status == InstanceStatus.COMPLETED
