from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from pim_portal import dashboard, views

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/mfa/", views.mfa_enroll, name="mfa_enroll"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("approvals/", include("approvals.urls")),
    path("", include("assignments.urls")),
]
