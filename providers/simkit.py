"""Machinery the upstream simulators share: fault switches, the control routes,
sample media, and a loopback server runner.

Nothing here knows any upstream's wire format; each simulator describes its own
upstream from that upstream's docs.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any, Literal

import msgspec
from litestar import Request, Router, get, post, put
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Receive, Scope, Send

JobOutcome = Literal["succeed", "fail", "hang"]


class Faults(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Fault switches, settable at start-up and at run time via `/_sim/faults`.

    Counters count down as they fire; `-1` means "every time until changed".
    """

    submit_status: int = 0  # answer job submits with this HTTP status ...
    submit_status_count: int = 0  # ... this many times
    poll_status: int = 0  # answer job polls with this HTTP status ...
    poll_status_count: int = 0
    upload_status: int = 0  # answer uploads with this HTTP status ...
    upload_status_count: int = 0
    retry_after: str | None = None  # Retry-After header sent with fault statuses 429/503
    delay_seconds: float = 0.0  # every non-control response waits this long first
    drop_count: int = 0  # the next N requests get their connection dropped without an answer
    malformed_count: int = 0  # the next N submits/polls answer 200 with a body that is not JSON
    session_expired: bool = False  # upstream-specific: e.g. useapi answers 596
    job_outcome: JobOutcome = "succeed"  # how newly created jobs end
    fail_reason: str | None = None  # failure text for job_outcome="fail" (simulator default if None)


class RequestRecord(msgspec.Struct, frozen=True):
    """One upstream-API request as served, for `/_sim/requests`: who asked what, and when."""

    method: str
    path: str
    user_agent: str
    started: float
    ended: float


class FaultBox:
    """Holds the live `Faults` and consumes counters atomically (one event loop),
    and the log of API requests served (the most recent `REQUEST_LOG_SIZE`)."""

    REQUEST_LOG_SIZE = 200_000

    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.requests: collections.deque[RequestRecord] = collections.deque(maxlen=self.REQUEST_LOG_SIZE)

    def take(self, kind: Literal["submit", "poll", "upload"]) -> int:
        """The fault status to answer this `kind` of request with, or 0."""
        status = getattr(self.faults, f"{kind}_status")
        count = getattr(self.faults, f"{kind}_status_count")
        if not status or count == 0:
            return 0
        if count > 0:
            setattr(self.faults, f"{kind}_status_count", count - 1)
        return status

    def take_counter(self, name: Literal["drop_count", "malformed_count"]) -> bool:
        count = getattr(self.faults, name)
        if count == 0:
            return False
        if count > 0:
            setattr(self.faults, name, count - 1)
        return True

    async def delay(self) -> None:
        if self.faults.delay_seconds > 0:
            await asyncio.sleep(self.faults.delay_seconds)

    def fault_headers(self, status: int) -> dict[str, str]:
        if status in (429, 503) and self.faults.retry_after is not None:
            return {"Retry-After": self.faults.retry_after}
        return {}


class FaultMiddleware:
    """ASGI wrapper that applies the transport-level faults before the simulator sees a request.

    A dropped connection starts an answer and then aborts it, so the client sees the
    peer close mid-response (as on a real network), not an HTTP error status.
    """

    def __init__(self, app: ASGIApp, box: FaultBox) -> None:
        self.app = app
        self.box = box

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/_sim"):
            if self.box.take_counter("drop_count"):
                await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
                await send({"type": "http.response.body", "body": b"{", "more_body": True})
                raise ConnectionAbortedError("simulated dropped connection")
            await self.box.delay()
            started = time.time()
            try:
                await self.app(scope, receive, send)
            finally:
                agent = dict(scope.get("headers") or []).get(b"user-agent", b"").decode("latin-1")
                self.box.requests.append(RequestRecord(str(scope.get("method", "")), scope["path"], agent, started, time.time()))
            return
        await self.app(scope, receive, send)


def control_router(box: FaultBox, list_jobs: Callable[[], list[Any]], reset: Callable[[], None], release: Callable[[], int] | None = None) -> Router:
    """The `/_sim/*` control endpoints every simulator serves. `release` lets the jobs created
    with `job_outcome="hang"` go on to succeed (`POST /_sim/release`), so a test can hold jobs
    in flight for as long as it needs instead of betting on their duration."""

    @get("/faults", sync_to_thread=False)
    def get_faults() -> Faults:
        return box.faults

    async def _set(request: Request, merge: bool) -> Faults:
        raw = await request.body()
        try:
            patch = msgspec.json.decode(raw or b"{}")
            base = msgspec.to_builtins(box.faults) if merge else {}
            box.faults = msgspec.convert({**base, **patch}, Faults)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        return box.faults

    @post("/faults", status_code=200)
    async def patch_faults(request: Request) -> Faults:
        """Merge the given switches into the current ones."""
        return await _set(request, merge=True)

    @put("/faults", status_code=200)
    async def replace_faults(request: Request) -> Faults:
        """Replace every switch (unnamed ones go back to their defaults)."""
        return await _set(request, merge=False)

    @get("/jobs", sync_to_thread=False)
    def jobs() -> list[Any]:
        return list_jobs()

    @get("/requests", sync_to_thread=False)
    def requests() -> list[RequestRecord]:
        """Every API request served since the last reset, oldest first."""
        return list(box.requests)

    @post("/reset", status_code=200, sync_to_thread=False)
    def do_reset() -> dict[str, bool]:
        box.faults = Faults()
        box.requests.clear()
        reset()
        return {"reset": True}

    @post("/release", status_code=200, sync_to_thread=False)
    def do_release() -> dict[str, int]:
        return {"released": release() if release is not None else 0}

    return Router(path="/_sim", route_handlers=[get_faults, patch_faults, replace_faults, jobs, requests, do_reset, do_release], include_in_schema=False)


# ---------------------------------------------------------------------------
# Sample media: real, tiny, playable files shipped with the package
# ---------------------------------------------------------------------------


SampleName = Literal["video.mp4", "cover.png", "last_frame.png", "image.png", "audio.wav"]


def sample(name: SampleName) -> bytes:
    """Bytes of a bundled sample file (`providers/sim_media/`)."""
    return resources.files("providers").joinpath("sim_media", name).read_bytes()


# ---------------------------------------------------------------------------
# Running a simulator (or any ASGI app) on loopback
# ---------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Serve `app` with uvicorn on a background thread; yields its base URL.

    Used by tests and the demo so that simulators are reached over real HTTP.
    """
    import uvicorn

    port = port or free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"server on {host}:{port} did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
