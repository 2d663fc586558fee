"""Reading ModelArk answers (pure): the §12 examples, all six status words, results, cost,
callbacks, and error answers built as real `httpx.Response`s."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import pytest

from providers.base import ErrorClass, JobStatus, SubmitContext, UpstreamError
from providers.modelark.adapter import ModelArkAdapter
from providers.modelark.models import CATALOG
from providers.modelark.responses import STATUS

from . import contract_examples as ex

ADAPTER = ModelArkAdapter()
V20, FAST, MINI, V25 = (CATALOG[n] for n in ("seedance-2.0", "seedance-2.0-fast", "seedance-2.0-mini", "seedance-2.5"))
V15, V10, LITE = CATALOG["seedance-1.5-pro"], CATALOG["seedance-1.0-pro"], CATALOG["seedance-1.0-lite-t2v"]
TASK_URL = "https://ark.ap-southeast.bytepluses.com/api/v3/contents/generations/tasks/cgt-1"


def answer(payload: Any, status: int = 200, headers: dict[str, str] | None = None, method: str = "GET") -> httpx.Response:
    content = payload if isinstance(payload, bytes) else msgspec.json.encode(payload)
    return httpx.Response(status, content=content, headers=headers, request=httpx.Request(method, TASK_URL))


def task(status: str, **fields: Any) -> dict[str, Any]:
    return {"id": "cgt-20260101000000-abcde", "model": V20, "status": status, "created_at": 1, "updated_at": 2, **fields}


def poll(payload: Any, status: int = 200, **kw: Any) -> Any:
    return ADAPTER.parse_poll(answer(payload, status, **kw))


def poll_error(payload: Any, status: int, **kw: Any) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        poll(payload, status, **kw)
    return caught.value


# --- the contract's own examples ----------------------------------------------------------------


def test_query_example_succeeded() -> None:
    job = poll(ex.strip_comments(ex.QUERY_SUCCEEDED).encode())
    assert (job.upstream_id, job.status, job.upstream_status, job.model) == ("cgt-2025****", JobStatus.COMPLETED, "succeeded", V20)
    assert job.result is not None and job.result.video_url == "https://ark-content-generation-ap-southeast-1.tos-ap-southeast-1.volces.com/****"
    assert (job.result.width, job.result.height, job.result.duration) == (1920, 1080, 5.0)  # §4.1: 2.0, 1080p, 16:9
    assert job.result.last_frame_url is None and job.error is None and job.progress == 100
    # 246 840 tokens; 2.0 at 1080p with no video input: $7.7 / 1M (§11.2)
    assert job.cost is not None and (job.cost.amount, job.cost.unit) == (246840.0, "tokens")
    assert job.cost.usd_estimate == pytest.approx(246840 * 7.7 / 1e6)


def test_query_example_from_the_mirror_with_a_volcengine_model_name() -> None:
    # unknown model id (Volcengine spelling) and extra fields: still read, just not priced or sized
    job = poll(ex.QUERY_SUCCEEDED_MIRROR.encode())
    assert job.status is JobStatus.COMPLETED and job.model == "doubao-seedance-2-0-260128"
    assert job.result is not None and job.result.width is None and job.result.has_audio is True
    assert job.cost is not None and job.cost.amount == 108900 and job.cost.usd_estimate is None


def test_callback_example_names_its_task_and_reads_as_running() -> None:
    raw = ex.strip_comments(ex.CALLBACK_RUNNING).encode()
    assert ADAPTER.parse_callback(raw) == "cgt-2025****"
    job = poll(raw)
    assert (job.status, job.result, job.cost) == (JobStatus.IN_PROGRESS, None, None)


def test_error_envelope_example() -> None:
    exc = poll_error(ex.ERROR_ENVELOPE.encode(), 400)
    assert (exc.info.error_class, exc.info.code, exc.info.http_status, exc.info.retryable) == (ErrorClass.INVALID_REQUEST, "MissingParameter", 400, False)
    assert exc.info.message.startswith("The request failed because it is missing one or multiple required parameters. Request id:")


# --- the status table -------------------------------------------------------------------------


def test_the_status_table_is_exactly_the_six_words() -> None:
    assert STATUS == {
        "queued": JobStatus.QUEUED,
        "running": JobStatus.IN_PROGRESS,
        "succeeded": JobStatus.COMPLETED,
        "failed": JobStatus.FAILED,
        "cancelled": JobStatus.CANCELLED,
        "expired": JobStatus.FAILED,
    }


@pytest.mark.parametrize("word", ["pending", "in_progress", "completed", "Queued", "canceled", "", None])
def test_an_unknown_status_word_is_an_error_never_queued(word: str | None) -> None:
    exc = poll_error(task(word), 200)  # type: ignore[arg-type]
    assert (exc.info.error_class, exc.info.code) == (ErrorClass.UPSTREAM_UNAVAILABLE, "unknown_status")


def test_queued_running_cancelled() -> None:
    assert poll(task("queued")).status is JobStatus.QUEUED
    assert poll(task("running")).status is JobStatus.IN_PROGRESS
    cancelled = poll(task("cancelled", error=None))
    assert (cancelled.status, cancelled.error, cancelled.result) == (JobStatus.CANCELLED, None, None)


def test_expired_is_a_timeout_the_gateway_fails_over_on() -> None:
    job = poll(task("expired", error=None))
    assert job.status is JobStatus.FAILED and job.error is not None
    assert (job.error.error_class, job.error.code, job.error.retryable) == (ErrorClass.TIMEOUT, "expired", True)


@pytest.mark.parametrize(
    "code,cls",
    [
        ("OutputVideoSensitiveContentDetected", ErrorClass.CONTENT_REJECTED),
        ("OutputVideoSensitiveContentDetected.PolicyViolation", ErrorClass.CONTENT_REJECTED),
        ("OutputAudioSensitiveContentDetected", ErrorClass.CONTENT_REJECTED),
        ("InvalidParameter.TaskTypeMismatch", ErrorClass.INVALID_REQUEST),
        ("InternalServiceError", ErrorClass.GENERATION_FAILED),
        ("SomethingNew", ErrorClass.GENERATION_FAILED),
        (None, ErrorClass.GENERATION_FAILED),
    ],
)
def test_failed_task_codes(code: str | None, cls: ErrorClass) -> None:
    job = poll(task("failed", error={"code": code, "message": "m"} if code else None))
    assert job.status is JobStatus.FAILED and job.error is not None
    assert (job.error.error_class, job.error.code, job.error.retryable) == (cls, code, cls.retryable)
    assert job.cost is None and job.result is None  # failures are not billed (§11.1)


# --- results and cost ---------------------------------------------------------------------------


def succeeded(model: str = V20, **fields: Any) -> dict[str, Any]:
    base = {"content": {"video_url": "https://tos.example/v.mp4"}, "resolution": "720p", "ratio": "16:9", "duration": 5, "service_tier": "default"}
    return task("succeeded", model=model, **{**base, **fields})


def test_last_frame_and_audio() -> None:
    job = poll(succeeded(content={"video_url": "https://tos.example/v.mp4", "last_frame_url": "https://tos.example/f.png"}, generate_audio=False))
    assert job.result is not None and job.result.last_frame_url == "https://tos.example/f.png" and job.result.has_audio is False
    silent_model = poll(succeeded(V10))
    assert silent_model.result is not None and silent_model.result.has_audio is False  # 1.0 pro can't make sound


def test_succeeded_without_a_video_url_is_malformed() -> None:
    exc = poll_error(task("succeeded", content={}), 200)
    assert exc.info.code == "malformed_response"


def test_frames_give_the_duration() -> None:
    job = poll(succeeded(V10, duration=None, frames=121, resolution="1080p"))
    assert job.result is not None and job.result.duration == pytest.approx(121 / 24)
    assert (job.result.width, job.result.height) == (1920, 1088)  # the 1.0 column of §4.1


@pytest.mark.parametrize(
    "model,fields,tokens,usd_per_m",
    [
        (V20, {}, 108_900, 7.0),  # 720p, 5 s, no input video
        (V20, {}, 194_400, 4.3),  # same output with a >= 4 s reference video (§11.1 example)
        (V20, {"resolution": "4k"}, 980_100, 4.0),
        (FAST, {"resolution": "480p"}, 50_638, 5.6),
        (MINI, {}, 108_900, 3.5),
        (V25, {}, 108_900, 10.7),
        (V15, {}, 108_900, 2.4),  # audio on by default
        (V15, {"generate_audio": False}, 108_900, 1.2),
        (V15, {"generate_audio": False, "service_tier": "flex"}, 108_900, 0.6),
        (V10, {"resolution": "1080p"}, 246_840, 2.5),
        (V10, {"service_tier": "flex"}, 106_480, 1.25),
    ],
)
def test_cost_is_billed_tokens_at_the_list_price(model: str, fields: dict[str, Any], tokens: int, usd_per_m: float) -> None:
    job = poll(succeeded(model, usage={"completion_tokens": tokens, "total_tokens": tokens}, **fields))
    assert job.cost is not None and (job.cost.amount, job.cost.unit) == (tokens, "tokens")
    assert job.cost.usd_estimate == pytest.approx(tokens * usd_per_m / 1e6)


def test_no_price_no_estimate() -> None:
    job = poll(succeeded(LITE, usage={"completion_tokens": 1000}))
    assert job.cost is not None and job.cost.amount == 1000 and job.cost.usd_estimate is None
    assert poll(succeeded()).cost is None  # no usage reported


@pytest.mark.parametrize(
    "model,resolution,seconds,usd",
    [
        (V20, "720p", 5, 108_900 * 7.0 / 1e6),  # the published $0.76 (§11.2)
        (V20, None, None, 108_900 * 7.0 / 1e6),  # the model's defaults: 720p, 5 s
        (V20, "4k", 5, 980_100 * 4.0 / 1e6),  # published $3.89
        (FAST, "480p", 5, 50_638 * 5.6 / 1e6),  # published $0.28
        (MINI, "720p", 5, 108_900 * 3.5 / 1e6),  # published $0.38
        (V10, None, 5, 246_840 * 2.5 / 1e6),  # 1.0 pro defaults to 1080p
    ],
)
def test_estimate_cost(model: str, resolution: str | None, seconds: int | None, usd: float) -> None:
    cost = ADAPTER.estimate_cost(model, resolution, seconds)
    assert cost is not None and cost.unit == "usd" and cost.amount == pytest.approx(usd) and cost.usd_estimate == cost.amount


@pytest.mark.parametrize("model,seconds", [(V20, "auto"), (V25, None), (LITE, 5), ("unknown-model", 5)])
def test_estimate_cost_unknown(model: str, seconds: Any) -> None:
    assert ADAPTER.estimate_cost(model, None, seconds) is None


# --- create answers ---------------------------------------------------------------------------------


def test_create_answer() -> None:
    job = ADAPTER.parse_submit(answer({"id": "cgt-20250331175019-68d9t"}, method="POST"))
    assert (job.upstream_id, job.status, job.upstream_status) == ("cgt-20250331175019-68d9t", JobStatus.QUEUED, "queued")


@pytest.mark.parametrize("payload", [b"<html>502</html>", {"id": ""}, {"nope": 1}])
def test_an_unreadable_create_answer_is_malformed(payload: Any) -> None:
    with pytest.raises(UpstreamError) as caught:
        ADAPTER.parse_submit(answer(payload, method="POST"))
    assert caught.value.info.code == "malformed_response"  # UpstreamClient marks a 2xx one ambiguous


# --- error answers --------------------------------------------------------------------------------


def envelope(code: str, message: str = "m. Request ID: 1", param: str = "") -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "param": param, "type": "X"}}


def test_free_trial_quota_is_payment_but_the_queue_cap_is_capacity() -> None:
    trial = poll_error(envelope("QuotaExceeded", "Your account has exhausted its free trial quota for the model."), 429)
    queue = poll_error(envelope("QuotaExceeded", "The request has exceeded the quota. Request ID: 1"), 429)
    assert (trial.info.error_class, trial.info.retryable) == (ErrorClass.PAYMENT, False)
    assert (queue.info.error_class, queue.info.retryable) == (ErrorClass.CAPACITY, True)


def test_retry_after_and_x_should_retry() -> None:
    limited = poll_error(envelope("RequestBurstTooFast"), 429, headers={"Retry-After": "7"})
    assert (limited.info.error_class, limited.info.retry_after, limited.info.retryable) == (ErrorClass.RATE_LIMIT, 7.0, True)
    told = poll_error(envelope("InternalServiceError"), 500, headers={"x-should-retry": "false", "Retry-After": "7"})
    assert (told.info.error_class, told.info.retryable, told.info.retry_after) == (ErrorClass.UPSTREAM_UNAVAILABLE, False, None)


def test_poll_404_is_not_found_whatever_the_code() -> None:
    assert poll_error(envelope("ModelNotOpen"), 404).info.error_class is ErrorClass.NOT_FOUND
    assert poll_error(b"", 404).info.error_class is ErrorClass.NOT_FOUND


@pytest.mark.parametrize(
    "status,cls",
    [(400, ErrorClass.INVALID_REQUEST), (401, ErrorClass.AUTH), (403, ErrorClass.AUTH), (429, ErrorClass.RATE_LIMIT), (503, ErrorClass.UPSTREAM_UNAVAILABLE)],
)
def test_without_an_envelope_the_status_decides(status: int, cls: ErrorClass) -> None:
    exc = poll_error(b"<html>oops</html>", status)
    assert exc.info.error_class is cls and exc.info.code is None and "oops" in exc.info.message


@pytest.mark.parametrize(
    "status,body,ambiguous",
    [(502, b"<html>Bad Gateway</html>", True), (504, b"", True), (502, msgspec.json.encode(envelope("InternalServiceError")), False), (500, b"", False)],
)
def test_a_proxy_page_on_submit_is_ambiguous(status: int, body: bytes, ambiguous: bool) -> None:
    with pytest.raises(UpstreamError) as caught:
        ADAPTER.parse_submit(answer(body, status, method="POST"))
    assert caught.value.ambiguous is ambiguous and caught.value.info.error_class is ErrorClass.UPSTREAM_UNAVAILABLE


def test_cancel_refusals() -> None:
    with pytest.raises(UpstreamError) as caught:
        ADAPTER.parse_cancel(answer(envelope("OperationDenied.InvalidState", "The specified task is in invalid state: running."), 403, method="DELETE"))
    info = caught.value.info
    assert (info.error_class, info.code, info.retryable) == (ErrorClass.INVALID_REQUEST, "OperationDenied.InvalidState", False)
    assert "only queued" in info.message and "running" in info.message
    with pytest.raises(UpstreamError) as caught:
        ADAPTER.parse_cancel(answer(b"", 409, method="DELETE"))  # any other 4xx: not cancellable now, never success
    assert (caught.value.info.error_class, caught.value.info.code) == (ErrorClass.INVALID_REQUEST, "not_cancellable")
    assert ADAPTER.parse_cancel(answer({}, method="DELETE")) is None


# --- reconciliation hooks ---------------------------------------------------------------------------


def test_the_list_cannot_find_a_lost_submit() -> None:
    ctx = SubmitContext(callback_url="https://vidgate.test/cb/tok")
    assert ADAPTER.build_find(ctx) is None
    assert ADAPTER.parse_find(answer({"items": [task("queued")], "total": 1}), ctx) is None


@pytest.mark.parametrize("raw", [b"not json", b"{}", b'{"id": ""}', b"[1]"])
def test_callbacks_without_an_id_name_nothing(raw: bytes) -> None:
    assert ADAPTER.parse_callback(raw) is None
