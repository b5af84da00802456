"""SCIM bearer tokens: made by a Global Administrator, shown once, stored hashed, with an
expiry, revocable.

A token is a high-entropy secret (`pim_scim_` and 43 URL-safe characters, 256 bits); the
database keeps its SHA-256 and its first characters (to tell tokens apart on a page), never
the secret. A token authenticates the SCIM endpoint only: it is no session, and the portal's
pages and sign-in know nothing of it.

Use is audited once per token per minute (`pim.scim.token_used`, with `last_used_at` moved by a
conditional update), so a full sync of ten thousand users does not write ten thousand audit
rows of reads; every change made through SCIM is audited by the service that makes it, with the
token named as the actor.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from assignments import authz
from audit import log as audit_log
from pim_portal.actor import Actor
from pim_portal.models import AccessToken

SECRET_PREFIX = "pim_scim_"
USE_AUDIT_INTERVAL = timedelta(minutes=1)


def actor_of(token: AccessToken) -> Actor:
    """Who acts when a token is used: the system, for the token named."""
    return Actor.system(f'SCIM token "{token.name}"')


def _require_manager(actor: Actor, what: str) -> None:
    grants = authz.grants_for(actor)
    if not grants.can_manage_provisioning():
        authz.deny(actor, what=what)


def token_create(
    *, actor: Actor, name: str, expires_at: datetime | None = None
) -> tuple[AccessToken, str]:
    """Make a SCIM token: (the token, its secret). The secret is returned only here.

    For Global Administrators (provisioning.manage). The expiry is required: by default
    SCIM_TOKEN_DEFAULT_DAYS from now, never later than SCIM_TOKEN_MAX_DAYS, never in the past.
    """
    actor = Actor.of(actor)
    _require_manager(actor, "create a SCIM token")
    now = timezone.now()
    name = (name or "").strip()
    problems = {}
    if not name:
        problems["name"] = ["Name the token after the system that will use it (okta, entra)."]
    elif AccessToken.objects.filter(
        kind=AccessToken.Kind.SCIM, name__iexact=name, revoked_at__isnull=True
    ).exists():
        problems["name"] = [f"A token named {name!r} is already in use: revoke it or pick another."]
    if expires_at is None:
        expires_at = now + timedelta(days=settings.SCIM_TOKEN_DEFAULT_DAYS)
    late = AccessToken.expiry_problem(expires_at, now=now, max_days=settings.SCIM_TOKEN_MAX_DAYS)
    if late:
        problems["expires_at"] = [late]
    if problems:
        raise ValidationError(problems)
    with transaction.atomic():
        token, secret = AccessToken.issue(
            kind=AccessToken.Kind.SCIM,
            secret_prefix=SECRET_PREFIX,
            name=name,
            created_by=actor.user,
            created_at=now,
            expires_at=expires_at,
        )
        audit_log.record(
            action="pim.scim.token_created",
            actor=actor,
            target=token,
            after={"name": name, "prefix": token.prefix, "expires_at": expires_at},
        )
    return token, secret


def token_revoke(*, actor: Actor, token_id) -> AccessToken:
    """Revoke a token now: the next request that presents it is refused (401)."""
    actor = Actor.of(actor)
    _require_manager(actor, f"revoke SCIM token {token_id}")
    now = timezone.now()
    with transaction.atomic():
        token = AccessToken.objects.select_for_update().filter(pk=token_id).first()
        if token is None:
            raise ValidationError("That token does not exist.")
        if token.revoked_at is not None:
            raise ValidationError(f"The token {token.name!r} is already revoked.")
        token.revoked_at, token.revoked_by = now, actor.user
        token.save(update_fields=["revoked_at", "revoked_by"])
        audit_log.record(
            action="pim.scim.token_revoked",
            actor=actor,
            target=token,
            before={"revoked_at": None},
            after={"revoked_at": now},
        )
    return token


class TokenRefused(Exception):
    """The bearer token is missing, unknown, expired or revoked; `str()` says which."""


def authenticate(authorization: str | None, *, ip: str | None = None) -> AccessToken:
    """The usable SCIM token an Authorization header presents, or TokenRefused.

    A refusal of a token that exists (expired, revoked) is audited; an unknown one is not
    (anyone can send one, and it names nothing).
    """
    secret = AccessToken.bearer_secret(authorization)
    if not secret:
        raise TokenRefused("A bearer token is required.")
    token = AccessToken.objects.filter(secret_hash=AccessToken.hash_secret(secret)).first()
    if token is None or token.kind != AccessToken.Kind.SCIM:
        raise TokenRefused("The bearer token is not valid.")
    now = timezone.now()
    if not token.is_usable(now):
        why = "revoked" if token.revoked_at is not None else "expired"
        audit_log.record(
            action="pim.security.token_refused",
            actor=actor_of(token),
            target=token,
            message=f"SCIM request with the {why} token {token.name!r}.",
        )
        raise TokenRefused(f"The bearer token is {why}.")
    _note_use(token, now)
    return token


def _note_use(token: AccessToken, now: datetime) -> None:
    """Move last_used_at and audit the use, at most once a minute per token (a conditional
    update, so that concurrent requests write one event)."""
    with transaction.atomic():
        if token.note_use(now, USE_AUDIT_INTERVAL):
            audit_log.record(action="pim.scim.token_used", actor=actor_of(token), target=token)
