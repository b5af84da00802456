from base64 import b32encode

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET

from audit import log as audit_log
from pim_portal import mfa
from pim_portal.forms import TOTPConfirmForm


def _safe_next(request, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback


def mfa_enroll(request):
    """Enrol an authenticator app: scan the QR code, confirm with one code, go back."""
    next_url = _safe_next(request, "dashboard")
    enrolled = mfa.has_device(request.user)
    device = mfa.pending_device(request.user)
    form = TOTPConfirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["code"].strip()):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            audit_log.record(
                action="pim.security.mfa_enrolled", actor=request.user, target=request.user
            )
            messages.success(request, "Your authenticator app is set up.")
            return redirect(next_url)
        form.add_error("code", "That code is not right. Check the time on your phone and retry.")
    return render(
        request,
        "pim_portal/mfa_enroll.html",
        {
            "form": form,
            "device": device,
            "qr_svg": mfa.qr_svg(device),
            "secret": b32encode(device.bin_key).decode(),
            "enrolled": enrolled,
            "next": next_url,
        },
    )


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
