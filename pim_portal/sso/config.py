"""Single sign-on's configuration: the OIDC_* settings, and the provider's discovery document.

The endpoints are not settings: they come from `<issuer>/.well-known/openid-configuration`,
fetched at first use and kept for the life of the process (a failed fetch is not kept, so the
next sign-in tries again). mozilla-django-oidc reads its own setting names; `setting()` answers
them from ours and from discovery.

`check_settings` runs from settings.py, so this module imports nothing of the portal's apps.
"""

import ipaddress
import threading
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Asymmetric algorithms only: with HS256 the client secret would be the signing key.
SIGN_ALGORITHMS = {
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
}
DISCOVERY_PATH = "/.well-known/openid-configuration"
CALLBACK_URL_NAME = "sso:callback"
REQUIRED_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_settings(
    *, issuer: str, client_id: str, client_secret: str, scopes, sign_algo: str, leeway: int
) -> None:
    """Fail loudly at start-up on settings single sign-on cannot work with."""
    parts = urlsplit(issuer)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ImproperlyConfigured(f"OIDC_ISSUER={issuer!r} is not an http(s) URL.")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ImproperlyConfigured(
            f"OIDC_ISSUER={issuer!r}: the identity provider must be reached over https "
            "(plain http only on this machine's loopback, for tests)."
        )
    if parts.query or parts.fragment:
        raise ImproperlyConfigured(f"OIDC_ISSUER={issuer!r} has a query or fragment.")
    if not client_id:
        raise ImproperlyConfigured("OIDC_CLIENT_ID is required when OIDC_ISSUER is set.")
    if not client_secret:
        raise ImproperlyConfigured(
            "OIDC_CLIENT_SECRET (or OIDC_CLIENT_SECRET_FILE) is required when OIDC_ISSUER is set."
        )
    if "openid" not in scopes:
        raise ImproperlyConfigured(f"OIDC_SCOPES={' '.join(scopes)!r} must include openid.")
    if sign_algo not in SIGN_ALGORITHMS:
        raise ImproperlyConfigured(
            f"OIDC_SIGN_ALGO={sign_algo!r}: one of {', '.join(sorted(SIGN_ALGORITHMS))}."
        )
    if leeway < 0:
        raise ImproperlyConfigured(f"OIDC_LEEWAY_SECONDS={leeway} must be 0 or more.")


def enabled() -> bool:
    """Single sign-on is on when an issuer is configured."""
    return bool(getattr(settings, "OIDC_ISSUER", ""))


def display_name() -> str:
    return getattr(settings, "OIDC_NAME", "") or "your organization"


class DiscoveryFailed(Exception):
    """The provider's discovery document could not be fetched or is not usable."""


_discovered: dict[str, dict] = {}
_lock = threading.Lock()


def discovery() -> dict:
    """The issuer's discovery document, fetched once per process and kept."""
    issuer = settings.OIDC_ISSUER
    document = _discovered.get(issuer)
    if document is not None:
        return document
    with _lock:
        document = _discovered.get(issuer)
        if document is None:
            document = _fetch(issuer)
            _discovered[issuer] = document
    return document


def forget() -> None:
    """Drop the kept discovery documents (tests, or after the provider moved its endpoints)."""
    with _lock:
        _discovered.clear()


def _fetch(issuer: str) -> dict:
    url = issuer.rstrip("/") + DISCOVERY_PATH
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as error:
        raise DiscoveryFailed(f"{url}: {error}") from error
    if not isinstance(document, dict):
        raise DiscoveryFailed(f"{url}: not a JSON object")
    # OpenID Connect Discovery 1.0, section 4.3: the issuer must be the one asked for.
    if str(document.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
        raise DiscoveryFailed(
            f"{url} names the issuer {document.get('issuer')!r}, not {issuer!r} (OIDC_ISSUER)"
        )
    missing = [name for name in REQUIRED_ENDPOINTS if not document.get(name)]
    if missing:
        raise DiscoveryFailed(f"{url} has no {', '.join(missing)}")
    return document


def _token_auth_basic(document: dict) -> bool:
    # client_secret_basic is the default when a provider lists nothing (Discovery 1.0, 3).
    methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    return "client_secret_basic" in methods or "client_secret_post" not in methods


_FROM_DISCOVERY = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}


def setting(name: str, *default):
    """A mozilla-django-oidc setting, answered from the portal's OIDC_* settings and discovery."""
    if name in _FROM_DISCOVERY:
        return discovery().get(_FROM_DISCOVERY[name])
    answers = {
        "OIDC_RP_CLIENT_ID": lambda: settings.OIDC_CLIENT_ID,
        "OIDC_RP_CLIENT_SECRET": lambda: settings.OIDC_CLIENT_SECRET,
        "OIDC_RP_SCOPES": lambda: " ".join(settings.OIDC_SCOPES),
        "OIDC_RP_SIGN_ALGO": lambda: settings.OIDC_SIGN_ALGO,
        "OIDC_USE_PKCE": lambda: True,
        "OIDC_USE_NONCE": lambda: True,
        "OIDC_PKCE_CODE_CHALLENGE_METHOD": lambda: "S256",
        "OIDC_TIMEOUT": lambda: settings.OIDC_TIMEOUT,
        "OIDC_VERIFY_SSL": lambda: True,
        "OIDC_TOKEN_USE_BASIC_AUTH": lambda: _token_auth_basic(discovery()),
        "OIDC_AUTHENTICATION_CALLBACK_URL": lambda: CALLBACK_URL_NAME,
        "OIDC_CREATE_USER": lambda: settings.OIDC_CREATE_USERS,
        "OIDC_STORE_ACCESS_TOKEN": lambda: False,
        "OIDC_STORE_ID_TOKEN": lambda: False,
        "OIDC_ALLOW_UNSECURED_JWT": lambda: False,
    }
    if name in answers:
        return answers[name]()
    if default:
        return getattr(settings, name, default[0])
    return getattr(settings, name)
