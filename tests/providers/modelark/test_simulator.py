"""The ModelArk simulator on its own, over raw HTTP (in process, fake clock): the contract's
§12 examples, validation with the contract's codes, lifecycle, list, delete, callbacks,
media expiry, limits and the control routes."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import httpx
import pytest

from providers.modelark.sim import SimConfig, simulator
from providers.simkit import sample

from . import contract_examples as ex
from .harness import CALLBACK, QUEUE_SECONDS, RUN_SECONDS, TOKEN, Sim, open_sim

TASKS = "/contents/generations/tasks"
V20, FAST, V25 = "dreamina-seedance-2-0-260128", "dreamina-seedance-2-0-fast-260128", "dreamina-seedance-2-5-260628"
V15, V10, V10F, LITE_I2V = "seedance-1-5-pro-251215", "seedance-1-0-pro-250528", "seedance-1-0-pro-fast-251015", "seedance-1-0-lite-i2v-250428"
TEXT = {"type": "text", "text": "a fox"}


def image(url: str = "https://i.example/a.png", role: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "image_url", "image_url": {"url": url}}
    if role:
        item["role"] = role
    return item


VIDEO = {"type": "video_url", "video_url": {"url": "https://v.example/a.mp4"}, "role": "reference_video"}
AUDIO = {"type": "audio_url", "audio_url": {"url": "https://a.example/a.mp3"}, "role": "reference_audio"}


async def create(s: Sim, body: dict[str, Any]) -> httpx.Response:
    return await s.api("POST", TASKS, json=body)


async def created_id(s: Sim, body: dict[str, Any]) -> str:
    response = await create(s, body)
    assert response.status_code == 200, response.text
    return response.json()["id"]


async def get(s: Sim, task_id: str) -> dict[str, Any]:
    response = await s.api("GET", f"{TASKS}/{task_id}")
    assert response.status_code == 200, response.text
    return response.json()


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    err = response.json()["error"]
    assert set(err) == {"code", "message", "param", "type"} and "Request ID: " in err["message"]
    return response.status_code, err["code"], err["param"]


# --- §12: the verbatim examples are accepted and reach a finished video ------------------------------


@pytest.mark.parametrize("example", ["CREATE_TEXT_TO_VIDEO", "CREATE_FIRST_LAST_FRAME", "CREATE_MULTIMODAL_REFERENCE"])
async def test_contract_examples_run_to_a_video(example: str) -> None:
    raw = getattr(ex, example)
    async with open_sim() as s:
        response = await s.api("POST", TASKS, content=raw.encode(), headers={"Content-Type": "application/json"})
        assert response.status_code == 200, response.text
        task_id = response.json()["id"]
        assert task_id.startswith("cgt-2026") and len(task_id) == len("cgt-20250331175019-68d9t")
        s.clock.advance(QUEUE_SECONDS + RUN_SECONDS)
        done = await get(s, task_id)
        video = await s.control.get(done["content"]["video_url"])
    body = json.loads(raw)
    assert done["status"] == "succeeded" and done["error"] is None and done["model"] == body["model"]
    assert done["duration"] == body["duration"] and done["framespersecond"] == 24
    assert done["usage"]["completion_tokens"] == done["usage"]["total_tokens"] > 0
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"


async def test_the_text_example_echoes_and_bills_as_the_contract_computes() -> None:
    async with open_sim() as s:
        task_id = await created_id(s, json.loads(ex.CREATE_TEXT_TO_VIDEO))
        s.clock.advance(QUEUE_SECONDS + RUN_SECONDS)
        done = await get(s, task_id)
    assert (done["seed"], done["resolution"], done["ratio"], done["duration"]) == (11, "720p", "16:9", 5)
    assert done["usage"]["completion_tokens"] == 108_900  # 1280x720x121/1024, the §12.4 mirror's figure
    assert done["generate_audio"] is True and done["service_tier"] == "default" and done["execution_expires_after"] == 172_800


# --- validation (§2, §3, §9; checklist §13.2) ---------------------------------------------------------


INVALID = [
    ({"content": [TEXT]}, 400, "MissingParameter", "model"),
    ({"model": V20}, 400, "MissingParameter", "content"),
    ({"model": "doubao-seedance-2-0-260128", "content": [TEXT]}, 404, "InvalidEndpoint.NotFound", "model"),  # never Volcengine ids
    ({"model": V20, "content": []}, 400, "InvalidParameter", "content"),
    ({"model": V20, "content": [TEXT], "duration": "5"}, 400, "InvalidParameter", "duration"),  # ints as strings
    ({"model": V20, "content": [TEXT], "duration": 16}, 400, "InvalidParameter", "duration"),
    ({"model": V20, "content": [TEXT], "duration": 3}, 400, "InvalidParameter", "duration"),
    ({"model": V10, "content": [TEXT], "duration": -1}, 400, "InvalidParameter", "duration"),
    ({"model": V20, "content": [TEXT], "frames": 121}, 400, "InvalidParameter", "frames"),
    ({"model": V10, "content": [TEXT], "frames": 122}, 400, "InvalidParameter", "frames"),
    ({"model": V20, "content": [TEXT], "service_tier": "flex"}, 400, "InvalidParameter", "service_tier"),
    ({"model": FAST, "content": [TEXT], "resolution": "1080p"}, 400, "InvalidParameter", "resolution"),
    ({"model": V25, "content": [TEXT], "resolution": "1080p"}, 400, "InvalidParameter", "resolution"),
    ({"model": V20, "content": [TEXT], "draft": True}, 400, "InvalidParameter", "draft"),
    ({"model": V20, "content": [TEXT], "camera_fixed": False}, 400, "InvalidParameter", "camera_fixed"),
    ({"model": V20, "content": [TEXT], "tools": [{"type": "web_search"}]}, 400, "InvalidParameter", "tools"),
    ({"model": V20, "content": [TEXT], "ratio": "9:21"}, 400, "InvalidParameter", "ratio"),
    ({"model": V10, "content": [TEXT], "ratio": "adaptive"}, 400, "InvalidParameter", "ratio"),  # 1.0: no adaptive T2V
    ({"model": V25, "content": [image(role="first_frame"), image(role="last_frame")], "ratio": "16:9"}, 400, "InvalidParameter", "ratio"),
    ({"model": V10, "content": [TEXT], "generate_audio": False}, 400, "InvalidParameter", "generate_audio"),
    ({"model": V20, "content": [TEXT], "seed": 4294967296}, 400, "InvalidParameter", "seed"),
    ({"model": V20, "content": [TEXT], "priority": 10}, 400, "InvalidParameter", "priority"),
    ({"model": V20, "content": [TEXT], "execution_expires_after": 3599}, 400, "InvalidParameter", "execution_expires_after"),
    ({"model": V20, "content": [TEXT], "safety_identifier": "x" * 65}, 400, "InvalidParameter", "safety_identifier"),
    ({"model": V20, "content": [TEXT], "watermark": "true"}, 400, "InvalidParameter", "watermark"),
    ({"model": V20, "content": [TEXT, TEXT]}, 400, "InvalidParameter", "content"),
    ({"model": V20, "content": [{"type": "text", "text": "x" * 10_001}]}, 400, "InvalidParameter", "content[0]"),
    ({"model": V20, "content": [{"type": "gif_url"}]}, 400, "InvalidParameter", "content[0].type"),
    ({"model": V20, "content": [image(role="first_frame"), image(role="reference_image")]}, 400, "InvalidParameter", "content"),  # modes mixed
    ({"model": V20, "content": [image(role="last_frame")]}, 400, "InvalidParameter", "content"),
    ({"model": V20, "content": [image(), image()]}, 400, "InvalidParameter", "content"),  # two images without roles
    ({"model": V20, "content": [image(role="last_frame"), image(role="first_frame")]}, 400, "InvalidParameter", "content"),
    ({"model": V20, "content": [image(role="first_frame"), image(role="last_frame"), image(role="last_frame")]}, 400, "InvalidParameter", "content"),
    ({"model": V20, "content": [TEXT, AUDIO]}, 400, "InvalidParameter", "content"),  # 2.0: audio never alone
    ({"model": V20, "content": [{**VIDEO, "role": None}]}, 400, "InvalidParameter", "content[0].role"),
    ({"model": V20, "content": [image(role="reference_image")] * 10}, 400, "InvalidParameter", "content"),
    ({"model": V20, "content": [VIDEO] * 4}, 400, "InvalidParameter", "content"),
    ({"model": V15, "content": [image(role="reference_image")]}, 400, "InvalidParameter", "content"),  # 1.x: no references
    ({"model": V10F, "content": [image(role="first_frame"), image(role="last_frame")]}, 400, "InvalidParameter", "content"),
    ({"model": LITE_I2V, "content": [TEXT]}, 400, "InvalidParameter", "content"),  # [CONFLICT] rule: no text-only
    ({"model": LITE_I2V, "content": [image(role="reference_image")] * 5}, 400, "InvalidParameter", "content"),
    ({"model": LITE_I2V, "content": [image(role="reference_image")], "resolution": "1080p"}, 400, "InvalidParameter", "resolution"),
    ({"model": V20, "content": [image("ftp://i.example/a.png")]}, 400, "InvalidParameter", "content[0].image_url.url"),
    ({"model": V20, "content": [{**VIDEO, "video_url": {"url": "data:video/mp4;base64,AAAA"}}]}, 400, "InvalidParameter", "content[0].video_url.url"),
    ({"model": V20, "content": [image("data:image/PNG;base64,AAAA")]}, 400, "InvalidParameter", "content[0].image_url.url"),
    ({"model": V20, "content": [image("data:image/svg;base64,AAAA")]}, 400, "InvalidParameter", "content[0].image_url.url"),
    ({"model": V20, "content": [image("data:image/png;base64,@@@")]}, 400, "InvalidParameter", "content[0].image_url.url"),
]


@pytest.mark.parametrize("body,status,code,param", INVALID, ids=[f"{i}-{c[3]}" for i, c in enumerate(INVALID)])
async def test_invalid_bodies(body: dict[str, Any], status: int, code: str, param: str) -> None:
    async with open_sim() as s:
        response = await create(s, body)
    assert s.state.board.tasks == {}  # nothing was created
    assert error_of(response) == (status, code, param)


async def test_strict_typing_and_unknown_fields() -> None:
    async with open_sim() as s:
        # unknown top-level fields are ignored; legacy --flags in the text are not parsed
        ok = await create(s, {"model": V20, "content": [{"type": "text", "text": "a fox --rs 1080p --dur 12"}], "x_future": 1})
        assert ok.status_code == 200
        s.clock.advance(QUEUE_SECONDS + RUN_SECONDS)
        done = await get(s, ok.json()["id"])
        not_json = await s.api("POST", TASKS, content=b"{nope", headers={"Content-Type": "application/json"})
    assert (done["resolution"], done["duration"]) == ("720p", 5)
    assert error_of(not_json)[:2] == (400, "InvalidParameter")


def png_header(width: int, height: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I4sII", 13, b"IHDR", width, height) + b"\x08\x02\x00\x00\x00"


@pytest.mark.parametrize("size,ok", [((300, 300), True), ((6000, 2400), True), ((299, 300), False), ((1000, 2600), False)])
async def test_data_image_sides_and_aspect_closed_bounds(size: tuple[int, int], ok: bool) -> None:
    url = "data:image/png;base64," + base64.b64encode(png_header(*size)).decode()
    async with open_sim() as s:
        response = await create(s, {"model": V20, "content": [image(url, "first_frame")]})
    assert (response.status_code == 200) is ok  # [CONFLICT] §3.3: closed bounds


async def test_heic_only_from_1_5_pro_on() -> None:
    url = "data:image/heic;base64," + base64.b64encode(b"heic").decode()
    async with open_sim() as s:
        assert (await create(s, {"model": V15, "content": [image(url, "first_frame")]})).status_code == 200
        assert (await create(s, {"model": V10, "content": [image(url, "first_frame")]})).status_code == 400


async def test_seed_conflict_rule_accepts_the_wide_range_on_every_model() -> None:
    async with open_sim() as s:
        for model in (V20, V15, V10):
            assert (await create(s, {"model": model, "content": [TEXT], "seed": 4294967295})).status_code == 200


async def test_endpoint_ids() -> None:
    config = SimConfig(tokens=frozenset({TOKEN}), endpoints={"ep-20260101-abc": V20})
    async with open_sim(config) as s:
        task_id = await created_id(s, {"model": "ep-20260101-abc", "content": [TEXT]})
        unknown = await create(s, {"model": "ep-unknown", "content": [TEXT]})
        task = await get(s, task_id)
    assert task["model"] == V20 and error_of(unknown)[:2] == (404, "InvalidEndpoint.NotFound")


# --- auth, request ids ---------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer", "Basic ark-test-key", "Bearer wrong"])
async def test_auth(header: str | None) -> None:
    async with open_sim() as s:
        headers = {} if header is None else {"Authorization": header}
        response = await s.control.post(f"/api/v3{TASKS}", json={"model": V20, "content": [TEXT]}, headers=headers)
    assert error_of(response)[:2] == (401, "AuthenticationError") and response.json()["error"]["type"] == "Unauthorized"


async def test_every_answer_has_a_request_id_and_errors_quote_it() -> None:
    async with open_sim() as s:
        ok = await create(s, {"model": V20, "content": [TEXT]})
        bad = await create(s, {"model": V20})
        route = await s.api("GET", "/contents/nowhere/at/all")
    assert len(ok.headers["x-request-id"]) == 32
    assert bad.json()["error"]["message"].endswith(f"Request ID: {bad.headers['x-request-id']}")
    assert route.status_code == 404 and route.headers["x-request-id"] and route.json()["error"]["type"] == "NotFound"


# --- lifecycle: queue, concurrency, priority, expiry -------------------------------------------------


async def test_status_sequence_and_updated_at() -> None:
    async with open_sim() as s:
        task_id = await created_id(s, {"model": V20, "content": [TEXT]})
        queued = await get(s, task_id)
        s.clock.advance(QUEUE_SECONDS)
        running = await get(s, task_id)
        s.clock.advance(RUN_SECONDS - 0.5)
        still = await get(s, task_id)
        s.clock.advance(0.5)
        done = await get(s, task_id)
    assert [t["status"] for t in (queued, running, still, done)] == ["queued", "running", "running", "succeeded"]
    assert "content" not in running and "usage" not in running and "error" not in running  # §5 rules per state
    assert running["updated_at"] == still["updated_at"] == queued["created_at"] + QUEUE_SECONDS
    assert done["updated_at"] == queued["created_at"] + QUEUE_SECONDS + RUN_SECONDS


async def test_running_limit_per_model_and_priority_order() -> None:
    config = SimConfig(queue_seconds=0, run_seconds=10, tokens=frozenset({TOKEN}), max_running=1)
    async with open_sim(config) as s:
        a = await created_id(s, {"model": V20, "content": [TEXT]})
        b = await created_id(s, {"model": V20, "content": [TEXT], "priority": 0})
        c = await created_id(s, {"model": V20, "content": [TEXT], "priority": 9})
        other = await created_id(s, {"model": FAST, "content": [TEXT]})  # another model has its own slot
        first = {t: (await get(s, t))["status"] for t in (a, b, c, other)}
        s.clock.advance(10)
        second = {t: (await get(s, t))["status"] for t in (a, b, c)}
    assert first == {a: "running", b: "queued", c: "queued", other: "running"}
    assert second == {a: "succeeded", b: "queued", c: "running"}  # larger priority first, never pre-empting


async def test_execution_expires_after_bounds_a_stuck_task() -> None:
    async with open_sim() as s:
        await s.faults(job_outcome="hang")
        task_id = await created_id(s, {"model": V20, "content": [TEXT], "execution_expires_after": 3600})
        s.clock.advance(3600)
        task = await get(s, task_id)
    assert task["status"] == "expired" and task["error"] is None and "content" not in task


async def test_the_queued_cap() -> None:
    config = SimConfig(queue_seconds=QUEUE_SECONDS, run_seconds=RUN_SECONDS, tokens=frozenset({TOKEN}), max_queued=3)
    async with open_sim(config) as s:
        for _ in range(3):
            await created_id(s, {"model": V10, "content": [TEXT]})
        refused = await create(s, {"model": V20, "content": [TEXT]})  # the cap is per account, not per model
        s.clock.advance(QUEUE_SECONDS)
        again = await create(s, {"model": V20, "content": [TEXT]})
    assert error_of(refused)[:2] == (429, "QuotaExceeded") and refused.json()["error"]["type"] == "TooManyRequests"
    assert again.status_code == 200


async def test_rpm_per_model_with_the_code_for_how_it_was_named() -> None:
    config = SimConfig(tokens=frozenset({TOKEN}), endpoints={"ep-4k": V20})
    async with open_sim(config) as s:
        for _ in range(15):  # 2.0 at 4k: 15 RPM (§9.2)
            await created_id(s, {"model": V20, "content": [TEXT], "resolution": "4k"})
        by_model = await create(s, {"model": V20, "content": [TEXT], "resolution": "4k"})
        by_endpoint = await create(s, {"model": "ep-4k", "content": [TEXT], "resolution": "4k"})
        other_pool = await create(s, {"model": V20, "content": [TEXT], "resolution": "720p"})
        s.clock.advance(60)
        later = await create(s, {"model": V20, "content": [TEXT], "resolution": "4k"})
    assert error_of(by_model)[:2] == (429, "ModelAccountRpmRateLimitExceeded")
    assert error_of(by_endpoint)[:2] == (429, "RateLimitExceeded.EndpointRPMExceeded")
    assert other_pool.status_code == later.status_code == 200


# --- retention and media --------------------------------------------------------------------------


async def test_media_urls_live_24_hours_and_tasks_7_days() -> None:
    async with open_sim() as s:
        task_id = await created_id(s, {"model": V20, "content": [TEXT], "return_last_frame": True})
        plain = await created_id(s, {"model": V20, "content": [TEXT]})
        s.clock.advance(QUEUE_SECONDS + RUN_SECONDS)
        content = (await get(s, task_id))["content"]
        assert "last_frame_url" not in (await get(s, plain))["content"]
        assert "X-Tos-Expires=86400" in content["video_url"]
        video, frame = await s.control.get(content["video_url"]), await s.control.get(content["last_frame_url"])
        no_frame = await s.control.get(content["last_frame_url"].replace(task_id, plain))
        assert (await s.control.get(f"/tos/{task_id}.txt")).status_code == 404
        s.clock.advance(86400)
        expired = await s.control.get(content["video_url"])
        kept = await s.api("GET", f"{TASKS}/{task_id}")
        s.clock.advance(6 * 86400 - QUEUE_SECONDS - RUN_SECONDS)  # 7 days after created_at
        gone = await s.api("GET", f"{TASKS}/{task_id}")
    assert (video.headers["content-type"], video.content) == ("video/mp4", sample("video.mp4"))
    assert frame.content == sample("last_frame.png") and no_frame.status_code == 404
    assert expired.status_code == 403 and kept.status_code == 200  # [CONFLICT] 7 d for the task, 24 h for media
    assert error_of(gone) == (404, "NotFound.TaskId", "id")


# --- list (§6.1) ----------------------------------------------------------------------------------


async def test_list_filters_paging_and_window() -> None:
    async with open_sim() as s:
        ids = []
        for model in (V20, V20, FAST, V15):
            ids.append(await created_id(s, {"model": model, "content": [TEXT], **({"service_tier": "flex"} if model == V15 else {})}))
            s.clock.advance(1)
        same_second = await created_id(s, {"model": V20, "content": [TEXT]})

        async def listed(**params: Any) -> dict[str, Any]:
            response = await s.api("GET", TASKS, params=params)
            assert response.status_code == 200, response.text
            return response.json()

        everything = await listed()
        assert [t["id"] for t in everything["items"]] == ids[::-1] and everything["total"] == 4  # newest first; [T-7d, T)
        assert (await listed(**{"filter.model": V20}))["total"] == 2
        assert (await listed(**{"filter.service_tier": "flex"}))["items"][0]["id"] == ids[3]
        page = await listed(page_num=2, page_size=3)
        assert [t["id"] for t in page["items"]] == [ids[0]] and page["total"] == 4
        picked = await s.api("GET", TASKS, params=[("filter.task_ids", ids[0]), ("filter.task_ids", ids[2])])
        assert {t["id"] for t in picked.json()["items"]} == {ids[0], ids[2]}
        s.clock.advance(QUEUE_SECONDS + RUN_SECONDS)
        assert {t["id"] for t in (await listed(**{"filter.status": "succeeded"}))["items"]} == {*ids, same_second}
        assert (await listed(**{"filter.status": "expired"}))["total"] == 0
        bad_page = await s.api("GET", TASKS, params={"page_size": 501})
        bad_status = await s.api("GET", TASKS, params={"filter.status": "done"})
    assert error_of(bad_page) == (400, "InvalidParameter", "page_size")
    assert error_of(bad_status) == (400, "InvalidParameter", "filter.status")


# --- cancel or delete (§6.2) --------------------------------------------------------------------------


async def test_delete_semantics_follow_the_status() -> None:
    async with open_sim() as s:
        await s.faults(job_outcome="hang")
        running = await created_id(s, {"model": V20, "content": [TEXT]})
        await s.faults(job_outcome="succeed")
        finished = await created_id(s, {"model": V20, "content": [TEXT]})
        s.clock.advance(QUEUE_SECONDS + RUN_SECONDS)
        queued = await created_id(s, {"model": V20, "content": [TEXT]})

        cancel = await s.api("DELETE", f"{TASKS}/{queued}")
        assert (cancel.status_code, cancel.json()) == (200, {})
        assert (await get(s, queued))["status"] == "cancelled"
        twice = await s.api("DELETE", f"{TASKS}/{queued}")
        refused = await s.api("DELETE", f"{TASKS}/{running}")
        deleted = await s.api("DELETE", f"{TASKS}/{finished}")
        after_delete = await s.api("GET", f"{TASKS}/{finished}")
        s.clock.advance(86400)
        cancelled_gone = await s.api("GET", f"{TASKS}/{queued}")
    assert error_of(twice)[:2] == error_of(refused)[:2] == (403, "OperationDenied.InvalidState")
    assert "invalid state: running" in refused.json()["error"]["message"]
    assert deleted.status_code == 200 and error_of(after_delete)[:2] == (404, "NotFound.TaskId")
    assert error_of(cancelled_gone)[:2] == (404, "NotFound.TaskId")  # a cancelled task goes after 24 h


# --- callbacks (§7) ---------------------------------------------------------------------------------


async def test_callbacks_on_each_change_with_the_task_object() -> None:
    async with open_sim() as s:
        task_id = await created_id(s, {"model": V20, "content": [TEXT], "callback_url": CALLBACK})
        await s.settle()
        s.clock.advance(QUEUE_SECONDS + RUN_SECONDS)
        await s.api("GET", TASKS)  # any request replays the clock
        await s.settle()
        records = (await s.control.get("/_sim/callbacks")).json()
    bodies = [json.loads(b) for b in s.receiver.bodies]
    assert [b["status"] for b in bodies] == ["queued", "running", "succeeded"]
    assert all(b["id"] == task_id for b in bodies) and bodies[-1]["content"]["video_url"]
    assert bodies[1]["updated_at"] == bodies[0]["created_at"] + QUEUE_SECONDS  # the state at the change, not at delivery
    assert [r["http_status"] for r in records] == [200, 200, 200]


async def test_unacknowledged_final_callbacks_are_retried_three_times() -> None:
    async with open_sim() as s:
        s.receiver.status = 500
        await created_id(s, {"model": V20, "content": [TEXT], "callback_url": CALLBACK})
        s.clock.advance(QUEUE_SECONDS + RUN_SECONDS)
        for step in (0, 5, 10, 20, 40):  # 5 s, then 10 s, then 20 s between retries
            s.clock.advance(step)
            await s.api("GET", TASKS)
            await s.settle()
    assert s.receiver.statuses == ["queued", "running", "succeeded", "succeeded", "succeeded", "succeeded"]


async def test_no_callback_on_cancel() -> None:
    async with open_sim() as s:
        task_id = await created_id(s, {"model": V20, "content": [TEXT], "callback_url": CALLBACK})
        await s.api("DELETE", f"{TASKS}/{task_id}")
        s.clock.advance(QUEUE_SECONDS + RUN_SECONDS)
        await s.api("GET", TASKS)
        await s.settle()
    assert s.receiver.statuses == ["queued"]


# --- draft (1.5 pro) ---------------------------------------------------------------------------------


async def test_draft_then_final() -> None:
    async with open_sim() as s:
        draft = await created_id(s, {"model": V15, "content": [TEXT], "draft": True})
        refused = await create(s, {"model": V15, "content": [{"type": "draft_task", "draft_task": {"id": draft}}]})
        s.clock.advance(QUEUE_SECONDS + RUN_SECONDS)
        drafted = await get(s, draft)
        final = await created_id(s, {"model": V15, "content": [{"type": "draft_task", "draft_task": {"id": draft}}], "resolution": "720p"})
        s.clock.advance(QUEUE_SECONDS + RUN_SECONDS)
        done = await get(s, final)
    assert drafted["resolution"] == "480p" and drafted["draft"] is True
    assert drafted["usage"]["completion_tokens"] == int(864 * 496 * 121 // 1024 * 0.6)  # draft with audio: x 0.6 (§11.1)
    assert error_of(refused)[:2] == (400, "InvalidParameter")  # the draft has not finished yet
    assert (done["draft_task_id"], done["resolution"], done["draft"]) == (draft, "720p", False)


# --- control routes and the descriptor's factory ------------------------------------------------------


async def test_reset_and_error_switch_listing() -> None:
    async with open_sim() as s:
        await created_id(s, {"model": V20, "content": [TEXT]})
        await s.arm("ServerOverloaded", count=-1)
        listing = (await s.control.get("/_sim/errors")).json()
        assert (await create(s, {"model": V20, "content": [TEXT]})).status_code == 429
        assert (await create(s, {"model": V20, "content": [TEXT]})).status_code == 429  # until reset
        unknown = await s.control.post("/_sim/errors", json={"code": "NoSuchCode"})
        never = await s.control.post("/_sim/errors", json={"code": "ServerOverloaded", "count": 0})
        (await s.control.post("/_sim/reset")).raise_for_status()
        assert (await create(s, {"model": V20, "content": [TEXT]})).status_code == 200
        jobs = (await s.control.get("/_sim/jobs")).json()
    assert listing["codes"]["ServerOverloaded"] == 429 and listing["armed"][0]["count"] == -1
    assert unknown.status_code == never.status_code == 400 and len(jobs) == 1 and len(s.state.board.tasks) == 1


async def test_the_descriptor_factory_splits_job_seconds_and_raises_the_caps() -> None:
    app = simulator(job_seconds=10.0, capacity=500)
    config = app.state.simulator.config
    assert (config.queue_seconds, config.run_seconds, config.max_queued, config.max_running) == (2.0, 8.0, 500, 500)
    assert simulator().state.simulator.config.max_queued == 120
