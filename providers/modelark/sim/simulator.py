"""The simulator's state and behaviour; `sim.app` only routes requests here (its docstring
says what the simulator does and which [UNKNOWN] choices it makes)."""

from __future__ import annotations

import collections
import random
import time
from collections.abc import Callable
from typing import Any, Literal

import httpx
import msgspec
from litestar import Request, Response

from providers.modelark.sim.callbacks import Callbacks
from providers.modelark.sim.catalog import FOUR_K_RPM, MODELS, SIZES
from providers.modelark.sim.errors import CODES, ArkError, invalid, wire_code
from providers.modelark.sim.tasks import MEDIA_TTL_SECONDS, RETENTION_SECONDS, Board, Task, billed_tokens, pool_of, render
from providers.modelark.sim.validate import Accepted, validate
from providers.simkit import FaultBox, Faults, sample

API = "/api/v3/contents/generations/tasks"
MAX_BODY_BYTES = 64 * 1024 * 1024  # §1
MALFORMED_BODY = b"<html><head><title>502 Bad Gateway</title></head><body>upstream reset</body></html>"
DEFAULT_FAIL_CODE = "OutputVideoSensitiveContentDetected"  # `job_outcome: fail` (§13.6)
_FAULT_CODES = {400: "InvalidParameter", 401: "AuthenticationError", 403: "AccessDenied", 429: "RequestBurstTooFast", 500: "InternalServiceError"}
_TASK_ID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"

Route = Literal["submit", "poll", "list", "cancel", "task"]


class SimConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    queue_seconds: float = 2.0  # at least this long in `queued` (§5.3 default)
    run_seconds: float = 8.0  # `running` (§5.3 default)
    tokens: frozenset[str] | None = None  # accepted API keys; None: any non-empty Bearer token
    endpoints: dict[str, str] = {}  # `ep-…` inference endpoint id -> model id
    max_queued: int = 120  # tasks in `queued` per account (§10)
    max_running: int | None = None  # running tasks per model; None: §9.2's enterprise limits
    rpm_limits: bool = True  # §9.2 creates per minute per model
    callback_timeout: float = 5.0  # §7: no 2xx within 5 s is a failed delivery
    callback_retry_after: tuple[float, ...] = (5.0, 10.0, 20.0)  # §7: 3 more times
    tick_seconds: float | None = 0.5  # when served: how often the clock is replayed for callbacks
    expire_after: float | None = None  # tests: tasks expire after at most this long, whatever they asked for
    seed: int | None = None  # ids and random seeds
    faults: Faults = msgspec.field(default_factory=Faults)


def with_capacity(config: SimConfig, capacity: int) -> SimConfig:
    """`config` with `capacity` as the queued cap and the running limit of every model."""
    return msgspec.structs.replace(config, max_queued=capacity, max_running=capacity)


class ErrorSwitch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`POST /_sim/errors`: answer `route` with `code` (any key of `CODES`) `count` times
    (-1: until reset); `route: "task"` makes new tasks fail with it instead."""

    code: str
    route: Route = "submit"
    count: int = 1
    retry_after: str | None = None  # a Retry-After header on the answer


class Simulator:
    def __init__(self, config: SimConfig, clock: Callable[[], float], callback_transport: httpx.AsyncBaseTransport | None) -> None:
        self.config = config
        self.clock = clock
        self.box = FaultBox(msgspec.structs.replace(config.faults))
        self.board = Board(config.max_running)
        self.callbacks = Callbacks(clock, callback_transport, timeout=config.callback_timeout, retry_after=config.callback_retry_after)
        self.rng = random.Random(config.seed)
        self.reset()

    def reset(self) -> None:
        self.board.reset()
        self.callbacks.reset()
        self.switches: dict[Route, ErrorSwitch] = {}
        self.creates: dict[str, collections.deque[float]] = {}  # pool -> create times of the last minute
        self.submissions: list[dict[str, Any]] = []

    # -- plumbing -----------------------------------------------------------------

    def tick(self) -> float:
        """Replay the clock: status changes, their callbacks, due callback retries."""
        now = self.clock()
        for change in self.board.advance(now):
            url = change.task.request.callback_url
            if url and change.status != "cancelled":
                body = msgspec.json.encode(render(change.task, change.status, change.at))
                self.callbacks.enqueue(change.task.id, url, change.status, body, now)
        self.callbacks.pump(now)
        return now

    def authorize(self, request: Request) -> None:
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or (self.config.tokens is not None and token not in self.config.tokens):
            raise ArkError("AuthenticationError")

    def injected(self, route: Route) -> bool:
        """Raise the armed error or fault status for `route`; True if the answer is to be garbled."""
        switch = self.switches.get(route)
        if switch is not None:
            self._consume(route, switch)
            raise ArkError(switch.code, headers={"Retry-After": switch.retry_after} if switch.retry_after else None)
        if route in ("submit", "poll") and (status := self.box.take(route)):
            code = _FAULT_CODES.get(status, "InternalServiceError" if status >= 500 else "InvalidParameter")
            if status == 404:
                code = "InvalidEndpoint.NotFound" if route == "submit" else "NotFound.TaskId"
            error = ArkError(code, headers=self.box.fault_headers(status))
            error.status = status
            raise error
        return route in ("submit", "poll") and self.box.take_counter("malformed_count")

    def _consume(self, route: Route, switch: ErrorSwitch) -> None:
        if switch.count > 0:
            switch.count -= 1
            if switch.count == 0:
                del self.switches[route]

    def task_or_404(self, task_id: str, now: float) -> Task:
        task = self.board.find(task_id, now)
        if task is None:
            raise ArkError("NotFound.TaskId", f"The specified task {task_id} is not found.", param="id")
        return task

    # -- routes --------------------------------------------------------------------

    async def create(self, request: Request) -> Response[bytes]:
        raw = await request.body()
        now = self.tick()
        entry: dict[str, Any] = {"received_at": now, "body": _decoded(raw), "task_id": None}
        self.submissions.append(entry)
        try:
            response = self._create(request, raw, now, entry)
        except ArkError as exc:
            response = exc.response()
        entry["status_code"] = response.status_code
        entry["response"] = _decoded(response.content)
        return response

    def _create(self, request: Request, raw: bytes, now: float, entry: dict[str, Any]) -> Response[bytes]:
        self.authorize(request)
        garble = self.injected("submit")
        try:
            body = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            raise invalid("", "The request body is not valid JSON.") from None
        accepted = validate(body, self.config.endpoints)
        if self.config.expire_after is not None:  # an upstream whose queue never drains in time
            accepted = msgspec.structs.replace(accepted, execution_expires_after=min(accepted.execution_expires_after, int(self.config.expire_after)))
        if accepted.draft_task_id is not None:
            accepted = self._from_draft(accepted, now)
        self._limit_rate(accepted, body.get("model", ""), now)
        if self.board.queued() >= self.config.max_queued:
            raise ArkError("QuotaExceeded", headers=self.box.fault_headers(429))
        task = self._new_task(accepted, now, str(request.base_url).rstrip("/"))
        self.board.add(task)
        if accepted.callback_url:
            self.callbacks.enqueue(task.id, accepted.callback_url, "queued", msgspec.json.encode(render(task)), now)
            self.callbacks.pump(now)
        entry["task_id"] = task.id
        if garble:  # the task exists; only the answer is lost (a reconciliation case)
            return Response(MALFORMED_BODY, status_code=200, media_type="text/html")
        return _json({"id": task.id})

    def _from_draft(self, accepted: Accepted, now: float) -> Accepted:
        """A `draft_task` item reuses the draft's model and settings (§3.5)."""
        draft = self.board.find(accepted.draft_task_id or "", now)
        if draft is None or not draft.request.draft or draft.status != "succeeded":
            raise invalid("content", f"The draft task {accepted.draft_task_id} is not a succeeded draft task.")
        return msgspec.structs.replace(
            draft.request,
            draft=False,
            draft_task_id=draft.id,
            resolution=accepted.resolution,
            callback_url=accepted.callback_url,
            return_last_frame=accepted.return_last_frame,
            execution_expires_after=accepted.execution_expires_after,
        )

    def _limit_rate(self, accepted: Accepted, sent_model: str, now: float) -> None:
        if not self.config.rpm_limits:
            return
        pool = pool_of(accepted)
        limit = FOUR_K_RPM if pool.endswith("@4k") else MODELS[accepted.model].rpm
        window = self.creates.setdefault(pool, collections.deque())
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= limit:  # §8.2 notes: the code depends on how the model was named
            code = "RateLimitExceeded.EndpointRPMExceeded" if sent_model.startswith("ep-") else "ModelAccountRpmRateLimitExceeded"
            raise ArkError(code, headers=self.box.fault_headers(429))
        window.append(now)

    def _new_task(self, accepted: Accepted, now: float, base_url: str) -> Task:
        spec = MODELS[accepted.model]
        ratio = "16:9" if accepted.ratio == "adaptive" else accepted.ratio
        duration = accepted.frames // 24 if accepted.frames is not None else accepted.duration
        if duration == -1:
            duration = min(max(5, spec.min_seconds), spec.max_seconds)
        width, height = SIZES[spec.family][accepted.resolution][ratio]
        faults = self.box.faults
        outcome, code, message = faults.job_outcome, None, None
        if (switch := self.switches.get("task")) is not None:
            self._consume("task", switch)
            outcome, code = "fail", switch.code
        elif outcome == "fail":
            code, message = DEFAULT_FAIL_CODE, faults.fail_reason
        self.board.seq += 1
        return Task(
            seq=self.board.seq,
            id=self._new_id(now),
            request=accepted,
            pool=pool_of(accepted),
            created=now,
            ready_at=now + self.config.queue_seconds,
            run_seconds=self.config.run_seconds,
            base_url=base_url,
            ratio=ratio,
            duration=duration,
            seed=accepted.seed if accepted.seed != -1 else self.rng.randrange(0, 2**31),
            width=width,
            height=height,
            tokens=billed_tokens(accepted, width, height, duration),
            outcome=outcome,
            fail_code=None if code is None else wire_code(code),
            fail_message=message or (None if code is None else CODES[code].message),
            updated=now,
        )

    def _new_id(self, now: float) -> str:
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(now))
        while True:
            task_id = f"cgt-{stamp}-{''.join(self.rng.choice(_TASK_ID_CHARS) for _ in range(5))}"
            if task_id not in self.board.tasks:
                return task_id

    def retrieve(self, request: Request, task_id: str) -> Response[bytes]:
        now = self.tick()
        self.authorize(request)
        garble = self.injected("poll")
        task = self.task_or_404(task_id, now)
        if garble:
            return Response(MALFORMED_BODY, status_code=200, media_type="text/html")
        return _json(render(task))

    def list(self, request: Request) -> Response[bytes]:
        now = self.tick()
        self.authorize(request)
        self.injected("list")
        query = request.query_params
        page_num = _page(query.get("page_num"), "page_num", 1)
        page_size = _page(query.get("page_size"), "page_size", 10)
        status = query.get("filter.status")
        if status is not None and status not in ("queued", "running", "cancelled", "succeeded", "failed", "expired"):
            raise invalid("filter.status", f"The parameter filter.status is not valid: {status}.")
        tier = query.get("filter.service_tier")
        if tier is not None and tier not in ("default", "flex"):
            raise invalid("filter.service_tier", f"The parameter filter.service_tier is not valid: {tier}.")
        ids = set(query.getall("filter.task_ids", []))
        model = query.get("filter.model")
        if model is not None:
            model = self.config.endpoints.get(model, model)
        second = int(now)  # the window is [T - 7 d, T) with T to the second (§6.1)
        found = [
            t
            for t in self.board.tasks.values()
            if second - RETENTION_SECONDS <= int(t.created) < second
            and self.board.find(t.id, now) is not None
            and (status is None or t.status == status)
            and (not ids or t.id in ids)
            and (model is None or t.request.model == model)
            and (tier is None or t.request.service_tier == tier)
        ]
        found.sort(key=lambda t: (t.created, t.seq), reverse=True)
        page = found[(page_num - 1) * page_size : page_num * page_size]
        return _json({"items": [render(t) for t in page], "total": len(found)})

    def remove(self, request: Request, task_id: str) -> Response[bytes]:
        now = self.tick()
        self.authorize(request)
        self.injected("cancel")
        task = self.task_or_404(task_id, now)
        if task.status in ("running", "cancelled"):  # §6.2 [UNKNOWN] refusal rule
            raise ArkError("OperationDenied.InvalidState", f"The specified task is in invalid state: {task.status}.")
        if task.status == "queued":
            self.board.cancel(task, now)  # no callback on cancel (§7 [UNKNOWN] rule)
        else:
            self.board.delete(task)
        return _json({})

    def media(self, name: str) -> Response[bytes]:
        now = self.tick()
        kind: Literal["video.mp4", "last_frame.png"]
        if name.endswith(".mp4"):
            task_id, kind = name.removesuffix(".mp4"), "video.mp4"
        elif name.endswith("-last-frame.png"):
            task_id, kind = name.removesuffix("-last-frame.png"), "last_frame.png"
        else:
            task_id, kind = "", "video.mp4"
        task = self.board.find(task_id, now)
        if task is None or task.status != "succeeded" or (kind == "last_frame.png" and not task.request.return_last_frame):
            return Response(b"<Error><Code>NoSuchKey</Code></Error>", status_code=404, media_type="application/xml")
        if task.ended is not None and now - task.ended >= MEDIA_TTL_SECONDS:
            return Response(b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>", status_code=403, media_type="application/xml")
        return Response(sample(kind), status_code=200, media_type="video/mp4" if kind == "video.mp4" else "image/png")


def _json(payload: Any) -> Response[bytes]:
    return Response(msgspec.json.encode(payload), status_code=200, media_type="application/json")


def _decoded(raw: bytes) -> Any:
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return raw.decode("utf-8", "replace")


def _page(value: str | None, name: str, default: int) -> int:
    if value is None:
        return default
    if not value.isdigit() or not 1 <= int(value) <= 500:
        raise invalid(name, f"The parameter {name} must be an integer within [1, 500].")
    return int(value)
