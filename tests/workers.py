"""Real background processes for the time engine's tests and benchmark.

Starts `manage.py qcluster` worker processes and a `manage.py timekeeper` against a database
that the caller has committed data to (PostgreSQL: the test database of a transactional test,
or the benchmark's), on the database broker or on Redis, each process in its own process group
so that a test can kill one with everything it forked. Mail goes to files, one per message.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]
REDIS_TEST_URL = "redis://127.0.0.1:6379/15"


def database_url() -> str:
    """The URL of the database this process uses (the test database, in a test)."""
    db = connection.settings_dict
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


def redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_TEST_URL, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@dataclass
class Workers:
    """`clusters` qcluster processes of `workers_each` workers, and one timekeeper."""

    mail_dir: Path
    broker: str = "orm"  # or "redis"
    clusters: int = 2
    workers_each: int = 1
    extra_env: dict = field(default_factory=dict)
    processes: list = field(default_factory=list)

    def env(self) -> dict:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "pim_portal.settings",
            "DATABASE_URL": database_url(),
            "Q_WORKERS": str(self.workers_each),
            "Q_CLUSTER_NAME": f"pim_test_{uuid.uuid4().hex[:8]}",
            "Q_LOG_LEVEL": "ERROR",
            "LOG_LEVEL": "WARNING",
            "TIMEKEEPER_FANOUT": str(self.clusters * self.workers_each),
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(self.mail_dir),
            "SITE_URL": settings.SITE_URL,
            "REDIS_URL": REDIS_TEST_URL if self.broker == "redis" else "",
            **self.extra_env,
        }
        env.pop("Q_SYNC", None)
        return env

    def _start(self, command: str) -> subprocess.Popen:
        return subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", command],
            cwd=ROOT,
            env=self._env,
            start_new_session=True,  # its own process group: killpg takes its forks too
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def __enter__(self):
        self._env = self.env()
        if self.broker == "redis":
            import redis

            redis.Redis.from_url(REDIS_TEST_URL).flushdb()
        self.clusters_started = [self._start("qcluster") for _ in range(self.clusters)]
        self.timekeeper = self._start("timekeeper")
        self.processes = [*self.clusters_started, self.timekeeper]
        return self

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL a process and everything it forked: no clean shutdown, no rollback hook."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def __exit__(self, *exc):
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        for process in self.processes:
            if process.stderr:
                process.stderr.close()
        return False

    def errors(self) -> str:
        """What a dead process said (for a failing test's message)."""
        dead = [p for p in self.processes if p.poll() is not None and p.stderr]
        return "\n".join(p.stderr.read().decode(errors="replace")[-2000:] for p in dead)


def ending_assignments(count: int, *, first_in: float, spread: float = 0.0, tag: str) -> list[int]:
    """`count` active Reader assignments of `count` new users, the first ending `first_in`
    seconds from now and the others spread evenly over `spread` seconds (0: all together)."""
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from assignments.models import Assignment, AssignmentKind, Role, Scope

    User = get_user_model()
    users = User.objects.bulk_create(
        (User(username=f"{tag}{i}", email=f"{tag}{i}@contoso.example") for i in range(count)),
        batch_size=2000,
    )
    now = timezone.now()
    reader, top = Role.objects.get(name="Reader"), Scope.objects.root()
    step = spread / count if spread else 0
    made = Assignment.objects.bulk_create(
        (
            Assignment(
                principal_user=user,
                role=reader,
                scope=top,
                kind=AssignmentKind.ACTIVE,
                start=now - timedelta(hours=1),
                start_processed_at=now - timedelta(hours=1),
                end=now + timedelta(seconds=first_in + i * step),
            )
            for i, user in enumerate(users)
        ),
        batch_size=2000,
    )
    return [a.pk for a in made]


def wait_until(condition, *, seconds: float, step: float = 0.2) -> bool:
    """Poll `condition()` until it is true or `seconds` pass (a bounded loop)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def mails_in(mail_dir: Path) -> list[str]:
    """The To: line of every message the file backend wrote."""
    recipients = []
    for path in sorted(mail_dir.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("To: "):
                recipients.append(line[4:].strip())
    return recipients
