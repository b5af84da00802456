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
    path("account/", views.account, name="account"),
    path("account/mfa/", views.mfa_enroll, name="mfa_enroll"),
    path("account/mfa/<int:pk>/remove/", views.mfa_remove, name="mfa_remove"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("approvals/", include("approvals.urls")),
    path("reviews/", include("reviews.urls")),
    path("", include("assignments.urls")),
]

handler500 = "pim_portal.views.server_error"  # a lost database answers 503, not 500
