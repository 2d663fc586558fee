"""The application factory: one lifespan owns every long-lived thing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import structlog
from litestar import Litestar, Request, Response
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, start_http_server

from gateway.api.catalog import CatalogController
from gateway.api.comparisons import ComparisonsController
from gateway.api.docs import docs_assets_router, openapi_config
from gateway.api.files import FilesController
from gateway.api.health import HealthController
from gateway.api.metrics import MetricsController
from gateway.api.stats import StatsController
from gateway.api.unsupported import UnsupportedController
from gateway.api.validation import validation_error_body
from gateway.api.videos import VideosController
from gateway.api.webhooks import WebhooksController
from gateway.auth import Caller
from gateway.clock import Clock, SystemClock
from gateway.console import build as build_console
from gateway.errors import ErrorBody, ErrorEnvelope, GatewayError
from gateway.events import EventHub, JobNotifier
from gateway.h1_transport import H1Transport
from gateway.health import HealthBoard
from gateway.jobs.engine import EngineConfig, JobEngine
from gateway.jobs.leases import LeaseBook, new_instance_id
from gateway.jobs.postgres import PostgresStore
from gateway.jobs.sqlite import SqliteStore
from gateway.jobs.store import Store
from gateway.jobs.writer import JobWriter
from gateway.logging import install_request_logging
from gateway.media import MediaLoader, SignedMediaUrls
from gateway.metrics import NO_METRICS, Metrics, PrometheusMetrics
from gateway.outputs import LocalDiskStorage, OutputCopier
from gateway.reload import watch_config
from gateway.runtime import RuntimeHolder, UpstreamClients, build_runtime
from gateway.service import VideoService
from gateway.settings import ConfigError, Settings
from gateway.urlguard import UrlGuard
from gateway.webhooks import WebhookDispatcher

OUTBOUND_CONNECTIONS = 100  # webhooks, media and result downloads, all guarded (gateway.urlguard)

log = structlog.get_logger("vidgate.app")


def create_app(
    settings: Settings,
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    store: Store | None = None,
    clock: Clock | None = None,
    config_path: str | None = None,
) -> Litestar:
    """Build the app. Nothing starts until the lifespan runs.

    `transports` maps a provider name (or `"*"` for media, content and webhooks)
    to an httpx transport, so tests reach simulators without sockets. With
    `config_path`, a changed file or SIGHUP reloads routes, models, keys and
    providers without dropping in-flight jobs (`gateway.reload`).
    """
    transports = dict(transports or {})
    the_clock: Clock = clock or SystemClock()
    now = the_clock.now
    prometheus = PrometheusMetrics() if settings.metrics.expose != "off" else None  # a registry of its own per app
    metrics: Metrics = prometheus or NO_METRICS

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            the_store = store or _store_from(settings)
            await the_store.open()
            stack.push_async_callback(the_store.close)
            instance = settings.cluster.instance_id or new_instance_id()

            clients = UpstreamClients(transports, instance=instance, observers=metrics)
            stack.push_async_callback(clients.aclose)
            holder = RuntimeHolder(build_runtime(settings, clients))

            guard = UrlGuard(allow_private=settings.security.allow_private_urls)
            outbound = httpx.AsyncClient(
                timeout=httpx.Timeout(30.0, connect=5.0),
                transport=transports.get("*") or H1Transport(max_connections=OUTBOUND_CONNECTIONS),
                follow_redirects=False,
            )
            stack.push_async_callback(outbound.aclose)
            media_urls = (
                SignedMediaUrls(settings.server.base_url, settings.security.media_url_secret, ttl=settings.security.media_url_seconds)
                if settings.server.public_url
                else None
            )
            media = MediaLoader(
                the_store,
                outbound,
                guard,
                max_bytes=settings.security.max_media_fetch_bytes,
                max_upload_bytes=settings.security.max_upload_bytes,
                clock=now,
                urls=media_urls,
            )
            webhooks = WebhookDispatcher(the_store, outbound, settings.webhooks, guard=guard, clock=now, metrics=metrics)

            output_storage = copier = None
            outputs_dir = settings.store.outputs_dir(settings.outputs.dir)
            if settings.outputs.keep:
                if outputs_dir is None:  # validate() refuses this config; settings built by hand may not have been validated
                    raise ConfigError("outputs", "outputs.dir is required when the store is not a SQLite file and outputs.keep is on")
                output_storage = LocalDiskStorage(Path(outputs_dir))
                copier = OutputCopier(
                    output_storage,
                    outbound,
                    guard,
                    max_bytes=settings.outputs.max_bytes,
                    timeout=settings.outputs.timeout_seconds,
                    clock=now,
                    metrics=metrics,
                )

            hub = EventHub()
            notifier = JobNotifier(hub, webhooks, now)
            health = HealthBoard()
            engine = JobEngine(
                store=the_store,
                runtime=holder,
                health=health,
                slot_store=the_store,
                leases=LeaseBook(instance, settings.cluster.lease_seconds, clock=now),
                writer=JobWriter(the_store),
                media=media,
                notifier=notifier,
                outputs=copier,
                clock=the_clock,
                config=EngineConfig(
                    public_url=settings.server.base_url,
                    poll_min=settings.jobs.poll_min_seconds,
                    poll_max=settings.jobs.poll_max_seconds,
                    keep_outputs=settings.outputs.keep,
                    output_retention=settings.outputs.retention_seconds,
                    output_ttl=settings.jobs.expires_after_seconds,
                    claim_interval=settings.cluster.claim_interval_seconds,
                    max_jobs=settings.cluster.max_jobs,
                ),
                metrics=metrics,
            )
            metrics.watch(engine)
            engine.slots.configure({name: p.accounts for name, p in holder.current.providers.items()})
            service = VideoService(
                runtime=holder,
                store=the_store,
                engine=engine,
                media=media,
                webhooks=webhooks,
                notifier=notifier,
                hub=hub,
                health=health,
                guard=guard,
                content_http=outbound,
                clock=now,
                output_storage=output_storage,
                media_urls=media_urls,
                metrics=metrics,
            )
            app.state.service = service
            if prometheus is not None and settings.metrics.expose == "separate":
                stack.enter_context(_metrics_listener(prometheus.registry, settings.metrics.host, settings.metrics.port))

            stop = asyncio.Event()
            background: list[asyncio.Task[Any]] = [asyncio.create_task(webhooks.run(stop), name="webhooks")]
            if output_storage is not None:
                background.append(asyncio.create_task(_sweep_outputs(output_storage, settings.outputs.retention_seconds, now, stop), name="outputs-sweep"))
            if config_path is not None:
                background.append(asyncio.create_task(watch_config(holder, clients, engine.slots, webhooks, config_path, stop), name="config-watch"))
            background.append(asyncio.create_task(engine.run(stop), name="engine"))
            log.info(
                "app.started",
                providers=list(holder.current.providers),
                instance=instance,
                outputs=outputs_dir if settings.outputs.keep else None,
                metrics=settings.metrics.expose,
            )
            try:
                yield
            finally:
                stop.set()
                await engine.stop()
                for task in background:
                    task.cancel()
                await asyncio.gather(*background, return_exceptions=True)
                log.info("app.stopped")

    handlers: list[Any] = [
        VideosController,
        UnsupportedController,
        FilesController,
        CatalogController,
        HealthController,
        ComparisonsController,
        StatsController,
        WebhooksController,
        docs_assets_router(),
    ]
    if settings.metrics.expose == "admin":
        handlers.append(MetricsController)
    console = build_console(settings) if settings.console.enabled else None
    if console is not None:
        handlers += [console.router, console.static]
    app = Litestar(
        route_handlers=handlers,
        template_config=console.templates if console is not None else None,
        dependencies={"service": Provide(_service, sync_to_thread=False), "caller": Provide(_caller, sync_to_thread=False)},
        exception_handlers={Exception: _handle_error},
        lifespan=[lifespan],
        request_max_body_size=settings.security.max_request_bytes,
        openapi_config=openapi_config(),
        debug=False,
        logging_config=None,  # structlog owns logging (gateway.logging)
    )
    app.asgi_handler = _OptionsAllow(app.asgi_handler, {r.path_format: ", ".join(sorted(r.methods)) for r in app.routes if isinstance(r, HTTPRoute)})
    return install_request_logging(app, metrics=prometheus)


class _OptionsAllow:
    """Answer OPTIONS with every method of the path in `Allow`.

    Litestar 2's automatic OPTIONS handler keeps the route as it was when the path's
    first handler was registered, so `OPTIONS /v1/videos` said `Allow: OPTIONS, POST`
    although GET is served there too. This rewrites the header from the final routes."""

    def __init__(self, app: ASGIApp, allowed: Mapping[str, str]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "OPTIONS":
            await self.app(scope, receive, send)
            return

        async def with_allow(message: Message) -> None:
            allow = self.allowed.get(scope.get("path_template") or "")
            if message["type"] == "http.response.start" and allow is not None:
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"allow"]
                message = {**message, "headers": [*headers, (b"allow", allow.encode())]}
            await send(message)

        await self.app(scope, receive, with_allow)


@contextlib.contextmanager
def _metrics_listener(registry: CollectorRegistry, host: str, port: int) -> Iterator[None]:
    """`[metrics] expose = "separate"`: the registry on a listener of its own (a thread)."""
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ConfigError("metrics", f"can't listen on {host}:{port} for /metrics ({exc.strerror or exc}); change [metrics] port") from None
    log.info("metrics.listening", url=f"http://{host}:{server.server_port}/metrics")
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def _sweep_outputs(storage: LocalDiskStorage, retention: float, clock: Callable[[], float], stop: asyncio.Event) -> None:
    """Delete copies past their retention, at start-up and then every so often."""
    interval = min(3600.0, max(1.0, retention / 10))
    while not stop.is_set():
        try:
            removed = await storage.sweep(clock() - retention)
            if removed:
                log.info("outputs.swept", removed=removed)
        except Exception:  # a full or flaky disk must not end the loop
            log.exception("outputs.sweep_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


def _store_from(settings: Settings) -> Store:
    path = settings.store.sqlite_path
    if path is None:
        return PostgresStore(settings.store.url)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return SqliteStore(path)


def _service(state: State) -> VideoService:
    return state.service


def _caller(request: Request[Any, Any, Any], service: NamedDependency[VideoService]) -> Caller:
    return service.authenticate(request.headers)


def _handle_error(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorEnvelope]:
    if isinstance(exc, GatewayError):
        return Response(exc.envelope(), status_code=exc.status, headers=exc.headers)
    if isinstance(exc, ValidationException):
        return Response(ErrorEnvelope(validation_error_body(request, exc)), status_code=400)
    if isinstance(exc, HTTPException):
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large", 401: "unauthorized"}.get(exc.status_code, "http_error")
        body = ErrorBody(message=str(exc.detail), type="invalid_request_error", code=code)
        return Response(ErrorEnvelope(body), status_code=exc.status_code, headers=exc.headers or None)
    log.exception("http.unhandled_error", path=request.url.path)
    body = ErrorBody(message="Internal server error", type="server_error", code="internal_error")
    return Response(ErrorEnvelope(body), status_code=500)
