"""Access reviews at the size of the benchmark's organization: one review of every eligible
assignment of the busy role (about 15,000 at --size large) is created with its snapshot, its
pages are measured like the others, the reviewer approves every item from the instance page's
own form ("all that match"), half of them are then denied, and an administrator applies the
results from the results page. The bulk rows print their time and queries per item."""

import time

from django.db import connection, reset_queries
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from assignments.models import Assignment, AssignmentKind, Role
from reviews import services
from reviews.models import Decision, ReviewInstance
from tests.bench.world import BUSY_ROLE, World

REVIEW_NAME = "Bench review of the busy role"


def _bulk_row(result_type, label: str, viewer: str, status: int, queries, ms: float, items: int):
    per = f"{queries / items:.3f} queries and {ms / items:.2f} ms per item" if items else ""
    return result_type(
        label,
        viewer,
        status,
        queries,
        ms,
        f"{items} items, {ms / 1000:.1f} s in all; {per}",
        flat=False,
        per_item=items,
    )


def _timed(fn):
    from tests.bench.pages import statements

    reset_queries()
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        result = fn()
        ms = (time.perf_counter() - started) * 1000
    return result, statements(queries), ms


def create(world: World, result_type) -> tuple[ReviewInstance, object]:
    busy = Role.objects.get(name=BUSY_ROLE)
    review, queries, ms = _timed(
        lambda: services.review_create(
            actor=world.admin,
            name=REVIEW_NAME,
            roles=[busy],
            assignment_types="eligible",
            reviewer_users=[world.approver],
            duration_days=14,
            require_reason_on_approve=False,
        )
    )
    instance = review.instances.get()
    items = instance.items.count()
    row = _bulk_row(
        result_type, "access review: create with snapshot", "admin", 200, queries, ms, items
    )
    return instance, row


def page_rows(instance: ReviewInstance) -> list[tuple[str, str, str]]:
    detail = reverse("reviews:instance_detail", args=[instance.pk])
    return [
        ("review access", "approver", reverse("reviews:index")),
        ("review access", "admin", reverse("reviews:index")),
        ("access review instance", "approver", detail),
        ("access review instance", "admin", detail),
        ("access review results", "admin", reverse("reviews:results", args=[instance.pk])),
    ]


def approve_all(instance: ReviewInstance, client: Client, result_type):
    """The reviewer's "all N items that match" from the instance page's form."""
    items = instance.items.count()
    data = {"decision": Decision.APPROVE, "reason": "Still needed", "all_matching": "on"}
    response, queries, ms = _timed(
        lambda: client.post(reverse("reviews:decide", args=[instance.pk]), data)
    )
    decided = instance.items.filter(decision=Decision.APPROVE).count()
    row = _bulk_row(
        result_type,
        "access review: approve all that match",
        "approver",
        response.status_code,
        queries,
        ms,
        items,
    )
    row.note = f"{decided} approved; " + row.note
    return row


def apply(world: World, instance: ReviewInstance, client: Client, result_type):
    """Deny every other item (unmeasured), end the instance, apply from the results page."""
    ids = list(instance.items.order_by("pk").values_list("pk", flat=True))[::2]
    services.items_decide(
        actor=world.approver, instance=instance, decision=Decision.DENY, item_ids=ids
    )
    ReviewInstance.objects.filter(pk=instance.pk).update(end=timezone.now())

    def held() -> int:  # in force now: the queryset reads the clock when it is built
        busy = Assignment.objects.in_force().filter(role__name=BUSY_ROLE)
        return busy.filter(kind=AssignmentKind.ELIGIBLE).count()

    count_before = held()
    response, queries, ms = _timed(
        lambda: client.post(reverse("reviews:apply", args=[instance.pk]))
    )
    removed = count_before - held()
    row = _bulk_row(
        result_type,
        "access review: apply (half denied)",
        "admin",
        response.status_code,
        queries,
        ms,
        len(ids),
    )
    row.note = f"{removed} assignments removed; " + row.note
    return row
