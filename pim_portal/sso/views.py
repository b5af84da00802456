"""Single sign-on's two pages: off to the provider, and back from it (the callback).

Both answer 404 while single sign-on is off. The callback takes the state it was sent with
out of the session before anything else, so an answer works once; every refusal is a page
saying what went wrong, with its HTTP status, and is audited (pim.security.sso_failed).
"""

import contextlib
import time

from django.conf import settings
from django.http import Http404
from django.shortcuts import redirect, render, resolve_url
from mozilla_django_oidc.views import OIDCAuthenticationRequestView

from pim_portal import signin_mfa
from pim_portal.sso import config, services
from pim_portal.sso.backend import BACKEND, OIDCBackend
from pim_portal.sso.refusals import SignInRefused

# The states of sign-ins already completed (or refused), so a replay is named as one.
USED_STATES = "pim_oidc_used_states"
USED_STATES_KEPT = 20
# A sign-in started longer ago than this is not completed.
STATE_MAX_AGE_SECONDS = 15 * 60


def failed(request, refusal: SignInRefused):
    return render(
        request,
        "sso/failed.html",
        {"refusal": refusal, "sso_name": config.display_name()},
        status=refusal.status,
    )


class BeginView(OIDCAuthenticationRequestView):
    """Off to the provider's authorization endpoint, with state, nonce and a PKCE challenge
    (mozilla-django-oidc's), the endpoint from discovery."""

    get_settings = staticmethod(config.setting)

    def __init__(self, **kwargs):
        # The endpoint is read in get(), where a provider that cannot be reached is a page.
        super(OIDCAuthenticationRequestView, self).__init__(**kwargs)

    def get(self, request):
        if not config.enabled():
            raise Http404("Single sign-on is not set up.")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = config.discovery()["authorization_endpoint"]
        except config.DiscoveryFailed as error:
            refusal = SignInRefused("discovery_failed", str(error))
            services.sso_sign_in_failed(refusal=refusal)
            return failed(request, refusal)
        self.OIDC_RP_CLIENT_ID = self.get_settings("OIDC_RP_CLIENT_ID")
        return super().get(request)


def _take_state(request) -> dict:
    """The sign-in this answer belongs to, taken out of the session (it works once)."""
    state = request.GET.get("state", "")
    states = request.session.get("oidc_states")
    states = states if isinstance(states, dict) else {}
    entry = states.pop(state, None) if state else None
    if entry is None:
        if state and state in request.session.get(USED_STATES, []):
            raise SignInRefused("state_replayed", "the state was already used in this session")
        raise SignInRefused("state_unknown", "no sign-in with this state in this session")
    request.session["oidc_states"] = states
    request.session[USED_STATES] = [*request.session.get(USED_STATES, []), state][
        -USED_STATES_KEPT:
    ]
    request.session.save()  # at once: a second request with this state finds it gone
    if time.time() - float(entry.get("added_on", 0)) > STATE_MAX_AGE_SECONDS:
        raise SignInRefused("state_expired", "the sign-in was started over 15 minutes ago")
    return entry


def _provider_error(request) -> SignInRefused:
    error = request.GET.get("error", "")[:100]
    description = request.GET.get("error_description", "")[:300]
    return SignInRefused(
        "provider_error",
        f"{error}: {description}" if description else error,
        show_detail=True,
    )


def callback(request):
    """Back from the provider: verify, find or make the account, sign in (or ask for the
    portal's TOTP code first, when sign-in MFA is needed and the provider did not do it)."""
    if not config.enabled():
        raise Http404("Single sign-on is not set up.")
    identity = None
    try:
        if request.GET.get("error"):
            with contextlib.suppress(SignInRefused):
                _take_state(request)  # spent; the provider's refusal is the news
            raise _provider_error(request)
        entry = _take_state(request)
        code = request.GET.get("code", "")
        if not code:
            raise SignInRefused("no_code", "the answer has a state but no code")
        identity = OIDCBackend().sign_in(
            request, code=code, nonce=entry.get("nonce") or "", code_verifier=entry["code_verifier"]
        )
        outcome = services.sso_user_sign_in(identity=identity)
    except SignInRefused as refusal:
        services.sso_sign_in_failed(refusal=refusal, identity=identity)
        return failed(request, refusal)
    next_url = request.session.pop("oidc_login_next", None) or resolve_url(
        settings.LOGIN_REDIRECT_URL
    )
    if outcome.mfa == services.MFA_BY_PORTAL:
        return signin_mfa.begin(
            request, outcome.user, backend=BACKEND, next_url=next_url, method=signin_mfa.METHOD_SSO
        )
    signin_mfa.complete(
        request,
        outcome.user,
        backend=BACKEND,
        method=signin_mfa.METHOD_SSO,
        mfa=signin_mfa.MFA_PROVIDER
        if outcome.mfa == services.MFA_BY_PROVIDER
        else signin_mfa.MFA_NONE,
    )
    return redirect(next_url)
