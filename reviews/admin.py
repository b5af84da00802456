"""Django admin for superusers: access reviews, their occurrences and items, read-only.

Reviews change only through reviews.services (which check who may manage them, keep their
schedule and reviewers' permissions consistent and write the audit log), and decisions only
through the reviewers' pages; the admin shows them for troubleshooting.
"""

from django.contrib import admin

from assignments.admin import ReadOnly
from reviews.models import AccessReview, ReviewInstance, ReviewItem


class ReviewInstanceInline(admin.TabularInline):
    model = ReviewInstance
    fields = ["number", "start", "end", "status", "completed_at", "applied_at"]
    readonly_fields = fields
    extra = 0
    show_change_link = True
    ordering = ["-number"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AccessReview)
class AccessReviewAdmin(ReadOnly, admin.ModelAdmin):
    list_display = [
        "pk",
        "name",
        "scope",
        "reviewer_type",
        "recurrence",
        "start",
        "next_start",
        "occurrences",
        "stopped_at",
        "created_by",
    ]
    list_filter = ["reviewer_type", "recurrence", "auto_apply", "default_decision"]
    search_fields = ["name", "description", "scope__path", "roles__name"]
    date_hierarchy = "created_at"
    list_select_related = ["scope", "created_by"]
    inlines = [ReviewInstanceInline]


@admin.register(ReviewInstance)
class ReviewInstanceAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["pk", "review", "number", "start", "end", "status", "applied_at"]
    list_filter = ["status"]
    search_fields = ["review__name"]
    date_hierarchy = "start"
    list_select_related = ["review"]


@admin.register(ReviewItem)
class ReviewItemAdmin(ReadOnly, admin.ModelAdmin):
    list_display = [
        "pk",
        "instance",
        "principal_name",
        "role",
        "scope",
        "kind",
        "recommendation",
        "decision",
        "decided_by_name",
        "apply_result",
    ]
    list_filter = ["decision", "recommendation", "apply_result", "kind"]
    search_fields = ["principal_name", "role__name", "scope__path", "decided_by_name"]
    list_select_related = ["instance__review", "role", "scope"]
    raw_id_fields = ["instance", "assignment", "principal_user", "principal_group"]
