import time
import uuid
import zoneinfo

from django.conf import settings
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.utils import timezone

from pim_portal import request_context

SESSION_SIGNED_IN_AT = "pim_signed_in_at"


class SessionTimeoutMiddleware:
    """Ends a session SESSION_ABSOLUTE_TIMEOUT seconds after sign-in, however active it was.

    The idle timeout is Django's own (SESSION_COOKIE_AGE renewed on every request).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            signed_in_at = request.session.get(SESSION_SIGNED_IN_AT)
            now = time.time()
            if signed_in_at is None:
                request.session[SESSION_SIGNED_IN_AT] = now
            elif now - signed_in_at > settings.SESSION_ABSOLUTE_TIMEOUT:
                logout(request)
                return redirect(settings.LOGIN_URL)
        return self.get_response(request)


def client_ip(request) -> str | None:
    """The client's address. Behind our own reverse proxy, the address that proxy saw: the
    last entry of X-Forwarded-For (earlier entries are whatever the client claimed)."""
    if settings.BEHIND_TLS_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return request.META.get("REMOTE_ADDR")


class RequestContextMiddleware:
    """Makes the client IP and a request id known to the audit log, which never sees requests."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = uuid.uuid4()
        token = request_context.set_current(ip=client_ip(request), request_id=request.request_id)
        try:
            response = self.get_response(request)
        finally:
            request_context.reset(token)
        response["X-Request-ID"] = str(request.request_id)
        return response


class UserTimezoneMiddleware:
    """Shows dates in the signed-in user's time zone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        tz_name = (
            getattr(request.user, "time_zone", None) if request.user.is_authenticated else None
        )
        if tz_name:
            try:
                timezone.activate(zoneinfo.ZoneInfo(tz_name))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
