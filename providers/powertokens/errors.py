"""Classifying PowerTokens failures: HTTP error answers and failed tasks.

PowerTokens documents no error envelope (UPSTREAMS 2.8, [U]); we read all three likely
ones (new-api `{code,message,data}`, OpenAI `{error:{message,type,param,code}}`, Ark
`{error:{code,message,type,param}}`) and bodies that are none of them (HTML, empty).
The HTTP status decides first; the words of the upstream's code and message refine it
the way PowerTokens' official client does (PT-studio `category()`, UPSTREAMS 2.8).
Pure functions: they only read the `httpx.Response` they are given.
"""

from __future__ import annotations

import re

import httpx
import msgspec

from providers.base import ErrorClass, ErrorInfo, UpstreamError, parse_retry_after
from providers.powertokens.wire import ErrorObject, TaskError, VideoTask, error_decoder

# Payment / balance words (PT-studio `category()`: "quota", "insufficient", "余额不足",
# "credit", "额度"; new-api codes such as `insufficient_user_quota`).
_PAYMENT = re.compile(r"(?i:insufficient|quota|credit|balance)|余额|额度")

# Content-moderation words: Ark's `SensitiveContentDetected*` / `InputTextSensitiveContentDetected`
# (UPSTREAMS 3.6), "moderation", "risk" (risk control), and the Chinese 敏感 (sensitive),
# 审核 (review), 风控 (risk control), 违规 (violation). "risk" must start a word or a camel-case
# hump ("RiskControl", "HighRisk", "risk_check") so that "brisk" or "asterisk" don't match.
_CONTENT = re.compile(r"(?i:sensitive|moderat)|(?<![A-Za-z])(?i:risk)|(?<=[a-z])Risk|敏感|审核|风控|违规")

_SNIPPET = 200  # characters of a non-JSON error body kept in the message


def is_content_rejection(*texts: str | None) -> bool:
    return any(t and _CONTENT.search(t) for t in texts)


def _is_payment(*texts: str | None) -> bool:
    return any(t and _PAYMENT.search(t) for t in texts)


def read_envelope(body: bytes) -> tuple[str | None, str | None]:
    """The upstream's own (code, message) from any of the envelopes, verbatim; (None, None)
    when the body is none of them."""
    try:
        env = error_decoder.decode(body)
    except msgspec.DecodeError:
        return None, None
    code: str | int | None = env.code
    message = env.message
    if isinstance(env.error, ErrorObject):
        inner = env.error
        code = inner.code if inner.code not in (None, "") else (inner.type or code)
        message = inner.message or message
    elif isinstance(env.error, str) and env.error:
        message = message or env.error
    return (None if code in (None, "") else str(code)), (message or None)


def error_from_response(response: httpx.Response) -> UpstreamError:
    """Classify a non-2xx answer (or a 2xx the caller could not use)."""
    status = response.status_code
    code, message = read_envelope(response.content)
    if message is None:
        snippet = response.text.strip()[:_SNIPPET] if response.content else ""
        message = f"PowerTokens answered HTTP {status}" + (f": {snippet}" if snippet else " with an empty body")
    retry_after = parse_retry_after(response.headers)

    if status == 429:
        cls = ErrorClass.RATE_LIMIT
    elif status == 401:
        cls = ErrorClass.AUTH
    elif status == 402 or (400 <= status < 500 and status != 404 and _is_payment(code, message)):
        cls = ErrorClass.PAYMENT
    elif status == 403:
        cls = ErrorClass.AUTH
    elif status == 404:
        cls = ErrorClass.NOT_FOUND
    elif status == 408:
        cls = ErrorClass.TIMEOUT
    elif status >= 500:
        cls = ErrorClass.UPSTREAM_UNAVAILABLE
    elif 400 <= status < 500:
        cls = ErrorClass.CONTENT_REJECTED if is_content_rejection(code, message) else ErrorClass.INVALID_REQUEST
    else:  # 1xx/3xx (redirects are not followed for API calls), or a 2xx handed here
        cls = ErrorClass.UPSTREAM_UNAVAILABLE
        code = code or "unexpected_status"
    return UpstreamError.of(cls, message, code=code, http_status=status, retry_after=retry_after)


def malformed(message: str, response: httpx.Response) -> UpstreamError:
    """A 2xx whose body we can't use. The client marks it ambiguous on submit."""
    return UpstreamError.of(ErrorClass.UPSTREAM_UNAVAILABLE, message, code="malformed_response", http_status=response.status_code)


def task_error(task: VideoTask) -> tuple[str | None, str | None]:
    """The failed task's own (code, message), verbatim."""
    if isinstance(task.error, TaskError):
        code = None if task.error.code in (None, "") else str(task.error.code)
        return code, task.error.message or None
    if isinstance(task.error, str) and task.error:
        return None, task.error
    return None, None


def task_failure(task: VideoTask, *, expired: bool) -> ErrorInfo:
    """The error of a task that ended `failed` or `expired` (UPSTREAMS 2.5, 3.4)."""
    code, message = task_error(task)
    if expired:
        # Ark: the task outlived `execution_expires_after` without running (UPSTREAMS 3.2).
        return ErrorInfo.of(ErrorClass.TIMEOUT, message or "the task expired upstream before it finished", code=code or "expired")
    if is_content_rejection(code, message):
        return ErrorInfo.of(ErrorClass.CONTENT_REJECTED, message or code or "content rejected", code=code)
    return ErrorInfo.of(ErrorClass.GENERATION_FAILED, message or "the upstream reported the task failed", code=code)
