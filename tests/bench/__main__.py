"""Benchmark of the main pages at the size of a real organization: `make bench`.

Migrates a throw-away SQLite database (or the EMPTY database named by --database-url), fills it
with bulk inserts (--size small|medium|large; large is 10,000 users, 1,000 groups, 5,000 scopes,
100,000 assignments, 20,000 requests, 1,000,000 audit events), then measures each main page per
viewer with the Django test client: SQL queries, median time, and the ratio to a minimal
signed-in page (the base layout) measured in the same run. Not part of the test suite.

With --check-flat (the default for --size small) it first measures at half the size and fails
when a page's query count differs between the two sizes. It never asserts a time.

    python -m tests.bench [--size small|medium|large] [--repeat 5] [--database-url URL]
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
    parser.add_argument("--repeat", type=int, default=5, help="Timed runs per page (median).")
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
    from django.db import connection

    from audit.log import verify_chain
    from tests.bench import pages
    from tests.bench.world import SIZES, World

    logging.getLogger("django.request").setLevel(logging.CRITICAL)  # 403/404 are results here
    counts = SIZES[args.size]
    print(f"PIM Portal benchmark: --size {args.size} on {connection.vendor}", flush=True)
    world = World(activations=2 * (args.repeat + 2) + 2)
    problems = []
    half = None
    if args.check_flat:
        timed(f"generate half size {counts.half()}", lambda: world.grow(counts.half()))
        target = pages.pick_targets(world)
        half = timed("measure at half size", lambda: pages.measure_pages(world, target, 0))
    timed(f"generate {counts}", lambda: world.grow(counts))
    if args.verify_chain:
        checked, broken = timed("verify the audit chain", verify_chain)
        print(f"  audit chain: {checked} events, {broken or 'intact'}")
        if broken:
            problems.append(f"the generated audit chain is broken: {broken}")
    target = target if half else pages.pick_targets(world)
    results = timed("measure", lambda: pages.measure_pages(world, target, args.repeat))
    print()
    print(pages.table(results, markdown=args.markdown))
    print()
    if half is not None:
        grown = pages.query_growth(half, results)
        problems += [f"query count grows with rows: {line}" for line in grown]
        if not grown:
            print("Query counts are the same at half and full size.")
    errors = [r for r in results if r.status >= 500]
    problems += [f"{r.label} as {r.viewer} answered {r.status}" for r in errors]
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="pim-bench-") as folder:
        setup_django(args.database_url or f"sqlite:///{folder}/bench.sqlite3")
        return run(args)


if __name__ == "__main__":
    sys.exit(main())
