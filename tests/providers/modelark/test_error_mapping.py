"""Every error code of MODELARK.md §8.2 (and §6.2), produced by the simulator's `/_sim/errors`
switch and read by the adapter over HTTP: its class and retryability."""

from __future__ import annotations

import pytest

from providers.base import ErrorClass, GenerationRequest, JobStatus, TextInput
from providers.modelark.models import CATALOG
from providers.modelark.sim.errors import CODES

from .harness import QUEUE_SECONDS, RUN_SECONDS, open_sim, raised

V20 = CATALOG["seedance-2.0"]
TEXT = GenerationRequest(model="seedance-2.0", input=TextInput(prompt="a fox"), seconds=5)
C = ErrorClass

# The class each code must land in, written from §8.2's "meaning" and "retry?" columns.
EXPECTED: dict[str, ErrorClass] = {
    "MissingParameter": C.INVALID_REQUEST,
    "InvalidParameter": C.INVALID_REQUEST,
    "InvalidParameter.UnsupportedParameter": C.INVALID_REQUEST,
    "InvalidParameter.TaskTypeMismatch": C.INVALID_REQUEST,
    "InvalidParameter.TaskTypeConstraint": C.INVALID_REQUEST,
    "InvalidEndpoint.ClosedEndpoint": C.UPSTREAM_UNAVAILABLE,  # "later, other route"
    "InputTextSensitiveContentDetected": C.CONTENT_REJECTED,
    "InputTextSensitiveContentDetected.PolicyViolation": C.CONTENT_REJECTED,
    "InputImageSensitiveContentDetected": C.CONTENT_REJECTED,
    "InputImageSensitiveContentDetected.PolicyViolation": C.CONTENT_REJECTED,
    "InputImageSensitiveContentDetected.PrivacyInformation": C.CONTENT_REJECTED,
    "InputVideoSensitiveContentDetected": C.CONTENT_REJECTED,
    "InputVideoSensitiveContentDetected.PolicyViolation": C.CONTENT_REJECTED,
    "InputVideoSensitiveContentDetected.PrivacyInformation": C.CONTENT_REJECTED,
    "InputAudioSensitiveContentDetected": C.CONTENT_REJECTED,
    "InputAudioSensitiveContentDetected.PolicyViolation": C.CONTENT_REJECTED,
    "OutputVideoSensitiveContentDetected": C.CONTENT_REJECTED,
    "OutputVideoSensitiveContentDetected.PolicyViolation": C.CONTENT_REJECTED,
    "OutputAudioSensitiveContentDetected": C.CONTENT_REJECTED,
    "OutputAudioSensitiveContentDetected.PolicyViolation": C.CONTENT_REJECTED,
    "SensitiveContentDetected": C.CONTENT_REJECTED,
    "SensitiveContentDetected.SevereViolation": C.CONTENT_REJECTED,
    "SensitiveContentDetected.Violence": C.CONTENT_REJECTED,
    "AuthenticationError": C.AUTH,
    "AccountOverdueError": C.PAYMENT,
    "AccessDenied": C.AUTH,
    "OperationDenied.ServiceNotOpen": C.AUTH,
    "OperationDenied.ServiceOverdue": C.PAYMENT,
    "OperationDenied.InvalidState": C.INVALID_REQUEST,
    "InvalidEndpoint.NotFound": C.NOT_FOUND,
    "InvalidEndpointOrModel.NotFound": C.NOT_FOUND,
    "ModelNotOpen": C.PAYMENT,
    "NotFound.TaskId": C.NOT_FOUND,
    "ModelAccountRpmRateLimitExceeded": C.RATE_LIMIT,
    "RateLimitExceeded.EndpointRPMExceeded": C.RATE_LIMIT,
    "RateLimitExceeded.EndpointFlexTPMExceeded": C.RATE_LIMIT,
    "QuotaExceeded": C.CAPACITY,  # too many tasks queued: retry after they drain
    "QuotaExceeded.FreeTrial": C.PAYMENT,  # same code, "exhausted its free trial quota"
    "ServerOverloaded": C.UPSTREAM_UNAVAILABLE,
    "RequestBurstTooFast": C.RATE_LIMIT,
    "SetLimitExceeded": C.PAYMENT,  # service paused, no retry
    "InflightBatchsizeExceeded": C.CAPACITY,
    "AccountRateLimitExceeded": C.RATE_LIMIT,
    "APIAccountRpmRateLimitExceeded": C.RATE_LIMIT,
    "ModelAccountTpmRateLimitExceeded": C.RATE_LIMIT,
    "ModelAccountFlexTpmRateLimitExceeded": C.RATE_LIMIT,
    "InternalServiceError": C.UPSTREAM_UNAVAILABLE,
}


def test_the_simulator_can_produce_every_code_of_the_contract() -> None:
    assert set(CODES) == set(EXPECTED)


def test_moderation_is_never_retried_and_overload_and_limits_are() -> None:
    for code, cls in EXPECTED.items():
        if "Sensitive" in code:
            assert cls is C.CONTENT_REJECTED and not cls.retryable
    for code in ("ServerOverloaded", "QuotaExceeded", "RequestBurstTooFast", "InternalServiceError", "InflightBatchsizeExceeded"):
        assert EXPECTED[code].retryable, code


@pytest.mark.parametrize("code", sorted(EXPECTED))
async def test_every_code_on_submit(code: str) -> None:
    async with open_sim() as s:
        await s.arm(code)
        exc = await raised(s.submit(TEXT, V20))
        after = await s.submit(TEXT, V20)  # the switch fired once
    info = exc.info
    assert (info.error_class, info.retryable) == (EXPECTED[code], EXPECTED[code].retryable), info
    assert info.code == code.removesuffix(".FreeTrial") and info.http_status == CODES[code].status
    assert "Request ID: " in info.message and not exc.ambiguous  # ModelArk answered: no task was created
    assert after.status is JobStatus.QUEUED


@pytest.mark.parametrize("code", ["ServerOverloaded", "InternalServiceError", "AccessDenied", "RequestBurstTooFast"])
async def test_codes_on_poll(code: str) -> None:
    async with open_sim() as s:
        created = await s.submit(TEXT, V20)
        await s.arm(code, route="poll")
        exc = await raised(s.client.poll(created.upstream_id))
        assert (await s.client.poll(created.upstream_id)).status is JobStatus.QUEUED
    assert (exc.info.error_class, exc.info.retryable) == (EXPECTED[code], EXPECTED[code].retryable)


async def test_retry_after_on_a_rate_limit() -> None:
    async with open_sim() as s:
        await s.arm("ModelAccountRpmRateLimitExceeded", retry_after="12")
        exc = await raised(s.submit(TEXT, V20))
    assert (exc.info.error_class, exc.info.retry_after) == (C.RATE_LIMIT, 12.0)


@pytest.mark.parametrize(
    "code,cls",
    [
        ("OutputVideoSensitiveContentDetected", C.CONTENT_REJECTED),
        ("OutputAudioSensitiveContentDetected.PolicyViolation", C.CONTENT_REJECTED),
        ("InvalidParameter.TaskTypeMismatch", C.INVALID_REQUEST),
        ("InternalServiceError", C.GENERATION_FAILED),  # a failed generation: another provider may retry it
        ("ServerOverloaded", C.GENERATION_FAILED),
    ],
)
async def test_codes_as_failed_tasks(code: str, cls: ErrorClass) -> None:
    async with open_sim() as s:
        await s.arm(code, route="task")
        created = await s.submit(TEXT, V20)
        s.clock.advance(QUEUE_SECONDS + RUN_SECONDS)
        done = await s.client.poll(created.upstream_id)
    assert done.status is JobStatus.FAILED and done.error is not None
    assert (done.error.error_class, done.error.code, done.error.retryable) == (cls, code, cls.retryable)


@pytest.mark.parametrize(
    "status,cls,code",
    [
        (400, C.INVALID_REQUEST, "InvalidParameter"),
        (401, C.AUTH, "AuthenticationError"),
        (403, C.AUTH, "AccessDenied"),
        (404, C.NOT_FOUND, "InvalidEndpoint.NotFound"),
        (429, C.RATE_LIMIT, "RequestBurstTooFast"),
        (500, C.UPSTREAM_UNAVAILABLE, "InternalServiceError"),
        (503, C.UPSTREAM_UNAVAILABLE, "InternalServiceError"),
    ],
)
async def test_simkit_fault_statuses(status: int, cls: ErrorClass, code: str) -> None:
    async with open_sim() as s:
        await s.faults(submit_status=status, submit_status_count=1, retry_after="3")
        exc = await raised(s.submit(TEXT, V20))
    assert (exc.info.error_class, exc.info.http_status, exc.info.code) == (cls, status, code)
    assert exc.info.retry_after == (3.0 if status in (429, 503) else None)
