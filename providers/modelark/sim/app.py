"""A simulator of BytePlus ModelArk's video task API, written from MODELARK.md alone.

It serves the real paths under `/api/v3` (only the host changes) with Bearer auth (§1):

- `POST /api/v3/contents/generations/tasks` — validated as §2/§3/§9 say (`sim.validate`);
  per-model RPM (§9.2) and the 120-queued cap (§10) answer 429.
- `GET /api/v3/contents/generations/tasks/{id}` — the task object (§5).
- `GET /api/v3/contents/generations/tasks` — the list with its filters and paging (§6.1).
- `DELETE /api/v3/contents/generations/tasks/{id}` — cancel a queued task, delete a
  finished one, refuse a running or cancelled one (§6.2).
- `GET /tos/{id}.mp4`, `/tos/{id}-last-frame.png` — the signed-storage stand-ins the result
  URLs point at (no auth; 403 after 24 h, §5).
- `/_sim/faults`, `/_sim/jobs`, `/_sim/requests`, `/_sim/reset` (simkit), plus
  `/_sim/errors` (arm any §8.2 code on a route or on new tasks) and `/_sim/callbacks`.

Every response carries `X-Request-Id`; errors use the §8.1 envelope. `callback_url` gets a
POST on each status change (`sim.callbacks`). The [UNKNOWN] choices are the contract's own
simulator rules; the few left to us: a fault status maps to one representative code
(`simulator._FAULT_CODES`), `faults.malformed_count` on a create makes the task but garbles the
answer, and adaptive ratios resolve to 16:9 (the images are never fetched).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
from litestar import Litestar, Request, Response, delete, get, post
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.params import FromPath

from providers.modelark.sim.errors import CODES, ArkError, RequestIdMiddleware, add_request_id
from providers.modelark.sim.simulator import API, MAX_BODY_BYTES, ErrorSwitch, SimConfig, Simulator, with_capacity
from providers.simkit import FaultMiddleware, control_router

__all__ = ["ErrorSwitch", "SimConfig", "create_app", "with_capacity"]


def _http_exception(_: Request, exc: HTTPException) -> Response[bytes]:
    """Litestar's own refusals (unknown path, wrong method, body too large) in §8.1's envelope."""
    code = "NotFound" if exc.status_code == 404 else "InternalServiceError" if exc.status_code >= 500 else "InvalidParameter"
    kind = {404: "NotFound", 405: "BadRequest", 413: "BadRequest"}.get(exc.status_code, "BadRequest" if exc.status_code < 500 else "InternalServerError")
    body = {"error": {"code": code, "message": str(exc.detail), "param": "", "type": kind}}
    return Response(msgspec.json.encode(body), status_code=exc.status_code, media_type="application/json")


def create_app(
    config: SimConfig | None = None,
    *,
    clock: Callable[[], float] = time.time,
    callback_transport: httpx.AsyncBaseTransport | None = None,
) -> Litestar:
    """The ModelArk simulator. `callback_transport` carries `callback_url` POSTs (tests: an
    ASGI or mock transport); `app.state.simulator` is the live state for tests and the demo."""
    sim = Simulator(config or SimConfig(), clock, callback_transport)

    @post(API, status_code=200, operation_id="createTask", summary="Create a video generation task")
    async def create_task(request: Request) -> Response[bytes]:
        return await sim.create(request)

    @get(API, sync_to_thread=False, operation_id="listTasks", summary="List video generation tasks")
    def list_tasks(request: Request) -> Response[bytes]:
        return sim.list(request)

    @get(f"{API}/{{task_id:str}}", sync_to_thread=False, operation_id="getTask", summary="Retrieve a video generation task")
    def get_task(request: Request, task_id: FromPath[str]) -> Response[bytes]:
        return sim.retrieve(request, task_id)

    @delete(f"{API}/{{task_id:str}}", status_code=200, sync_to_thread=False, operation_id="deleteTask", summary="Cancel or delete a task")
    def delete_task(request: Request, task_id: FromPath[str]) -> Response[bytes]:
        return sim.remove(request, task_id)

    @get("/tos/{name:str}", sync_to_thread=False, include_in_schema=False)
    def media(name: FromPath[str]) -> Response[bytes]:
        return sim.media(name)

    @post("/_sim/errors", status_code=200, include_in_schema=False)
    async def arm_error(request: Request) -> dict[str, Any]:
        try:
            switch = msgspec.json.decode(await request.body(), type=ErrorSwitch)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        if switch.code not in CODES:
            raise HTTPException(status_code=400, detail=f"unknown code {switch.code!r}; see GET /_sim/errors")
        if switch.count == 0:
            raise HTTPException(status_code=400, detail="count must be positive, or -1 for until reset")
        sim.switches[switch.route] = switch
        return msgspec.to_builtins(switch)

    @get("/_sim/errors", sync_to_thread=False, include_in_schema=False)
    def error_codes() -> dict[str, Any]:
        return {"codes": {code: spec.status for code, spec in CODES.items()}, "armed": msgspec.to_builtins(list(sim.switches.values()))}

    @get("/_sim/callbacks", sync_to_thread=False, include_in_schema=False)
    def callbacks() -> list[Any]:
        return msgspec.to_builtins(sim.callbacks.records)

    ticker: list[asyncio.Task[None]] = []

    async def start_ticker() -> None:
        interval = sim.config.tick_seconds
        if interval is None:
            return

        async def run() -> None:
            while True:
                await asyncio.sleep(interval)
                sim.tick()

        ticker.append(asyncio.get_running_loop().create_task(run()))

    async def stop() -> None:
        for task in ticker:
            task.cancel()
        await asyncio.gather(*ticker, return_exceptions=True)
        await sim.callbacks.aclose()

    app = Litestar(
        route_handlers=[
            create_task,
            list_tasks,
            get_task,
            delete_task,
            media,
            arm_error,
            error_codes,
            callbacks,
            control_router(sim.box, lambda: sim.submissions, sim.reset),
        ],
        exception_handlers={ArkError: lambda _request, exc: exc.response(), HTTPException: _http_exception},
        middleware=[DefineMiddleware(RequestIdMiddleware), DefineMiddleware(FaultMiddleware, box=sim.box)],
        before_send=[add_request_id],
        on_startup=[start_ticker],
        on_shutdown=[stop],
        request_max_body_size=MAX_BODY_BYTES,
    )
    app.state.simulator = sim
    return app
