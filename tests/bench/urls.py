"""The portal's URLs plus the benchmark's yardstick: a minimal signed-in page (bench only)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import path

from pim_portal.urls import handler500
from pim_portal.urls import urlpatterns as portal_urlpatterns

MINIMAL_URL = "/bench/minimal/"


@login_required
def minimal_view(request):
    """The base layout and its context processors (navigation, inbox badge), nothing else."""
    return render(request, "base.html", {"section": ""})


urlpatterns = [path(MINIMAL_URL.strip("/") + "/", minimal_view), *portal_urlpatterns]

__all__ = ["handler500", "urlpatterns"]
