"""Reading PowerTokens task objects: both status vocabularies, result placements, cost."""

from __future__ import annotations

import httpx
import pytest

from providers.base import Cost, ErrorClass, JobStatus, UpstreamError
from providers.powertokens.adapter import STATUS, PowerTokensAdapter

adapter = PowerTokensAdapter()
TID = "cgt-20250331175019-68d9t"
V20 = "dreamina-seedance-2-0-260128"
FAST = "dreamina-seedance-2-0-fast-260128"
V25 = "dreamina-seedance-2-5-260628"


def answer(body, status: int = 200, path: str = f"/v1/videos/{TID}", method: str = "GET") -> httpx.Response:
    request = httpx.Request(method, "https://api.powertokens.ai" + path)
    if isinstance(body, (bytes, str)):
        return httpx.Response(status, content=body, request=request)
    return httpx.Response(status, json=body, request=request)


def poll(body, **kw):
    return adapter.parse_poll(answer(body, **kw))


# --- create answers (UPSTREAMS 2.4) ---------------------------------------------------------


def test_create_answer_full_task_object():
    job = adapter.parse_submit(
        answer(
            {
                "id": TID,
                "task_id": TID,
                "object": "video",
                "model": V20,
                "status": "pending",
                "progress": 0,
                "created_at": 1742515200,
            },
            path="/v1/videos",
            method="POST",
        )
    )
    assert (job.upstream_id, job.status, job.upstream_status, job.model, job.progress) == (
        TID,
        JobStatus.QUEUED,
        "pending",
        V20,
        0,
    )
    assert job.result is None and job.error is None and job.cost is None


def test_create_answer_t2v_page_shape_and_task_id_alias():
    assert adapter.parse_submit(answer({"task_id": "task_abc123", "status": "queued"})).upstream_id == "task_abc123"
    job = adapter.parse_submit(answer({"id": "task_abc123", "task_id": "task_abc123", "status": "queued"}))
    assert job.status is JobStatus.QUEUED


def test_create_answer_without_status_is_an_accepted_task():
    job = adapter.parse_submit(answer({"id": TID}))
    assert job.status is JobStatus.QUEUED and job.upstream_status == ""


@pytest.mark.parametrize(
    "body",
    [{"status": "queued"}, {"id": "", "status": "queued"}, {"code": "x", "message": "no task"}],
)
def test_create_answer_without_id_is_malformed(body):
    with pytest.raises(UpstreamError) as exc:
        adapter.parse_submit(answer(body))
    assert exc.value.info.error_class is ErrorClass.UPSTREAM_UNAVAILABLE
    assert exc.value.info.code == "malformed_response"


def test_create_answer_with_unsafe_id_is_malformed():
    with pytest.raises(UpstreamError) as exc:
        adapter.parse_submit(answer({"id": "../../admin", "status": "queued"}))
    assert exc.value.info.code == "malformed_response"


# --- status vocabularies (UPSTREAMS 2.5, 5.6) ------------------------------------------------

ARK = {
    "pending": JobStatus.QUEUED,
    "queued": JobStatus.QUEUED,
    "running": JobStatus.IN_PROGRESS,
    "succeeded": JobStatus.COMPLETED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
    "expired": JobStatus.FAILED,
}
OPENAI = {
    "queued": JobStatus.QUEUED,
    "in_progress": JobStatus.IN_PROGRESS,
    "completed": JobStatus.COMPLETED,
    "failed": JobStatus.FAILED,
}
CLIENT_EXTRAS = {"success": JobStatus.COMPLETED, "canceled": JobStatus.CANCELLED}


def test_status_table_is_exactly_both_vocabularies():
    assert STATUS == {**ARK, **OPENAI, **CLIENT_EXTRAS}


@pytest.mark.parametrize("word,expected", sorted({**ARK, **OPENAI, **CLIENT_EXTRAS}.items()))
def test_each_status_word(word, expected):
    job = poll({"id": TID, "status": word, "progress": 50})
    assert job.status is expected
    assert job.upstream_status == word
    assert job.progress == 50


@pytest.mark.parametrize("word", ["SUCCEEDED", " Running "])
def test_status_words_are_matched_like_the_official_client(word):
    assert poll({"id": TID, "status": word}).upstream_status == word
    assert poll({"id": TID, "status": word}).status in (JobStatus.COMPLETED, JobStatus.IN_PROGRESS)


@pytest.mark.parametrize("word", ["processing", "NOT_START", "FAILURE", "unknown", "queued_"])
def test_unknown_status_is_an_error_never_queued(word):
    with pytest.raises(UpstreamError) as exc:
        poll({"id": TID, "status": word})
    info = exc.value.info
    assert (info.error_class, info.code, info.retryable) == (ErrorClass.UPSTREAM_UNAVAILABLE, "unknown_status", True)
    assert word in info.message


def test_missing_status_on_poll_is_malformed():
    with pytest.raises(UpstreamError) as exc:
        poll({"id": TID})
    assert exc.value.info.code == "malformed_response"


def test_poll_answer_without_id_takes_the_polled_id():
    assert poll({"status": "running"}).upstream_id == TID


def test_progress_float_and_lenient_unknown_fields():
    job = poll({"id": TID, "status": "running", "progress": 37.5, "created_at": "2026-01-01T00:00:00Z", "x": [1]})
    assert job.progress == 37
    assert job.status is JobStatus.IN_PROGRESS


@pytest.mark.parametrize("raw", [b"<html>oops</html>", b"", b"[]", b'{"id": 5, "status": "queued"}', b"{"])
def test_unreadable_2xx_is_malformed(raw):
    with pytest.raises(UpstreamError) as exc:
        poll(raw)
    assert (exc.value.info.error_class, exc.value.info.code) == (ErrorClass.UPSTREAM_UNAVAILABLE, "malformed_response")
    assert exc.value.info.http_status == 200


# --- results (UPSTREAMS 2.5, 3.4, 5.7) ----------------------------------------------------------


def test_result_from_top_level_video_url_ark_vocabulary():
    job = poll(
        {
            "id": TID,
            "task_id": TID,
            "object": "video",
            "model": V20,
            "status": "succeeded",
            "progress": 100,
            "completed_at": 1742515300,
            "video_url": "https://cdn.example/v.mp4",
            "last_frame_url": "https://cdn.example/last.png",
            "metadata": {},
        }
    )
    assert job.status is JobStatus.COMPLETED
    assert job.result is not None
    assert job.result.video_url == "https://cdn.example/v.mp4"
    assert job.result.last_frame_url == "https://cdn.example/last.png"


def test_result_from_metadata_url_openai_vocabulary():
    job = poll(
        {
            "id": TID,
            "object": "video",
            "status": "completed",
            "progress": 100,
            "seconds": "5",
            "size": "1280x720",
            "metadata": {"url": "https://cdn.example/meta.mp4"},
        }
    )
    assert job.result is not None
    assert job.result.video_url == "https://cdn.example/meta.mp4"
    assert (job.result.width, job.result.height, job.result.duration) == (1280, 720, 5.0)


def test_result_from_ark_content_object():
    job = poll(
        {
            "id": TID,
            "status": "succeeded",
            "content": {"video_url": "https://tos.example/x.mp4", "last_frame_url": "https://tos.example/l.png"},
            "duration": 5,
            "resolution": "720p",
        }
    )
    assert job.result is not None
    assert job.result.video_url == "https://tos.example/x.mp4"
    assert job.result.last_frame_url == "https://tos.example/l.png"
    assert job.result.duration == 5.0


def test_result_url_precedence_video_url_then_metadata_then_content():
    both = {
        "id": TID,
        "status": "completed",
        "metadata": {"url": "https://b/2.mp4"},
        "content": {"video_url": "https://c/3.mp4"},
    }
    assert poll({**both, "video_url": "https://a/1.mp4"}).result.video_url == "https://a/1.mp4"
    assert poll(both).result.video_url == "https://b/2.mp4"
    assert poll({**both, "metadata": {}}).result.video_url == "https://c/3.mp4"


def test_no_url_leaves_video_url_none_and_content_call_is_the_fallback():
    job = poll({"id": TID, "status": "completed"})
    assert job.status is JobStatus.COMPLETED
    assert job.result is not None and job.result.video_url is None
    call = adapter.content_call(TID, job)
    assert call is not None and (call.method, call.path) == ("GET", f"/v1/videos/{TID}/content")


def test_metadata_url_pointing_at_the_authenticated_content_route_is_not_a_public_link():
    """The PT MiniMax page shows `metadata.url = https://…/v1/videos/<id>/content` (UPSTREAMS 2.5):
    it needs the API key, so the gateway must go through `content_call`, not hand it out."""
    job = poll({"id": TID, "status": "completed", "metadata": {"url": f"https://api.powertokens.ai/v1/videos/{TID}/content"}})
    assert job.result.video_url is None
    job = poll(
        {
            "id": TID,
            "status": "completed",
            "metadata": {"url": f"https://api.powertokens.ai/v1/videos/{TID}/content"},
            "content": {"video_url": "https://tos.example/x.mp4"},
        }
    )
    assert job.result.video_url == "https://tos.example/x.mp4"


def test_non_http_result_values_are_ignored():
    job = poll({"id": TID, "status": "completed", "video_url": "", "metadata": {"url": "asset://ast_1"}})
    assert job.result.video_url is None


def test_result_only_on_completion():
    job = poll({"id": TID, "status": "running", "video_url": "https://cdn.example/partial.mp4"})
    assert job.result is None


# --- failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        {
            "code": "OutputVideoSensitiveContentDetected",
            "message": "The request failed because the output video may contain sensitive information.",
        },
        {"code": "InputImageSensitiveContentDetected.PrivacyInformation", "message": "x"},
        {"code": "task_failed", "message": "content moderation rejected the prompt"},
        {"code": "RiskControl", "message": "blocked"},
        {"code": "fail", "message": "触发风控"},
    ],
)
def test_failed_task_with_moderation_words_is_content_rejected(error):
    job = poll({"id": TID, "status": "failed", "error": error})
    assert job.status is JobStatus.FAILED
    info = job.error
    assert info is not None and info.error_class is ErrorClass.CONTENT_REJECTED and info.retryable is False
    assert (info.code, info.message) == (error["code"], error["message"])  # verbatim


@pytest.mark.parametrize(
    "body,code,message",
    [
        (
            {"error": {"code": "InternalServiceError", "message": "brisk failure in the renderer"}},
            "InternalServiceError",
            "brisk failure in the renderer",
        ),
        ({"error": {"code": 500, "message": "boom"}}, "500", "boom"),
        ({"error": "worker crashed"}, None, "worker crashed"),
        ({}, None, "the upstream reported the task failed"),
    ],
)
def test_other_failed_tasks_are_retryable_generation_failures(body, code, message):
    job = poll({"id": TID, "status": "failed", **body})
    info = job.error
    assert info is not None and info.error_class is ErrorClass.GENERATION_FAILED and info.retryable is True
    assert (info.code, info.message) == (code, message)


def test_expired_task_is_a_timeout_failure():
    job = poll({"id": TID, "status": "expired"})
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert (job.error.error_class, job.error.code, job.error.retryable) == (ErrorClass.TIMEOUT, "expired", True)


def test_cancelled_task_carries_no_error():
    job = poll({"id": TID, "status": "cancelled"})
    assert job.status is JobStatus.CANCELLED and job.error is None and job.result is None


# --- usage and cost -----------------------------------------------------------------------------


def test_usage_tokens_with_usd_estimate_when_priced():
    job = poll(
        {
            "id": TID,
            "status": "succeeded",
            "model": V25,
            "resolution": "720p",
            "duration": 5,
            "content": {"video_url": "https://tos.example/x.mp4"},
            "usage": {"completion_tokens": 108900, "total_tokens": 108900},
        }
    )
    assert job.cost == Cost(amount=108900, unit="tokens", usd_estimate=pytest.approx(1.16))


def test_usage_with_new_api_size_and_string_seconds():
    job = poll(
        {
            "id": TID,
            "status": "completed",
            "model": FAST,
            "size": "720p",
            "seconds": "10",
            "usage": {"completion_tokens": 5},
        }
    )
    assert job.cost == Cost(amount=5, unit="tokens", usd_estimate=pytest.approx(1.21))


def test_usage_without_a_price_has_no_estimate():
    job = poll(
        {
            "id": TID,
            "status": "completed",
            "model": V20,
            "size": "720p",
            "seconds": "5",
            "usage": {"completion_tokens": 108900},
        }
    )
    assert job.cost == Cost(amount=108900, unit="tokens", usd_estimate=None)
    job = poll({"id": TID, "status": "completed", "usage": {"completion_tokens": 1}})
    assert job.cost is not None and job.cost.usd_estimate is None


def test_no_usage_no_cost():
    assert poll({"id": TID, "status": "completed", "model": FAST, "size": "720p", "seconds": "5"}).cost is None


@pytest.mark.parametrize(
    "model,resolution,seconds,usd",
    [
        (FAST, "720p", 10, 1.21),
        (FAST, "480p", "4", 0.484),
        (V25, "1080p", 30, 17.07),
        (V25, None, None, 1.16),  # upstream defaults: 720p, 5 s
        (V25, "480p", 8, 0.84),
    ],
)
def test_estimate_cost_from_price_table(model, resolution, seconds, usd):
    cost = adapter.estimate_cost(model, resolution, seconds)
    assert cost is not None and cost.unit == "usd"
    assert cost.amount == pytest.approx(usd) and cost.usd_estimate == pytest.approx(usd)


@pytest.mark.parametrize(
    "model,resolution,seconds",
    [
        (V20, "720p", 5),  # no documented price
        ("seedance-1-5-pro-251215", "720p", 5),
        (FAST, "1080p", 5),  # fast has no 1080p
        (V25, "720p", "auto"),
        (V25, "720p", "-1"),
    ],
)
def test_estimate_cost_unknown(model, resolution, seconds):
    assert adapter.estimate_cost(model, resolution, seconds) is None


def test_openai_vocabulary_folds_cancelled_and_expired_into_failed_with_a_code():
    job = poll({"id": TID, "status": "failed", "error": {"code": "cancelled", "message": "cancelled by the user"}})
    assert (job.status, job.error, job.upstream_status) == (JobStatus.CANCELLED, None, "failed")
    job = poll({"id": TID, "status": "failed", "error": {"code": "expired", "message": "deadline passed"}})
    assert job.status is JobStatus.FAILED
    assert (job.error.error_class, job.error.code, job.error.message) == (
        ErrorClass.TIMEOUT,
        "expired",
        "deadline passed",
    )
