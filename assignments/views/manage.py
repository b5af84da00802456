"""Pages for administrators: directory roles, resources, assignments and role settings."""

from django.http import HttpResponse


def _todo(request, **kwargs):
    return HttpResponse("Not built yet", status=501)


directory_roles = role_detail = role_export = policy_edit = resources = scope_detail = _todo
scope_export = scope_role_detail = scope_policy_edit = assignment_add = assignment_update = _todo
assignment_remove = assignment_extend = assignment_renew = _todo
