"""Webhook delivery under abuse: redeliveries while an attempt is in flight, an attempt log
that must match what was sent, and one tenant's dead receivers against another's delivery."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from litestar import Litestar, Request, post

from gateway.errors import Conflict
from gateway.jobs.model import WebhookDelivery
from gateway.jobs.sqlite import SqliteStore
from gateway.settings import WebhookSettings
from gateway.urlguard import UrlGuard
from gateway.webhooks import WebhookDispatcher, generate_secret
from providers.simkit import free_port, serve_in_thread

SECRET = generate_secret()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "vidgate.db")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def delivery(n: int, url: str, *, tenant: str, created_at: float) -> WebhookDelivery:
    return WebhookDelivery(
        id=f"msg_{tenant}_{n}",
        job_id=f"video_{tenant}_{n}",
        tenant=tenant,
        url=url,
        event_type="video.completed",
        payload=b'{"id":"evt_1","object":"event","type":"video.completed","data":{}}',
        created_at=created_at,
        key_name="app",
        next_attempt_at=created_at,
    )


async def test_redelivery_during_an_attempt_is_refused_and_every_request_sent_is_logged(store: SqliteStore) -> None:
    release, started = asyncio.Event(), asyncio.Event()
    in_flight = 0
    most_at_once = 0
    sent = 0

    async def receiver(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most_at_once, sent
        sent += 1
        started.set()
        in_flight += 1
        most_at_once = max(most_at_once, in_flight)
        try:
            await release.wait()
        finally:
            in_flight -= 1
        return httpx.Response(503)

    http = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
    settings = WebhookSettings(secret=SECRET, max_attempts=3, schedule_seconds=[3600.0])
    dispatcher = WebhookDispatcher(store, http, settings, guard=UrlGuard(allow_private=True), jitter=0.0)
    await store.add_delivery(delivery(1, "https://93.184.216.34/hook", tenant="acme", created_at=time.time()))

    attempt = asyncio.create_task(dispatcher.run_due())
    await started.wait()
    refusals = 0
    for _ in range(6):  # the redeliveries an impatient operator fires during the attempt
        with pytest.raises(Conflict) as refused:
            await dispatcher.redeliver("msg_acme_1", "acme")
        refusals += refused.value.code == "delivery_in_flight"
        assert await dispatcher.run_due() == 0  # and no second attempt starts beside it
    release.set()
    await attempt

    for _ in range(4):  # now each redelivery is one more attempt, one at a time
        await dispatcher.redeliver("msg_acme_1", "acme")
        assert await dispatcher.run_due() == 1
    stored = await store.get_delivery("msg_acme_1")
    assert stored is not None
    assert refusals == 6
    assert most_at_once == 1
    assert sent == 5 == stored.attempts == len(stored.log)


class HangingReceivers:
    """A listening socket that never accepts: every request to it hangs until the sender gives up."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def fast_receiver(arrived: dict[str, float], got: threading.Event) -> Iterator[str]:
    @post("/hook", status_code=204)
    async def hook(request: Request) -> None:
        arrived.setdefault(request.headers["webhook-id"], time.monotonic())
        got.set()

    with serve_in_thread(Litestar(route_handlers=[hook]), port=free_port()) as base:
        yield base


async def test_one_tenants_dead_receivers_delay_anothers_delivery_by_under_two_seconds(store: SqliteStore) -> None:
    hanging = HangingReceivers()
    arrived: dict[str, float] = {}
    got = threading.Event()
    settings = WebhookSettings(secret=SECRET, schedule_seconds=[60.0])  # defaults: 10 s timeout, 32 in flight, 8 per tenant, 2 per URL
    stop = asyncio.Event()
    try:
        with fast_receiver(arrived, got) as fast:
            now = time.time()
            for n in range(40):  # tenant B's: due first, each at a receiver that never answers
                await store.add_delivery(delivery(n, f"{hanging.base}/hook/{n}", tenant="globex", created_at=now - 60 + n))
            await store.add_delivery(delivery(0, f"{fast}/hook", tenant="acme", created_at=now))
            async with httpx.AsyncClient() as http:
                dispatcher = WebhookDispatcher(store, http, settings, guard=UrlGuard(allow_private=True))
                started = time.monotonic()
                runner = asyncio.create_task(dispatcher.run(stop, interval=0.2))
                await asyncio.to_thread(got.wait, 5.0)  # bounded: on the old dispatcher it would take ~50 s
                stop.set()
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner
    finally:
        hanging.close()
    assert "msg_acme_0" in arrived, "tenant A's webhook waited behind tenant B's dead receivers"
    delay = arrived["msg_acme_0"] - started
    print(f"tenant A's delivery arrived {delay * 1000:.0f} ms after the dispatcher started")
    assert delay < 2.0


async def test_a_receiver_that_keeps_timing_out_backs_off_and_is_passed_over(store: SqliteStore) -> None:
    tries: list[str] = []

    async def receivers(request: httpx.Request) -> httpx.Response:
        tries.append(request.url.path)
        if request.url.path == "/alive":
            return httpx.Response(204)
        raise httpx.ReadTimeout("no answer", request=request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(receivers))
    settings = WebhookSettings(secret=SECRET, max_attempts=20, schedule_seconds=[0.0])
    dispatcher = WebhookDispatcher(store, http, settings, guard=UrlGuard(allow_private=True), jitter=0.0)
    for n in range(10):
        await store.add_delivery(delivery(n, "https://93.184.216.34/dead", tenant="globex", created_at=time.time() - 100))
    await store.add_delivery(delivery(100, "https://93.184.216.34/alive", tenant="globex", created_at=time.time() - 100))
    while await dispatcher.run_due(limit=1):
        pass
    # three failures in a row, then the dead URL backs off (its retries are due, but passed over)
    # while the same tenant's other receiver is still served
    assert tries == ["/dead"] * 3 + ["/alive"]
    dead = [await store.get_delivery(f"msg_globex_{n}") for n in range(10)]
    assert sum(d.attempts for d in dead if d is not None) == 3
    alive = await store.get_delivery("msg_globex_100")
    assert alive is not None and alive.status == "delivered"
