"""The follow-up of emergency access: every use, one use with all the account did, closing it.

Directory viewers (Privileged Role, Global and Security Administrators, Security and Global
Readers) see them; Privileged Role and Global Administrators close them (emergency.may_close).
"""

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Field, Layout
from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from assignments import authz
from audit.logdisplay import describe
from pim_portal import emergency
from pim_portal.params import choice, positive_int

PAGE_SIZE = 25
# Audit actions whose last word says the attempt was refused, not done.
REFUSED_ENDINGS = ("refused", "failed", "forbidden", "foreign_object", "locked")


class FollowUpCloseForm(forms.Form):
    justification = forms.CharField(
        label="Justification",
        max_length=emergency.JUSTIFICATION_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Say why this use of emergency access was justified."},
        help_text="Required: why the account was used, and that what it did was expected. "
        "The audit log keeps it.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True  # the template's <form> has the token
        self.helper.layout = Layout(Field("justification"))


@require_GET
def use_list(request):
    """Every use of emergency access, open follow-ups first."""
    grants = emergency.require_view_uses(request.user, authz.request_grants(request))
    filters = {
        "status": choice(request.GET.get("status"), emergency.STATUS_FILTERS, ""),
        "account": positive_int(request.GET.get("account")),
    }
    uses = emergency.uses_listed(status=filters["status"], user_id=filters["account"])
    page = Paginator(uses, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "pim_portal/emergency_use_list.html",
        {
            "section": "emergency",
            "page_obj": page,
            "uses": page.object_list,
            "filters": filters,
            "filtered": any(filters.values()),
            "accounts": list(emergency.emergency_accounts()),
            "open_count": emergency.uses_listed(status=emergency.OPEN).count(),
            "can_close": grants.can_manage_directory(),
        },
    )


def _render_detail(request, use, form=None, status: int = 200):
    grants = authz.request_grants(request)
    now = timezone.now()
    events, more = emergency.session_events_page(use, after=request.GET.get("after"), now=now)
    own = use.user_id == request.user.pk
    can_close = use.is_open and emergency.may_close(request.user, use, grants)
    going_on = use.is_open and emergency.session_may_be_going_on(use, now)
    if can_close and form is None:
        form = FollowUpCloseForm()
    return render(
        request,
        "pim_portal/emergency_use_detail.html",
        {
            "section": "emergency",
            "use": use,
            "rows": [
                (event, describe(event.action), event.action.endswith(REFUSED_ENDINGS))
                for event in events
            ],
            "more": more,
            "next_after": events[-1].pk if events else None,
            "paged": bool(positive_int(request.GET.get("after"))),
            "event_count": emergency.session_events(use, now).count(),
            "window_end": emergency.session_end(use, now),
            "going_on": going_on,
            "form": form if can_close else None,
            "own": own,
            "now": now,
        },
        status=status,
    )


@require_GET
def use_detail(request, pk: int):
    """Who, when, from where, and every audit event of the account during the session."""
    use = emergency.use_for_viewer(request.user, pk, authz.request_grants(request))
    return _render_detail(request, use)


@require_POST
def use_close(request, pk: int):
    """Close the follow-up with a justification."""
    grants = authz.request_grants(request)
    use = emergency.use_for_viewer(request.user, pk, grants)
    try:
        emergency.require_may_close(request.user, use, grants)
    except PermissionDenied as refused:
        messages.error(request, str(refused))
        return _render_detail(request, use, status=403)
    form = FollowUpCloseForm(request.POST)
    if form.is_valid():
        try:
            emergency.emergency_use_close(
                request.user,
                use_id=use.pk,
                justification=form.cleaned_data["justification"],
                grants=grants,
            )
        except ValidationError as invalid:
            form.add_error(None, invalid)
        except emergency.FollowUpAlreadyClosed as closed:
            messages.warning(request, str(closed))
            return redirect("emergency:use_detail", pk=use.pk)
        else:
            messages.success(request, f"Follow-up of the emergency access by {use.user} closed.")
            return redirect("emergency:use_detail", pk=use.pk)
    messages.error(request, "The follow-up was not closed: see the form below.")
    return _render_detail(request, use, form=form, status=400)
