"""The video service: what the API controllers call. No HTTP framework here."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal

import httpx
import msgspec
import structlog

from gateway.auth import Caller, KeyRing
from gateway.errors import Conflict, InvalidRequest, NotFound, Unserviceable
from gateway.jobs.model import Job, MediaSpec, WebhookDelivery
from gateway.jobs.request import end_user_of, media_slots, replace_media, routing_request, stored_request
from gateway.jobs.runner import JobRunner, ProviderRuntime, new_token
from gateway.jobs.store import Store
from gateway.routing import ModelRoute, ProviderFacts, RouteContext, route
from gateway.schema import CreateVideoBody
from gateway.settings import Settings
from gateway.views import encode_video
from gateway.webhooks import event_id_for, event_payload
from providers.base import JobStatus, UpstreamError, UpstreamJob

log = structlog.get_logger("vidgate.service")

Variant = Literal["video", "thumbnail", "last_frame"]
_CONTENT_TYPES = {"video": "video/mp4", "thumbnail": "image/png", "last_frame": "image/png"}
RETRY_COUNT_HEADER = "x-stainless-retry-count"
RETRY_DEDUP_SECONDS = 600.0  # how far back an automatic retry without a key is matched to its first try
_EVENT_TYPES = {JobStatus.COMPLETED: "video.completed", JobStatus.FAILED: "video.failed", JobStatus.CANCELLED: "video.cancelled"}


def new_video_id() -> str:
    return "video_" + secrets.token_hex(24)


class VideoService:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        keyring: KeyRing,
        providers: dict[str, ProviderRuntime],
        runner: JobRunner,
        media: Any,
        webhooks: Any,
        content_http: httpx.AsyncClient,
        guard: Any,
        clock: Callable[[], float] = time.time,
        output_storage: Any = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.keyring = keyring
        self.providers = providers  # what routing sees; the runner also keeps removed ones
        self.build_runtime: Callable[[str, Any], ProviderRuntime] | None = None  # set by the app, for reloads
        self.runner = runner
        self.media = media
        self.webhooks = webhooks
        self.content_http = content_http
        self.guard = guard
        self.clock = clock
        self.output_storage = output_storage  # where finished outputs are copied (gateway.outputs), or None

    # -- create ----------------------------------------------------------------

    async def create(
        self,
        caller: Caller,
        body: CreateVideoBody,
        *,
        fingerprint: str,
        idempotency_key: str | None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Job, bool]:
        """Validate, route and persist a job; returns it and whether it is new.

        With an `Idempotency-Key`, the tenant's job made under that key comes back
        (409 if the body differs). Without one, a request the client marks as an
        automatic retry (`X-Stainless-Retry-Count`, sent by the openai SDKs) gets
        the identical request's job from the last few minutes, if there is one:
        the first answer was lost, and a second paid render must not follow.
        """
        if idempotency_key is not None:
            existing = await self.store.find_idempotent(caller.tenant, idempotency_key)
            if existing is not None:
                return self._same_request(existing, fingerprint), False
        elif _is_retry(headers):
            since = self.clock() - RETRY_DEDUP_SECONDS
            earlier = await self.store.find_recent_duplicate(caller.tenant, fingerprint, since)
            if earlier is not None:
                log.info("job.retry_deduplicated", job_id=earlier.id)
                return earlier, False
        if body.provider is not None:
            self.keyring.require_provider(caller, body.provider)
        if body.routing and body.routing.order:
            for name in body.routing.order:
                self.keyring.require_provider(caller, name)
        if body.webhook_url is not None:
            if self.webhooks is None or not self.webhooks.can_sign(caller.key_name, caller.tenant):
                raise InvalidRequest(
                    "webhook_url needs a signing secret: [webhooks] secret, or an endpoint for this key or tenant",
                    param="webhook_url",
                )
            await self.guard.check(body.webhook_url, field="webhook_url")

        metadata = dict(body.metadata or {})
        specs: dict[str, MediaSpec] = {}
        for path, kind, value in media_slots(body):
            specs[path] = await self.media.load(value, kind, path, caller.tenant)
        stored_body = replace_media(body, specs)
        request = routing_request(stored_body, specs, default_model=self.settings.jobs.default_model, end_user=end_user_of(caller.tenant, metadata))
        video_id = new_video_id()
        now = self.clock()
        plan = route(
            request,
            self.provider_facts(),
            self.model_routes(),
            rules=self.settings.routes,
            context=RouteContext(
                key_name=caller.key_name,
                tenant=caller.tenant,
                headers={k.lower(): v for k, v in (headers or {}).items()},
                metadata=metadata,
                request_key=video_id,
            ),
            unavailable=self.unavailable(now),
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
            request=stored_request(stored_body, specs),
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
        lease = self.runner.leases.new()
        saved = await self.store.create_job(job, lease=lease)
        if saved.id != job.id:  # lost an idempotency race to an identical request (here or on another replica)
            return self._same_request(saved, fingerprint), False
        log.info("job.created", job_id=job.id, model=job.model, mode=job.mode, candidates=[c.provider for c in plan.trace.usable])
        self.runner.adopt(job.id, lease.until)
        return saved, True

    def _same_request(self, job: Job, fingerprint: str) -> Job:
        if job.request_hash != fingerprint:
            raise Conflict("Idempotency-Key was already used with a different request body", param="Idempotency-Key", code="idempotency_key_reused")
        return job

    def provider_facts(self) -> list[ProviderFacts]:
        return [
            ProviderFacts(
                name=name,
                models=rt.kind.models,
                catalog=rt.kind.catalog,
                regions=rt.pool.regions(),
                enabled=self.settings.providers[name].enabled,
            )
            for name, rt in self.providers.items()
        ]

    def unavailable(self, now: float) -> dict[str, str]:
        """Providers cooling down, with why: routing skips them while others can serve."""
        reasons = {name: rt.health.unavailable(now) for name, rt in self.providers.items()}
        return {name: why for name, why in reasons.items() if why is not None}

    def model_routes(self) -> dict[str, ModelRoute]:
        return {name: ModelRoute(providers=m.providers, order=m.order) for name, m in self.settings.models.items()}

    # -- read / list / delete --------------------------------------------------

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

    async def delete(self, caller: Caller, video_id: str) -> tuple[Job, bool]:
        """Cancel an unfinished job (returns it, False) or delete a finished one (True)."""
        job = await self.get(caller, video_id)
        if not job.status.terminal:
            cancelled = await self.runner.cancel(job.id)
            return cancelled or job, False
        await self.store.delete_job(job.id, caller.tenant)
        return job, True

    async def callback(self, token: str) -> bool:
        """An upstream said something changed: re-fetch (the body is not trusted)."""
        job = await self.store.get_by_callback_token(token)
        if job is None:
            return False
        if not job.status.terminal:
            self.runner.wake(job.id)
        return True

    # -- content ---------------------------------------------------------------

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
            runtime = self.providers.get(attempt.provider)
            if runtime is not None:
                async with self._upstream_content(runtime, attempt.upstream_id) as stream:
                    yield stream
                return
        if url is None:
            raise NotFound(f"Video {video_id} has no {variant}", param="variant")
        # every redirect hop is checked too: an upstream link must not bounce us onto a private address
        response = await self.guard.open(self.content_http, "GET", url, field="result")
        try:
            if not response.is_success:
                raise NotFound(f"The upstream no longer serves this {variant} (HTTP {response.status_code})", param="variant", code="content_unavailable")
            yield response.headers.get("content-type", _CONTENT_TYPES[variant]), response.aiter_bytes()
        finally:
            await response.aclose()

    @asynccontextmanager
    async def _upstream_content(self, runtime: ProviderRuntime, upstream_id: str) -> AsyncIterator[tuple[str, AsyncIterator[bytes]]]:
        placeholder = UpstreamJob(upstream_id=upstream_id, status=JobStatus.COMPLETED, upstream_status="completed")
        try:
            async with runtime.client.stream_content(upstream_id, placeholder) as response:
                yield response.headers.get("content-type", "video/mp4"), response.aiter_bytes()
        except UpstreamError as exc:
            raise NotFound(f"The upstream no longer serves this video: {exc.info.message}", param="video_id", code="content_unavailable") from exc

    # -- terminal hooks ----------------------------------------------------------

    def terminal_deliveries(self, job: Job) -> list[WebhookDelivery]:
        """The webhook deliveries announcing a job's end; the runner stores them with its status."""
        if self.webhooks is None:
            return []
        event_type = _EVENT_TYPES[job.status]
        now = self.clock()
        payload = event_payload(event_id_for(job.id, event_type), event_type, now, msgspec.Raw(encode_video(job)))
        return self.webhooks.deliveries_for(job, event_type, payload, now)

    async def on_terminal(self, job: Job) -> None:
        """A job's end was stored (with its deliveries): send them now rather than at the next tick."""
        if self.webhooks is not None:
            self.webhooks.wake()


def _unserviceable(model: str, reasons: dict[str, list[Any]]) -> Unserviceable:
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


def _is_retry(headers: Mapping[str, str] | None) -> bool:
    value = next((v for k, v in (headers or {}).items() if k.lower() == RETRY_COUNT_HEADER), "0")
    return value.strip().isdigit() and int(value) > 0


def fingerprint_of(parts: list[tuple[str, Any]]) -> str:
    """A canonical hash of a request (form items or JSON builtins) for Idempotency-Key."""
    return hashlib.sha256(msgspec.json.encode(parts, order="sorted")).hexdigest()
