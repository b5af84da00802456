"""The Provisioning page: SCIM tokens listed, made (the secret shown once) and revoked.

For Global Administrators (provisioning.manage); everyone else is refused, audited.
"""

from datetime import datetime, time, timedelta

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Field, Layout
from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from assignments import authz
from pim_portal.models import AccessToken
from pim_portal.params import positive_int
from pim_portal.scim import tokens

PAGE_SIZE = 25


def _require_manager(request, what: str):
    grants = authz.request_grants(request)
    if not grants.can_manage_provisioning():
        authz.deny(request.user, what=what)
    return grants


class TokenForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=100,
        help_text="The system that will use it, e.g. okta or entra-id. The audit log names "
        "every change it makes after it.",
        error_messages={"required": "Name the token after the system that will use it."},
    )
    expires_on = forms.DateField(
        label="Expires on",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=f"At most {settings.SCIM_TOKEN_MAX_DAYS} days from today. The token stops "
        "working at the start of that day (in your time zone).",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            default = timezone.localdate() + timedelta(days=settings.SCIM_TOKEN_DEFAULT_DAYS)
            self.initial.setdefault("expires_on", default)
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True  # the template's <form> has the token
        self.helper.layout = Layout(Field("name"), Field("expires_on"))

    def expires_at(self) -> datetime:
        day = self.cleaned_data["expires_on"]
        return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def _render(request, form, status=200, created=None):
    tokens_listed = AccessToken.objects.filter(kind=AccessToken.Kind.SCIM).select_related(
        "created_by", "revoked_by"
    )
    page = Paginator(tokens_listed, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "scim/provisioning.html",
        {
            "section": "provisioning",
            "form": form,
            "page_obj": page,
            "tokens": page.object_list,
            "now": timezone.now(),
            "scim_url": request.build_absolute_uri("/scim/v2/"),
            "created": created,
        },
        status=status,
    )


@require_GET
def provisioning(request):
    """The SCIM endpoint's address and its tokens, with the form to make one."""
    _require_manager(request, "view the Provisioning page")
    return _render(request, TokenForm())


@require_http_methods(["POST"])
def token_create(request):
    """Make a token; the page shows its secret this once (never stored, never shown again)."""
    _require_manager(request, "create a SCIM token")
    form = TokenForm(request.POST)
    if form.is_valid():
        try:
            token, secret = tokens.token_create(
                actor=request.user, name=form.cleaned_data["name"], expires_at=form.expires_at()
            )
        except ValidationError as invalid:
            for field, errors in invalid.message_dict.items():
                form.add_error("expires_on" if field == "expires_at" else field, errors)
        else:
            response = _render(request, TokenForm(), created={"token": token, "secret": secret})
            response["Cache-Control"] = "no-store"  # the secret must not stay in a cache
            return response
    messages.error(request, "The token was not created: see the form below.")
    return _render(request, form, status=400)


@require_POST
def token_revoke(request, pk: int):
    _require_manager(request, f"revoke SCIM token {pk}")
    try:
        token = tokens.token_revoke(actor=request.user, token_id=positive_int(pk))
    except ValidationError as invalid:
        messages.error(request, " ".join(invalid.messages))
    else:
        messages.success(request, f"The token {token.name!r} is revoked: it no longer works.")
    return redirect(reverse("scim:provisioning"))
