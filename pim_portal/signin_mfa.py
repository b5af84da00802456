"""Sign-in MFA: a TOTP code after the password (or the provider) for privileged users.

Who must: `signin_mfa_required(user)` — everyone who holds or is eligible for any role, directly
or through a group, in force now or starting later (SIGNIN_MFA=privileged, the default); every
user with SIGNIN_MFA=everyone; nobody with SIGNIN_MFA=off (the quick start only: `check
--deploy` warns about it).

How a sign-in method hands over (the password step, single sign-on):

- a user who need not do MFA (or whose provider's `amr`/`acr` satisfied it) is signed in with
  `complete(request, user, backend=..., method=..., mfa=...)`;
- anyone else goes through `begin(request, user, backend=..., next_url=..., method=...)`, which
  keeps the half-signed-in user in the session (NOT signed in) and redirects to the code step
  (`/login/code/`, the view in `pim_portal.people.signin`). There a code from one of the
  user's authenticators (or, for a user without one, enrolling one: "More information
  required") finishes the sign-in through `complete(..., mfa=MFA_TOTP)`.

Five wrong codes lock the account as five wrong passwords do: each wrong code is counted by
django-axes for the account (and the client address), so one lock-out covers both.

Session keys after sign-in: SESSION_METHOD (`password` or `sso`) and SESSION_MFA (how this
session's sign-in MFA was done: `totp`, `provider`, or "" when none was required).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.http import url_has_allowed_host_and_scheme

from assignments.models import Assignment
from audit import log as audit_log
from pim_portal import mfa

# SIGNIN_MFA values.
PRIVILEGED, EVERYONE, OFF = "privileged", "everyone", "off"
SIGNIN_MFA_VALUES = (PRIVILEGED, EVERYONE, OFF)

# How the user proved who they are first (`method`), and how the second factor was done (`mfa`).
METHOD_PASSWORD = "password"
METHOD_SSO = "sso"
MFA_TOTP = "totp"  # a code from one of the portal's authenticators
MFA_PROVIDER = "provider"  # the identity provider's amr/acr claims (set by single sign-on)
MFA_NONE = ""  # not required for this user

SESSION_PENDING = "pim_signin_pending"  # the half-signed-in user, until the code step
SESSION_METHOD = "pim_signin_method"
SESSION_MFA = "pim_signin_mfa"
SESSION_ENROL_SECRET = "pim_signin_enrol_secret"  # a new authenticator's secret at sign-in

# Audit action codes.
SIGNED_IN = "pim.security.signin_mfa_passed"
MFA_FAILED = "pim.security.mfa_failed"
MFA_EXPIRED = "pim.security.mfa_expired"

METHOD_LABELS = {METHOD_PASSWORD: "Password", METHOD_SSO: "Single sign-on"}
MFA_LABELS = {
    MFA_TOTP: "Authenticator app code",
    MFA_PROVIDER: "Multifactor authentication at the identity provider",
    MFA_NONE: "None (not required)",
}


def signin_mfa_setting() -> str:
    """The SIGNIN_MFA setting; a value it cannot have fails loudly."""
    value = getattr(settings, "SIGNIN_MFA", PRIVILEGED)
    if value not in SIGNIN_MFA_VALUES:
        raise ImproperlyConfigured(
            f"SIGNIN_MFA={value!r}: it must be one of {', '.join(SIGNIN_MFA_VALUES)}."
        )
    return value


def holds_or_may_hold_a_role(user, at: datetime | None = None) -> bool:
    """Eligible or active for any role, directly or through a group, now or starting later."""
    if user is None or user.pk is None:
        return False
    groups = user.groups.values("pk")
    return (
        Assignment.objects.not_ended(at)
        .filter(Q(principal_user=user) | Q(principal_group__in=groups))
        .exists()
    )


def signin_mfa_required(user) -> bool:
    """Whether signing in as `user` needs a second factor (see the module's docstring)."""
    rule = signin_mfa_setting()
    if rule == OFF:
        return False
    if rule == EVERYONE:
        return True
    return holds_or_may_hold_a_role(user)


def time_limit() -> timedelta:
    """How long the code step waits after the password (or the provider)."""
    return timedelta(seconds=getattr(settings, "SIGNIN_MFA_TIMEOUT", 300))


def _safe(request, next_url: str) -> str:
    if next_url and url_has_allowed_host_and_scheme(
        next_url, {request.get_host()}, request.is_secure()
    ):
        return next_url
    return reverse(settings.LOGIN_REDIRECT_URL)


def begin(request, user, *, backend: str, next_url: str, method: str) -> HttpResponse:
    """Keep the half-signed-in user in the session and send them to the code step.

    Nobody is signed in yet. The session remembers the user, the backend that authenticated
    them, where to go next, the sign-in method, the password's hash (a password changed in
    the meantime voids the step) and the time limit.
    """
    if request.session.session_key:
        request.session.cycle_key()  # a new key for the half-signed-in state
    request.session.pop(SESSION_ENROL_SECRET, None)
    request.session[SESSION_PENDING] = {
        "user": user.pk,
        "backend": backend,
        "next": _safe(request, next_url),
        "method": method,
        "auth_hash": user.get_session_auth_hash(),
        "expires": (timezone.now() + time_limit()).timestamp(),
    }
    return HttpResponseRedirect(reverse("login_code"))


class PendingSignIn:
    """The half-signed-in state the code step reads: `user` or None when there is none, it
    expired, or the account changed (deactivated, new password)."""

    def __init__(self, request):
        self.request = request
        self.data = request.session.get(SESSION_PENDING) or {}
        self.expired = False
        self.user = self._load()

    def _load(self):
        data = self.data
        if not data.get("user"):
            return None
        user = get_user_model().objects.filter(pk=data["user"], is_active=True).first()
        if user is None or not constant_time_compare(
            user.get_session_auth_hash(), data.get("auth_hash", "")
        ):
            return None
        if timezone.now().timestamp() >= float(data.get("expires", 0)):
            self.expired = True
            return None
        return user

    @property
    def backend(self) -> str:
        return self.data.get("backend", "")

    @property
    def next_url(self) -> str:
        return self.data.get("next") or reverse(settings.LOGIN_REDIRECT_URL)

    @property
    def method(self) -> str:
        return self.data.get("method", METHOD_PASSWORD)

    def discard(self) -> None:
        self.request.session.pop(SESSION_PENDING, None)
        self.request.session.pop(SESSION_ENROL_SECRET, None)


def expired(request, pending: PendingSignIn) -> None:
    """The time limit passed: audit it and forget the half-signed-in state."""
    user = get_user_model().objects.filter(pk=pending.data.get("user")).first()
    audit_log.record(
        action=MFA_EXPIRED,
        target=user,
        message=f"Sign-in as {user.get_username() if user else '?'!r} abandoned: the "
        f"verification code was not entered within {int(time_limit().total_seconds())} seconds.",
    )
    pending.discard()


def complete(request, user, *, backend: str, method: str, mfa: str) -> None:
    """Sign the user in (Django's login: the emergency access follow-up and axes' reset of
    failures listen to it) and remember how: the method and the sign-in MFA done."""
    request.session.pop(SESSION_PENDING, None)
    request.session.pop(SESSION_ENROL_SECRET, None)
    login(request, user, backend=backend)
    request.session[SESSION_METHOD] = method
    request.session[SESSION_MFA] = mfa
    if mfa:
        audit_log.record(
            action=SIGNED_IN,
            actor=user,
            target=user,
            after={"method": method, "mfa": mfa},
            message=f"{user.get_username()!r} signed in ({METHOD_LABELS.get(method, method)}, "
            f"{MFA_LABELS.get(mfa, mfa).lower()}).",
        )


def credentials(user) -> dict:
    """What django-axes counts a failure against: the account's username."""
    return {get_user_model().USERNAME_FIELD: user.get_username()}


def is_locked(request, user) -> bool:
    """The account (or the client address) is locked out by failed sign-ins."""
    return AxesProxyHandler.is_locked(request, credentials(user))


def count_failure(request, user) -> bool:
    """Count a failed step of the account's sign-in with django-axes (the account and the
    client address), as a wrong password is. True when this locked the account out."""
    AxesProxyHandler.user_login_failed(
        sender=__name__, credentials=credentials(user), request=request
    )
    return bool(getattr(request, "axes_locked_out", False))


def code_failed(request, user, *, why: str) -> bool:
    """A wrong code: audited, and counted as a failed sign-in of the account (so wrong codes
    and wrong passwords share one limit). True when it locked the account out."""
    audit_log.record(
        action=MFA_FAILED,
        target=user,
        principal=user,
        message=f"Sign-in as {user.get_username()!r}: {why}",
    )
    return count_failure(request, user)


def verify(user, code: str) -> bool:
    """A code from one of the user's authenticators, never used before (django-otp)."""
    return mfa.verify_code(user, code)


def session_method(session) -> str:
    return session.get(SESSION_METHOD, "")


def session_mfa(session) -> str | None:
    """How this session's sign-in MFA was done; None for a session from before it was kept."""
    return session.get(SESSION_MFA)


@checks.register(checks.Tags.security, deploy=True)
def check_signin_mfa(app_configs=None, **kwargs):
    """`check --deploy` warns when sign-in MFA is off (a stolen password is then enough)."""
    if getattr(settings, "SIGNIN_MFA", PRIVILEGED) == OFF:
        return [
            checks.Warning(
                "SIGNIN_MFA=off: nobody is asked for a second factor at sign-in, so a stolen "
                "password is enough to act as a privileged user.",
                hint="Set SIGNIN_MFA=privileged (the default) or everyone.",
                id="pim_portal.W010",
            )
        ]
    return []
