"""A whole vidgate in one event loop, on a fake clock: the app and the simulators talk over
ASGI transports (no sockets), and time moves only when a test says so.

    async with Harness.start(tmp_path, toml_overrides) as h:
        video = await h.create({"model": "seedance-2.0", "prompt": "p", "provider": "useapi"})
        await h.advance(5)            # five seconds pass for vidgate and the simulators
        assert (await h.video(video["id"]))["status"] == "completed"
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar

from gateway.app import create_app
from gateway.service import VideoService
from gateway.settings import Settings, parse_settings
from providers.modelark.sim import SimConfig as ArkConfig
from providers.modelark.sim import create_app as ark_app
from providers.powertokens.sim import SimConfig as PtConfig
from providers.powertokens.sim import create_app as pt_app
from providers.useapi.sim import SimAccount
from providers.useapi.sim import SimConfig as UaConfig
from providers.useapi.sim import create_app as ua_app

KEY = "sk-test"
START = 1_700_000_000.0

BASE_CONFIG = """
[server]
host = "127.0.0.1"
port = 8000
public_url = "http://vidgate.test"

[store]
url = "{store_url}"

[security]
allow_private_urls = true

[webhooks]
secret = "whsec_ZGVtby13ZWJob29rLXNlY3JldC0wMTIzNDU2Nzg5"

[jobs]
poll_min_seconds = 1.0
poll_max_seconds = 5.0

[outputs]
keep = false

[cluster]
instance_id = "{instance}"
lease_seconds = 10
claim_interval_seconds = 2

[[keys]]
name = "test"
tenant = "test"
key = "sk-test"

[providers.useapi]
type = "useapi"
base_url = "http://useapi.sim/v1/dreamina"
secret = "user:1-test"
poll_interval_seconds = 2.0
accounts = [{{ id = "CA:sim@example.com", region = "CA", max_jobs = {useapi_max_jobs} }}]
{useapi_extra}

[providers.powertokens]
type = "powertokens"
base_url = "http://powertokens.sim"
secret = "pt-test"
poll_interval_seconds = 2.0
max_concurrency = {powertokens_max}
{powertokens_extra}

[providers.modelark]
type = "modelark"
base_url = "http://modelark.sim/api/v3"
secret = "ark-test"
poll_interval_seconds = 2.0
{modelark_extra}

[models."seedance-2.0"]
providers = {{ useapi = "seedance-2.0", powertokens = "dreamina-seedance-2-0-260128" }}
"""


class FakeClock:
    """Epoch seconds that move only on `advance`; `sleep` returns when they have passed."""

    def __init__(self, start: float = START) -> None:
        self.t = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.t + seconds, next(self._seq), future))
        await future

    def advance(self, seconds: float) -> None:
        self.t += seconds
        while self._sleepers and self._sleepers[0][0] <= self.t:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)


class LateApp(httpx.AsyncBaseTransport):
    """An ASGI transport to an app known only later (the simulators call vidgate back)."""

    def __init__(self) -> None:
        self.app: Litestar | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert self.app is not None
        return await httpx.ASGITransport(app=self.app).handle_async_request(request)


def settings_for(
    tmp_path: Path,
    *,
    instance: str = "test-1",
    store_url: str | None = None,
    useapi_max_jobs: int = 10,
    powertokens_max: int = 20,
    extra: str = "",
    **sections: str,
) -> Settings:
    text = BASE_CONFIG.format(
        store_url=store_url or f"sqlite:///{tmp_path / 'vidgate.db'}",
        instance=instance,
        useapi_max_jobs=useapi_max_jobs,
        powertokens_max=powertokens_max,
        useapi_extra=sections.get("useapi_extra", ""),
        powertokens_extra=sections.get("powertokens_extra", ""),
        modelark_extra=sections.get("modelark_extra", ""),
    )
    return parse_settings(text + extra, env={}, source="harness")


@asynccontextmanager
async def running_lifespan(app: Litestar) -> AsyncIterator[None]:
    """Run an ASGI app's lifespan in this event loop (the test client's would run it in another)."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put))  # type: ignore[arg-type]
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        task.cancel()
        raise RuntimeError(f"the app did not start: {started}")
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task


class Harness:
    def __init__(self, client: httpx.AsyncClient, clock: FakeClock, sims: dict[str, Litestar], app: Litestar) -> None:
        self.client = client
        self.clock = clock
        self.sims = sims
        self.app = app

    @classmethod
    @asynccontextmanager
    async def start(
        cls,
        settings: Settings,
        *,
        clock: FakeClock | None = None,
        job_seconds: float = 10.0,
        useapi_capacity: int = 50,
        sims: dict[str, Litestar] | None = None,
        store: Any = None,
        callbacks_reach_us: bool = True,
    ) -> AsyncIterator[Harness]:
        """`callbacks_reach_us=False`: upstream callbacks are answered 200 elsewhere and never reach vidgate."""
        clock = clock or FakeClock()
        late = LateApp()
        callbacks: httpx.AsyncBaseTransport = late if callbacks_reach_us else httpx.MockTransport(lambda request: httpx.Response(200))
        if sims is None:
            sims = {
                "useapi": ua_app(
                    UaConfig(job_seconds=job_seconds, accounts=[SimAccount(account="CA:sim@example.com", region="CA", max_jobs=useapi_capacity)]),
                    clock=clock.now,
                    reply_transport=callbacks,
                ),
                "powertokens": pt_app(PtConfig(job_seconds=job_seconds, max_concurrent=500), clock=clock.now),
                "modelark": ark_app(
                    ArkConfig(queue_seconds=job_seconds * 0.2, run_seconds=job_seconds * 0.8, tick_seconds=None), clock=clock.now, callback_transport=callbacks
                ),
            }
        app = create_app(
            settings,
            transports={name: httpx.ASGITransport(app=sim) for name, sim in sims.items()},
            clock=clock,
            store=store,
        )
        late.app = app
        async with (
            running_lifespan(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://vidgate.test", headers={"Authorization": f"Bearer {KEY}"}) as client,
        ):
            harness = cls(client, clock, sims, app)
            await harness.settle()
            yield harness

    @property
    def service(self) -> VideoService:
        service: VideoService = self.app.state.service
        return service

    async def settle(self) -> None:
        """Let everything that can happen at this instant happen."""
        engine = self.service.engine
        for _ in range(50):  # callbacks and webhooks arrive through other tasks: let them land, then settle again
            await engine.settle()  # type: ignore[attr-defined]
            await asyncio.sleep(0.005)
            if engine.quiet:  # type: ignore[attr-defined]
                return

    async def advance(self, seconds: float, step: float = 1.0) -> None:
        """Let `seconds` pass in steps, settling after each (timers fire in order)."""
        remaining = seconds
        while remaining > 0:
            delta = min(step, remaining)
            self.clock.advance(delta)
            remaining -= delta
            await self.settle()

    async def create(self, body: dict[str, Any], **headers: str) -> dict[str, Any]:
        response = await self.client.post("/v1/videos", json=body, headers=headers)
        assert response.status_code == 200, response.text
        await self.settle()
        video: dict[str, Any] = response.json()
        return video

    async def video(self, video_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/videos/{video_id}")
        assert response.status_code == 200, response.text
        video: dict[str, Any] = response.json()
        return video

    async def sim(self, provider: str, path: str, method: str = "GET", **kw: Any) -> Any:
        app = self.sims[provider]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{provider}.sim") as http:
            response = await http.request(method, path, **kw)
            response.raise_for_status()
            return response.json() if response.content else None

    async def faults(self, provider: str, **faults: Any) -> None:
        await self.sim(provider, "/_sim/faults", "POST", json=faults)

    async def providers(self) -> dict[str, dict[str, Any]]:
        body = (await self.client.get("/v1/providers")).json()
        return {p["id"]: p for p in body["data"]}
