from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from pim_portal import audit_views, dashboard, views

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path(
        "dashboard/standing-access/",
        dashboard.standing_access_change,
        name="dashboard_standing_access",
    ),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", views.account, name="account"),
    path("account/mfa/", views.mfa_enroll, name="mfa_enroll"),
    path("account/mfa/<int:pk>/remove/", views.mfa_remove, name="mfa_remove"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("approvals/", include("approvals.urls")),
    path("reviews/", include("reviews.urls")),
    path("audit/", include("pim_portal.audit_urls")),
    path("my/audit/", audit_views.my_audit, name="my_audit"),
    path("alerts/", include("alerts.urls")),
    path("emergency/", include("pim_portal.emergency_urls")),
    path("", include("assignments.urls")),
]

handler500 = "pim_portal.views.server_error"  # a lost database answers 503, not 500
