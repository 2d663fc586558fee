"""Webhook signing (checked with the real `openai` SDK) and the retrying dispatcher."""

from __future__ import annotations

import asyncio
import base64
import time

import httpx
import msgspec
import openai
import pytest
from litestar import Litestar, Request, post
from structlog.testing import capture_logs

from gateway.jobs.model import WebhookDelivery
from gateway.urlguard import UrlGuard
from gateway.webhooks import (
    USER_AGENT,
    WebhookDispatcher,
    event_payload,
    generate_secret,
    new_event_id,
    sign,
)
from providers.simkit import serve_in_thread

VIDEO = {"id": "video_123", "object": "video", "status": "completed", "model": "seedance-2.0"}


class FakeStore:
    """Just the delivery half of the Store protocol, in memory."""

    def __init__(self) -> None:
        self.rows: dict[str, WebhookDelivery] = {}

    async def add_delivery(self, delivery: WebhookDelivery) -> None:
        self.rows[delivery.id] = delivery

    async def update_delivery(self, delivery: WebhookDelivery) -> None:
        assert delivery.id in self.rows
        self.rows[delivery.id] = delivery

    async def due_deliveries(self, now: float, limit: int = 50) -> list[WebhookDelivery]:
        due = [
            d
            for d in self.rows.values()
            if d.status == "pending" and d.next_attempt_at is not None and d.next_attempt_at <= now
        ]
        return sorted(due, key=lambda d: d.next_attempt_at or 0)[:limit]

    async def deliveries(self, job_id: str) -> list[WebhookDelivery]:
        return [d for d in self.rows.values() if d.job_id == job_id]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _sdk(secret: str) -> openai.OpenAI:
    return openai.OpenAI(api_key="x", webhook_secret=secret, base_url="http://127.0.0.1:9")


def _headers(msg_id: str, ts: int, signature: str) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


# ---------------------------------------------------------------------------
# signing
# ---------------------------------------------------------------------------


def test_generate_secret_is_whsec_with_32_random_bytes() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:])) == 32
    assert generate_secret() != secret


@pytest.mark.parametrize("secret", [generate_secret(), "plain-shared-secret"])
def test_openai_sdk_accepts_our_signature(secret: str) -> None:
    body = event_payload("evt_1", "video.completed", 1758941485, msgspec.json.encode(VIDEO))
    ts = int(time.time())
    headers = _headers("msg_abc", ts, sign(secret, "msg_abc", ts, body))

    client = _sdk(secret)
    client.webhooks.verify_signature(body, headers)
    event = client.webhooks.unwrap(body, headers)
    assert event.id == "evt_1"
    assert event.type == "video.completed"


def test_openai_sdk_rejects_tampered_body_and_wrong_secret() -> None:
    secret = generate_secret()
    body = event_payload("evt_1", "video.completed", 1, msgspec.json.encode(VIDEO))
    ts = int(time.time())
    headers = _headers("msg_abc", ts, sign(secret, "msg_abc", ts, body))

    with pytest.raises(openai.InvalidWebhookSignatureError):
        _sdk(secret).webhooks.verify_signature(body.replace(b"completed", b"failed"), headers)
    with pytest.raises(openai.InvalidWebhookSignatureError):
        _sdk(generate_secret()).webhooks.verify_signature(body, headers)
    with pytest.raises(openai.InvalidWebhookSignatureError):  # the id is signed too
        _sdk(secret).webhooks.verify_signature(body, {**headers, "webhook-id": "msg_other"})


def test_sign_is_standard_webhooks_v1() -> None:
    # Known-answer vector from the Standard Webhooks reference libraries.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_event_payload_shape() -> None:
    body = event_payload("evt_9", "video.failed", 1758941485.7, msgspec.json.encode(VIDEO))
    assert body.startswith(b'{"id":"evt_9","object":"event","created_at":1758941485,"type":"video.failed","data":')
    assert msgspec.json.decode(body)["data"] == VIDEO

    class Video(msgspec.Struct):
        id: str
        object: str = "video"

    assert msgspec.json.decode(event_payload("evt_1", "video.cancelled", 5, Video("video_1")))["data"] == {
        "id": "video_1",
        "object": "video",
    }
    raw = event_payload("evt_2", "video.completed", 5, msgspec.Raw(msgspec.json.encode(VIDEO)))
    assert msgspec.json.decode(raw)["data"] == VIDEO
    assert new_event_id().startswith("evt_")
    with pytest.raises(ValueError):
        event_payload("evt_1", "video.exploded", 5, b"{}")


# ---------------------------------------------------------------------------
# dispatcher
# ---------------------------------------------------------------------------


def _dispatcher(store: FakeStore, transport: httpx.AsyncBaseTransport, clock: Clock, **kw) -> WebhookDispatcher:
    kw.setdefault("guard", UrlGuard(allow_private=True))
    kw.setdefault("secret", SECRET)
    kw.setdefault("schedule", [5.0, 30.0, 120.0])
    kw.setdefault("max_attempts", 4)
    return WebhookDispatcher(store, httpx.AsyncClient(transport=transport), clock=clock, rand=lambda: 0.5, **kw)


SECRET = generate_secret()
PAYLOAD = event_payload("evt_1", "video.completed", 1, msgspec.json.encode(VIDEO))


async def test_delivers_to_a_real_receiver_and_the_sdk_verifies_it() -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    @post("/hook", status_code=204)
    async def hook(request: Request) -> None:
        received.append((dict(request.headers), await request.body()))

    store = FakeStore()
    with serve_in_thread(Litestar([hook])) as base:
        async with httpx.AsyncClient() as http:
            dispatcher = WebhookDispatcher(
                store, http, secret=SECRET, schedule=[1.0], max_attempts=3, guard=UrlGuard(allow_private=True)
            )
            queued = await dispatcher.enqueue("video_123", "t1", f"{base}/hook", "video.completed", PAYLOAD)
            assert queued.id.startswith("msg_") and queued.status == "pending"
            assert await dispatcher.run_due() == 1

    [(headers, body)] = received
    assert body == PAYLOAD
    assert headers["webhook-id"] == queued.id
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == USER_AGENT
    assert headers["webhook-signature"].startswith("v1,")
    event = _sdk(SECRET).webhooks.unwrap(body, headers)
    assert event.type == "video.completed"

    done = store.rows[queued.id]
    assert (done.status, done.attempts, done.last_status_code, done.next_attempt_at) == ("delivered", 1, 204, None)


async def test_retries_on_schedule_then_delivers_with_a_stable_id() -> None:
    answers = [500, 500, 200]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(answers[len(seen) - 1])

    store, clock = FakeStore(), Clock(1_000.0)
    dispatcher = _dispatcher(store, httpx.MockTransport(handler), clock, jitter=0.1)
    delivery = await dispatcher.enqueue("video_1", "t1", "https://93.184.216.34/hook", "video.completed", PAYLOAD)

    assert await dispatcher.run_due() == 1
    row = store.rows[delivery.id]
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == ("pending", 1, 500, "HTTP 500")
    assert row.next_attempt_at == pytest.approx(1_000.0 + 5.0 * 1.05)  # schedule[0] plus jitter 0.1 * 0.5

    clock.now += 5.0  # not yet due: the jitter pushed it past 1005
    assert await dispatcher.run_due() == 0
    clock.now = row.next_attempt_at
    assert await dispatcher.run_due() == 1
    row = store.rows[delivery.id]
    assert (row.status, row.attempts) == ("pending", 2)
    assert row.next_attempt_at == pytest.approx(clock.now + 30.0 * 1.05)

    clock.now = row.next_attempt_at
    assert await dispatcher.run_due() == 1
    row = store.rows[delivery.id]
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == ("delivered", 3, 200, None)

    assert len(seen) == 3
    assert {r.headers["webhook-id"] for r in seen} == {delivery.id}
    stamps = [int(r.headers["webhook-timestamp"]) for r in seen]
    assert stamps == [1000, int(1000 + 5.25), int(1000 + 5.25 + 31.5)]
    for r, ts in zip(seen, stamps, strict=True):
        assert r.headers["webhook-signature"] == sign(SECRET, delivery.id, ts, PAYLOAD)
        assert r.content == PAYLOAD


async def test_gives_up_after_max_attempts() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise httpx.ConnectError("connection refused")
        return httpx.Response(503)

    store, clock = FakeStore(), Clock(0.0)
    dispatcher = _dispatcher(store, httpx.MockTransport(handler), clock, max_attempts=3, jitter=0.0)
    delivery = await dispatcher.enqueue("video_1", "t1", "https://93.184.216.34/hook", "video.failed", PAYLOAD)

    with capture_logs() as logs:
        for _ in range(3):
            assert await dispatcher.run_due() == 1
            row = store.rows[delivery.id]
            if row.attempts == 2:
                assert row.last_status_code is None
                assert "ConnectError" in (row.last_error or "")
            clock.now = row.next_attempt_at or clock.now + 1000

    row = store.rows[delivery.id]
    assert (row.status, row.attempts, row.last_status_code, row.next_attempt_at) == ("failed", 3, 503, None)
    assert await dispatcher.run_due() == 0
    assert calls == 3

    failures = [e for e in logs if e["event"] == "webhook.delivery_failed"]
    assert [e["final"] for e in failures] == [False, False, True]
    assert all(SECRET not in repr(e) for e in logs)
    assert failures[0]["host"] == "93.184.216.34"


async def test_timeout_is_recorded_and_retried() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow receiver")

    store = FakeStore()
    dispatcher = _dispatcher(store, httpx.MockTransport(handler), Clock(0.0), jitter=0.0)
    delivery = await dispatcher.enqueue("video_1", "t1", "https://93.184.216.34/hook", "video.completed", PAYLOAD)
    await dispatcher.run_due()
    row = store.rows[delivery.id]
    assert (row.status, row.attempts, row.last_error, row.next_attempt_at) == ("pending", 1, "timed out", 5.0)


async def test_a_redirect_is_a_failed_attempt_not_followed() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(307, headers={"location": "https://93.184.216.35/elsewhere"})

    store = FakeStore()
    dispatcher = _dispatcher(store, httpx.MockTransport(handler), Clock(0.0))
    delivery = await dispatcher.enqueue("video_1", "t1", "https://93.184.216.34/hook", "video.completed", PAYLOAD)
    await dispatcher.run_due()
    assert seen == ["https://93.184.216.34/hook"]
    assert store.rows[delivery.id].last_status_code == 307


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/hook", "http://10.1.2.3/hook", "http://169.254.169.254/latest", "http://localhost/x"]
)
async def test_blocked_url_is_failed_and_never_requested(url: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"requested {request.url}")

    store = FakeStore()
    dispatcher = _dispatcher(store, httpx.MockTransport(handler), Clock(0.0), guard=UrlGuard(allow_private=False))
    delivery = await dispatcher.enqueue("video_1", "t1", url, "video.completed", PAYLOAD)
    with capture_logs() as logs:
        await dispatcher.run_due()
    row = store.rows[delivery.id]
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 1, None)
    assert "webhook_url is not an allowed URL" in (row.last_error or "")
    assert [e["event"] for e in logs] == ["webhook.delivery_failed"]


async def test_unresolvable_host_is_retried_not_failed() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    store = FakeStore()
    transport = httpx.MockTransport(lambda r: httpx.Response(200))
    guard = UrlGuard(resolver=resolver)
    dispatcher = _dispatcher(store, transport, Clock(0.0), guard=guard, jitter=0.0)
    delivery = await dispatcher.enqueue("video_1", "t1", "https://hooks.example/x", "video.completed", PAYLOAD)
    await dispatcher.run_due()
    row = store.rows[delivery.id]
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, 5.0)
    assert "could not be resolved" in (row.last_error or "")


async def test_delivery_is_pinned_to_the_checked_address() -> None:
    seen: list[httpx.Request] = []

    async def resolver(host: str, port: int) -> list[str]:
        assert (host, port) == ("hooks.example", 443)
        return ["93.184.216.34"]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    store = FakeStore()
    dispatcher = _dispatcher(store, httpx.MockTransport(handler), Clock(0.0), guard=UrlGuard(resolver=resolver))
    await dispatcher.enqueue("video_1", "t1", "https://hooks.example/in?token=abc", "video.completed", PAYLOAD)
    await dispatcher.run_due()
    [request] = seen
    assert request.url == "https://93.184.216.34/in?token=abc"
    assert request.headers["host"] == "hooks.example"
    assert request.extensions["sni_hostname"] == "hooks.example"


async def test_run_loop_wakes_on_enqueue_and_stops() -> None:
    delivered = asyncio.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        delivered.set()
        return httpx.Response(200)

    store = FakeStore()
    dispatcher = _dispatcher(store, httpx.MockTransport(handler), Clock(0.0))
    stop = asyncio.Event()
    loop = asyncio.create_task(dispatcher.run(stop, interval=60.0))
    await asyncio.sleep(0)
    delivery = await dispatcher.enqueue("video_1", "t1", "https://93.184.216.34/hook", "video.completed", PAYLOAD)
    await asyncio.wait_for(delivered.wait(), timeout=5)
    stop.set()
    await asyncio.wait_for(loop, timeout=5)
    assert store.rows[delivery.id].status == "delivered"


async def test_run_loop_survives_a_store_error() -> None:
    store = FakeStore()
    failures = 0

    async def broken(now: float, limit: int = 50) -> list[WebhookDelivery]:
        nonlocal failures
        failures += 1
        if failures >= 2:
            stop.set()
        raise RuntimeError("database is locked")

    store.due_deliveries = broken  # type: ignore[method-assign]
    dispatcher = _dispatcher(store, httpx.MockTransport(lambda r: httpx.Response(200)), Clock(0.0))
    stop = asyncio.Event()
    with capture_logs() as logs:
        await asyncio.wait_for(dispatcher.run(stop, interval=0.01), timeout=5)
    assert failures == 2
    assert logs[0]["event"] == "webhook.dispatch_error"


def test_bad_configuration_is_refused() -> None:
    http = httpx.AsyncClient()
    guard = UrlGuard()
    with pytest.raises(ValueError):
        WebhookDispatcher(FakeStore(), http, secret="", schedule=[1], max_attempts=2, guard=guard)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        WebhookDispatcher(FakeStore(), http, secret="whsec_!!!", schedule=[1], max_attempts=2, guard=guard)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        WebhookDispatcher(FakeStore(), http, secret=SECRET, schedule=[], max_attempts=2, guard=guard)  # type: ignore[arg-type]
    dispatcher = WebhookDispatcher(FakeStore(), http, secret=SECRET, schedule=[1], max_attempts=2, guard=guard)  # type: ignore[arg-type]
    assert SECRET not in repr(dispatcher)
