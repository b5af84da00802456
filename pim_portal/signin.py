"""Audit of sign-in attempts: every failure, and every attempt refused by a lock-out.

Connected in `PimPortalConfig.ready`. The username tried is recorded, never the password.
"""

from axes.helpers import get_cool_off
from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from audit import log as audit_log
from pim_portal import throttle

SIGNIN_FAILED = "pim.security.signin_failed"
SIGNIN_LOCKED = "pim.security.signin_locked"


def _minutes(cool_off) -> str:
    minutes = max(1, round(cool_off.total_seconds() / 60)) if cool_off else 0
    return f"{minutes} minute{'' if minutes == 1 else 's'}" if minutes else "good"


def _account(username: str):
    """The account the username names, if any (the audit target)."""
    if not username:
        return None
    return get_user_model().objects.filter(username=username).first()


def _username(credentials: dict | None) -> str:
    field = get_user_model().USERNAME_FIELD
    return str((credentials or {}).get(field) or "")[:150]


@receiver(user_login_failed, dispatch_uid="pim_portal.signin.audit_failed_signin")
def audit_failed_signin(sender, credentials=None, request=None, **kwargs):
    username = _username(credentials)
    audit_log.record(
        action=SIGNIN_FAILED,
        target=_account(username),
        message=f"Failed sign-in as {username!r}.",
    )


@receiver(user_locked_out, dispatch_uid="pim_portal.signin.audit_locked_out")
def audit_locked_out(sender, request=None, username=None, ip_address=None, **kwargs):
    credentials = getattr(request, "axes_credentials", None)
    locked = throttle.locked_parameters(request, credentials)
    what = []
    if throttle.ACCOUNT in locked:
        what.append(f"account {username!r}")
    if throttle.ADDRESS in locked:
        what.append(f"address {ip_address}")
    audit_log.record(
        action=SIGNIN_LOCKED,
        target=_account(str(username or "")),
        message=(
            f"Sign-in as {username!r} refused: too many failures; "
            f"{' and '.join(what) or 'client'} locked for {_minutes(get_cool_off(request))}."
        ),
    )
