"""The three error envelopes the PowerTokens simulator can answer with (UPSTREAMS 2.8).

PowerTokens does not document its error body, so the simulator speaks whichever of the
three plausible shapes its config names, the same one on every route:

- ``openai``: ``{"error": {"message", "type", "param", "code"}}`` (OpenAI / new-api relay style)
- ``newapi``: ``{"code", "message", "data": null}`` (new-api task routes)
- ``ark``: ``{"error": {"code", "message", "type", "param"}}`` (BytePlus ModelArk, UPSTREAMS 3.6)

The per-kind codes and type words below are guesses wherever UPSTREAMS marks them [I]/[U];
they are listed in one table so a reader can see every choice at once.
"""

from __future__ import annotations

import secrets
from typing import Literal, NamedTuple

import msgspec
from litestar import Response

Envelope = Literal["openai", "newapi", "ark"]
ErrorKind = Literal[
    "invalid_parameter",
    "missing_parameter",
    "unsupported_media_type",
    "unauthorized",
    "insufficient_quota",
    "forbidden",
    "not_found",
    "conflict",
    "rate_limited",
    "internal",
    "unavailable",
]


class _Words(NamedTuple):
    openai_type: str
    openai_code: str
    newapi_code: str
    ark_code: str
    ark_type: str
    default_message: str


_WORDS: dict[ErrorKind, _Words] = {
    "invalid_parameter": _Words(
        "invalid_request_error",
        "invalid_parameter",
        "invalid_request",
        "InvalidParameter",
        "BadRequest",
        "One or more parameters specified in the request are not valid.",
    ),
    "missing_parameter": _Words(
        "invalid_request_error",
        "missing_parameter",
        "invalid_request",
        "MissingParameter",
        "BadRequest",
        "A required parameter is missing.",
    ),
    "unsupported_media_type": _Words(
        "invalid_request_error",
        "unsupported_media_type",
        "invalid_request",
        "InvalidParameter",
        "BadRequest",
        "The request body must be JSON (Content-Type: application/json).",
    ),
    "unauthorized": _Words(
        "invalid_request_error",
        "invalid_api_key",
        "unauthorized",
        "AuthenticationError",
        "Unauthorized",
        "Invalid token: the request needs `Authorization: Bearer <token>` with a valid API key.",
    ),
    "insufficient_quota": _Words(
        "insufficient_quota",
        "insufficient_quota",
        "insufficient_quota",
        "AccountOverdueError",
        "Forbidden",
        "Insufficient quota: the account balance is too low for this request.",
    ),
    "forbidden": _Words(
        "invalid_request_error",
        "forbidden",
        "forbidden",
        "AccessDenied",
        "Forbidden",
        "You are not allowed to perform this operation.",
    ),
    "not_found": _Words(
        "invalid_request_error",
        "task_not_exist",
        "task_not_exist",
        "ResourceNotFound",
        "NotFound",
        "The task does not exist.",
    ),
    "conflict": _Words(
        "invalid_request_error",
        "invalid_task_status",
        "invalid_task_status",
        "InvalidAction.TaskStatus",
        "Conflict",
        "The operation is not allowed in the task's current status.",
    ),
    "rate_limited": _Words(
        "rate_limit_error",
        "rate_limit_exceeded",
        "rate_limit_exceeded",
        "RateLimitExceeded",
        "TooManyRequests",
        "Rate limit exceeded: too many requests, please retry later.",
    ),
    "internal": _Words(
        "server_error",
        "internal_error",
        "internal_error",
        "InternalServiceError",
        "InternalServerError",
        "Internal server error, please retry later.",
    ),
    "unavailable": _Words(
        "server_error",
        "service_unavailable",
        "service_unavailable",
        "ServiceUnavailable",
        "ServiceUnavailable",
        "The service is temporarily unavailable, please retry later.",
    ),
}


def kind_for_status(status: int) -> ErrorKind:
    """The error kind a bare fault status stands for."""
    fixed: dict[int, ErrorKind] = {
        400: "invalid_parameter",
        401: "unauthorized",
        402: "insufficient_quota",
        403: "forbidden",
        404: "not_found",
        409: "conflict",
        415: "unsupported_media_type",
        429: "rate_limited",
        502: "unavailable",
        503: "unavailable",
        504: "unavailable",
    }
    if status in fixed:
        return fixed[status]
    return "internal" if status >= 500 else "invalid_parameter"


def error_body(envelope: Envelope, kind: ErrorKind, message: str | None = None, *, param: str | None = None) -> dict:
    words = _WORDS[kind]
    text = message or words.default_message
    if envelope == "newapi":
        return {"code": words.newapi_code, "message": text, "data": None}
    if envelope == "ark":
        request_id = secrets.token_hex(10)
        error: dict = {"code": words.ark_code, "message": f"{text} Request ID: {request_id}", "type": words.ark_type}
        if param is not None:
            error["param"] = param
        return {"error": error}
    return {"error": {"message": text, "type": words.openai_type, "param": param, "code": words.openai_code}}


def error_response(
    envelope: Envelope,
    status: int,
    kind: ErrorKind | None = None,
    message: str | None = None,
    *,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    body = error_body(envelope, kind or kind_for_status(status), message, param=param)
    return Response(msgspec.json.encode(body), status_code=status, media_type="application/json", headers=headers)
