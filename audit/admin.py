from django.contrib import admin

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["seq", "created_at", "actor_name", "action", "target_repr", "principal", "role"]
    list_filter = ["action"]
    search_fields = ["actor_name", "target_repr", "principal", "role", "scope"]
    ordering = ["-id"]  # seq is empty until the sealer links the event

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
