"""Approve requests: the inbox, one request's page, decisions one by one and in bulk.

Every view reads through approvals.services, which answers who may see and decide what;
a request the viewer may not see is a 404 (audited), so ids do not leak.
"""

from collections import Counter

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from approvals import services
from approvals.authz import may_decide, request_for_viewer, require_may_decide
from approvals.forms import AdministratorDecisionForm, BulkDecisionForm, DecisionForm
from approvals.timeline import request_timeline
from assignments import authz
from assignments import services as assignment_services
from assignments.models import RequestStatus, Role, RoleRequest, Scope, scope_label
from pim_portal.models import user_label

PAGE_SIZE = 25
BULK_RESULT_KEY = "approvals_bulk_result"


def _next_or(request, fallback: str) -> str:
    target = request.POST.get("next") or ""
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# A filter menu lists at most this many values: those with the most requests (and the one
# chosen). 1,000 pending requests name about as many scopes and requesters; listing them all
# made the page 111 KB of options.
MENU_LIMIT = 100


def _choices(
    model, counts: Counter, selected: int | None, fields: tuple[str, ...], label
) -> tuple[list[tuple[int, str]], int]:
    """((id, label) of a filter menu by label, how many values it leaves out): one query of
    the `fields` that `label(*values)` words (a hundred model instances cost more)."""
    kept = [pk for pk, _ in counts.most_common(MENU_LIMIT) if pk is not None]
    if selected is not None and selected not in kept:
        kept.append(selected)
    rows = model.objects.filter(pk__in=kept).order_by().values_list("pk", *fields)
    options = sorted(((pk, label(*values)) for pk, *values in rows), key=lambda p: p[1].lower())
    return options, max(0, len(counts) - MENU_LIMIT)


def _menus(rows: list[services.InboxRow], filters: dict) -> dict:
    """The role, scope and requester menus of the inbox, from every request in it. Scopes and
    requesters are those of the chosen role's requests, so that choosing a role first narrows
    long menus."""
    roles = Counter(row.role for row in rows)
    narrowed = [row for row in rows if filters["role"] in (None, row.role)]
    menus = {
        "roles": _choices(Role, roles, filters["role"], ("name",), str),
        "scopes": _choices(
            Scope,
            Counter(row.scope for row in narrowed),
            filters["scope"],
            ("name", "kind"),
            scope_label,
        ),
        "requesters": _choices(
            get_user_model(),
            Counter(row.requester for row in narrowed),
            filters["requester"],
            ("display_name", "first_name", "last_name", "username"),
            user_label,
        ),
    }
    return {
        **{name: options for name, (options, _) in menus.items()},
        "more": {name: more for name, (_, more) in menus.items()},
    }


def _matching(rows: list[services.InboxRow], filters: dict) -> list[services.InboxRow]:
    """The requests that match the filters, in the inbox's order."""
    wanted = [(name, value) for name, value in filters.items() if value is not None]
    return [row for row in rows if all(getattr(row, name) == value for name, value in wanted)]


def inbox_filters(data) -> dict:
    return {name: _int_or_none(data.get(name)) for name in services.INBOX_FILTERS}


@require_GET
def inbox(request):
    """Every pending request the viewer may decide, with filters and bulk decisions.

    Menus, counts and pages come from one read of the inbox's requests (kept), the page's
    rows from one more: a constant number of queries, whatever the rows.
    """
    grants = authz.request_grants(request)
    now = timezone.now()
    filters = inbox_filters(request.GET)
    filtered = any(value is not None for value in filters.values())
    # One read of every request in the inbox (six small columns) gives the menus, the counts
    # and the page's ids, in order; the page then reads its own 25 requests by id. The rows
    # and the menus drawn from them are kept until a request, a decision or role settings are
    # written, or an approval deadline passes (services.kept_inbox).
    inbox = services.kept_inbox(request.user, grants, now)
    rows = inbox.rows
    options = services.kept_for_inbox(
        inbox, f"menus {sorted(filters.items())}", lambda: _menus(rows, filters)
    )
    matching = _matching(rows, filters)
    decidable_count = sum(1 for row in matching if row.can_decide)
    page = Paginator(matching, PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = services.inbox_page(request.user, page.object_list, grants, now)
    if not filtered:
        request._approvals_inbox_count = decidable_count  # the badge
        services.badge_remember(request.user, decidable_count)
    return render(
        request,
        "approvals/inbox.html",
        {
            "section": "approvals",
            "page_obj": page,
            "items": page.object_list,
            "filters": filters,
            "filtered": filtered,
            "options": options,
            "decidable_count": decidable_count,
            "bulk_limit": services.bulk_limit(),
            "bulk_result": request.session.pop(BULK_RESULT_KEY, None),
            "now": now,
        },
    )


def _decision_form_class(role_request: RoleRequest):
    if role_request.action in services.DECIDED_BY_ADMINISTRATORS:
        return AdministratorDecisionForm
    return DecisionForm


def _new_form(role_request: RoleRequest, data=None):
    form_class = _decision_form_class(role_request)
    if form_class is AdministratorDecisionForm:
        return form_class(data, role_request=role_request)
    return form_class(data)


def _render_detail(request, role_request: RoleRequest, form=None, status: int = 200):
    grants = authz.request_grants(request)
    now = timezone.now()
    is_decider = may_decide(request.user, role_request, grants)
    # Read once for the timeline, the count of decisions and whether the viewer decided.
    decisions = list(role_request.approval_decisions.all())
    mine = next((d for d in decisions if d.approver_id == request.user.pk), None)
    conflict = services.conflict_for(role_request, request.user, now, mine=mine)
    can_decide = is_decider and conflict is None
    can_cancel = role_request.status in (
        RequestStatus.PENDING_APPROVAL,
        RequestStatus.SCHEDULED,
    ) and authz.may_cancel(request.user, role_request, grants)
    if can_decide and form is None:
        form = _new_form(role_request)
    return render(
        request,
        "approvals/request_detail.html",
        {
            "section": "approvals",
            "req": role_request,
            "timeline": request_timeline(role_request, now, decisions),
            "decisions": decisions,
            "form": form if can_decide else None,
            "can_decide": can_decide,
            "is_decider": is_decider,
            "is_requester": request.user.pk
            in (role_request.requested_by_id, role_request.principal_user_id),
            "can_cancel": can_cancel,
            "now": now,
        },
        status=status,
    )


@require_GET
def request_detail(request, pk: int):
    """A request's details and timeline, with approve and deny where the viewer may decide."""
    role_request = request_for_viewer(request.user, pk, authz.request_grants(request))
    return _render_detail(request, role_request)


@require_POST
def decide(request, pk: int):
    """Approve or deny one request with a justification."""
    role_request = request_for_viewer(request.user, pk, authz.request_grants(request))
    try:
        require_may_decide(request.user, pk, role_request, authz.request_grants(request))
    except PermissionDenied as refused:
        messages.error(request, str(refused))
        return _render_detail(request, role_request, status=403)
    form = _new_form(role_request, request.POST)
    if not form.is_valid():
        messages.error(request, "The decision was not recorded: see the form below.")
        return _render_detail(request, role_request, form=form, status=400)
    try:
        result = services.decision_record(
            actor=request.user,
            request_id=role_request.pk,
            approve=form.approve,
            justification=form.cleaned_data["justification"],
            grants=authz.request_grants(request),
            **form.changes(),
        )
    except PermissionDenied as refused:
        messages.error(request, str(refused))
        return _render_detail(request, role_request, status=403)
    except assignment_services.RequestConflict as conflict:
        messages.warning(request, str(conflict))
        return redirect("approvals:request_detail", pk=role_request.pk)
    except ValidationError as error:
        for message in error.messages:
            form.add_error(None, message)
        messages.error(request, "The decision was not recorded: see the form below.")
        return _render_detail(request, role_request, form=form, status=400)
    services.badge_forget(request.user)
    level = messages.WARNING if result.outcome == services.Outcome.FAILED else messages.SUCCESS
    messages.add_message(request, level, f"{result.label}: {result.message}")
    return redirect(_next_or(request, reverse("approvals:inbox")))


@require_POST
def bulk_decide(request):
    """Approve or deny the selected requests with one justification; report each outcome."""
    inbox_url = _next_or(request, reverse("approvals:inbox"))
    form = BulkDecisionForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for message in errors:
                messages.error(request, message)
        return redirect(inbox_url)
    taken = ""
    if form.takes_all_matching:
        results, matched = services.decisions_record_matching(
            actor=request.user,
            filters=form.filters,
            approve=form.approve,
            justification=form.cleaned_data["justification"],
            grants=authz.request_grants(request),
        )
        if not results:
            messages.info(request, "No request waiting for you matches these filters.")
            return redirect(inbox_url)
        taken = f"Took {len(results):,} of the {matched:,} matching requests"
        if len(results) < matched:
            taken += f" (at most {services.bulk_limit():,} at once: decide again for the rest)"
        taken += ": "
    else:
        results = services.decisions_record_bulk(
            actor=request.user,
            request_ids=form.request_ids,
            approve=form.approve,
            justification=form.cleaned_data["justification"],
        )
    services.badge_forget(request.user)
    all_done = all(r.outcome in services.SUCCESSFUL_OUTCOMES for r in results)
    level = messages.SUCCESS if all_done else messages.WARNING
    messages.add_message(request, level, taken + services.bulk_summary(results) + ".")
    request.session[BULK_RESULT_KEY] = [
        {
            "request_id": r.request_id,
            "label": r.label if r.outcome != services.Outcome.FORBIDDEN else "",
            "outcome": r.outcome,
            "ok": r.outcome in services.SUCCESSFUL_OUTCOMES,
            "message": r.message,
        }
        for r in results
    ]
    return redirect(inbox_url)


@require_POST
def request_cancel_admin(request, pk: int):
    """Cancel a pending request: its requester, or a Privileged Role / Global Administrator."""
    role_request = request_for_viewer(request.user, pk, authz.request_grants(request))
    try:
        services.request_cancel(actor=request.user, request_id=role_request.pk)
    except PermissionDenied as refused:
        messages.error(request, str(refused))
        return _render_detail(request, role_request, status=403)
    except assignment_services.RequestConflict as conflict:
        messages.warning(request, str(conflict))
        return redirect("approvals:request_detail", pk=role_request.pk)
    messages.success(request, f"Request canceled: {role_request}.")
    return redirect(_next_or(request, reverse("approvals:request_detail", args=[pk])))
