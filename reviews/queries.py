"""Reads the review pages share: item filters, a reviewer's inbox, an instance's progress.

Each is a fixed number of queries, whatever the number of items; progress is read from the
counts the services keep on the instance.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Count, Q
from django.utils import timezone

from assignments.models import Role
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


def named_to(instance: ReviewInstance, user, named: set[int]) -> int:
    """How many items are named to the user, from the kept counts: theirs, and every
    reviewer's for a reviewer of the whole review (their own among them)."""
    whole_review = instance.review_id in named
    return sum(
        row[-1]
        for row in item_counts(instance)
        if row[0] == user.pk or (whole_review and row[0] is None)
    )


def decides_any(instance: ReviewInstance, user, named: set[int]) -> bool:
    """Whether the user decides any of the instance's items, asked of one who sees every item
    anyway, where it chooses between deciding and reading: no query when the kept counts name
    no item to them, as they choose the instances of a reviewer's inbox."""
    if not named_to(instance, user, named):
        return False
    return review_authz.decidable_items(user, instance, named).exists()


def reviewer_item_count(instance: ReviewInstance, user, named: set[int]) -> int:
    """How many items the user decides (`review_authz.decidable_items`): the kept counts of
    the items named to them, less their own, which they never decide outside self-review
    (one query on the principal)."""
    total = named_to(instance, user, named)
    if instance.review.is_self_review:
        return total
    whole_review = instance.review_id in named
    theirs = Q(reviewer=user) | Q(reviewer__isnull=True) if whole_review else Q(reviewer=user)
    return total - instance.items.filter(theirs, review_authz.own_items(user)).count()


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
    ids = ({row[0] for row in rows} | {row[1] for row in rows}) - {None}
    names = {}
    if ids:  # (none named and none decided yet: not even the query to build)
        people = get_user_model().objects.filter(pk__in=ids)
        names = dict(people.values_list("pk", "display_name"))
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


def attach_related(items, review) -> None:
    """Set what a page of items shows besides their scope (joined): the role, from the roles
    of the review, read with it (they cannot change, and its items are of them), and the
    group of each item held through one, from one query, none when no item is. A join of the
    role, and a prefetch_related of the group even with nothing to fetch, cost a page more."""
    roles = {role.pk: role for role in review.roles.all()}
    if missing := {item.role_id for item in items} - roles.keys():
        roles.update(Role.objects.in_bulk(missing))  # not expected, but one query if it were
    wanted = {item.principal_group_id for item in items if item.via_group}
    groups = Group.objects.in_bulk(wanted) if wanted else {}
    for item in items:
        item.role = roles[item.role_id]
        if item.principal_group_id in groups:
            item.principal_group = groups[item.principal_group_id]


def review_instances(review):
    return review.instances.with_progress().order_by("-number")
