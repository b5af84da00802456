"""Reads the review pages share: item filters, a reviewer's inbox, an instance's progress.

Each is a fixed number of queries, whatever the number of items.
"""

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


def instance_progress(instance: ReviewInstance) -> dict:
    """Decided / total, by decision and by reviewer (the named reviewer of an item, or who
    decided it). Two queries."""
    by_decision = dict(
        instance.items.order_by()
        .values_list("decision")
        .annotate(n=Count("pk"))
        .values_list("decision", "n")
    )
    total = sum(by_decision.values())
    decided = total - by_decision.get(Decision.NOT_REVIEWED, 0)
    reviewers = (
        instance.items.order_by()
        .values("reviewer_id", "reviewer__display_name", "decided_by_id", "decided_by_name")
        .annotate(total=Count("pk"), decided=Count("pk", filter=~Q(decision=Decision.NOT_REVIEWED)))
    )
    by_reviewer: dict[str, list[int]] = {}
    people: dict[int, str] = {}  # everyone named on an item or who decided one: the filter menu
    for row in reviewers:
        if row["reviewer_id"]:
            name = row["reviewer__display_name"]
            people[row["reviewer_id"]] = name
        else:
            name = row["decided_by_name"] or "The review's reviewers (not decided yet)"
        if row["decided_by_id"]:
            people[row["decided_by_id"]] = row["decided_by_name"]
        counts = by_reviewer.setdefault(name, [0, 0])
        counts[0] += row["total"]
        counts[1] += row["decided"]
    return {
        "total": total,
        "decided": decided,
        "percent": round(100 * decided / total) if total else 100,
        "by_decision": {d: by_decision.get(d, 0) for d in Decision.values},
        "by_reviewer": sorted((name, t, d) for name, (t, d) in by_reviewer.items()),
        "people": sorted(people.items(), key=lambda pair: (pair[1] or "").lower()),
    }


def item_people(instance: ReviewInstance) -> list[tuple[int, str]]:
    """(id, name) of everyone named on an item or who decided one, by name: one query."""
    rows = (
        instance.items.order_by()
        .values_list("reviewer_id", "reviewer__display_name", "decided_by_id", "decided_by_name")
        .distinct()
    )
    people: dict[int, str] = {}
    for reviewer_id, reviewer_name, decider_id, decider_name in rows:
        if reviewer_id:
            people[reviewer_id] = reviewer_name
        if decider_id:
            people[decider_id] = decider_name
    return sorted(people.items(), key=lambda pair: (pair[1] or "").lower())


def review_instances(review):
    return review.instances.with_progress().order_by("-number")
