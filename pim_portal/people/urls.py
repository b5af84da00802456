from django.urls import path

from pim_portal.people import views

app_name = "people"

urlpatterns = [
    path("users/", views.user_list, name="user_list"),
    path("users/new/", views.user_create, name="user_create"),
    path("users/<int:pk>/", views.user_detail, name="user_detail"),
    path("users/<int:pk>/edit/", views.user_edit, name="user_edit"),
    path("users/<int:pk>/deactivate/", views.user_deactivate, name="user_deactivate"),
    path("users/<int:pk>/reactivate/", views.user_reactivate, name="user_reactivate"),
    path("users/<int:pk>/reset-mfa/", views.user_mfa_reset, name="user_mfa_reset"),
    path("groups/", views.group_list, name="group_list"),
    path("groups/<int:pk>/", views.group_detail, name="group_detail"),
    path(
        "groups/<int:pk>/members/<int:user_pk>/remove/",
        views.group_member_remove,
        name="group_member_remove",
    ),
]
