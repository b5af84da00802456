"""Reading the audit log: who may see which events, filters, keyset pages and export rows.

Plain arguments only (the `audit` app imports nothing above the core): the pages in
`pim_portal.audit_views` decide who the viewer is and what they may reach, then read here.

Every read is ordered by `id`, newest first, and paged by keyset (`id < cursor`), never by
OFFSET, so page 1,000 costs what page one does and events written between two pages never
shift them. Each filter is served by an index, or by a scan bounded by `scan_window()`: text
that only a full scan could find ("actor name contains") is searched a window of ids at a
time, and the page says which events it searched.
"""

import json
import operator
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import reduce
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from audit.logdisplay import ACTION_TEXTS
from audit.models import AuditEvent, ChainVerification
from pim_portal.humanize import when

PAGE_SIZE = 50
EXPORT_CHUNK = 2000
# Ids searched a page at a time when the only filters are text no index holds.
SCAN_WINDOW = 100_000

FAILURES = "failures"  # the action filter's "all failures"
FAILURE_WORDS = ("forbidden", "failed", "refused", "locked")

# The user model's label, as `audit.log` writes it in target_type.
USER_TARGET = settings.AUTH_USER_MODEL.lower()

# The second part of an action code (`pim.<category>.<what>`) in words, for the action menu.
CATEGORY_LABELS = {
    "request": "Requests",
    "assignment": "Assignments",
    "policy": "Role settings",
    "role": "Roles",
    "scope": "Scopes",
    "review": "Access reviews",
    "user": "Users",
    "group": "Groups",
    "security": "Security",
    "emergency": "Emergency access",
    "alert": "Alerts",
    "audit": "Audit log",
}


# Results and actions -----------------------------------------------------------------------


def is_failure(action: str) -> bool:
    """A refused, failed or locked-out attempt; everything else that was recorded happened."""
    return any(word in action for word in FAILURE_WORDS)


def failure_actions() -> list[str]:
    """Every known action code that records a failure (the "all failures" filter)."""
    return sorted(code for code in ACTION_TEXTS if is_failure(code))


def _category(code: str) -> str:
    parts = code.split(".")
    return parts[1] if len(parts) > 2 else ""


def action_groups() -> list[tuple[str, list[tuple[str, str]]]]:
    """The action menu: known codes grouped by category, each group and its items by text."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for code, text in ACTION_TEXTS.items():
        category = _category(code)
        label = CATEGORY_LABELS.get(category, category.replace("_", " ").capitalize() or "Other")
        groups.setdefault(label, []).append((code, text))
    return [
        (label, sorted(items, key=lambda item: item[1])) for label, items in sorted(groups.items())
    ]


# Filters -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventFilters:
    """What the viewer asked for; every field optional. `until` is exclusive."""

    since: datetime | None = None
    until: datetime | None = None
    actor: str = ""  # the actor's name contains
    actor_id: int | None = None
    action: str = ""  # one action code, or FAILURES
    role: str = ""  # the role's name
    scope: str = ""  # a scope path: events there and below
    principal: str = ""  # the principal's name contains
    role_request_id: int | None = None
    # How the date range was asked for ("24h", "custom", ...), for the summary only.
    period: str = ""

    @property
    def text_only(self) -> bool:
        """Only text filters no index holds narrow the events: their search is windowed."""
        if not (self.actor or self.principal):
            return False
        return not (self.actor_id or self.role_request_id or self.role or self.action)

    def any(self) -> bool:
        return any(
            (
                self.since,
                self.until,
                self.actor,
                self.actor_id,
                self.action,
                self.role,
                self.scope,
                self.principal,
                self.role_request_id,
            )
        )

    def summary(self) -> str:
        """The filters in words (for the export's audit event): 'role=Owner; scope=/x/'."""
        parts = []
        if self.since or self.until:
            since = self.since.isoformat() if self.since else "the start"
            until = self.until.isoformat() if self.until else "now"
            parts.append(f"time={since} to {until}" + (f" ({self.period})" if self.period else ""))
        for name in ("actor", "actor_id", "action", "role", "scope", "principal"):
            value = getattr(self, name)
            if value:
                parts.append(f"{name}={value}")
        if self.role_request_id:
            parts.append(f"request={self.role_request_id}")
        return "; ".join(parts) or "no filters (every event)"


def at_or_below(path: str) -> Q:
    """Events whose scope path starts with `path`: that scope and everything below it.

    LIKE 'path%' is exact, and PostgreSQL reads it from a varchar_pattern_ops index. SQLite's
    LIKE ignores case and so no index serves it: there the same rows are also asked for as a
    range, `path <= scope < path'` (path with its last character moved one up), which its
    byte-wise comparison makes the very rows the prefix names, read from the index.
    (PostgreSQL's collations do not compare byte-wise, so it never gets the range.)
    """
    prefix = Q(scope__startswith=path)
    if path and connection.vendor == "sqlite" and ord(path[-1]) < 0x10FFFF:
        prefix &= Q(scope__gte=path, scope__lt=path[:-1] + chr(ord(path[-1]) + 1))
    return prefix


def own_events(user_id: int) -> Q:
    """The events of one person: what they did, and what was done to their account."""
    return Q(actor_id=user_id) | Q(target_type=USER_TARGET, target_id=str(user_id))


def visible_events(
    *, everything: bool = False, scope_paths: list[str] | tuple = (), user_id: int | None = None
) -> QuerySet:
    """The events a viewer may reach: every one, those at or below some scopes, and (with
    `user_id`) their own. None when none of these is given."""
    if everything:
        return AuditEvent.objects.all()
    reach = [at_or_below(path) for path in scope_paths]
    if user_id is not None:
        reach.append(own_events(user_id))
    if not reach:
        return AuditEvent.objects.none()
    return AuditEvent.objects.filter(reduce(operator.or_, reach))


def filtered(rows: QuerySet, filters: EventFilters) -> QuerySet:
    """The rows that match every filter given."""
    if filters.since is not None:
        rows = rows.filter(created_at__gte=filters.since)
    if filters.until is not None:
        rows = rows.filter(created_at__lt=filters.until)
    if filters.actor_id:
        rows = rows.filter(actor_id=filters.actor_id)
    if filters.actor:
        rows = rows.filter(actor_name__icontains=filters.actor)
    if filters.action == FAILURES:
        rows = rows.filter(action__in=failure_actions())
    elif filters.action:
        rows = rows.filter(action=filters.action)
    if filters.role:
        rows = rows.filter(role=filters.role)
    if filters.scope:
        rows = rows.filter(at_or_below(filters.scope))
    if filters.principal:
        rows = rows.filter(principal__icontains=filters.principal)
    if filters.role_request_id:
        rows = rows.filter(role_request_id=filters.role_request_id)
    return rows


def scan_window(filters: EventFilters, *, own: bool = False) -> int | None:
    """How many ids one page searches, or None for no limit (an index bounds the search).

    A person's own events come from the actor and target indexes, so they need no window.
    """
    if own or not filters.text_only:
        return None
    return max(1, int(getattr(settings, "AUDIT_SCAN_WINDOW", SCAN_WINDOW)))


# Keyset pages ------------------------------------------------------------------------------


@dataclass
class EventPage:
    """One page, newest first, and the cursors to the pages either side of it.

    The page covers every id from `lowest` to `highest`: each event there that matches is on
    it. "Older" asks for `id < older`, "Newer" for `id > newer`.
    """

    events: list = field(default_factory=list)
    older: int | None = None
    newer: int | None = None
    lowest: int | None = None
    highest: int | None = None
    window: int | None = None

    def __iter__(self):
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    @property
    def has_other_pages(self) -> bool:
        return self.older is not None or self.newer is not None

    @property
    def is_first(self) -> bool:
        return self.newer is None


def _edges() -> tuple[int, int] | None:
    """(lowest id, highest id) of the whole log: two reads of the primary key's ends."""
    ids = AuditEvent.objects.order_by()
    highest = ids.order_by("-id").values_list("id", flat=True).first()
    if highest is None:
        return None
    return ids.order_by("id").values_list("id", flat=True).first(), highest


def event_page(
    rows: QuerySet,
    *,
    older: int | None = None,
    newer: int | None = None,
    per_page: int = PAGE_SIZE,
    window: int | None = None,
) -> EventPage:
    """The page of `rows` just below id `older`, or just above id `newer`, else the newest.

    With a `window`, a page searches at most that many ids and may come out short, or empty:
    its "Older" link carries on below the ids it searched.
    """
    edges = _edges() if window else None
    if window and edges is None:
        return EventPage(window=window)
    if newer is not None and older is None:
        page = _newer_page(rows, newer, per_page, window, edges)
        if page is not None:
            return page
        older = None  # back at the top: the newest page
    return _older_page(rows, older, per_page, window, edges)


def _older_page(rows, below, per_page, window, edges) -> EventPage:
    if window:
        lowest_id, highest_id = edges
        top = min(below - 1, highest_id) if below is not None else highest_id
        floor = max(top - window + 1, lowest_id)
        rows = rows.filter(id__lte=top, id__gte=floor)
    elif below is not None:
        top = below - 1
        rows = rows.filter(id__lt=below)
    else:
        top = None
    found = list(rows.order_by("-id")[: per_page + 1])
    page = EventPage(events=found[:per_page], window=window)
    if len(found) > per_page:
        page.lowest = page.events[-1].pk
        page.older = page.lowest
    elif window:
        page.lowest = floor
        page.older = floor if floor > lowest_id else None
    else:
        page.lowest = page.events[-1].pk if page.events else None
    page.highest = top if top is not None else (page.events[0].pk if page.events else None)
    if below is not None:
        page.newer = page.highest
    return page


def _newer_page(rows, above, per_page, window, edges) -> EventPage | None:
    """The page just above id `above`; None when it would be the newest page (show that)."""
    rows = rows.filter(id__gt=above)
    if window:
        highest_id = edges[1]
        ceiling = min(above + window, highest_id)
        rows = rows.filter(id__lte=ceiling)
    found = list(rows.order_by("id")[: per_page + 1])
    if len(found) > per_page:
        events = found[:per_page][::-1]
        page = EventPage(events=events, window=window, newer=events[0].pk, highest=events[0].pk)
    elif window and ceiling < highest_id:
        page = EventPage(events=found[::-1], window=window, newer=ceiling, highest=ceiling)
    else:
        return None
    page.lowest = above + 1
    page.older = above + 1
    return page


# Export ------------------------------------------------------------------------------------

EXPORT_FIELDS = (
    "id",
    "seq",
    "created_at",
    "actor_id",
    "actor_name",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "principal",
    "role",
    "scope",
    "role_request_id",
    "http_request_id",
    "ip",
    "before",
    "after",
    "message",
    "prev_hash",
    "hash",
)


def export_rows(rows: QuerySet, chunk_size: int = EXPORT_CHUNK) -> Iterator[tuple]:
    """Every row, newest first, as tuples of EXPORT_FIELDS: read a keyset chunk at a time.

    Each chunk is one short `id < last` query of `chunk_size` rows, so memory stays constant
    on both sides: no server-side cursor (`.iterator()` on PostgreSQL declares one WITH HOLD
    outside a transaction, which the server materialises whole before the first row, and
    which a transaction pooler forbids), and no statement holding a snapshot for a million
    rows.
    Events written while the export runs have higher ids and are not in it.
    """
    rows = rows.order_by("-id").values_list(*EXPORT_FIELDS)
    below = None
    while True:
        chunk = rows if below is None else rows.filter(id__lt=below)
        count = 0
        for row in chunk[:chunk_size]:
            count += 1
            below = row[0]
            yield row
        if count < chunk_size:
            return


# The chain's status ------------------------------------------------------------------------


def latest_verification() -> ChainVerification | None:
    return ChainVerification.objects.order_by("-ran_at", "-id").first()


# An event's before and after ---------------------------------------------------------------


@dataclass
class Change:
    field: str
    before: Any
    after: Any


class _Missing:
    """A key absent on one side (added or removed), shown as such."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


def _as_dict(value) -> dict:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    return {"value": value}


def changes(before, after) -> tuple[list[Change], list[Change]]:
    """(the keys whose value differs, the keys that stayed the same), each by key."""
    old, new = _as_dict(before), _as_dict(after)
    changed, same = [], []
    for key in sorted(set(old) | set(new), key=str):
        change = Change(str(key), old.get(key, MISSING), new.get(key, MISSING))
        (same if change.before == change.after else changed).append(change)
    return changed, same


def readable(value) -> str:
    """A before/after value in words: dates in the viewer's zone, nothing as a dash."""
    if value is MISSING:
        return "(not set)"
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, str):
        moment = _moment(value)
        return when(moment) if moment else value
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def _moment(text: str) -> datetime | None:
    """An ISO date-time with its offset (as DjangoJSONEncoder writes them), else None."""
    if len(text) < 19 or text[4:5] != "-" or "T" not in text:
        return None
    try:
        moment = parse_datetime(text)
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None
