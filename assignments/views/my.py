"""Pages for every signed-in user: My roles, activation, My requests.

Each page works on the signed-in user's own rows only: an id that is not theirs is a 404,
audited. The rules (durations, MFA, justification, windows) live in assignments.services.
"""

from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Exists, F, Min, OuterRef, Q
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from assignments import authz, extensions, queries, services
from assignments import counts as assignment_counts
from assignments.forms.my import (
    MAX_BULK,
    ActivateForm,
    JustificationForm,
    activation_items,
    label_for,
    parse_ids,
)
from assignments.models import (
    Assignment,
    AssignmentKind,
    RequestAction,
    RequestStatus,
    Role,
    RoleKind,
    RoleRequest,
    Scope,
)
from assignments.queries import tree_order
from pim_portal import mfa
from pim_portal.humanize import when
from pim_portal.pagination import CountedPaginator
from pim_portal.params import choice, positive_int

PAGE_SIZE = 25
EXPIRED_WINDOW = timedelta(days=30)
TABS = [("eligible", "Eligible"), ("active", "Active"), ("expired", "Expired")]
GET_POST = require_http_methods(["GET", "POST"])


def _my_roles_url(tab: str = "eligible") -> str:
    return f"{reverse('assignments:my_roles')}?tab={tab}"


# --- My roles ----------------------------------------------------------------------------


def _tab_querysets(user, now):
    mine = Assignment.objects.for_user(user)
    return {
        "eligible": mine.eligible().not_ended(now).order_by("role__name", "scope__path", "pk"),
        "active": mine.active().not_ended(now).order_by(F("end").asc(nulls_last=True), "pk"),
        # Ended in the last 30 days; a scheduled activation canceled before it began never was.
        "expired": mine.ended(now)
        .filter(end__gte=now - EXPIRED_WINDOW)
        .exclude(end=F("start"))
        .order_by("-end", "pk"),
    }


def _tab_counts(user, now, at_scope=None) -> dict:
    """How many rows each tab of `_tab_querysets` holds, in one aggregate (the same
    conditions, which a test keeps equal) instead of a COUNT per tab, and `next_change`: the
    first moment after `now` when a row leaves or joins a tab (an end passing, or an end
    leaving the 30 days the Expired tab shows)."""
    mine = Assignment.objects.for_user(user)
    if at_scope is not None:
        mine = mine.filter(role__kind=RoleKind.RESOURCE).at_or_above(at_scope)
    not_ended = Q(end__isnull=True) | (Q(end__gt=now) & Q(end__gt=F("start")))
    expired = Q(end__lte=now, end__gte=now - EXPIRED_WINDOW) & ~Q(end=F("start"))
    counts = mine.aggregate(
        eligible=Count("pk", filter=Q(kind=AssignmentKind.ELIGIBLE) & not_ended),
        active=Count("pk", filter=Q(kind=AssignmentKind.ACTIVE) & not_ended),
        expired=Count("pk", filter=expired),
        next_end=Min("end", filter=Q(end__gt=now)),
        first_expired=Min("end", filter=expired),
    )
    leaves = counts.pop("first_expired")
    changes = [counts.pop("next_end"), leaves + EXPIRED_WINDOW if leaves else None]
    counts["next_change"] = min((moment for moment in changes if moment), default=None)
    return counts


def _kept_tab_counts(user, now, at_scope=None) -> dict:
    """`_tab_counts`, kept (assignments.counts) until it changes or an assignment is written."""
    key = f"my-tabs:{user.pk}:{at_scope.pk if at_scope else ''}"
    return assignment_counts.kept(key, now, lambda: _tab_counts(user, now, at_scope))


def _membership(assignment: Assignment, at: Scope | None) -> tuple[str, str]:
    """(kind, text): direct, via a group, or inherited from a scope above the one viewed."""
    via = assignment.principal_group
    if via is None and assignment.activated_from_id:
        via = assignment.activated_from.principal_group  # activated through group eligibility
    group_text = f"Group {via.name}" if via is not None else ""
    if at is not None and assignment.scope_id != at.pk:
        text = f"Inherited from {assignment.scope.name}"
        return "inherited", f"{text} ({group_text})" if group_text else text
    if assignment.principal_group_id:
        return "group", group_text
    if via is not None:
        return "direct", f"Direct, activated through {group_text.lower()}"
    return "direct", "Direct"


MAX_SCOPE_CHOICES = 200


def _held_scopes(user) -> list[Scope]:
    """The scopes where the user holds a resource role (the first MAX_SCOPE_CHOICES in tree
    order), kept (assignments.counts) until any assignment or group membership is written:
    every tab of My roles offers them, and at a few hundred they cost a few milliseconds."""

    def read() -> dict:
        # The resource roles' ids as a list: joined to the role table instead, PostgreSQL
        # read each resource role's assignments (12,000 of them) to find the user's few.
        resource_roles = Role.objects.filter(kind=RoleKind.RESOURCE).values("pk")
        held = Assignment.objects.for_user(user).filter(role__in_list_of=resource_roles)
        scopes = Scope.objects.filter(pk__in=held.values("scope_id")).order_by(tree_order(), "pk")
        return {"scopes": list(scopes[:MAX_SCOPE_CHOICES]), "next_change": None}

    return list(assignment_counts.kept(f"my-scopes:{user.pk}", timezone.now(), read)["scopes"])


def _scope_filter(request, user):
    """The optional ?scope= filter: resource roles that apply at one scope, inherited or not.

    The scopes offered are those where the user holds a resource role, and the one chosen when
    it lies below one of them; the page's script searches the others (search.my_scope_search),
    so the page does not carry every scope below every assignment.
    """
    choices = _held_scopes(user)
    wanted = positive_int(request.GET.get("scope"))
    selected = next((scope for scope in choices if scope.pk == wanted), None)
    if wanted and selected is None and choices:
        below = Scope.objects.filter(pk=wanted).first()
        if below is not None and any(below.is_at_or_below(scope) for scope in choices):
            selected = below
            choices.append(below)
    return choices, selected


def _activations(user, eligibles, now) -> dict:
    """The activation each eligible row already has going: the one at the eligible scope
    itself if any, else the first."""
    ids = [a.pk for a in eligibles]
    if not ids:
        return {}
    scope_of = {a.pk: a.scope_id for a in eligibles}
    activations: dict = {}
    for activation in (
        Assignment.objects.active()
        .not_ended(now)
        .filter(principal_user=user, activated_from__in=ids)
        .select_related("scope")
        .order_by("start")
    ):
        eligible_id = activation.activated_from_id
        if eligible_id not in activations or activation.scope_id == scope_of[eligible_id]:
            activations[eligible_id] = activation
    return activations


def _with_pending(user, eligibles):
    """Eligible rows annotated with `pending`: an activation request of the user's for it
    waits for approval (a column of the page's own query rather than a query of its own)."""
    waiting = RoleRequest.objects.pending().filter(
        requested_by=user, action=RequestAction.SELF_ACTIVATE, target_assignment=OuterRef("pk")
    )
    return eligibles.annotate(pending=Exists(waiting))


def _entries(user, assignments, tab: str, at_scope, now) -> list[dict]:
    """One row of My roles per assignment, with the actions authz allows on it."""
    activations = _activations(user, assignments, now) if tab == "eligible" else {}
    provisioning = extensions.provisioning_statuses(assignments) if tab != "eligible" else {}
    entries = []
    for assignment in assignments:
        kind, text = _membership(assignment, at_scope)
        activation = activations.get(assignment.pk)
        waiting = getattr(assignment, "pending", False)
        entries.append(
            {
                "assignment": assignment,
                "membership": kind,
                "membership_text": text,
                "upcoming": assignment.is_upcoming(now),
                "activation": activation,
                "pending": waiting,
                "can_activate": tab == "eligible"
                and authz.may_activate(assignment, activation=activation, pending=waiting, now=now),
                "can_deactivate": tab == "active" and authz.may_deactivate(user, assignment),
                "can_extend": tab != "expired" and authz.may_extend(user, assignment, now),
                "can_renew": tab == "expired" and authz.may_renew(user, assignment, now),
                "provisioning": provisioning.get(assignment.pk, ()),
            }
        )
    return entries


@require_GET
def my_roles(request):
    """Eligible, Active and Expired tabs of the signed-in user's roles, with their actions."""
    user = request.user
    now = timezone.now()
    tab = choice(request.GET.get("tab"), dict(TABS), "eligible")
    querysets = _tab_querysets(user, now)
    scope_choices, at_scope = _scope_filter(request, user)
    if at_scope is not None:
        querysets = {
            key: qs.filter(role__kind=RoleKind.RESOURCE).at_or_above(at_scope)
            for key, qs in querysets.items()
        }
    counts = _kept_tab_counts(user, now, at_scope)
    tabs = [(key, label, counts[key]) for key, label in TABS]
    # The viewer's own rows: role and scope joined, the group (and for an activation, the
    # eligible assignment and its group) fetched for the page (see AssignmentQuerySet.for_page).
    rows = (
        querysets[tab]
        .select_related("role", "scope")
        .prefetch_related("principal_group", "activated_from__principal_group")
    )
    if tab == "eligible":
        rows = _with_pending(user, rows)
    page = CountedPaginator(rows, PAGE_SIZE, counts[tab]).get_page(request.GET.get("page"))

    entries = _entries(user, page.object_list, tab, at_scope, now)
    return render(
        request,
        "assignments/my_roles.html",
        {
            "section": "my_roles",
            "tab": tab,
            "tabs": tabs,
            "page_obj": page,
            "entries": entries,
            "scope_choices": scope_choices,
            "scope_options": [(scope.pk, f"{scope} ({scope.path})") for scope in scope_choices],
            "at_scope": at_scope,
            "now": now,
        },
    )


# --- Activate ----------------------------------------------------------------------------


def _outcome_message(outcome, labels: dict) -> tuple[int, str]:
    request = outcome.request
    if request is None:
        label = labels.get(outcome.eligible_id) or f"Eligible assignment {outcome.eligible_id}"
        return messages.ERROR, f"{label}: {' '.join(outcome.errors)}"
    label = label_for(request.role, request.scope)
    if request.status == RequestStatus.PENDING_APPROVAL:
        return messages.INFO, f"{label}: pending approval"
    if request.status == RequestStatus.SCHEDULED:
        return (
            messages.INFO,
            f"{label}: scheduled from {when(request.start)} until {when(request.end)}",
        )
    return messages.SUCCESS, f"{label}: active until {when(request.end)}"


def _errors_on_fields(form, outcomes, labels: dict) -> None:
    """Each refusal on the field it is about; with several roles, each names its role."""
    several = len(outcomes) > 1
    for outcome in outcomes:
        label = labels.get(outcome.eligible_id) or f"Eligible assignment {outcome.eligible_id}"
        for error in outcome.errors:
            field = getattr(error, "field", None)
            if field not in form.fields:
                field = None
            text = f"{label}: {error}" if several or field is None else str(error)
            if form.has_error(field) and field is not None and text in form.errors[field]:
                continue  # one code checked once: one message, not one per role
            form.add_error(field, text)


@GET_POST
def activate(request):
    """Activate one or several eligible assignments (GET ?eligible=<id>&eligible=<id>)."""
    user = request.user
    source = request.POST if request.method == "POST" else request.GET
    ids = parse_ids(source.getlist("eligible"))
    if not ids:
        messages.error(request, "Choose at least one eligible role to activate.")
        return redirect(_my_roles_url())
    if len(ids) > MAX_BULK:
        messages.error(request, f"Activate at most {MAX_BULK} roles at once.")
        return redirect(_my_roles_url())
    items = activation_items(user, ids)
    found = {item.eligible.pk for item in items}
    missing = [pk for pk in ids if pk not in found]
    if missing:
        # Someone else's eligibility (or one no longer in force) is a 404 for GET and POST
        # alike, audited: ids do not leak.
        authz.own_eligible(user, missing[0])
    form = ActivateForm(request.POST if request.method == "POST" else None, items=items)
    # A POST learns of a missing authenticator from the service, without a read of its own.
    if request.method == "GET" and form.requires_mfa and not mfa.has_device(user):
        return _enroll_first(request, ids)

    if request.method == "POST" and form.is_valid():
        arguments = form.activation_input()
        outcomes = services.request_activate_many(actor=user, **arguments)
        if any(services.NO_DEVICE in outcome.errors for outcome in outcomes):
            return _enroll_first(request, ids)
        labels = {item.eligible.pk: item.label for item in items}
        if any(outcome.request is not None for outcome in outcomes):
            for outcome in outcomes:
                messages.add_message(request, *_outcome_message(outcome, labels))
            return redirect(_my_roles_url("active"))
        _errors_on_fields(form, outcomes, labels)
        # A code is good once: do not offer the spent one again.
        form.data = form.data.copy()
        form.data["mfa_code"] = ""
    return render(
        request,
        "assignments/activate.html",
        {"section": "my_roles", "form": form, "items": items},
    )


def _enroll_first(request, ids: list[int]):
    messages.info(request, "Set up an authenticator app first: this role asks for a code.")
    back = f"{reverse('assignments:activate')}?{urlencode([('eligible', i) for i in ids])}"
    return redirect(f"{reverse('mfa_enroll')}?{urlencode({'next': back})}")


@require_POST
def deactivate(request, pk: int):
    """End the user's own activation now."""
    user = request.user
    assignment = authz.own_activation(user, pk)
    try:
        services.request_deactivate(actor=user, assignment_id=assignment.pk)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        label = label_for(assignment.role, assignment.scope)
        messages.success(request, f"{label} is deactivated.")
    return redirect(_my_roles_url("active"))


# --- Extend and renew --------------------------------------------------------------------


def _ask_administrators(request, pk: int, *, renew: bool):
    user = request.user
    assignment = authz.own_assignment(user, pk)
    allowed = (authz.may_renew if renew else authz.may_extend)(user, assignment)
    if request.method != "POST" and not allowed:
        messages.error(
            request,
            "Only your own assignment that ended in the last 30 days can be renewed."
            if renew
            else "Only an assignment that ends within 14 days can be extended.",
        )
        return redirect(_my_roles_url("expired" if renew else "eligible"))
    form = JustificationForm(
        request.POST if request.method == "POST" else None,
        submit_label="Request renewal" if renew else "Request extension",
    )
    if request.method == "POST" and form.is_valid():
        service = services.request_renew if renew else services.request_extend
        try:
            service(
                actor=user,
                assignment_id=assignment.pk,
                justification=form.cleaned_data["justification"],
            )
        except ValidationError as error:
            for message in error.messages:
                form.add_error(None, message)
        else:
            label = label_for(assignment.role, assignment.scope)
            messages.success(
                request,
                f"{label}: your {'renewal' if renew else 'extension'} request waits for an "
                "administrator's decision.",
            )
            return redirect("assignments:my_requests")
    return render(
        request,
        "assignments/my_extend_renew.html",
        {"section": "my_roles", "form": form, "assignment": assignment, "renew": renew},
    )


@GET_POST
def extend_request(request, pk: int):
    """Ask administrators to extend an assignment that ends within 14 days."""
    return _ask_administrators(request, pk, renew=False)


@GET_POST
def renew_request(request, pk: int):
    """Ask administrators to renew an assignment that ended in the last 30 days."""
    return _ask_administrators(request, pk, renew=True)


# --- My requests -------------------------------------------------------------------------


@require_GET
def my_requests(request):
    """The requests about the signed-in user, newest first: theirs, and what administrators
    did to their assignments. What administrators did for others is on the role pages."""
    status = choice(request.GET.get("status"), RequestStatus.values, "")
    # RoleRequest.for_page() but its people: the viewer, and whoever asked, in one query.
    rows = (
        RoleRequest.objects.about(request.user)
        .select_related("role", "scope")
        .prefetch_related("principal_group", "target_assignment", "result_assignment")
    )
    if status:
        rows = rows.with_status(status)
    page = Paginator(rows.order_by("-created_at", "-pk"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    queries.attach_people(page.object_list, "principal_user", "requested_by", known=[request.user])
    return render(
        request,
        "assignments/my_requests.html",
        {
            "section": "my_requests",
            "page_obj": page,
            "status": status,
            "statuses": RequestStatus.choices,
        },
    )


@require_POST
def request_cancel(request, pk: int):
    """Cancel the user's own request pending approval, or a scheduled activation."""
    user = request.user
    role_request = authz.own_request(user, pk)
    try:
        services.request_cancel(actor=user, request_id=role_request.pk)
    except (ValidationError, services.RequestConflict) as error:
        text = " ".join(error.messages) if isinstance(error, ValidationError) else str(error)
        messages.error(request, text)
    else:
        messages.success(request, "The request is canceled.")
    return redirect("assignments:my_requests")
