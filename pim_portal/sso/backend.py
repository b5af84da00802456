"""The OpenID Connect authentication backend (mozilla-django-oidc), strict about ID tokens.

mozilla-django-oidc exchanges the code (with the PKCE verifier) and finds the signing key in
the provider's JWKS; the ID token is then checked here with PyJWT in full: signature and
algorithm, issuer, audience (and azp when there are several), expiry, issue time, nonce. Each
failure is a SignInRefused naming what was wrong.

The backend signs in only through the callback view (`sign_in`); `authenticate` answers None
to everything else, so password sign-ins never reach a provider. `get_user` is Django's, which
refuses inactive users: a deactivated person's session ends at their next request. Model
permissions are the password backend's to answer (it answers for every user).
"""

import hmac

import jwt
import requests
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import SuspiciousOperation
from django.urls import reverse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import absolutify

from pim_portal.sso import config
from pim_portal.sso.claims import ClaimsInvalid, Identity, identity_from
from pim_portal.sso.refusals import SignInRefused

BACKEND = "pim_portal.sso.backend.OIDCBackend"


class OIDCBackend(OIDCAuthenticationBackend):
    def __init__(self, *args, **kwargs):
        # Django makes a backend for every request's get_user: read nothing (no discovery)
        # until a sign-in needs it.
        self.UserModel = get_user_model()

    get_settings = staticmethod(config.setting)

    def _configure(self) -> None:
        try:
            document = config.discovery()
        except config.DiscoveryFailed as error:
            raise SignInRefused("discovery_failed", str(error)) from error
        self.issuer = document["issuer"]
        self.OIDC_OP_TOKEN_ENDPOINT = document["token_endpoint"]
        self.OIDC_OP_USER_ENDPOINT = document.get("userinfo_endpoint")
        self.OIDC_OP_JWKS_ENDPOINT = document["jwks_uri"]
        self.OIDC_RP_CLIENT_ID = self.get_settings("OIDC_RP_CLIENT_ID")
        self.OIDC_RP_CLIENT_SECRET = self.get_settings("OIDC_RP_CLIENT_SECRET")
        self.OIDC_RP_SIGN_ALGO = self.get_settings("OIDC_RP_SIGN_ALGO")
        self.OIDC_RP_IDP_SIGN_KEY = None

    def authenticate(self, request, **credentials):
        return None

    get_user = ModelBackend.get_user

    def get_user_permissions(self, user_obj, obj=None):
        return set()

    def get_group_permissions(self, user_obj, obj=None):
        return set()

    def get_all_permissions(self, user_obj, obj=None):
        return set()

    def has_perm(self, user_obj, perm, obj=None):
        return False

    def has_module_perms(self, user_obj, app_label):
        return False

    def sign_in(self, request, *, code: str, nonce: str, code_verifier: str) -> Identity:
        """The verified identity behind an authorization code (the callback's), or raises
        SignInRefused."""
        self.request = request
        self._configure()
        token_request = {
            "client_id": self.OIDC_RP_CLIENT_ID,
            "client_secret": self.OIDC_RP_CLIENT_SECRET,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": absolutify(request, reverse(config.CALLBACK_URL_NAME)),
            "code_verifier": code_verifier,
        }
        try:
            tokens = self.get_token(token_request)
        except requests.HTTPError as error:
            raise SignInRefused("token_exchange_failed", _provider_said(error)) from error
        except (requests.RequestException, ValueError) as error:
            raise SignInRefused("provider_unreachable", str(error)) from error
        id_token = tokens.get("id_token") if isinstance(tokens, dict) else None
        if not isinstance(id_token, str) or not id_token:
            raise SignInRefused("bad_token", "the token answer has no id_token")
        payload = self.verify_token(id_token, nonce=nonce)
        userinfo = self._userinfo(tokens.get("access_token"))
        try:
            return identity_from(payload, userinfo, issuer=self.issuer)
        except ClaimsInvalid as error:
            raise SignInRefused("claims_invalid", str(error)) from error

    def verify_token(self, token, **kwargs):
        """The ID token's claims, once every check passed."""
        nonce = kwargs.get("nonce")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as error:
            raise SignInRefused("bad_token", str(error)) from error
        if header.get("alg") != self.OIDC_RP_SIGN_ALGO:
            raise SignInRefused(
                "unexpected_algorithm",
                f"signed with {header.get('alg')!r}, OIDC_SIGN_ALGO is {self.OIDC_RP_SIGN_ALGO}",
            )
        try:
            key = self.retrieve_matching_jwk(token)
        except (SuspiciousOperation, KeyError, TypeError) as error:
            raise SignInRefused(
                "bad_signature", "no key of the provider's JWKS signed it"
            ) from error
        except jwt.PyJWKError as error:
            raise SignInRefused("bad_signature", f"the provider's key: {error}") from error
        except (requests.RequestException, ValueError) as error:
            raise SignInRefused("provider_unreachable", f"JWKS: {error}") from error
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[self.OIDC_RP_SIGN_ALGO],
                audience=self.OIDC_RP_CLIENT_ID,
                issuer=self.issuer,
                leeway=self.get_settings("OIDC_LEEWAY_SECONDS", 60),
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise SignInRefused("expired", str(error)) from error
        except jwt.InvalidAudienceError as error:
            raise SignInRefused("wrong_audience", _audience(token, error)) from error
        except jwt.InvalidIssuerError as error:
            raise SignInRefused("wrong_issuer", _issuer(token, error)) from error
        except jwt.ImmatureSignatureError as error:
            raise SignInRefused("not_yet_valid", str(error)) from error
        except jwt.MissingRequiredClaimError as error:
            raise SignInRefused("claims_missing", str(error)) from error
        except (jwt.InvalidSignatureError, jwt.DecodeError) as error:
            raise SignInRefused("bad_signature", str(error)) from error
        except jwt.InvalidTokenError as error:
            raise SignInRefused("bad_token", str(error)) from error
        audiences = payload["aud"] if isinstance(payload["aud"], list) else [payload["aud"]]
        # OpenID Connect Core 1.0, 3.1.3.7: with several audiences, azp must be this client.
        if len(audiences) > 1 and payload.get("azp") != self.OIDC_RP_CLIENT_ID:
            raise SignInRefused("wrong_audience", f"several audiences, azp {payload.get('azp')!r}")
        token_nonce = payload.get("nonce")
        if not nonce or not isinstance(token_nonce, str):
            raise SignInRefused("wrong_nonce", "the ID token carries no nonce")
        if not hmac.compare_digest(token_nonce.encode(), nonce.encode()):
            raise SignInRefused("wrong_nonce", "the ID token's nonce is another sign-in's")
        return payload

    def _userinfo(self, access_token) -> dict | None:
        """The userinfo endpoint's answer, when the provider has one (JSON only: a signed
        userinfo answer is not accepted here, and its claims are left out)."""
        if not self.OIDC_OP_USER_ENDPOINT or not access_token:
            return None
        try:
            response = requests.get(
                self.OIDC_OP_USER_ENDPOINT,
                headers={"Authorization": f"Bearer {access_token}"},
                timeout=self.get_settings("OIDC_TIMEOUT"),
            )
            response.raise_for_status()
        except requests.RequestException as error:
            raise SignInRefused("provider_unreachable", f"userinfo: {error}") from error
        if not response.headers.get("content-type", "").lower().startswith("application/json"):
            return None
        try:
            answer = response.json()
        except ValueError as error:
            raise SignInRefused("claims_invalid", "userinfo is not JSON") from error
        return answer if isinstance(answer, dict) else None


def _provider_said(error: requests.HTTPError) -> str:
    response = error.response
    if response is None:
        return str(error)
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}"
    said = str(body.get("error", ""))[:100]
    described = str(body.get("error_description", ""))[:300]
    return f"HTTP {response.status_code}: {said}" + (f" ({described})" if described else "")


def _unverified(token: str) -> dict:
    try:
        return jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return {}


def _audience(token: str, error) -> str:
    return f"{error}: the token is for {_unverified(token).get('aud')!r}"


def _issuer(token: str, error) -> str:
    return f"{error}: the token is from {_unverified(token).get('iss')!r}"
