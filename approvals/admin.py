from django.contrib import admin

from approvals.models import ApprovalDecision


@admin.register(ApprovalDecision)
class ApprovalDecisionAdmin(admin.ModelAdmin):
    """Read-only: decisions are made in the portal, through the service that audits them."""

    list_display = ["request", "approver_name", "decision", "decided_at"]
    list_filter = ["decision"]
    search_fields = ["approver_name", "justification"]
    date_hierarchy = "decided_at"
    list_select_related = ["request__role", "request__principal_user", "request__principal_group"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
