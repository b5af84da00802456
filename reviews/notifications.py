"""Mail about access reviews: django-q2 tasks queued with ids (`pim_portal.jobs.enqueue`) by the
change they report; a worker sends them, reading fresh rows."""

from collections import Counter

from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.urls import reverse

from pim_portal.mail import absolute_url, send_templated_mail
from reviews import authz as review_authz
from reviews.models import (
    REVIEW_PERMISSION,
    ApplyResult,
    Decision,
    ReviewInstance,
)


def _instance(instance_id: int) -> ReviewInstance | None:
    return (
        ReviewInstance.objects.select_related("review__created_by").filter(pk=instance_id).first()
    )


def _link(name: str, instance: ReviewInstance) -> str:
    return absolute_url(reverse(name, args=[instance.pk]))


def reviewer_workload(instance: ReviewInstance, *, undecided_only: bool) -> dict:
    """{reviewer: how many items they have to decide}: named reviewers of items, and the
    review's reviewers (users and members of groups) for the items without one."""
    items = instance.items.undecided() if undecided_only else instance.items.all()
    named = dict(
        items.filter(reviewer__isnull=False)
        .order_by()
        .values_list("reviewer")
        .annotate(n=Count("pk"))
        .values_list("reviewer", "n")
    )
    users = get_user_model().objects.filter(is_active=True)
    workload: Counter = Counter()
    for user in users.filter(pk__in=list(named)):
        workload[user] += named[user.pk]
    if items.filter(reviewer__isnull=True).exists():
        holders = users.filter(
            Q(
                reviewuserobjectpermission__content_object=instance.review,
                reviewuserobjectpermission__permission__codename=REVIEW_PERMISSION,
            )
            | Q(
                groups__reviewgroupobjectpermission__content_object=instance.review,
                groups__reviewgroupobjectpermission__permission__codename=REVIEW_PERMISSION,
            )
        ).distinct()
        for user in holders:
            # Only what they may decide: never their own, nor their group's as a whole.
            theirs = review_authz.decidable_items(user, instance).filter(reviewer__isnull=True)
            if undecided_only:
                theirs = theirs.undecided()
            workload[user] += theirs.count()
    return workload


def _mail_reviewers(instance: ReviewInstance, template: str, *, undecided_only: bool, **extra):
    sent = 0
    link = _link("reviews:instance_detail", instance)
    for reviewer, count in reviewer_workload(instance, undecided_only=undecided_only).items():
        if not reviewer.email or not count:
            continue
        sent += send_templated_mail(
            template=template,
            recipients=[reviewer.email],
            context={
                "review": instance.review,
                "instance": instance,
                "reviewer": reviewer,
                "count": count,
                "remaining": count,
                "ends": instance.end,
                "link": link,
                **extra,
            },
        )
    return sent


def mail_started(instance_id: int) -> int:
    """An occurrence started: each reviewer hears how many items wait for them."""
    instance = _instance(instance_id)
    if instance is None or not instance.is_open():
        return 0
    return _mail_reviewers(instance, "reviews/mail/started", undecided_only=False)


def mail_reminders(instance_id: int, which: str) -> int:
    """Halfway, or one day before the end: reviewers who still have items to decide."""
    instance = _instance(instance_id)
    if instance is None or not instance.is_open():
        return 0
    return _mail_reviewers(instance, "reviews/mail/reminder", undecided_only=True, which=which)


def mail_completed(instance_id: int) -> int:
    """An occurrence completed: its creator and the people to notify get the results."""
    instance = _instance(instance_id)
    if instance is None:
        return 0
    review = instance.review
    addresses = list(review.notify_emails or [])
    if review.created_by is not None and review.created_by.email:
        addresses.append(review.created_by.email)
    counts = Counter(instance.items.order_by().values_list("decision", flat=True))
    return send_templated_mail(
        template="reviews/mail/completed",
        recipients=addresses,
        context={
            "review": review,
            "instance": instance,
            "counts": {
                "approved": counts[Decision.APPROVE],
                "denied": counts[Decision.DENY],
                "dont_know": counts[Decision.DONT_KNOW],
                "not_reviewed": counts[Decision.NOT_REVIEWED],
            },
            "link": _link("reviews:results", instance),
        },
    )


def mail_removed(instance_id: int) -> int:
    """Results applied: each user whose access the review removed is told why."""
    instance = _instance(instance_id)
    if instance is None:
        return 0
    link = absolute_url(reverse("assignments:my_roles"))
    removed = (
        instance.items.filter(apply_result=ApplyResult.REMOVED, principal_user__isnull=False)
        .select_related("principal_user", "principal_group", "role", "scope")
        .iterator(chunk_size=500)
    )
    sent = 0
    for item in removed:
        if not item.principal_user.email:
            continue
        sent += send_templated_mail(
            template="reviews/mail/removed",
            recipients=[item.principal_user.email],
            context={
                "review": instance.review,
                "instance": instance,
                "item": item,
                "reason": item.reason,
                "link": link,
            },
        )
    return sent
