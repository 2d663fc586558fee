"""Never pay twice, never lose a result (SPEC 3.1, 5), through the whole stack on loopback.

- A client whose first answer is lost retries and gets the same job: one upstream render.
- A webhook receiver that refuses three times still gets the event, same `webhook-id`
  every time, and `openai`'s `webhooks.unwrap` verifies it.
- A finished video stays downloadable from vidgate's own copy after the upstream forgot it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
from litestar import Litestar, Request, post
from litestar.response import Response
from openai import OpenAI

from providers.simkit import serve_in_thread
from tests.integration.conftest import Stack

SECRET = "whsec_ZGVtby13ZWJob29rLXNlY3JldC0wMTIzNDU2Nzg5"  # config/demo.toml


def wait_until(what: str, check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return result


def completed(stack: Stack, video_id: str) -> dict[str, Any]:
    with stack.client() as client:
        return wait_until(f"{video_id} to complete", lambda: (v := client.get(f"/v1/videos/{video_id}").json())["status"] == "completed" and v)


class LoseFirstAnswer(httpx.HTTPTransport):
    """Sends every request, but drops the answer to the first POST: the server did the
    work, the client never heard back (a proxy timeout, a dropped connection)."""

    def __init__(self) -> None:
        super().__init__()
        self.posts = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST":
            self.posts += 1
            if self.posts == 1:
                response.read()
                response.close()
                raise httpx.ReadTimeout("the answer was lost on the way back", request=request)
        return response


def test_sdk_retry_after_a_lost_answer_gets_the_same_job(fresh: Stack) -> None:
    transport = LoseFirstAnswer()
    client = OpenAI(base_url=f"{fresh.base}/v1", api_key="sk-demo", max_retries=2, http_client=httpx.Client(transport=transport))
    video = client.videos.create(model="seedance-2.0", prompt="Rendered once", seconds="5", extra_body={"provider": "powertokens"})
    assert transport.posts == 2, "the SDK retried after the lost answer"
    assert len(fresh.sim_jobs("powertokens")) == 1, "one upstream render for two POSTs"
    with fresh.client() as plain:
        page = plain.get("/v1/videos", params={"limit": 100}).json()
    assert [v["id"] for v in page["data"] if v["prompt"] == "Rendered once"] == [video.id]
    # a deliberate second request (not a retry) is a new job
    again = client.videos.create(model="seedance-2.0", prompt="Rendered once", seconds="5", extra_body={"provider": "powertokens"})
    assert again.id != video.id


def test_receiver_refusing_three_times_gets_the_event_with_one_webhook_id(fresh: Stack) -> None:
    seen: list[tuple[bytes, dict[str, str]]] = []
    lock = threading.Lock()

    @post("/hook", status_code=200)
    async def hook(request: Request) -> Response[str]:
        body = await request.body()
        with lock:
            seen.append((body, dict(request.headers)))
            refuse = len(seen) <= 3
        return Response("not now" if refuse else "ok", status_code=503 if refuse else 200)

    with serve_in_thread(Litestar(route_handlers=[hook])) as receiver, fresh.client() as client:
        created = client.post(
            "/v1/videos",
            json={"model": "seedance-2.0", "prompt": "hook", "provider": "useapi", "webhook_url": f"{receiver}/hook"},
        ).json()
        video_id = created["id"]
        completed(fresh, video_id)
        deliveries = wait_until(
            "the fourth attempt to be recorded",
            lambda: (d := client.get(f"/v1/videos/{video_id}/deliveries").json()["data"]) and d[0]["status"] == "delivered" and d,
        )
    assert len(seen) == 4
    ids = {headers["webhook-id"] for _, headers in seen}
    assert len(ids) == 1 and ids == {deliveries[0]["id"]}
    payload, headers = seen[-1]
    event = OpenAI(api_key="x", webhook_secret=SECRET).webhooks.unwrap(payload, headers)
    assert event.type == "video.completed"
    assert event.data.id == video_id  # type: ignore[union-attr]
    log = deliveries[0]["log"]
    assert [a.get("status_code") for a in log] == [503, 503, 503, 200]
    assert all(a["latency_ms"] >= 0 for a in log)
    assert deliveries[0]["attempts"] == 4


def test_content_comes_from_our_copy_after_the_upstream_forgot_the_job(fresh: Stack) -> None:
    with fresh.client() as client:
        for provider in ("useapi", "powertokens"):
            video_id = client.post("/v1/videos", json={"model": "seedance-2.0", "prompt": "keep me", "provider": provider}).json()["id"]
            video = completed(fresh, video_id)
            upstream_url = video["result"]["video_url"]
            assert httpx.get(upstream_url).status_code == 200

            fresh.reset()  # the simulator forgets every job: its result links now 404
            assert httpx.get(upstream_url).status_code == 404

            content = client.get(f"/v1/videos/{video_id}/content")
            assert content.status_code == 200, content.text[:300]
            assert content.headers["content-type"] == "video/mp4"
            assert content.content[4:8] == b"ftyp"
            assert content.content == _sample_video()
            if provider == "useapi":  # useapi results carry a cover image: copied too
                cover = client.get(f"/v1/videos/{video_id}/content", params={"variant": "thumbnail"})
                assert cover.status_code == 200 and cover.content.startswith(b"\x89PNG")


def _sample_video() -> bytes:
    from providers.simkit import sample

    return sample("video.mp4")
