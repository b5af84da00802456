"""Review access: the reviewer's inbox, and the administrator's pages of access reviews
(the list, creating one, its page, changing and stopping it).

Reviews are loaded through reviews.authz (review_for_viewer / review_for_manager), so one out
of the viewer's reach is a 404 and ids do not leak; every change goes through
reviews.services, which checks the actor again at its door and writes the audit event.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import OuterRef, Subquery
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from assignments import authz
from assignments.catalog import Perm
from assignments.forms.manage import manageable_roles
from assignments.models import Scope
from pim_portal.humanize import when
from pim_portal.params import clean_text, positive_int
from reviews import authz as review_authz
from reviews import queries, services
from reviews.forms import (
    ReviewCreateForm,
    ReviewEditForm,
    review_summary,
    scope_matches,
    scope_reach,
)
from reviews.models import InstanceStatus, ReviewerType, ReviewInstance

PAGE_SIZE = 25
GET_POST = require_http_methods(["GET", "POST"])
STATUS_COLOURS = {
    InstanceStatus.IN_PROGRESS: "primary",
    InstanceStatus.COMPLETED: "info",
    InstanceStatus.APPLYING: "warning",
    InstanceStatus.APPLIED: "success",
}


def _posted(request):
    """The POST data to bind a form to (even when empty), or None for a GET."""
    return request.POST if request.method == "POST" else None


def _paginate(request, rows):
    return Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))


def _may_see_reviews(grants: authz.Grants) -> bool:
    """Whether the viewer may see some reviews: those who view directory or resource roles
    somewhere, or manage some (an Owner of one subscription sees the reviews there)."""
    return (
        grants.can_manage_anything()
        or grants.can_view_directory()
        or grants.has_anywhere(Perm.VIEW_RESOURCES)
    )


def _with_latest_instance(reviews):
    """Each review with its latest occurrence's id, status and end: one query for a page."""
    latest = ReviewInstance.objects.filter(review=OuterRef("pk")).order_by("-number")
    return reviews.annotate(
        latest_id=Subquery(latest.values("pk")[:1]),
        latest_status=Subquery(latest.values("status")[:1]),
        latest_end=Subquery(latest.values("end")[:1]),
    )


def _state(review, now) -> tuple[str, str]:
    """(words, badge colour) of a review's latest occurrence as the clock reads it: one in
    progress past its end has completed, whatever its bookkeeping says."""
    status = review.latest_status
    if status is None:
        if review.stopped_at is not None:
            return "Stopped", "secondary"
        return ("Scheduled", "light") if review.next_start else ("Not started", "light")
    if status == InstanceStatus.IN_PROGRESS and review.latest_end <= now:
        status = InstanceStatus.COMPLETED
    return InstanceStatus(status).label, STATUS_COLOURS[status]


# Review access ---------------------------------------------------------------------------


@require_GET
def index(request):
    """The viewer's reviews to do, and the access reviews they may see (with New for those
    who may create them). A fixed number of queries, whatever the number of reviews."""
    grants = authz.request_grants(request)
    context = {
        "section": "reviews",
        "inbox": queries.reviewer_inbox(request.user),
        "may_see": _may_see_reviews(grants),
        "can_create": grants.can_manage_anything(),
    }
    if context["may_see"]:
        q = clean_text(request.GET.get("q"))
        reviews = review_authz.reviews_visible(grants, "view")
        if q:
            reviews = reviews.filter(name__icontains=q)
        reviews = (
            _with_latest_instance(reviews)
            .select_related("scope")
            .prefetch_related("roles")
            .order_by("-created_at", "-pk")
        )
        page_obj = _paginate(request, reviews)
        now = timezone.now()
        for review in page_obj:
            review.state, review.state_colour = _state(review, now)
        context.update(page_obj=page_obj, q=q)
    return render(request, "reviews/index.html", context)


# Create ----------------------------------------------------------------------------------


@require_GET
def scope_search(request) -> JsonResponse:
    """GET ?q=<letters>: at most 20 scopes where the viewer may review resource roles, for
    the scope picker of the form (static/js/scope-picker.js)."""
    grants = authz.require_manage_anything(
        request.user, authz.request_grants(request), what="search scopes for access reviews"
    )
    return JsonResponse(scope_matches(grants, clean_text(request.GET.get("q"), max_length=100)))


def _create_initial(request, grants: authz.Grants) -> dict:
    """Preselect ?role= and ?scope= (e.g. from a role's page) when they are in reach."""
    initial: dict = {}
    if grants.can_manage_directory():
        initial["scope"] = Scope.objects.root().pk
    role_id = positive_int(request.GET.get("role"))
    if role_id and manageable_roles(grants).filter(pk=role_id).exists():
        initial["roles"] = [role_id]
    scope_id = positive_int(request.GET.get("scope"))
    if scope_id and scope_reach(grants).filter(pk=scope_id).exists():
        initial["scope"] = scope_id
    return initial


@GET_POST
def review_create(request):
    grants = authz.require_manage_anything(
        request.user, authz.request_grants(request), what="create access reviews"
    )
    time_zone = getattr(request.user, "time_zone", "") or "UTC"
    initial = _create_initial(request, grants) if request.method == "GET" else {}
    form = ReviewCreateForm(_posted(request), grants=grants, time_zone=time_zone, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            review = services.review_create(
                actor=request.user, time_zone=time_zone, **form.review_values()
            )
        except ValidationError as error:
            form.add_error(None, error.messages)
        else:
            if review.occurrences:
                started = "its first occurrence has started"
            else:
                started = f"it starts at {when(review.next_start)}"
            messages.success(request, f"Access review “{review.name}” created: {started}.")
            return redirect("reviews:review_detail", pk=review.pk)
    return render(
        request,
        "reviews/review_form.html",
        {
            "section": "reviews",
            "form": form,
            "title": "New access review",
            "intro": "Ask reviewers to confirm or remove every assignment of the chosen roles, "
            "once or on a schedule.",
            "time_zone": time_zone,
        },
    )


# One review ------------------------------------------------------------------------------


@require_GET
def review_detail(request, pk: int):
    grants = authz.request_grants(request)
    review = review_authz.review_for_viewer(request.user, pk, grants)
    users, groups = services.reviewers_of(review)
    page_obj = _paginate(request, queries.review_instances(review))
    now = timezone.now()
    for instance in page_obj:
        status = instance.status_at(now)
        instance.state = InstanceStatus(status).label
        instance.state_colour = STATUS_COLOURS[status]
        total = instance.total_items
        instance.percent = round(100 * instance.decided_items / total) if total else 100
    can_manage = review_authz.may_manage(grants, review)
    running = review.instances.in_progress(now).exists() if can_manage else False
    return render(
        request,
        "reviews/review_detail.html",
        {
            "section": "reviews",
            "review": review,
            "roles": list(review.roles.all()),
            "summary": review_summary(review),
            "reviewer_users": users,
            "reviewer_groups": groups,
            "reviewers_label": "Fallback reviewers"
            if review.reviewer_type == ReviewerType.MANAGER
            else "Reviewers",
            "page_obj": page_obj,
            "can_manage": can_manage,
            "can_stop": can_manage
            and review.stopped_at is None
            and (review.next_start is not None or running),
        },
    )


@GET_POST
def review_edit(request, pk: int):
    grants = authz.request_grants(request)
    review = review_authz.review_for_manager(request.user, pk, grants)
    form = ReviewEditForm(_posted(request), review=review, reviewers=services.reviewers_of(review))
    if request.method == "POST" and form.is_valid():
        try:
            review = services.review_update(actor=request.user, review=review, **form.changes())
        except ValidationError as error:
            form.add_error(None, error.messages)
        else:
            messages.success(request, f"Access review “{review.name}” saved.")
            return redirect("reviews:review_detail", pk=review.pk)
    return render(
        request,
        "reviews/review_form.html",
        {
            "section": "reviews",
            "form": form,
            "review": review,
            "title": f"Change {review.name}",
            "intro": "The roles, scope, principals, kind of reviewer, start, duration and "
            "recurrence of a review are fixed once it exists; the rest may change.",
            "time_zone": review.time_zone,
        },
    )


@GET_POST
def review_stop(request, pk: int):
    grants = authz.request_grants(request)
    review = review_authz.review_for_manager(request.user, pk, grants)
    if request.method == "POST":
        try:
            services.review_stop(actor=request.user, review=review)
        except ValidationError as error:
            for text in error.messages:
                messages.error(request, text)
        else:
            messages.success(
                request, f"Access review “{review.name}” stopped: no further occurrences."
            )
        return redirect("reviews:review_detail", pk=review.pk)
    running = review.instances.in_progress().first()
    return render(
        request,
        "reviews/review_stop.html",
        {"section": "reviews", "review": review, "running": running},
    )
