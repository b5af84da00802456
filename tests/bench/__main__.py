"""Benchmark of the main pages at the size of a real organization: `make bench`.

Migrates a throw-away SQLite database (or the EMPTY database named by --database-url), fills it
with bulk inserts (--size small|medium|large; large is 10,000 users, 1,000 groups, 5,000 scopes,
100,000 assignments, 20,000 requests of which 1,500 pending, 1,000 of them for one named
approver, 1,000,000 audit events), then measures through the Django test client, per viewer
(administrator; an eligible user with many eligibilities and a TOTP device; the approver):
SQL queries, median time, and the ratio to a minimal signed-in page (the base layout) measured
in the same run. Not part of the test suite. Rows:

- every main page for each viewer: dashboard, directory roles, a busy role's tabs, resources,
  a busy scope, a role at that scope, My roles (each tab), My requests, Approve requests, a
  request's page, the busy role's CSV export; "deep" rows follow the page's own "Next" link
  3 / 10 / 20 times (small / medium / large), whatever pagination it uses;
- the activate form of a role asking for a TOTP code and a reason, high in the tree;
- two activation POSTs: a Reader (no MFA) and that role with a valid TOTP code (deactivated
  in between, unmeasured); the goal is <= 12 queries and <= 5x the minimal page;
- one bulk approval, from the Approve requests page's own form, of as many fresh requests
  as the approver has pending (1,000 at large): total queries and time, and per request.

With --check-flat (the default for --size small) it first measures at half the size and fails
when a page's query count differs between the two sizes (the bulk row instead prints the
queries each further request costs). It never asserts a time.

    python -m tests.bench [--size small|medium|large] [--repeat 5] [--database-url URL]

Throughput through gunicorn (see throughput.py): activations per second with 4 workers and 8
clients, and 1 client against 2 clients on 2 workers (parallel activations of different users):

    python -m tests.bench throughput --database-url postgres://... [--size small]
        [--workers 4 --clients 8 --seconds 20] [--parallel-seconds 10]
"""

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["small", "medium", "large"], default="large")
    parser.add_argument(
        "--repeat", type=int, default=None, help="Timed runs per page, median (5; small: 3)."
    )
    parser.add_argument(
        "--database-url",
        default="",
        help="An EMPTY database to use instead of a temporary SQLite file (it gets migrated).",
    )
    parser.add_argument(
        "--check-flat",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Measure at half size first; fail if a query count grows (default: small only).",
    )
    parser.add_argument("--verify-chain", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--markdown", action="store_true", help="Print the table as Markdown.")
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 3 if args.size == "small" else 5
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.check_flat is None:
        args.check_flat = args.size == "small"
    return args


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pim_portal.settings")
    os.environ.setdefault("Q_LOG_LEVEL", "ERROR")
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host, mail to memory
    settings.ROOT_URLCONF = "tests.bench.urls"  # the portal plus the minimal page
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("migrate", verbosity=0, interactive=False)


def timed(what: str, fn):
    started = time.perf_counter()
    result = fn()
    print(f"  {what}: {time.perf_counter() - started:.1f} s", flush=True)
    return result


def run(args) -> int:
    from django.core.cache import cache
    from django.db import connection

    from audit.log import verify_chain
    from tests.bench import audit_chain, pages
    from tests.bench.world import SIZES, World

    logging.getLogger("django.request").setLevel(logging.CRITICAL)  # 403/404 are results here
    logging.getLogger("django-q").setLevel(logging.WARNING)  # "Enqueued" per side effect
    counts = SIZES[args.size]
    print(f"PIM Portal benchmark: --size {args.size} on {connection.vendor}", flush=True)
    world = World(activations=2 * (args.repeat + 2) + 2)
    problems = []
    half = None
    if args.check_flat:
        timed(f"generate half size {counts.half()}", lambda: world.grow(counts.half()))
        target = pages.pick_targets(world, args.size)
        # A round leaves rows behind (activations and their requests, decisions, a review),
        # and a page fetching its rows' relations by primary key asks once more for a kind
        # of row it lists for the first time: the first round at half size makes them, the
        # second is the one the full size is compared with.
        timed("warm up at half size", lambda: pages.measure_pages(world, target, 0))
        half = timed("measure at half size", lambda: pages.measure_pages(world, target, 0))
    timed(f"generate {counts}", lambda: world.grow(counts))
    # The generator's bulk inserts tell no one (as a database administrator's would not): what
    # the pages keep counted (assignments.counts, the dashboard) is forgotten here by hand.
    cache.clear()
    if connection.vendor == "postgresql":
        # A real database has statistics and a visibility map (autovacuum keeps both, and the
        # counts from an index alone need the map); bulk inserts leave neither yet.
        timed("vacuum analyze", lambda: connection.cursor().execute("VACUUM ANALYZE"))
    if args.verify_chain:
        checked, broken = timed("verify the audit chain", verify_chain)
        print(f"  audit chain: {checked} events, {broken or 'intact'}")
        if broken:
            problems.append(f"the generated audit chain is broken: {broken}")
    print(f"  {audit_chain.measure_seal(2_000)}")
    if connection.vendor == "postgresql":
        waited = audit_chain.writers_side_by_side(hold=1.0)
        print(
            f"  a second audited write, while a first stays uncommitted for 1 s, took "
            f"{waited:.3f} s (it would take about 1 s if writers queued behind one lock)"
        )
    target = target if half else pages.pick_targets(world, args.size)
    results = timed("measure", lambda: pages.measure_pages(world, target, args.repeat))
    print()
    print(pages.table(results, markdown=args.markdown))
    print()
    if half is not None:
        grown = pages.query_growth(half, results)
        problems += [f"query count grows with rows: {line}" for line in grown]
        if not grown:
            print("Query counts are the same at half and full size.")
        for line in pages.bulk_growth(half, results):
            print(line)
    errors = [r for r in results if r.status >= 500]
    problems += [f"{r.label} as {r.viewer} answered {r.status}" for r in errors]
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["throughput"]:
        from tests.bench import throughput

        return throughput.main(argv[1:], setup_django)
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pim-bench-") as folder:
        setup_django(args.database_url or f"sqlite:///{folder}/bench.sqlite3")
        return run(args)


if __name__ == "__main__":
    sys.exit(main())
