"""A simulator of useapi.net's Dreamina API v1, written from its docs alone.

Serves the real upstream's paths (`/v1/dreamina/...`) so that only the host changes:
accounts, raw-byte asset uploads, `POST /videos` (JSON or multipart) with the doc's
validation, `GET /videos/{jobid}`, the scheduler and `replyUrl` callbacks. Jobs finish
`job_seconds` after creation with a real tiny MP4 served from `/_sim/files/`.
Fault switches and the control routes come from `providers.simkit`.

`forecastCost` is invented (the real formula is unknown): credits per second by model
(seedance-2.0: 25, 2.0-fast: 15, 2.0-mini: 10, 1.5-pro: 20, 1.0-pro: 20, 1.0-mini: 10,
1.0-fast: 10, sora2: 30) x seconds x (720p: 1, 1080p: 2, 4k: 4), so seedance-2.0 5 s 720p
costs the doc's 125. It is deducted from the account's credits at submit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import httpx
import msgspec
from litestar import Litestar, Request, Response, Router, delete, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import ClientException
from litestar.middleware import DefineMiddleware
from litestar.params import FromPath, FromQuery

from providers.simkit import FaultBox, FaultMiddleware, control_router, sample
from providers.useapi.sim.assets import asset_json, upload
from providers.useapi.sim.models import UseapiError, bad
from providers.useapi.sim.replies import Replier
from providers.useapi.sim.rules import plan_video
from providers.useapi.sim.state import SimAccount, SimConfig, SimState, SubmitRecord, iso

__all__ = ["SimAccount", "SimConfig", "create_app"]

_encode = msgspec.json.Encoder().encode
_FAULT_TEXT = {
    401: "Unauthorized",
    402: "Account has no subscription or subscription expired",
    429: "All accounts at capacity",
    596: "Session expired",
}
# A proxy-style page: answers 200 but is not JSON (`faults.malformed_count`).
MALFORMED_BODY = b"<!DOCTYPE html><html><head><title>api.useapi.net</title></head><body>Worker exceeded resource limits</body></html>"
MAX_BODY = 64 * 1024 * 1024  # above the largest asset limit (video, 50 MB) so those get useapi's 400
FILES = {"video.mp4": "video/mp4", "cover.png": "image/png"}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(content=_encode(body), status_code=status, media_type="application/json", headers=headers)


def _error(exc: UseapiError) -> Response[bytes]:
    return _json(exc.body(), exc.status)


def _fault_text(status: int) -> str:
    if status in _FAULT_TEXT:
        return _FAULT_TEXT[status]
    if status >= 500:
        return "Internal Server Error"
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def _fields(request: Request) -> tuple[dict[str, Any], Any]:
    """The body's fields (JSON object or form) and what to record of it."""
    raw = await request.body()
    mime = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if mime in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            form = await request.form()
        except ClientException:  # a broken form body or a missing boundary
            raise bad(f"Request body is not valid {mime}") from None
        fields: dict[str, Any] = dict(form.multi_items())  # a repeated field: the last one wins
        recorded = {k: (f"<file {v.filename}>" if isinstance(v, UploadFile) else v) for k, v in fields.items()}
        for name, value in fields.items():
            if isinstance(value, UploadFile):
                raise bad(f"Parameter {name} must be a text field, not a file")
        return fields, recorded
    try:
        decoded = msgspec.json.decode(raw) if raw else {}
    except msgspec.DecodeError:
        raise bad("Request body is not valid JSON") from None
    if not isinstance(decoded, dict):
        raise bad("Request body must be a JSON object")
    return decoded, decoded


def with_capacity(config: SimConfig, capacity: int) -> SimConfig:
    """`config` with every account's `maxJobs` at `capacity` (useapi allows 1-50)."""
    accounts = [msgspec.structs.replace(a, max_jobs=max(1, min(50, capacity))) for a in config.accounts]
    return msgspec.structs.replace(config, accounts=accounts)


def create_app(
    config: SimConfig | None = None,
    *,
    clock: Callable[[], float] = time.time,
    reply_transport: httpx.AsyncBaseTransport | None = None,
) -> Litestar:
    """The simulator app. `reply_transport` routes `replyUrl` callbacks (tests: an ASGI transport)."""
    config = config or SimConfig()
    box = FaultBox(msgspec.structs.replace(config.faults))
    state = SimState(config, clock)
    replier = Replier(state, reply_transport)

    def authorized(request: Request) -> bool:
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        token = token.strip()
        return scheme.lower() == "bearer" and bool(token) and (config.tokens is None or token in config.tokens)

    def fault(status: int) -> Response[bytes]:
        return _json({"error": _fault_text(status)}, status, box.fault_headers(status))

    def malformed() -> Response[bytes]:
        return Response(content=MALFORMED_BODY, status_code=200, media_type="text/html")

    async def require_token(request: Request) -> Response[bytes] | None:
        return None if authorized(request) else _json({"error": "Unauthorized"}, 401)

    # -- accounts -----------------------------------------------------------

    @post("/accounts", status_code=200)
    async def add_account(request: Request) -> Response[bytes]:
        fields, _ = await _fields(request)
        return _json(state.account_json(state.add_account(fields)))

    @get("/accounts")
    async def list_accounts() -> Response[bytes]:
        return _json({a.account: state.account_json(a) for a in state.accounts.values()})

    @get("/accounts/{account:str}")
    async def get_account(account: FromPath[str]) -> Response[bytes]:
        return _json(state.account_json(state.account(account)))

    @delete("/accounts/{account:str}", status_code=204)
    async def delete_account(account: FromPath[str]) -> None:
        state.delete_account(account)

    # -- assets -------------------------------------------------------------

    @post("/assets/{account:str}", status_code=200)
    async def upload_asset(request: Request, account: FromPath[str]) -> Response[bytes]:
        if status := box.take("upload"):
            return fault(status)
        owner = state.account(account)
        if owner.session_expired or box.faults.session_expired:
            raise UseapiError(596, "Session expired")
        ref = upload(owner.account, request.headers.get("content-type"), await request.body(), state.rng)
        return _json(asset_json(ref))

    # -- videos -------------------------------------------------------------

    @post("/videos", status_code=200)
    async def create_video(request: Request) -> Response[bytes]:
        """Every submit is recorded for `/_sim/jobs`, whatever it is answered."""
        try:
            fields, recorded = await _fields(request)
            unreadable = None
        except UseapiError as exc:
            fields, recorded, unreadable = {}, _recordable(await request.body()), exc
        record = SubmitRecord(
            seq=len(state.submits) + 1,
            received=iso(clock()),
            content_type=request.headers.get("content-type"),
            body=recorded,
        )
        state.submits.append(record)
        try:
            response = await submit(request, record, fields, unreadable)
        except UseapiError as exc:
            response = _error(exc)
        record.status = response.status_code or 200
        if record.status >= 400:
            record.error = msgspec.json.decode(response.content).get("error")
        return response

    async def submit(request: Request, record: SubmitRecord, fields: dict[str, Any], unreadable: UseapiError | None) -> Response[bytes]:
        if (denied := await require_token(request)) is not None:
            return denied
        if status := box.take("submit"):
            return fault(status)
        if unreadable is not None:
            raise unreadable
        plan = plan_video(fields, state.known_models())
        job = state.create_job(plan, box.faults, _base_url(request))
        record.jobid = job.jobid
        replier.submitted(job)
        if box.take_counter("malformed_count"):
            return malformed()  # the job exists; only the answer is garbled
        return _json(state.record(job, _base_url(request)))

    @get("/videos/{jobid:str}")
    async def get_video(request: Request, jobid: FromPath[str]) -> Response[bytes]:
        if status := box.take("poll"):
            return fault(status)
        job = state.job(jobid)
        replier.observe(job)
        if box.take_counter("malformed_count"):
            return malformed()
        return _json(state.record(job, _base_url(request)))

    # -- scheduler ------------------------------------------------------------

    @get("/scheduler")
    async def scheduler() -> Response[bytes]:
        return _json(state.scheduler())

    @delete("/scheduler/{jobid:str}", status_code=204)
    async def cancel(jobid: FromPath[str]) -> None:
        replier.observe(state.cancel(jobid))

    # -- the simulator's own routes ---------------------------------------------

    @get("/files/{name:str}")
    async def files(name: FromPath[str], job: FromQuery[str] = "") -> Response[bytes]:
        """The result's "CDN": the bundled sample MP4 and cover, once the job completed."""
        found = state.jobs.get(job)
        if name not in FILES or found is None or found.status(clock()) != "completed":
            return _json({"error": "Not found"}, 404)
        return Response(content=sample(name), media_type=FILES[name])  # type: ignore[arg-type]

    @get("/replies", sync_to_thread=False)
    def replies() -> list[Any]:
        return list(state.replies)

    def reset() -> None:
        replier.cancel_all()
        state.reset()

    guarded = Router(
        path="/v1/dreamina",
        route_handlers=[
            add_account,
            list_accounts,
            get_account,
            delete_account,
            upload_asset,
            get_video,
            scheduler,
            cancel,
        ],
        before_request=require_token,
    )
    submits = Router(path="/v1/dreamina", route_handlers=[create_video])
    own = Router(path="/_sim", route_handlers=[files, replies], include_in_schema=False)
    app = Litestar(
        route_handlers=[guarded, submits, own, control_router(box, lambda: list(state.submits), reset, state.release)],
        exception_handlers={UseapiError: lambda _request, exc: _error(exc)},
        middleware=[DefineMiddleware(FaultMiddleware, box=box)],
        on_shutdown=[replier.aclose],
        openapi_config=None,
        request_max_body_size=MAX_BODY,
    )
    app.state.sim = state
    app.state.faults = box
    app.state.replier = replier
    return app


def _recordable(raw: bytes) -> Any:
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return raw.decode("utf-8", "replace")
