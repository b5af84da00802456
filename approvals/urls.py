from django.urls import path

from approvals import views

app_name = "approvals"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("requests/<int:pk>/", views.request_detail, name="request_detail"),
    path("requests/<int:pk>/decide/", views.decide, name="decide"),
    path("requests/<int:pk>/cancel/", views.request_cancel_admin, name="request_cancel_admin"),
    path("bulk/", views.bulk_decide, name="bulk_decide"),
]
