"""Pages for every signed-in user: My roles, activation, My requests."""

from django.http import HttpResponse


def _todo(request, **kwargs):
    return HttpResponse("Not built yet", status=501)


my_roles = my_requests = _todo
