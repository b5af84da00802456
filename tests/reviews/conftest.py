"""Helpers for the access review tests: reviews with plain defaults, the items of an
occurrence, and running work the way a worker would (its after-commit mail goes out).

The helpers are plain functions (import them); the fixtures name the people of a review:
Olivia (resource_owner) creates reviews of Contributor on Production, Alex (approver) reviews.
"""

from datetime import datetime, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from assignments.models import Assignment, AssignmentKind
from audit.models import AuditEvent
from reviews import services
from reviews.models import AccessReview, ReviewInstance, ReviewItem
from tests.factories import assign, make_user, role

CONTRIBUTOR = "Contributor"
READER = "Reader"
PRA = "Privileged Role Administrator"
GLOBAL_ADMIN = "Global Administrator"
SECURITY_READER = "Security Reader"
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def create_review(actor, *, roles=(CONTRIBUTOR,), scope=None, **settings) -> AccessReview:
    """`review_create` with the service's defaults, roles by name, a name, and no reason
    needed to approve (tests of that rule ask for it)."""
    settings.setdefault("name", "Production access check")
    settings.setdefault("require_reason_on_approve", False)
    return services.review_create(
        actor=actor, roles=[role(name) for name in roles], scope=scope, **settings
    )


def latest_instance(review: AccessReview) -> ReviewInstance:
    return ReviewInstance.objects.filter(review=review).order_by("-number").first()


def items_of(instance: ReviewInstance):
    return ReviewItem.objects.filter(instance=instance).order_by("pk")


def item_for(instance: ReviewInstance, assignment: Assignment, user=None) -> ReviewItem:
    """The item of an assignment (for a group expanded to its members: the member's)."""
    found = items_of(instance).filter(assignment=assignment)
    if user is not None:
        found = found.filter(principal_user=user)
    return found.get()


def reviewed_assignment_ids(instance: ReviewInstance) -> set[int]:
    return set(items_of(instance).values_list("assignment_id", flat=True))


def in_force_ids(at: datetime | None = None) -> set[int]:
    return set(Assignment.objects.in_force(at or timezone.now()).values_list("pk", flat=True))


def activate_from(eligible: Assignment, *, start=None, hours: int = 8, user=None) -> Assignment:
    """An activation of the eligible assignment (by `user`, for one held through a group)."""
    start = start or timezone.now() - HOUR
    activation = Assignment(
        role=eligible.role,
        scope=eligible.scope,
        kind=AssignmentKind.ACTIVE,
        start=start,
        end=start + timedelta(hours=hours),
        activated_from=eligible,
    )
    activation.set_principal(user or eligible.principal)
    activation.save()
    return activation


def events(action: str, **filters):
    return AuditEvent.objects.filter(action=action, **filters).order_by("id")


def mails_to(user_or_address, subject_part: str = "") -> list:
    address = getattr(user_or_address, "email", user_or_address)
    return [m for m in mail.outbox if m.to == [address] and subject_part in m.subject]


def new_holder(username: str, role_name: str = CONTRIBUTOR, *, scope=None, **assign_fields):
    """A user holding the role (permanent unless an end is given), and the assignment."""
    user = make_user(username)
    assign_fields.setdefault("permanent", "end" not in assign_fields)
    return user, assign(user, role_name, scope=scope, **assign_fields)


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Call a service or task and run what it queued after commit, as a worker would."""

    def runner(func, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return func(*args, **kwargs)

    return runner


@pytest.fixture
def erins_contributor(eligible_user, tree) -> Assignment:
    """Erin's eligible Contributor assignment on Production (from the persona)."""
    return Assignment.objects.get(principal_user=eligible_user, role__name=CONTRIBUTOR)
