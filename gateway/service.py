"""The video service: everything the API controllers call. No HTTP framework here.

Collaborators come in typed (the engine through `JobDriver`, the rest as the
gateway's own classes); the service reads the current `Runtime` for every request, so
a config reload applies from the next request on.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal, NoReturn, Protocol

import httpx
import msgspec
import structlog

from gateway.auth import Caller, KeyRing
from gateway.errors import BadRequest, Conflict, Forbidden, InvalidRequest, NotFound, RangeNotSatisfiable, Unserviceable, UnsupportedOperation, UpstreamFailed
from gateway.events import EventHub, JobNotifier
from gateway.forms import FilePart
from gateway.health import HealthBoard, HealthState
from gateway.jobs import lifecycle as lc
from gateway.jobs.model import FileRecord, Job, WebhookDelivery
from gateway.jobs.request import end_user_of
from gateway.jobs.slots import PoolUsage
from gateway.jobs.store import Lease, StaleJob, Store
from gateway.jobs.writer import CreateWriter
from gateway.media import MediaLoader, SignedMediaUrls
from gateway.metrics import NO_METRICS, Metrics
from gateway.outputs import OutputStorage
from gateway.ranges import ByteRange, Unsatisfiable, parse_range
from gateway.routing import RouteContext, route
from gateway.runtime import ProviderRuntime, Runtime
from gateway.schema import CreateVideoBody, MediaObject, MediaValue, build_request
from gateway.settings import Settings
from gateway.stats import GroupBy, GroupStats, compute, verdicts
from gateway.urlguard import UrlGuard, UrlNotAllowed
from gateway.webhooks import WebhookDispatcher
from providers.base import JobStatus, MediaKind, UpstreamError, UpstreamJob, map_media, media_items
from providers.capabilities import ModelCaps, Reason

log = structlog.get_logger("vidgate.service")

Variant = Literal["video", "thumbnail", "last_frame"]
_CONTENT_TYPES = {"video": "video/mp4", "thumbnail": "image/png", "last_frame": "image/png"}
RETRY_COUNT_HEADER = "x-stainless-retry-count"
RETRY_DEDUP_SECONDS = 600.0  # how far back an automatic retry without a key is matched to its first try
STORE_CHECK_SECONDS = 2.0  # an event stream re-reads the store this often when nothing was published here
MAX_IDEMPOTENCY_KEY = 255  # characters of an Idempotency-Key (printable ASCII)
DELETE_WAIT_SECONDS = 30.0  # how long a delete waits for a cancel held up by an in-flight submit
ALL_TENANTS = "*"
FILTER_SCAN_JOBS = 2000  # how deep a rule / arm filter reads a tenant's videos for one page

# OpenAI Videos operations that no provider vidgate knows offers: what each one is, for the 400.
UnsupportedOp = Literal["remix", "edits", "extensions", "characters"]
UNSUPPORTED_OPERATIONS: dict[str, str] = {
    "remix": "remixing an existing video (POST /v1/videos/{video_id}/remix)",
    "edits": "editing a video (POST /v1/videos/edits)",
    "extensions": "extending a video (POST /v1/videos/extensions)",
    "characters": "characters (POST /v1/videos/characters, GET /v1/videos/characters/{character_id})",
}


def new_video_id() -> str:
    return "video_" + secrets.token_hex(24)


def new_token() -> str:
    return secrets.token_urlsafe(24)


class JobDriver(Protocol):
    """What the service asks of the job engine (`gateway.jobs.engine.JobEngine`)."""

    def adopt(self, job: Job) -> None: ...
    def holds(self, job_id: str) -> bool: ...
    async def cancel(self, job_id: str) -> Job | None: ...
    def callback(self, job_id: str, upstream_id: str | None) -> bool: ...
    def reveal(self, job: Job, upstream_id: str) -> None: ...
    def new_lease(self) -> Lease: ...
    def facts(self) -> lc.Facts: ...
    def usage(self) -> dict[str, PoolUsage]: ...


class RuntimeSource(Protocol):
    @property
    def current(self) -> Runtime: ...


@dataclass(frozen=True)
class ServedModel:
    name: str
    providers: list[tuple[str, str, ModelCaps]]  # (provider, its model id, capabilities)


@dataclass(frozen=True)
class ProviderState:
    name: str
    type: str
    enabled: bool
    health: HealthState
    usage: PoolUsage | None
    models: list[str]


@dataclass(frozen=True)
class Content:
    """A video's bytes on their way out: the whole of them, or the byte range asked for."""

    content_type: str
    chunks: AsyncIterator[bytes]
    size: int | None = None  # the whole object's, when known (vidgate's own copy)
    range: ByteRange | None = None  # the part these chunks are; None = everything


@dataclass(frozen=True)
class _Pending:
    """A caller's media value while the mode is decided, before anything is stored."""

    value: MediaValue
    kind: MediaKind
    path: str


class VideoService:
    def __init__(
        self,
        *,
        runtime: RuntimeSource,
        store: Store,
        engine: JobDriver,
        media: MediaLoader,
        webhooks: WebhookDispatcher,
        notifier: JobNotifier,
        hub: EventHub,
        health: HealthBoard,
        guard: UrlGuard,
        content_http: httpx.AsyncClient,
        clock: Callable[[], float],
        output_storage: OutputStorage | None = None,
        media_urls: SignedMediaUrls | None = None,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.runtime = runtime
        self.store = store
        self.engine = engine
        self.media = media
        self.webhooks = webhooks
        self.notifier = notifier
        self.hub = hub
        self.health = health
        self.guard = guard
        self.content_http = content_http
        self.clock = clock
        self.output_storage = output_storage  # where finished outputs are copied (gateway.outputs), or None
        self.media_urls = media_urls  # None: upstreams can't reach vidgate, so uploads can't be served to them
        self.metrics = metrics
        self._creates = CreateWriter(store)

    @property
    def settings(self) -> Settings:
        return self.runtime.current.settings

    def authenticate(self, headers: Mapping[str, str]) -> Caller:
        return self.runtime.current.keys.authenticate(headers)

    @property
    def keys(self) -> KeyRing:
        """The keys configured now (a console session is checked against them on every request)."""
        return self.runtime.current.keys

    @staticmethod
    def idempotency_key(headers: Mapping[str, str]) -> str | None:
        """The request's `Idempotency-Key`: 1-255 printable ASCII characters, or None when absent."""
        key = headers.get("idempotency-key")
        if key is not None:
            check_idempotency_key(key)
        return key

    # -- create ----------------------------------------------------------------

    async def create(
        self,
        caller: Caller,
        body: CreateVideoBody,
        *,
        fingerprint: str,
        idempotency_key: str | None,
        headers: Mapping[str, str] | None = None,
        uploads: Mapping[str, FilePart] | None = None,
    ) -> tuple[Job, bool]:
        """Validate, route and persist a job; returns it and whether it is new.

        With an `Idempotency-Key`, the tenant's job made under that key comes back
        (409 if the body differs). Without one, a request the client marks as an
        automatic retry (`X-Stainless-Retry-Count`, sent by the openai SDKs) gets
        the identical request's job from the last few minutes, if there is one:
        the first answer was lost, and a second paid render must not follow.

        `uploads` are a form's file parts, named in `body` by placeholder file ids. They are
        stored only once the request is known to be well-formed, and every file this call
        stored is removed again if it fails after that, so a rejected create stores nothing.
        """
        rt = self.runtime.current
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key)
            existing = await self.store.find_idempotent(caller.tenant, idempotency_key)
            if existing is not None:
                return self._same_request(existing, fingerprint), False
        elif _is_retry(headers):
            earlier = await self.store.find_recent_duplicate(caller.tenant, fingerprint, self.clock() - RETRY_DEDUP_SECONDS)
            if earlier is not None:
                log.info("job.retry_deduplicated", job_id=earlier.id)
                return earlier, False
        for name in [body.provider] if body.provider else []:
            rt.keys.require_provider(caller, name)
        for name in body.routing.order or [] if body.routing else []:
            rt.keys.require_provider(caller, name)
        if body.webhook_url is not None:
            if not self.webhooks.can_sign(caller.key_name, caller.tenant):
                raise InvalidRequest("webhook_url needs a signing secret: [webhooks] secret, or an endpoint for this key or tenant", param="webhook_url")
            await self.guard.check(body.webhook_url, field="webhook_url")

        metadata = dict(body.metadata or {})
        # The mode is decided once, from the caller's values, before anything is stored.
        pending = build_request(
            body,
            default_model=rt.settings.jobs.default_model,
            media=lambda value, kind, path: _Pending(value, kind, path),
            end_user=end_user_of(caller.tenant, metadata),
        )
        named: set[str] = {m.value.file_id for _, _, m in media_items(pending) if isinstance(m.value, MediaObject) and m.value.file_id}  # named by id
        stored: list[str] = []  # files this call stored: removed again if it fails
        try:
            refs = []
            for _, _, p in media_items(pending):
                ref = await self.media.load(p.value, p.kind, p.path, caller.tenant, uploads=uploads)
                if ref.file_id not in named:
                    stored.append(ref.file_id)
                refs.append(ref)
            request = map_media(pending, refs)
            video_id = new_video_id()
            now = self.clock()
            plan = route(
                request,
                rt.routing,
                rt.catalog,
                media_urls=self.media_urls is not None,
                rules=rt.settings.routes,
                context=RouteContext(
                    key_name=caller.key_name,
                    tenant=caller.tenant,
                    headers={k.lower(): v for k, v in (headers or {}).items()},
                    metadata=metadata,
                    request_key=video_id,
                ),
                unavailable=self.health.unavailable(now),
                pin=body.provider,
                order=body.routing.order if body.routing else None,
                allow_fallbacks=body.routing.allow_fallbacks if body.routing else True,
            )
            if not plan.trace.usable:
                raise _unserviceable(request.model, plan.reasons)

            job = Job(
                id=video_id,
                tenant=caller.tenant,
                key_name=caller.key_name,
                created_at=now,
                updated_at=now,
                status=JobStatus.QUEUED,
                model=request.model,
                mode=request.mode,
                request=request,
                prompt=request.prompt,
                seconds=str(request.seconds) if request.seconds is not None else None,
                ratio=request.ratio,
                resolution=request.resolution,
                metadata=metadata,
                routing=plan.trace,
                queued_deadline_seconds=plan.deadline_seconds,
                webhook_url=body.webhook_url,
                idempotency_key=idempotency_key,
                request_hash=fingerprint,
                callback_token=new_token(),
            )
            saved = await self._creates.create(job, self.engine.new_lease())  # group-committed with other creates
            if saved.id != job.id:  # lost an idempotency race to an identical request (here or on another replica)
                await self._discard(stored)
                stored.clear()
                return self._same_request(saved, fingerprint), False
        except BaseException:
            await self._discard(stored)
            raise
        self.engine.adopt(job)  # at once: held by this process, nobody else would drive it
        log.info("job.created", job_id=job.id, model=job.model, mode=job.mode, candidates=[c.provider for c in plan.trace.usable])
        self.metrics.job_created(job, plan.trace.usable[0].provider)
        return saved, True

    async def _discard(self, file_ids: list[str]) -> None:
        """Remove files a failed create stored (nothing refers to them)."""
        for file_id in file_ids:
            try:
                await self.store.delete_file(file_id)
            except Exception:  # the request fails with its own error; a leftover file is only junk
                log.warning("files.discard_failed", file_id=file_id, exc_info=True)

    def _same_request(self, job: Job, fingerprint: str) -> Job:
        if job.request_hash != fingerprint:
            raise Conflict("Idempotency-Key was already used with a different request body", param="Idempotency-Key", code="idempotency_key_reused")
        return job

    # -- read / list / watch -----------------------------------------------------

    async def get(self, caller: Caller, video_id: str) -> Job:
        job = await self.store.get_job(video_id, caller.tenant)
        if job is None:
            raise NotFound(f"No video with id {video_id!r}", param="video_id")
        return job

    async def list_videos(
        self,
        caller: Caller,
        *,
        after: str | None = None,
        limit: int = 20,
        order: Literal["asc", "desc"] = "desc",
        status: str | None = None,
        provider: str | None = None,
        model: str | None = None,
    ) -> tuple[list[Job], bool]:
        try:
            return await self.store.list_jobs(caller.tenant, after=after, limit=limit, order=order, status=status, provider=provider, model=model)
        except KeyError as exc:
            raise NotFound(f"No video with id {after!r} to page after", param="after") from exc

    async def find_videos(
        self,
        caller: Caller,
        *,
        rule: str | None = None,
        arm: str | None = None,
        after: str | None = None,
        limit: int = 20,
        status: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        scan: int = FILTER_SCAN_JOBS,
    ) -> tuple[list[Job], bool]:
        """A page of videos, newest first, like `list_videos`, also filtered by the routing rule
        and arm that chose them. Those two are not store columns: the tenant's pages are read
        and filtered here, at most `scan` jobs deep (then the page says more may follow)."""
        if rule is None and arm is None:
            return await self.list_videos(caller, after=after, limit=limit, status=status, provider=provider, model=model)
        found: list[Job] = []
        cursor, scanned = after, 0
        while scanned < scan:
            page, more = await self.list_videos(caller, after=cursor, limit=100, status=status, provider=provider, model=model)
            scanned += len(page)
            for job in page:
                if (rule is None or job.routing.rule == rule) and (arm is None or job.routing.arm == arm):
                    found.append(job)
                    if len(found) > limit:
                        return found[:limit], True
            if not more or not page:
                return found, False
            cursor = page[-1].id
        return found, True

    async def watch(self, caller: Caller, video_id: str) -> AsyncGenerator[Job, None]:
        """The job now, then each change until it ends. Changes made here arrive at once;
        another replica's arrive through a store re-read every few seconds."""
        job = await self.get(caller, video_id)
        queue = self.hub.subscribe(job.id)

        async def changes() -> AsyncGenerator[Job, None]:
            try:
                current = job
                yield current
                while not current.status.terminal:
                    try:
                        current = await asyncio.wait_for(queue.get(), timeout=STORE_CHECK_SECONDS)
                    except TimeoutError:
                        stored = await self.store.get_job(job.id, caller.tenant)
                        if stored is None:  # deleted meanwhile
                            return
                        if stored.version == current.version:
                            continue
                        current = stored
                    yield current
            finally:
                self.hub.unsubscribe(job.id, queue)

        return changes()

    # -- cancel / delete ------------------------------------------------------------

    async def cancel(self, caller: Caller, video_id: str) -> Job:
        """Cancel an unfinished job, upstream too where the upstream can; the record stays."""
        job = await self.get(caller, video_id)
        if job.status.terminal:
            return job
        cancelled = await self.engine.cancel(job.id)
        return cancelled if cancelled is not None else await self._cancel_elsewhere(job)

    async def delete(self, caller: Caller, video_id: str) -> Job:
        """Delete a job's record; an unfinished one is cancelled first (upstream too, where
        the upstream can). Its webhook deliveries stay, so `video.cancelled` still goes out.

        A cancel that lands while the paid submit is in flight takes effect when the submit
        answers (that answer names the upstream job to cancel): the delete waits for it, up
        to DELETE_WAIT_SECONDS, rather than drop the record that says what to cancel."""
        job = await self.get(caller, video_id)
        if not job.status.terminal:
            changes = await self.watch(caller, video_id)  # subscribed before the cancel, so its end is not missed
            try:
                job = await self.cancel(caller, video_id)
                async with asyncio.timeout(DELETE_WAIT_SECONDS):
                    async for job in changes:
                        if job.status.terminal:
                            break
            except TimeoutError:
                raise Conflict(
                    f"Video {video_id} is still being submitted upstream; it is cancelled when the submit answers. Delete it again then.",
                    param="video_id",
                    code="cancel_pending",
                ) from None
            finally:
                await changes.aclose()
        await self.store.delete_job(job.id, caller.tenant)
        return job

    def unsupported(self, caller: Caller, operation: UnsupportedOp) -> NoReturn:
        """An OpenAI Videos operation vidgate can't offer: say which, and that no configured provider has it."""
        names = ", ".join(self.runtime.current.providers) or "none"
        raise UnsupportedOperation(
            f"No configured provider ({names}) offers {UNSUPPORTED_OPERATIONS[operation]}; vidgate supports creating videos (POST /v1/videos)",
            code="unsupported_operation",
        )

    async def _cancel_elsewhere(self, job: Job) -> Job:
        """Cancel a job another process drives (or nobody does yet), through the same
        lifecycle, with a version-checked write: its driver sees the change at its next write."""
        for _ in range(5):
            step = lc.decide(job, lc.CancelRequested(), self.engine.facts())
            for action in step.actions:
                if isinstance(action, lc.CancelUpstream):
                    await self._cancel_upstream(action.provider, action.upstream_id)
            deliveries = self.notifier.deliveries(step.job) if step.job.status.terminal else ()
            try:
                saved = await self.store.update_job(step.job, deliveries=deliveries)
            except StaleJob:
                fresh = await self.store.get_job(job.id)
                if fresh is None or fresh.status.terminal:
                    return fresh or job
                job = fresh
                continue
            self.metrics.job_written(job, saved)
            if saved.status.terminal:
                self.notifier.published(saved, "cancelled")
            return saved
        return job

    async def _cancel_upstream(self, provider: str, upstream_id: str) -> None:
        rt = self.runtime.current.provider(provider)
        if rt is None:
            return
        try:
            await rt.client.cancel(upstream_id)
        except UpstreamError as exc:
            log.warning("job.cancel_upstream_failed", provider=provider, error=str(exc))

    # -- callbacks ---------------------------------------------------------------

    async def callback(self, token: str, body: bytes) -> bool:
        """An upstream said something changed. Its body is not trusted: at most it names the
        upstream job, which is then fetched from the upstream with our own credentials."""
        job = await self.store.get_by_callback_token(token)
        if job is None:
            return False
        att = job.attempt
        rt = self.runtime.current.provider(att.provider) if att is not None else None
        upstream_id = rt.adapter.parse_callback(body) if rt is not None else None
        if not self.engine.callback(job.id, upstream_id) and job.status.terminal and upstream_id:
            self.engine.reveal(job, upstream_id)
        return True

    # -- content -------------------------------------------------------------------

    @asynccontextmanager
    async def content(self, caller: Caller, video_id: str, variant: Variant, *, byte_range: str | None = None) -> AsyncIterator[Content]:
        """The bytes of a finished video. `byte_range` (a `Range` header) is honoured for vidgate's
        own copy, so a browser can seek; an upstream link is streamed whole."""
        job = await self.get(caller, video_id)
        if job.status is not JobStatus.COMPLETED or job.result is None:
            raise NotFound(f"Video {video_id} has no content yet (status {job.status.value})", param="video_id", code="content_not_ready")
        if job.expires_at is not None and self.clock() > job.expires_at:
            raise NotFound(f"The content of video {video_id} has expired", param="video_id", code="content_expired")
        copy = job.outputs.get(variant)
        if copy is not None and self.output_storage is not None:
            try:
                stored = await self.output_storage.open(copy.key)
                part = _range_of(byte_range, stored.size)
                if part is not None:
                    await stored.aclose()
                    stored = await self.output_storage.open(copy.key, start=part.start, length=part.length)
            except KeyError:  # swept, or the volume was replaced: fall back to the upstream link
                log.warning("content.copy_missing", job_id=job.id, key=copy.key)
            except RangeNotSatisfiable:
                await stored.aclose()
                raise
            else:
                async with stored:
                    yield Content(copy.content_type, stored, size=stored.size, range=part)
                return
        url = {"video": job.result.video_url, "thumbnail": job.result.thumbnail_url, "last_frame": job.result.last_frame_url}[variant]
        attempt = job.attempt
        if url is None and variant == "video" and attempt is not None and attempt.upstream_id:
            rt = self.runtime.current.provider(attempt.provider)
            if rt is not None:
                async with self._upstream_content(rt, attempt.upstream_id) as (content_type, chunks):
                    yield Content(content_type, chunks)
                return
        if url is None:
            raise NotFound(f"Video {video_id} has no {variant}", param="variant")
        # every redirect hop is checked too: an upstream link must not bounce us onto a private address
        try:
            response = await self.guard.open(self.content_http, "GET", url, field="result")
        except UrlNotAllowed as exc:  # the upstream handed over a URL we won't fetch: its fault, not the caller's
            log.warning("content.url_refused", job_id=job.id, variant=variant, reason=exc.message)
            raise UpstreamFailed(f"The upstream's {variant} URL can't be fetched: {exc.message}", param=None, code="upstream_url_refused") from None
        except httpx.HTTPError as exc:
            raise UpstreamFailed(f"The upstream's {variant} could not be fetched ({type(exc).__name__})", param=None, code="content_unavailable") from None
        try:
            if not response.is_success:
                raise NotFound(f"The upstream no longer serves this {variant} (HTTP {response.status_code})", param="variant", code="content_unavailable")
            yield Content(response.headers.get("content-type", _CONTENT_TYPES[variant]), response.aiter_bytes())
        finally:
            await response.aclose()

    @asynccontextmanager
    async def _upstream_content(self, rt: ProviderRuntime, upstream_id: str) -> AsyncIterator[tuple[str, AsyncIterator[bytes]]]:
        placeholder = UpstreamJob(upstream_id=upstream_id, status=JobStatus.COMPLETED, upstream_status="completed")
        try:
            async with rt.client.stream_content(upstream_id, placeholder) as response:
                yield response.headers.get("content-type", "video/mp4"), response.aiter_bytes()
        except UpstreamError as exc:
            raise NotFound(f"The upstream no longer serves this video: {exc.info.message}", param="video_id", code="content_unavailable") from exc

    async def signed_media(self, token: str) -> tuple[FileRecord, AsyncIterator[bytes]]:
        """An upload served to an upstream at its signed URL (`SignedMediaUrls`)."""
        file_id = self.media_urls.file_of(token, self.clock()) if self.media_urls is not None else None
        record = await self.store.get_file(file_id) if file_id else None
        if record is None:
            raise NotFound("No such media, or its link expired", param="token")
        return record, self.store.stream_file(record.id)

    # -- files -----------------------------------------------------------------------

    async def upload_file(self, caller: Caller, upload: FilePart, *, purpose: str) -> FileRecord:
        return await self.media.save_upload(caller.tenant, upload, purpose=purpose)

    async def get_file(self, caller: Caller, file_id: str) -> FileRecord:
        record = await self.store.get_file(file_id, caller.tenant)
        if record is None:
            raise NotFound(f"No file with id {file_id!r}", param="file_id")
        return record

    # -- webhooks ----------------------------------------------------------------------

    async def deliveries(self, caller: Caller, video_id: str) -> list[WebhookDelivery]:
        job = await self.get(caller, video_id)
        return [d for d in await self.store.deliveries(job.id) if d.tenant == caller.tenant]

    async def redeliver(self, caller: Caller, delivery_id: str) -> WebhookDelivery:
        return await self.webhooks.redeliver(delivery_id, caller.tenant)

    # -- catalog, providers, stats, readiness ------------------------------------------------

    def models(self, caller: Caller) -> list[ServedModel]:
        """Every logical model and who serves it: exactly what routing resolves (gateway.catalog)."""
        rt = self.runtime.current
        out = []
        for name in rt.catalog.model_names():
            served = [
                (s.provider, s.model_id, s.caps)
                for s in rt.catalog.serving(name)
                if s.caps is not None and caller.may_use(s.provider) and rt.providers[s.provider].settings.enabled
            ]
            if served:
                out.append(ServedModel(name, served))
        return out

    def providers(self) -> list[ProviderState]:
        rt = self.runtime.current
        usage = self.engine.usage()
        now = self.clock()
        return [
            ProviderState(
                name=name,
                type=p.descriptor.type,
                enabled=p.settings.enabled,
                health=self.health[name].state(now),
                usage=usage.get(name),
                models=sorted(p.descriptor.models),
            )
            for name, p in rt.providers.items()
        ]

    async def stats(self, caller: Caller, *, since: float | None, group_by: GroupBy, tenant: str | None) -> tuple[str, float, float, list[GroupStats]]:
        now = self.clock()
        if since is None:
            since = now - 24 * 3600
        elif since < 0:  # documented as minimum 0, which Litestar does not enforce on an optional parameter
            raise BadRequest(
                f"Invalid query parameter 'since': '{since:g}' (expected a number of at least 0: a unix time in seconds)",
                param="since",
                code="invalid_parameter",
            )
        scope = tenant or caller.tenant
        if scope != caller.tenant and not caller.admin:
            raise Forbidden("Only an admin key may read another tenant's stats", param="tenant")
        tenant_filter = None if scope == ALL_TENANTS else scope
        jobs = await self.store.jobs_since(tenant_filter, since)
        judged = verdicts(await self.store.comparisons_since(tenant_filter, since), {job.id: job for job in jobs})
        return scope, since, now, compute(jobs, group_by, judged)

    def metrics_exposition(self, caller: Caller) -> tuple[bytes, str]:
        """The Prometheus text of this process (`[metrics] expose = "admin"`): admin keys only."""
        if not caller.admin:
            raise Forbidden("Only an admin key may read /metrics", code="admin_key_required")
        return self.metrics.exposition()

    async def ready(self) -> tuple[bool, bool, int]:
        """(ready, the store answers, providers configured)."""
        store_ok = await self.store.ping()
        count = len(self.runtime.current.providers)
        return store_ok and count > 0, store_ok, count


def _unserviceable(model: str, reasons: dict[str, list[Reason]]) -> Unserviceable:
    if not reasons:
        return Unserviceable(f"No configured provider serves model {model!r}", param="model")
    parts = [f"{name}: " + "; ".join(f"{r.field}: {r.message}" for r in why) for name, why in reasons.items()]
    # The first provider's first reason is the one its capability table ranks first.
    param = next(iter(reasons.values()))[0].field
    return Unserviceable(
        "No configured provider can serve this request. " + " | ".join(parts),
        param=param,
        details={name: [msgspec.to_builtins(r) for r in why] for name, why in reasons.items()},
    )


def _range_of(header: str | None, size: int) -> ByteRange | None:
    try:
        return parse_range(header, size)
    except Unsatisfiable as exc:
        raise RangeNotSatisfiable(
            f"The range {header!r} is past the end of the content", param="Range", headers={"Content-Range": f"bytes */{exc.size}"}
        ) from exc


def check_idempotency_key(key: str) -> None:
    """A key is stored with its job: printable ASCII, at most MAX_IDEMPOTENCY_KEY characters."""
    if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY or not all(" " <= c <= "~" for c in key):
        raise BadRequest(
            f"Invalid header parameter 'Idempotency-Key' (expected 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters)",
            param="Idempotency-Key",
            code="invalid_parameter",
        )


def _is_retry(headers: Mapping[str, str] | None) -> bool:
    value = next((v for k, v in (headers or {}).items() if k.lower() == RETRY_COUNT_HEADER), "0").strip()
    return value.isascii() and value.isdigit() and len(value) <= 6 and int(value) > 0


def fingerprint_of(parts: list[tuple[str, object]]) -> str:
    """A canonical hash of a request (form items or JSON builtins) for Idempotency-Key."""
    return hashlib.sha256(msgspec.json.encode(parts, order="sorted")).hexdigest()
