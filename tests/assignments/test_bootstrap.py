"""`manage.py bootstrap`: the first administrator of a new installation."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from assignments.authz import grants_for
from assignments.models import Assignment, AssignmentKind, Scope
from audit.log import verify_chain
from audit.models import AuditEvent
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def _bootstrap(*args, **options) -> str:
    out = StringIO()
    call_command("bootstrap", *args, noinput=True, stdout=out, **options)
    return out.getvalue()


def _held_by(user):
    return Assignment.objects.filter(principal_user=user).order_by("role__name")


def test_creates_a_user_who_can_sign_in(db):
    _bootstrap(username="root-admin", password="a-long-first-password", email="ra@example.com")
    user = get_user_model().objects.get(username="root-admin")
    assert user.check_password("a-long-first-password")
    assert user.email == "ra@example.com"


def test_makes_the_user_permanent_active_pra_and_security_administrator_at_root(db):
    _bootstrap(username="root-admin", password="a-long-first-password")
    user = get_user_model().objects.get(username="root-admin")
    held = _held_by(user)
    assert [a.role.name for a in held] == [
        "Privileged Role Administrator",
        "Security Administrator",
    ]
    for assignment in held:
        assert assignment.kind == AssignmentKind.ACTIVE
        assert assignment.end is None
        assert assignment.scope == Scope.objects.root()
        assert assignment in Assignment.objects.in_force()


def test_bootstrapped_user_may_manage_directory_roles(db):
    _bootstrap(username="root-admin", password="a-long-first-password")
    user = get_user_model().objects.get(username="root-admin")
    assert grants_for(user).can_manage_directory()


def test_bootstrap_is_audited_in_a_valid_chain(db):
    _bootstrap(username="root-admin", password="a-long-first-password")
    assert AuditEvent.objects.filter(action="pim.bootstrap").count() == 2
    assert verify_chain()[1] is None


def test_refuses_to_run_twice_without_again(db):
    _bootstrap(username="root-admin", password="a-long-first-password")
    with pytest.raises(CommandError, match="bootstrapped already"):
        _bootstrap(username="second", password="another-long-password")
    assert not get_user_model().objects.filter(username="second").exists()


def test_runs_again_with_again(db):
    _bootstrap(username="root-admin", password="a-long-first-password")
    _bootstrap(username="second", password="another-long-password", again=True)
    second = get_user_model().objects.get(username="second")
    assert _held_by(second).count() == 2


def test_takes_an_existing_user_and_keeps_their_password(db):
    existing = make_user("ella")
    _bootstrap(username="ella")
    existing.refresh_from_db()
    assert existing.check_password(PASSWORD)
    assert _held_by(existing).count() == 2
    assert get_user_model().objects.filter(username="ella").count() == 1


def test_does_not_duplicate_a_role_the_user_already_holds_permanently(pra):
    _bootstrap(username=pra.username)
    names = [a.role.name for a in _held_by(pra)]
    assert names == ["Privileged Role Administrator", "Security Administrator"]


def test_new_user_without_password_is_refused_with_noinput(db):
    with pytest.raises(CommandError, match="--password"):
        _bootstrap(username="root-admin")
    assert not get_user_model().objects.filter(username="root-admin").exists()


def test_username_is_required_with_noinput(db):
    with pytest.raises(CommandError, match="--username"):
        _bootstrap()


def test_weak_password_for_a_new_user_is_refused(db):
    with pytest.raises(CommandError, match="too common"):
        _bootstrap(username="root-admin", password="password")
    assert not get_user_model().objects.filter(username="root-admin").exists()


def test_with_owner_the_user_may_also_manage_resource_roles_everywhere(db, tree):
    out = _bootstrap(username="root-admin", password="a-long-first-password", owner=True)
    user = get_user_model().objects.get(username="root-admin")

    assert grants_for(user).can_manage_scope(tree["vm"])
    assert "Owner at the directory root" in out


def test_without_owner_the_user_manages_no_resource_roles(db, tree):
    _bootstrap(username="root-admin", password="a-long-first-password")
    user = get_user_model().objects.get(username="root-admin")

    assert not grants_for(user).can_manage_scope(tree["vm"])
