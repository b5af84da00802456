"""Sign-in MFA with single sign-on: the provider's amr/acr may satisfy it, else the portal asks."""

from django.contrib.auth import get_user_model
from django.urls import reverse

from assignments.models import AssignmentKind
from audit.models import AuditEvent
from tests.factories import assign
from tests.sso.conftest import sso_sign_in

User = get_user_model()


def eligible_account(sso, **claims):
    """An account whose first sign-in makes it eligible for a role (through a group), so that
    sign-in MFA is required for it."""
    from pim_portal.models import GroupIdentity, Source
    from tests.factories import make_group

    group = make_group("Security operators")
    GroupIdentity.objects.create(group=group, source=Source.OIDC, claim_value="sec-ops")
    assign(group, "Security Reader", kind=AssignmentKind.ELIGIBLE)
    return sso.account(groups=["sec-ops"], **claims)


def test_an_amr_that_counts_as_mfa_signs_in_directly(client, sso, tree):
    account = eligible_account(sso, amr=["pwd", "mfa"])

    response = sso_sign_in(client, sso, account["sub"], next_url="/my/roles/")

    assert response.status_code == 302
    assert response["Location"] == "/my/roles/"
    user = User.objects.get(oidc_subject=account["sub"])
    assert client.session["_auth_user_id"] == str(user.pk)
    assert client.session["pim_signin_mfa"] == "provider"
    event = AuditEvent.objects.get(action="pim.security.sso_signin")
    assert event.after["mfa"] == "provider"
    assert event.after["amr"] == ["pwd", "mfa"]


def test_an_acr_that_counts_as_mfa_signs_in_directly(client, sso, tree):
    account = eligible_account(sso, amr=["pwd"], acr="urn:pim:test:mfa")

    sso_sign_in(client, sso, account["sub"])

    assert client.session["pim_signin_mfa"] == "provider"


def test_an_amr_that_does_not_count_sends_the_user_to_the_portals_code_step(client, sso, tree):
    account = eligible_account(sso, amr=["pwd"], acr="urn:pim:test:password")

    response = sso_sign_in(client, sso, account["sub"], next_url="/my/roles/")

    assert response.status_code == 302
    assert response["Location"] == reverse("login_code")
    assert "_auth_user_id" not in client.session  # not signed in until the code
    event = AuditEvent.objects.get(action="pim.security.sso_signin")
    assert event.after["mfa"] == "portal"


def test_mfa_values_count_only_when_the_settings_say_so(client, sso, settings, tree):
    settings.OIDC_MFA_AMR = []
    settings.OIDC_MFA_ACR = []
    account = eligible_account(sso, amr=["pwd", "mfa"])

    response = sso_sign_in(client, sso, account["sub"])

    assert response["Location"] == reverse("login_code")


def test_a_user_without_roles_needs_no_sign_in_mfa(client, sso):
    account = sso.account(amr=["pwd"])

    response = sso_sign_in(client, sso, account["sub"], next_url="/my/roles/")

    assert response["Location"] == "/my/roles/"
    assert client.session["pim_signin_mfa"] == ""
