from django.urls import path

from alerts import views

app_name = "alerts"

urlpatterns = [
    path("", views.alert_list, name="alert_list"),
    path("scan/", views.scan, name="scan"),
    path("settings/", views.alert_settings, name="settings"),
    path("<int:pk>/", views.alert_detail, name="alert_detail"),
    path("<int:pk>/remediate/", views.remediate, name="remediate"),
]
