"""The API under `/api/v1/` (token-authenticated: not portal pages, so no sign-in redirect and
no URL names in the page permission matrix) and the API token pages under `/account/tokens/`.

Included at the root by pim_portal/urls.py. A later version of the API goes under its own
prefix (`api/v2/`) beside this one; the Graph-compatible endpoints extend `views.ApiView`.
"""

from django.contrib.auth.decorators import login_not_required
from django.urls import path, re_path

from assignments.api import pages, views

API_PREFIX = "api/v1/"


def _api(view_class):
    """A DRF view, outside the pages' sign-in rule: the API answers 401, never a redirect."""
    return login_not_required(view_class.as_view())


urlpatterns = [
    path(f"{API_PREFIX}access", _api(views.AccessView)),
    path(f"{API_PREFIX}access/batch", _api(views.AccessBatchView)),
    path(f"{API_PREFIX}openapi.json", _api(views.OpenApiView)),
    re_path(r"^api/", _api(views.NotFoundView)),
    path("account/tokens/", pages.token_list, name="api_tokens"),
    path("account/tokens/new/", pages.token_create, name="api_token_create"),
    path("account/tokens/all/", pages.token_list_all, name="api_tokens_all"),
    path("account/tokens/<int:pk>/revoke/", pages.token_revoke, name="api_token_revoke"),
]
