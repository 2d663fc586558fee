"""The PowerTokens `/v1/videos` simulator, checked against the upstream docs (UPSTREAMS 2, 3.3, 3.6)."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from providers.media_probe import probe
from providers.powertokens.sim import SimConfig, create_app
from providers.simkit import Faults, sample, serve_in_thread

BASE = "http://pt.test"
TOKEN = "pt-test-token"
T0 = 1_790_000_000.0
JOB = 0.2

# The doc page's curl example body, verbatim (powertokens-seedance-2-0-post-videos.txt).
DOC_EXAMPLE = """
{
  "model": "dreamina-seedance-2-0-260128",
  "media": [
    {
      "type": "text",
      "text": "Supplementary prompt"
    },
    {
      "type": "reference_image",
      "url": "https://example.com/img1.jpg"
    },
    {
      "type": "reference_video",
      "url": "https://example.com/motion.mp4"
    },
    {
      "type": "reference_audio",
      "url": "https://example.com/audio.mp3"
    }
  ],
  "seconds": "-1",
  "size": "720p",
  "ratio": "16:9",
  "generate_audio": false,
  "return_last_frame": false,
  "safety_identifier": "user_123"
}
"""

MODEL_2_0 = "dreamina-seedance-2-0-260128"
MODEL_FAST = "dreamina-seedance-2-0-fast-260128"
MODEL_2_5 = "dreamina-seedance-2-5-260628"
MODEL_1_5 = "seedance-1-5-pro-251215"
MODEL_1_0 = "seedance-1-0-pro-250528"
ALL_MODELS = [MODEL_2_0, MODEL_FAST, MODEL_2_5, MODEL_1_5, MODEL_1_0, "seedance-1-0-pro-fast-251015"]


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextlib.asynccontextmanager
async def simulator(config: SimConfig | None = None, clock: FakeClock | None = None, token: str | None = TOKEN) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(config or SimConfig(job_seconds=JOB), clock=clock or FakeClock())
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, headers=headers) as client:
        yield client


def text(prompt: str = "a red fox runs through snow") -> dict[str, str]:
    return {"type": "text", "text": prompt}


def item(role: str, url: str = "asset://ast_1") -> dict[str, str]:
    return {"type": role, "url": url}


def data_url(name: Any, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(sample(name)).decode()


def body2(*media: dict[str, str], **fields: Any) -> dict[str, Any]:
    return {"model": MODEL_2_0, "media": list(media) or [text()], **fields}


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    r = await client.post("/v1/videos", json=body)
    assert r.status_code == 200, r.text
    return r.json()["id"]


def is_mp4(data: bytes) -> bool:
    return data[4:8] == b"ftyp" and probe(data).content_type == "video/mp4"


# ---------------------------------------------------------------------------
# The documented happy path
# ---------------------------------------------------------------------------


async def test_doc_example_reaches_a_downloadable_video() -> None:
    clock = FakeClock()
    async with simulator(clock=clock) as client:
        r = await client.post("/v1/videos", content=DOC_EXAMPLE, headers={"Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        created = r.json()
        assert created == {
            "id": created["id"],
            "task_id": created["id"],
            "object": "video",
            "model": MODEL_2_0,
            "status": "pending",
            "progress": 0,
            "created_at": int(T0),
        }
        assert re.fullmatch(r"cgt-\d{14}-[a-z0-9]{5}", created["id"])
        assert re.fullmatch(r"[A-Za-z0-9_-]+", created["id"])

        clock.advance(JOB)
        task = (await client.get(f"/v1/videos/{created['id']}")).json()
        assert task["status"] == "succeeded"
        assert task["progress"] == 100
        assert task["completed_at"] == int(T0 + JOB)
        assert task["seconds"] == "5"  # "-1": the simulated model picks 5 s
        assert task["size"] == "720p"
        assert task["usage"]["completion_tokens"] == 1280 * 720 * (24 * 5 + 1) // 1024 == 108900
        assert "last_frame_url" not in task

        video = await client.get(task["video_url"])
        assert video.status_code == 200
        assert video.headers["content-type"] == "video/mp4"
        assert is_mp4(video.content)

        content = await client.get(f"/v1/videos/{created['id']}/content")
        assert content.status_code == 200
        assert content.headers["content-type"] == "video/mp4"
        assert content.content == video.content


@pytest.mark.parametrize(
    ("vocabulary", "expected"),
    [
        ("ark", ["pending", "queued", "running", "running", "running", "succeeded"]),
        ("openai", ["queued", "queued", "in_progress", "in_progress", "in_progress", "completed"]),
    ],
)
async def test_status_progresses_in_both_vocabularies(vocabulary: str, expected: list[str]) -> None:
    clock = FakeClock()
    async with simulator(SimConfig(job_seconds=JOB, status_vocabulary=vocabulary), clock) as client:
        r = await client.post("/v1/videos", json=body2())
        assert r.json()["status"] == expected[0]
        task_id = r.json()["id"]
        seen, progress = [], []
        for at in (0.0, 0.03, 0.1, 0.12, 0.15, 0.2):
            clock.now = T0 + at
            task = (await client.get(f"/v1/videos/{task_id}")).json()
            seen.append(task["status"])
            progress.append(task["progress"])
            assert ("completed_at" in task) == (at >= JOB)
        assert seen == expected
        assert progress[:2] == [0, 0]
        assert 0 < progress[2] < progress[3] < progress[4] < 100
        assert progress[5] == 100


@pytest.mark.parametrize("placement", ["video_url", "metadata.url", "content.video_url", "none"])
async def test_result_url_placements(placement: str) -> None:
    clock = FakeClock()
    async with simulator(SimConfig(job_seconds=JOB, result_url_field=placement), clock) as client:
        task_id = await create(client, body2(return_last_frame=True))
        clock.advance(JOB)
        task = (await client.get(f"/v1/videos/{task_id}")).json()
        urls = {
            "video_url": task.get("video_url"),
            "metadata.url": task.get("metadata", {}).get("url"),
            "content.video_url": task.get("content", {}).get("video_url"),
        }
        assert {k for k, v in urls.items() if v} == ({placement} if placement != "none" else set())
        if placement != "none":
            assert urls[placement].startswith(f"{BASE}/_sim/files/video.mp4?task=")
            assert is_mp4((await client.get(urls[placement])).content)
        frame_url = task["content"]["last_frame_url"] if placement == "content.video_url" else task["last_frame_url"]
        frame = await client.get(frame_url)
        assert frame.headers["content-type"] == "image/png"
        assert frame.content == sample("last_frame.png")
        assert is_mp4((await client.get(f"/v1/videos/{task_id}/content")).content)


async def test_seedance_1x_body_runs_to_completion() -> None:
    clock = FakeClock()
    async with simulator(clock=clock) as client:
        body = {"model": MODEL_1_0, "prompt": "a lighthouse at dusk", "seconds": "2", "camera_fixed": True}
        task_id = await create(client, body)
        clock.advance(JOB)
        task = (await client.get(f"/v1/videos/{task_id}")).json()
        assert task["status"] == "succeeded"
        assert task["size"] == "1080p"  # 1.0 pro's default tier
        assert task["usage"]["total_tokens"] == 1920 * 1080 * (24 * 2 + 1) // 1024


async def test_result_links_expire_after_24h_and_tasks_after_7_days() -> None:
    clock = FakeClock()
    async with simulator(clock=clock) as client:
        task_id = await create(client, body2())
        clock.advance(JOB)
        url = (await client.get(f"/v1/videos/{task_id}")).json()["video_url"]
        clock.advance(25 * 3600)
        assert (await client.get(url)).status_code == 403
        assert (await client.get(f"/v1/videos/{task_id}/content")).status_code == 200
        clock.now = T0 + 7 * 86400 + 1
        for path in (f"/v1/videos/{task_id}", f"/v1/videos/{task_id}/content"):
            r = await client.get(path)
            assert r.status_code == 404
            assert r.json()["error"]["code"] == "task_not_exist"


async def test_content_before_completion_is_a_json_404() -> None:
    async with simulator() as client:
        task_id = await create(client, body2())
        r = await client.get(f"/v1/videos/{task_id}/content")
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/json")
        assert "pending" in r.json()["error"]["message"]
        r = await client.get(f"/_sim/files/video.mp4?task={task_id}")
        assert r.status_code == 404


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------

REJECTED: list[tuple[str, dict[str, Any], str]] = [
    ("seconds_int", body2(seconds=5), "seconds"),
    ("seconds_16", body2(seconds="16"), "seconds"),
    ("seconds_2_on_2_0", body2(seconds="2"), "seconds"),
    ("seconds_leading_zero", body2(seconds="05"), "seconds"),
    ("seconds_31_on_2_5", {**body2(seconds="31"), "model": MODEL_2_5}, "seconds"),
    ("ten_reference_images", body2(text(), *[item("reference_image")] * 10), "media"),
    ("four_reference_videos", body2(text(), *[item("reference_video")] * 4), "media"),
    ("four_reference_audios", body2(text(), item("reference_image"), *[item("reference_audio")] * 4), "media"),
    ("first_frame_with_reference", body2(text(), item("first_frame"), item("reference_image")), "media"),
    ("frames_with_reference_video", body2(item("first_frame"), item("last_frame"), item("reference_video")), "media"),
    ("audio_alone", body2(text(), item("reference_audio")), "media"),
    ("last_frame_without_first", body2(text(), item("last_frame")), "media"),
    ("two_first_frames", body2(item("first_frame"), item("first_frame")), "media"),
    ("two_text_items", body2(text(), text()), "media"),
    ("empty_media", {"model": MODEL_2_0, "media": []}, "media"),
    ("empty_text", body2(text("  ")), "media[0].text"),
    ("ark_style_item", body2({"type": "image_url", "image_url": {"url": "https://x/y.png"}}), "media[0].type"),
    ("text_item_with_url", body2({"type": "text", "text": "x", "url": "https://x/y"}), "media[0].url"),
    ("reference_without_url", body2(text(), {"type": "reference_image"}), "media[1].url"),
    ("http_url", body2(text(), item("reference_image", "http://example.com/a.jpg")), "media[1].url"),
    ("bad_base64", body2(text(), item("reference_image", "data:image/png;base64,@@@")), "media[1].url"),
    ("image_too_small", body2(item("first_frame", data_url("cover.png", "image/png"))), "media[0].url"),
    ("mime_mismatch", body2(text(), item("reference_image", data_url("audio.wav", "image/png"))), "media[1].url"),
    (
        "video_as_audio",
        body2(text(), item("reference_image"), item("reference_audio", data_url("video.mp4", "video/mp4"))),
        "media[2].url",
    ),
    ("bad_model", body2(model="seedance-3"), "model"),
    ("missing_model", {"media": [text()]}, "model"),
    ("fast_1080p", {**body2(size="1080p"), "model": MODEL_FAST}, "size"),
    ("size_4k", body2(size="4k"), "size"),
    ("bad_ratio", body2(ratio="2:1"), "ratio"),
    ("seed_too_big", body2(seed=4294967296), "seed"),
    ("seed_too_small", body2(seed=-2), "seed"),
    ("seed_bool", body2(seed=True), "seed"),
    ("watermark_string", body2(watermark="false"), "watermark"),
    ("safety_identifier_65", body2(safety_identifier="u" * 65), "safety_identifier"),
    ("camera_fixed_on_2_0", body2(camera_fixed=True), "camera_fixed"),
    ("prompt_on_2_0", body2(prompt="a fox"), "prompt"),
    ("media_on_1_0", {"model": MODEL_1_0, "media": [text()]}, "media"),
    ("generate_audio_on_1_0", {"model": MODEL_1_0, "prompt": "x", "generate_audio": False}, "generate_audio"),
    ("return_last_frame_on_1_0", {"model": MODEL_1_0, "prompt": "x", "return_last_frame": True}, "return_last_frame"),
    ("safety_identifier_on_1_5", {"model": MODEL_1_5, "prompt": "x", "safety_identifier": "u"}, "safety_identifier"),
    ("seconds_13_on_1_5", {"model": MODEL_1_5, "prompt": "x", "seconds": "13"}, "seconds"),
    ("seconds_3_on_1_5", {"model": MODEL_1_5, "prompt": "x", "seconds": "3"}, "seconds"),
    ("auto_seconds_on_1_0", {"model": MODEL_1_0, "prompt": "x", "seconds": "-1"}, "seconds"),
    ("seconds_int_on_1_0", {"model": MODEL_1_0, "prompt": "x", "seconds": 5}, "seconds"),
    ("no_prompt_no_image_1_x", {"model": MODEL_1_0}, "prompt"),
    ("draft_720p", {"model": MODEL_1_5, "prompt": "x", "draft": True, "size": "720p"}, "size"),
    ("draft_last_frame", {"model": MODEL_1_5, "prompt": "x", "draft": True, "return_last_frame": True}, "return_last_frame"),
    ("image_http_1_x", {"model": MODEL_1_0, "image": "http://example.com/a.png"}, "image"),
]


@pytest.mark.parametrize(("body", "param"), [(b, p) for _, b, p in REJECTED], ids=[i for i, _, _ in REJECTED])
async def test_invalid_requests_are_400_naming_the_param(body: dict[str, Any], param: str) -> None:
    async with simulator() as client:
        r = await client.post("/v1/videos", json=body)
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["param"] == param
        assert error["type"] == "invalid_request_error"
        assert error["code"] in ("invalid_parameter", "missing_parameter")
        assert error["message"]
        assert not (await client.get("/_sim/jobs")).json()[0]["task_id"]


async def test_bad_model_lists_every_valid_model() -> None:
    async with simulator() as client:
        r = await client.post("/v1/videos", json=body2(model="seedance-3"))
        message = r.json()["error"]["message"]
        assert all(model in message for model in ALL_MODELS)


async def test_fast_1080p_message_names_the_allowed_sizes() -> None:
    async with simulator() as client:
        r = await client.post("/v1/videos", json={**body2(size="1080p"), "model": MODEL_FAST})
        assert "480p, 720p" in r.json()["error"]["message"]


ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("text_only_defaults", body2()),
    ("seconds_13_on_2_0", body2(seconds="13")),
    ("seconds_4_on_2_0", body2(seconds="4")),
    ("seconds_30_1080p_on_2_5", {**body2(seconds="30", size="1080p"), "model": MODEL_2_5}),
    ("fast_720p", {**body2(size="720p", seconds="-1"), "model": MODEL_FAST}),
    ("first_frame_no_text", body2(item("first_frame", data_url("image.png", "image/png")))),
    ("first_and_last_frame", body2(text(), item("first_frame"), item("last_frame", "https://example.com/b.png"))),
    ("max_references", body2(text(), *[item("reference_image")] * 9, *[item("reference_video")] * 3, *[item("reference_audio")] * 3)),
    ("data_url_clips", body2(text(), item("reference_video", data_url("video.mp4", "video/mp4")), item("reference_audio", data_url("audio.wav", "audio/wav")))),
    (
        "all_scalars",
        body2(size="480p", ratio="adaptive", seed=4294967295, watermark=True, generate_audio=False, return_last_frame=True, safety_identifier="u" * 64),
    ),
    ("seed_minus_one", body2(seed=-1)),
    ("nulls_are_defaults", body2(size=None, ratio=None)),
    ("1_0_two_seconds", {"model": MODEL_1_0, "prompt": "x", "seconds": "2"}),
    ("1_0_fast_first_frame", {"model": "seedance-1-0-pro-fast-251015", "image": "https://example.com/a.png"}),
    (
        "1_5_extras",
        {
            "model": MODEL_1_5,
            "prompt": "x",
            "seconds": "-1",
            "generate_audio": True,
            "return_last_frame": True,
            "seed": 7,
            "camera_fixed": False,
            "watermark": True,
        },
    ),
    ("1_5_draft_480p", {"model": MODEL_1_5, "prompt": "x", "draft": True}),
    ("1_x_raw_base64_image", {"model": MODEL_1_5, "image": base64.b64encode(sample("image.png")).decode()}),
    ("1_x_data_url_image", {"model": MODEL_1_0, "prompt": "x", "image": data_url("image.png", "image/png")}),
]


@pytest.mark.parametrize("body", [b for _, b in ACCEPTED], ids=[i for i, _ in ACCEPTED])
async def test_valid_requests_are_accepted(body: dict[str, Any]) -> None:
    async with simulator() as client:
        await create(client, body)


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"model=x", "application/x-www-form-urlencoded", 415),
        (b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nx\r\n--b--\r\n', "multipart/form-data; boundary=b", 415),
        (json.dumps(body2()).encode(), None, 415),
        (b"{not json", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b"", "application/json", 400),
    ],
)
async def test_submit_is_json_only(content: bytes, content_type: str | None, status: int) -> None:
    async with simulator() as client:
        headers = {"Content-Type": content_type} if content_type else {}
        r = await client.post("/v1/videos", content=content, headers=headers)
        assert r.status_code == status
        assert r.json()["error"]["message"]


# ---------------------------------------------------------------------------
# Auth and error envelopes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tokens", "header"),
    [
        (None, None),
        (None, "Bearer "),
        (None, TOKEN),  # the quick-start's bare key: the API reference wants Bearer
        (None, f"Basic {TOKEN}"),
        (frozenset({"other"}), f"Bearer {TOKEN}"),
    ],
)
async def test_requests_without_a_valid_bearer_token_are_401(tokens: frozenset[str] | None, header: str | None) -> None:
    async with simulator(SimConfig(job_seconds=JOB, tokens=tokens), token=None) as client:
        headers = {"Authorization": header} if header is not None else {}
        r = await client.post("/v1/videos", json=body2(), headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_api_key"
        for method, path in (("GET", "/v1/videos/x"), ("GET", "/v1/videos/x/content"), ("DELETE", "/v1/videos/x")):
            assert (await client.request(method, path, headers=headers)).status_code == 401
        jobs = (await client.get("/_sim/jobs")).json()
        assert [j["status_code"] for j in jobs] == [401]


async def test_configured_tokens_are_accepted() -> None:
    async with simulator(SimConfig(job_seconds=JOB, tokens=frozenset({TOKEN}))) as client:
        await create(client, body2())


def _shape(envelope: str, body: dict[str, Any]) -> tuple[str, str]:
    """(code, message) after checking the envelope's keys."""
    if envelope == "newapi":
        assert set(body) == {"code", "message", "data"} and body["data"] is None
        return body["code"], body["message"]
    error = body["error"]
    if envelope == "openai":
        assert set(error) == {"message", "type", "param", "code"}
    else:
        assert {"code", "message", "type"} <= set(error) <= {"code", "message", "type", "param"}
        assert "Request ID: " in error["message"]
    return error["code"], error["message"]


ENVELOPE_CODES = {
    "openai": {400: "invalid_parameter", 401: "invalid_api_key", 404: "task_not_exist", 429: "rate_limit_exceeded", 500: "internal_error"},
    "newapi": {400: "invalid_request", 401: "unauthorized", 404: "task_not_exist", 429: "rate_limit_exceeded", 500: "internal_error"},
    "ark": {400: "InvalidParameter", 401: "AuthenticationError", 404: "ResourceNotFound", 429: "RateLimitExceeded", 500: "InternalServiceError"},
}


@pytest.mark.parametrize("envelope", ["openai", "newapi", "ark"])
async def test_error_envelopes(envelope: str) -> None:
    config = SimConfig(job_seconds=JOB, error_envelope=envelope)
    codes = ENVELOPE_CODES[envelope]
    async with simulator(config) as client:
        r = await client.post("/v1/videos", json=body2(seconds=5))
        assert r.status_code == 400
        code, message = _shape(envelope, r.json())
        assert code == codes[400] and "seconds" in message
        if envelope != "newapi":
            assert r.json()["error"]["param"] == "seconds"
        if envelope == "ark":
            assert r.json()["error"]["type"] == "BadRequest"

        r = await client.post("/v1/videos", json=body2(), headers={"Authorization": ""})
        assert r.status_code == 401 and _shape(envelope, r.json())[0] == codes[401]

        r = await client.get("/v1/videos/cgt-20260101000000-nope0")
        assert r.status_code == 404 and _shape(envelope, r.json())[0] == codes[404]

        await client.post("/_sim/faults", json={"submit_status": 429, "submit_status_count": 1, "poll_status": 500, "poll_status_count": 1})
        r = await client.post("/v1/videos", json=body2())
        assert r.status_code == 429
        code, message = _shape(envelope, r.json())
        assert code == codes[429] and "rate limit" in message.lower()
        r = await client.get("/v1/videos/anything")
        assert r.status_code == 500 and _shape(envelope, r.json())[0] == codes[500]


# ---------------------------------------------------------------------------
# Cancel
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("vocabulary", "status"), [("ark", "cancelled"), ("openai", "failed")])
async def test_cancel_a_queued_task(vocabulary: str, status: str) -> None:
    clock = FakeClock()
    async with simulator(SimConfig(job_seconds=JOB, status_vocabulary=vocabulary), clock) as client:
        task_id = await create(client, body2())
        clock.advance(0.03)  # queued
        r = await client.delete(f"/v1/videos/{task_id}")
        assert r.status_code == 200
        assert r.json()["status"] == status
        clock.advance(JOB * 5)
        task = (await client.get(f"/v1/videos/{task_id}")).json()
        assert task["status"] == status
        assert task["completed_at"] == int(T0 + 0.03)
        assert "video_url" not in task
        if vocabulary == "openai":
            assert task["error"]["code"] == "cancelled"
        else:
            assert "error" not in task
        r = await client.delete(f"/v1/videos/{task_id}")
        assert r.status_code == 409
        assert r.json()["error"]["code"] == "invalid_task_status"
        assert (await client.get(f"/v1/videos/{task_id}/content")).status_code == 404


@pytest.mark.parametrize("at", [0.1, JOB])  # running, succeeded
async def test_running_and_finished_tasks_cannot_be_cancelled(at: float) -> None:
    clock = FakeClock()
    async with simulator(clock=clock) as client:
        task_id = await create(client, body2())
        clock.advance(at)
        r = await client.delete(f"/v1/videos/{task_id}")
        assert r.status_code == 409
        assert (await client.delete("/v1/videos/unknown")).status_code == 404


# ---------------------------------------------------------------------------
# Faults, capacity and the control routes
# ---------------------------------------------------------------------------


async def test_submit_status_fault_counts_down_and_sends_retry_after() -> None:
    faults = Faults(submit_status=429, submit_status_count=2, retry_after="3")
    async with simulator(SimConfig(job_seconds=JOB, faults=faults)) as client:
        for _ in range(2):
            r = await client.post("/v1/videos", json=body2())
            assert r.status_code == 429
            assert r.headers["retry-after"] == "3"
        await create(client, body2())
        jobs = (await client.get("/_sim/jobs")).json()
        assert [j["status_code"] for j in jobs] == [429, 429, 200]
    assert faults.submit_status_count == 2  # the config's Faults are copied, never consumed


async def test_poll_status_fault_until_changed() -> None:
    async with simulator() as client:
        task_id = await create(client, body2())
        await client.post("/_sim/faults", json={"poll_status": 503, "poll_status_count": -1})
        for _ in range(3):
            r = await client.get(f"/v1/videos/{task_id}")
            assert r.status_code == 503
            assert r.json()["error"]["code"] == "service_unavailable"
        await client.post("/_sim/faults", json={"poll_status": 0})
        assert (await client.get(f"/v1/videos/{task_id}")).status_code == 200


async def test_malformed_answers_are_200_and_not_json() -> None:
    async with simulator(SimConfig(job_seconds=JOB, faults=Faults(malformed_count=2))) as client:
        r = await client.post("/v1/videos", json=body2())
        assert r.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            r.json()
        r = await client.get("/v1/videos/whatever")
        assert r.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            r.json()
        task_id = await create(client, body2())
        assert (await client.get(f"/v1/videos/{task_id}")).json()["id"] == task_id
        jobs = (await client.get("/_sim/jobs")).json()
        assert jobs[0]["status_code"] == 200 and jobs[0]["task_id"] is None
        assert isinstance(jobs[0]["response"], str)


@pytest.mark.parametrize(("reason", "message"), [(None, "sensitive"), ("Face detected in input", "Face detected")])
async def test_failed_jobs(reason: str | None, message: str) -> None:
    clock = FakeClock()
    faults = Faults(job_outcome="fail", fail_reason=reason)
    async with simulator(SimConfig(job_seconds=JOB, faults=faults), clock) as client:
        task_id = await create(client, body2())
        await client.put("/_sim/faults", json={})  # later changes don't touch an existing task
        clock.advance(JOB)
        task = (await client.get(f"/v1/videos/{task_id}")).json()
        assert task["status"] == "failed"
        assert task["error"]["code"] == "OutputVideoSensitiveContentDetected"
        assert message in task["error"]["message"]
        assert task["completed_at"] == int(T0 + JOB)
        assert "video_url" not in task and "usage" not in task
        assert (await client.get(f"/v1/videos/{task_id}/content")).status_code == 404


@pytest.mark.parametrize(("vocabulary", "running", "expired"), [("ark", "running", "expired"), ("openai", "in_progress", "failed")])
async def test_hanging_jobs_run_until_the_execution_deadline(vocabulary: str, running: str, expired: str) -> None:
    clock = FakeClock()
    config = SimConfig(job_seconds=JOB, status_vocabulary=vocabulary, faults=Faults(job_outcome="hang"))
    async with simulator(config, clock) as client:
        task_id = await create(client, body2())
        clock.advance(3600)
        task = (await client.get(f"/v1/videos/{task_id}")).json()
        assert (task["status"], task["progress"]) == (running, 99)
        assert "completed_at" not in task
        clock.advance(48 * 3600)
        task = (await client.get(f"/v1/videos/{task_id}")).json()
        assert task["status"] == expired
        if vocabulary == "openai":
            assert task["error"]["code"] == "expired"


async def test_session_expired_has_no_meaning_here() -> None:
    async with simulator(SimConfig(job_seconds=JOB, faults=Faults(session_expired=True))) as client:
        task_id = await create(client, body2())
        assert (await client.get(f"/v1/videos/{task_id}")).status_code == 200


async def test_delay_applies_to_api_routes_only() -> None:
    async with simulator(SimConfig(job_seconds=JOB, faults=Faults(delay_seconds=0.15))) as client:
        started = time.monotonic()
        await create(client, body2())
        assert time.monotonic() - started >= 0.15
        started = time.monotonic()
        await client.get("/_sim/jobs")
        assert time.monotonic() - started < 0.15


def test_dropped_connections_over_real_http() -> None:
    app = create_app(SimConfig(job_seconds=JOB, faults=Faults(drop_count=1)))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with serve_in_thread(app) as base, httpx.Client(base_url=base, headers=headers) as client:
        # dropped mid-answer: a closed connection or a reset, depending on the HTTP server's parser and timing
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            client.post("/v1/videos", json=body2())
        r = client.post("/v1/videos", json=body2())
        assert r.status_code == 200
        assert r.json()["id"]


async def test_capacity_limit_is_429_until_tasks_finish() -> None:
    clock = FakeClock()
    async with simulator(SimConfig(job_seconds=JOB, max_concurrent=2), clock) as client:
        first = await create(client, body2())
        await create(client, body2())
        r = await client.post("/v1/videos", json=body2())
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "rate_limit_exceeded"
        assert (await client.delete(f"/v1/videos/{first}")).status_code == 200  # cancelled frees a slot
        await create(client, body2())
        clock.advance(JOB)
        await create(client, body2())


async def test_control_routes_record_and_reset() -> None:
    async with simulator() as client:
        task_id = await create(client, body2())
        await client.post("/v1/videos", json=body2(seconds=5))
        await client.post("/v1/videos", content=b"x=1", headers={"Content-Type": "text/plain"})
        jobs = (await client.get("/_sim/jobs")).json()
        assert [(j["status_code"], j["task_id"]) for j in jobs] == [(200, task_id), (400, None), (415, None)]
        assert jobs[1]["body"]["seconds"] == 5
        assert jobs[1]["response"]["error"]["param"] == "seconds"
        assert jobs[2]["body"] == "x=1"
        assert "authorization" not in json.dumps(jobs).lower()

        faults = (await client.post("/_sim/faults", json={"poll_status": 500, "poll_status_count": -1})).json()
        assert faults["poll_status"] == 500
        assert (await client.post("/_sim/reset")).json() == {"reset": True}
        assert (await client.get("/_sim/faults")).json()["poll_status"] == 0
        assert (await client.get("/_sim/jobs")).json() == []
        assert (await client.get(f"/v1/videos/{task_id}")).status_code == 404
