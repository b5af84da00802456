from django.urls import path

from pim_portal import emergency_views

app_name = "emergency"

urlpatterns = [
    path("", emergency_views.use_list, name="use_list"),
    path("<int:pk>/", emergency_views.use_detail, name="use_detail"),
    path("<int:pk>/close/", emergency_views.use_close, name="use_close"),
]
