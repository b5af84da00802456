"""An access review in the browser: an administrator creates a manager review of Security
Reader, the manager denies one of two assignments with a reason, the review ends and its
results are applied, and the denied assignment is gone from the role's members."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from assignments.models import Assignment, AssignmentKind
from pim_portal import timekeeper
from reviews import services
from reviews.models import (
    AccessReview,
    ApplyResult,
    AssignmentTypes,
    Decision,
    ReviewerType,
    ReviewInstance,
)
from tests.factories import assign, make_user, role

pytestmark = pytest.mark.browser

SECURITY_READER = "Security Reader"
REVIEW_NAME = "Security Readers, spring check"
REASON = "Left the security team in March"


def sign_out(page) -> None:
    page.context.clear_cookies()


def browser_errors(page) -> list[str]:
    """Script errors and console errors of the pages (the favicon the portal lacks aside)."""
    errors: list[str] = []

    def console(message) -> None:
        if message.type == "error" and "favicon.ico" not in message.location.get("url", ""):
            errors.append(f"{page.url}: {message.text}")

    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    page.on("console", console)
    return errors


def field(page, label: str):
    """The form field labelled `label`, exactly (a required one's label ends with an asterisk;
    a regular expression is matched against the label's text as written, spaces included)."""
    return page.get_by_label(re.compile(rf"^\s*{re.escape(label)}\*?\s*$"))


@pytest.fixture
def manager(db):
    return make_user("mona", display_name="Mona Manager")


@pytest.fixture
def reports(manager):
    """Uma and Ulf, both reporting to Mona, each eligible for Security Reader in the directory."""
    people = []
    for username, name in (("uma", "Uma Analyst"), ("ulf", "Ulf Analyst")):
        user = make_user(username, display_name=name, manager=manager)
        assign(user, SECURITY_READER, kind=AssignmentKind.ELIGIBLE, permanent=True)
        people.append(user)
    return people


def end_now(instance: ReviewInstance) -> None:
    """The review's end comes: moved into the past (the live server's thread keeps the real
    clock), then the time engine's "review ends" runs here, as a worker would run it."""
    now = timezone.now()
    ReviewInstance.objects.filter(pk=instance.pk).update(
        start=now - timedelta(days=3), end=now - timedelta(seconds=1)
    )
    assert timekeeper.run_due("review ends") == 1


def create_manager_review(page, approver) -> None:
    """Review access › New access review, filled in as an administrator would."""
    page.get_by_role("link", name="Review access").first.click()
    page.wait_for_url("**/reviews/")
    page.get_by_role("link", name="New access review").click()
    page.wait_for_url("**/reviews/new/")
    field(page, "Name").fill(REVIEW_NAME)
    page.get_by_label("Description").fill("Does everyone still need to read security alerts?")
    page.get_by_label("Security Reader (directory role)").check()
    # The directory is offered to a Privileged Role Administrator, and chosen already.
    expect(page.locator("select[name=scope] option:checked")).to_contain_text("The directory")
    page.get_by_label("Eligible assignments").check()
    page.get_by_label("Manager of each principal").check()
    # The page's script shows the fallback reviewers for a manager review, not the reviewers.
    fallback = page.locator("#div_id_fallback_reviewers")
    expect(fallback).to_be_visible()
    expect(page.locator("#div_id_reviewers")).to_be_hidden()
    fallback.locator("[data-principal-input]").fill("alex")
    fallback.locator(f"[data-principal-matches] [data-id='user:{approver.pk}']").click()
    expect(fallback.locator("[data-principal-chip]")).to_have_text(["Alex Approver (alex)"])
    page.get_by_label("Now").check()
    expect(page.locator("#div_id_start")).to_be_hidden()
    field(page, "Duration (days)").fill("3")
    field(page, "Recurrence").select_option(label="One time")
    expect(page.locator(".review-recurrence-end")).to_be_hidden()
    page.get_by_label("Auto-apply results").check()
    page.get_by_role("button", name="Create review").click()


def test_manager_denies_one_assignment_and_it_is_gone_when_the_review_ends(
    page, login, pra, approver, manager, reports
):
    uma, ulf = reports
    errors = browser_errors(page)

    # Pat, a Privileged Role Administrator, creates the review; it starts at once.
    login(page, pra.username)
    create_manager_review(page, approver)
    page.wait_for_url(re.compile(r"/reviews/\d+/$"))
    review = AccessReview.objects.get(name=REVIEW_NAME)
    assert page.url.endswith(f"/reviews/{review.pk}/")
    expect(
        page.get_by_role("alert").filter(has_text="its first occurrence has started")
    ).to_have_count(1)
    expect(page.locator("h1")).to_contain_text(REVIEW_NAME)
    settings = page.locator("#review-settings")
    expect(settings).to_contain_text(SECURITY_READER)
    expect(settings).to_contain_text("Manager of each principal")
    expect(settings).to_contain_text("3 days")
    expect(settings).to_contain_text("One time")
    expect(page.locator("#review-reviewers")).to_contain_text("Alex Approver")
    instance = ReviewInstance.objects.get(review=review)
    occurrence = page.locator(f"#review-instances tr[data-instance-id='{instance.pk}']")
    expect(occurrence).to_contain_text("In progress")
    expect(occurrence).to_contain_text("0 of 2 decided")

    # Mona, the manager of both, finds the review waiting for her and denies Uma's assignment.
    sign_out(page)
    login(page, manager.username)
    page.get_by_role("link", name="Review access").first.click()
    page.wait_for_url("**/reviews/")
    waiting = page.locator(f"#inbox [data-instance-id='{instance.pk}']")
    expect(waiting).to_contain_text(REVIEW_NAME)
    expect(waiting).to_contain_text("0 of 2 decided")
    waiting.click()
    page.wait_for_url(f"**/reviews/instances/{instance.pk}/")
    expect(page.locator("#instance-status")).to_have_text("In progress")
    items = page.locator("#review-items tbody tr")
    expect(items).to_have_count(2)
    umas = items.filter(has_text="Uma Analyst")
    ulfs = items.filter(has_text="Ulf Analyst")
    expect(umas).to_contain_text(SECURITY_READER)
    umas.locator("input[name=item]").check()
    page.get_by_label("Reason").fill(REASON)
    page.locator("#bulk-decision").get_by_role("button", name="Deny").click()
    # The page comes back to itself (same URL), with the message.
    expect(page.get_by_role("alert").filter(has_text="1 decision recorded.")).to_have_count(1)
    expect(umas.locator("td[data-label=Decision]")).to_contain_text("Deny")
    expect(umas.locator("td[data-label=Reason]")).to_have_text(REASON)
    expect(umas.locator("td[data-label='Decided by']")).to_have_text("Mona Manager")
    expect(ulfs.locator("td[data-label=Decision]")).to_contain_text("Not reviewed")
    expect(page.locator("#progress")).to_contain_text("1 of 2 decided")
    assert instance.items.get(principal_user=uma).decision == Decision.DENY

    # The time engine completes it and, auto-apply being on, removes what was denied.
    end_now(instance)

    # Pat sees Uma gone from the role's eligible members, Ulf still there.
    sign_out(page)
    login(page, pra.username)
    page.goto(f"/roles/{role(SECURITY_READER).pk}/")
    page.get_by_role("link", name="Eligible assignments").click()
    page.wait_for_url("**tab=eligible**")
    members = page.locator("table tbody")
    expect(members).to_contain_text("Ulf Analyst")
    expect(members).not_to_contain_text("Uma Analyst")

    # The results page shows Uma's assignment removed and Ulf's kept.
    page.goto(f"/reviews/instances/{instance.pk}/results/")
    expect(page.locator("#instance-status")).to_have_text("Applied")
    expect(page.locator("#results-state")).to_contain_text("Results applied at")
    results = page.locator("#review-results tbody tr")
    umas_result = results.filter(has_text="Uma Analyst")
    expect(umas_result.locator("td[data-label=Decision]")).to_contain_text("Deny")
    expect(umas_result.locator("td[data-label=Reviewer]")).to_have_text("Mona Manager")
    expect(umas_result.locator("td[data-label=Reason]")).to_have_text(REASON)
    expect(umas_result.locator("td[data-label=Applied]")).to_contain_text("Removed")
    ulfs_result = results.filter(has_text="Ulf Analyst")
    expect(ulfs_result.locator("td[data-label=Decision]")).to_contain_text("Not reviewed")
    expect(ulfs_result.locator("td[data-label=Applied]")).to_contain_text("Kept")

    in_force = Assignment.objects.in_force().filter(role__name=SECURITY_READER)
    assert set(in_force.values_list("principal_user", flat=True)) == {ulf.pk}
    assert instance.items.get(principal_user=uma).apply_result == ApplyResult.REMOVED
    assert errors == []


def test_administrator_applies_the_results_by_hand_from_the_results_page(
    page, login, pra, approver, manager, reports
):
    uma, ulf = reports
    errors = browser_errors(page)
    review = services.review_create(
        actor=pra,
        name=REVIEW_NAME,
        roles=[role(SECURITY_READER)],
        assignment_types=AssignmentTypes.ELIGIBLE,
        reviewer_type=ReviewerType.MANAGER,
        reviewer_users=[approver],
        duration_days=3,
        auto_apply=False,
    )
    instance = review.instances.get()
    services.items_decide(
        actor=manager,
        instance=instance,
        decision=Decision.DENY,
        reason=REASON,
        item_ids=[instance.items.get(principal_user=uma).pk],
    )
    end_now(instance)

    login(page, pra.username)
    page.goto(f"/reviews/{review.pk}/")
    occurrence = page.locator(f"#review-instances tr[data-instance-id='{instance.pk}']")
    expect(occurrence).to_contain_text("Completed")
    occurrence.get_by_role("link", name="Results").click()
    page.wait_for_url(f"**/reviews/instances/{instance.pk}/results/")
    expect(page.locator("#results-state")).to_contain_text("its results have not been applied")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Apply results").click()
    expect(
        page.get_by_role("alert").filter(has_text="Results applied: 1 removed, 1 kept")
    ).to_have_count(1)
    expect(page.locator("#instance-status")).to_have_text("Applied")
    expect(page.get_by_role("button", name="Apply results")).to_have_count(0)
    results = page.locator("#review-results tbody tr")
    expect(
        results.filter(has_text="Uma Analyst").locator("td[data-label=Applied]")
    ).to_contain_text("Removed")
    expect(
        results.filter(has_text="Ulf Analyst").locator("td[data-label=Applied]")
    ).to_contain_text("Kept")

    page.goto(f"/roles/{role(SECURITY_READER).pk}/?tab=eligible")
    members = page.locator("table tbody")
    expect(members).to_contain_text("Ulf Analyst")
    expect(members).not_to_contain_text("Uma Analyst")
    in_force = Assignment.objects.in_force().filter(role__name=SECURITY_READER)
    assert set(in_force.values_list("principal_user", flat=True)) == {ulf.pk}
    assert errors == []
