"""Benchmark of the main pages and access queries as assignments grow: `make bench`.

Builds a throw-away SQLite database (or the empty database named by --database-url), seeds
N assignments for each size asked, then times each page with the Django test client and
each access query, printing the rows, the number of SQL queries and the median time.
The query count of a page should not grow with the rows. Not part of the test suite.

    python -m tests.bench [--sizes 200 2000] [--repeat 7]
"""

import argparse
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--repeat", type=int, default=7, help="Timed runs per page (median).")
    parser.add_argument(
        "--database-url",
        default="",
        help="An EMPTY database to use instead of a temporary SQLite file (it gets migrated).",
    )
    return parser.parse_args(argv)


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pim_portal.settings")
    os.environ.setdefault("Q_LOG_LEVEL", "ERROR")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host, mail to memory
    call_command("migrate", verbosity=0, interactive=False)


class World:
    """The data the benchmark grows: a resource tree, users, groups, and assignments."""

    def __init__(self):
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group

        from assignments.models import Role, Scope, ScopeKind

        self.random = random.Random(2026)
        self.User = get_user_model()
        root = Scope.objects.root()
        mg = Scope.objects.create(
            name="Bench", slug="bench", kind=ScopeKind.MANAGEMENT_GROUP, parent=root
        )
        self.scopes = [root, mg]
        for s in range(4):
            sub = Scope.objects.create(
                name=f"sub-{s}", slug=f"sub-{s}", kind=ScopeKind.SUBSCRIPTION, parent=mg
            )
            self.scopes.append(sub)
            for g in range(3):
                rg = Scope.objects.create(
                    name=f"rg-{s}-{g}",
                    slug=f"rg-{s}-{g}",
                    kind=ScopeKind.RESOURCE_GROUP,
                    parent=sub,
                )
                self.scopes.append(rg)
                for r in range(3):
                    self.scopes.append(
                        Scope.objects.create(
                            name=f"vm-{s}-{g}-{r}",
                            slug=f"vm-{s}-{g}-{r}",
                            kind=ScopeKind.RESOURCE,
                            parent=rg,
                        )
                    )
        self.subscription = self.scopes[2]
        self.roles = list(Role.objects.all())
        self.directory_roles = [r for r in self.roles if r.is_directory_role]
        self.resource_roles = [r for r in self.roles if not r.is_directory_role]
        self.admin = self.make_user("bench-admin")
        self.groups = [Group.objects.create(name=f"team-{n}") for n in range(10)]
        self.users = []
        # The viewer: Privileged Role Administrator and Owner at the root.
        from assignments.catalog import PRIVILEGED_ROLE_ADMINISTRATOR

        self.add(
            self.admin, Role.objects.get(name=PRIVILEGED_ROLE_ADMINISTRATOR), root, "active", None
        )
        self.add(self.admin, Role.objects.get(name="Owner"), root, "active", None)

    def make_user(self, username: str):
        user = self.User(
            username=username, display_name=username.title(), email=f"{username}@bench.example"
        )
        user.set_unusable_password()
        user.save()
        return user

    def add(self, principal, role, scope, kind, end) -> None:
        from django.utils import timezone

        from assignments.models import Assignment

        start = timezone.now() - timedelta(days=1)
        assignment = Assignment(role=role, scope=scope, kind=kind, start=start, end=end)
        assignment.set_principal(principal)
        assignment.save()

    def grow_to(self, total: int) -> None:
        """Add assignments (and a user for every four) until there are `total`."""
        from django.utils import timezone

        from assignments.models import Assignment, AssignmentKind

        now = timezone.now()
        rows = []
        existing = Assignment.objects.count()
        for n in range(existing, total):
            if n % 4 == 0 or not self.users:
                user = self.make_user(f"user-{n:05d}")
                user.groups.add(self.random.choice(self.groups))
                self.users.append(user)
            principal = (
                self.random.choice(self.groups) if n % 10 == 0 else self.random.choice(self.users)
            )
            if self.random.random() < 0.5:
                role, scope = self.random.choice(self.directory_roles), self.scopes[0]
            else:
                role, scope = (
                    self.random.choice(self.resource_roles),
                    self.random.choice(self.scopes[1:]),
                )
            kind = self.random.choice([AssignmentKind.ELIGIBLE, AssignmentKind.ACTIVE])
            shape = self.random.random()
            if shape < 0.15:
                start, end = now - timedelta(days=60), now - timedelta(days=1)  # ended
            elif shape < 0.30:
                start, end = now - timedelta(days=30), None  # permanent
            elif shape < 0.35:
                start, end = now + timedelta(days=3), now + timedelta(days=33)  # upcoming
            else:
                start, end = (
                    now - timedelta(days=10),
                    now + timedelta(days=self.random.randint(1, 300)),
                )
            assignment = Assignment(role=role, scope=scope, kind=kind, start=start, end=end)
            assignment.set_principal(principal)
            rows.append(assignment)
        Assignment.objects.bulk_create(rows, batch_size=500)


def measure(fn, repeat: int):
    """(result of the last run, number of SQL queries of one run, median milliseconds)."""
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    fn()  # warm up: caches, template compilation
    reset_queries()  # a full query log (it keeps 9000) would capture nothing
    with CaptureQueriesContext(connection) as queries:
        result = fn()
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        timings.append((time.perf_counter() - started) * 1000)
    return result, len(queries), statistics.median(timings)


def pages(world):
    """(label, url) of the main list pages, as the administrator sees them."""
    from django.db.models import Count
    from django.urls import reverse

    from assignments.models import Assignment, Role

    busiest = (
        Assignment.objects.filter(role__kind="directory")
        .values("role")
        .annotate(n=Count("pk"))
        .order_by("-n")
        .first()
    )
    role_id = busiest["role"] if busiest else Role.objects.first().pk
    owner = Role.objects.get(name="Owner")
    sub = world.subscription
    return [
        ("dashboard", reverse("dashboard")),
        ("directory roles", reverse("assignments:directory_roles")),
        (
            "role: eligible tab",
            reverse("assignments:role_detail", args=[role_id]) + "?tab=eligible",
        ),
        ("role: active tab", reverse("assignments:role_detail", args=[role_id]) + "?tab=active"),
        ("role: expired tab", reverse("assignments:role_detail", args=[role_id]) + "?tab=expired"),
        ("role: search", reverse("assignments:role_detail", args=[role_id]) + "?q=user-0"),
        ("resources", reverse("assignments:resources")),
        ("subscription", reverse("assignments:scope_detail", args=[sub.pk])),
        (
            "owner at subscription",
            reverse("assignments:scope_role_detail", args=[sub.pk, owner.pk]),
        ),
        ("my roles", reverse("assignments:my_roles")),
        ("my requests", reverse("assignments:my_requests")),
    ] + [(label, url) for label, url in optional_pages() if url]


def optional_pages():
    """Pages of apps that may not exist yet: left out until their URL does."""
    from django.urls import NoReverseMatch, reverse

    for label, name in [
        ("approve requests", "approvals:inbox"),
        ("audit log", "audit:event_list"),
        ("access reviews", "reviews:review_list"),
    ]:
        try:
            yield label, reverse(name)
        except NoReverseMatch:
            yield label, None


def run(sizes, repeat):
    from django.contrib.auth.models import Group
    from django.test import Client

    from assignments.authz import grants_for
    from assignments.models import Assignment, Role

    logging.getLogger("django.request").setLevel(logging.CRITICAL)  # pages not built yet: 501
    world = World()
    owner = Role.objects.get(name="Owner")
    client = Client()
    client.force_login(world.admin)
    results = []
    for size in sizes:
        world.grow_to(size)
        member = world.users[0]
        for label, url in pages(world):
            response, queries, ms = measure(lambda url=url: client.get(url), repeat)
            results.append((size, f"page {label}", response.status_code, queries, ms))
        queries_to_time = [
            ("grants_for(admin)", lambda: grants_for(world.admin).pairs),
            ("grants_for(member)", lambda: grants_for(member).pairs),
            ("in_force().count()", lambda: Assignment.objects.in_force().count()),
            ("in_force().for_user()", lambda: list(Assignment.objects.in_force().for_user(member))),
            (
                "in_force().at_or_below(sub)",
                lambda: Assignment.objects.in_force().at_or_below(world.subscription).count(),
            ),
            (
                "Owner in_force().at_or_above(vm)",
                lambda: list(
                    Assignment.objects.in_force()
                    .filter(role=owner)
                    .at_or_above(world.scopes[-1])
                    .with_related()
                ),
            ),
        ]
        for label, fn in queries_to_time:
            _, queries, ms = measure(fn, repeat)
            results.append((size, label, "", queries, ms))
    print_table(results, users=world.User.objects.count(), groups=Group.objects.count())


def print_table(results, *, users: int, groups: int) -> None:
    header = ("assignments", "what", "status", "queries", "median ms")
    lines = [header] + [(str(r), w, str(s), str(q), f"{ms:.1f}") for r, w, s, q, ms in results]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    print(f"\nPIM Portal benchmark ({users} users, {groups} groups at the largest size)\n")
    for index, line in enumerate(lines):
        cells = [line[0].rjust(widths[0]), line[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(line[2:], widths[2:], strict=True)]
        print("  ".join(cells))
        if index == 0:
            print("  ".join("-" * width for width in widths))
    print()


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="pim-bench-") as folder:
        setup_django(args.database_url or f"sqlite:///{folder}/bench.sqlite3")
        run(sorted(args.sizes), args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
