"""Benchmark of connector revocations with real processes: `python -m tests.bench.connectors`.

Against an EMPTY PostgreSQL database (--database-url; it gets migrated) and the PostgreSQL
server at 127.0.0.1:5432 (user postgres, trust) as the connector's target, where it makes
throw-away roles and drops them afterwards. A timekeeper and two django-q2 worker processes
(--clusters 2, one worker each), on the database broker and on Redis (--broker orm redis):

- steady: N people (--steady 200) holding Contributor, mapped to a database role, their
  activations ending over a few seconds (--spread 20 s); the delay of each revocation (the
  moment the server no longer lists them as members, minus the end), median and p99;
- burst: N people (--burst 2000) whose activations all end in the same second; how long until
  every one is out of the role, and the delays.

The server is read by a connection of the benchmark's own, every 50 ms, so each delay is at
most that much late. Prints a table; asserts nothing.
"""

import argparse
import secrets
import signal
import sys
import time
from datetime import timedelta

from tests.bench.time_engine import percentile, print_table, setup_django

HOST, PORT = "127.0.0.1", 5432


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="An EMPTY PostgreSQL database.")
    parser.add_argument("--broker", nargs="+", choices=["orm", "redis"], default=["orm", "redis"])
    parser.add_argument("--steady", type=int, default=200)
    parser.add_argument("--spread", type=float, default=20.0)
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--clusters", type=int, default=2)
    parser.add_argument("--markdown", action="store_true")
    return parser.parse_args(argv)


class Server:
    """Throw-away roles on the target server: a mapped role, the portal's login with ADMIN
    OPTION on it, and a login role per person."""

    def __init__(self):
        import psycopg

        self.prefix = f"pimb_{secrets.token_hex(3)}_"
        self.role = self.prefix + "prod_readwrite"
        self.portal = self.prefix + "portal"
        self.admin = psycopg.connect(host=HOST, port=PORT, user="postgres", autocommit=True)
        self.admin.execute(f'CREATE ROLE "{self.role}" NOLOGIN')
        self.admin.execute(f'CREATE ROLE "{self.portal}" LOGIN')
        self.admin.execute(f'GRANT "{self.role}" TO "{self.portal}" WITH ADMIN OPTION')

    def logins(self, names: list[str]) -> None:
        for start in range(0, len(names), 500):
            self.admin.execute(
                " ".join(
                    f'CREATE ROLE "{self.prefix}{n}" LOGIN;' for n in names[start : start + 500]
                )
            )

    def members(self) -> set[str]:
        rows = self.admin.execute(
            "SELECT u.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
            "JOIN pg_roles u ON u.oid = m.member WHERE r.rolname = %s",
            (self.role,),
        ).fetchall()
        return {name for (name,) in rows} - {self.portal}

    def drop(self) -> None:
        names = [
            name
            for (name,) in self.admin.execute(
                "SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (self.prefix + "%",)
            )
        ]
        for name in sorted(names, key=lambda n: n == self.portal):
            self.admin.execute(f'DROP ROLE IF EXISTS "{name}"')
        self.admin.close()


def mapped(server: Server):
    from assignments.models import Role, Scope, ScopeKind
    from connectors.models import Connector, Mapping

    connector = Connector.objects.create(
        name=f"bench-{server.prefix.rstrip('_')}",
        display_name="Benchmark server",
        kind="postgresql",
        host=HOST,
        port=PORT,
        username=server.portal,
        options={
            "dbname": "postgres",
            "sslmode": "disable",
            "account_template": server.prefix + "{username}",
        },
    )
    top = Scope.objects.root()
    scope, _ = Scope.objects.get_or_create(
        slug="bench-db",
        parent=top,
        defaults={"name": "bench-db", "kind": ScopeKind.SUBSCRIPTION},
    )
    return Mapping.objects.create(
        connector=connector,
        role=Role.objects.get(name="Contributor"),
        scope=scope,
        target=server.role,
    )


def run_case(broker: str, name: str, count: int, spread: float, clusters: int) -> dict:
    import tempfile
    from pathlib import Path

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from assignments.models import Assignment, AssignmentKind
    from connectors.models import Provisioning
    from connectors.tasks import assignments_changed
    from tests.workers import Workers

    server = Server()
    try:
        mapping = mapped(server)
        User = get_user_model()
        tag = f"{broker}{name}{secrets.token_hex(2)}x"
        users = User.objects.bulk_create(User(username=f"{tag}{i}") for i in range(count))
        server.logins([u.username for u in users])
        far = timezone.now() + timedelta(hours=1)
        made = Assignment.objects.bulk_create(
            Assignment(
                principal_user=u,
                role=mapping.role,
                scope=mapping.scope,
                kind=AssignmentKind.ACTIVE,
                start=timezone.now() - timedelta(minutes=1),
                start_processed_at=timezone.now(),
                end=far,
            )
            for u in users
        )
        assignments_changed([a.pk for a in made])  # granted here, before the clock starts
        granted = len(server.members())
        with (
            tempfile.TemporaryDirectory() as mail_dir,
            Workers(mail_dir=Path(mail_dir), broker=broker, clusters=clusters) as workers,
        ):
            time.sleep(3)  # let the processes start: their start-up is not the delay
            first = timezone.now() + timedelta(seconds=4)
            step = spread / count if spread else 0
            rows = {r.user_id: r for r in Provisioning.objects.filter(mapping=mapping)}
            end_of = {}
            for i, assignment in enumerate(made):
                assignment.end = rows[users[i].pk].due_at = first + timedelta(seconds=i * step)
                end_of[f"{server.prefix}{users[i].username}"] = assignment.end
            # Set in two statements, well before the first end (what removals would do).
            Assignment.objects.bulk_update(made, ["end"], batch_size=1000)
            Provisioning.objects.bulk_update(list(rows.values()), ["due_at"], batch_size=1000)
            gone_at = {}
            deadline = time.monotonic() + spread + 300
            while len(gone_at) < len(end_of) and time.monotonic() < deadline:
                present = server.members()
                now = timezone.now()
                for account in end_of.keys() - present - gone_at.keys():
                    gone_at[account] = now
                time.sleep(0.05)
            if len(gone_at) < len(end_of):
                print(workers.errors(), file=sys.stderr)
        measured = sorted((gone_at[a] - end_of[a]).total_seconds() for a in gone_at)
        last = max(end_of.values())
        finished = (max(gone_at.values()) - last).total_seconds() if gone_at else float("nan")
    finally:
        server.drop()
    return {
        "broker": broker,
        "case": name,
        "revocations": count,
        "granted first": granted,
        "revoked": len(measured),
        "all out after last end (s)": round(finished, 1),
        "median delay (s)": round(percentile(measured, 0.5), 2),
        "p99 delay (s)": round(percentile(measured, 0.99), 2),
    }


def main(argv=None) -> int:
    args = parse_args(argv if argv is not None else sys.argv[1:])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    setup_django(args.database_url)
    from tests.workers import redis_available

    rows = []
    for broker in args.broker:
        if broker == "redis" and not redis_available():
            print("skipping Redis: nothing answers at 127.0.0.1:6379", file=sys.stderr)
            continue
        rows.append(run_case(broker, "steady", args.steady, args.spread, args.clusters))
        rows.append(run_case(broker, "burst", args.burst, 0.0, args.clusters))
    print_table(rows, args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
