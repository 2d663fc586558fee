"""A simulator of PowerTokens' OpenAI-style `/v1/videos` surface, written from its docs alone.

It serves the real upstream's paths (only the host changes):

- `POST /v1/videos` — JSON only; Seedance 2.x `media` bodies and Seedance 1.x `prompt`/`image`
  bodies, validated as UPSTREAMS 2.2/2.3/3.3 describe (`sim.validate`).
- `GET /v1/videos/{id}` — the task object, its status derived from the clock (`sim.tasks`).
- `GET /v1/videos/{id}/content` — the MP4 once the task succeeded.
- `DELETE /v1/videos/{id}` — cancels a pending/queued task.
- `GET /_sim/files/{video.mp4|last_frame.png}?task=…` — what the result URLs point at (the
  stand-in for the upstream's signed CDN links, so no auth).
- `/_sim/faults`, `/_sim/jobs`, `/_sim/reset` — the shared simkit control routes.

Where the docs are silent (UPSTREAMS marks [U]) the simulator's choice is configurable
(`SimConfig`) or one of these guesses:

- errors: one envelope for every route (`error_envelope`); codes/type words in `sim.errors`.
- auth: `Authorization: Bearer <token>` only; the quick-start's bare key is a 401.
- submit order: 401, then fault switches, then 415 (non-JSON), 400 (validation), 429 (capacity).
  Unknown fields (e.g. `prompt` or `camera_fixed` on 2.x, `media` on 1.x, `callback_url`) are 400.
- `seconds`: a string for 1.x too; `"-1"` on 2.x and 1.5 pro (not 1.0) and resolves to 5 s; the
  task object reports the resolved value. At most one `text` item in `media`.
- data: URLs are decoded and checked (declared MIME family, image sides 300–6000 px and aspect
  0.4–2.5, clips 2–15 s and ≤15 s per kind); https:// and asset:// are never fetched.
- lifecycle over `job_seconds`: pending 0–10 %, queued to 25 %, running to 100 %, then terminal;
  `hang` runs at 99 % until Ark's 48 h execution deadline, then `expired` (openai vocabulary:
  `failed` with error code `expired`). Cancelled in the openai vocabulary is `failed` + `cancelled`.
- `completed_at` on every terminal status; `expires_at` (= completed_at + 24 h) and
  `usage{completion_tokens,total_tokens}` on success; `metadata` only carries `url`.
- `/content` before success (and after failure/cancel): 404 with a JSON error. It serves the MP4
  for the 7 days the task is queryable; the result URLs (`/_sim/files/…`) answer 403 after 24 h.
- DELETE: pending/queued → cancelled (200, the task); running or terminal → 409.
- capacity: a submit while `max_concurrent` tasks are unfinished (pending/queued/running) → 429.
- `malformed_count` on a submit creates no task; `session_expired` is ignored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import msgspec
from litestar import Litestar, Request, Response, delete, get, post
from litestar.middleware import DefineMiddleware
from litestar.params import FromPath, FromQuery

from providers.powertokens.sim.errors import Envelope, ErrorKind, error_response
from providers.powertokens.sim.tasks import (
    CANCELLABLE,
    URL_TTL_SECONDS,
    ResultUrlField,
    Task,
    TaskStore,
    Vocabulary,
    phase,
    public_status,
    render,
)
from providers.powertokens.sim.validate import Invalid, validate
from providers.simkit import FaultBox, FaultMiddleware, Faults, control_router, sample

MAX_BODY_BYTES = 64 * 1024 * 1024  # Ark: request body <= 64 MB (UPSTREAMS 3.3)
MALFORMED_BODY = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


class SimConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    job_seconds: float = 2.0  # creation -> terminal status
    tokens: frozenset[str] | None = None  # None: any non-empty Bearer token is accepted
    # "ark": pending|queued|running|succeeded|failed|cancelled|expired;
    # "openai" (new-api style): queued|in_progress|completed|failed
    status_vocabulary: Vocabulary = "ark"
    # where a finished task carries its video URL ("none": only /content serves the video)
    result_url_field: ResultUrlField = "video_url"
    error_envelope: Envelope = "openai"  # which error shape of UPSTREAMS 2.8 every error uses
    max_concurrent: int = 20  # a submit while this many tasks are unfinished gets 429
    faults: Faults = msgspec.field(default_factory=Faults)


def with_capacity(config: SimConfig, capacity: int) -> SimConfig:
    """`config` accepting `capacity` unfinished tasks before answering 429."""
    return msgspec.structs.replace(config, max_concurrent=capacity)


class _Simulator:
    """The upstream's behaviour; the route handlers in `create_app` only delegate here."""

    def __init__(self, config: SimConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        # a copy: the box counts its counters down, and the config may be shared between apps
        self.box = FaultBox(msgspec.structs.replace(config.faults))
        self.store = TaskStore()

    # -- helpers -----------------------------------------------------------

    def error(
        self,
        status: int,
        kind: ErrorKind | None = None,
        message: str | None = None,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response[bytes]:
        return error_response(self.config.error_envelope, status, kind, message, param=param, headers=headers)

    def json(self, payload: Any) -> Response[bytes]:
        return Response(msgspec.json.encode(payload), status_code=200, media_type="application/json")

    def unauthorized(self, request: Request) -> Response[bytes] | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        ok = scheme.lower() == "bearer" and bool(token)
        if ok and self.config.tokens is not None:
            ok = token in self.config.tokens
        return None if ok else self.error(401)

    def fault(self, kind: Literal["submit", "poll"]) -> Response[bytes] | None:
        status = self.box.take(kind)
        if status:
            return self.error(status, headers=self.box.fault_headers(status))
        if self.box.take_counter("malformed_count"):
            return Response(MALFORMED_BODY, status_code=200, media_type="text/html")
        return None

    def task_or_404(self, task_id: str) -> Task | Response[bytes]:
        task = self.store.find(task_id, self.clock())
        if task is None:
            return self.error(404, "not_found", f"Task {task_id} does not exist (or is older than 7 days).")
        return task

    def show(self, task: Task, request: Request) -> Response[bytes]:
        return self.json(
            render(
                task,
                self.clock(),
                job_seconds=self.config.job_seconds,
                vocabulary=self.config.status_vocabulary,
                result_url_field=self.config.result_url_field,
                base_url=str(request.base_url).rstrip("/"),
            )
        )

    # -- routes ------------------------------------------------------------

    async def submit(self, request: Request) -> Response[bytes]:
        raw = await request.body()
        received_at = self.clock()
        response, body, task_id = self._submit(request, raw)
        self.store.record(
            {
                "received_at": received_at,
                "content_type": request.headers.get("content-type"),
                "body": body,
                "status_code": response.status_code,
                "response": _decoded(response.content),
                "task_id": task_id,
            }
        )
        return response

    def _submit(self, request: Request, raw: bytes) -> tuple[Response[bytes], Any, str | None]:
        try:
            body: Any = msgspec.json.decode(raw) if raw else None
        except msgspec.DecodeError:
            body = raw.decode("utf-8", "replace")
        refusal = self.unauthorized(request)
        if refusal is None:
            refusal = self.fault("submit")
        if refusal is not None:
            return refusal, body, None
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            return self.error(415, "unsupported_media_type"), body, None
        if isinstance(body, str) or body is None:
            return self.error(400, "invalid_parameter", "The request body is not valid JSON."), body, None
        try:
            accepted = validate(body)
        except Invalid as exc:
            return self.error(400, exc.kind, exc.message, param=exc.param), body, None
        now = self.clock()
        if self.store.active(now, self.config.job_seconds) >= self.config.max_concurrent:
            message = f"Too many concurrent tasks: at most {self.config.max_concurrent} may run at once."
            return self.error(429, "rate_limited", message, headers=self.box.fault_headers(429)), body, None
        faults = self.box.faults
        task = Task(
            id=self.store.new_id(now),
            model=accepted.model,
            created=now,
            duration=accepted.duration,
            size=accepted.size,
            width=accepted.width,
            height=accepted.height,
            return_last_frame=accepted.return_last_frame,
            outcome=faults.job_outcome,
            fail_reason=faults.fail_reason,
        )
        self.store.add(task)
        created = {
            "id": task.id,
            "task_id": task.id,
            "object": "video",
            "model": task.model,
            "status": public_status("pending", self.config.status_vocabulary),
            "progress": 0,
            "created_at": int(now),
        }
        return self.json(created), body, task.id

    def retrieve(self, request: Request, task_id: str) -> Response[bytes]:
        refusal = self.unauthorized(request)
        if refusal is None:
            refusal = self.fault("poll")
        if refusal is not None:
            return refusal
        found = self.task_or_404(task_id)
        return found if isinstance(found, Response) else self.show(found, request)

    def content(self, request: Request, task_id: str) -> Response[bytes]:
        # Before success the docs only say "a JSON/HTML body instead of MP4" [U]: we answer 404
        # with a JSON error in the configured envelope (and the same for failed/cancelled tasks).
        refusal = self.unauthorized(request)
        if refusal is not None:
            return refusal
        found = self.task_or_404(task_id)
        if isinstance(found, Response):
            return found
        status = phase(found, self.clock(), self.config.job_seconds).status
        if status != "succeeded":
            return self.error(404, "not_found", f"The video of task {task_id} is not available (status: {status}).")
        return Response(sample("video.mp4"), status_code=200, media_type="video/mp4")

    def cancel(self, request: Request, task_id: str) -> Response[bytes]:
        # Ark cancels only queued tasks (UPSTREAMS 3.1); the simulator also cancels `pending`
        # ones and answers 409 for running and terminal tasks (a guess: the docs give no code).
        refusal = self.unauthorized(request)
        if refusal is not None:
            return refusal
        found = self.task_or_404(task_id)
        if isinstance(found, Response):
            return found
        now = self.clock()
        status = phase(found, now, self.config.job_seconds).status
        if status not in CANCELLABLE:
            return self.error(409, "conflict", f"Task {task_id} cannot be cancelled in status {status}.")
        found.cancelled_at = now
        return self.show(found, request)

    def file(self, name: Literal["video.mp4", "last_frame.png"], task_id: str | None) -> Response[bytes]:
        # Stands in for the signed CDN link: no auth, 404 unless the task succeeded, 403 after 24 h.
        now = self.clock()
        task = self.store.find(task_id or "", now)
        ph = phase(task, now, self.config.job_seconds) if task else None
        if task is None or ph is None or ph.status != "succeeded":
            return Response(b"NoSuchKey", status_code=404, media_type="text/plain")
        if name == "last_frame.png" and not task.return_last_frame:
            return Response(b"NoSuchKey", status_code=404, media_type="text/plain")
        if now - ph.since > URL_TTL_SECONDS:
            return Response(b"AccessDenied: Request has expired", status_code=403, media_type="text/plain")
        return Response(sample(name), status_code=200, media_type="video/mp4" if name == "video.mp4" else "image/png")


def _decoded(content: Any) -> Any:
    try:
        return msgspec.json.decode(content)
    except (msgspec.DecodeError, TypeError):
        return content.decode("utf-8", "replace") if isinstance(content, bytes) else content


def create_app(config: SimConfig | None = None, *, clock: Callable[[], float] = time.time) -> Litestar:
    """The PowerTokens simulator as a Litestar app, with simkit's FaultMiddleware applied."""
    sim = _Simulator(config or SimConfig(), clock)

    @post("/v1/videos", status_code=200, operation_id="createVideo", summary="Create a video task")
    async def create_video(request: Request) -> Response[bytes]:
        return await sim.submit(request)

    @get("/v1/videos/{task_id:str}", sync_to_thread=False, operation_id="getVideo", summary="Get a video task")
    def get_video(request: Request, task_id: FromPath[str]) -> Response[bytes]:
        return sim.retrieve(request, task_id)

    @get("/v1/videos/{task_id:str}/content", sync_to_thread=False, operation_id="getVideoContent", summary="MP4 bytes")
    def get_content(request: Request, task_id: FromPath[str]) -> Response[bytes]:
        return sim.content(request, task_id)

    @delete("/v1/videos/{task_id:str}", status_code=200, sync_to_thread=False, operation_id="cancelVideo", summary="Cancel a queued video task")
    def cancel_video(request: Request, task_id: FromPath[str]) -> Response[bytes]:
        return sim.cancel(request, task_id)

    @get("/_sim/files/video.mp4", sync_to_thread=False, include_in_schema=False)
    def video_file(task: FromQuery[str | None] = None) -> Response[bytes]:
        return sim.file("video.mp4", task)

    @get("/_sim/files/last_frame.png", sync_to_thread=False, include_in_schema=False)
    def last_frame_file(task: FromQuery[str | None] = None) -> Response[bytes]:
        return sim.file("last_frame.png", task)

    app = Litestar(
        route_handlers=[
            create_video,
            get_video,
            get_content,
            cancel_video,
            video_file,
            last_frame_file,
            control_router(sim.box, sim.store.list_jobs, sim.store.reset, lambda: sim.store.release(sim.clock())),
        ],
        middleware=[DefineMiddleware(FaultMiddleware, box=sim.box)],
        request_max_body_size=MAX_BODY_BYTES,
    )
    app.state.simulator = sim  # for tests and the demo: the live store and fault box
    return app
