"""The sign-in page's "Sign in with <name>" button, when single sign-on is on."""

from django.urls import reverse

from pim_portal.sso import config


def sign_in(request) -> dict:
    if not config.enabled():
        return {}
    return {"sso_sign_in": {"name": config.display_name(), "url": reverse("sso:begin")}}
