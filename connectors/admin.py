"""Django admin of connectors, for superusers: changes go through the services, audited.

A connector or mapping added, changed or deleted here is the same `connector_create`,
`mapping_update`, ... an administrator's page calls, so it is checked (the superuser must hold
Global Administrator or Privileged Role Administrator in force, as on the pages), audited, and
reconciled. What provisioning and reconciliation record (provisioning rows, drift findings)
is read-only: only the engine writes it. A connector holds the reference of its password,
never the password, so `secret_ref` is shown as it is.
"""

from django import forms
from django.contrib import admin
from django.db import transaction

import connectors.webhooks.admin  # noqa: F401  (the webhooks' models, read-only)
from assignments import authz
from assignments.admin import ReadOnly, RefusalsAsMessages, SuperuserOnly
from connectors import secrets, services
from connectors.forms import json_safe
from connectors.models import Connector, DriftFinding, Mapping, Provisioning
from connectors.services import CONNECTION_FIELDS
from connectors.targets import TargetError, kind, kind_choices


class ServicesDecide(RefusalsAsMessages, SuperuserOnly):
    """Superusers who may manage connectors (as the services check) change them; the other
    superusers see them read-only. A service's refusal (a mapping's object missing in the
    target) is a message, and nothing is written (the admin's view runs in one transaction)."""

    def _may_manage(self, request) -> bool:
        return (
            super().has_change_permission(request)
            and authz.request_grants(request).can_manage_connectors()
        )

    def has_add_permission(self, request, *args):
        return self._may_manage(request)

    def has_change_permission(self, request, obj=None):
        return self._may_manage(request)

    def has_delete_permission(self, request, obj=None):
        return self._may_manage(request)

    def get_deleted_objects(self, objs, request):
        # What goes with a connector or mapping (mappings, provisioning rows, findings) is
        # counted in its audit event; the read-only models need no delete permission of their own.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), protected


# --- Connectors -----------------------------------------------------------------------------


class ConnectorAdminForm(forms.ModelForm):
    kind = forms.ChoiceField(choices=kind_choices)

    class Meta:
        model = Connector
        fields = ["name", *CONNECTION_FIELDS]

    def clean_secret_ref(self) -> str:
        ref = (self.cleaned_data.get("secret_ref") or "").strip()
        secrets.validate_reference(ref)
        return ref

    def clean(self):
        data = super().clean()
        if "secret_ref" in self.errors:  # what was typed may be the password: not shown back
            self.data = self.data.copy()
            self.data["secret_ref"] = ""
        name = data.get("kind") or self.instance.kind
        try:
            target = kind(name)
        except TargetError as error:
            self.add_error("kind", str(error))
            return data
        options = target.options_form(data=data.get("options") or {})
        if options.is_valid():
            data["options"] = json_safe(options.cleaned_data)
        else:
            for field, errors in options.errors.items():
                for error in errors:
                    self.add_error("options", f"{field}: {error}" if field != "__all__" else error)
        return data


@admin.register(Connector)
class ConnectorAdmin(ServicesDecide, admin.ModelAdmin):
    form = ConnectorAdminForm
    list_display = [
        "name",
        "display_name",
        "kind",
        "host",
        "port",
        "username",
        "secret_ref",
        "enabled",
        "last_reconciled_at",
    ]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "display_name", "host", "username"]
    readonly_fields = ["created_at", "created_by", "last_reconciled_at", "last_error"]

    def get_readonly_fields(self, request, obj=None):
        # The name is the connector's actor in the audit log; the kind, what its options mean.
        fixed = ["name", "kind"] if obj is not None else []
        return [*fixed, *self.readonly_fields]

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        values = {field: data[field] for field in CONNECTION_FIELDS if field in data}
        if change:
            stored = Connector.objects.get(pk=obj.pk)
            services.connector_update(request.user, connector=stored, **values)
            return
        created = services.connector_create(request.user, name=obj.name, **values)
        obj.pk, obj.created_at, obj.created_by = created.pk, created.created_at, created.created_by

    def delete_model(self, request, obj):
        services.connector_delete(request.user, connector=obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for connector in queryset:
                services.connector_delete(request.user, connector=connector)


# --- Mappings -------------------------------------------------------------------------------


@admin.register(Mapping)
class MappingAdmin(ServicesDecide, admin.ModelAdmin):
    fields = ["connector", "role", "scope", "target", "enforce", "last_reconciled_at", "last_error"]
    list_display = ["connector", "role", "scope", "target", "enforce", "last_reconciled_at"]
    list_filter = ["enforce", "connector"]
    search_fields = ["target", "role__name", "scope__path", "connector__name"]
    list_select_related = ["connector", "role", "scope"]
    autocomplete_fields = ["connector", "role", "scope"]

    def get_readonly_fields(self, request, obj=None):
        fixed = ["connector", "role", "scope", "target"] if obj is not None else []
        return [*fixed, "last_reconciled_at", "last_error"]

    def save_model(self, request, obj, form, change):
        if change:
            stored = Mapping.objects.select_related("connector", "role", "scope").get(pk=obj.pk)
            if stored.enforce != obj.enforce:
                services.mapping_update(request.user, mapping=stored, enforce=obj.enforce)
            return
        created = services.mapping_create(
            request.user,
            connector=obj.connector,
            role=obj.role,
            scope=obj.scope,
            target=obj.target,
            enforce=obj.enforce,
        )
        obj.pk = created.pk

    def delete_model(self, request, obj):
        services.mapping_delete(request.user, mapping=obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for mapping in queryset.select_related("connector", "role", "scope"):
                services.mapping_delete(request.user, mapping=mapping)


# --- What the engine records: read-only -----------------------------------------------------


@admin.register(Provisioning)
class ProvisioningAdmin(ReadOnly, admin.ModelAdmin):
    list_display = [
        "user",
        "mapping",
        "state",
        "failed_operation",
        "attempts",
        "account",
        "due_at",
        "synced_at",
    ]
    list_filter = ["state", "mapping__connector"]
    search_fields = ["user__username", "account", "mapping__target", "error"]
    list_select_related = ["user", "mapping__role", "mapping__scope"]
    date_hierarchy = "synced_at"


@admin.register(DriftFinding)
class DriftFindingAdmin(ReadOnly, admin.ModelAdmin):
    list_display = [
        "account",
        "user",
        "mapping",
        "first_seen_at",
        "last_seen_at",
        "resolved_at",
        "resolution",
    ]
    list_filter = ["resolution", "mapping__connector"]
    search_fields = ["account", "user__username", "mapping__target"]
    list_select_related = ["user", "mapping__role", "mapping__scope"]
    date_hierarchy = "first_seen_at"
