"""Reads the review pages share: item filters, a reviewer's inbox, an instance's progress.

Each is a fixed number of queries, whatever the number of items.
"""

from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.utils import timezone

from pim_portal.params import clean_text, positive_int
from reviews import authz as review_authz
from reviews.models import Decision, Recommendation, ReviewInstance

ITEM_FILTERS = ("decision", "recommendation", "reviewer", "q")


def item_filters(data) -> dict:
    """The filters of an items list from a query string or form: bad values are dropped."""
    filters = {}
    decision = data.get("decision")
    if decision in Decision.values:
        filters["decision"] = decision
    recommendation = data.get("recommendation")
    if recommendation in Recommendation.values:
        filters["recommendation"] = recommendation
    reviewer = positive_int(data.get("reviewer"))
    if reviewer:
        filters["reviewer"] = reviewer
    text = clean_text(data.get("q"), 100)
    if text:
        filters["q"] = text
    return filters


def filtered_items(items, filters: dict | None):
    filters = filters or {}
    if "decision" in filters:
        items = items.filter(decision=filters["decision"])
    if "recommendation" in filters:
        items = items.filter(recommendation=filters["recommendation"])
    if "reviewer" in filters:
        who = filters["reviewer"]
        items = items.filter(Q(reviewer_id=who) | Q(decided_by_id=who))
    if "q" in filters:
        text = filters["q"]
        items = items.filter(
            Q(principal_name__icontains=text)
            | Q(role__name__icontains=text)
            | Q(scope__name__icontains=text)
        )
    return items


def reviewer_inbox(user) -> list[dict]:
    """Instances in progress where the user has items to decide, with their progress. Three
    queries: the user's review permissions, the counts, the instances."""
    now = timezone.now()
    named = review_authz.named_review_ids(user)
    counts = (
        review_authz.items_of_reviewer(user, named)
        .filter(instance__start__lte=now, instance__end__gt=now)
        .order_by()
        .values("instance_id")
        .annotate(total=Count("pk"), decided=Count("pk", filter=~Q(decision=Decision.NOT_REVIEWED)))
    )
    by_instance = {row["instance_id"]: row for row in counts}
    instances = ReviewInstance.objects.filter(pk__in=list(by_instance)).select_related("review")
    rows = []
    for instance in sorted(instances, key=lambda i: (i.end, i.pk)):
        total, decided = by_instance[instance.pk]["total"], by_instance[instance.pk]["decided"]
        rows.append(
            {
                "instance": instance,
                "total": total,
                "decided": decided,
                "percent": round(100 * decided / total) if total else 100,
            }
        )
    return rows


def instance_progress(instance: ReviewInstance, *, by_reviewer: bool = True) -> dict:
    """Decided / total, by decision and (`by_reviewer`, for those who see every item) by
    reviewer: the named reviewer of an item, or who decided it. One to three queries."""
    by_decision = dict(
        instance.items.order_by()
        .values_list("decision")
        .annotate(n=Count("pk"))
        .values_list("decision", "n")
    )
    total = sum(by_decision.values())
    decided = total - by_decision.get(Decision.NOT_REVIEWED, 0)
    progress = {
        "total": total,
        "decided": decided,
        "percent": round(100 * decided / total) if total else 100,
        "by_decision": {d: by_decision.get(d, 0) for d in Decision.values},
        "by_reviewer": [],
        "people": [],
    }
    if by_reviewer:
        progress.update(_by_reviewer(instance))
    return progress


def _by_reviewer(instance: ReviewInstance) -> dict:
    """Grouped on the two ids alone (a join to users in the grouping cost more than the
    rest of the page); the names come from one query for the few people found."""
    rows = list(
        instance.items.order_by()
        .values("reviewer_id", "decided_by_id")
        .annotate(total=Count("pk"), decided=Count("pk", filter=~Q(decision=Decision.NOT_REVIEWED)))
    )
    ids = {row["reviewer_id"] for row in rows} | {row["decided_by_id"] for row in rows}
    names = dict(
        get_user_model().objects.filter(pk__in=ids - {None}).values_list("pk", "display_name")
    )
    by_reviewer: dict[str, list[int]] = {}
    for row in rows:
        if row["reviewer_id"]:
            name = names.get(row["reviewer_id"], "A deleted account")
        elif row["decided_by_id"]:
            name = names.get(row["decided_by_id"], "A deleted account")
        else:
            name = "The review's reviewers (not decided yet)"
        counts = by_reviewer.setdefault(name, [0, 0])
        counts[0] += row["total"]
        counts[1] += row["decided"]
    people = sorted(names.items(), key=lambda pair: (pair[1] or "").lower())
    return {
        "by_reviewer": sorted((name, t, d) for name, (t, d) in by_reviewer.items()),
        "people": people,
    }


def item_people(instance: ReviewInstance) -> list[tuple[int, str]]:
    """(id, name) of everyone named on an item or who decided one, by name: two queries."""
    return _by_reviewer(instance)["people"]


def review_instances(review):
    return review.instances.with_progress().order_by("-number")
