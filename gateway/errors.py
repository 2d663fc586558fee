"""vidgate's error tree. Each error knows its HTTP status, OpenAI error type and
code; `gateway.app` turns any of them into the OpenAI envelope in one handler."""

from __future__ import annotations

from typing import Any

import msgspec


class ErrorBody(msgspec.Struct, omit_defaults=False):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorEnvelope(msgspec.Struct):
    error: ErrorBody


class GatewayError(Exception):
    status: int = 500
    type: str = "server_error"
    code: str | None = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}
        self.details = details

    def envelope(self) -> ErrorEnvelope:
        return ErrorEnvelope(ErrorBody(message=self.message, type=self.type, param=self.param, code=self.code))


class InvalidRequest(GatewayError):
    """The request is malformed or self-contradictory (422: it parsed, but can't be served as given)."""

    status = 422
    type = "invalid_request_error"
    code = "invalid_request"


class BadRequest(GatewayError):
    status = 400
    type = "invalid_request_error"
    code = "bad_request"


class UnsupportedOperation(GatewayError):
    """An OpenAI Videos operation (remix, edits, ...) that no configured provider offers."""

    status = 400
    type = "invalid_request_error"
    code = "unsupported_operation"


class Unauthenticated(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class Forbidden(GatewayError):
    status = 403
    type = "permission_error"
    code = "forbidden"


class NotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class Conflict(GatewayError):
    status = 409
    type = "invalid_request_error"
    code = "conflict"


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class RangeNotSatisfiable(GatewayError):
    """A byte range past the end of the content (416, with `Content-Range: bytes */<size>`)."""

    status = 416
    type = "invalid_request_error"
    code = "range_not_satisfiable"


class Unserviceable(GatewayError):
    """No configured provider can serve the request; `details` lists each one's reasons."""

    status = 422
    type = "invalid_request_error"
    code = "no_provider_can_serve"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limited"


class UpstreamFailed(GatewayError):
    status = 502
    type = "upstream_error"
    code = "upstream_error"


class Unavailable(GatewayError):
    status = 503
    type = "server_error"
    code = "unavailable"


class StoreUnavailable(GatewayError):
    """The store can't take a write now: locked by another process, read-only, full, or
    unreachable. Raised by both stores; the request can be sent again shortly."""

    status = 503
    type = "server_error"
    code = "store_unavailable"
    retry_after = 5  # seconds, sent as Retry-After

    def __init__(self, message: str = "The job store can't take writes right now; try again shortly") -> None:
        super().__init__(message, headers={"Retry-After": str(self.retry_after)})


class UpstreamTimeout(GatewayError):
    status = 504
    type = "upstream_error"
    code = "upstream_timeout"
