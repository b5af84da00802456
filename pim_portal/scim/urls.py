"""The SCIM endpoint (`/scim/v2/...`) and the Provisioning page (`/provisioning/`)."""

from django.urls import path, re_path

from pim_portal.scim import api, views

app_name = "scim"

urlpatterns = [
    re_path(r"^scim/v2/?$", api.endpoint),  # token-authenticated: not a portal page
    re_path(r"^scim/v2/(?P<path>.+)$", api.endpoint),
    path("provisioning/", views.provisioning, name="provisioning"),
    path("provisioning/tokens/", views.token_create, name="token_create"),
    path("provisioning/tokens/<int:pk>/revoke/", views.token_revoke, name="token_revoke"),
]
