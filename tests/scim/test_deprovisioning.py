"""Deprovisioning acts at once: the account inactive, every active assignment ended that
second, open requests canceled, sessions ended, no sign-in; reactivation restores nothing."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.utils import timezone

from assignments import services
from assignments.authz import grants_for
from assignments.models import Assignment, AssignmentKind, RequestAction, RequestStatus, RoleRequest
from assignments.services.deprovisioning import user_deprovision, user_reprovision
from assignments.tasks import end_batch
from audit.models import AuditEvent
from pim_portal.actor import Actor
from tests.assignments.activation_support import relax
from tests.factories import PASSWORD, assign, make_user

PRA = "Privileged Role Administrator"
SCIM_ACTOR = Actor.system('SCIM token "okta"')


@pytest.fixture
def leaver(db, tree):
    """Lee: an activation of PRA in force, an active Reader at Production from an
    administrator, and a Contributor activation waiting for approval."""
    relax(PRA)
    relax("Contributor", require_approval=True)
    user = make_user("lee", display_name="Lee Leaver")
    assign(user, PRA, kind=AssignmentKind.ELIGIBLE)
    assign(user, "Contributor", scope=tree["sub"], kind=AssignmentKind.ELIGIBLE)
    reader = assign(user, "Reader", scope=tree["sub"])
    activation = services.request_activate(
        actor=user,
        eligible=Assignment.objects.get(principal_user=user, role__name=PRA),
        duration=timedelta(hours=2),
        justification="on call",
    ).result_assignment
    pending = services.request_activate(
        actor=user,
        eligible=Assignment.objects.get(principal_user=user, role__name="Contributor"),
        duration=timedelta(hours=1),
        justification="deploy",
    )
    assert pending.status == RequestStatus.PENDING_APPROVAL
    return {"user": user, "activation": activation, "reader": reader, "pending": pending}


def test_deprovisioning_ends_every_activation_and_active_assignment_that_second(leaver):
    user = leaver["user"]
    with time_machine.travel(timezone.now() + timedelta(minutes=5), tick=False):
        at = timezone.now()
        assert grants_for(user).can_manage_directory()

        outcome = user_deprovision(SCIM_ACTOR, user, reason="left the company")

        activation = Assignment.objects.get(pk=leaver["activation"].pk)
        reader = Assignment.objects.get(pk=leaver["reader"].pk)
        assert activation.end == at and reader.end == at
        assert not activation.is_in_force(at) and not reader.is_in_force(at)
        assert not Assignment.objects.in_force(at).active().filter(principal_user=user).exists()
        assert set(outcome.ended) == {activation.pk, reader.pk}
    user.refresh_from_db()
    assert not user.is_active
    assert not grants_for(user).can_manage_directory()


def test_deprovisioning_keeps_eligibility_but_nothing_is_in_force(leaver):
    user = leaver["user"]
    user_deprovision(SCIM_ACTOR, user, reason="left")
    eligible = Assignment.objects.filter(principal_user=user, kind=AssignmentKind.ELIGIBLE)
    assert eligible.count() == 2 and all(a.end > timezone.now() for a in eligible)


def test_each_end_is_an_admin_remove_request_audited_with_the_token_as_actor(leaver):
    user = leaver["user"]
    user_deprovision(SCIM_ACTOR, user, reason="left")
    removed = AuditEvent.objects.filter(action="pim.assignment.removed", principal="Lee Leaver")
    assert removed.count() == 2
    assert set(removed.values_list("actor_name", flat=True)) == {'system (SCIM token "okta")'}
    requests = RoleRequest.objects.filter(
        principal_user=user, action=RequestAction.ADMIN_REMOVE, status=RequestStatus.PROVISIONED
    )
    assert requests.count() == 2
    assert AuditEvent.objects.filter(action="pim.user.deactivated", principal="Lee Leaver").exists()


def test_pending_requests_are_canceled_and_audited(leaver):
    user_deprovision(SCIM_ACTOR, leaver["user"], reason="left")
    pending = RoleRequest.objects.get(pk=leaver["pending"].pk)
    assert pending.status == RequestStatus.CANCELED
    assert not RoleRequest.objects.open().filter(principal_user=leaver["user"]).exists()
    assert AuditEvent.objects.filter(
        action="pim.request.canceled", role_request_id=pending.pk
    ).exists()


def test_a_scheduled_activation_is_canceled_and_never_in_force(db):
    relax(PRA)
    user = make_user("sky")
    eligible = assign(user, PRA, kind=AssignmentKind.ELIGIBLE)
    request = services.request_activate(
        actor=user,
        eligible=eligible,
        start=timezone.now() + timedelta(hours=3),
        duration=timedelta(hours=1),
        justification="later",
    )
    assert request.status == RequestStatus.SCHEDULED

    user_deprovision(SCIM_ACTOR, user, reason="left")

    request.refresh_from_db()
    scheduled = Assignment.objects.get(pk=request.result_assignment_id)
    assert request.status == RequestStatus.CANCELED
    assert scheduled.end == scheduled.start  # never in force
    later = timezone.now() + timedelta(hours=3, minutes=30)
    assert not scheduled.is_in_force(later)


def test_the_holder_is_mailed_that_the_activation_ended(leaver, django_capture_on_commit_callbacks):
    user_deprovision(SCIM_ACTOR, leaver["user"], reason="left")
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        end_batch(timezone.now(), 100)  # the time engine, as a worker runs it

    assert [m.to for m in mail.outbox].count(["lee@example.com"]) == 2


def test_the_session_ends_on_the_next_request(leaver):
    browser = Client()
    assert browser.login(username="lee", password=PASSWORD)
    assert browser.get("/my/roles/").status_code == 200

    user_deprovision(SCIM_ACTOR, leaver["user"], reason="left")

    response = browser.get("/my/roles/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_deprovisioned_user_cannot_sign_in(leaver):
    user_deprovision(SCIM_ACTOR, leaver["user"], reason="left")
    assert not Client().login(username="lee", password=PASSWORD)


def test_deprovisioning_again_changes_nothing(leaver):
    user_deprovision(SCIM_ACTOR, leaver["user"], reason="left")
    count = AuditEvent.objects.count()
    outcome = user_deprovision(SCIM_ACTOR, leaver["user"], reason="again")
    assert outcome.was_active is False and outcome.ended == [] and outcome.canceled == []
    assert AuditEvent.objects.count() == count


def test_reprovisioning_restores_nothing(leaver):
    user = leaver["user"]
    user_deprovision(SCIM_ACTOR, user, reason="left")

    user_reprovision(SCIM_ACTOR, user, reason="back")

    user.refresh_from_db()
    assert user.is_active
    assert not grants_for(user).can_manage_directory()
    assert RoleRequest.objects.get(pk=leaver["pending"].pk).status == RequestStatus.CANCELED
    assert AuditEvent.objects.filter(action="pim.user.reactivated").count() == 1


# --- Who may deprovision ---------------------------------------------------------------------


@pytest.fixture
def user_admin(db):
    user = make_user("uma", display_name="Uma Users")
    assign(user, "User Administrator", permanent=True)
    return user


def test_a_user_administrator_deactivates_a_plain_user(user_admin):
    plain = make_user("paul")
    user_deprovision(Actor.of(user_admin), plain, reason="left")
    plain.refresh_from_db()
    assert not plain.is_active


def test_a_user_administrator_may_not_deactivate_a_privileged_administrator(user_admin, pra):
    with pytest.raises(PermissionDenied, match="holds a privileged role"):
        user_deprovision(Actor.of(user_admin), pra, reason="no")
    pra.refresh_from_db()
    assert pra.is_active
    assert AuditEvent.objects.filter(
        action="pim.security.forbidden", message__contains="holds a privileged role"
    ).exists()


def test_a_privileged_role_administrator_without_users_manage_is_refused(pra):
    plain = make_user("paul")
    with pytest.raises(PermissionDenied, match="deactivate the account 'paul'"):
        user_deprovision(Actor.of(pra), plain, reason="no")


def test_no_one_deactivates_their_own_account(global_admin):
    with pytest.raises(PermissionDenied, match="their own account"):
        user_deprovision(Actor.of(global_admin), global_admin, reason="no")


def test_the_last_active_global_administrator_is_not_deactivated(global_admin):
    with pytest.raises(ValidationError, match="last active Global Administrator"):
        user_deprovision(SCIM_ACTOR, global_admin, reason="left")
    global_admin.refresh_from_db()
    assert global_admin.is_active


def test_a_global_administrator_goes_while_another_remains(global_admin):
    other = make_user("gus")
    assign(other, "Global Administrator", permanent=True)
    user_deprovision(SCIM_ACTOR, global_admin, reason="left")
    assert not grants_for(global_admin).can_manage_directory()
