"""The audit log's pages: the log, an event, one's own events, and the exports.

Who reaches which events: Privileged Role, Global and Security Administrators, Security and
Global Readers (`can_view_directory`) every event; Owners and User Access Administrators
those at or below the scopes they manage; everyone their own (on My audit, and an event's
page). The reads are `audit.queries`: these views parse the filters, ask assignments.authz,
and render or stream.
"""

import csv
import json
from datetime import date, datetime, time, timedelta

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from assignments import authz
from assignments.catalog import Perm
from assignments.models import Role, Scope
from assignments.views.export import _csv_cell, _Echo, _utc
from audit import log as audit_log
from audit import queries
from audit.logdisplay import describe
from pim_portal.params import choice, clean_text, positive_int

PERIODS = {
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
    "90d": ("Last 90 days", timedelta(days=90)),
}
# Query parameters that are filters (paging cursors are not): they survive in every link.
FILTER_PARAMS = (
    "period",
    "from",
    "to",
    "actor",
    "actor_id",
    "action",
    "role",
    "scope",
    "principal",
    "request",
)


# Reading the query string --------------------------------------------------------------


def _day(text) -> date | None:
    """A day written YYYY-MM-DD, or None."""
    if not isinstance(text, str) or len(text) != 10:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _midnight(day: date) -> datetime:
    """The start of the day in the viewer's time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


def _period(query, now) -> tuple[str, datetime | None, datetime | None]:
    """(what was asked, since, until): a preset, or custom days in the viewer's zone."""
    first, last = _day(query.get("from")), _day(query.get("to"))
    if first or last:
        since = _midnight(first) if first else None
        # The "to" day is included: up to the next midnight (23 or 25 hours away on a day the
        # clocks change).
        until = _midnight(last + timedelta(days=1)) if last and last < date.max else None
        return "custom", since, until
    period = choice(query.get("period"), PERIODS, "")
    if period:
        return period, now - PERIODS[period][1], None
    return "", None, None


def parse_filters(query, now=None) -> queries.EventFilters:
    """The filters in a query string; a value that does not parse is ignored."""
    period, since, until = _period(query, now or timezone.now())
    action = clean_text(query.get("action"), 100)
    return queries.EventFilters(
        since=since,
        until=until,
        period=period,
        actor=clean_text(query.get("actor")),
        actor_id=positive_int(query.get("actor_id")),
        action=action,
        role=clean_text(query.get("role")),
        scope=clean_text(query.get("scope"), 500),
        principal=clean_text(query.get("principal")),
        role_request_id=positive_int(query.get("request")),
    )


def _cursor(query, name: str) -> int | None:
    return positive_int(query.get(name))


def _filter_query(query) -> str:
    """The filters of the page's query string, for the export links."""
    kept = query.copy()
    for key in list(kept):
        if key not in FILTER_PARAMS:
            del kept[key]
    return kept.urlencode()


# Who reaches what ----------------------------------------------------------------------


def _log_reach(request) -> dict:
    """The audit log's reach for the viewer (visible_events' arguments), or a refusal."""
    grants = authz.request_grants(request)
    if grants.can_view_directory():
        return {"everything": True}
    paths = grants.top_paths(Perm.MANAGE_RESOURCES)
    if not paths:
        authz.deny(request.user, what="view the audit log")
    return {"scope_paths": paths}


def _event_reach(request) -> dict:
    """An event's page: the log's reach, and one's own events for everyone."""
    grants = authz.request_grants(request)
    if grants.can_view_directory():
        return {"everything": True}
    return {"scope_paths": grants.top_paths(Perm.MANAGE_RESOURCES), "user_id": request.user.pk}


# Pages ---------------------------------------------------------------------------------


def _page(request, rows: QuerySet, filters: queries.EventFilters, *, own: bool):
    page = queries.event_page(
        queries.filtered(rows, filters),
        older=_cursor(request.GET, "older"),
        newer=_cursor(request.GET, "newer"),
        per_page=queries.PAGE_SIZE,
        window=queries.scan_window(filters, own=own),
    )
    for event in page:
        event.failed = queries.is_failure(event.action)
    return page


def _list_context(request, filters: queries.EventFilters, page) -> dict:
    roles = list(Role.objects.order_by("name").values_list("name", flat=True))
    if filters.role and filters.role not in roles:
        roles.insert(0, filters.role)  # a role deleted since: still its events
    return {
        "page_obj": page,
        "filters": filters,
        "values": {name: request.GET.get(name, "") for name in FILTER_PARAMS},
        "filtered": filters.any(),
        "periods": [(key, label) for key, (label, _) in PERIODS.items()],
        "action_groups": queries.action_groups(),
        "failures": queries.FAILURES,
        "roles": roles,
        "export_query": _filter_query(request.GET),
    }


@require_GET
def event_list(request):
    reach = _log_reach(request)
    filters = parse_filters(request.GET)
    page = _page(request, queries.visible_events(**reach), filters, own=False)
    context = _list_context(request, filters, page)
    context.update(
        section="audit",
        verification=queries.latest_verification(),
        scoped_to=reach.get("scope_paths", []),
        list_url=reverse("audit:event_list"),
    )
    return render(request, "audit/event_list.html", context)


@require_GET
def my_audit(request):
    filters = parse_filters(request.GET)
    page = _page(request, queries.visible_events(user_id=request.user.pk), filters, own=True)
    context = _list_context(request, filters, page)
    context.update(section="my_audit", list_url=reverse("my_audit"), mine=True)
    context["export_query"] = "&".join(q for q in ("mine=1", context["export_query"]) if q)
    return render(request, "audit/my_audit.html", context)


def _role_url(name: str, scope: Scope | None) -> str:
    role = Role.objects.filter(name=name).first() if name else None
    if role is None:
        return ""
    if not role.is_directory_role and scope is not None and not scope.is_root:
        return reverse("assignments:scope_role_detail", args=[scope.pk, role.pk])
    return reverse("assignments:role_detail", args=[role.pk])


@require_GET
def event_detail(request, event_id: int):
    pk = positive_int(event_id)
    event = queries.visible_events(**_event_reach(request)).filter(pk=pk).first() if pk else None
    if event is None:
        authz.deny(request.user, what=f"view audit event {event_id}", not_found=True)
    scope = Scope.objects.filter(path=event.scope).first() if event.scope else None
    changed, unchanged = queries.changes(event.before, event.after)
    for change in (*changed, *unchanged):
        change.before_text = queries.readable(change.before)
        change.after_text = queries.readable(change.after)
    request_url = ""
    if event.role_request_id:
        request_url = reverse("approvals:request_detail", args=[event.role_request_id])
    return render(
        request,
        "audit/event_detail.html",
        {
            "section": "audit",
            "event": event,
            "failed": queries.is_failure(event.action),
            "changed": changed,
            "unchanged": unchanged,
            "has_values": event.before is not None or event.after is not None,
            "request_url": request_url,
            "role_url": _role_url(event.role, scope),
            "scope_obj": scope,
            "scope_url": reverse("assignments:scope_detail", args=[scope.pk]) if scope else "",
            "log_url": reverse("audit:event_list"),
            "may_view_log": _may_view_log(request),
        },
    )


def _may_view_log(request) -> bool:
    grants = authz.request_grants(request)
    return grants.can_view_directory() or bool(grants.top_paths(Perm.MANAGE_RESOURCES))


# Exports -------------------------------------------------------------------------------

CSV_COLUMNS = [
    "id",
    "sequence",
    "time (UTC)",
    "actor",
    "actor id",
    "action",
    "activity",
    "result",
    "target type",
    "target id",
    "target",
    "principal",
    "role",
    "scope",
    "request",
    "ip",
    "http request id",
    "justification or message",
    "before",
    "after",
    "previous hash",
    "hash",
]


def _result(action: str) -> str:
    return "failure" if queries.is_failure(action) else "success"


def _as_json(value) -> str:
    if value is None:
        return ""
    return json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True, ensure_ascii=False)


def _csv_lines(rows):
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for row in queries.export_rows(rows):
        event = dict(zip(queries.EXPORT_FIELDS, row, strict=True))
        yield writer.writerow(
            [
                _csv_cell(value)
                for value in (
                    event["id"],
                    event["seq"],
                    _utc(event["created_at"]),
                    event["actor_name"],
                    event["actor_id"],
                    event["action"],
                    describe(event["action"]),
                    _result(event["action"]),
                    event["target_type"],
                    event["target_id"],
                    event["target_repr"],
                    event["principal"],
                    event["role"],
                    event["scope"],
                    event["role_request_id"],
                    event["ip"],
                    event["http_request_id"],
                    event["message"],
                    _as_json(event["before"]),
                    _as_json(event["after"]),
                    event["prev_hash"],
                    event["hash"],
                )
            ]
        )


def _json_lines(rows):
    for row in queries.export_rows(rows):
        event = dict(zip(queries.EXPORT_FIELDS, row, strict=True))
        event["created_at"] = _utc(event["created_at"])
        event["display"] = describe(event["action"])
        event["result"] = _result(event["action"])
        yield json.dumps(event, cls=DjangoJSONEncoder, ensure_ascii=False) + "\n"


def _export(request, *, fmt: str, lines, content_type: str):
    """Stream the filtered events. The export is audited before the first row leaves, so a
    client that stops reading halfway is on the record all the same."""
    mine = request.GET.get("mine") == "1"
    reach = {"user_id": request.user.pk} if mine else _log_reach(request)
    filters = parse_filters(request.GET)
    rows = queries.filtered(queries.visible_events(**reach), filters)
    whose = "their own events" if mine else "the audit log"
    audit_log.record(
        action="pim.audit.exported",
        actor=request.user,
        message=f"Exported {whose} as {fmt}: {filters.summary()}.",
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(lines(rows), content_type=content_type)
    extension = "csv" if fmt == "CSV" else "jsonl"
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{extension}"'
    return response


@require_GET
def export_csv(request):
    return _export(request, fmt="CSV", lines=_csv_lines, content_type="text/csv; charset=utf-8")


@require_GET
def export_jsonl(request):
    return _export(
        request,
        fmt="JSON lines",
        lines=_json_lines,
        content_type="application/x-ndjson; charset=utf-8",
    )
