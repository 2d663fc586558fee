"""The public API end to end: vidgate + both simulators over loopback HTTP."""

from __future__ import annotations

import base64
import json
import threading
import time

import httpx
import pytest
from litestar import Litestar, Request, post
from openai import OpenAI

from gateway.app import create_app
from gateway.cli import demo_settings
from providers.simkit import free_port, sample, serve_in_thread
from tests.integration.conftest import Stack

IMAGE = "data:image/png;base64," + base64.b64encode(sample("image.png")).decode()
VIDEO = "data:video/mp4;base64," + base64.b64encode(sample("video.mp4")).decode()
AUDIO = "data:audio/wav;base64," + base64.b64encode(sample("audio.wav")).decode()


def wait_done(client: httpx.Client, video_id: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        video = client.get(f"/v1/videos/{video_id}").json()
        if video["status"] not in ("queued", "in_progress") or time.monotonic() > deadline:
            return video
        time.sleep(0.1)


@pytest.mark.parametrize("provider", ["useapi", "powertokens"])
def test_reference_mode_with_image_video_and_audio_completes(fresh: Stack, provider: str) -> None:
    with fresh.client() as client:
        created = client.post(
            "/v1/videos",
            json={
                "model": "seedance-2.0",
                "provider": provider,
                "prompt": "@image1 dances like @video1 while @audio1 plays",
                "references": {"images": [IMAGE], "videos": [VIDEO], "audios": [AUDIO]},
                "seconds": 5,
            },
        )
        assert created.status_code == 200, created.text
        assert created.json()["mode"] == "reference"
        video = wait_done(client, created.json()["id"])
        assert video["status"] == "completed", video
        assert video["provider"] == provider and video["result"]["video_url"]
    [received] = [j for j in fresh.sim_jobs(provider) if j.get("status_code", 200) == 200]
    body = received["body"]
    if provider == "useapi":
        account = body["account"]
        for field in ("omni_1_imageRef", "omni_1_videoRef", "omni_1_audioRef"):
            assert body[field].startswith(account + "-"), (field, body[field])  # uploaded to the pinned account
        assert "ratio" not in body
    else:
        kinds = [m["type"] for m in body["media"]]
        assert kinds == ["text", "reference_image", "reference_video", "reference_audio"]
        assert body["seconds"] == "5"


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "seedance-2.0", "prompt": "x", "seconds": 3, "provider": "useapi"}, 422, "seconds"),
        ({"model": "seedance-1.0-mini", "first_frame": IMAGE, "keyframes": [{"image": IMAGE}, {"image": IMAGE}]}, 422, "keyframes"),
        ({"model": "seedance-2.0", "prompt": "@image1", "references": {"images": [IMAGE] * 10}}, 422, "references.images"),
        ({"model": "seedance-2.0", "prompt": "x", "resolution": "8k"}, 422, "resolution"),
        ({"model": "no-such-model", "prompt": "x"}, 422, "model"),
        ({"model": "seedance-2.0", "prompt": "x", "bogus": 1}, 422, "bogus"),
        ({"model": "seedance-2.0"}, 422, "prompt"),
        ({"model": "seedance-2.0", "prompt": "x", "provider": "nope"}, 422, "provider"),
    ],
)
def test_invalid_requests_name_the_field_and_never_reach_an_upstream(fresh: Stack, body: dict, status: int, param: str) -> None:
    with fresh.client() as client:
        response = client.post("/v1/videos", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == param, error
    assert error["message"]
    assert fresh.sim_jobs("useapi") == [] and fresh.sim_jobs("powertokens") == []


def test_private_media_url_is_refused_when_private_urls_are_not_allowed(stack: Stack, tmp_path) -> None:
    stack.reset()
    port = free_port()
    settings = demo_settings(port=port, urls=stack.sims, data_dir=str(tmp_path), job_seconds=0.5)
    settings.security.allow_private_urls = False
    with serve_in_thread(create_app(settings), port=port) as base:
        for url in ("http://127.0.0.1:9/a.png", "http://10.0.0.7/a.png", "http://169.254.169.254/latest/meta-data"):
            response = httpx.post(
                f"{base}/v1/videos",
                headers={"Authorization": "Bearer sk-demo"},
                json={"model": "seedance-2.0", "prompt": "x", "first_frame": url},
            )
            assert response.status_code == 422, response.text
            assert response.json()["error"]["param"] == "first_frame"
    assert stack.sim_jobs("useapi") == [] and stack.sim_jobs("powertokens") == []


def test_idempotency_key_returns_the_same_job_and_a_different_body_conflicts(fresh: Stack) -> None:
    with fresh.client() as client:
        body = {"model": "seedance-2.0", "prompt": "same", "provider": "powertokens"}
        first = client.post("/v1/videos", json=body, headers={"Idempotency-Key": "k-1"})
        again = client.post("/v1/videos", json=body, headers={"Idempotency-Key": "k-1"})
        assert first.status_code == again.status_code == 200
        assert first.json()["id"] == again.json()["id"]
        other = client.post("/v1/videos", json={**body, "prompt": "different"}, headers={"Idempotency-Key": "k-1"})
        assert other.status_code == 409 and other.json()["error"]["param"] == "Idempotency-Key"
        wait_done(client, first.json()["id"])
    assert len([j for j in fresh.sim_jobs("powertokens") if j.get("status_code", 200) == 200]) == 1


def test_events_stream_status_changes_until_the_end(fresh: Stack) -> None:
    with fresh.client() as client:
        video_id = client.post("/v1/videos", json={"model": "seedance-2.0", "prompt": "sse", "provider": "useapi"}).json()["id"]
        events = []
        with client.stream("GET", f"/v1/videos/{video_id}/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines():
                if line.startswith("event:"):
                    events.append(line.split(":", 1)[1].strip())
    assert events[-1] == "video.completed"
    assert len(events) >= 2


def test_thumbnail_variant_and_content_before_completion(fresh: Stack) -> None:
    fresh.set_faults("useapi", job_outcome="hang")
    with fresh.client() as client:
        hung = client.post("/v1/videos", json={"model": "seedance-2.0", "prompt": "x", "provider": "useapi"}).json()["id"]
        early = client.get(f"/v1/videos/{hung}/content")
        assert early.status_code == 404 and early.json()["error"]["code"] == "content_not_ready"
        fresh.set_faults("useapi", job_outcome="succeed")
        done = client.post("/v1/videos", json={"model": "seedance-2.0", "prompt": "y", "provider": "useapi"}).json()["id"]
        assert wait_done(client, done)["status"] == "completed"
        thumb = client.get(f"/v1/videos/{done}/content", params={"variant": "thumbnail"})
        assert thumb.status_code == 200 and thumb.content.startswith(b"\x89PNG")
        cancelled = client.post(f"/v1/videos/{hung}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        deleted = client.delete(f"/v1/videos/{hung}")
        assert deleted.status_code == 200 and deleted.json() == {"id": hung, "object": "video.deleted", "deleted": True}


def test_content_honours_one_byte_range_so_a_browser_can_seek(fresh: Stack) -> None:
    with fresh.client() as client:
        done = client.post("/v1/videos", json={"model": "seedance-2.0", "prompt": "seek", "provider": "powertokens"}).json()["id"]
        assert wait_done(client, done)["status"] == "completed"
        whole = client.get(f"/v1/videos/{done}/content")
        size = len(whole.content)
        assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes" and whole.headers["content-length"] == str(size)
        for asked, start, end in (
            ("bytes=0-", 0, size - 1),
            ("bytes=100-199", 100, 199),
            ("bytes=-50", size - 50, size - 1),
            (f"bytes=10-{size * 2}", 10, size - 1),
        ):
            part = client.get(f"/v1/videos/{done}/content", headers={"Range": asked})
            assert part.status_code == 206, (asked, part.status_code)
            assert part.headers["content-range"] == f"bytes {start}-{end}/{size}"
            assert part.content == whole.content[start : end + 1]
        past = client.get(f"/v1/videos/{done}/content", headers={"Range": f"bytes={size}-"})
        assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{size}"
        assert past.json()["error"]["code"] == "range_not_satisfiable"
        several = client.get(f"/v1/videos/{done}/content", headers={"Range": "bytes=0-1,5-6"})  # not honoured: the whole video
        assert several.status_code == 200 and several.content == whole.content


def test_content_rejection_fails_the_job_with_its_class(fresh: Stack) -> None:
    fresh.set_faults("powertokens", job_outcome="fail")
    with fresh.client() as client:
        video_id = client.post("/v1/videos", json={"model": "seedance-2.0", "prompt": "x", "provider": "powertokens"}).json()["id"]
        video = wait_done(client, video_id)
    assert video["status"] == "failed"
    assert video["error"]["code"] == "content_rejected"
    assert [a["status"] for a in video["attempts"]] == ["failed"]


def test_signed_webhook_verifies_with_the_openai_sdk(fresh: Stack) -> None:
    received: list[tuple[bytes, dict[str, str]]] = []
    arrived = threading.Event()

    @post("/hook", status_code=200)
    async def hook(request: Request) -> dict:
        received.append((await request.body(), dict(request.headers)))
        arrived.set()
        return {}

    with serve_in_thread(Litestar([hook])) as receiver, fresh.client() as client:
        created = client.post(
            "/v1/videos",
            json={"model": "seedance-2.0", "prompt": "hook", "provider": "useapi", "webhook_url": f"{receiver}/hook"},
        )
        assert created.status_code == 200, created.text
        assert arrived.wait(30)
    payload, headers = received[0]
    secret = "whsec_ZGVtby13ZWJob29rLXNlY3JldC0wMTIzNDU2Nzg5"  # config/demo.toml
    event = OpenAI(api_key="x", webhook_secret=secret).webhooks.unwrap(payload, headers)
    body = json.loads(payload)
    assert body["type"] == "video.completed" and body["object"] == "event"
    assert body["data"]["id"] == created.json()["id"] and body["data"]["status"] == "completed"
    assert event is not None
