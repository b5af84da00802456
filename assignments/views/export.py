"""CSV exports of role members: streamed in constant memory, spreadsheet-safe cells, the read
audited."""

import csv
from datetime import UTC

from django.db.models.functions import Coalesce, Lower
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from assignments import authz
from assignments.models import Assignment, Role, RoleKind, Scope, ScopeKind
from audit import log as audit_log


def membership_text(assignment: Assignment, page_scope: Scope) -> str:
    if assignment.scope_id != page_scope.pk and page_scope.is_at_or_below(assignment.scope):
        return f"Inherited from {assignment.scope}"
    return "Direct"


CSV_COLUMNS = [
    "principal",
    "type",
    "role",
    "scope",
    "kind",
    "membership",
    "start",
    "end",
    "assigned by",
    "justification",
]


def _csv_cell(value) -> str:
    """Text a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _utc(value) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


class _Echo:
    """csv.writer's file: each row is handed back as text to stream, never kept."""

    def write(self, value: str) -> str:
        return value


# What a CSV row needs, read as plain values: building seven model instances per row (the
# assignment and its related users, group, role and scope) was most of the export's time.
_ROW_FIELDS = (
    "principal_user_id",
    "principal_user__display_name",
    "principal_user__first_name",
    "principal_user__last_name",
    "principal_user__username",
    "principal_group__name",
    "role__name",
    "scope_id",
    "scope__path",
    "scope__name",
    "scope__kind",
    "kind",
    "start",
    "end",
    "created_by__display_name",
    "created_by__first_name",
    "created_by__last_name",
    "created_by__username",
    "justification",
)


def _person(row: dict, prefix: str) -> str:
    """`str(user)` from the row's columns: display name, else full name, else username."""
    full = f"{row[prefix + 'first_name'] or ''} {row[prefix + 'last_name'] or ''}".strip()
    return row[prefix + "display_name"] or full or row[prefix + "username"] or ""


def _membership(row: dict, page_scope: Scope) -> str:
    """`membership_text` from the row's columns."""
    path = row["scope__path"]
    if row["scope_id"] != page_scope.pk and page_scope.path.startswith(path):
        kind = row["scope__kind"]
        name = row["scope__name"]
        where = name if kind == ScopeKind.ROOT else f"{ScopeKind(kind).label} {name}"
        return f"Inherited from {where}"
    return "Direct"


def _lines(rows, page_scope: Scope):
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    # iterator(): the rows go out as the database sends them, in constant memory.
    for row in rows.values(*_ROW_FIELDS).iterator(chunk_size=2000):
        is_user = row["principal_user_id"] is not None
        yield writer.writerow(
            [
                _csv_cell(value)
                for value in (
                    _person(row, "principal_user__") if is_user else row["principal_group__name"],
                    "User" if is_user else "Group",
                    row["role__name"],
                    row["scope__path"],
                    row["kind"],
                    _membership(row, page_scope),
                    _utc(row["start"]),
                    _utc(row["end"]),
                    _person(row, "created_by__") if row["created_by__username"] else "",
                    row["justification"],
                )
            ]
        )


def _export(request, rows, *, page_scope: Scope, filename: str, target, role: Role | None):
    """Stream the rows as CSV. The read is audited before the first row leaves, so a client
    that stops reading halfway is on the record all the same."""
    count = rows.count()
    audit_log.record(
        action="pim.assignment.exported",
        actor=request.user,
        target=target,
        role=role.name if role else "",
        scope=page_scope.path,
        message=f"{count} assignment{'' if count == 1 else 's'} exported as CSV.",
    )
    response = StreamingHttpResponse(
        _lines(rows, page_scope), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _export_rows(queryset, now):
    """Assignments in force or still to come, principals in name order."""
    name = Lower(Coalesce("principal_user__display_name", "principal_group__name"))
    return queryset.not_ended(now).with_related().order_by("role__name", "kind", name, "pk")


@require_GET
def role_export(request, role_id: int):
    role = get_object_or_404(Role, pk=role_id)
    scope = Scope.objects.root()
    grants = authz.require_view_role(request.user, role, scope, authz.request_grants(request))
    rows = Assignment.objects.restrict(grants).filter(role=role).at_or_above(scope)
    rows = _export_rows(rows, timezone.now())
    filename = f"{slugify(role.name)}-members.csv"
    return _export(request, rows, page_scope=scope, filename=filename, target=role, role=role)


@require_GET
def scope_export(request, scope_id: int):
    grants = authz.request_grants(request)
    scope = authz.scope_for_viewer(request.user, scope_id, grants)
    rows = Assignment.objects.restrict(grants).filter(role__kind=RoleKind.RESOURCE)
    rows = rows.at_or_above(scope)
    role = None
    if request.GET.get("role"):
        # A role that is not a number, or not a resource role, is a 404, never a 500.
        role = authz.role_for_viewer(
            request.user, request.GET["role"], scope, grants, kind=RoleKind.RESOURCE
        )
        rows = rows.filter(role=role)
    name = slugify(scope.name) + (f"-{slugify(role.name)}" if role else "")
    return _export(
        request,
        _export_rows(rows, timezone.now()),
        page_scope=scope,
        filename=f"{name}-members.csv",
        target=scope,
        role=role,
    )
