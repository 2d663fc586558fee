"""The video service: everything the API controllers call. No HTTP framework here.

Collaborators come in typed (the engine through `JobDriver`, the rest as the
gateway's own classes); the service reads the current `Runtime` for every request, so
a config reload applies from the next request on.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx
import msgspec
import structlog

from gateway.auth import Caller
from gateway.errors import BadRequest, Conflict, Forbidden, InvalidRequest, NotFound, Unserviceable, UpstreamFailed
from gateway.events import EventHub, JobNotifier
from gateway.forms import FilePart
from gateway.health import HealthBoard, HealthState
from gateway.jobs import lifecycle as lc
from gateway.jobs.model import FileRecord, Job, WebhookDelivery
from gateway.jobs.request import end_user_of
from gateway.jobs.slots import PoolUsage
from gateway.jobs.store import Lease, StaleJob, Store
from gateway.media import MediaLoader, SignedMediaUrls
from gateway.outputs import OutputStorage
from gateway.routing import RouteContext, route
from gateway.runtime import ProviderRuntime, Runtime
from gateway.schema import CreateVideoBody, MediaObject, MediaValue, build_request
from gateway.settings import Settings
from gateway.stats import GroupBy, GroupStats, compute
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
ALL_TENANTS = "*"
MAX_IDEMPOTENCY_KEY = 255


def new_video_id() -> str:
    return "video_" + secrets.token_hex(24)


def new_token() -> str:
    return secrets.token_urlsafe(24)


class JobDriver(Protocol):
    """What the service asks of the job engine (`gateway.jobs.engine.JobEngine`)."""

    def adopt(self, job: Job, lease_until: float) -> None: ...
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

    @property
    def settings(self) -> Settings:
        return self.runtime.current.settings

    def authenticate(self, headers: Mapping[str, str]) -> Caller:
        return self.runtime.current.keys.authenticate(headers)

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
            lease = self.engine.new_lease()
            saved = await self.store.create_job(job, lease=lease)
            if saved.id != job.id:  # lost an idempotency race to an identical request (here or on another replica)
                await self._discard(stored)
                stored.clear()
                return self._same_request(saved, fingerprint), False
            log.info("job.created", job_id=job.id, model=job.model, mode=job.mode, candidates=[c.provider for c in plan.trace.usable])
        except BaseException:
            await self._discard(stored)
            raise
        self.engine.adopt(job, lease.until)
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

    async def list_videos(self, caller: Caller, **query: Any) -> tuple[list[Job], bool]:
        try:
            return await self.store.list_jobs(caller.tenant, **query)
        except KeyError as exc:
            raise NotFound(f"No video with id {query.get('after')!r} to page after", param="after") from exc

    async def watch(self, caller: Caller, video_id: str) -> AsyncIterator[Job]:
        """The job now, then each change until it ends. Changes made here arrive at once;
        another replica's arrive through a store re-read every few seconds."""
        job = await self.get(caller, video_id)
        queue = self.hub.subscribe(job.id)

        async def changes() -> AsyncIterator[Job]:
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

    async def delete(self, caller: Caller, video_id: str) -> tuple[Job, bool]:
        """Cancel an unfinished job (returns it, False) or delete a finished one (True)."""
        job = await self.get(caller, video_id)
        if not job.status.terminal:
            return await self.cancel(caller, video_id), False
        await self.store.delete_job(job.id, caller.tenant)
        return job, True

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
    async def content(self, caller: Caller, video_id: str, variant: Variant) -> AsyncIterator[tuple[str, AsyncIterator[bytes]]]:
        job = await self.get(caller, video_id)
        if job.status is not JobStatus.COMPLETED or job.result is None:
            raise NotFound(f"Video {video_id} has no content yet (status {job.status.value})", param="video_id", code="content_not_ready")
        if job.expires_at is not None and self.clock() > job.expires_at:
            raise NotFound(f"The content of video {video_id} has expired", param="video_id", code="content_expired")
        copy = job.outputs.get(variant)
        if copy is not None and self.output_storage is not None:
            try:
                stored = await self.output_storage.open(copy.key)
            except KeyError:  # swept, or the volume was replaced: fall back to the upstream link
                log.warning("content.copy_missing", job_id=job.id, key=copy.key)
            else:
                async with stored:
                    yield copy.content_type, stored
                return
        url = {"video": job.result.video_url, "thumbnail": job.result.thumbnail_url, "last_frame": job.result.last_frame_url}[variant]
        attempt = job.attempt
        if url is None and variant == "video" and attempt is not None and attempt.upstream_id:
            rt = self.runtime.current.provider(attempt.provider)
            if rt is not None:
                async with self._upstream_content(rt, attempt.upstream_id) as stream:
                    yield stream
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
            yield response.headers.get("content-type", _CONTENT_TYPES[variant]), response.aiter_bytes()
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
        elif since < 0:
            raise InvalidRequest("since must be a unix time in seconds", param="since")
        scope = tenant or caller.tenant
        if scope != caller.tenant and not caller.admin:
            raise Forbidden("Only an admin key may read another tenant's stats", param="tenant")
        jobs = await self.store.jobs_since(None if scope == ALL_TENANTS else scope, since)
        return scope, since, now, compute(jobs, group_by)

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


def check_idempotency_key(key: str) -> None:
    """A key is stored with its job: printable ASCII, at most MAX_IDEMPOTENCY_KEY characters."""
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not (key.isascii() and key.isprintable()):
        raise BadRequest(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters", param="Idempotency-Key")


def _is_retry(headers: Mapping[str, str] | None) -> bool:
    value = next((v for k, v in (headers or {}).items() if k.lower() == RETRY_COUNT_HEADER), "0").strip()
    return value.isascii() and value.isdigit() and len(value) <= 6 and int(value) > 0


def fingerprint_of(parts: list[tuple[str, Any]]) -> str:
    """A canonical hash of a request (form items or JSON builtins) for Idempotency-Key."""
    return hashlib.sha256(msgspec.json.encode(parts, order="sorted")).hexdigest()
