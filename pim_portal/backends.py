"""Local password sign-in, limited by the LOCAL_LOGIN setting.

- `all` (the default, for the quick start): every account may sign in with its password;
- `breakglass`: only accounts marked as emergency access;
- `off`: none but emergency access accounts, which always may (that is what they are for).

The password is checked first, and only a right password is refused by the rule: were the rule
applied before it, "refused" against "wrong password" would tell anyone which usernames are
emergency access accounts. A refusal is audited (pim.security.signin_refused, naming the rule)
and raised as a ValidationError, which Django's sign-in form (the portal's and the admin's)
shows as the reason on the page; it is not a failed sign-in, so it is not counted towards a
lock-out (wrong passwords still are).
"""

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ImproperlyConfigured, ValidationError

from audit import log as audit_log

ALL, BREAKGLASS, OFF = "all", "breakglass", "off"
LOCAL_LOGIN_VALUES = (ALL, BREAKGLASS, OFF)
SIGNIN_REFUSED = "pim.security.signin_refused"

# What the sign-in page says, by rule.
REFUSED_MESSAGES = {
    BREAKGLASS: "Sign-in with a password is reserved for emergency access accounts here. "
    "Sign in with your organization's account instead.",
    OFF: "Sign-in with a password is turned off here. "
    "Sign in with your organization's account instead.",
}
# What the audit log says, by rule (the setting named, for whoever investigates).
REFUSED_WHY = {
    BREAKGLASS: "LOCAL_LOGIN=breakglass allows password sign-in only to emergency access accounts",
    OFF: "LOCAL_LOGIN=off turns password sign-in off (but for emergency access accounts)",
}


class LocalSignInRefused(ValidationError):
    """A right password refused by LOCAL_LOGIN; `rule` is the setting's value."""

    def __init__(self, rule: str):
        self.rule = rule
        super().__init__(REFUSED_MESSAGES[rule], code=f"local_login_{rule}")


def local_login() -> str:
    """The LOCAL_LOGIN setting; a value it cannot have fails loudly rather than guessing."""
    value = getattr(settings, "LOCAL_LOGIN", ALL)
    if value not in LOCAL_LOGIN_VALUES:
        raise ImproperlyConfigured(
            f"LOCAL_LOGIN={value!r}: it must be one of {', '.join(LOCAL_LOGIN_VALUES)}."
        )
    return value


def may_sign_in_locally(user, rule: str | None = None) -> bool:
    """Emergency access accounts always; everyone else only when LOCAL_LOGIN is `all`."""
    rule = rule or local_login()
    return rule == ALL or bool(getattr(user, "is_emergency_access", False))


class LocalLoginBackend(ModelBackend):
    """Django's ModelBackend (passwords, and the admin's model permissions), with password
    sign-in limited by LOCAL_LOGIN."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            return None
        rule = local_login()
        if may_sign_in_locally(user, rule):
            return user
        audit_log.record(
            action=SIGNIN_REFUSED,
            target=user,
            principal=user,
            after={"why": f"local_login_{rule}"},
            message=f"Password sign-in as {user.get_username()!r} refused: {REFUSED_WHY[rule]}.",
        )
        raise LocalSignInRefused(rule)
