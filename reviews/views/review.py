"""Reviewing one occurrence of an access review: its items to decide, its results, their CSV
export and applying them by hand.

Every view loads the instance through reviews.authz.instance_for_viewer (the instance page
through its two steps, instance_in_reach and require_viewer), so someone who is neither a
reviewer of it nor allowed to see its review gets a 404 (audited) and ids do not leak.
Decisions and applying go through reviews.services, which check the actor again at their door.
"""

import csv

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from assignments import authz
from assignments.queries import attach_people
from assignments.views.export import _csv_cell, _Echo, _utc
from audit import log as audit_log
from pim_portal.pagination import CountedPaginator
from pim_portal.params import positive_int
from reviews import authz as review_authz
from reviews import queries, services
from reviews.models import (
    REVIEWER_DECISIONS,
    ApplyResult,
    Decision,
    InstanceStatus,
    Recommendation,
    ReviewInstance,
)

PAGE_SIZE = 25
REASON_MAX_LENGTH = 2000

# Self-review asks principals about their own access, in their words.
SELF_REVIEW_WORDS = {
    Decision.APPROVE: "Keep access",
    Decision.DENY: "Give up access",
    Decision.DONT_KNOW: "Don't know",
    Decision.NOT_REVIEWED: "Not reviewed",
}
DECISION_COLOURS = {
    Decision.APPROVE: "success",
    Decision.DENY: "danger",
    Decision.DONT_KNOW: "warning",
    Decision.NOT_REVIEWED: "secondary",
}
APPLY_COLOURS = {
    ApplyResult.REMOVED: "danger",
    ApplyResult.KEPT: "success",
    ApplyResult.ALREADY_ENDED: "secondary",
    ApplyResult.FAILED: "warning",
    ApplyResult.NOT_APPLIED: "light",
}


class DecisionForm(forms.Form):
    """A decision with its reason, for the checked items or every item matching the filters."""

    decision = forms.ChoiceField(
        choices=[(d.value, d.label) for d in REVIEWER_DECISIONS],
        error_messages={"required": "Choose Approve, Deny or Don't know."},
    )
    reason = forms.CharField(required=False, max_length=REASON_MAX_LENGTH, strip=True)
    all_matching = forms.BooleanField(required=False)


def _decision_words(instance: ReviewInstance) -> dict[str, str]:
    if instance.review.is_self_review:
        return SELF_REVIEW_WORDS
    return {value: label for value, label in Decision.choices}


def _recommendation_words(instance: ReviewInstance) -> dict[str, str]:
    words = {value: label for value, label in Recommendation.choices}
    if instance.review.is_self_review:
        words[Recommendation.APPROVE] = SELF_REVIEW_WORDS[Decision.APPROVE]
        words[Recommendation.DENY] = SELF_REVIEW_WORDS[Decision.DENY]
    return words


def _kept_query(data: QueryDict) -> str:
    """The filters and page of the page a form came from (only those: no open redirect)."""
    kept = QueryDict(mutable=True)
    for name in (*queries.ITEM_FILTERS, "page"):
        value = data.get(name)
        if value:
            kept[name] = value
    return kept.urlencode()


def _back(request, instance: ReviewInstance, name: str = "reviews:instance_detail"):
    query = _kept_query(QueryDict(request.POST.get("query", "")))
    url = reverse(name, args=[instance.pk])
    return redirect(f"{url}?{query}" if query else url)


def _filter_context(instance: ReviewInstance, people, filters: dict, words: dict) -> dict:
    """The filter menus: decisions, recommendations and, for those who see every item
    (`people` given: reviewers and deciders, read by the progress query), the reviewers."""
    return {
        "filters": filters,
        "filtered": bool(filters),
        "decision_options": [(value, words[value]) for value, _ in Decision.choices],
        "recommendation_options": list(_recommendation_words(instance).items()),
        "reviewer_options": people or [],
    }


def _page(request, instance: ReviewInstance, rows, count: int | None = None):
    """A page of the rows, read; `count` when it is known already (every item, unfiltered)."""
    shown = rows.with_related().order_by("principal_name", "pk")
    if count is None:
        paginator = Paginator(shown, PAGE_SIZE)
    else:
        paginator = CountedPaginator(shown, PAGE_SIZE, count)
    page = paginator.get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    queries.attach_related(page.object_list, instance.review)
    return page


def _label_rows(page, instance: ReviewInstance) -> None:
    words = _decision_words(instance)
    recommendation_words = _recommendation_words(instance)
    for item in page.object_list:
        item.decision_label = words[item.decision]
        item.decision_colour = DECISION_COLOURS.get(item.decision, "secondary")
        item.recommendation_label = recommendation_words.get(item.recommendation, "")
        item.apply_colour = APPLY_COLOURS.get(item.apply_result, "light")


@require_GET
def instance_detail(request, pk: int):
    """The items of an instance: a reviewer's to decide, or every item, read-only, for those
    who may see the review. Progress for everyone; progress by reviewer for those who see all."""
    grants = authz.request_grants(request)
    instance, sees_all, named = review_authz.instance_in_reach(request.user, pk, grants)
    # Who may not see the whole review is let in only as a reviewer: see below.
    is_reviewer = not sees_all or queries.decides_any(instance, request.user, named)
    if is_reviewer:
        rows = review_authz.decidable_items(request.user, instance, named)
    else:
        rows = instance.items.all()
    filters = queries.item_filters(request.GET)
    progress = queries.instance_progress(instance, by_reviewer=sees_all)
    known = None
    if not filters:
        known = (
            queries.reviewer_item_count(instance, request.user, named)
            if is_reviewer
            else progress["total"]
        )
    page = _page(request, instance, queries.filtered_items(rows, filters), known)
    if not sees_all:
        # Rows on their page are items they decide; only an empty page asks whether any is.
        review_authz.require_viewer(request.user, pk, bool(page.object_list) or rows.exists())
    if not is_reviewer:  # the Reviewer column
        attach_people(page.object_list, "reviewer")
    _label_rows(page, instance)
    now = timezone.now()
    is_open = instance.is_open(now)
    words = _decision_words(instance)
    review = instance.review
    return render(
        request,
        "reviews/instance_detail.html",
        {
            "section": "reviews",
            "instance": instance,
            "review": review,
            "page_obj": page,
            "items": page.object_list,
            "matching_count": page.paginator.count,
            "is_reviewer": is_reviewer,
            "sees_all": sees_all,
            "is_open": is_open,
            "can_decide": is_reviewer and is_open,
            "not_started": now < instance.start,
            "progress": progress,
            "progress_by_decision": [
                (value, words[value], progress["by_decision"].get(value, 0), colour)
                for value, colour in DECISION_COLOURS.items()
            ],
            "decision_buttons": [
                (d, words[d])
                for d in REVIEWER_DECISIONS
                if not (review.is_self_review and d == Decision.DONT_KNOW)
            ],
            "query": _kept_query(request.GET),
            "reason_max_length": REASON_MAX_LENGTH,
            **_filter_context(instance, progress["people"] if sees_all else None, filters, words),
        },
    )


def _item_ids(data: QueryDict) -> list[int]:
    return [pk for pk in (positive_int(value) for value in data.getlist("item")) if pk]


@require_POST
def decide(request, pk: int):
    """Record one decision, with its reason, for the checked items or every item of the
    reviewer's that matches the filters."""
    grants = authz.request_grants(request)
    instance, _ = review_authz.instance_for_reviewer(request.user, pk, grants)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for message in errors:
                messages.error(request, message)
        return _back(request, instance)
    data = form.cleaned_data
    item_ids, filters = None, None
    if data["all_matching"]:
        # The filters of the page the form was on (its own "decision" is the button's).
        filters = queries.item_filters(QueryDict(request.POST.get("query", "")))
    else:
        item_ids = _item_ids(request.POST)
        if not item_ids:
            messages.error(request, "Select the items to decide, or all that match the filter.")
            return _back(request, instance)
    try:
        count = services.items_decide(
            actor=request.user,
            instance=instance,
            decision=data["decision"],
            reason=data["reason"],
            item_ids=item_ids,
            filters=filters,
        )
    except ValidationError as refused:
        for message in refused.messages:
            messages.error(request, message)
        return _back(request, instance)
    if count:
        messages.success(request, f"{count} decision{'' if count == 1 else 's'} recorded.")
    else:
        messages.info(request, "No item of yours matches these filters: nothing was recorded.")
    return _back(request, instance)


@require_POST
def accept_recommendations(request, pk: int):
    """Take the recommendation of every item of the reviewer's that has one."""
    grants = authz.request_grants(request)
    instance, _ = review_authz.instance_for_reviewer(request.user, pk, grants)
    try:
        count = services.items_accept_recommendations(actor=request.user, instance=instance)
    except ValidationError as refused:
        for message in refused.messages:
            messages.error(request, message)
        return _back(request, instance)
    if count:
        messages.success(
            request,
            f"Recommendations accepted: {count} decision{'' if count == 1 else 's'} recorded.",
        )
    else:
        messages.info(request, "No item of yours has a recommendation to accept.")
    return _back(request, instance)


def _result_rows(request, instance: ReviewInstance, sees_all: bool, named: set[int]):
    if sees_all:
        return instance.items.all()
    return review_authz.decidable_items(request.user, instance, named)


def _totals(instance, rows, sees_all: bool, field: str, choices) -> list[tuple[str, str, int]]:
    """How many items have each value of the field: from the instance's kept counts for those
    who see every item, counted for a reviewer who sees theirs."""
    if sees_all:
        counts = queries.totals(instance, field)
    else:
        counts = dict(rows.order_by().values_list(field).annotate(n=Count("pk")))
    return [(value, label, counts.get(value, 0)) for value, label in choices]


@require_GET
def results(request, pk: int):
    """Every item with its decision, reviewer, reason and whether it was applied (a reviewer
    who may not see the whole review sees the items they decide)."""
    grants = authz.request_grants(request)
    instance, sees_all, named = review_authz.instance_for_viewer(request.user, pk, grants)
    rows = _result_rows(request, instance, sees_all, named)
    filters = queries.item_filters(request.GET)
    decisions = _totals(instance, rows, sees_all, "decision", Decision.choices)
    known = sum(n for _, _, n in decisions) if sees_all and not filters else None
    page = _page(request, instance, queries.filtered_items(rows, filters), known)
    _label_rows(page, instance)
    words = _decision_words(instance)
    review = instance.review
    status = instance.status_at()
    return render(
        request,
        "reviews/results.html",
        {
            "section": "reviews",
            "instance": instance,
            "review": review,
            "page_obj": page,
            "items": page.object_list,
            "sees_all": sees_all,
            "is_open": instance.is_open(),
            "decision_totals": [
                (value, words[value], n, DECISION_COLOURS[value]) for value, _, n in decisions
            ],
            "apply_totals": [
                (value, label, n, APPLY_COLOURS[value])
                for value, label, n in _totals(
                    instance, rows, sees_all, "apply_result", ApplyResult.choices
                )
            ],
            "can_apply": status == InstanceStatus.COMPLETED
            and review_authz.may_manage(grants, review),
            **_filter_context(
                instance, queries.item_people(instance) if sees_all else None, filters, words
            ),
        },
    )


CSV_COLUMNS = [
    "principal",
    "type",
    "via group",
    "role",
    "scope",
    "kind",
    "assignment end",
    "last activation",
    "last sign-in",
    "recommendation",
    "recommendation reason",
    "decision",
    "reviewer",
    "reason",
    "decided at",
    "defaulted",
    "apply result",
    "apply note",
    "applied at",
]
_ROW_FIELDS = (
    "principal_name",
    "principal_user_id",
    "principal_group__name",
    "role__name",
    "scope__path",
    "kind",
    "assignment_end",
    "last_activation_at",
    "last_sign_in_at",
    "recommendation",
    "recommendation_reason",
    "decision",
    "decided_by_name",
    "reason",
    "decided_at",
    "defaulted",
    "apply_result",
    "apply_note",
    "applied_at",
)


def _csv_lines(rows):
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    # iterator(): rows go out as the database sends them, in constant memory.
    for row in rows.values(*_ROW_FIELDS).iterator(chunk_size=2000):
        is_user = row["principal_user_id"] is not None
        group = row["principal_group__name"] or ""
        yield writer.writerow(
            [
                _csv_cell(value)
                for value in (
                    row["principal_name"],
                    "User" if is_user else "Group",
                    group if is_user else "",
                    row["role__name"],
                    row["scope__path"],
                    row["kind"],
                    _utc(row["assignment_end"]),
                    _utc(row["last_activation_at"]),
                    _utc(row["last_sign_in_at"]),
                    row["recommendation"],
                    row["recommendation_reason"],
                    row["decision"],
                    row["decided_by_name"],
                    row["reason"],
                    _utc(row["decided_at"]),
                    "yes" if row["defaulted"] else "no",
                    row["apply_result"] or "not_applied",
                    row["apply_note"],
                    _utc(row["applied_at"]),
                )
            ]
        )


@require_GET
def results_export(request, pk: int):
    """The results as CSV, streamed, for those who may see the whole review. The read is
    audited before the first row leaves."""
    grants = authz.request_grants(request)
    instance, sees_all, _ = review_authz.instance_for_viewer(request.user, pk, grants)
    if not sees_all:
        authz.deny(request.user, what=f"export access review instance {pk}", not_found=True)
    rows = instance.items.order_by("principal_name", "pk")
    count = rows.count()
    audit_log.record(
        action="pim.review.exported",
        actor=request.user,
        target=instance.review,
        message=f"{count} review result{'' if count == 1 else 's'} of {instance} exported as CSV.",
    )
    response = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv; charset=utf-8")
    filename = f"access-review-{instance.review_id}-{instance.number}-results.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_POST
def apply(request, pk: int):
    """Apply the results of an ended instance by hand: remove the denied assignments."""
    grants = authz.request_grants(request)
    instance, _, _ = review_authz.instance_for_viewer(request.user, pk, grants)
    review_authz.require_manage(request.user, instance.review, grants)
    try:
        outcome = services.instance_apply(actor=request.user, instance=instance)
    except ValidationError as refused:
        for message in refused.messages:
            messages.error(request, message)
        return _back(request, instance, "reviews:results")
    summary = (
        f"Results applied: {outcome.removed} removed, {outcome.kept} kept, "
        f"{outcome.already_ended} had already ended, {outcome.failed} failed."
    )
    level = messages.WARNING if outcome.failed else messages.SUCCESS
    messages.add_message(request, level, summary)
    for message in outcome.messages:
        messages.add_message(request, level, message)
    return _back(request, instance, "reviews:results")
