"""Connectors with real processes: a timekeeper and two django-q2 worker processes revoke in a
real PostgreSQL server, within seconds of the end, each revocation once, even when a worker is
killed in the middle of a batch. The target is read with a connection of the test's own.

They need PostgreSQL as Django's database: the worker processes must see what the test commits.
"""

import time
from collections import Counter
from datetime import timedelta

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from psycopg import sql

from assignments.models import Assignment, AssignmentKind, Role, ScopeKind
from audit.models import AuditEvent
from connectors import provisioning
from connectors.models import Connector, Mapping, Provisioning, ProvisioningState
from connectors.tasks import assignments_changed
from tests.connectors.pg_server import HOST, PORT, SUPERUSER
from tests.factories import make_scope, root
from tests.workers import Workers, redis_available, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BOUND = 120  # seconds: far beyond what the work needs; the loops stop by themselves


@pytest.fixture
def mapped(pg_server):
    """A connector to the throw-away server and Contributor at a resource group mapped to its
    read-write role."""
    connector = Connector.objects.create(
        name="pg-prod",
        display_name="PostgreSQL prod",
        kind="postgresql",
        host=HOST,
        port=PORT,
        username=pg_server.portal,
        options={
            "dbname": pg_server.dbname,
            "sslmode": "disable",
            "account_template": pg_server.prefix + "{username}",
            "lowercase": True,
        },
        timeout=5,
    )
    sub = make_scope("Production", ScopeKind.SUBSCRIPTION, root(), slug="prod")
    rg = make_scope("db-prod", ScopeKind.RESOURCE_GROUP, sub, slug="db-prod")
    mapping = Mapping.objects.create(
        connector=connector,
        role=Role.objects.get(name="Contributor"),
        scope=rg,
        target=pg_server.readwrite,
    )
    return mapping


def holders(pg_server, mapping, count: int, *, ending: list) -> list[int]:
    """`count` users with a login role in the server, each holding Contributor at the mapped
    scope active until `ending[i]`; granted here (as the web's after-commit job would)."""
    User = get_user_model()
    users = User.objects.bulk_create(User(username=f"holder{i}") for i in range(count))
    pg_server.execute(
        sql.SQL(" ").join(
            sql.SQL("CREATE ROLE {} LOGIN;").format(sql.Identifier(f"{pg_server.prefix}{u}"))
            for u in (user.username for user in users)
        )
    )
    now = timezone.now()
    made = Assignment.objects.bulk_create(
        Assignment(
            principal_user=user,
            role=mapping.role,
            scope=mapping.scope,
            kind=AssignmentKind.ACTIVE,
            start=now - timedelta(minutes=1),
            start_processed_at=now,
            end=ending[i],
        )
        for i, user in enumerate(users)
    )
    assignments_changed([a.pk for a in made])
    return [a.pk for a in made]


class Target:
    """The mapped role's members, read on a connection of the test's own."""

    def __init__(self, pg_server):
        self.role = pg_server.readwrite
        self.portal = pg_server.portal
        self.conn = psycopg.connect(
            host=HOST, port=PORT, user=SUPERUSER, dbname="postgres", autocommit=True
        )

    def members(self) -> set[str]:
        rows = self.conn.execute(
            "SELECT u.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
            "JOIN pg_roles u ON u.oid = m.member WHERE r.rolname = %s",
            (self.role,),
        ).fetchall()
        return {name for (name,) in rows} - {self.portal}

    def close(self):
        self.conn.close()


def revoked_once(ids):
    revoked = Counter(
        AuditEvent.objects.filter(action="pim.connector.revoked").values_list(
            "principal", flat=True
        )
    )
    assert len(revoked) == len(ids), f"{len(revoked)} of {len(ids)} revocations audited"
    assert max(revoked.values()) == 1, "a revocation was recorded twice"


@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_revocation_follows_the_end_within_five_seconds(broker, mapped, pg_server, tmp_path):
    if broker == "redis" and not redis_available():
        pytest.skip("needs Redis at 127.0.0.1:6379 (apt-get install redis-server)")
    target = Target(pg_server)
    try:
        with Workers(mail_dir=tmp_path, broker=broker) as workers:
            time.sleep(3)  # let the processes start: the ends below are measured from here
            start = timezone.now() + timedelta(seconds=3)
            ends = [start + timedelta(seconds=0.4 * i) for i in range(20)]
            holders(pg_server, mapped, 20, ending=ends)
            account_end = {f"{pg_server.prefix}holder{i}": end for i, end in enumerate(ends)}
            assert target.members() == set(account_end), "the grants were not made"
            gone_at = {}
            deadline = time.monotonic() + BOUND
            while len(gone_at) < len(account_end) and time.monotonic() < deadline:
                present = target.members()
                now = timezone.now()
                for account in set(account_end) - present - set(gone_at):
                    gone_at[account] = now
                time.sleep(0.05)
            assert len(gone_at) == len(account_end), workers.errors()
    finally:
        target.close()
    delays = sorted((gone_at[a] - account_end[a]).total_seconds() for a in account_end)
    assert min(delays) >= 0, f"revoked before the end: {delays}"
    assert delays[-1] <= 5, f"revocation delays after the end (s): {delays}"


def test_a_worker_killed_mid_batch_of_revocations_applies_each_once(mapped, pg_server, tmp_path):
    count = 1500
    far = timezone.now() + timedelta(hours=1)
    ids = holders(pg_server, mapped, count, ending=[far] * count)
    target = Target(pg_server)
    try:
        assert len(target.members()) == count
        # Every end now falls due together, in a few seconds (what a removal would do).
        soon = timezone.now() + timedelta(seconds=4)
        Assignment.objects.filter(pk__in=ids).update(end=soon)
        Provisioning.objects.filter(mapping=mapped).update(due_at=soon)
        extra = {"TIMEKEEPER_BATCH": "50"}
        with Workers(mail_dir=tmp_path, extra_env=extra) as workers:
            assert wait_until(lambda: len(target.members()) < count, seconds=BOUND, step=0.02)
            workers.kill(workers.clusters_started[0])
            left = len(target.members())
            assert left > 0, "too late to kill mid-work: raise the count"
            done = wait_until(
                lambda: (
                    not Provisioning.objects.filter(
                        mapping=mapped, state=ProvisioningState.PROVISIONED
                    ).exists()
                ),
                seconds=BOUND,
            )
            assert done, workers.errors()
        assert target.members() == set()
    finally:
        target.close()
    assert not Provisioning.objects.filter(mapping=mapped, state=ProvisioningState.FAILED).exists()
    revoked_once(ids)
    assert provisioning.next_due() is None
