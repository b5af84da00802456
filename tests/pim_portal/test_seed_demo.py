from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import call_command
from django.test import Client

from assignments.authz import grants_for
from assignments.models import Assignment, AssignmentKind, RolePolicy, RoleRequest, Scope
from assignments.queries import policy_approvers
from audit.log import verify_chain
from audit.models import AuditEvent
from pim_portal.management.commands.seed_demo import DEMO_PASSWORD, PERSONAS
from tests.factories import assign, make_user

pytestmark = pytest.mark.django_db


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def counts() -> dict:
    return {
        "users": get_user_model().objects.count(),
        "groups": Group.objects.count(),
        "scopes": Scope.objects.count(),
        "assignments": Assignment.objects.count(),
        "requests": RoleRequest.objects.count(),
        "policies": RolePolicy.objects.count(),
        "events": AuditEvent.objects.count(),
    }


def user(username):
    return get_user_model().objects.get(username=username)


def test_seed_creates_a_small_company():
    seed()
    assert get_user_model().objects.filter(email__endswith="@contoso.example").count() >= 20
    assert Group.objects.filter(name="Cloud Ops").exists()
    assert Scope.objects.filter(name="Production", kind="subscription").exists()
    assert user("engineer").manager is not None
    assert {"Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC"} <= set(
        get_user_model().objects.values_list("time_zone", flat=True)
    )


def test_administrator_manages_directory_and_every_resource():
    seed()
    grants = grants_for(user("admin"))
    assert grants.can_manage_directory()
    assert grants.can_manage_scope(Scope.objects.get(name="kv-prod"))


def test_engineer_is_eligible_for_directory_and_resource_roles():
    seed()
    eligible = Assignment.objects.in_force().eligible().for_user(user("engineer"))
    names = set(eligible.values_list("role__name", flat=True))
    assert {"Security Administrator", "Global Administrator", "Contributor"} <= names
    assert not grants_for(user("engineer")).can_view_directory()


def test_security_reader_may_view_but_not_manage():
    seed()
    grants = grants_for(user("reader"))
    assert grants.can_view_directory()
    assert not grants.can_manage_directory()


def test_global_administrator_requires_the_approver():
    seed()
    policy = RolePolicy.objects.get(role__name="Global Administrator", scope__isnull=True)
    approvers, _ = policy_approvers(policy)
    assert policy.require_approval
    assert approvers == [user("approver")]


def test_owner_of_production_requires_a_ticket():
    seed()
    policy = RolePolicy.objects.get(role__name="Owner", scope__name="Production")
    assert policy.require_ticket_on_activation


def test_seed_mixes_permanent_time_bound_user_and_group_assignments():
    seed()
    assignments = Assignment.objects.in_force()
    assert assignments.filter(end__isnull=True, kind=AssignmentKind.ACTIVE).exists()
    assert assignments.filter(end__isnull=False, kind=AssignmentKind.ELIGIBLE).exists()
    assert assignments.filter(principal_group__isnull=False).exists()
    assert Assignment.objects.upcoming().exists()
    assert Assignment.objects.ended().exists()


def test_seed_is_made_through_the_services_and_keeps_the_audit_chain():
    seed()
    assert AuditEvent.objects.filter(action="pim.assignment.created").count() >= 25
    assert verify_chain()[1] is None


SENT = []


class RecordingBackend(BaseEmailBackend):
    def send_messages(self, messages):
        SENT.extend(messages)
        return len(messages)


@pytest.mark.django_db(transaction=True)
def test_seed_sends_no_mail_to_the_configured_backend(settings):
    # Transactional, so the mail that waits for the seed's commit is really attempted.
    settings.EMAIL_BACKEND = f"{__name__}.RecordingBackend"
    SENT.clear()
    seed()
    assert SENT == []


def test_seed_leaves_a_request_waiting_for_the_approver():
    seed()
    pending = RoleRequest.objects.pending().get()
    assert pending.role.name == "Global Administrator"
    assert pending.principal_user.username == "diana.chen"


def test_seed_leaves_a_manager_review_in_progress_and_a_self_review_to_come():
    from reviews.models import AccessReview, ReviewInstance

    seed()
    running = ReviewInstance.objects.in_progress().get()
    assert running.review.reviewer_type == "manager"
    # Diana Chen reviews her report Pat's standing Privileged Role Administrator assignment.
    item = running.items.get(principal_user__username="admin")
    assert (item.reviewer.username, item.role.name) == (
        "diana.chen",
        "Privileged Role Administrator",
    )
    later = AccessReview.objects.get(reviewer_type="self")
    assert later.occurrences == 0
    assert later.next_start > running.start


def test_second_run_adds_nothing():
    seed()
    before = counts()
    seed()
    assert counts() == before


def test_second_run_prints_the_logins_again():
    seed()
    output = seed()
    assert "already seeded" in output
    assert DEMO_PASSWORD in output
    for persona in PERSONAS:
        assert persona.username in output


@pytest.mark.parametrize("username", [persona.username for persona in PERSONAS])
def test_persona_can_sign_in(username):
    seed()
    assert Client().login(username=username, password=DEMO_PASSWORD)


def test_portal_already_in_use_is_left_alone():
    assign(make_user("someone"), "Security Reader", permanent=True)
    before = counts()
    output = seed()
    assert counts() == before
    assert "not adding the demo organization" in output


def test_portal_with_a_user_named_like_a_demo_user_is_left_alone():
    make_user("admin")
    before = counts()
    output = seed()
    assert counts() == before
    assert "not adding the demo organization" in output
