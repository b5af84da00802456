"""Who calls the API: the owner of the API token in `Authorization: Bearer pim_api_…`.

The only authentication the API takes (REST_FRAMEWORK's DEFAULT_AUTHENTICATION_CLASSES): no
session cookie, so a page open in a browser cannot be made to call it (no CSRF to guard), and
no password. `request.user` is the token's owner, `request.auth` the token; every refusal is a
401 with `WWW-Authenticate: Bearer` (see errors.py).
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from assignments.api import tokens

REALM = "PIM Portal"


class BearerTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        try:
            token = tokens.authenticate(request.headers.get("Authorization"))
        except tokens.TokenRefused as refused:
            # RFC 6750 §3: no token is a bare challenge; a refused one is an "invalid_token".
            if not refused.presented:
                raise exceptions.NotAuthenticated(str(refused)) from None
            raise exceptions.AuthenticationFailed(str(refused)) from None
        return token.owner, token

    def authenticate_header(self, request) -> str:
        return f'Bearer realm="{REALM}"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """The OpenAPI security scheme of BearerTokenAuthentication (drf-spectacular finds it)."""

    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "pim_api_…",
            "description": "An API token (Your account › API tokens). It acts as its owner, "
            "with the permissions the owner holds at each request.",
        }
