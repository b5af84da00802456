from django.db.models import Count, Q
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from assignments.authz import request_grants
from assignments.models import Assignment, AssignmentKind, RoleKind, RoleRequest
from audit.models import AuditEvent


@require_GET
def dashboard(request):
    """Overview: the viewer's own roles, and for administrators who holds what."""
    now = timezone.now()
    grants = request_grants(request)
    mine = Assignment.objects.not_ended(now).for_user(request.user)
    context = {
        "section": "dashboard",
        "my_eligible": mine.eligible().count(),
        "my_active": mine.active().in_force(now).count(),
        # Read from the clock: a request past its approval deadline is no longer pending.
        "my_pending": RoleRequest.objects.pending(now).filter(requested_by=request.user).count(),
        "can_view_directory": grants.can_view_directory(),
    }
    if grants.can_view_directory():
        in_force = (
            Assignment.objects.restrict(grants).in_force(now).filter(role__kind=RoleKind.DIRECTORY)
        )
        context["totals"] = in_force.aggregate(
            eligible=Count("pk", filter=Q(kind=AssignmentKind.ELIGIBLE)),
            active=Count("pk", filter=Q(kind=AssignmentKind.ACTIVE)),
            permanent_active=Count("pk", filter=Q(kind=AssignmentKind.ACTIVE, end__isnull=True)),
        )
        context["top_roles"] = (
            in_force.values("role__id", "role__name")
            .annotate(
                eligible=Count("pk", filter=Q(kind=AssignmentKind.ELIGIBLE)),
                active=Count("pk", filter=Q(kind=AssignmentKind.ACTIVE)),
            )
            .order_by("-active", "-eligible")[:8]
        )
        context["pending_total"] = RoleRequest.objects.pending(now).count()
        context["recent_events"] = AuditEvent.objects.order_by("-seq")[:10]
    return render(request, "pim_portal/dashboard.html", context)
