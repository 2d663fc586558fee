"""Parsing useapi job records and asset answers, from the doc's examples (UPSTREAMS 1.3-1.7)."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import pytest

from providers.base import Cost, ErrorClass, JobStatus, UpstreamError, VideoResult
from providers.useapi.adapter import STATUS_TABLE, UseapiAdapter, account_of_jobid

adapter = UseapiAdapter()
JOBID = "j0223140530123456789v-u12345-CA:user@example.com-bot:dreamina"


def response(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


def created_record() -> dict[str, Any]:
    # POST /videos 200 example (doc, Apr 3 2026), with the jobid's obfuscated e-mail restored.
    return {
        "jobid": JOBID,
        "type": "video",
        "status": "created",
        "model": "seedance-2.0",
        "created": "2026-02-23T14:05:30.123Z",
        "request": {
            "prompt": "A serene mountain landscape at sunset with camera slowly panning right",
            "model": "seedance-2.0",
            "ratio": "16:9",
            "duration": 5,
            "inputMode": "prompt",
        },
        "response": {"forecastCost": 125},
        "code": 200,
    }


def completed_record() -> dict[str, Any]:
    # GET /videos/{jobid} completed example (UPSTREAMS 1.5).
    return {
        **created_record(),
        "status": "completed",
        "updated": "2026-02-23T14:07:15.456Z",
        "response": {
            "assetId": "CA:user@example.com:7341234567890123456",
            "videoUrl": "https://v3-web.douyinvod.com/abc/video.mp4",
            "videoId": "7341234567890123456",
            "coverUrl": "https://p9-sign.douyinpic.com/abc/cover.jpeg",
            "width": 1280,
            "height": 720,
            "durationMs": 5042,
            "hasAudio": False,
            "forecastCost": 125,
            "finishTime": 1708700835,
        },
    }


def failed_record(error: str, details: str | None) -> dict[str, Any]:
    record = {**created_record(), "status": "failed", "updated": "2026-02-23T14:06:00.000Z", "error": error}
    if details is not None:
        record["errorDetails"] = details
    return record


def test_status_table_is_explicit_and_has_no_queued() -> None:
    assert STATUS_TABLE == {
        "created": JobStatus.IN_PROGRESS,
        "completed": JobStatus.COMPLETED,
        "failed": JobStatus.FAILED,
    }


def test_created_record_from_submit() -> None:
    job = adapter.parse_submit(response(created_record()))
    assert job.upstream_id == JOBID
    assert job.status is JobStatus.IN_PROGRESS
    assert job.upstream_status == "created"
    assert job.model == "seedance-2.0"
    assert job.cost == Cost(amount=125, unit="credits")
    assert job.account == "CA:user@example.com"  # parsed from the jobid
    assert job.result is None and job.error is None


def test_completed_record() -> None:
    job = adapter.parse_poll(response(completed_record()))
    assert job.status is JobStatus.COMPLETED
    assert job.upstream_status == "completed"
    assert job.result == VideoResult(
        video_url="https://v3-web.douyinvod.com/abc/video.mp4",
        thumbnail_url="https://p9-sign.douyinpic.com/abc/cover.jpeg",
        width=1280,
        height=720,
        duration=5.042,
        has_audio=False,
    )
    assert job.cost == Cost(amount=125, unit="credits")
    assert job.error is None


def test_completed_falls_back_to_watermarked_url() -> None:
    record = completed_record()
    del record["response"]["videoUrl"]
    record["response"]["videoUrlWatermarked"] = "https://cdn.example/wm.mp4"
    result = adapter.parse_poll(response(record)).result
    assert result is not None and result.video_url == "https://cdn.example/wm.mp4"


def test_completed_without_any_video_url_is_malformed() -> None:
    record = completed_record()
    del record["response"]["videoUrl"]
    with pytest.raises(UpstreamError) as caught:
        adapter.parse_poll(response(record))
    assert caught.value.info.error_class is ErrorClass.UPSTREAM_UNAVAILABLE
    assert caught.value.info.code == "malformed_response"


def test_account_from_request_wins_over_jobid() -> None:
    record = created_record()
    record["request"]["account"] = "US:other@example.com"
    assert adapter.parse_poll(response(record)).account == "US:other@example.com"


@pytest.mark.parametrize(
    ("error", "details"),
    [
        ("fail_code: 2043", "OutputVideoRisk"),  # the doc's example (cut after "OutputVi")
        ("fail_code: 2038", "InputImageRisk"),
        ("fail_code: 1180", "Content moderation: real human face detected"),
        ("Prompt contains sensitive words", None),
    ],
)
def test_moderation_failures_are_content_rejected(error: str, details: str | None) -> None:
    job = adapter.parse_poll(response(failed_record(error, details)))
    assert job.status is JobStatus.FAILED
    assert job.upstream_status == "failed"
    assert job.error is not None
    assert job.error.error_class is ErrorClass.CONTENT_REJECTED
    assert job.error.retryable is False
    assert job.error.code == error  # verbatim
    assert job.error.message == (details or error)  # verbatim


def test_other_failures_are_generation_failed_and_retryable() -> None:
    job = adapter.parse_poll(response(failed_record("fail_code: 1000", "InternalError")))
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.error_class is ErrorClass.GENERATION_FAILED
    assert job.error.retryable is True
    assert (job.error.code, job.error.message) == ("fail_code: 1000", "InternalError")


def test_failed_without_reason_is_still_a_failure() -> None:
    record = {**created_record(), "status": "failed"}
    job = adapter.parse_poll(response(record))
    assert job.status is JobStatus.FAILED
    assert job.error is not None and job.error.error_class is ErrorClass.GENERATION_FAILED


def test_cancelled_by_user_is_cancelled() -> None:
    job = adapter.parse_poll(response(failed_record("Cancelled by user", None)))
    assert job.status is JobStatus.CANCELLED
    assert job.upstream_status == "failed"
    assert job.error is None


@pytest.mark.parametrize("status", ["started", "progress", "queued", "moderated", "cancelled", "", "COMPLETED"])
def test_unknown_status_is_an_error_never_queued(status: str) -> None:
    record = {**created_record(), "status": status}
    with pytest.raises(UpstreamError) as caught:
        adapter.parse_poll(response(record))
    info = caught.value.info
    assert info.error_class is ErrorClass.UPSTREAM_UNAVAILABLE
    assert info.code == "unknown_status"
    assert repr(status) in info.message


def test_unknown_fields_are_ignored_and_numeric_strings_accepted() -> None:
    record = completed_record()
    record["brandNewField"] = {"x": 1}
    record["response"]["width"] = "1280"
    record["response"]["somethingElse"] = [1, 2]
    record["response"]["durationMs"] = 5042.0
    record["response"]["finishTime"] = 1708700835.25
    record["request"]["duration"] = 5.5  # a field we don't read can't break the record
    job = adapter.parse_poll(response(record))
    assert job.result is not None and job.result.width == 1280 and job.result.duration == 5.042


@pytest.mark.parametrize(
    "content",
    [
        b"<html>502 Bad Gateway</html>",
        b"",
        b"[]",
        b'{"status": "created"}',  # no jobid
        b'{"jobid": 12, "status": "created"}',
        b'{"jobid": "j1", "status": "completed", "response": "nope"}',
    ],
)
def test_wrong_shape_is_malformed_response(content: bytes) -> None:
    with pytest.raises(UpstreamError) as caught:
        adapter.parse_submit(httpx.Response(200, content=content))
    assert caught.value.info.error_class is ErrorClass.UPSTREAM_UNAVAILABLE
    assert caught.value.info.code == "malformed_response"
    assert caught.value.info.retryable is True


def test_parse_record_reads_callback_bodies() -> None:
    body = msgspec.json.encode(completed_record())
    assert adapter.parse_record(body).status is JobStatus.COMPLETED
    with pytest.raises(UpstreamError):
        adapter.parse_record(b"not json")


def test_account_of_jobid() -> None:
    assert account_of_jobid(JOBID) == "CA:user@example.com"
    assert account_of_jobid("j0417101010123456123456v-u9-US:first-last@mail.example.org-bot:dreamina") == ("US:first-last@mail.example.org")
    assert account_of_jobid("opaque") is None


# ---------------------------------------------------------------------------
# POST /assets/{account} answers (UPSTREAMS 1.3)
# ---------------------------------------------------------------------------


def test_parse_upload_image_and_video() -> None:
    image = {
        "assetRef": "CA:user@example.com-image:w2560:h1440:s580914-uri:tos-alisg-i-wopfjsm1ax-sg/abc123",
        "account": "CA:user@example.com",
        "width": 2560,
        "height": 1440,
        "size": 580914,
    }
    video = {
        "assetRef": "CA:user@example.com-video:w1070:h1904:s1656759:d5880-vid:v10762g50003d77lv1nog65ie0vi8oh0",
        "account": "CA:user@example.com",
        "type": "video",
        "width": 1070,
        "height": 1904,
        "duration": 5880,
        "size": 1656759,
    }
    assert adapter.parse_upload(response(image)) == image["assetRef"]
    assert adapter.parse_upload(response(video)) == video["assetRef"]


def test_parse_upload_falls_back_to_legacy_image_ref() -> None:
    legacy = {"imageRef": "US:user@example.com-image:w1:h1:s1-uri:x", "account": "US:user@example.com"}
    assert adapter.parse_upload(response(legacy)) == legacy["imageRef"]


@pytest.mark.parametrize("content", [b"{}", b"nope", b'{"assetRef": 5}'])
def test_parse_upload_without_a_ref_is_malformed(content: bytes) -> None:
    with pytest.raises(UpstreamError) as caught:
        adapter.parse_upload(httpx.Response(200, content=content))
    assert caught.value.info.code == "malformed_response"


def test_parse_cancel_accepts_204_and_200() -> None:
    adapter.parse_cancel(httpx.Response(204))  # no exception is the whole contract
    adapter.parse_cancel(httpx.Response(200, json={}))
