import logging
import time
import uuid
import zoneinfo

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.sessions.exceptions import SessionInterrupted
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.utils import timezone

from pim_portal import request_context

SESSION_SIGNED_IN_AT = "pim_signed_in_at"
# What a lost or unreachable database raises (a refused or dropped connection, a timeout).
DATABASE_OUTAGE_ERRORS = (OperationalError, InterfaceError)

logger = logging.getLogger(__name__)


def is_database_outage(exc: BaseException | None) -> bool:
    """True when the exception is, or was raised while handling, a database outage."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, DATABASE_OUTAGE_ERRORS):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def database_unavailable_response() -> HttpResponse:
    """503 'the database is not reachable'. Rendered without the request, whose context
    processors (navigation, the approvals badge) would need the database."""
    response = HttpResponse(render_to_string("pim_portal/database_unavailable.html"), status=503)
    response["Retry-After"] = "10"
    return response


class SessionMiddleware(DjangoSessionMiddleware):
    """Django's session middleware, but a database outage while saving the session answers 503.

    Django turns any database error on that save into SessionInterrupted, "the session was
    deleted before the request completed", which misleads users and operators alike.
    """

    def process_response(self, request, response):
        _renew_idle_timeout(request)
        try:
            return super().process_response(request, response)
        except SessionInterrupted as interrupted:
            if not is_database_outage(interrupted):
                raise
            logger.error("The database was not reachable to save the session.", exc_info=True)
            return database_unavailable_response()


SESSION_RENEWED_AT = "pim_renewed_at"
# The idle timeout is renewed (the session saved with a new expiry) at most this often, rather
# than on every request: a write per page, for every user, bought nothing but seconds.
SESSION_RENEW_SECONDS = 60


def _renew_idle_timeout(request) -> None:
    session = getattr(request, "session", None)
    if session is None or not session.accessed or session.is_empty():
        return
    now = int(time.time())
    # Saved anyway (modified), or a minute since the last save: note when, and save.
    if session.modified or now - session.get(SESSION_RENEWED_AT, 0) >= SESSION_RENEW_SECONDS:
        session[SESSION_RENEWED_AT] = now  # marks it modified: saved with a new expiry


class SessionTimeoutMiddleware:
    """Ends a session SESSION_ABSOLUTE_TIMEOUT seconds after sign-in, however active it was.

    The idle timeout is Django's own (SESSION_COOKIE_AGE), renewed at most once a minute by
    SessionMiddleware.
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
