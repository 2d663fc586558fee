"""Shared harness for the adapter-against-simulator tests (not a test module itself).

The useapi simulator runs in process (`ASGITransport`) with a fake clock; the adapter
is driven by the generic `UpstreamClient`, exactly as the gateway drives it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from providers.base import (
    FirstFrameInput,
    GenerationRequest,
    JobStatus,
    Media,
    SubmitContext,
    TextInput,
    UpstreamError,
    UpstreamJob,
)
from providers.client import UpstreamClient
from providers.simkit import sample
from providers.useapi.adapter import UseapiAdapter
from providers.useapi.sim import SimAccount, SimConfig, create_app

TOKEN = "user:1-token"
CA = "CA:alice.smith+video@example.com"  # `+` and `.` besides `:` and `@`: all must survive the path
US = "US:bob@example.com"
JOB_SECONDS = 90.0
START = 1_776_420_000.0

IMAGE = Media(kind="image", data=sample("image.png"), content_type="image/png", width=640, height=360)
LAST = Media(kind="image", data=sample("last_frame.png"), content_type="image/png", width=320, height=180)
VIDEO = Media(kind="video", data=sample("video.mp4"), content_type="video/mp4", width=320, height=180, duration_ms=2000)
AUDIO = Media(kind="audio", data=sample("audio.wav"), content_type="audio/wav", duration_ms=3000)


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class Sim:
    def __init__(self, app: Any, client: UpstreamClient, control: httpx.AsyncClient, clock: FakeClock) -> None:
        self.app, self.client, self.control, self.clock = app, client, control, clock

    async def faults(self, **switches: Any) -> None:
        assert (await self.control.post("/_sim/faults", json=switches)).status_code == 200

    async def submits(self) -> list[dict[str, Any]]:
        return (await self.control.get("/_sim/jobs")).json()

    async def run(self, request: GenerationRequest, model_id: str, ctx: SubmitContext) -> UpstreamJob:
        """upload -> submit -> poll until terminal (the fake clock moves 10 s between polls)."""
        refs = await self.client.upload_all(request, ctx)
        job = await self.client.submit(request, model_id, refs, ctx)
        assert job.status is JobStatus.IN_PROGRESS and job.upstream_status == "created"
        for _ in range(20):
            job = await self.client.poll(job.upstream_id)
            if job.status.terminal:
                return job
            self.clock.now += 10
        raise AssertionError("job never ended")


@asynccontextmanager
async def open_sim(
    accounts: list[SimAccount] | None = None,
    *,
    token: str = TOKEN,
    reply_transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[Sim]:
    clock = FakeClock()
    accounts = accounts or [SimAccount(account=CA, region="CA"), SimAccount(account=US, region="US")]
    cfg = SimConfig(job_seconds=JOB_SECONDS, tokens=frozenset({TOKEN}), accounts=accounts)
    app = create_app(cfg, clock=clock, reply_transport=reply_transport)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # Litestar's precise ASGI types
    async with (
        httpx.AsyncClient(base_url="http://sim.test/v1/dreamina", transport=transport) as http,
        httpx.AsyncClient(base_url="http://sim.test", transport=transport) as control,
    ):
        try:
            yield Sim(app, UpstreamClient(UseapiAdapter(), http, token), control, clock)
        finally:
            await app.state.replier.aclose()


CTX = SubmitContext(account=CA)
TEXT = GenerationRequest(model="seedance-2.0", input=TextInput(prompt="a fox"), seconds=5)
FIRST = GenerationRequest(model="seedance-2.0", input=FirstFrameInput(first_frame=IMAGE))


async def submit_text(sim: Sim) -> UpstreamJob:
    return await sim.client.submit(TEXT, "seedance-2.0", {}, CTX)


async def raised(awaitable: Any) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        await awaitable
    return caught.value
