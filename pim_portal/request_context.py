"""Who is asking, from where: set by middleware, read by the audit log (which sees no request)."""

import contextvars
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    ip: str | None = None
    request_id: uuid.UUID | None = None


_NO_REQUEST = RequestContext()
_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "pim_request_context", default=None
)


def set_current(*, ip: str | None, request_id: uuid.UUID | None) -> contextvars.Token:
    return _current.set(RequestContext(ip=ip, request_id=request_id))


def reset(token: contextvars.Token) -> None:
    _current.reset(token)


def current() -> RequestContext:
    return _current.get() or _NO_REQUEST
