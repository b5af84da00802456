from django.urls import include, path

from connectors import views

app_name = "connectors"

urlpatterns = [
    path("", views.connector_list, name="connector_list"),
    path("new/", views.connector_create, name="connector_create"),
    path("new/<str:kind_name>/", views.connector_create_kind, name="connector_create_kind"),
    path("<int:pk>/", views.connector_detail, name="connector_detail"),
    path("<int:pk>/edit/", views.connector_update, name="connector_update"),
    path("<int:pk>/delete/", views.connector_delete, name="connector_delete"),
    path("<int:pk>/test/", views.connector_test, name="connector_test"),
    path("<int:pk>/reconcile/", views.connector_reconcile, name="connector_reconcile"),
    path("<int:pk>/retry/", views.connector_retry, name="connector_retry"),
    path("<int:pk>/findings/", views.connector_findings, name="connector_findings"),
    path("<int:pk>/failures/", views.connector_failures, name="connector_failures"),
    path("<int:pk>/mappings/new/", views.mapping_create, name="mapping_create"),
    path("mappings/<int:pk>/", views.mapping_detail, name="mapping_detail"),
    path("mappings/<int:pk>/edit/", views.mapping_update, name="mapping_update"),
    path("mappings/<int:pk>/delete/", views.mapping_delete, name="mapping_delete"),
    path("webhooks/", include("connectors.webhooks.urls")),
]
