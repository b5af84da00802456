from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from assignments.models import Assignment, AssignmentKind
from tests.factories import role

pytestmark = pytest.mark.browser


def test_administrator_makes_a_user_eligible_for_security_reader(page, login, pra, outsider):
    security_reader = role("Security Reader")
    end = (timezone.now() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")  # pat's zone is UTC

    login(page, pra.username)
    page.goto(f"/roles/{security_reader.pk}/")
    page.get_by_role("link", name="Add assignments").click()
    page.fill("[data-principal-input]", "outs")  # search, then pick from the matches
    page.locator(f"[data-principal-matches] [data-id='user:{outsider.pk}']").click()
    expect(page.locator("[data-principal-chip]")).to_have_text(["Oscar Outsider (oscar)"])
    page.check("input[name=kind][value=eligible]")
    page.fill("input[name=end]", end)
    page.fill("[name=justification]", "Joins the quarterly access review")
    page.get_by_role("button", name="Assign", exact=True).click()

    page.wait_for_url(f"**/roles/{security_reader.pk}/**")
    page.get_by_role("link", name="Eligible assignments").click()
    page.wait_for_url("**tab=eligible**")
    expect(page.locator("table tbody")).to_contain_text("Oscar Outsider")
    assert Assignment.objects.filter(
        principal_user=outsider, role=security_reader, kind=AssignmentKind.ELIGIBLE
    ).exists()
