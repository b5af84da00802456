from django.urls import path

from assignments.views import export, manage, my, search

app_name = "assignments"

urlpatterns = [
    # Administrators: directory roles
    path("roles/", manage.directory_roles, name="directory_roles"),
    path("roles/<int:role_id>/", manage.role_detail, name="role_detail"),
    path("roles/<int:role_id>/export.csv", export.role_export, name="role_export"),
    path("roles/<int:role_id>/settings/", manage.policy_edit, name="policy_edit"),
    # Administrators: resources
    path("resources/", manage.resources, name="resources"),
    path("resources/<int:scope_id>/", manage.scope_detail, name="scope_detail"),
    path("resources/<int:scope_id>/export.csv", export.scope_export, name="scope_export"),
    path(
        "resources/<int:scope_id>/roles/<int:role_id>/",
        manage.scope_role_detail,
        name="scope_role_detail",
    ),
    path(
        "resources/<int:scope_id>/roles/<int:role_id>/settings/",
        manage.scope_policy_edit,
        name="scope_policy_edit",
    ),
    # Administrators: assignments
    path("assignments/add/", manage.assignment_add, name="assignment_add"),
    path("assignments/<int:pk>/update/", manage.assignment_update, name="assignment_update"),
    path("assignments/<int:pk>/remove/", manage.assignment_remove, name="assignment_remove"),
    path("assignments/<int:pk>/extend/", manage.assignment_extend, name="assignment_extend"),
    path("assignments/<int:pk>/renew/", manage.assignment_renew, name="assignment_renew"),
    # Administrators: what the add-assignment and role-settings forms look up as one types
    path("search/principals/", search.principal_search, name="principal_search"),
    path("search/role-settings/", search.role_settings, name="role_settings"),
    path("search/activation-settings/", search.activation_settings, name="activation_settings"),
    path("search/my-scopes/", search.my_scope_search, name="my_scope_search"),
    # Everyone: my roles and requests
    path("my/roles/", my.my_roles, name="my_roles"),
    path("my/requests/", my.my_requests, name="my_requests"),
    path("my/roles/activate/", my.activate, name="activate"),
    path("my/roles/<int:pk>/deactivate/", my.deactivate, name="deactivate"),
    path("my/roles/<int:pk>/extend/", my.extend_request, name="extend_request"),
    path("my/roles/<int:pk>/renew/", my.renew_request, name="renew_request"),
    path("my/requests/<int:pk>/cancel/", my.request_cancel, name="request_cancel"),
]
