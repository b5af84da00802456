"""End to end: a person signs in through the organization's identity provider (a real OpenID
provider), is eligible through a group from the groups claim, and activates the role."""

import pytest

from assignments.models import Assignment, AssignmentKind, RolePolicy
from pim_portal.models import GroupIdentity, Source
from tests.factories import assign, make_group, role
from tests.sso.conftest import configure_sso, running_idp

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live_idp(live_server):
    with running_idp([f"{live_server.url}/oidc/callback/"]) as provider:
        yield provider


def test_a_user_signs_in_with_the_provider_and_activates_a_role_eligible_through_a_group(
    page, live_server, live_idp, settings, tree
):
    configure_sso(settings, live_idp)
    # Sign-in MFA is the provider's (amr "mfa"); this role asks for no code on activation.
    RolePolicy.objects.filter(role=role("Contributor"), scope=None).update(
        require_mfa_on_activation=False
    )
    group = make_group("Cloud operators")
    GroupIdentity.objects.create(group=group, source=Source.OIDC, claim_value="cloud-ops")
    assign(group, "Contributor", scope=tree["sub"], kind=AssignmentKind.ELIGIBLE)
    live_idp.account(
        preferred_username="olga", name="Olga Ops", groups=["cloud-ops"], amr=["pwd", "mfa"]
    )

    page.goto("/login/")
    page.get_by_role("link", name="Sign in with Contoso").click()
    page.wait_for_url(f"{live_idp.issuer}/**")
    page.fill("input[name=login]", "olga")
    page.get_by_role("button", name="Sign in to the provider").click()
    page.wait_for_url(lambda url: url.startswith(live_server.url) and "/oidc/" not in url)
    assert "/login/" not in page.url

    page.get_by_role("link", name="My roles").first.click()
    row = page.locator("#my-roles-table tbody tr", has_text="Contributor")
    row.get_by_role("link", name="Activate").click()
    page.wait_for_url("**/my/roles/activate/**")
    page.fill("[name=justification]", "Deploy hotfix 2.4.1 to production")
    page.get_by_role("button", name="Activate").click()

    page.wait_for_url("**/my/roles/?tab=active")
    assert (
        page.get_by_role("alert").filter(has_text="Contributor at Production: active until").count()
    )
    activation = Assignment.objects.get(kind=AssignmentKind.ACTIVE, activated_from__isnull=False)
    assert activation.principal_user.username == "olga"
    assert activation.principal_user.oidc_issuer == live_idp.issuer
    assert activation.activated_from.principal_group == group
