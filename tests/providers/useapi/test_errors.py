"""Every useapi HTTP error status into one ErrorClass, with real httpx.Response objects.

Bodies are the documented ones (UPSTREAMS 1.1, doc "Responses" section)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from providers.base import ErrorClass, UpstreamError
from providers.useapi.adapter import UseapiAdapter

adapter = UseapiAdapter()

PARSERS: dict[str, Callable[[httpx.Response], object]] = {
    "upload": adapter.parse_upload,
    "submit": adapter.parse_submit,
    "poll": adapter.parse_poll,
    "cancel": adapter.parse_cancel,
}

DOCUMENTED = [
    (
        400,
        {"error": "Parameter model (invalid-model) valid values: seedance-2.0, seedance-1.5-pro, seedance-1.0-mini"},
        ErrorClass.INVALID_REQUEST,
        False,
    ),
    (
        400,
        {"error": "Content-Type (image/bmp) not supported. Valid values: image/jpeg, image/png, image/webp"},
        ErrorClass.INVALID_REQUEST,
        False,
    ),
    (401, {"error": "Unauthorized"}, ErrorClass.AUTH, False),
    (402, {"error": "Account has no subscription or subscription expired"}, ErrorClass.PAYMENT, False),
    (404, {"error": "Unable to find configuration for account US:user@example.com"}, ErrorClass.NOT_FOUND, False),
    (429, {"error": "All accounts at capacity"}, ErrorClass.CAPACITY, True),
    (500, {"error": "Login failed: invalid credentials"}, ErrorClass.UPSTREAM_UNAVAILABLE, True),
    (503, {"error": "Service Unavailable"}, ErrorClass.UPSTREAM_UNAVAILABLE, True),
    (596, {"error": "Session expired"}, ErrorClass.SESSION_EXPIRED, False),
]


def raised(phase: str, resp: httpx.Response) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        PARSERS[phase](resp)
    return caught.value


@pytest.mark.parametrize("phase", list(PARSERS))
@pytest.mark.parametrize(("status", "body", "error_class", "retryable"), DOCUMENTED)
def test_documented_statuses(phase: str, status: int, body: dict, error_class: ErrorClass, retryable: bool) -> None:
    exc = raised(phase, httpx.Response(status, json=body))
    assert exc.info.error_class is error_class
    assert exc.info.retryable is retryable
    assert exc.info.http_status == status
    assert exc.info.message == body["error"]  # verbatim
    assert exc.ambiguous is False


def test_session_expired_is_not_treated_like_a_5xx() -> None:
    exc = raised("submit", httpx.Response(596, json={"error": "Session expired"}))
    assert exc.info.error_class is ErrorClass.SESSION_EXPIRED
    assert exc.info.retryable is False


def test_capacity_carries_retry_after_when_given() -> None:
    resp = httpx.Response(429, json={"error": "All accounts at capacity"}, headers={"Retry-After": "10"})
    exc = raised("submit", resp)
    assert exc.info.error_class is ErrorClass.CAPACITY
    assert exc.info.retry_after == 10.0
    assert exc.info.retryable is True


def test_capacity_without_retry_after_has_none() -> None:
    exc = raised("submit", httpx.Response(429, json={"error": "All accounts at capacity"}))
    assert exc.info.retry_after is None


def test_retry_after_ms_and_http_date_are_read() -> None:
    exc = raised("poll", httpx.Response(503, headers={"retry-after-ms": "1500"}, text="busy"))
    assert exc.info.retry_after == 1.5
    exc = raised("poll", httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, text="busy"))
    assert exc.info.retry_after == 0.0  # a date in the past: retry now


def test_429_that_says_rate_limit_is_rate_limit() -> None:
    exc = raised("poll", httpx.Response(429, json={"error": "Rate limit exceeded, too many requests"}))
    assert exc.info.error_class is ErrorClass.RATE_LIMIT
    assert exc.info.retryable is True


def test_429_with_unreadable_body_is_capacity() -> None:
    exc = raised("submit", httpx.Response(429, text="<html>slow down</html>"))
    assert exc.info.error_class is ErrorClass.CAPACITY
    assert exc.info.message == "<html>slow down</html>"


def test_code_field_kept_verbatim() -> None:
    body = {"error": "Unable to locate running jobId j1-u1-CA:a@b.c-bot:dreamina", "code": 404}
    exc = raised("cancel", httpx.Response(404, json=body))
    assert exc.info.error_class is ErrorClass.NOT_FOUND
    assert exc.info.code == "404"
    assert exc.info.message == body["error"]


@pytest.mark.parametrize("status", [500, 501, 502, 503, 504, 520, 522, 524, 530, 599])
def test_every_5xx_is_upstream_unavailable(status: int) -> None:
    exc = raised("poll", httpx.Response(status, text="oops"))
    assert exc.info.error_class is ErrorClass.UPSTREAM_UNAVAILABLE
    assert exc.info.retryable is True
    assert exc.ambiguous is False  # polls are never ambiguous


@pytest.mark.parametrize(("status", "ambiguous"), [(500, False), (502, True), (503, False), (504, True), (524, True)])
def test_submit_5xx_from_a_proxy_is_ambiguous(status: int, ambiguous: bool) -> None:
    exc = raised("submit", httpx.Response(status, text="gateway"))
    assert exc.info.error_class is ErrorClass.UPSTREAM_UNAVAILABLE
    assert exc.ambiguous is ambiguous


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (403, ErrorClass.AUTH),
        (408, ErrorClass.TIMEOUT),
        (410, ErrorClass.NOT_FOUND),
        (413, ErrorClass.INVALID_REQUEST),
        (418, ErrorClass.INVALID_REQUEST),
    ],
)
def test_undocumented_4xx(status: int, error_class: ErrorClass) -> None:
    assert raised("poll", httpx.Response(status, json={"error": "x"})).info.error_class is error_class


def test_error_body_that_is_not_json_keeps_the_text() -> None:
    exc = raised("upload", httpx.Response(400, text="Image is empty"))
    assert exc.info.error_class is ErrorClass.INVALID_REQUEST
    assert exc.info.message == "Image is empty"
    exc = raised("upload", httpx.Response(401, content=b""))
    assert exc.info.message == "HTTP 401 Unauthorized"


def test_unexpected_non_error_status_is_malformed() -> None:
    exc = raised("poll", httpx.Response(302, headers={"Location": "/elsewhere"}))
    assert exc.info.code == "malformed_response"
