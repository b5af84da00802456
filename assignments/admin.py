"""Django admin for superusers: the scope tree and role catalog; the rest read-only.

Assignments, requests and role settings change only through the portal's services, which
check the role settings and write the audit log; the admin shows them for troubleshooting.
Scopes change through the scope services (so the paths below a moved scope follow it), and
every change to a role is audited with before and after.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponseRedirect

from assignments.catalog import Perm
from assignments.models import Assignment, Role, RolePolicy, RoleRequest, Scope
from assignments.services import scopes
from audit import log as audit_log


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


class RefusalsAsMessages:
    """A service's refusal that the form could not foresee (someone changed the tree in the
    meantime) is shown as a message, not a server error; the transaction is rolled back."""

    def _refused(self, request, refusal: ValidationError):
        for message in refusal.messages:
            self.message_user(request, message, messages.ERROR)
        return HttpResponseRedirect(request.get_full_path())

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as refusal:
            return self._refused(request, refusal)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ValidationError as refusal:
            return self._refused(request, refusal)


# --- Scopes ---------------------------------------------------------------------------------


class ScopeAdminForm(forms.ModelForm):
    """Shows the scope services' refusals on the form before anything is written."""

    class Meta:
        model = Scope
        fields = ["name", "slug", "kind", "parent"]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        scope, slug, parent = self.instance, data.get("slug"), data.get("parent")
        if scope.pk is None:
            problems = scopes.creation_problems(parent=parent, kind=data.get("kind"), slug=slug)
        else:
            problems = scopes.rename_problems(scope=scope, slug=slug)
            if not problems and (parent.pk if parent else None) != scope.parent_id:
                problems = scopes.move_problems(scope=scope, new_parent=parent, slug=slug)
        if problems:
            raise ValidationError(problems)
        return data


@admin.register(Scope)
class ScopeAdmin(RefusalsAsMessages, SuperuserOnly, admin.ModelAdmin):
    form = ScopeAdminForm
    list_display = ["name", "kind", "path", "depth", "parent"]
    list_filter = ["kind"]
    search_fields = ["name", "slug", "path"]
    autocomplete_fields = ["parent"]
    ordering = ["path"]

    def get_readonly_fields(self, request, obj=None):
        # A scope's kind is what it is; moving is changing the parent.
        return ["path", "depth"] if obj is None else ["kind", "path", "depth"]

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one at a time, through scope_remove
        return actions

    def save_model(self, request, obj, form, change):
        if not change:
            created = scopes.scope_create(
                actor=request.user, parent=obj.parent, kind=obj.kind, name=obj.name, slug=obj.slug
            )
            obj.pk, obj.path, obj.depth = created.pk, created.path, created.depth
            return
        scope = Scope.objects.get(pk=obj.pk)
        if (obj.name, obj.slug) != (scope.name, scope.slug):
            scope = scopes.scope_rename(
                actor=request.user, scope=scope, name=obj.name, slug=obj.slug
            )
        if obj.parent_id != scope.parent_id:
            scope = scopes.scope_move(actor=request.user, scope=scope, new_parent=obj.parent)
        obj.path, obj.depth = scope.path, scope.depth

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        problems = [problem for obj in objs for problem in scopes.removal_problems(scope=obj)]
        if problems:  # they say more than "no permission to delete assignments"
            return deleted, counts, set(), [*problems, *protected]
        # The role settings overridden at a scope go with it, counted in its audit event.
        return deleted, counts, perms_needed - {RolePolicy._meta.verbose_name}, protected

    def delete_model(self, request, obj):
        scopes.scope_remove(actor=request.user, scope=obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for scope in queryset.order_by("-depth"):  # children before their parents
                scopes.scope_remove(actor=request.user, scope=scope)


# --- Roles ----------------------------------------------------------------------------------

PERMISSION_CHOICES = [
    (Perm.MANAGE_DIRECTORY, "Manage directory role assignments and settings"),
    (Perm.VIEW_DIRECTORY, "View directory roles, their members and settings"),
    (Perm.MANAGE_RESOURCES, "Manage resource role assignments and settings where held"),
    (Perm.VIEW_RESOURCES, "View resource roles, their members and settings where held"),
]


def role_snapshot(role: Role) -> dict:
    """What the audit log records of a role."""
    return {
        "name": role.name,
        "description": role.description,
        "kind": role.kind,
        "permissions": sorted(role.permissions or []),
        "is_builtin": role.is_builtin,
    }


class RoleAdminForm(forms.ModelForm):
    permissions = forms.MultipleChoiceField(
        choices=PERMISSION_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The portal permissions the role grants where it is held, in force.",
    )

    class Meta:
        model = Role
        fields = ["name", "description", "kind", "permissions"]


@admin.register(Role)
class RoleAdmin(SuperuserOnly, admin.ModelAdmin):
    form = RoleAdminForm
    list_display = ["name", "kind", "is_builtin", "permissions"]
    list_filter = ["kind", "is_builtin"]
    search_fields = ["name", "description"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ["is_builtin"]
        if obj.is_builtin:  # the catalog and the portal's own rules find these by name
            return ["name", "kind", "is_builtin"]
        # A directory role is held at the root only: its kind cannot change under assignments.
        return ["kind", "is_builtin"]

    def save_model(self, request, obj, form, change):
        before = role_snapshot(Role.objects.get(pk=obj.pk)) if change else None
        if not change:
            obj.is_builtin = False
        super().save_model(request, obj, form, change)
        after = role_snapshot(obj)
        if before == after:
            return
        changed = [name for name in after if before is None or before[name] != after[name]]
        audit_log.record(
            action="pim.role.changed" if change else "pim.role.created",
            actor=request.user,
            target=obj,
            role=obj.name,
            before=before,
            after=after,
            message=f"{obj} {'changed' if change else 'created'} in the Django admin"
            + (f" ({', '.join(changed)})." if change else "."),
        )

    def _record_deleted(self, request, role: Role) -> None:
        policies = role.policies.count()
        audit_log.record(
            action="pim.role.deleted",
            actor=request.user,
            target=role,
            role=role.name,
            before={**role_snapshot(role), "role_settings_removed": policies},
            message=f"{role} deleted in the Django admin, with its {policies} role settings.",
        )

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        if protected:  # assignments or requests of the role: history the admin keeps
            perms_needed = set()
        # A role's settings go with it, counted in its audit event.
        return deleted, counts, perms_needed - {RolePolicy._meta.verbose_name}, protected

    def delete_model(self, request, obj):
        self._record_deleted(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for role in queryset:
                self._record_deleted(request, role)
            super().delete_queryset(request, queryset)


# --- Read-only ------------------------------------------------------------------------------


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
