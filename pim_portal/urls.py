from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from pim_portal import audit_views, dashboard, views
from pim_portal.people import signin

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path(
        "dashboard/standing-access/",
        dashboard.standing_access_change,
        name="dashboard_standing_access",
    ),
    path("login/", signin.SignInView.as_view(), name="login"),  # sign-in MFA follows it
    path("login/code/", signin.signin_code, name="login_code"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", views.account, name="account"),
    path("account/mfa/", views.mfa_enroll, name="mfa_enroll"),
    path("account/mfa/<int:pk>/remove/", views.mfa_remove, name="mfa_remove"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/login/", signin.AdminSignInView.as_view()),  # the same rule: no way around MFA
    path("admin/", admin.site.urls),
    path("approvals/", include("approvals.urls")),
    path("reviews/", include("reviews.urls")),
    path("audit/", include("pim_portal.audit_urls")),
    path("my/audit/", audit_views.my_audit, name="my_audit"),
    path("alerts/", include("alerts.urls")),
    path("connectors/", include("connectors.urls")),
    path("", include("assignments.api.urls")),  # /api/v1/ and /account/tokens/
    path("emergency/", include("pim_portal.emergency_urls")),
    path("oidc/", include("pim_portal.sso.urls")),
    path("", include("pim_portal.scim.urls")),  # /scim/v2/ and /provisioning/
    path("", include("pim_portal.people.urls")),  # /users/ and /groups/
    path("", include("assignments.urls")),
]

handler500 = "pim_portal.views.server_error"  # a lost database answers 503, not 500
