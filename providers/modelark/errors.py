"""How BytePlus ModelArk failures map into vidgate's error taxonomy (MODELARK.md §8).

Two kinds of failure:
- an HTTP error with the envelope `{"error": {"code", "message", "param", "type"}}` (§8.1);
- a task that ended `failed` with `error: {code, message}` (§5), or `expired` (§5.1).

The upstream's code decides (one explicit table, `CODE_CLASSES`); the HTTP status decides
only when the code is missing or unknown. Codes carry variants after a dot
(`InputImageSensitiveContentDetected.PrivacyInformation`, `MissingParameter.{Param}`), so a
code is looked up whole first, then by its part before the first dot. The upstream's code
and message (which carries its "Request ID") are kept verbatim.
"""

from __future__ import annotations

from typing import Literal

import httpx
import msgspec

from providers.base import ErrorClass, ErrorInfo, UpstreamError, parse_retry_after
from providers.modelark.wire import ErrorObject, TaskError, error_decoder

Phase = Literal["submit", "poll", "cancel", "list"]

_C = ErrorClass

# §8.2, every row, plus the refusals §6.2 names. Retryability is the class's (base.py).
CODE_CLASSES: dict[str, ErrorClass] = {
    # 400 BadRequest: the request itself
    "MissingParameter": _C.INVALID_REQUEST,
    "InvalidParameter": _C.INVALID_REQUEST,  # incl. .UnsupportedParameter, .TaskTypeMismatch, .TaskTypeConstraint
    "InvalidEndpoint.ClosedEndpoint": _C.UPSTREAM_UNAVAILABLE,  # "later, other route"
    # 400 BadRequest: moderation, never failed over (another provider runs the same models)
    "InputTextSensitiveContentDetected": _C.CONTENT_REJECTED,
    "InputImageSensitiveContentDetected": _C.CONTENT_REJECTED,
    "InputVideoSensitiveContentDetected": _C.CONTENT_REJECTED,
    "InputAudioSensitiveContentDetected": _C.CONTENT_REJECTED,
    "OutputVideoSensitiveContentDetected": _C.CONTENT_REJECTED,
    "OutputAudioSensitiveContentDetected": _C.CONTENT_REJECTED,
    "SensitiveContentDetected": _C.CONTENT_REJECTED,
    # 401 / 403: this provider's key or account, not the request
    "AuthenticationError": _C.AUTH,
    "AccessDenied": _C.AUTH,
    "OperationDenied.ServiceNotOpen": _C.AUTH,
    "AccountOverdueError": _C.PAYMENT,
    "OperationDenied.ServiceOverdue": _C.PAYMENT,
    "OperationDenied.InvalidState": _C.INVALID_REQUEST,  # DELETE of a running/cancelled task (§6.2)
    # 404 NotFound
    "InvalidEndpoint.NotFound": _C.NOT_FOUND,  # model or endpoint unknown to this account
    "InvalidEndpointOrModel.NotFound": _C.NOT_FOUND,  # the Volcengine spelling
    "NotFound": _C.NOT_FOUND,  # NotFound.{Parameter}, e.g. an unknown task id (§6.2)
    "ModelNotOpen": _C.PAYMENT,  # not activated: needs a resource pack or balance first (§10)
    # 429 TooManyRequests
    "ModelAccountRpmRateLimitExceeded": _C.RATE_LIMIT,
    "RateLimitExceeded": _C.RATE_LIMIT,  # .EndpointRPMExceeded, .EndpointFlexTPMExceeded (3P)
    "RequestBurstTooFast": _C.RATE_LIMIT,
    "AccountRateLimitExceeded": _C.RATE_LIMIT,
    "APIAccountRpmRateLimitExceeded": _C.RATE_LIMIT,
    "ModelAccountTpmRateLimitExceeded": _C.RATE_LIMIT,
    "ModelAccountFlexTpmRateLimitExceeded": _C.RATE_LIMIT,  # 3P (§8.2 notes)
    "QuotaExceeded": _C.CAPACITY,  # the 120-queued-task cap (§10); a spent free trial is PAYMENT below
    "InflightBatchsizeExceeded": _C.CAPACITY,  # concurrency tied to balance, "yes, later"
    "ServerOverloaded": _C.UPSTREAM_UNAVAILABLE,
    "SetLimitExceeded": _C.PAYMENT,  # Safe Experience Mode spend cap: paused, no retry
    # 500
    "InternalServiceError": _C.UPSTREAM_UNAVAILABLE,
}

# Only for answers whose code is missing or not in the table.
_STATUS_CLASSES: dict[int, ErrorClass] = {
    400: _C.INVALID_REQUEST,
    401: _C.AUTH,
    402: _C.PAYMENT,
    403: _C.AUTH,
    404: _C.NOT_FOUND,
    408: _C.TIMEOUT,
    409: _C.INVALID_REQUEST,
    413: _C.INVALID_REQUEST,  # the body is over 64 MB (§1)
    415: _C.INVALID_REQUEST,
    422: _C.INVALID_REQUEST,
    429: _C.RATE_LIMIT,
}

# A submit answered by a proxy page instead of ModelArk's envelope with one of these: the
# origin may have created the task, so the submit must be reconciled, never resent.
_AMBIGUOUS_SUBMIT_STATUSES = frozenset({502, 504})
_SNIPPET = 300


def class_of(code: str | None) -> ErrorClass | None:
    """The class of an upstream code (whole, then by its part before the first dot)."""
    if not code:
        return None
    found = CODE_CLASSES.get(code)
    if found is None and "." in code:
        found = CODE_CLASSES.get(code.partition(".")[0])
    return found


def http_error(response: httpx.Response, phase: Phase) -> UpstreamError:
    """Classify a non-2xx answer."""
    status = response.status_code
    envelope = _envelope(response)
    code = _text(envelope.code) if envelope else None
    message = (envelope.message if envelope else None) or _fallback_message(response)

    if phase != "submit" and status == 404:
        error_class: ErrorClass | None = _C.NOT_FOUND  # key on 404, not the code (§6.2)
    elif code == "QuotaExceeded" and "free trial" in message.lower():
        error_class = _C.PAYMENT  # §8.2: "…exhausted its free trial quota…"
    else:
        error_class = class_of(code)
    if error_class is None:
        error_class = _STATUS_CLASSES.get(status)
    if error_class is None:
        if status < 500:
            return malformed(f"ModelArk answered an unexpected HTTP {status}", response)
        error_class = _C.UPSTREAM_UNAVAILABLE

    if phase == "cancel" and error_class is _C.INVALID_REQUEST:
        # §6.2: only a queued task can be cancelled; any 4xx refusal of a known task means
        # "not cancellable now" (a running one finishes and is billed).
        message = f"ModelArk cancels only queued tasks; it refused: {message}"
        code = code or "not_cancellable"

    retryable = error_class.retryable and response.headers.get("x-should-retry", "").lower() != "false"  # §8.3
    return UpstreamError.of(
        error_class,
        message,
        code=code,
        http_status=status,
        retryable=retryable,
        retry_after=parse_retry_after(response.headers) if retryable else None,
        ambiguous=phase == "submit" and envelope is None and status in _AMBIGUOUS_SUBMIT_STATUSES,
    )


def task_failure(error: TaskError | None) -> ErrorInfo:
    """The error of a task that ended `failed` (§5).

    Moderation codes stay CONTENT_REJECTED (`OutputVideoSensitiveContentDetected` is
    sometimes flaky, but a resubmit is the caller's choice, §8.2) and 2.5's task-type codes
    INVALID_REQUEST; anything else is a failed generation another provider may retry.
    """
    code = _text(error.code) if error else None
    message = (error.message if error else None) or code or "ModelArk reported the task failed without a reason"
    found = class_of(code)
    error_class = found if found in (_C.CONTENT_REJECTED, _C.INVALID_REQUEST) else _C.GENERATION_FAILED
    return ErrorInfo.of(error_class, message, code=code)


def expired(error: TaskError | None) -> ErrorInfo:
    """A task still queued or running at `created_at + execution_expires_after` (§5.1): the
    upstream's fault, so TIMEOUT, which the gateway fails over on."""
    message = (error.message if error else None) or "the task expired upstream before it finished (execution_expires_after)"
    return ErrorInfo.of(_C.TIMEOUT, message, code="expired")


def malformed(message: str, response: httpx.Response | None = None) -> UpstreamError:
    """A body that isn't what we expect: the upstream is misbehaving; `UpstreamClient`
    marks it ambiguous when it answered a submit with a 2xx."""
    return UpstreamError.of(
        _C.UPSTREAM_UNAVAILABLE,
        message,
        code="malformed_response",
        http_status=None if response is None else response.status_code,
    )


def _envelope(response: httpx.Response) -> ErrorObject | None:
    try:
        return error_decoder.decode(response.content).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _text(value: str | int | None) -> str | None:
    return None if value in (None, "") else str(value)


def _fallback_message(response: httpx.Response) -> str:
    text = response.text.strip()[:_SNIPPET] if response.content else ""
    return f"ModelArk answered HTTP {response.status_code}" + (f": {text}" if text else " with an empty body")
