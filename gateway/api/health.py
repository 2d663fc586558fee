"""Liveness, readiness and upstream callbacks (no caller auth on these)."""

from __future__ import annotations

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from gateway.errors import NotFound
from gateway.service import VideoService


class HealthController(Controller):
    tags = ["operations"]

    @get("/healthz", operation_id="healthz", summary="The process is up")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", operation_id="readyz", summary="The store answers and providers are configured")
    async def readyz(self, service: NamedDependency[VideoService]) -> Response[dict[str, object]]:
        store_ok = await service.store.ping()
        ready = store_ok and bool(service.providers)
        return Response(
            {"status": "ready" if ready else "not_ready", "store": store_ok, "providers": len(service.providers)}, status_code=200 if ready else 503
        )

    @post(
        "/v1/callbacks/{token:str}",
        operation_id="upstreamCallback",
        summary="Upstream job callback (triggers a re-fetch)",
        status_code=200,
        include_in_schema=False,
        opt={"log_path_template": True},
    )
    async def callback(self, token: FromPath[str], service: NamedDependency[VideoService]) -> dict[str, bool]:
        # The body is deliberately not read: a callback only prompts a poll of the upstream.
        if not await service.callback(token):
            raise NotFound("Unknown callback")
        return {"ok": True}
