"""A role that needs approval: requested, approved from the inbox with a reason, then active."""

import pytest
from playwright.sync_api import expect

from approvals.models import ApprovalDecision
from assignments.authz import grants_for
from assignments.models import RequestStatus, RoleRequest
from tests.approvals.conftest import PRA, needs_approval

pytestmark = pytest.mark.browser


def sign_out(page) -> None:
    page.context.clear_cookies()


def test_requested_role_is_approved_from_the_inbox_and_becomes_active(
    page, login, eligible_user, approver
):
    # Activating Privileged Role Administrator needs Alex's approval (and no TOTP code here).
    needs_approval(PRA, approvers=[approver])

    # Erin asks for the role.
    login(page, eligible_user.username)
    page.get_by_role("link", name="My roles").first.click()
    page.locator("#my-roles-table tbody tr", has_text=PRA).get_by_role(
        "link", name="Activate"
    ).click()
    page.wait_for_url("**/my/roles/activate/**")
    page.fill("[name=justification]", "Incident 4711: rotate the break-glass account")
    page.get_by_role("button", name="Activate").click()
    page.wait_for_url("**/my/roles/?tab=active")
    expect(page.get_by_role("alert").filter(has_text="pending approval")).to_have_count(1)
    request = RoleRequest.objects.get(principal_user=eligible_user)
    assert request.status == RequestStatus.PENDING_APPROVAL
    assert not grants_for(eligible_user).can_manage_directory()

    # Alex signs in, opens Approve requests and approves it with a reason.
    sign_out(page)
    login(page, approver.username)
    nav = page.get_by_role("link", name="Approve requests")
    expect(nav).to_contain_text("1")
    nav.click()
    page.wait_for_url("**/approvals/")
    row = page.locator(f"tr[data-request-id='{request.pk}']")
    expect(row).to_contain_text("Erin Eligible")
    expect(row).to_contain_text("Incident 4711")
    row.locator("input[name=request]").check()
    page.fill("#bulk-justification", "Confirmed with the incident commander")
    page.get_by_role("button", name="Approve selected").click()
    page.wait_for_url("**/approvals/")
    expect(page.get_by_role("alert").filter(has_text="1 approved")).to_have_count(1)
    expect(page.locator("#bulk-result")).to_contain_text("Request approved.")
    decision = ApprovalDecision.objects.get(request=request)
    assert decision.justification == "Confirmed with the incident commander"

    # Erin sees the role active.
    sign_out(page)
    login(page, eligible_user.username)
    page.goto("/my/roles/?tab=active")
    expect(page.locator("#my-roles-table tbody tr", has_text=PRA)).to_have_count(1)
    assert grants_for(eligible_user).can_manage_directory()
    page.goto(f"/approvals/requests/{request.pk}/")
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Confirmed with the incident commander")
    expect(timeline).to_contain_text("In force")
