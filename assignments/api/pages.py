"""The API token pages (`/account/tokens/`): every signed-in user's own tokens, made (the secret
shown once) and revoked; directory administrators (Privileged Role and Global Administrators)
also see every user's tokens (`/account/tokens/all/`) and revoke any.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from assignments import authz
from assignments.api import tokens
from assignments.api.forms import TokenCreateForm, TokenRevokeForm
from pim_portal.params import choice, clean_text

PAGE_SIZE = 25
STATUS_FILTERS = ("usable", "expired", "revoked", "all")


def _page(request, rows):
    return Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))


def _render_own(request, form, *, status: int = 200, created=None):
    page = _page(request, tokens.api_tokens().filter(owner=request.user))
    return render(
        request,
        "api/token_list.html",
        {
            "form": form,
            "page_obj": page,
            "tokens": page.object_list,
            "now": timezone.now(),
            "created": created,
            "can_manage": authz.request_grants(request).can_manage_directory(),
            "api_url": request.build_absolute_uri("/api/v1/"),
            "section": "account",
        },
        status=status,
    )


@require_http_methods(["GET", "HEAD"])
def token_list(request):
    """The viewer's API tokens, with the form to make one."""
    return _render_own(request, TokenCreateForm())


@require_POST
def token_create(request):
    """Make a token acting as the viewer; the page shows its secret this once."""
    form = TokenCreateForm(request.POST)
    if form.is_valid():
        try:
            token, secret = tokens.api_token_create(
                request.user,
                owner=request.user,
                name=form.cleaned_data["name"],
                expires_at=form.expires_at(),
            )
        except ValidationError as invalid:
            for field, problems in invalid.message_dict.items():
                target = {"expires_at": "expires_in_days", "owner": None}.get(field, field)
                form.add_error(target, problems)
        else:
            response = _render_own(
                request, TokenCreateForm(), created={"token": token, "secret": secret}
            )
            response["Cache-Control"] = "no-store"  # the secret must not stay in a cache
            return response
    messages.error(request, "The token was not created: see the form below.")
    return _render_own(request, form, status=400)


@require_http_methods(["GET", "HEAD", "POST"])
def token_revoke(request, pk: int):
    """Confirm, then revoke: the token's owner, or a directory administrator (anyone else
    gets a 404, audited)."""
    token = tokens.token_for_revoker(request.user, pk, authz.request_grants(request))
    own = token.owner_id == request.user.pk
    back = "api_tokens" if own else "api_tokens_all"
    form = TokenRevokeForm(request.POST or None)
    if request.method == "POST":
        try:
            tokens.api_token_revoke(request.user, token=token)
        except ValidationError as refused:
            messages.error(request, " ".join(refused.messages))
        else:
            messages.success(request, f"The token {token.name!r} is revoked: it no longer works.")
        return redirect(back)
    return render(
        request,
        "api/token_revoke.html",
        {"token": token, "own": own, "back": back, "form": form, "now": timezone.now()},
    )


@require_http_methods(["GET", "HEAD"])
def token_list_all(request):
    """Every user's API tokens, for Privileged Role and Global Administrators."""
    if not authz.request_grants(request).can_manage_directory():
        authz.deny(request.user, what="view every user's API tokens")
    now = timezone.now()
    q = clean_text(request.GET.get("q"), 100)
    status = choice(request.GET.get("status"), STATUS_FILTERS, "usable")
    rows = tokens.api_tokens()
    if q:
        rows = rows.filter(
            Q(name__icontains=q)
            | Q(owner__username__icontains=q)
            | Q(owner__display_name__icontains=q)
        )
    if status == "usable":
        rows = rows.filter(revoked_at__isnull=True, expires_at__gt=now)
    elif status == "expired":
        rows = rows.filter(revoked_at__isnull=True, expires_at__lte=now)
    elif status == "revoked":
        rows = rows.filter(revoked_at__isnull=False)
    page = _page(request, rows)
    return render(
        request,
        "api/token_list_all.html",
        {
            "page_obj": page,
            "tokens": page.object_list,
            "now": now,
            "q": q,
            "status": status,
            "section": "account",
        },
    )
