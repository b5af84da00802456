"""API tokens: made by a user for themselves, shown once, stored hashed, expiring, revocable by
their owner or by a directory administrator, and acting as their owner.

A token is a high-entropy secret (`pim_api_` and 43 URL-safe characters, 256 bits); the database
keeps its SHA-256 and its first characters (to tell tokens apart on a page), never the secret.
It authenticates the API only (`/api/v1/`): it is no session, and the portal's pages and
sign-in know nothing of it. It holds no permission of its own: each request is answered with
what its owner holds at that second (the rule of time), so an owner who loses a role, or is
deactivated, changes what the token gets at once.

Use is audited once per token per minute (`pim.api_token.used`, with `last_used_at` moved by a
conditional update); a refused token that exists (expired, revoked, owner deactivated) is
audited once per token, reason and minute (`pim.api_token.refused`), so a script retrying a
dead token all night writes a row a minute, not a row a request. An unknown secret is not
audited: anyone can send one, and it names nothing.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from assignments import authz
from audit import log as audit_log
from pim_portal.actor import Actor
from pim_portal.models import AccessToken
from pim_portal.params import positive_int

SECRET_PREFIX = "pim_api_"
USE_AUDIT_INTERVAL = timedelta(minutes=1)
NAME_MAX_LENGTH = 100


def api_tokens():
    """Every API token, with the people it names (for the token pages)."""
    return AccessToken.objects.filter(kind=AccessToken.Kind.API).select_related(
        "owner", "created_by", "revoked_by"
    )


def may_revoke(actor: Actor, token: AccessToken, grants: authz.Grants | None = None) -> bool:
    """Its owner, a Privileged Role or Global Administrator in force, or the system."""
    if actor.is_system or token.owner_id == actor.pk:
        return True
    return (grants or authz.grants_for(actor)).can_manage_directory()


def token_for_revoker(actor, token_id, grants: authz.Grants | None = None) -> AccessToken:
    """An API token the actor may revoke; a 404 (audited) for one that does not exist or is
    someone else's to a non-administrator, so ids do not tell whose tokens exist."""
    actor = Actor.of(actor)
    pk = positive_int(token_id)
    token = api_tokens().filter(pk=pk).first() if pk else None
    if token is None or not may_revoke(actor, token, grants):
        foreign = token is not None
        authz.deny(
            actor,
            what=f"revoke API token {token_id}",
            not_found=True,
            action="pim.security.foreign_object" if foreign else "pim.security.forbidden",
        )
    return token


def api_token_create(
    actor, *, owner, name: str, expires_at: datetime | None = None
) -> tuple[AccessToken, str]:
    """Make an API token acting as `owner`: (the token, its secret), the secret only here.

    A user makes tokens for themselves only (a token acts as its owner: making one for someone
    else would be acting as them); the system may make one for anyone. The owner must be an
    active account. The name is required and unique among the owner's tokens not revoked. The
    expiry is required: by default API_TOKEN_DEFAULT_DAYS from now, never later than
    API_TOKEN_MAX_DAYS, never in the past.
    """
    actor = Actor.of(actor)
    if not actor.is_system and owner.pk != actor.pk:
        authz.deny(actor, what=f"create an API token acting as {owner.get_username()!r}")
    now = timezone.now()
    name = (name or "").strip()
    problems: dict[str, list[str]] = {}
    if not owner.is_active:
        problems["owner"] = [f"{owner} is deactivated: a token of theirs could not be used."]
    if not name:
        problems["name"] = ["Name the token after the program that will use it."]
    elif len(name) > NAME_MAX_LENGTH:
        problems["name"] = [f"A name is at most {NAME_MAX_LENGTH} characters."]
    elif (
        api_tokens()
        .filter(owner=owner, name__iexact=name, revoked_at__isnull=True, expires_at__gt=now)
        .exists()
    ):
        problems["name"] = [f"You already have a token named {name!r}: revoke it or pick another."]
    if expires_at is None:
        expires_at = now + timedelta(days=settings.API_TOKEN_DEFAULT_DAYS)
    late = AccessToken.expiry_problem(expires_at, now=now, max_days=settings.API_TOKEN_MAX_DAYS)
    if late:
        problems["expires_at"] = [late]
    if problems:
        raise ValidationError(problems)
    with transaction.atomic():
        token, secret = AccessToken.issue(
            kind=AccessToken.Kind.API,
            secret_prefix=SECRET_PREFIX,
            name=name,
            owner=owner,
            created_by=actor.user,
            created_at=now,
            expires_at=expires_at,
        )
        audit_log.record(
            action="pim.api_token.created",
            actor=actor,
            target=token,
            principal=owner,
            after={"name": name, "prefix": token.prefix, "owner": owner.get_username()},
            message=f"Expires {expires_at:%Y-%m-%d %H:%M} UTC.",
        )
    return token, secret


def api_token_revoke(actor, *, token: AccessToken) -> AccessToken:
    """Revoke a token now: the next request that presents it is refused (401). For its owner
    and for directory administrators (Privileged Role or Global Administrator in force)."""
    actor = Actor.of(actor)
    if not may_revoke(actor, token):
        authz.deny(actor, what=f"revoke API token {token.pk}", not_found=True)
    now = timezone.now()
    with transaction.atomic():
        locked = api_tokens().select_for_update(of=("self",)).filter(pk=token.pk).first()
        if locked is None:
            raise ValidationError("That token does not exist.")
        if locked.revoked_at is not None:
            raise ValidationError(f"The token {locked.name!r} is already revoked.")
        locked.revoked_at, locked.revoked_by = now, actor.user
        locked.save(update_fields=["revoked_at", "revoked_by"])
        audit_log.record(
            action="pim.api_token.revoked",
            actor=actor,
            target=locked,
            principal=locked.owner or "",
            before={"revoked_at": None},
            after={"revoked_at": now},
        )
    return locked


class TokenRefused(Exception):
    """The bearer token is missing, unknown, expired or revoked, or its owner cannot act;
    `str()` says which, `presented` whether there was a token at all."""

    def __init__(self, message: str, *, presented: bool = True):
        super().__init__(message)
        self.presented = presented


def authenticate(authorization: str | None) -> AccessToken:
    """The usable API token an Authorization header presents (its owner loaded), or
    TokenRefused. See the module's docstring for what is audited."""
    secret = AccessToken.bearer_secret(authorization)
    if not secret:
        raise TokenRefused(
            "A bearer token is required (Authorization: Bearer <token>).", presented=False
        )
    token = (
        AccessToken.objects.select_related("owner")
        .filter(secret_hash=AccessToken.hash_secret(secret), kind=AccessToken.Kind.API)
        .first()
    )
    if token is None:
        raise TokenRefused("The bearer token is not valid.")
    now = timezone.now()
    why = _unusable(token, now)
    if why:
        _note_refusal(token, why, now)
        raise TokenRefused(f"The bearer token is {why}.")
    _note_use(token, now)
    return token


def _unusable(token: AccessToken, now: datetime) -> str:
    if token.revoked_at is not None:
        return "revoked"
    if not token.is_usable(now):
        return "expired"
    if token.owner is None or not token.owner.is_active:
        return "of a deactivated account"
    return ""


def _note_refusal(token: AccessToken, why: str, now: datetime) -> None:
    # cache.add is atomic: of many concurrent refusals in a minute, one writes the event (per
    # process with the default local-memory cache; a shared cache makes it one in all).
    key = f"pim:api_token_refused:{token.pk}:{why.replace(' ', '-')}"
    if not cache.add(key, now.isoformat(), timeout=int(USE_AUDIT_INTERVAL.total_seconds())):
        return
    owner = token.owner
    audit_log.record(
        action="pim.api_token.refused",
        actor=Actor.of(owner) if owner is not None else None,
        target=token,
        principal=owner or "",
        message=f"API request with the token {token.name!r}, which is {why}.",
    )


def _note_use(token: AccessToken, now: datetime) -> None:
    """Move last_used_at and audit the use, at most once a minute per token (a conditional
    update, so that concurrent requests write one event)."""
    with transaction.atomic():
        if token.note_use(now, USE_AUDIT_INTERVAL):
            audit_log.record(
                action="pim.api_token.used",
                actor=Actor.of(token.owner),
                target=token,
                message=f"API token {token.name!r} used.",
            )
