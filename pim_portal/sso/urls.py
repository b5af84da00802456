from django.contrib.auth.decorators import login_not_required
from django.urls import path
from django.views.decorators.http import require_GET

from pim_portal.sso import views

app_name = "sso"

urlpatterns = [
    path("authenticate/", login_not_required(views.BeginView.as_view()), name="begin"),
    path("callback/", login_not_required(require_GET(views.callback)), name="callback"),
]
