import sys
from base64 import b32encode

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import defaults
from django.views.decorators.http import require_GET, require_http_methods

from assignments.authz import deny
from audit import log as audit_log
from pim_portal import authenticators, mfa, signin_mfa
from pim_portal.forms import AuthenticatorAddForm, AuthenticatorRemoveForm
from pim_portal.middleware import database_unavailable_response, is_database_outage
from pim_portal.people import rules as people_rules
from pim_portal.people import services as people_services
from pim_portal.people.forms import ProfileForm

ENROL_SECRET_KEY = "pim_mfa_enrol_secret"  # the session key of the secret being enrolled


def _safe_next(request, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback


@require_http_methods(["GET", "HEAD", "POST"])
def account(request):
    """The user's profile (display name, time zone), how they signed in, and their
    authenticator apps, with names and last use."""
    form = ProfileForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            people_services.profile_update(request.user, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, "Your profile is saved.")
            return redirect("account")
    method = signin_mfa.session_method(request.session)
    done = signin_mfa.session_mfa(request.session)
    return render(
        request,
        "pim_portal/account.html",
        {
            "form": form,
            "provider_owned": people_rules.provider_owned_fields(request.user),
            "signin_method": signin_mfa.METHOD_LABELS.get(method, ""),
            "signin_mfa": None if done is None else signin_mfa.MFA_LABELS.get(done, done),
            "devices": list(mfa.confirmed_devices(request.user)),
            "section": "account",
        },
    )


def mfa_enroll(request):
    """Add an authenticator app: scan the QR code, name it, confirm with its first code.

    The secret waits in the session until confirmed, so opening this page saves no device.
    """
    next_url = _safe_next(request, reverse("account"))
    key = request.session.get(ENROL_SECRET_KEY)
    if not key:
        key = request.session[ENROL_SECRET_KEY] = mfa.new_secret()
    enrolled = mfa.has_device(request.user)
    form = AuthenticatorAddForm(request.POST or None, needs_current_code=enrolled)
    if request.method == "POST" and form.is_valid():
        try:
            authenticators.authenticator_add(user=request.user, key=key, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            del request.session[ENROL_SECRET_KEY]
            messages.success(request, "Your authenticator app is set up.")
            return redirect(next_url)
    device = mfa.unsaved_device(request.user, key)
    return render(
        request,
        "pim_portal/mfa_enroll.html",
        {
            "form": form,
            "key": key,
            "qr_svg": mfa.qr_svg(device),
            "secret": b32encode(device.bin_key).decode(),
            "enrolled": enrolled,
            "next": next_url,
            "section": "account",
        },
    )


def mfa_remove(request, pk: int):
    """Remove one of the user's authenticators, with a current code from any of them."""
    device = mfa.confirmed_devices(request.user).filter(pk=pk).first()
    if device is None:
        deny(request.user, what=f"remove authenticator {pk}", not_found=True)
    form = AuthenticatorRemoveForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            authenticators.authenticator_remove(
                user=request.user, device_id=device.pk, code=form.cleaned_data["code"]
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Authenticator “{device.name}” removed.")
            return redirect("account")
    return render(
        request,
        "pim_portal/mfa_remove.html",
        {"form": form, "device": device, "section": "account"},
    )


def server_error(request):
    """500, except that a lost database answers 503 'not reachable' (handler500)."""
    if is_database_outage(sys.exc_info()[1]):
        return database_unavailable_response()
    return defaults.server_error(request)


@login_not_required
@require_GET
def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


def csrf_failure(request, reason=""):
    """A POST without a valid CSRF token: refused, and audited as a security event."""
    user = getattr(request, "user", None)
    audit_log.record(
        action="pim.security.csrf_failed",
        actor=user if user is not None and user.is_authenticated else None,
        message=f"{request.method} {request.path}: {reason}"[:500],
    )
    return render(
        request,
        "403_csrf.html",
        {"reason": "The form was sent without a valid security token."},
        status=403,
    )
