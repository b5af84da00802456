"""What the benchmark measures through the Django test client: the main pages per viewer, two
activations (without and with a TOTP code) and one bulk approval from the inbox; each with its
query count, median time and ratio to the minimal page measured in the same run.

Deep pages are reached the way a person reaches them: by following the page's own "Next" link
(whatever it carries, ?page= or a keyset cursor) a fixed number of times."""

import html
import re
import statistics
import time
from dataclasses import dataclass
from urllib.parse import urljoin

from django.db import connection, reset_queries
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from assignments import services
from assignments.models import Assignment, AssignmentKind, RequestStatus, Role, RoleRequest
from tests.bench import reviews
from tests.bench.urls import MINIMAL_URL
from tests.bench.world import ACTIVATED_ROLE, APPROVED_ROLE, BUSY_ROLE, MFA_ROLE, World

MINIMAL = "minimal page (base layout)"
VIEWERS = ("admin", "eligible", "approver")
DEEP_HOPS = {"small": 3, "medium": 10, "large": 20}  # "Next" links followed for a deep page
ACTIVATION_GOAL = "goal ≤ 12 queries, ≤ 5×"


@dataclass
class Result:
    label: str
    viewer: str
    status: int
    queries: int
    median_ms: float
    note: str = ""
    ratio: float | None = None
    flat: bool = True  # its query count must not change between half and full size
    per_item: int = 0  # a bulk row: the number of items it decided


@dataclass
class Target:
    """The rows a run looks at, chosen once so both sizes of the smoke run ask the same."""

    busy_role: int
    approved_role: int
    busy_scope: int
    request: int  # pending, for the approver (and the administrator)
    own_request: int  # the eligible user's own
    mfa_eligible: int  # the eligible user's MFA role high in the tree
    hops: int


@dataclass
class Deep:
    """A page reached by following "Next" `hops` times from `url`."""

    url: str
    hops: int


def pick_targets(world: World, size: str) -> Target:
    request = (
        RoleRequest.objects.filter(role__name=APPROVED_ROLE, status=RequestStatus.PENDING_APPROVAL)
        .order_by("pk")
        .first()
    )
    own = RoleRequest.objects.filter(principal_user=world.eligible).order_by("pk").first()
    return Target(
        busy_role=Role.objects.get(name=BUSY_ROLE).pk,
        approved_role=Role.objects.get(name=APPROVED_ROLE).pk,
        busy_scope=world.busy_scope.pk,
        request=request.pk,
        own_request=own.pk,
        mfa_eligible=world.mfa_eligible.pk,
        hops=DEEP_HOPS[size],
    )


def page_list(target: Target) -> list[tuple[str, str, str | Deep]]:
    """(label, viewer, url) of every page measured, minimal pages first."""
    role = reverse("assignments:role_detail", args=[target.busy_role])
    resources = reverse("assignments:resources")
    at_scope = reverse(
        "assignments:scope_role_detail", args=[target.busy_scope, target.approved_role]
    )
    my_roles = reverse("assignments:my_roles")
    pending = reverse("approvals:request_detail", args=[target.request])
    own = reverse("approvals:request_detail", args=[target.own_request])
    rows = [(MINIMAL, viewer, MINIMAL_URL) for viewer in ("plain", *VIEWERS)]
    for viewer in VIEWERS:
        rows += [
            ("dashboard", viewer, reverse("dashboard")),
            ("directory roles", viewer, reverse("assignments:directory_roles")),
        ]
        for tab in ("eligible", "active", "expired"):
            rows.append((f"busy role: {tab}", viewer, f"{role}?tab={tab}"))
            rows.append((f"busy role: {tab}, deep", viewer, Deep(f"{role}?tab={tab}", target.hops)))
        rows += [
            ("resources", viewer, resources),
            ("resources, deep", viewer, Deep(resources, target.hops)),
            ("busy scope", viewer, reverse("assignments:scope_detail", args=[target.busy_scope])),
            ("role at busy scope", viewer, at_scope),
            *[(f"my roles: {tab}", viewer, f"{my_roles}?tab={tab}") for tab in TABS],
            ("my requests", viewer, reverse("assignments:my_requests")),
            ("approve requests", viewer, reverse("approvals:inbox")),
            ("request page", viewer, own if viewer == "eligible" else pending),
            (
                "busy role CSV export",
                viewer,
                reverse("assignments:role_export", args=[target.busy_role]),
            ),
        ]
    rows.append(
        (
            f"activate form ({MFA_ROLE}, MFA)",
            "eligible",
            f"{reverse('assignments:activate')}?eligible={target.mfa_eligible}",
        )
    )
    return rows


TABS = ("eligible", "active", "expired")


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


NEXT_LINK = re.compile(r"<a\b([^>]*)>\s*Next\s*</a>", re.IGNORECASE)
HREF = re.compile(r'\bhref="([^"]*)"')


def next_url(url: str, body: bytes) -> str | None:
    """The target of the page's "Next" link, or None on the last page."""
    match = NEXT_LINK.search(body.decode("utf-8", "replace"))
    href = HREF.search(match.group(1)) if match else None
    return urljoin(url, html.unescape(href.group(1))) if href else None


def follow_next(client: Client, deep: Deep) -> tuple[str, int]:
    """(url, pages moved) after following "Next" up to `deep.hops` times (unmeasured)."""
    url, moved = deep.url, 0
    for _ in range(deep.hops):
        response = client.get(url)
        found = next_url(url, response.content) if response.status_code == 200 else None
        if found is None:
            break
        url, moved = found, moved + 1
    return url, moved


def measure(fn, repeat: int, between=None) -> tuple[object, int, float]:
    """(response, queries of one warm run, median ms of `repeat` runs; 0 runs: not timed).

    `between` (unmeasured) runs after each call: it undoes what the call did."""
    between = between or (lambda: None)
    fn()  # warm up: caches, template compilation
    between()
    reset_queries()
    with CaptureQueriesContext(connection) as queries:
        response = fn()
    between()
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        timings.append((time.perf_counter() - started) * 1000)
        between()
    return response, statements(queries), statistics.median(timings) if timings else 0.0


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def statements(queries: CaptureQueriesContext) -> int:
    """SQL statements run, without BEGIN / COMMIT / savepoints (psycopg 3 logs those too)."""
    return sum(not q["sql"].startswith(TRANSACTION_CONTROL) for q in queries.captured_queries)


def measure_paired(fn, yardstick, repeat: int) -> tuple[object, int, float, float | None]:
    """`measure(fn)`, each timed run right after a timed run of `yardstick` (the minimal
    page): (response, queries, median ms, the ratio of the two medians). Measured side by
    side, a machine that slows down or speeds up during the run changes both alike."""
    response, queries, _ = measure(fn, 0)
    own, theirs = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        yardstick()
        theirs.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        fn()
        own.append((time.perf_counter() - started) * 1000)
    if not own:
        return response, queries, 0.0, None
    ms, minimal = statistics.median(own), statistics.median(theirs)
    return response, queries, ms, ms / minimal if minimal else None


def _measure_rows(rows, signed_in: dict, target: Target, repeat: int) -> list[Result]:
    results = []
    minimal = signed_in["plain"]
    for label, viewer, url in rows:
        client = signed_in[viewer]
        note = ""
        if isinstance(url, Deep):
            url, moved = follow_next(client, url)
            note = f"page {moved + 1}, " + ("" if moved == target.hops else "last page, ")
        response, queries, ms, ratio = measure_paired(
            lambda c=client, u=url: fetch(c, u), lambda: fetch(minimal, MINIMAL_URL), repeat
        )
        note += f"{response.bytes_read // 1024} KB"
        if label.endswith("CSV export") and response.status_code == 200:
            note += ", streamed" if response.streaming else ", not streamed (built in memory)"
        results.append(Result(label, viewer, response.status_code, queries, ms, note, ratio))
    return results


def measure_reviews(world: World, signed_in: dict, target: Target, repeat: int) -> list[Result]:
    """An access review of the busy role: created, its pages, decided in bulk, applied."""
    instance, created = reviews.create(world, Result)
    if connection.vendor == "postgresql":
        # As autovacuum would, soon after 15,000 rows arrive; without it plans are guesses.
        connection.cursor().execute("VACUUM ANALYZE reviews_reviewitem")
    results = [created]
    results += _measure_rows(reviews.page_rows(instance), signed_in, target, repeat)
    results.append(reviews.approve_all(instance, signed_in["approver"], Result))
    results.append(reviews.apply(world, instance, signed_in["admin"], Result))
    return results


def measure_pages(world: World, target: Target, repeat: int) -> list[Result]:
    signed_in = clients(world)
    results = _measure_rows(page_list(target), signed_in, target, repeat)
    results.append(measure_activation(world, signed_in["eligible"], repeat))
    results.append(measure_mfa_activation(world, signed_in["eligible"], repeat))
    results.append(measure_bulk_approval(world, signed_in["approver"]))
    results += measure_reviews(world, signed_in, target, repeat)
    return with_ratios(results)


def _statuses_note(statuses: list[int]) -> str:
    if set(statuses) == {302}:
        return "302 = activated"
    return f"statuses {sorted(set(statuses))} (302 = activated)"


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
    note = f"{_statuses_note(statuses)}; {ACTIVATION_GOAL}"
    return Result(
        f"activation POST ({ACTIVATED_ROLE}, no MFA)",
        "eligible",
        response.status_code,
        queries,
        ms,
        note,
    )


def totp_code(device: TOTPDevice) -> str:
    """The code the user's authenticator app shows now."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def measure_mfa_activation(world: World, client: Client, repeat: int) -> Result:
    """POST the activate form of a role asking for a TOTP code and a reason, as an administrator
    does; in between (unmeasured) the activation is deactivated and the device may take a code
    of the same 30 s step again (django-otp refuses a replayed step)."""
    eligible = world.mfa_eligible
    device = world.totp_device
    url = reverse("assignments:activate")
    statuses = []
    state = {}

    def prepare():
        TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1, throttling_failure_count=0)
        device.refresh_from_db()
        state["code"] = totp_code(device)

    def activate():
        data = {
            "eligible": [eligible.pk],
            "duration_hours": "1",
            "justification": "Change CHG-4711: rotate the storage keys",
            "mfa_code": state["code"],
        }
        response = client.post(url, data)
        statuses.append(response.status_code)
        return response

    def deactivate():
        active = (
            Assignment.objects.filter(activated_from=eligible, kind=AssignmentKind.ACTIVE)
            .not_ended()
            .values_list("pk", flat=True)
        )
        for pk in active:
            services.request_deactivate(actor=world.eligible, assignment_id=pk)
        prepare()

    prepare()
    response, queries, ms = measure(activate, repeat, between=deactivate)
    note = f"{_statuses_note(statuses)}, TOTP code + reason; {ACTIVATION_GOAL}"
    return Result(
        f"activation POST ({MFA_ROLE}, MFA)", "eligible", response.status_code, queries, ms, note
    )


FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.IGNORECASE | re.DOTALL)
INPUT = re.compile(r"<input\b([^>]*)>", re.IGNORECASE)
ATTRIBUTE = re.compile(r'([\w-]+)(?:="([^"]*)")?')
KNOWN_FIELDS = {"request", "decision", "justification"}
ALERT = re.compile(r'<div class="alert\b[^"]*"[^>]*>(.*?)</div>', re.DOTALL)
TAG = re.compile(r"<[^>]+>")


def bulk_form(body: str, action: str) -> tuple[dict, list[tuple[str, str]]] | None:
    """(hidden fields, extra checkboxes: a "select all that match" control) of the inbox's
    bulk form, or None when the page has none."""
    for attributes, inner in FORM.findall(body):
        if f'action="{action}"' not in attributes:
            continue
        hidden, extra = {}, []
        for raw in INPUT.findall(inner):
            attrs = {k: html.unescape(v or "") for k, v in ATTRIBUTE.findall(raw)}
            name, kind = attrs.get("name"), attrs.get("type", "text").lower()
            if not name or name in KNOWN_FIELDS:
                continue
            if kind == "hidden":
                hidden[name] = attrs.get("value", "")
            elif kind in ("checkbox", "radio"):
                extra.append((name, attrs.get("value", "on")))
        return hidden, extra
    return None


def measure_bulk_approval(world: World, client: Client) -> Result:
    """One bulk approval of a fresh batch of requests from the Approve requests page, through
    the HTTP POST its form makes: filtered to the batch's scope, then every request selected
    (by the form's "select all that match" control when it has one, else by their ids)."""
    total = max(2, world.approver_pending)
    scope, ids = world.bulk_batch(total)
    inbox = f"{reverse('approvals:inbox')}?scope={scope.pk}"
    page = client.get(inbox)
    found = bulk_form(page.content.decode(), reverse("approvals:bulk_decide"))
    label = "bulk approve from the inbox"
    if found is None:
        return Result(label, "approver", page.status_code, 0, 0.0, "no bulk form", flat=False)
    hidden, extra = found
    data = {**hidden, "decision": "approve", "justification": "Bench: change window approved"}
    if extra:
        for name, value in extra:
            data[name] = value
        how = "select all that match: " + ", ".join(name for name, _ in extra)
    else:
        data["request"] = [str(pk) for pk in ids]
        how = "ids of all posted"
    reset_queries()
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = client.post(reverse("approvals:bulk_decide"), data)
        ms = (time.perf_counter() - started) * 1000
    decided = RoleRequest.objects.filter(pk__in=ids).exclude(status=RequestStatus.PENDING_APPROVAL)
    done = decided.count()
    provisioned = decided.filter(status=RequestStatus.PROVISIONED).count()
    note = (
        f"{done} of {total} decided ({provisioned} provisioned), "
        f"{statements(queries) / total:.1f} queries and {ms / total:.1f} ms per request; {how}"
    )
    if done < total:
        said = ALERT.findall(client.get(inbox).content.decode())  # the messages shown after
        text = " ".join(TAG.sub(" ", " ".join(said)).split())
        note += f"; the page said: {text[:160]}" if said else ""
    return Result(
        label,
        "approver",
        response.status_code,
        statements(queries),
        ms,
        note,
        flat=False,
        per_item=total,
    )


def with_ratios(results: list[Result]) -> list[Result]:
    """The yardstick is the minimal page of a user with no role and no group. Pages were
    measured side by side with it (their ratio is set); the activations, which undo
    themselves between runs, against its median measured at the start."""
    yardstick = next(r.median_ms for r in results if (r.label, r.viewer) == (MINIMAL, "plain"))
    for result in results:
        if yardstick and not result.per_item and result.ratio is None:
            result.ratio = result.median_ms / yardstick
    return results


def query_growth(small: list[Result], large: list[Result]) -> list[str]:
    """The pages whose query count changed between the two sizes."""
    before = {(r.label, r.viewer): r.queries for r in small if r.flat}
    return [
        f"{r.label} as {r.viewer}: {before[(r.label, r.viewer)]} queries at half size, "
        f"{r.queries} at full size"
        for r in large
        if (r.label, r.viewer) in before and before[(r.label, r.viewer)] != r.queries
    ]


def bulk_growth(small: list[Result], large: list[Result]) -> list[str]:
    """Per bulk row: the queries each further request costs, from the two sizes."""
    before = {(r.label, r.viewer): r for r in small if r.per_item}
    lines = []
    for r in large:
        half = before.get((r.label, r.viewer))
        if r.per_item and half and r.per_item != half.per_item:
            extra = (r.queries - half.queries) / (r.per_item - half.per_item)
            lines.append(
                f"{r.label}: {half.queries} queries for {half.per_item} requests, "
                f"{r.queries} for {r.per_item}: {extra:.2f} queries per further request"
            )
    return lines


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
