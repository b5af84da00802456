"""What the benchmark measures: the main pages per viewer, and an activation, through the test
client; each with its query count, median time and ratio to the minimal page of that viewer."""

import statistics
import time
from dataclasses import dataclass

from django.db import connection, reset_queries
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from assignments.models import RequestStatus, Role, RoleRequest
from tests.bench.urls import MINIMAL_URL
from tests.bench.world import ACTIVATED_ROLE, APPROVED_ROLE, BUSY_ROLE, World

MINIMAL = "minimal page (base layout)"


@dataclass
class Result:
    label: str
    viewer: str
    status: int
    queries: int
    median_ms: float
    note: str = ""
    ratio: float | None = None


@dataclass
class Target:
    """The rows a run looks at, chosen once so both sizes of the smoke run ask the same."""

    busy_role: int
    approved_role: int
    busy_scope: int
    request: int


def pick_targets(world: World) -> Target:
    request = (
        RoleRequest.objects.filter(role__name=APPROVED_ROLE, status=RequestStatus.PENDING_APPROVAL)
        .order_by("pk")
        .first()
    )
    return Target(
        busy_role=Role.objects.get(name=BUSY_ROLE).pk,
        approved_role=Role.objects.get(name=APPROVED_ROLE).pk,
        busy_scope=world.busy_scope.pk,
        request=request.pk,
    )


def page_list(world: World, target: Target) -> list[tuple[str, str, str]]:
    """(label, viewer, url) of every page measured, minimal pages first."""
    role = reverse("assignments:role_detail", args=[target.busy_role])
    at_scope = reverse(
        "assignments:scope_role_detail", args=[target.busy_scope, target.approved_role]
    )
    my_roles = reverse("assignments:my_roles")
    reader_eligible = world.activation_pool[0].pk
    viewers = ("plain", "admin", "eligible", "approver")
    rows = [(MINIMAL, viewer, MINIMAL_URL) for viewer in viewers]
    rows += [
        ("dashboard", viewer, reverse("dashboard")) for viewer in ("admin", "eligible", "approver")
    ]
    rows += [
        ("directory roles", "admin", reverse("assignments:directory_roles")),
        *[
            (f"busy role: {tab}{' p50' if page else ''}", "admin", f"{role}?tab={tab}{page}")
            for tab in ("eligible", "active", "expired")
            for page in ("", "&page=50")
        ],
        ("resources", "admin", reverse("assignments:resources")),
        ("resources p50", "admin", reverse("assignments:resources") + "?page=50"),
        ("busy scope", "admin", reverse("assignments:scope_detail", args=[target.busy_scope])),
        ("role at busy scope", "admin", at_scope),
        *[
            (f"my roles: {tab}", "eligible", f"{my_roles}?tab={tab}")
            for tab in ("eligible", "active", "expired")
        ],
        ("my requests", "eligible", reverse("assignments:my_requests")),
        ("approve requests", "approver", reverse("approvals:inbox")),
        ("approve requests", "admin", reverse("approvals:inbox")),
        ("request page", "approver", reverse("approvals:request_detail", args=[target.request])),
        (
            "activate form",
            "eligible",
            f"{reverse('assignments:activate')}?eligible={reader_eligible}",
        ),
        (
            "busy role CSV export",
            "admin",
            reverse("assignments:role_export", args=[target.busy_role]),
        ),
    ]
    return rows


def clients(world: World) -> dict[str, Client]:
    signed_in = {}
    for name, user in (
        ("plain", world.plain),
        ("admin", world.admin),
        ("eligible", world.eligible),
        ("approver", world.approver),
    ):
        signed_in[name] = Client()
        signed_in[name].force_login(user)
    return signed_in


def fetch(client: Client, url: str):
    """GET the page and read all of it (a streamed response is consumed here)."""
    response = client.get(url)
    if response.streaming:
        response.bytes_read = sum(len(chunk) for chunk in response.streaming_content)
    else:
        response.bytes_read = len(response.content)
    return response


def measure(fn, repeat: int) -> tuple[object, int, float]:
    """(response, queries of one warm run, median ms of `repeat` runs; 0 runs: not timed)."""
    fn()  # warm up: caches, template compilation
    reset_queries()
    with CaptureQueriesContext(connection) as queries:
        response = fn()
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        timings.append((time.perf_counter() - started) * 1000)
    return response, len(queries), statistics.median(timings) if timings else 0.0


def measure_pages(world: World, target: Target, repeat: int) -> list[Result]:
    signed_in = clients(world)
    results = []
    for label, viewer, url in page_list(world, target):
        response, queries, ms = measure(lambda c=signed_in[viewer], u=url: fetch(c, u), repeat)
        note = f"{response.bytes_read // 1024} KB"
        if label.endswith("CSV export"):
            note += ", streamed" if response.streaming else ", not streamed (built in memory)"
        results.append(Result(label, viewer, response.status_code, queries, ms, note))
    results.append(measure_activation(world, signed_in["eligible"], repeat))
    return with_ratios(results)


def measure_activation(world: World, client: Client, repeat: int) -> Result:
    """POST the activate form, each run for another eligible Reader assignment."""
    pool = iter(world.activation_pool[world.activations_used :])
    url = reverse("assignments:activate")
    statuses = []

    def activate():
        eligible = next(pool)
        world.activations_used += 1
        data = {"eligible": [eligible.pk], "duration_hours": "1", "justification": "Bench"}
        response = client.post(url, data)
        statuses.append(response.status_code)
        return response

    response, queries, ms = measure(activate, repeat)
    note = "302 = activated" if set(statuses) == {302} else f"statuses {sorted(set(statuses))}"
    return Result(
        f"activation POST ({ACTIVATED_ROLE})", "eligible", response.status_code, queries, ms, note
    )


def with_ratios(results: list[Result]) -> list[Result]:
    """One yardstick for every row: the minimal page of a user with no role and no group."""
    yardstick = next(r.median_ms for r in results if (r.label, r.viewer) == (MINIMAL, "plain"))
    for result in results:
        if yardstick:
            result.ratio = result.median_ms / yardstick
    return results


def query_growth(small: list[Result], large: list[Result]) -> list[str]:
    """The pages whose query count changed between the two sizes."""
    before = {(r.label, r.viewer): r.queries for r in small}
    return [
        f"{r.label} as {r.viewer}: {before[(r.label, r.viewer)]} queries at half size, "
        f"{r.queries} at full size"
        for r in large
        if (r.label, r.viewer) in before and before[(r.label, r.viewer)] != r.queries
    ]


def table(results: list[Result], *, markdown: bool = False) -> str:
    header = ("page", "viewer", "status", "queries", "median ms", "× minimal", "notes")
    lines = [header] + [
        (
            r.label,
            r.viewer,
            str(r.status),
            str(r.queries),
            f"{r.median_ms:.1f}",
            "" if r.ratio is None else f"{r.ratio:.1f}×",
            r.note,
        )
        for r in results
    ]
    if markdown:
        out = ["| " + " | ".join(lines[0]) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(line) + " |" for line in lines[1:]]
        return "\n".join(out)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        cells = [line[0].ljust(widths[0]), line[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(line[2:6], widths[2:6], strict=True)]
        cells.append(line[6])
        out.append("  ".join(cells).rstrip())
        if index == 0:
            out.append("  ".join("-" * width for width in widths))
    return "\n".join(out)
