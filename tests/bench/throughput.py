"""Activations per second through gunicorn: `python -m tests.bench throughput`.

    python -m tests.bench throughput --database-url postgres://... [--size small]
        [--workers 4 --clients 8 --seconds 20] [--parallel-seconds 10]

Uses the bench database at the URL (migrated; the organization of --size is generated when it
is not there yet), gives each client its own user with an eligible Reader assignment (no MFA,
no approval), starts gunicorn with --workers on a free loopback port (DEBUG off, static files
collected to a temporary folder) and lets --clients threads activate and deactivate as fast
as they can for --seconds, each signed in as its user (a loop: activate, read the new
activation's id from the database, deactivate; so POSTs are about twice the activations).
Prints activations per second and the p50/p99 latency of the activation and deactivation
POSTs. Then, with 2 gunicorn workers, one client and two clients for --parallel-seconds each:
two processes activating for different users should run in parallel, near 2x one. gunicorn
is always stopped at the end.
"""

import argparse
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[2]
MAX_ERRORS = 20  # a client stops after this many failed requests
MAX_LOOPS = 1_000_000  # a bound on every client's loop, whatever the clock says
START_TIMEOUT = 60  # seconds gunicorn has to answer
ACTIVATE_URL = DEACTIVATE_URL = ""  # set from the URLconf once Django is set up
PK_MARK = 987654321


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m tests.bench throughput")
    parser.add_argument("--database-url", required=True, help="A PostgreSQL bench database.")
    parser.add_argument("--size", choices=["small", "medium", "large"], default="small")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument(
        "--parallel-seconds",
        type=float,
        default=None,
        help="Length of each of the 1-client and 2-client runs (default: half of --seconds; "
        "0 skips them).",
    )
    args = parser.parse_args(argv)
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        parser.error("throughput needs PostgreSQL (--database-url postgres://...)")
    if args.workers < 1 or args.clients < 1 or args.seconds <= 0:
        parser.error("--workers, --clients and --seconds must be positive")
    if args.parallel_seconds is None:
        args.parallel_seconds = max(3.0, args.seconds / 2)
    return args


# --- The database side: users, eligibilities, sessions (in this process) ------------------


@dataclass
class Persona:
    username: str
    eligible_id: int
    cookie: str  # the Cookie header of a signed-in session with a CSRF secret
    csrf: str


def prepare(size: str, count: int) -> list[Persona]:
    """The bench organization (made once) and `count` client users, each signed in."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.middleware.csrf import _get_new_csrf_string
    from django.test import Client
    from django.utils import timezone

    from assignments.models import Assignment, AssignmentKind, Role, Scope, ScopeKind
    from tests.bench.world import ACTIVATED_ROLE, CLIENT_PREFIX, SIZES, World

    User = get_user_model()
    if not User.objects.filter(username="bench-admin").exists():
        started = time.perf_counter()
        World(activations=0).grow(SIZES[size])
        print(f"  generated the {size} organization: {time.perf_counter() - started:.1f} s")
    admin = User.objects.get(username="bench-admin")
    role = Role.objects.get(name=ACTIVATED_ROLE)
    groups = list(Scope.objects.filter(kind=ScopeKind.RESOURCE_GROUP).order_by("pk")[:count])
    personas = []
    for n in range(count):
        user, _ = User.objects.get_or_create(
            username=f"{CLIENT_PREFIX}{n:02d}",
            defaults={"display_name": f"Bench Client {n:02d}", "email": f"client{n}@bench.example"},
        )
        scope = groups[n % len(groups)]
        eligible = Assignment.objects.filter(
            principal_user=user, role=role, scope=scope, kind=AssignmentKind.ELIGIBLE
        ).first()
        if eligible is None:
            eligible = Assignment(
                role=role,
                scope=scope,
                kind=AssignmentKind.ELIGIBLE,
                start=timezone.now(),
                created_by=admin,
            )
            eligible.set_principal(user)
            eligible.justification = "Bench throughput"
            eligible.save()
        end_open_activations(user, eligible.pk)
        client = Client()
        client.force_login(user)  # a session row, as a sign-in makes it
        session = client.cookies[settings.SESSION_COOKIE_NAME].value
        csrf = _get_new_csrf_string()
        cookie = f"{settings.SESSION_COOKIE_NAME}={session}; {settings.CSRF_COOKIE_NAME}={csrf}"
        personas.append(Persona(user.username, eligible.pk, cookie, csrf))
    return personas


def open_activation(eligible_id: int) -> int | None:
    from assignments.models import Assignment, AssignmentKind

    return (
        Assignment.objects.filter(activated_from_id=eligible_id, kind=AssignmentKind.ACTIVE)
        .not_ended()
        .values_list("pk", flat=True)
        .first()
    )


def end_open_activations(user, eligible_id: int) -> None:
    from assignments import services

    for _ in range(10):
        pk = open_activation(eligible_id)
        if pk is None:
            return
        services.request_deactivate(actor=user, assignment_id=pk)


# --- gunicorn --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_env(database_url: str, static_root: str) -> dict:
    """Production settings (DEBUG off) on plain HTTP; this process's SECRET_KEY, which signs
    the sessions made here (a session's auth hash is keyed with it)."""
    from django.conf import settings

    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="pim_portal.settings",
        DATABASE_URL=database_url,
        DEBUG="0",
        SECRET_KEY=settings.SECRET_KEY,
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        SECURE_HSTS_SECONDS="0",
        STATIC_ROOT=static_root,
        Q_LOG_LEVEL="ERROR",
    )
    return env


class Gunicorn:
    """gunicorn on a loopback port; stopped (TERM, then KILL) when the block ends."""

    def __init__(self, env: dict, workers: int, log: Path):
        self.env, self.workers, self.log_path = env, workers, log
        self.port = free_port()
        self.process = None

    def __enter__(self):
        self.log = self.log_path.open("w")
        command = [
            str(Path(sys.executable).with_name("gunicorn")),
            "pim_portal.wsgi:application",
            f"--bind=127.0.0.1:{self.port}",
            f"--workers={self.workers}",
            "--timeout=60",
            "--graceful-timeout=5",
            "--log-level=warning",
        ]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log_path.read_text()[-2000:]}")
            try:
                status, _ = request(self.port, "GET", "/", {})
                if status < 500:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within {START_TIMEOUT} s")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.log.close()

    def __exit__(self, *exc):
        self.stop()


def request(port: int, method: str, path: str, headers: dict, body: str | None = None):
    """(status, Location) of one request on a new connection (gunicorn's sync workers close
    each one)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("Location", "")
    finally:
        connection.close()


# --- The clients -----------------------------------------------------------------------


@dataclass
class Tally:
    activations: list[float] = field(default_factory=list)  # seconds each
    deactivations: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def client_loop(port: int, persona: Persona, deadline: float, tally: Tally) -> None:
    from django.db import connection

    headers = {
        "Cookie": persona.cookie,
        "Content-Type": "application/x-www-form-urlencoded",
        "Host": "127.0.0.1",
    }
    activate = urlencode(
        {
            "eligible": persona.eligible_id,
            "duration_hours": "1",
            "justification": "Bench throughput",
            "csrfmiddlewaretoken": persona.csrf,
        }
    )
    deactivate = urlencode({"csrfmiddlewaretoken": persona.csrf})
    try:
        for _ in range(MAX_LOOPS):
            if time.monotonic() >= deadline or len(tally.errors) >= MAX_ERRORS:
                return
            started = time.perf_counter()
            status, location = request(port, "POST", ACTIVATE_URL, headers, activate)
            took = time.perf_counter() - started
            if status != 302 or "tab=active" not in location:
                tally.errors.append(f"activate {persona.username}: {status} {location}")
                continue
            tally.activations.append(took)
            pk = open_activation(persona.eligible_id)  # the new activation's id, read here
            if pk is None:
                tally.errors.append(f"activate {persona.username}: no activation in force")
                continue
            started = time.perf_counter()
            url = DEACTIVATE_URL.replace(str(PK_MARK), str(pk))
            status, _ = request(port, "POST", url, headers, deactivate)
            if status != 302:
                tally.errors.append(f"deactivate {persona.username}: {status}")
                continue
            tally.deactivations.append(time.perf_counter() - started)
    except Exception as error:  # noqa: BLE001 - reported, and the run goes on
        tally.errors.append(f"{persona.username}: {error!r}")
    finally:
        connection.close()


@dataclass
class Run:
    workers: int
    clients: int
    seconds: float
    tally: Tally

    @property
    def rate(self) -> float:
        return len(self.tally.activations) / self.seconds


def drive(port: int, personas: list[Persona], seconds: float, workers: int) -> Run:
    tally = Tally()
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(target=client_loop, args=(port, persona, deadline, tally), daemon=True)
        for persona in personas
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)  # a request times out after 30 s
    return Run(workers, len(personas), time.monotonic() - started, tally)


def percentile(values: list[float], p: int) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def describe(run: Run) -> str:
    t = run.tally
    a_ms = [v * 1000 for v in t.activations]
    d_ms = [v * 1000 for v in t.deactivations]
    line = (
        f"{run.workers} workers, {run.clients} clients, {run.seconds:.1f} s: "
        f"{len(t.activations)} activations = {run.rate:.1f} activations/s, "
        f"{(len(t.activations) + len(t.deactivations)) / run.seconds:.1f} POSTs/s "
        f"(activation p50 {percentile(a_ms, 50):.0f} ms, p99 {percentile(a_ms, 99):.0f} ms; "
        f"deactivation p50 {percentile(d_ms, 50):.0f} ms, p99 {percentile(d_ms, 99):.0f} ms)"
    )
    if t.errors:
        line += f"\n    {len(t.errors)} errors, first: {t.errors[0]}"
    return line


def main(argv, setup_django) -> int:
    args = parse_args(argv)
    setup_django(args.database_url)
    from django.db import connection

    print(f"PIM Portal throughput: gunicorn against {connection.settings_dict['NAME']}")
    from django.urls import reverse

    global ACTIVATE_URL, DEACTIVATE_URL
    ACTIVATE_URL = reverse("assignments:activate")
    DEACTIVATE_URL = reverse("assignments:deactivate", args=[PK_MARK])
    personas = prepare(args.size, max(args.clients, 2))
    connection.close()  # gunicorn's workers and the client threads open their own
    failed = False
    with tempfile.TemporaryDirectory(prefix="pim-bench-static-") as folder:
        env = server_env(args.database_url, f"{folder}/static")
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        log = Path(folder) / "gunicorn.log"
        with Gunicorn(env, args.workers, log) as server:
            run = drive(server.port, personas[: args.clients], args.seconds, args.workers)
            print(describe(run), flush=True)
            failed |= bool(run.tally.errors)
        if args.parallel_seconds > 0:
            with Gunicorn(env, 2, log) as server:
                one = drive(server.port, personas[:1], args.parallel_seconds, 2)
                print(describe(one), flush=True)
                two = drive(server.port, personas[:2], args.parallel_seconds, 2)
                print(describe(two), flush=True)
            failed |= bool(one.tally.errors or two.tally.errors)
            if one.rate:
                print(
                    f"Two users activating in parallel: {two.rate:.1f}/s against "
                    f"{one.rate:.1f}/s for one: {two.rate / one.rate:.2f}x"
                )
        if failed and log.exists():
            print(f"gunicorn log (end):\n{log.read_text()[-3000:]}", file=sys.stderr)
    return 1 if failed else 0
