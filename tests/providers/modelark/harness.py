"""Shared harness for the ModelArk tests (not a test module itself).

The simulator runs in process (`httpx.ASGITransport`) on a fake clock, so nothing sleeps;
the adapter is driven by the generic `UpstreamClient`, exactly as the gateway drives it.
Callbacks go to an in-memory `Receiver` through the simulator's `callback_transport`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import msgspec
import pytest

from providers.base import (
    FirstFrameInput,
    FirstLastFrameInput,
    GenerationRequest,
    Media,
    ModeInput,
    ReferenceInput,
    SubmitContext,
    TextInput,
    UpstreamError,
    UpstreamJob,
)
from providers.capabilities import ModelCaps
from providers.client import UpstreamClient
from providers.modelark.adapter import ModelArkAdapter
from providers.modelark.sim import SimConfig, create_app
from providers.simkit import sample

HOST = "http://ark.test"
BASE = f"{HOST}/api/v3"
TOKEN = "ark-test-key"
T0 = 1_790_000_000.0
QUEUE_SECONDS, RUN_SECONDS = 2.0, 8.0
CALLBACK = "https://vidgate.test/v1/callbacks/tok_unguessable"

IMAGE_URL = Media(kind="image", url="https://cdn.example/first.png", width=1280, height=720)
LAST_URL = Media(kind="image", url="https://cdn.example/last.png", width=1280, height=720)
VIDEO_URL = Media(kind="video", url="https://cdn.example/motion.mp4", duration_ms=4000)
AUDIO_URL = Media(kind="audio", url="https://cdn.example/beat.mp3", duration_ms=5000)
IMAGE_DATA = Media(kind="image", data=sample("image.png"), content_type="image/png", width=640, height=360)
AUDIO_DATA = Media(kind="audio", data=sample("audio.wav"), content_type="audio/wav", duration_ms=3000)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Receiver:
    """The callback endpoint: records every body, answers `status` (settable)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.status = 200

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(await request.aread())
        return httpx.Response(self.status)

    @property
    def statuses(self) -> list[str]:
        return [msgspec.json.decode(b)["status"] for b in self.bodies]


class Sim:
    def __init__(self, app: Any, client: UpstreamClient, control: httpx.AsyncClient, clock: FakeClock, receiver: Receiver) -> None:
        self.app, self.client, self.control, self.clock, self.receiver = app, client, control, clock, receiver

    @property
    def state(self) -> Any:
        return self.app.state.simulator

    async def faults(self, **switches: Any) -> None:
        (await self.control.post("/_sim/faults", json=switches)).raise_for_status()

    async def arm(self, code: str, route: str = "submit", count: int = 1, **extra: Any) -> None:
        (await self.control.post("/_sim/errors", json={"code": code, "route": route, "count": count, **extra})).raise_for_status()

    async def submissions(self) -> list[dict[str, Any]]:
        return (await self.control.get("/_sim/jobs")).json()

    async def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """A raw call to the simulated API with the test key."""
        headers = {"Authorization": f"Bearer {TOKEN}", **kw.pop("headers", {})}
        return await self.control.request(method, f"/api/v3{path}", headers=headers, **kw)

    async def settle(self) -> None:
        """Let every callback delivery that has started finish."""
        await self.state.callbacks.drain()

    async def submit(self, request: GenerationRequest, model_id: str, ctx: SubmitContext | None = None) -> UpstreamJob:
        return await self.client.submit(request, model_id, {}, ctx or SubmitContext())


@asynccontextmanager
async def open_sim(config: SimConfig | None = None, *, secret: str = TOKEN) -> AsyncIterator[Sim]:
    clock = FakeClock()
    receiver = Receiver()
    config = config or SimConfig(queue_seconds=QUEUE_SECONDS, run_seconds=RUN_SECONDS, tokens=frozenset({TOKEN}))
    app = create_app(config, clock=clock, callback_transport=httpx.MockTransport(receiver))
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # Litestar's precise ASGI types
    async with (
        httpx.AsyncClient(base_url=BASE, transport=transport) as http,
        httpx.AsyncClient(base_url=HOST, transport=transport) as control,
    ):
        try:
            yield Sim(app, UpstreamClient(ModelArkAdapter(), http, secret), control, clock, receiver)
        finally:
            await app.state.simulator.callbacks.aclose()


def input_for(mode: str, caps: ModelCaps) -> ModeInput:
    """A URL-media input of `mode` that `caps` accepts (references: the richest mix allowed)."""
    if mode == "text":
        return TextInput(prompt="a paper boat drifts down a rainy street")
    if mode == "first_frame":
        return FirstFrameInput(first_frame=IMAGE_URL, prompt="the boat drifts away")
    if mode == "first_last_frame":
        return FirstLastFrameInput(first_frame=IMAGE_URL, last_frame=LAST_URL, prompt="dusk to night")
    assert mode == "reference" and caps.reference is not None
    limits = caps.reference
    return ReferenceInput(
        prompt="Image 1 dances like Video 1 to Audio 1; Image 2 is the backdrop",
        images=(IMAGE_URL, LAST_URL)[: limits.max_images],
        videos=(VIDEO_URL,)[: limits.max_videos],
        audios=(AUDIO_URL,)[: limits.max_audios],
    )


async def raised(awaitable: Any) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        await awaitable
    return caught.value
