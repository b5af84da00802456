"""Every API error in one shape, Microsoft Graph's:

    {"error": {"code": "itemNotFound", "message": "No role named 'Ownr'.", "target": "role",
               "innerError": {"date": "2026-12-02T10:00:00Z", "request-id": "…"}}}

`code` is one of Graph's documented error codes (CODES), `message` says which rule refused and
`target` names the parameter or field at fault, when there is one. REST_FRAMEWORK's
EXCEPTION_HANDLER is `exception_handler` below: it answers DRF's and Django's exceptions in this
shape, a database outage with a 503, and a bug with a logged 500 in the same shape (bad input
is refused before it reaches code that could fail on it: a 500 is always a bug).
"""

import logging
from datetime import UTC, datetime

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from pim_portal.middleware import is_database_outage

logger = logging.getLogger(__name__)

CODES = {
    400: "invalidRequest",
    401: "unauthenticated",
    403: "accessDenied",
    404: "itemNotFound",
    405: "notAllowed",
    406: "notSupported",
    413: "invalidRequest",
    415: "notSupported",
    429: "activityLimitReached",
    500: "generalException",
    503: "serviceNotAvailable",
}


class ApiError(exceptions.APIException):
    """A refusal with its status, message and (optionally) the parameter at fault."""

    def __init__(self, status_code: int, message: str, *, target: str | None = None):
        super().__init__(detail=message)
        self.status_code = status_code
        self.target = target


def bad_request(message: str, target: str | None = None) -> ApiError:
    return ApiError(status.HTTP_400_BAD_REQUEST, message, target=target)


def not_found(message: str, target: str | None = None) -> ApiError:
    return ApiError(status.HTTP_404_NOT_FOUND, message, target=target)


def forbidden(message: str, target: str | None = None) -> ApiError:
    return ApiError(status.HTTP_403_FORBIDDEN, message, target=target)


def too_large(message: str) -> ApiError:
    return ApiError(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, message)


def graph_time(moment: datetime) -> str:
    """UTC with a `Z`, as Graph writes a DateTimeOffset."""
    text = moment.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def error_body(status_code: int, message: str, target: str | None = None, request=None) -> dict:
    error = {"code": CODES.get(status_code, "generalException"), "message": str(message)}
    if target:
        error["target"] = target
    inner = {"date": graph_time(datetime.now(UTC))}
    request_id = getattr(request, "request_id", None)
    if request_id:
        inner["request-id"] = str(request_id)
    error["innerError"] = inner
    return {"error": error}


def first_error(detail, path: str = "") -> tuple[str | None, str]:
    """(the field at fault, its first message) of a DRF ValidationError's detail."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else str(key)
            return first_error(value, f"{path}.{name}" if path and name else path or name)
        return (path or None), "The request is not valid."
    if isinstance(detail, list):
        if not detail:
            return (path or None), "The request is not valid."
        return first_error(detail[0], path)
    return (path or None), str(detail)


def _authenticate_header(exc) -> str | None:
    header = getattr(exc, "auth_header", None)
    if not header:
        return None
    if isinstance(exc, exceptions.AuthenticationFailed):
        # RFC 6750 §3: a token was presented and refused. The description stays ASCII (a
        # header), and the message is in the body.
        return f'{header}, error="invalid_token"'
    return header


def exception_handler(exc, context):
    request = context.get("request") if context else None
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    elif isinstance(exc, RequestDataTooBig):  # Django's own check, as DRF reads request.body
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        exc = too_large(f"The body is larger than {limit} bytes.")
    if not isinstance(exc, exceptions.APIException):
        set_rollback()
        if is_database_outage(exc):
            logger.error("API: the database is not reachable.", exc_info=exc)
            response = Response(
                error_body(503, "The database is not reachable: try again shortly.", None, request),
                status=503,
            )
            response["Retry-After"] = "10"
            return response
        logger.error("API request failed", exc_info=exc)
        return Response(
            error_body(500, "The server failed to answer: this is a bug.", None, request),
            status=500,
        )
    headers = {}
    if header := _authenticate_header(exc):
        headers["WWW-Authenticate"] = header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = f"{int(exc.wait)}"
    if isinstance(exc, exceptions.ValidationError):
        target, message = first_error(exc.detail)
    else:
        target, message = getattr(exc, "target", None), _message(exc)
    set_rollback()
    return Response(
        error_body(exc.status_code, message, target, request),
        status=exc.status_code,
        headers=headers,
    )


def _message(exc: exceptions.APIException) -> str:
    if isinstance(exc, exceptions.NotAuthenticated) and exc.detail == exc.default_detail:
        return "A bearer token is required (Authorization: Bearer <token>)."
    if isinstance(exc, exceptions.MethodNotAllowed):
        return f"{exc.detail} See /api/v1/openapi.json for what each path takes."
    detail = exc.detail
    if isinstance(detail, (list, dict)):
        return first_error(detail)[1]
    return str(detail)
