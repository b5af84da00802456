"""The SCIM 2.0 endpoint, `/scim/v2/`: a Django view around scim2-server's handler.

Each request: the bearer token checked (not for ServiceProviderConfig, RFC 7643 §5), the body
read up to SCIM_MAX_BODY_BYTES (larger: 413), then served in one transaction, so a refusal
half-way writes nothing. Every failure answers a SCIM error body (status, scimType, detail),
never an HTML page.
"""

import json
import logging
from http import HTTPStatus

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from scim2_models import (
    PayloadTooLargeException,
    SCIMException,
    UnauthorizedException,
)
from scim2_server.handler import ScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.routing import Operation

from pim_portal.scim import services, tokens
from pim_portal.scim.provider import service
from pim_portal.scim.storage import DjangoStorage

logger = logging.getLogger(__name__)

PREFIX = "/scim/v2"


def _response(scim: ScimResponse) -> HttpResponse:
    body = b"" if scim.body is None else json.dumps(scim.body, default=str).encode()
    response = HttpResponse(body, status=int(scim.status))
    for name, value in scim.headers.items():
        response[name] = value
    if scim.body is None:
        del response["Content-Type"]
    response.setdefault("Cache-Control", "no-cache")
    return response


def _error(exception: Exception) -> HttpResponse:
    return _response(service().error_response(exception))


def _normalise(body: bytes, method: str, path: str) -> bytes:
    """What the big providers send that RFC 7644 does not say, made standard before the
    parser reads it (anything unreadable is left for the parser to refuse):
    - Entra ID gives a manager as a bare id in a PATCH (`"value": "<id>"` for `...:manager`);
    - a user created or replaced without `active`: the portal's schema requires it (there is no
      "unassigned" status), so a create means active and a replacement keeps the current one.
    """
    try:
        data = json.loads(body) if body else None
    except ValueError:
        return body
    if not isinstance(data, dict):
        return body
    changed = False
    for operation in data.get("Operations") or []:
        if not isinstance(operation, dict):
            continue
        op_path = str(operation.get("path") or "").lower()
        if op_path.endswith("manager") and isinstance(operation.get("value"), str):
            operation["value"] = {"value": operation["value"]}
            changed = True
    parts = path.strip("/").split("/")
    creating_or_replacing = method in ("POST", "PUT") and "Operations" not in data
    stated = any(key.lower() == "active" for key in data)
    if parts[0].lower() == "users" and creating_or_replacing and not stated:
        data["active"] = _current_active(parts, method)
        changed = True
    return json.dumps(data).encode() if changed else body


def _current_active(parts: list[str], method: str) -> bool:
    """A create means active; a replacement keeps the user's current status."""
    if method == "PUT" and len(parts) == 2:
        users = services.users().filter(pk=services._pk(parts[1]))
        current = users.values_list("is_active", flat=True).first()
        if current is not None:
            return current
    return True


def _read_body(request) -> bytes:
    limit = settings.SCIM_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise PayloadTooLargeException(detail=f"The body is larger than {limit} bytes.")
    body = request.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLargeException(detail=f"The body is larger than {limit} bytes.")
    return body


def _scim_request(request, path: str) -> ScimRequest:
    headers = {key: value for key, value in request.headers.items()}
    return ScimRequest(
        method=request.method,
        base_url=request.build_absolute_uri(PREFIX),
        path="/" + path.removesuffix(".scim"),
        query={key: request.GET.get(key) for key in request.GET},
        headers=headers,
    )


@csrf_exempt
@login_not_required
def endpoint(request, path: str = ""):
    """Serve one SCIM request (see the module's docstring)."""
    try:
        scim_request = _scim_request(request, path)
        svc = service()
        operation = svc.match(scim_request).operation
        actor = None
        if operation is not Operation.service_provider_config:
            try:
                token = tokens.authenticate(request.headers.get("Authorization"))
            except tokens.TokenRefused as refused:
                raise UnauthorizedException(detail=str(refused)) from None
            actor = tokens.actor_of(token)
        scim_request.body = _normalise(_read_body(request), request.method, path)
        scim_request.subject = actor
        handler = ScimHandler(svc, DjangoStorage(actor))
        with transaction.atomic():
            scim = handler.handle(scim_request)
    except SCIMException as exception:
        logger.info("SCIM %s %s: %s %s", request.method, path, exception.status, exception)
        return _error(exception)
    except Exception as exception:  # a bug: still a SCIM error body, and logged with its trace
        logger.exception("SCIM %s %s failed", request.method, path)
        response = _error(exception)
        response.status_code = HTTPStatus.INTERNAL_SERVER_ERROR
        return response
    return _response(scim)
