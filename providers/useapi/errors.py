"""How useapi.net Dreamina failures map into vidgate's one error taxonomy.

Two kinds of failure:
- an HTTP status other than 2xx, with a flat body `{"error": "<message>"[, "code": N]}`
  (UPSTREAMS 1.1: 400, 401, 402, 404, 429, 500, 596);
- a job that ended `failed` inside a 200 job record, with top-level `error`
  (e.g. `"fail_code: 2043"`) and `errorDetails` (e.g. `"OutputVideoRisk"`) (UPSTREAMS 1.5).

The upstream's words are kept verbatim: `message` is its message, `code` its own code.
"""

from __future__ import annotations

from typing import Literal

import httpx
import msgspec

from providers.base import ErrorClass, ErrorInfo, UpstreamError, parse_retry_after
from providers.useapi.wire import ErrorBody, error_body_decoder

Phase = Literal["upload", "submit", "poll", "cancel"]

CAPACITY_MESSAGE = "All accounts at capacity"  # the documented 429 body (UPSTREAMS 1.1)
CANCELLED_MESSAGE = "Cancelled by user"  # a cancelled job's `error` (UPSTREAMS 1.7)

# Non-2xx statuses, explicitly. 596 is useapi's own "Dreamina session expired".
_STATUS_CLASSES: dict[int, ErrorClass] = {
    400: ErrorClass.INVALID_REQUEST,
    401: ErrorClass.AUTH,
    402: ErrorClass.PAYMENT,
    403: ErrorClass.AUTH,  # not documented for Dreamina; a refused token is an auth problem
    404: ErrorClass.NOT_FOUND,
    408: ErrorClass.TIMEOUT,  # not documented; a proxy's request timeout
    410: ErrorClass.NOT_FOUND,  # not documented for Dreamina; other useapi products: job expired
    413: ErrorClass.INVALID_REQUEST,
    415: ErrorClass.INVALID_REQUEST,
    422: ErrorClass.INVALID_REQUEST,
    596: ErrorClass.SESSION_EXPIRED,
}

# On a paid submit these say "a proxy in front of useapi lost the origin's answer":
# the job may exist upstream, so the submit must be reconciled, never blindly resent.
# (useapi answers through Cloudflare: 520 unknown origin answer, 524 origin timed out.)
_AMBIGUOUS_SUBMIT_STATUSES = frozenset({502, 504, 520, 524})

# Words in a failed job's `error`/`errorDetails` that mean moderation refused the content.
# Only "OutputVideoRisk" (fail_code 2043) is documented; the rest are the vocabulary of
# ByteDance's risk control and of useapi's docs ("rejected by content moderation").
_CONTENT_WORDS = ("risk", "moderat", "sensitive", "violat", "nsfw", "inappropriate", "prohibited", "safety")


def malformed(message: str, *, http_status: int | None = None) -> UpstreamError:
    """A body that isn't the JSON we expect: the upstream is misbehaving, try again later."""
    return UpstreamError.of(ErrorClass.UPSTREAM_UNAVAILABLE, message, code="malformed_response", http_status=http_status)


def http_error(response: httpx.Response, phase: Phase) -> UpstreamError:
    """Classify a non-2xx answer. Unreadable error bodies still classify by status."""
    status = response.status_code
    body = _error_body(response)
    message = body.error if body is not None and body.error else _fallback_message(response)
    code = str(body.code) if body is not None and body.code is not None else None

    if status == 429:
        error_class = _classify_429(message)
    elif status in _STATUS_CLASSES:
        error_class = _STATUS_CLASSES[status]
    elif 500 <= status <= 599:
        error_class = ErrorClass.UPSTREAM_UNAVAILABLE
    elif 400 <= status <= 499:
        error_class = ErrorClass.INVALID_REQUEST
    else:  # 1xx / 3xx reaching an adapter: nothing we can read
        return malformed(f"unexpected HTTP {status} from useapi", http_status=status)

    retry_after = parse_retry_after(response.headers) if error_class.retryable else None
    ambiguous = phase == "submit" and status in _AMBIGUOUS_SUBMIT_STATUSES
    return UpstreamError.of(error_class, message, code=code, http_status=status, retry_after=retry_after, ambiguous=ambiguous)


def job_failure(error: str | None, error_details: str | None) -> ErrorInfo:
    """Classify a job that ended `failed` (and was not cancelled)."""
    text = f"{error or ''} {error_details or ''}".lower()
    error_class = ErrorClass.CONTENT_REJECTED if any(w in text for w in _CONTENT_WORDS) else ErrorClass.GENERATION_FAILED
    message = error_details or error or "job failed without a reason"
    return ErrorInfo.of(error_class, message, code=error)


def _classify_429(message: str) -> ErrorClass:
    """The only documented Dreamina 429 is "All accounts at capacity" (every account at
    `maxJobs`). A 429 that says it is a rate limit (useapi's generic per-token limits)
    is RATE_LIMIT; anything else is taken as the documented capacity answer."""
    text = message.lower()
    if CAPACITY_MESSAGE.lower() in text:
        return ErrorClass.CAPACITY
    if "rate limit" in text or "too many requests" in text:
        return ErrorClass.RATE_LIMIT
    return ErrorClass.CAPACITY


def _error_body(response: httpx.Response) -> ErrorBody | None:
    try:
        return error_body_decoder.decode(response.content)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _fallback_message(response: httpx.Response) -> str:
    text = response.text.strip()
    if text:
        return text[:500]
    return f"HTTP {response.status_code} {response.reason_phrase}".strip()
