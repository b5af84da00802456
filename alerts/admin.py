from django.contrib import admin

from alerts.models import Alert, AlertHistory, AlertSetting


class _ReadOnly(admin.ModelAdmin):
    """Read-only: alerts are opened and resolved by the scan, remediated and configured in the
    portal, through the services that audit every change."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AlertHistoryInline(admin.TabularInline):
    model = AlertHistory
    fields = ["at", "what", "by_name", "details"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Alert)
class AlertAdmin(_ReadOnly):
    list_display = ["title", "kind", "severity", "status", "affected_count", "opened_at"]
    list_filter = ["status", "severity", "kind"]
    search_fields = ["title", "kind", "key"]
    date_hierarchy = "opened_at"
    inlines = [AlertHistoryInline]


@admin.register(AlertSetting)
class AlertSettingAdmin(_ReadOnly):
    list_display = ["kind", "enabled", "thresholds", "updated_at", "updated_by"]
    list_select_related = ["updated_by"]
