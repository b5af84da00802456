"""From the provider's claims to the portal's idea of a person (the claim names are settings)."""

import hashlib
import re
from dataclasses import dataclass

from django.conf import settings

USERNAME_MAX = 150
# Django's username validator allows letters, digits and @ . + - _; anything else becomes "-".
_NOT_USERNAME = re.compile(r"[^\w.@+-]+")


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in. `groups` is None when the claim is absent (then group
    memberships are left as they are: a provider may leave it out, e.g. when there are too
    many groups for a token), and a tuple (maybe empty) when it is there."""

    issuer: str
    subject: str
    username: str
    email: str
    display_name: str
    groups: tuple[str, ...] | None
    amr: tuple[str, ...]
    acr: str

    @property
    def mfa_by_provider(self) -> bool:
        """The provider's amr or acr says the person signed in with MFA (OIDC_MFA_AMR,
        OIDC_MFA_ACR list the values that count)."""
        counted_amr = set(settings.OIDC_MFA_AMR)
        counted_acr = set(settings.OIDC_MFA_ACR)
        return bool(counted_amr & set(self.amr)) or bool(self.acr and self.acr in counted_acr)


class ClaimsInvalid(Exception):
    """Claims the portal cannot use (no subject, a userinfo answer for someone else)."""


def _text(value) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _strings(value) -> tuple[str, ...]:
    if value is None:
        return ()
    values = [value] if isinstance(value, str | int) else value
    if not isinstance(values, list | tuple):
        return ()
    texts = (_text(item) for item in values)
    return tuple(dict.fromkeys(text for text in texts if text))  # de-duplicated, in order


def username_from(value: str, subject: str) -> str:
    """A valid Django username from the claim; from the subject when the claim gives none."""
    username = _NOT_USERNAME.sub("-", value).strip("-")[:USERNAME_MAX]
    if username:
        return username
    return "oidc-" + hashlib.sha256(subject.encode()).hexdigest()[:16]


def identity_from(id_token: dict, userinfo: dict | None, *, issuer: str) -> Identity:
    """The identity in an (already verified) ID token and the userinfo answer, if any.

    Userinfo adds to the ID token's claims but must be about the same subject (OpenID Connect
    Core 1.0, 5.3.2); amr and acr are the ID token's alone (they describe that sign-in).
    """
    subject = _text(id_token.get("sub"))
    if not subject:
        raise ClaimsInvalid("the ID token has no subject (sub)")
    claims = dict(id_token)
    if userinfo:
        if _text(userinfo.get("sub")) != subject:
            raise ClaimsInvalid("the userinfo answer is about another subject than the ID token")
        claims.update({k: v for k, v in userinfo.items() if k not in ("amr", "acr")})
    email = _text(claims.get(settings.OIDC_CLAIM_EMAIL))[:254]
    username = username_from(
        _text(claims.get(settings.OIDC_CLAIM_USERNAME)) or email or subject, subject
    )
    groups_claim = settings.OIDC_CLAIM_GROUPS
    raw_groups = claims.get(groups_claim) if groups_claim else None
    groups = _strings(raw_groups) if raw_groups is not None else None  # null: not sent
    return Identity(
        issuer=issuer,
        subject=subject[:255],
        username=username,
        email=email,
        display_name=_text(claims.get(settings.OIDC_CLAIM_NAME))[:150],
        groups=tuple(group[:255] for group in groups) if groups is not None else None,
        amr=_strings(id_token.get("amr")),
        acr=_text(id_token.get("acr")),
    )
