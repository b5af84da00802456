"""Benchmark of the time engine with real processes: `python -m tests.bench.time_engine`.

Against an EMPTY PostgreSQL database (--database-url; it gets migrated), with a timekeeper and
two django-q2 worker processes (--clusters 2, one worker each), on the database broker and on
Redis (--broker orm redis):

- burst: N active assignments (--burst 10000) all ending in the same second; how long until
  every end is recorded, audited and its mail queued, and the delay of each end (the time its
  row was processed minus its end), median and p99;
- steady: ends spread over a few seconds (--steady 300 over --spread 20 s), as a working day
  brings them; the delay of each, median and p99.

The delay is read from the rows themselves (end_processed_at - end), so it includes the
timekeeper's wake-up, the broker and the batch. Prints a table; asserts nothing.
"""

import argparse
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="An EMPTY PostgreSQL database.")
    parser.add_argument("--broker", nargs="+", choices=["orm", "redis"], default=["orm", "redis"])
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--steady", type=int, default=300)
    parser.add_argument("--spread", type=float, default=20.0)
    parser.add_argument("--clusters", type=int, default=2)
    parser.add_argument("--markdown", action="store_true")
    return parser.parse_args(argv)


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pim_portal.settings")
    os.environ.setdefault("Q_LOG_LEVEL", "ERROR")
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def delays(ids) -> list[float]:
    from assignments.models import Assignment

    rows = Assignment.objects.filter(pk__in=ids, end_processed_at__isnull=False)
    return sorted(
        (done - end).total_seconds() for end, done in rows.values_list("end", "end_processed_at")
    )


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(share * (len(values) - 1))))]


def run_case(broker: str, name: str, count: int, spread: float, clusters: int) -> dict:
    from assignments.models import Assignment
    from tests.workers import Workers, ending_assignments, wait_until

    tag = f"{broker}{name}{uuid.uuid4().hex[:6]}-"
    with (
        tempfile.TemporaryDirectory() as mail_dir,
        Workers(mail_dir=Path(mail_dir), broker=broker, clusters=clusters) as workers,
    ):
        time.sleep(3)  # let the processes start: their start-up is not the engine's delay
        first_in = 2.0
        ids = ending_assignments(count, first_in=first_in, spread=spread, tag=tag)
        due_at = time.monotonic() + first_in + spread
        ok = wait_until(
            lambda: not Assignment.objects.filter(pk__in=ids, end_processed_at=None).exists(),
            seconds=first_in + spread + 300,
            step=0.1,
        )
        finished = time.monotonic() - due_at
        if not ok:
            print(workers.errors(), file=sys.stderr)
    measured = delays(ids)
    return {
        "broker": broker,
        "case": name,
        "ends": count,
        "done": len(measured),
        "all done after last due (s)": round(finished, 1),
        "median delay (s)": round(percentile(measured, 0.5), 2),
        "p99 delay (s)": round(percentile(measured, 0.99), 2),
    }


def print_table(rows: list[dict], markdown: bool) -> None:
    columns = list(rows[0])
    if markdown:
        print("| " + " | ".join(columns) + " |")
        print("|" + "---|" * len(columns))
        for row in rows:
            print(
                "| "
                + " | ".join(
                    f"{row[c]:,}" if isinstance(row[c], int) else str(row[c]) for c in columns
                )
                + " |"
            )
        return
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in rows:
        print("  ".join(str(row[c]).ljust(w) for c, w in zip(columns, widths, strict=True)))


def main(argv=None) -> int:
    args = parse_args(argv if argv is not None else sys.argv[1:])
    # Stopped from outside: leave through the context managers, which stop the workers.
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
