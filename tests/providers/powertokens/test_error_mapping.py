"""HTTP error answers -> ErrorInfo, for every envelope of UPSTREAMS 2.8 and non-JSON bodies."""

from __future__ import annotations

import httpx
import pytest

from providers.base import ErrorClass, UpstreamError
from providers.powertokens.adapter import PowerTokensAdapter

adapter = PowerTokensAdapter()
TID = "task_abc123"


def NEWAPI(code, message):
    return {"code": code, "message": message, "data": None}


def OPENAI(code, message, type_="invalid_request_error", param=None):
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def ARK(code, message, type_="BadRequest"):
    return {"error": {"code": code, "message": message, "type": type_, "param": "content"}}


def response(status: int, body=None, headers=None, method="POST", path="/v1/videos") -> httpx.Response:
    request = httpx.Request(method, "https://api.powertokens.ai" + path)
    if body is None or isinstance(body, (bytes, str)):
        return httpx.Response(status, content=body or b"", headers=headers, request=request)
    return httpx.Response(status, json=body, headers=headers, request=request)


def submit_error(status: int, body=None, headers=None) -> UpstreamError:
    with pytest.raises(UpstreamError) as exc:
        adapter.parse_submit(response(status, body, headers))
    assert exc.value.info.http_status == status
    return exc.value


CASES = [
    # (status, body, class, code, message)
    (
        400,
        NEWAPI("invalid_request", "seconds must be a string"),
        ErrorClass.INVALID_REQUEST,
        "invalid_request",
        "seconds must be a string",
    ),
    (
        400,
        OPENAI("invalid_value", "size 4k is not supported", param="size"),
        ErrorClass.INVALID_REQUEST,
        "invalid_value",
        "size 4k is not supported",
    ),
    (
        400,
        ARK("InvalidParameter", "One or more parameters specified in the request are not valid. Request ID: 1"),
        ErrorClass.INVALID_REQUEST,
        "InvalidParameter",
        "One or more parameters specified in the request are not valid. Request ID: 1",
    ),
    (
        400,
        ARK("MissingParameter", "model is required"),
        ErrorClass.INVALID_REQUEST,
        "MissingParameter",
        "model is required",
    ),
    (
        400,
        ARK(
            "InputTextSensitiveContentDetected",
            "The request failed because the input text may contain sensitive information.",
        ),
        ErrorClass.CONTENT_REJECTED,
        "InputTextSensitiveContentDetected",
        "The request failed because the input text may contain sensitive information.",
    ),
    (
        400,
        ARK("SensitiveContentDetected.SevereViolation", "x"),
        ErrorClass.CONTENT_REJECTED,
        "SensitiveContentDetected.SevereViolation",
        "x",
    ),
    (
        400,
        NEWAPI("prompt_blocked", "prompt rejected by moderation"),
        ErrorClass.CONTENT_REJECTED,
        "prompt_blocked",
        "prompt rejected by moderation",
    ),
    (400, NEWAPI("bad", "输入包含敏感内容"), ErrorClass.CONTENT_REJECTED, "bad", "输入包含敏感内容"),
    (400, NEWAPI("bad_field", "brisk is not a field"), ErrorClass.INVALID_REQUEST, "bad_field", "brisk is not a field"),
    (
        400,
        NEWAPI("insufficient_user_quota", "insufficient balance"),
        ErrorClass.PAYMENT,
        "insufficient_user_quota",
        "insufficient balance",
    ),
    (
        401,
        OPENAI("invalid_api_key", "Invalid token", type_="authentication_error"),
        ErrorClass.AUTH,
        "invalid_api_key",
        "Invalid token",
    ),
    (
        401,
        ARK("AuthenticationError", "the API key is expired", type_="Unauthorized"),
        ErrorClass.AUTH,
        "AuthenticationError",
        "the API key is expired",
    ),
    (402, NEWAPI("payment_required", "top up"), ErrorClass.PAYMENT, "payment_required", "top up"),
    (
        403,
        OPENAI("insufficient_user_quota", "用户额度不足", type_="new_api_error"),
        ErrorClass.PAYMENT,
        "insufficient_user_quota",
        "用户额度不足",
    ),
    (403, NEWAPI("forbidden", "余额不足"), ErrorClass.PAYMENT, "forbidden", "余额不足"),
    (
        403,
        OPENAI("model_not_allowed", "this key may not use the model"),
        ErrorClass.AUTH,
        "model_not_allowed",
        "this key may not use the model",
    ),
    (404, NEWAPI("task_not_exist", "task_not_exist"), ErrorClass.NOT_FOUND, "task_not_exist", "task_not_exist"),
    (409, OPENAI("conflict", "conflict"), ErrorClass.INVALID_REQUEST, "conflict", "conflict"),
    (
        429,
        ARK("RateLimitExceeded.EndpointRPMExceeded", "slow down", type_="TooManyRequests"),
        ErrorClass.RATE_LIMIT,
        "RateLimitExceeded.EndpointRPMExceeded",
        "slow down",
    ),
    (
        429,
        ARK("QuotaExceeded", "quota exceeded for this minute", type_="TooManyRequests"),
        ErrorClass.RATE_LIMIT,
        "QuotaExceeded",
        "quota exceeded for this minute",
    ),
    (
        500,
        ARK("InternalServiceError", "internal error", type_="InternalServerError"),
        ErrorClass.UPSTREAM_UNAVAILABLE,
        "InternalServiceError",
        "internal error",
    ),
    (
        502,
        NEWAPI("bad_response_status_code", "bad response status code 500"),
        ErrorClass.UPSTREAM_UNAVAILABLE,
        "bad_response_status_code",
        "bad response status code 500",
    ),
    (
        503,
        OPENAI(None, "upstream overloaded", type_="server_error"),
        ErrorClass.UPSTREAM_UNAVAILABLE,
        "server_error",
        "upstream overloaded",
    ),
]


@pytest.mark.parametrize("status,body,cls,code,message", CASES)
def test_envelopes_and_statuses(status, body, cls, code, message):
    info = submit_error(status, body).info
    assert (info.error_class, info.code, info.message) == (cls, code, message)
    assert info.retryable is cls.retryable


def test_error_string_envelope():
    info = submit_error(400, {"error": "seconds must be between 4 and 15"}).info
    assert (info.error_class, info.code, info.message) == (
        ErrorClass.INVALID_REQUEST,
        None,
        "seconds must be between 4 and 15",
    )


def test_integer_codes_are_kept_as_text():
    info = submit_error(400, {"code": 40001, "message": "bad ratio", "data": None}).info
    assert info.code == "40001"


@pytest.mark.parametrize(
    "status,raw,cls",
    [
        (502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", ErrorClass.UPSTREAM_UNAVAILABLE),
        (504, b"", ErrorClass.UPSTREAM_UNAVAILABLE),
        (400, b"Bad Request", ErrorClass.INVALID_REQUEST),
        (401, b"", ErrorClass.AUTH),
        (429, b"<html>Too Many Requests</html>", ErrorClass.RATE_LIMIT),
        (404, b"404 page not found", ErrorClass.NOT_FOUND),
        (408, b"", ErrorClass.TIMEOUT),
        (302, b"", ErrorClass.UPSTREAM_UNAVAILABLE),
    ],
)
def test_bodies_that_are_no_envelope(status, raw, cls):
    info = submit_error(status, raw).info
    assert info.error_class is cls
    assert f"HTTP {status}" in info.message
    if raw:
        assert raw.decode()[:20] in info.message
    else:
        assert "empty body" in info.message
    if status == 302:
        assert info.code == "unexpected_status"


def test_long_html_body_is_cut():
    info = submit_error(500, b"<html>" + b"x" * 5000 + b"</html>").info
    assert len(info.message) < 300


@pytest.mark.parametrize(
    "headers,expected",
    [({"Retry-After": "7"}, 7.0), ({"retry-after-ms": "1500"}, 1.5), ({}, None), ({"Retry-After": "soon"}, None)],
)
def test_rate_limit_retry_after(headers, expected):
    info = submit_error(429, NEWAPI("rate_limited", "rate limit"), headers).info
    assert info.error_class is ErrorClass.RATE_LIMIT and info.retryable is True
    assert info.retry_after == expected


def test_retry_after_on_503_is_kept_too():
    info = submit_error(503, b"", {"Retry-After": "3"}).info
    assert (info.error_class, info.retry_after, info.retryable) == (ErrorClass.UPSTREAM_UNAVAILABLE, 3.0, True)


def test_poll_and_cancel_errors_use_the_same_mapping():
    with pytest.raises(UpstreamError) as exc:
        adapter.parse_poll(response(404, NEWAPI("task_not_exist", "not found"), method="GET", path=f"/v1/videos/{TID}"))
    assert exc.value.info.error_class is ErrorClass.NOT_FOUND
    with pytest.raises(UpstreamError) as exc:
        adapter.parse_cancel(response(400, ARK("InvalidAction", "only queued tasks can be cancelled"), method="DELETE"))
    assert (exc.value.info.error_class, exc.value.info.code) == (ErrorClass.INVALID_REQUEST, "InvalidAction")


@pytest.mark.parametrize("status,body", [(200, {"id": TID, "status": "cancelled"}), (204, None), (200, b"")])
def test_cancel_success(status, body):
    assert adapter.parse_cancel(response(status, body, method="DELETE", path=f"/v1/videos/{TID}")) is None


def test_error_envelope_inside_a_2xx_is_malformed_not_success():
    with pytest.raises(UpstreamError) as exc:
        adapter.parse_submit(response(200, NEWAPI("insufficient_user_quota", "no balance")))
    info = exc.value.info
    assert (info.error_class, info.code, info.http_status) == (
        ErrorClass.UPSTREAM_UNAVAILABLE,
        "malformed_response",
        200,
    )
    assert "no balance" in info.message
