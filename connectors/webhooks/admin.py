"""The webhook models in the Django admin, read-only: subscriptions are made, changed and
deleted on the Webhooks pages, through the services that audit every change (and keep the
secret out of sight); deliveries and their tries are written by the workers only.

Imported by connectors/admin.py."""

from django.contrib import admin

from connectors.models import WebhookAttempt, WebhookDelivery, WebhookSubscription


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(_ReadOnly):
    list_display = ["name", "url", "enabled", "created_at", "created_by"]
    list_filter = ["enabled"]
    list_select_related = ["created_by"]
    search_fields = ["name", "url"]
    # Never the secret, not even encrypted.
    fields = ["name", "url", "event_types", "enabled", "enabled_since", "created_at", "created_by"]


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ["at", "status_code", "error", "duration_ms", "response_excerpt"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(_ReadOnly):
    list_display = ["message_id", "event_type", "subscription", "state", "attempts", "created_at"]
    list_filter = ["state", "event_type"]
    list_select_related = ["subscription"]
    search_fields = ["message_id"]
    inlines = [WebhookAttemptInline]
