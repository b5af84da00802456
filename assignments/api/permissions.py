"""What every API view asks first, and the owner's grants, computed once per request.

A token holds no permission of its own: what it may read is what its owner holds now, through
the same authorization module as the pages (`assignments.authz`), so an owner who loses a role
loses it in the API at that second.
"""

from rest_framework import permissions

from assignments import authz
from pim_portal.models import AccessToken


class HasApiToken(permissions.BasePermission):
    """A usable API token of an active owner (BearerTokenAuthentication checked it; this holds
    should another authentication class ever be added by mistake)."""

    message = "An API token is required."

    def has_permission(self, request, view) -> bool:
        token = request.auth
        user = request.user
        return (
            isinstance(token, AccessToken)
            and token.kind == AccessToken.Kind.API
            and user is not None
            and user.is_active
            and token.owner_id == user.pk
        )


def api_grants(request) -> authz.Grants:
    """The token owner's grants at this request (one query, kept on the request)."""
    if not hasattr(request, "_pim_api_grants"):
        request._pim_api_grants = authz.grants_for(request.user)
    return request._pim_api_grants
