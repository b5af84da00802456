"""Reads the review pages share: item filters, a reviewer's inbox, an instance's progress.

Each is a fixed number of queries, whatever the number of items; progress is read from the
counts the services keep on the instance.
"""

from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.utils import timezone

from pim_portal.params import clean_text, positive_int
from reviews import authz as review_authz
from reviews.models import Decision, Recommendation, ReviewInstance, ReviewItem

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
    """Instances in progress where the user has items to decide, with their progress: from
    the counts kept on each instance, less the user's own items (which they never decide
    outside self-review). Four small queries: the user's review permissions, the instances,
    the user's groups and their own items."""
    now = timezone.now()
    named = review_authz.named_review_ids(user)
    named_to_them = ReviewItem.objects.filter(reviewer=user).values("instance_id")
    instances = list(
        ReviewInstance.objects.in_progress(now)
        .filter(Q(review_id__in=named) | Q(pk__in=named_to_them))
        .select_related("review")
    )
    own: dict[int, list[tuple]] = {}
    others = [i.pk for i in instances if not i.review.is_self_review]
    if others:
        rows = (
            ReviewItem.objects.filter(instance_id__in=others)
            .filter(review_authz.own_items(user))
            .order_by()
            .values_list("instance_id", "reviewer_id", "decision")
            .annotate(n=Count("pk"))
        )
        for instance_id, *row in rows:
            own.setdefault(instance_id, []).append(row)
    rows = []
    for instance in sorted(instances, key=lambda i: (i.end, i.pk)):
        whole_review = instance.review_id in named

        def theirs(reviewer_id, whole_review=whole_review) -> bool:
            return reviewer_id == user.pk or (whole_review and reviewer_id is None)

        total = decided = 0
        for reviewer_id, _, decision, _, n in item_counts(instance):
            if theirs(reviewer_id):
                total += n
                decided += n if decision != Decision.NOT_REVIEWED else 0
        for reviewer_id, decision, n in own.get(instance.pk, []):
            if theirs(reviewer_id):
                total -= n
                decided -= n if decision != Decision.NOT_REVIEWED else 0
        if total:
            rows.append(
                {
                    "instance": instance,
                    "total": total,
                    "decided": decided,
                    "percent": round(100 * decided / total),
                }
            )
    return rows


COUNTED = ("reviewer_id", "decided_by_id", "decision", "apply_result")


def count_items(instance_id: int) -> list[list]:
    """[[reviewer_id, decided_by_id, decision, apply_result, count], ...] of an instance's
    items, counted now (the services keep it on the instance: `ReviewInstance.item_counts`)."""
    rows = (
        ReviewItem.objects.filter(instance_id=instance_id)
        .order_by()
        .values_list(*COUNTED)
        .annotate(n=Count("pk"))
    )
    return sorted(([*row] for row in rows), key=lambda row: [str(value) for value in row])


def item_counts(instance: ReviewInstance) -> list[list]:
    """The counts kept on the instance; counted here only for one that has none kept."""
    return instance.item_counts or count_items(instance.pk)


def totals(instance: ReviewInstance, field: str) -> dict[str, int]:
    """How many of the instance's items have each value of `decision` or `apply_result`."""
    at = COUNTED.index(f"{field}")
    found: dict[str, int] = {}
    for row in item_counts(instance):
        found[row[at]] = found.get(row[at], 0) + row[-1]
    return found


def reviewer_item_count(instance: ReviewInstance, user, named: set[int]) -> int:
    """How many items the user decides (`review_authz.decidable_items`): the kept counts of
    the items named to them (and to every reviewer, for a reviewer of the whole review), less
    their own, which they never decide outside self-review (one query on the principal)."""
    whole_review = instance.review_id in named
    total = sum(
        row[-1]
        for row in item_counts(instance)
        if row[0] == user.pk or (whole_review and row[0] is None)
    )
    if instance.review.is_self_review:
        return total
    theirs = Q(reviewer=user) | Q(reviewer__isnull=True) if whole_review else Q(reviewer=user)
    return total - instance.items.filter(theirs).filter(review_authz.own_items(user)).count()


def instance_progress(instance: ReviewInstance, *, by_reviewer: bool = True) -> dict:
    """Decided / total, by decision and (`by_reviewer`, for those who see every item) by
    reviewer: the named reviewer of an item, or who decided it. From the counts kept on the
    instance; `by_reviewer` reads the people's names (one query)."""
    by_decision = totals(instance, "decision")
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
    """Items and decided items per reviewer, from the kept counts; the names come from one
    query for the few people found."""
    rows = item_counts(instance)
    ids = {row[0] for row in rows} | {row[1] for row in rows}
    names = dict(
        get_user_model().objects.filter(pk__in=ids - {None}).values_list("pk", "display_name")
    )
    by_reviewer: dict[str, list[int]] = {}
    for reviewer_id, decided_by_id, decision, _, n in rows:
        if reviewer_id:
            name = names.get(reviewer_id, "A deleted account")
        elif decided_by_id:
            name = names.get(decided_by_id, "A deleted account")
        else:
            name = "The review's reviewers (not decided yet)"
        counts = by_reviewer.setdefault(name, [0, 0])
        counts[0] += n
        counts[1] += n if decision != Decision.NOT_REVIEWED else 0
    people = sorted(names.items(), key=lambda pair: (pair[1] or "").lower())
    return {
        "by_reviewer": sorted((name, t, d) for name, (t, d) in by_reviewer.items()),
        "people": people,
    }


def item_people(instance: ReviewInstance) -> list[tuple[int, str]]:
    """(id, name) of everyone named on an item or who decided one, by name: one query."""
    return _by_reviewer(instance)["people"]


def review_instances(review):
    return review.instances.with_progress().order_by("-number")
