import pytest
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from assignments.authz import grants_for
from assignments.models import Assignment, AssignmentKind

pytestmark = pytest.mark.browser

PRA = "Privileged Role Administrator"


def current_code(device: TOTPDevice) -> str:
    value = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
    return f"{value:0{device.digits}d}"


def test_eligible_user_activates_with_a_reason_and_a_code_then_deactivates(
    page, login, eligible_user
):
    # The built-in settings of Privileged Role Administrator ask for a reason and MFA.
    device = TOTPDevice.objects.create(user=eligible_user, name="Phone", confirmed=True)

    login(page, eligible_user.username)
    page.get_by_role("link", name="My roles").first.click()
    row = page.locator("#my-roles-table tbody tr", has_text=PRA)
    row.get_by_role("link", name="Activate").click()

    page.wait_for_url("**/my/roles/activate/**")
    page.fill("[name=justification]", "Incident 4711: rotate the break-glass account")
    page.fill("[name=mfa_code]", current_code(device))
    page.get_by_role("button", name="Activate").click()

    page.wait_for_url("**/my/roles/?tab=active")
    activation = Assignment.objects.get(
        principal_user=eligible_user, kind=AssignmentKind.ACTIVE, activated_from__isnull=False
    )
    end_text = f"{timezone.localtime(activation.end):%Y-%m-%d %H:%M} UTC"  # Erin's zone is UTC
    assert page.get_by_role("alert").filter(has_text=f"{PRA}: active until {end_text}").count()
    active_row = page.locator("#my-roles-table tbody tr", has_text=PRA)
    assert active_row.locator(".assignment-end").inner_text().strip() == end_text
    assert grants_for(eligible_user).can_manage_directory()

    page.once("dialog", lambda dialog: dialog.accept())  # "Deactivate … now?"
    active_row.get_by_role("button", name="Deactivate").click()

    page.wait_for_url("**/my/roles/?tab=active")
    assert page.get_by_role("alert").filter(has_text=f"{PRA} is deactivated.").count()
    assert page.locator("#my-roles-table tbody tr", has_text=PRA).count() == 0
    assert page.get_by_text("No role is active for you.").is_visible()
    assert not grants_for(eligible_user).can_manage_directory()
