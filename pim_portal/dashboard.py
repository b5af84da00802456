from django.db.models import Count, Q
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from assignments.authz import request_grants
from assignments.models import Assignment, AssignmentKind, RoleKind, RoleRequest
from audit.models import AuditEvent

TOP_ROLES = 8


def _in_force(now) -> Q:
    return Q(start__lte=now) & (Q(end__isnull=True) | Q(end__gt=now))


def _directory_counts(in_force) -> tuple[dict, list[dict]]:
    """Totals and the busiest roles from one grouped query (a row per role and kind, read
    through the index on role and kind), rather than two passes over every assignment."""
    totals = {"eligible": 0, "active": 0, "permanent_active": 0}
    per_role: dict[int, dict] = {}
    rows = (
        in_force.values("role_id", "role__name", "kind")
        .annotate(n=Count("pk"), permanent=Count("pk", filter=Q(end__isnull=True)))
        .order_by()
    )
    for row in rows:
        entry = per_role.setdefault(
            row["role_id"],
            {
                "role__id": row["role_id"],
                "role__name": row["role__name"],
                "eligible": 0,
                "active": 0,
            },
        )
        if row["kind"] == AssignmentKind.ELIGIBLE:
            entry["eligible"] += row["n"]
            totals["eligible"] += row["n"]
        else:
            entry["active"] += row["n"]
            totals["active"] += row["n"]
            totals["permanent_active"] += row["permanent"]
    top = sorted(per_role.values(), key=lambda e: (-e["active"], -e["eligible"], e["role__name"]))
    return totals, top[:TOP_ROLES]


@require_GET
def dashboard(request):
    """Overview: the viewer's own roles, and for administrators who holds what."""
    now = timezone.now()
    grants = request_grants(request)
    # One pass over the viewer's own rows for both counts.
    mine = (
        Assignment.objects.not_ended(now)
        .for_user(request.user)
        .aggregate(
            eligible=Count("pk", filter=Q(kind=AssignmentKind.ELIGIBLE)),
            active=Count("pk", filter=Q(kind=AssignmentKind.ACTIVE) & _in_force(now)),
        )
    )
    context = {
        "section": "dashboard",
        "my_eligible": mine["eligible"],
        "my_active": mine["active"],
        # Read from the clock: a request past its approval deadline is no longer pending.
        "my_pending": RoleRequest.objects.pending(now).filter(requested_by=request.user).count(),
        "can_view_directory": grants.can_view_directory(),
    }
    if grants.can_view_directory():
        in_force = (
            Assignment.objects.restrict(grants).in_force(now).filter(role__kind=RoleKind.DIRECTORY)
        )
        context["totals"], context["top_roles"] = _directory_counts(in_force)
        context["pending_total"] = RoleRequest.objects.pending(now).count()
        context["recent_events"] = AuditEvent.objects.order_by("-id")[:10]
    return render(request, "pim_portal/dashboard.html", context)
