"""Django admin for superusers: the scope tree and role catalog; the rest read-only.

Assignments, requests and role settings change only through the portal's services, which
check the role settings and write the audit log; the admin shows them for troubleshooting.
"""

from django.contrib import admin

from assignments.models import Assignment, Role, RolePolicy, RoleRequest, Scope


class SuperuserOnly:
    """Only superusers see these models, whatever Django permissions others hold."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request, *args):
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser


class ReadOnly(SuperuserOnly):
    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Scope)
class ScopeAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = ["name", "kind", "path", "depth", "parent"]
    list_filter = ["kind"]
    search_fields = ["name", "slug", "path"]
    readonly_fields = ["path", "depth"]
    autocomplete_fields = ["parent"]
    ordering = ["path"]


@admin.register(Role)
class RoleAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = ["name", "kind", "is_builtin", "permissions"]
    list_filter = ["kind", "is_builtin"]
    search_fields = ["name", "description"]


@admin.register(RolePolicy)
class RolePolicyAdmin(ReadOnly, admin.ModelAdmin):
    list_display = [
        "role",
        "scope",
        "activation_max_duration",
        "require_mfa_on_activation",
        "require_approval",
        "allow_permanent_eligible",
        "allow_permanent_active",
        "updated_at",
        "updated_by",
    ]
    list_filter = ["role__kind", "require_approval", "require_mfa_on_activation"]
    search_fields = ["role__name", "scope__path"]
    list_select_related = ["role", "scope", "updated_by"]


@admin.register(Assignment)
class AssignmentAdmin(ReadOnly, admin.ModelAdmin):
    list_display = [
        "pk",
        "principal_name",
        "role",
        "scope",
        "kind",
        "start",
        "end",
        "created_by",
        "ended_by",
    ]
    list_filter = ["kind", "role__kind", "role"]
    search_fields = [
        "principal_user__username",
        "principal_user__display_name",
        "principal_group__name",
        "role__name",
        "scope__path",
    ]
    date_hierarchy = "start"
    list_select_related = [
        "principal_user",
        "principal_group",
        "role",
        "scope",
        "created_by",
        "ended_by",
    ]


@admin.register(RoleRequest)
class RoleRequestAdmin(ReadOnly, admin.ModelAdmin):
    list_display = [
        "pk",
        "created_at",
        "action",
        "status",
        "principal_name",
        "role",
        "scope",
        "kind",
        "requested_by",
    ]
    list_filter = ["status", "action", "kind"]
    search_fields = [
        "principal_user__username",
        "principal_user__display_name",
        "principal_group__name",
        "role__name",
        "justification",
        "ticket_number",
    ]
    date_hierarchy = "created_at"
    list_select_related = ["principal_user", "principal_group", "role", "scope", "requested_by"]
