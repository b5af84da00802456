"""Personas, the same everywhere: see tests/factories.py for the helpers."""

import os

import pytest
from django.test import Client

from assignments.models import AssignmentKind, ScopeKind
from tests.factories import PASSWORD, assign, make_scope, make_user, root

SQLITE = not os.environ.get("DATABASE_URL", "").startswith("postgres")


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(
        reason="needs PostgreSQL (real concurrent transactions, or its triggers): set DATABASE_URL"
    )
    for item in items:
        if "postgres" in item.keywords and SQLITE:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _tasks_run_in_process():
    """Queued jobs (pim_portal.jobs) run here, after commit, as a worker would run them.

    Tests of the workers themselves start real `qcluster` processes with their own settings.
    """
    from django_q.conf import Conf

    Conf.SYNC = True


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SECURE_SSL_REDIRECT = False
    # Hashing every persona's password with PBKDF2 costs about a second per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache: ids repeat between tests (a rolled-back SQLite
    table hands out the same ids again), so a kept badge count would cross from one to the
    next."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _migrated_data_for_transactional_tests(request):
    """Tests with real transactions start from what `migrate` makes.

    Each one ends by emptying every table, the data migration's built-in roles and
    post_migrate's content types and permissions included; pytest-django runs them after the
    other database tests, so only the transactional ones that follow need it put back.
    """
    marker = request.node.get_closest_marker("django_db")
    transactional = marker is not None and marker.kwargs.get("transaction", False)
    if not (transactional or {"transactional_db", "live_server"} & set(request.fixturenames)):
        return
    request.getfixturevalue("transactional_db")
    from django.core.management.sql import emit_post_migrate_signal

    from assignments.catalog import install_catalog
    from assignments.models import Role, RolePolicy, Scope

    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
    install_catalog(Scope, Role, RolePolicy)


@pytest.fixture
def tree(db):
    """Directory root › management group › subscription › resource group › resource."""
    top = root()
    mg = make_scope("Contoso", ScopeKind.MANAGEMENT_GROUP, top, slug="contoso")
    sub = make_scope("Production", ScopeKind.SUBSCRIPTION, mg, slug="prod")
    other_sub = make_scope("Sandbox", ScopeKind.SUBSCRIPTION, mg, slug="sandbox")
    rg = make_scope("Web", ScopeKind.RESOURCE_GROUP, sub, slug="web")
    vm = make_scope("web-vm-01", ScopeKind.RESOURCE, rg, slug="web-vm-01")
    return {"root": top, "mg": mg, "sub": sub, "other_sub": other_sub, "rg": rg, "vm": vm}


@pytest.fixture
def outsider(db):
    return make_user("oscar", display_name="Oscar Outsider")


@pytest.fixture
def eligible_user(db, tree):
    """Erin: eligible for Privileged Role Administrator and for Contributor on Production."""
    user = make_user("erin", display_name="Erin Eligible")
    assign(user, "Privileged Role Administrator", kind=AssignmentKind.ELIGIBLE)
    assign(user, "Contributor", scope=tree["sub"], kind=AssignmentKind.ELIGIBLE)
    return user


@pytest.fixture
def approver(db):
    return make_user("alex", display_name="Alex Approver")


@pytest.fixture
def pra(db):
    """Pat: a permanent active Privileged Role Administrator at the directory root."""
    user = make_user("pat", display_name="Pat Admin")
    assign(user, "Privileged Role Administrator", permanent=True)
    return user


@pytest.fixture
def global_admin(db):
    user = make_user("gina", display_name="Gina Global")
    assign(user, "Global Administrator", permanent=True)
    return user


@pytest.fixture
def security_reader(db):
    user = make_user("sam", display_name="Sam Reader")
    assign(user, "Security Reader", permanent=True)
    return user


@pytest.fixture
def resource_owner(db, tree):
    """Olivia: active Owner of the Production subscription (and so everything below it)."""
    user = make_user("olivia", display_name="Olivia Owner")
    assign(user, "Owner", scope=tree["sub"], permanent=True)
    return user


def signed_in(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def client_for():
    return signed_in
