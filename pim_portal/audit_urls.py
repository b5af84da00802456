"""The audit log's pages (namespace "audit"); My audit is routed in pim_portal.urls."""

from django.urls import path

from pim_portal import audit_views

app_name = "audit"
urlpatterns = [
    path("", audit_views.event_list, name="event_list"),
    path("export.csv", audit_views.export_csv, name="export_csv"),
    path("export.jsonl", audit_views.export_jsonl, name="export_jsonl"),
    path("<int:event_id>/", audit_views.event_detail, name="event_detail"),
]
