"""Webhooks: Standard Webhooks signing (checked with the real `openai` SDK), configured
endpoints and their rotation, and the claiming, retrying dispatcher on a real SqliteStore."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import msgspec
import openai
import pytest
from litestar import Litestar, Request, Response, post
from structlog.testing import capture_logs

from gateway.errors import Conflict, NotFound
from gateway.h1_transport import H1Transport
from gateway.jobs.model import Job, WebhookDelivery
from gateway.jobs.sqlite import SqliteStore
from gateway.settings import WebhookEndpointSettings, WebhookSettings
from gateway.urlguard import UrlGuard
from gateway.webhooks import (
    CLAIM_AHEAD,
    USER_AGENT,
    WebhookDispatcher,
    delivery_id_for,
    event_id_for,
    event_payload,
    generate_secret,
    new_event_id,
    sign,
    signature_header,
)
from providers.base import GenerationRequest, JobStatus, TextInput
from providers.simkit import serve_in_thread
from tests.harness import FakeClock

VIDEO = {"id": "video_123", "object": "video", "status": "completed", "model": "seedance-2.0"}
DEFAULT_SECRET = generate_secret()
APP_SECRET, APP_OLD_SECRET, TENANT_SECRET = generate_secret(), generate_secret(), generate_secret()
RECEIVER = "https://93.184.216.34/hook"  # a public address literal: the guard passes it without DNS


def _sdk(secret: str) -> openai.OpenAI:
    return openai.OpenAI(api_key="x", webhook_secret=secret, base_url="http://127.0.0.1:9")


def _headers(msg_id: str, ts: int, signature: str) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _endpoint(name: str, url: str = RECEIVER, secrets: list[str] | None = None, **scope: Any) -> WebhookEndpointSettings:
    return WebhookEndpointSettings(name=name, url=url, secrets=secrets or [APP_SECRET], **scope)


def _settings(**kw: Any) -> WebhookSettings:
    kw.setdefault("secret", DEFAULT_SECRET)
    kw.setdefault("schedule_seconds", [5.0, 30.0, 120.0])
    kw.setdefault("max_attempts", 4)
    return WebhookSettings(**kw)


def _dispatcher(
    store: SqliteStore,
    handler: Callable[[httpx.Request], Any],
    clock: Callable[[], float],
    settings: WebhookSettings | None = None,
    **kw: Any,
) -> WebhookDispatcher:
    kw.setdefault("guard", UrlGuard(allow_private=True))
    kw.setdefault("jitter", 0.0)
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return WebhookDispatcher(store, http, settings or _settings(), clock=clock, rand=lambda: 0.5, **kw)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "vidgate.db")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def _job(job_id: str = "video_1", *, tenant: str = "acme", key_name: str = "app", webhook_url: str | None = None) -> Job:
    return Job(
        id=job_id,
        tenant=tenant,
        key_name=key_name,
        created_at=0.0,
        updated_at=0.0,
        status=JobStatus.COMPLETED,
        model="seedance-2.0",
        mode="text",
        request=GenerationRequest(model="seedance-2.0", input=TextInput(prompt="p")),
        webhook_url=webhook_url,
    )


async def _finish(store: SqliteStore, dispatcher: WebhookDispatcher, job: Job, now: float, event_type: str = "video.completed") -> list[WebhookDelivery]:
    """What the job runner does at a terminal status: the job and its deliveries in one write."""
    stored = await store.get_job(job.id) or await store.create_job(job)
    payload = event_payload(event_id_for(job.id, event_type), event_type, now, msgspec.json.encode(VIDEO))
    deliveries = dispatcher.deliveries_for(stored, event_type, payload, now)
    await store.update_job(stored, deliveries=deliveries)
    dispatcher.wake(dispatcher.urls_for(stored, event_type))  # as the runner's notifier does
    return deliveries


async def _until(done: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0) -> None:
    """Look every 10 ms until `done()` holds (at most `timeout` s): for a state no event
    announces, such as a held receiver entered or an attempt recorded."""

    async def poll() -> None:
        while True:
            held = done()
            if await held if inspect.isawaitable(held) else held:
                return
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


async def _row(store: SqliteStore, delivery_id: str) -> WebhookDelivery:
    row = await store.get_delivery(delivery_id)
    assert row is not None
    return row


# ---------------------------------------------------------------------------
# signing
# ---------------------------------------------------------------------------


def test_generate_secret_is_whsec_with_32_random_bytes() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:])) == 32
    assert generate_secret() != secret


@pytest.mark.parametrize("secret", [generate_secret(), "plain-shared-secret"], ids=["generated-whsec", "plain-shared-secret"])
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


def test_one_signature_per_secret_and_the_sdk_accepts_either() -> None:
    body = event_payload("evt_1", "video.completed", 1, msgspec.json.encode(VIDEO))
    ts = int(time.time())
    header = signature_header([APP_SECRET, APP_OLD_SECRET], "msg_rot", ts, body)
    assert header == f"{sign(APP_SECRET, 'msg_rot', ts, body)} {sign(APP_OLD_SECRET, 'msg_rot', ts, body)}"
    headers = _headers("msg_rot", ts, header)
    for secret in (APP_SECRET, APP_OLD_SECRET):
        assert _sdk(secret).webhooks.unwrap(body, headers).id == "evt_1"
        assert openai.OpenAI(api_key="x").webhooks.unwrap(body, headers, secret=secret).type == "video.completed"
    with pytest.raises(openai.InvalidWebhookSignatureError):
        _sdk(TENANT_SECRET).webhooks.unwrap(body, headers)


def test_sign_is_standard_webhooks_v1() -> None:
    # Known-answer vector from the Standard Webhooks reference libraries.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == ("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")


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
    assert event_id_for("video_1", "video.failed") == event_id_for("video_1", "video.failed") != event_id_for("video_1", "video.completed")
    with pytest.raises(ValueError):
        event_payload("evt_1", "video.exploded", 5, b"{}")


# ---------------------------------------------------------------------------
# targets
# ---------------------------------------------------------------------------

TARGETING = _settings(
    endpoints=[
        _endpoint("app-hook", "https://app.example/hook", key="app"),
        _endpoint("acme-failures", "https://ops.example/failures", secrets=[TENANT_SECRET], tenant="acme", events=["video.failed"]),
        _endpoint("acme-paused", "https://ops.example/paused", secrets=[TENANT_SECRET], tenant="acme", enabled=False),
        _endpoint("other-key", "https://other.example/hook", key="batch"),
        _endpoint("other-tenant", "https://globex.example/hook", tenant="globex"),
    ]
)


def _targets(deliveries: list[WebhookDelivery]) -> list[tuple[str | None, str]]:
    return [(d.endpoint, d.url) for d in deliveries]


def test_deliveries_for_picks_the_jobs_key_and_tenant_endpoints_by_event() -> None:
    dispatcher = _dispatcher(None, lambda r: httpx.Response(200), time.time, TARGETING)  # type: ignore[arg-type]
    job = _job(webhook_url="https://caller.example/cb?token=t")

    completed = dispatcher.deliveries_for(job, "video.completed", b"{}", 100.0)
    assert _targets(completed) == [
        ("app-hook", "https://app.example/hook"),
        ("acme-paused", "https://ops.example/paused"),  # built, then failed unsent: the record shows why
        (None, "https://caller.example/cb?token=t"),
    ]
    failed = dispatcher.deliveries_for(job, "video.failed", b"{}", 100.0)
    assert [d.endpoint for d in failed] == ["app-hook", "acme-failures", "acme-paused", None]
    for d in completed:
        assert (d.job_id, d.tenant, d.event_type, d.payload, d.created_at, d.next_attempt_at) == (
            "video_1",
            "acme",
            "video.completed",
            b"{}",
            100.0,
            100.0,
        )
        assert (d.status, d.attempts, d.log) == ("pending", 0, [])

    # Another key of the same tenant: the tenant's endpoints only; no webhook_url, no job target.
    batch = dispatcher.deliveries_for(_job(key_name="batch"), "video.failed", b"{}", 1.0)
    assert [d.endpoint for d in batch] == ["acme-failures", "acme-paused", "other-key"]
    assert dispatcher.deliveries_for(_job(tenant="initech", key_name="solo"), "video.completed", b"{}", 1.0) == []
    with pytest.raises(ValueError):
        dispatcher.deliveries_for(job, "video.exploded", b"{}", 1.0)


def test_delivery_ids_are_deterministic_and_distinct_per_target() -> None:
    one = _dispatcher(None, lambda r: httpx.Response(200), time.time, TARGETING)  # type: ignore[arg-type]
    two = _dispatcher(None, lambda r: httpx.Response(200), time.time, TARGETING)  # type: ignore[arg-type]
    job = _job(webhook_url="https://caller.example/cb")
    first = one.deliveries_for(job, "video.failed", b"{}", 1.0)
    again = two.deliveries_for(job, "video.failed", b'{"other":"payload"}', 999.0)  # another process, later
    assert [d.id for d in first] == [d.id for d in again]
    ids = [d.id for d in first]
    assert len(set(ids)) == len(ids) and all(i.startswith("msg_") and len(i) == 36 for i in ids)
    assert ids[0] == delivery_id_for("video_1", "video.failed", "endpoint:app-hook")
    assert {d.id for d in one.deliveries_for(job, "video.completed", b"{}", 1.0)}.isdisjoint(ids)
    assert {d.id for d in one.deliveries_for(_job("video_2", webhook_url="https://caller.example/cb"), "video.failed", b"{}", 1.0)}.isdisjoint(ids)


async def test_a_double_fire_stores_and_sends_each_delivery_once(store: SqliteStore) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["webhook-id"])
        return httpx.Response(204)

    settings = _settings(endpoints=[_endpoint("app-hook", key="app")])
    dispatcher = _dispatcher(store, handler, Clock(1_000.0), settings)
    job = _job(webhook_url="https://93.184.216.35/cb")
    first = await _finish(store, dispatcher, job, 1_000.0)
    second = await _finish(store, dispatcher, job, 1_001.0)  # the runner fired twice (a retry after a crash)
    assert [d.id for d in first] == [d.id for d in second]
    assert len(await store.deliveries(job.id)) == 2
    assert await dispatcher.run_due() == 2
    assert await dispatcher.run_due() == 0
    assert sorted(seen) == sorted(d.id for d in first)


# ---------------------------------------------------------------------------
# delivery to a real receiver
# ---------------------------------------------------------------------------


async def test_receiver_refusing_three_times_gets_four_posts_under_one_id(store: SqliteStore) -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    @post("/hook", status_code=204)
    async def hook(request: Request[Any, Any, Any]) -> Response[None]:
        received.append((dict(request.headers), await request.body()))
        return Response(None, status_code=500 if len(received) <= 3 else 204)

    clock = Clock(time.time())  # real time: the SDK refuses timestamps more than 5 minutes off
    with serve_in_thread(Litestar([hook])) as base:
        settings = _settings(schedule_seconds=[1.0, 2.0, 4.0], max_attempts=5, endpoints=[_endpoint("app-hook", f"{base}/hook", key="app")])
        async with httpx.AsyncClient() as http:
            dispatcher = WebhookDispatcher(store, http, settings, guard=UrlGuard(allow_private=True), clock=clock, jitter=0.0)
            [delivery] = await _finish(store, dispatcher, _job(), clock.now)
            for attempt in range(1, 5):
                assert await dispatcher.run_due() == 1
                row = await _row(store, delivery.id)
                assert row.attempts == attempt
                if row.status == "pending":
                    assert await dispatcher.run_due() == 0  # not due before its time
                    clock.now = row.next_attempt_at  # type: ignore[assignment]

    assert len(received) == 4
    assert {h["webhook-id"] for h, _ in received} == {delivery.id}
    stamps = [int(h["webhook-timestamp"]) for h, _ in received]
    assert stamps == sorted(stamps) and len(set(stamps)) == 4  # a fresh timestamp on every attempt
    for headers, body in received:
        assert body == delivery.payload
        assert headers["content-type"] == "application/json"
        assert headers["user-agent"] == USER_AGENT
    headers, body = received[-1]
    event = _sdk(APP_SECRET).webhooks.unwrap(body, headers)
    assert (event.id, event.type) == (event_id_for("video_1", "video.completed"), "video.completed")

    row = await _row(store, delivery.id)
    assert (row.status, row.attempts, row.last_status_code, row.last_error, row.next_attempt_at) == ("delivered", 4, 204, None, None)
    assert [a.status_code for a in row.log] == [500, 500, 500, 204]
    assert [a.error for a in row.log] == ["HTTP 500", "HTTP 500", "HTTP 500", None]
    assert [int(a.at) for a in row.log] == stamps
    assert all(a.latency_ms is not None and 0 <= a.latency_ms < 5_000 for a in row.log)


async def test_job_webhook_url_is_signed_for_the_key_then_tenant_then_default(store: SqliteStore) -> None:
    seen: dict[str, httpx.Request] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen[request.url.path] = request
        return httpx.Response(200)

    settings = _settings(
        endpoints=[
            _endpoint("app-hook", "https://93.184.216.34/app", secrets=[APP_SECRET], key="app"),
            _endpoint("acme-hook", "https://93.184.216.34/acme", secrets=[TENANT_SECRET], tenant="acme", events=["video.failed"]),
        ]
    )
    now = time.time()
    dispatcher = _dispatcher(store, handler, Clock(now), settings)
    jobs = {
        "/own-app": _job("video_a", key_name="app", webhook_url="https://93.184.216.35/own-app"),  # key endpoint wins
        "/own-ops": _job("video_b", key_name="ops", webhook_url="https://93.184.216.35/own-ops"),  # tenant endpoint
        "/own-globex": _job("video_c", tenant="globex", key_name="g", webhook_url="https://93.184.216.35/own-globex"),
    }
    for job in jobs.values():
        await _finish(store, dispatcher, job, now)
    await store.delete_job("video_b", "acme")  # a deleted job's deliveries still go out, signed for its tenant
    assert await dispatcher.run_due() == 4  # three job URLs and app-hook (acme-hook takes failures only)

    expected = {"/own-app": APP_SECRET, "/own-ops": TENANT_SECRET, "/own-globex": DEFAULT_SECRET, "/app": APP_SECRET}
    assert set(seen) == set(expected)
    for path, secret in expected.items():
        request = seen[path]
        _sdk(secret).webhooks.unwrap(request.content, request.headers)
        for other in {APP_SECRET, TENANT_SECRET, DEFAULT_SECRET} - {secret}:
            with pytest.raises(openai.InvalidWebhookSignatureError):
                _sdk(other).webhooks.verify_signature(request.content, request.headers)

    assert dispatcher.can_sign("app", "acme") and dispatcher.can_sign("ops", "acme") and dispatcher.can_sign("g", "globex")
    unsigned = _dispatcher(store, handler, Clock(now), _settings(secret=None, endpoints=settings.endpoints))
    assert unsigned.can_sign("app", "acme") and unsigned.can_sign("ops", "acme")
    assert not unsigned.can_sign("g", "globex")
    assert not _dispatcher(store, handler, Clock(now), _settings(secret=None)).can_sign("app", "acme")


async def test_rotation_signs_with_every_secret_and_applies_to_pending_retries(store: SqliteStore) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503 if len(seen) == 1 else 200)

    clock = Clock(time.time())
    rotating = _settings(endpoints=[_endpoint("app-hook", secrets=[APP_SECRET, APP_OLD_SECRET], key="app")])
    dispatcher = _dispatcher(store, handler, clock, rotating)
    [delivery] = await _finish(store, dispatcher, _job(), clock.now)
    await dispatcher.run_due()
    first = seen[0]
    assert len(first.headers["webhook-signature"].split(" ")) == 2
    for secret in (APP_SECRET, APP_OLD_SECRET):  # a receiver on either side of the rotation verifies
        assert _sdk(secret).webhooks.unwrap(first.content, first.headers).type == "video.completed"

    # The rotation finishes while the retry is pending: the retry is signed with the new secret only.
    dispatcher.reconfigure(_settings(endpoints=[_endpoint("app-hook", secrets=[APP_SECRET], key="app")]))
    clock.now = (await _row(store, delivery.id)).next_attempt_at  # type: ignore[assignment]
    await dispatcher.run_due()
    retry = seen[1]
    assert retry.headers["webhook-id"] == first.headers["webhook-id"]
    assert retry.headers["webhook-signature"].count("v1,") == 1
    _sdk(APP_SECRET).webhooks.unwrap(retry.content, retry.headers)
    with pytest.raises(openai.InvalidWebhookSignatureError):
        _sdk(APP_OLD_SECRET).webhooks.unwrap(retry.content, retry.headers)
    assert (await _row(store, delivery.id)).status == "delivered"


async def test_removed_or_config_disabled_endpoint_fails_without_a_request(store: SqliteStore) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"requested {request.url}")

    settings = _settings(endpoints=[_endpoint("app-hook", key="app"), _endpoint("paused", "https://93.184.216.35/p", tenant="acme", enabled=False)])
    dispatcher = _dispatcher(store, handler, Clock(10.0), settings)
    app_hook, paused = await _finish(store, dispatcher, _job(), 10.0)
    dispatcher.reconfigure(_settings(endpoints=settings.endpoints[1:]))  # app-hook removed from the config
    with capture_logs() as logs:
        assert await dispatcher.run_due() == 2
    for delivery, why in [(app_hook, "'app-hook' is no longer configured"), (paused, "'paused' is disabled in the config")]:
        row = await _row(store, delivery.id)
        assert (row.status, row.attempts, row.log, row.next_attempt_at) == ("failed", 0, [], None)
        assert why in (row.last_error or "")
    assert sorted(e["event"] for e in logs if e["log_level"] == "warning") == ["webhook.delivery_skipped"] * 2
    with pytest.raises(Conflict):
        await dispatcher.redeliver(app_hook.id, "acme")
    with pytest.raises(Conflict):
        await dispatcher.redeliver(paused.id, "acme")


# ---------------------------------------------------------------------------
# 410 Gone and redelivery
# ---------------------------------------------------------------------------


async def test_410_disables_the_endpoint_for_the_tenant_and_redeliver_lifts_it(store: SqliteStore) -> None:
    hits: list[httpx.Request] = []
    answer = {"status": 410}

    def handler(request: httpx.Request) -> httpx.Response:
        hits.append(request)
        return httpx.Response(answer["status"])

    clock = Clock(time.time())
    settings = _settings(endpoints=[_endpoint("acme-hook", tenant="acme"), _endpoint("globex-hook", tenant="globex")])
    dispatcher = _dispatcher(store, handler, clock, settings)
    [gone] = await _finish(store, dispatcher, _job("video_1"), clock.now)
    with capture_logs() as logs:
        await dispatcher.run_due()
    row = await _row(store, gone.id)
    assert (row.status, row.attempts, row.last_status_code, row.next_attempt_at) == ("failed", 1, 410, None)
    assert [a.status_code for a in row.log] == [410]
    assert await store.endpoint_disabled("acme", RECEIVER) is not None
    assert await store.endpoint_disabled("globex", RECEIVER) is None
    assert "webhook.endpoint_disabled" in [e["event"] for e in logs]

    # Later events for that tenant's endpoint fail unsent; another tenant's use of the URL is unaffected.
    [skipped] = await _finish(store, dispatcher, _job("video_2"), clock.now)
    [globex] = await _finish(store, dispatcher, _job("video_3", tenant="globex", key_name="g"), clock.now)
    answer["status"] = 204
    assert await dispatcher.run_due() == 2
    assert [r.headers["webhook-id"] for r in hits] == [gone.id, globex.id]
    row = await _row(store, skipped.id)
    assert (row.status, row.attempts, row.log) == ("failed", 0, [])
    assert "endpoint disabled" in (row.last_error or "")
    assert (await _row(store, globex.id)).status == "delivered"

    # Another tenant can't see or redeliver it; the owner can, and that re-enables the endpoint.
    with pytest.raises(NotFound):
        await dispatcher.redeliver(gone.id, "globex")
    with pytest.raises(NotFound):
        await dispatcher.redeliver("msg_nope", "acme")
    clock.now += 60
    queued = await dispatcher.redeliver(gone.id, "acme")
    assert (queued.id, queued.status, queued.next_attempt_at, queued.attempts) == (gone.id, "pending", clock.now, 1)
    assert await store.endpoint_disabled("acme", RECEIVER) is None
    assert await dispatcher.run_due() == 1
    resent = hits[-1]
    assert resent.headers["webhook-id"] == gone.id
    _sdk(APP_SECRET).webhooks.unwrap(resent.content, resent.headers)
    row = await _row(store, gone.id)
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 2, 204)
    assert [a.status_code for a in row.log] == [410, 204]  # the log is kept across a redelivery

    await dispatcher.redeliver(skipped.id, "acme")
    assert await dispatcher.run_due() == 1
    assert (await _row(store, skipped.id)).status == "delivered"
    assert hits[-1].headers["webhook-id"] == skipped.id


async def test_410_from_a_jobs_own_url_disables_that_url_for_the_tenant(store: SqliteStore) -> None:
    hits = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal hits
        hits += 1
        return httpx.Response(410)

    dispatcher = _dispatcher(store, handler, Clock(5.0))
    await _finish(store, dispatcher, _job("video_1", webhook_url=RECEIVER), 5.0)
    await dispatcher.run_due()
    [later] = await _finish(store, dispatcher, _job("video_2", webhook_url=RECEIVER), 5.0)
    await dispatcher.run_due()
    assert hits == 1
    assert (await _row(store, later.id)).status == "failed"


async def test_a_redelivery_is_one_more_try_once_the_budget_is_spent(store: SqliteStore) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(500)

    clock = Clock(0.0)
    dispatcher = _dispatcher(store, handler, clock, _settings(max_attempts=1))
    [delivery] = await _finish(store, dispatcher, _job(webhook_url=RECEIVER), 0.0)
    await dispatcher.run_due()
    assert (await _row(store, delivery.id)).status == "failed"
    await dispatcher.redeliver(delivery.id, "acme")
    await dispatcher.run_due()
    row = await _row(store, delivery.id)
    assert (row.status, row.attempts, len(row.log), calls) == ("failed", 2, 2, 2)


# ---------------------------------------------------------------------------
# retry schedule and its caps
# ---------------------------------------------------------------------------


async def test_retry_delays_follow_the_schedule_with_jitter_then_stop_at_max_attempts(store: SqliteStore) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise httpx.ConnectError("connection refused")
        return httpx.Response(503)

    clock = Clock(1_000.0)
    settings = _settings(schedule_seconds=[5.0, 30.0, 120.0], max_attempts=5)
    dispatcher = _dispatcher(store, handler, clock, settings, jitter=0.1)  # rand() = 0.5: +5 %
    [delivery] = await _finish(store, dispatcher, _job(webhook_url=RECEIVER), clock.now)
    delays = []
    with capture_logs() as logs:
        while True:
            assert await dispatcher.run_due() == 1
            row = await _row(store, delivery.id)
            if row.next_attempt_at is None:
                break
            delays.append(row.next_attempt_at - clock.now)
            clock.now = row.next_attempt_at
    assert delays == pytest.approx([5.25, 31.5, 126.0, 126.0])  # the last entry repeats
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == ("failed", 5, 503, "HTTP 503")
    assert "ConnectError" in (row.log[1].error or "") and row.log[1].status_code is None
    assert calls == 5
    clock.now += 10_000
    assert await dispatcher.run_due() == 0
    failures = [e for e in logs if e["event"] == "webhook.delivery_failed"]
    assert [e["final"] for e in failures] == [False, False, False, False, True]
    assert failures[0]["host"] == "93.184.216.34"
    assert all(DEFAULT_SECRET not in repr(e) for e in logs)


async def test_max_age_stops_retries_before_max_attempts(store: SqliteStore) -> None:
    stamps: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        stamps.append(int(request.headers["webhook-timestamp"]))
        return httpx.Response(500)

    clock = Clock(0.0)
    settings = _settings(schedule_seconds=[100.0], max_attempts=50, max_age_seconds=250.0)
    dispatcher = _dispatcher(store, handler, clock, settings)
    [delivery] = await _finish(store, dispatcher, _job(webhook_url=RECEIVER), 0.0)
    for _ in range(3):
        await dispatcher.run_due()
        clock.now = (await _row(store, delivery.id)).next_attempt_at or clock.now
    row = await _row(store, delivery.id)
    assert stamps == [0, 100, 200]  # a fourth try at 300 would be past created_at + 250
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 3, None)


async def test_timeout_is_recorded_and_retried(store: SqliteStore) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow receiver")

    dispatcher = _dispatcher(store, handler, Clock(0.0))
    [delivery] = await _finish(store, dispatcher, _job(webhook_url=RECEIVER), 0.0)
    await dispatcher.run_due()
    row = await _row(store, delivery.id)
    assert (row.status, row.attempts, row.last_error, row.next_attempt_at) == ("pending", 1, "timed out", 5.0)
    assert row.log[0].error == "timed out" and row.log[0].status_code is None


async def test_a_receiver_that_never_answers_is_cut_off_by_the_attempt_timeout(store: SqliteStore) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200)

    dispatcher = _dispatcher(store, handler, Clock(0.0), timeout=0.2, lease=1.0)
    [delivery] = await _finish(store, dispatcher, _job(webhook_url=RECEIVER), 0.0)
    started = time.monotonic()
    await dispatcher.run_due()
    assert time.monotonic() - started < 5
    row = await _row(store, delivery.id)
    assert (row.status, row.last_error) == ("pending", "timed out")
    assert 150 <= (row.log[0].latency_ms or 0) < 5_000


# ---------------------------------------------------------------------------
# several processes on one store
# ---------------------------------------------------------------------------


async def test_two_dispatchers_on_one_store_never_send_the_same_attempt_twice(tmp_path: Path) -> None:
    hits: Counter[str] = Counter()
    by_process: Counter[str] = Counter()

    def receiver(process: str) -> Callable[[httpx.Request], Any]:
        async def handler(request: httpx.Request) -> httpx.Response:
            msg_id = request.headers["webhook-id"]
            hits[msg_id] += 1
            by_process[process] += 1
            await asyncio.sleep(0.005)  # let the other process's claim run meanwhile
            return httpx.Response(500 if hits[msg_id] == 1 else 204)  # every first attempt fails

        return handler

    a, b = SqliteStore(tmp_path / "shared.db"), SqliteStore(tmp_path / "shared.db")  # two connections, as two processes
    await a.open()
    await b.open()
    try:
        clock = Clock(100.0)
        settings = _settings(endpoints=[_endpoint("acme-hook", tenant="acme")], schedule_seconds=[10.0])
        # one receiver URL: let each process run 4 attempts at it (fairness is tested elsewhere)
        one = _dispatcher(a, receiver("one"), clock, settings, concurrency=4, per_endpoint=4)
        two = _dispatcher(b, receiver("two"), clock, settings, concurrency=4, per_endpoint=4)
        ids = [d.id for i in range(24) for d in await _finish(a, one, _job(f"video_{i}"), clock.now)]
        for _ in range(2):  # the first attempts, then (10 s later) the retries
            while sum(await asyncio.gather(one.run_due(), two.run_due())):
                pass
            clock.now += 10
    finally:
        await a.close()
        await b.close()
    assert hits == Counter({i: 2 for i in ids})  # each delivery: its failed try and its retry, once each
    assert by_process["one"] > 0 and by_process["two"] > 0
    b = SqliteStore(tmp_path / "shared.db")
    await b.open()
    try:
        rows = [await _row(b, i) for i in ids]
    finally:
        await b.close()
    assert {(r.status, r.attempts, tuple(x.status_code for x in r.log)) for r in rows} == {("delivered", 2, (500, 204))}


async def test_a_claim_left_by_a_dead_process_is_retried_when_its_lease_lapses(store: SqliteStore) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["webhook-id"])
        return httpx.Response(200)

    clock = Clock(100.0)
    dispatcher = _dispatcher(store, handler, clock, lease=60.0)
    [delivery] = await _finish(store, dispatcher, _job(webhook_url=RECEIVER), clock.now)
    [claimed] = await store.claim_deliveries(clock.now, clock.now + 60.0, 10)  # another process took it, then died
    assert claimed.id == delivery.id
    assert await dispatcher.run_due() == 0
    clock.now += 59
    assert await dispatcher.run_due() == 0
    clock.now += 1
    assert await dispatcher.run_due() == 1
    assert seen == [delivery.id]
    assert (await _row(store, delivery.id)).status == "delivered"


# ---------------------------------------------------------------------------
# the SSRF guard
# ---------------------------------------------------------------------------


async def test_a_redirect_is_a_failed_attempt_not_followed(store: SqliteStore) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(307, headers={"location": "https://93.184.216.35/elsewhere"})

    dispatcher = _dispatcher(store, handler, Clock(0.0))
    [delivery] = await _finish(store, dispatcher, _job(webhook_url=RECEIVER), 0.0)
    await dispatcher.run_due()
    assert seen == [RECEIVER]
    row = await _row(store, delivery.id)
    assert (row.status, row.last_status_code) == ("pending", 307)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "http://10.1.2.3/hook", "http://169.254.169.254/latest", "http://localhost/x"])
async def test_blocked_url_is_failed_and_never_requested(store: SqliteStore, url: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"requested {request.url}")

    dispatcher = _dispatcher(store, handler, Clock(0.0), guard=UrlGuard(allow_private=False))
    [delivery] = await _finish(store, dispatcher, _job(webhook_url=url), 0.0)
    with capture_logs() as logs:
        await dispatcher.run_due()
    row = await _row(store, delivery.id)
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 1, None)
    assert "webhook_url is not an allowed URL" in (row.last_error or "")
    assert [e["event"] for e in logs] == ["webhook.delivery_failed"]


async def test_unresolvable_host_is_retried_not_failed(store: SqliteStore) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    dispatcher = _dispatcher(store, lambda r: httpx.Response(200), Clock(0.0), guard=UrlGuard(resolver=resolver))
    [delivery] = await _finish(store, dispatcher, _job(webhook_url="https://hooks.example/x"), 0.0)
    await dispatcher.run_due()
    row = await _row(store, delivery.id)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, 5.0)
    assert "could not be resolved" in (row.last_error or "")


async def test_delivery_is_pinned_to_the_checked_address(store: SqliteStore) -> None:
    seen: list[httpx.Request] = []

    async def resolver(host: str, port: int) -> list[str]:
        assert (host, port) == ("hooks.example", 443)
        return ["93.184.216.34"]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    dispatcher = _dispatcher(store, handler, Clock(0.0), guard=UrlGuard(resolver=resolver))
    await _finish(store, dispatcher, _job(webhook_url="https://hooks.example/in?token=abc"), 0.0)
    await dispatcher.run_due()
    [request] = seen
    assert request.url == "https://93.184.216.34/in?token=abc"
    assert request.headers["host"] == "hooks.example"
    assert request.extensions["sni_hostname"] == "hooks.example"


# ---------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------


class PeakReceiver:
    """A receiver that answers after `takes` seconds (or once `release` is set), counting
    how many attempts it holds at once; `two_in` is set at the second attempt, `done` when
    `expected` deliveries arrived."""

    def __init__(self, *, expected: int, takes: float = 0.0, release: asyncio.Event | None = None) -> None:
        self.expected, self.takes, self.release = expected, takes, release
        self.entered = self.in_flight = self.peak = 0
        self.delivered: list[str] = []
        self.two_in, self.done = asyncio.Event(), asyncio.Event()

    async def handler(self, request: httpx.Request) -> httpx.Response:
        self.entered += 1
        if self.entered == 2:
            self.two_in.set()
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await (self.release.wait() if self.release is not None else asyncio.sleep(self.takes))
        self.in_flight -= 1
        self.delivered.append(request.headers["webhook-id"])
        if len(self.delivered) == self.expected:
            self.done.set()
        return httpx.Response(204)


async def test_run_loop_wakes_on_wake_keeps_to_its_concurrency_and_stops(store: SqliteStore) -> None:
    receiver = PeakReceiver(expected=7, takes=0.01)
    dispatcher = _dispatcher(store, receiver.handler, Clock(0.0), concurrency=2)
    stop = asyncio.Event()
    loop = asyncio.create_task(dispatcher.run(stop, interval=60.0))  # only a wake or a free slot moves it
    await asyncio.sleep(0.05)
    for i in range(7):
        await _finish(store, dispatcher, _job(f"video_{i}", webhook_url=RECEIVER), 0.0)  # wakes the loop
    await asyncio.wait_for(receiver.done.wait(), timeout=5)
    stop.set()
    await asyncio.wait_for(loop, timeout=5)
    assert receiver.peak == 2
    assert len(set(receiver.delivered)) == 7


class CountingClaims:
    """Wraps a store's claims and hand-backs, to count them."""

    def __init__(self, store: SqliteStore) -> None:
        self.claims: list[int] = []  # how many each claim took
        self.handed_back: list[tuple[list[str], float]] = []
        claim, defer = store.claim_deliveries, store.defer_deliveries

        async def counted_claim(*args: Any, **kw: Any) -> list[WebhookDelivery]:
            taken = await claim(*args, **kw)
            self.claims.append(len(taken))
            return taken

        async def counted_defer(ids: Sequence[str], until: float) -> None:
            self.handed_back.append((list(ids), until))
            await defer(ids, until)

        store.claim_deliveries = counted_claim  # type: ignore[method-assign]
        store.defer_deliveries = counted_defer  # type: ignore[method-assign]


async def test_a_backlog_for_one_receiver_takes_a_claim_per_many_deliveries_and_keeps_its_bound(store: SqliteStore) -> None:
    """Each claim reads the whole due backlog to choose, and took at most `per_endpoint` (2)
    for one receiver: 40 deliveries to one URL cost 20 claims or more, and a backlog's
    delivery rate was the claims' rate. A claim now takes ahead for the receiver (up to the
    tenant's bound, 8); the rest wait in the dispatcher and start as slots free, still 2 at
    a time."""
    receiver = PeakReceiver(expected=40, takes=0.002)
    delivered = receiver.delivered
    counted = CountingClaims(store)
    dispatcher = _dispatcher(store, receiver.handler, Clock(0.0))
    for i in range(40):
        await _finish(store, dispatcher, _job(f"video_{i}", webhook_url=RECEIVER), 0.0)
    stop = asyncio.Event()
    loop = asyncio.create_task(dispatcher.run(stop, interval=60.0))  # only a wake or an attempt's end moves it
    await asyncio.wait_for(receiver.done.wait(), timeout=10)
    stop.set()
    await asyncio.wait_for(loop, timeout=5)
    assert sorted(delivered) == sorted({*delivered}) and len(delivered) == 40  # each once
    assert receiver.peak == 2  # the receiver's bound held
    # a claim takes up to the tenant's bound (8) now, at most CLAIM_AHEAD x the receiver's (2)
    assert sum(counted.claims) == 40 and len([n for n in counted.claims if n]) <= 40 // min(8, 2 * CLAIM_AHEAD) + 1, counted.claims
    assert counted.handed_back == []
    assert [(await _row(store, d)).status for d in delivered] == ["delivered"] * 40


async def _six_for_one_receiver_then_time_passes(store: SqliteStore, now: float, delivered: int) -> tuple[CountingClaims, PeakReceiver]:
    """Six deliveries to one receiver: two start and are held while the clock moves to
    `now`, four wait here under a claim lapsing at 60 (attempt timeout 10 s); then the two
    end, and the loop runs until `delivered` have arrived."""
    clock = Clock(0.0)
    release = asyncio.Event()
    receiver = PeakReceiver(expected=delivered, release=release)
    counted = CountingClaims(store)
    dispatcher = _dispatcher(store, receiver.handler, clock, lease=60.0, timeout=10.0)
    for i in range(6):
        await _finish(store, dispatcher, _job(f"video_{i}", webhook_url=RECEIVER), 0.0)
    stop = asyncio.Event()
    loop = asyncio.create_task(dispatcher.run(stop, interval=60.0))
    await asyncio.wait_for(receiver.two_in.wait(), timeout=10)
    assert [n for n in counted.claims if n] == [6]  # two started, four wait here under a claim lapsing at 60
    clock.now = now
    release.set()
    await asyncio.wait_for(receiver.done.wait(), timeout=10)
    stop.set()
    await asyncio.wait_for(loop, timeout=5)
    return counted, receiver


async def test_a_waiting_delivery_whose_claim_would_lapse_before_its_attempt_ends_is_handed_back(store: SqliteStore) -> None:
    """Another process may claim a delivery once its claim lapses: one still waiting here
    then must not be sent. It is handed back, due at once, and claimed again."""
    counted, receiver = await _six_for_one_receiver_then_time_passes(store, 45.0, delivered=6)  # an attempt now could run to 55
    assert len(counted.handed_back) == 1 and len(counted.handed_back[0][0]) == 4 and counted.handed_back[0][1] == 45.0
    assert [n for n in counted.claims if n] == [6, 4]  # handed back, then claimed again under a new claim
    assert sorted(receiver.delivered) == sorted({*receiver.delivered}) and len(receiver.delivered) == 6
    assert [(await _row(store, d)).attempts for d in receiver.delivered] == [1] * 6


async def test_a_waiting_delivery_whose_claim_is_about_to_lapse_is_let_lapse_not_handed_back(store: SqliteStore) -> None:
    """A hand-back does not check whose claim it ends: written after the claim lapsed, it
    would end the claim another process took meanwhile, and both would send. So a claim with
    less than an attempt's timeout left is not handed back; it lapses and is due then."""
    counted, receiver = await _six_for_one_receiver_then_time_passes(store, 55.0, delivered=2)  # 5 s left of the claim
    assert counted.handed_back == []  # nothing written over a claim about to lapse
    assert len(receiver.delivered) == 2  # the four were not sent by this process
    assert len(await store.claim_deliveries(59.0, 120.0, limit=100)) == 0  # still claimed until 60
    assert len(await store.claim_deliveries(60.0, 120.0, limit=100)) == 4  # then due, for anyone


async def test_a_wake_for_a_receiver_a_claim_would_pass_over_makes_no_claim(store: SqliteStore) -> None:
    """Every stored terminal status woke the dispatcher, and while its receiver had
    deliveries waiting here the claim passed that receiver over and found nothing (16 of 66
    claims in the end-to-end bench). A wake names the new deliveries' receivers now: for one
    a claim would pass over it looks for nothing, for another it claims at once, and the
    passed-over delivery is claimed when its receiver's attempts end."""
    release = asyncio.Event()
    receiver = PeakReceiver(expected=8, release=release)
    dispatcher = _dispatcher(store, receiver.handler, Clock(0.0))
    calls: list[list[str]] = []  # the URLs each claim was told to skip, counted as it starts
    claim = store.claim_deliveries

    async def counted_claim(*args: Any, **kw: Any) -> list[WebhookDelivery]:
        calls.append(list(kw["skip_urls"]))
        return await claim(*args, **kw)

    store.claim_deliveries = counted_claim  # type: ignore[method-assign]
    for i in range(6):
        await _finish(store, dispatcher, _job(f"video_{i}", webhook_url=RECEIVER), 0.0)
    stop = asyncio.Event()
    loop = asyncio.create_task(dispatcher.run(stop, interval=60.0))  # only a wake or an attempt's end moves it
    await asyncio.wait_for(receiver.two_in.wait(), timeout=10)  # two in flight, four wait here
    looks = len(calls)

    await _finish(store, dispatcher, _job("video_6", webhook_url=RECEIVER), 0.0)
    for _ in range(50):  # room for a pass, had the wake asked for one
        await asyncio.sleep(0)
    assert len(calls) == looks

    other = "https://93.184.216.60/hook"
    await _finish(store, dispatcher, _job("video_7", webhook_url=other), 0.0)
    await _until(lambda: receiver.entered >= 3)  # the third delivery's handler, held
    assert len(calls) == looks + 1 and RECEIVER in calls[-1]  # one claim, passing the waiting receiver over

    release.set()
    await asyncio.wait_for(receiver.done.wait(), timeout=10)
    stop.set()
    await asyncio.wait_for(loop, timeout=5)
    assert sorted(receiver.delivered) == sorted({*receiver.delivered}) and len(receiver.delivered) == 8


async def test_the_intervals_look_is_counted_from_the_last_look_not_put_off_by_passes_without_one(store: SqliteStore) -> None:
    """A retry coming due wakes nobody: the loop claims at least once an interval for it.
    A pass that ended without a look (an attempt ended, and its receiver's next delivery
    started from those waiting here) then waited a whole interval again from that pass, so
    the retry could wait nearly two intervals with its receiver and a slot free. Found by
    review."""
    timer = FakeClock(0.0)  # the loop's interval; `clock` is the due times'
    clock = Clock(0.0)
    release = asyncio.Event()
    retried = asyncio.Event()
    other = "https://93.184.216.60/hook"
    calls: Counter[str] = Counter()

    async def receivers(request: httpx.Request) -> httpx.Response:
        calls[request.url.host] += 1
        if request.url.host == "93.184.216.60":
            if calls[request.url.host] == 1:
                return httpx.Response(500)  # due again 5 s later
            retried.set()
            return httpx.Response(204)
        if calls[request.url.host] == 1:
            await release.wait()
        else:
            await asyncio.Event().wait()  # held: no attempt's end asks for a look after this
        return httpx.Response(204)

    dispatcher = _dispatcher(store, receivers, clock, per_endpoint=1, monotonic=timer.now, sleep=timer.sleep)
    for i in range(2):  # for RECEIVER: one in flight, one waits here
        await _finish(store, dispatcher, _job(f"video_{i}", webhook_url=RECEIVER), 0.0)
    retry = (await _finish(store, dispatcher, _job("video_r", webhook_url=other), 0.0))[0]
    stop = asyncio.Event()
    loop = asyncio.create_task(dispatcher.run(stop, interval=10.0))

    async def first_attempts_made() -> bool:  # RECEIVER's is held; the other's failed and is recorded
        return calls["93.184.216.34"] == 1 and (await _row(store, retry.id)).attempts == 1

    await _until(first_attempts_made)
    clock.now = 6.0  # the retry is due; a look at timer 10 claims it
    timer.advance(4.0)
    release.set()  # RECEIVER's attempt ends: its waiting delivery starts, and no look is asked for
    await _until(lambda: calls["93.184.216.34"] == 2)
    timer.advance(6.5)  # 10.5: an interval since the last look
    await asyncio.wait_for(retried.wait(), timeout=10)
    stop.set()
    await asyncio.wait_for(loop, timeout=10)


async def test_a_receiver_shared_by_two_tenants_is_not_held_for_a_tenant_at_its_bound(store: SqliteStore) -> None:
    """globex has 8 attempts in flight at receivers that never answer (its bound) and more
    deliveries due to a receiver acme also uses. Those must not wait in the dispatcher
    holding that receiver: acme's delivery to it goes at once."""
    shared = "https://93.184.216.40/hook"
    arrived = asyncio.Event()

    async def receivers(request: httpx.Request) -> httpx.Response:
        if request.url.host == "93.184.216.40" and request.headers["webhook-id"] == acme_id:
            arrived.set()
            return httpx.Response(204)
        await asyncio.Event().wait()  # globex's receivers never answer
        raise AssertionError("unreachable")

    dispatcher = _dispatcher(store, receivers, Clock(0.0))
    for i in range(8):
        await _finish(store, dispatcher, _job(f"video_g{i}", tenant="globex", webhook_url=f"https://93.184.216.{50 + i}/hook"), 0.0)
    for i in range(4):
        await _finish(store, dispatcher, _job(f"video_gs{i}", tenant="globex", webhook_url=shared), 0.0)
    acme_id = delivery_id_for("video_a", "video.completed", f"url:{shared}")
    stop = asyncio.Event()
    loop = asyncio.create_task(dispatcher.run(stop, interval=60.0))
    await _until(lambda: len(dispatcher._by_url) >= 8)  # globex's eight in flight, its shared-receiver ones claimed
    await _finish(store, dispatcher, _job("video_a", tenant="acme", webhook_url=shared), 0.0)  # and wakes the loop
    await asyncio.wait_for(arrived.wait(), timeout=10)
    stop.set()
    await asyncio.wait_for(loop, timeout=10)


async def test_a_retry_coming_due_is_claimed_within_the_interval_while_other_attempts_keep_ending(store: SqliteStore) -> None:
    """A retry coming due (or a delivery another process stored) wakes nobody: the loop
    must look at least every `interval`, even while attempts keep ending, more often than
    that, at a receiver whose backlog waits here (those ends trigger no claim)."""
    gate = asyncio.Semaphore(0)  # the backlog's receiver answers one attempt per permit
    two_in, other_arrived = asyncio.Event(), asyncio.Event()
    entered = 0

    async def receivers(request: httpx.Request) -> httpx.Response:
        nonlocal entered
        if request.url.host == "93.184.216.41":
            other_arrived.set()
            return httpx.Response(204)
        entered += 1
        if entered == 2:
            two_in.set()
        await gate.acquire()
        return httpx.Response(204)

    dispatcher = _dispatcher(store, receivers, Clock(0.0), per_tenant=16)  # a claim takes 16: 2 start, 14 wait here
    for i in range(40):
        await _finish(store, dispatcher, _job(f"video_{i}", webhook_url=RECEIVER), 0.0)
    stop = asyncio.Event()
    loop = asyncio.create_task(dispatcher.run(stop, interval=0.05))
    await asyncio.wait_for(two_in.wait(), timeout=10)
    job = _job("video_other", tenant="globex", webhook_url="https://93.184.216.41/hook")
    stored = await store.create_job(job)
    payload = event_payload(event_id_for(job.id, "video.completed"), "video.completed", 0.0, msgspec.json.encode(VIDEO))
    await store.update_job(stored, deliveries=dispatcher.deliveries_for(stored, "video.completed", payload, 0.0))  # no wake()
    released = 0
    while not other_arrived.is_set() and released < 14:
        gate.release()  # an attempt ends every 10 ms: the interval never passes without one
        released += 1
        await asyncio.sleep(0.01)
    for _ in range(40):
        gate.release()
    stop.set()
    await asyncio.wait_for(loop, timeout=10)
    assert other_arrived.is_set() and released < 14, "it waited until the 14 waiting here had drained"


async def test_stopping_hands_back_what_waits_so_it_is_due_at_once_not_when_the_claim_lapses(store: SqliteStore) -> None:
    receiver = PeakReceiver(expected=20, release=asyncio.Event())  # never answers: cancelled when the loop stops
    clock = Clock(0.0)
    dispatcher = _dispatcher(store, receiver.handler, clock)
    for i in range(20):
        await _finish(store, dispatcher, _job(f"video_{i}", webhook_url=RECEIVER), 0.0)
    stop = asyncio.Event()
    loop = asyncio.create_task(dispatcher.run(stop, interval=60.0))
    await asyncio.wait_for(receiver.two_in.wait(), timeout=10)
    stop.set()
    await asyncio.wait_for(loop, timeout=5)
    # the two cancelled attempts stay claimed until their claim lapses; everything else is due now
    due = await store.claim_deliveries(clock.now, clock.now + 60.0, limit=100)
    assert len(due) == 18


async def test_run_loop_survives_a_store_error(store: SqliteStore) -> None:
    failures = 0
    stop = asyncio.Event()

    async def broken(now: float, lease_until: float, limit: int = 50, **skip: Any) -> list[WebhookDelivery]:
        nonlocal failures
        failures += 1
        if failures >= 2:
            stop.set()
        raise RuntimeError("database is locked")

    store.claim_deliveries = broken  # type: ignore[method-assign]
    dispatcher = _dispatcher(store, lambda r: httpx.Response(200), Clock(0.0))
    with capture_logs() as logs:
        await asyncio.wait_for(dispatcher.run(stop, interval=0.01), timeout=5)
    assert failures == 2
    assert logs[0]["event"] == "webhook.dispatch_error"


def test_bad_configuration_is_refused() -> None:
    http = httpx.AsyncClient()
    guard = UrlGuard()
    store: Any = None
    with pytest.raises(ValueError):  # built in code, skipping the settings' own check
        WebhookDispatcher(store, http, msgspec.structs.replace(_settings(), secret="whsec_!!!"), guard=guard)
    with pytest.raises(ValueError):
        WebhookDispatcher(store, http, _settings(), guard=guard, timeout=40.0, lease=60.0)
    dispatcher = WebhookDispatcher(store, http, _settings(endpoints=[_endpoint("app-hook", key="app")]), guard=guard)
    assert DEFAULT_SECRET not in repr(dispatcher) and APP_SECRET not in repr(dispatcher)
    with pytest.raises(ValueError):  # a bad reload keeps the running config
        dispatcher.reconfigure(msgspec.structs.replace(_settings(), secret="whsec_!!!"))
    assert dispatcher.can_sign("app", "acme")


@contextlib.asynccontextmanager
async def raw_receiver(handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]) -> AsyncIterator[str]:
    """A receiver on a raw socket (to count connections and answer byte for byte); its URL."""
    srv = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}/hook"
    finally:
        srv.close()


def on_kept_connections(store: SqliteStore, url: str, clock: Clock) -> tuple[httpx.AsyncClient, WebhookDispatcher]:
    """A dispatcher on vidgate's own outbound transport, delivering to `url`."""
    http = httpx.AsyncClient(transport=H1Transport(max_connections=4))
    settings = _settings(endpoints=[_endpoint("app-hook", url, key="app")])
    return http, WebhookDispatcher(store, http, settings, guard=UrlGuard(allow_private=True), clock=clock, jitter=0.0)


async def test_a_receivers_short_answer_is_read_so_one_connection_carries_every_delivery(store: SqliteStore) -> None:
    connections = 0
    answers = [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", b"HTTP/1.1 204 No Content\r\n\r\n"]

    async def receiver(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
            writer.write(answers[0])
            answers.append(answers.pop(0))
            await writer.drain()
        writer.close()

    clock = Clock(time.time())
    async with raw_receiver(receiver) as url:
        http, dispatcher = on_kept_connections(store, url, clock)
        async with http:
            for i in range(4):
                await _finish(store, dispatcher, _job(f"video_{i}"), clock.now)
                assert await dispatcher.run_due() == 1
    assert connections == 1
    for i in range(4):
        assert [d.status for d in await store.deliveries(f"video_{i}")] == ["delivered"]


async def test_a_receivers_long_answer_is_not_read_and_the_delivery_still_counts(store: SqliteStore) -> None:
    async def receiver(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10000000\r\n\r\n" + b"x" * 1000)  # and then nothing more
        await writer.drain()
        with contextlib.suppress(ConnectionError):
            await reader.read()  # until vidgate hangs up, which it must, not having read the answer
        writer.close()

    clock = Clock(time.time())
    async with raw_receiver(receiver) as url:
        http, dispatcher = on_kept_connections(store, url, clock)
        async with http:
            [delivery] = await _finish(store, dispatcher, _job(), clock.now)
            assert await asyncio.wait_for(dispatcher.run_due(), 5) == 1
    assert (await _row(store, delivery.id)).status == "delivered"
