"""Liveness, readiness, upstream callbacks and the signed media URLs upstreams fetch (no caller auth)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath
from litestar.response import Stream

from gateway.api.docs import PublicOperation
from gateway.errors import NotFound
from gateway.service import VideoService

MAX_CALLBACK_BYTES = 1 << 20  # a job record; a larger body is not read


class HealthController(Controller):
    tags = ["operations"]

    @get("/healthz", operation_id="healthz", summary="The process is up", operation_class=PublicOperation)
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @get(
        "/readyz",
        operation_id="readyz",
        summary="The store answers and providers are configured",
        operation_class=PublicOperation,
        responses={503: ResponseSpec(data_container=dict[str, object], generate_examples=False, description="Not ready: the same object, status not_ready")},
    )
    async def readyz(self, service: NamedDependency[VideoService]) -> Response[dict[str, object]]:
        ready, store_ok, providers = await service.ready()
        return Response({"status": "ready" if ready else "not_ready", "store": store_ok, "providers": providers}, status_code=200 if ready else 503)

    @post(
        "/v1/callbacks/{token:str}",
        operation_id="upstreamCallback",
        summary="Upstream job callback (triggers a re-fetch)",
        status_code=200,
        include_in_schema=False,
        opt={"log_path_template": True},
    )
    async def callback(self, token: FromPath[str], request: Request[Any, Any, Any], service: NamedDependency[VideoService]) -> dict[str, bool]:
        # The body is not trusted: at most it names the upstream job, which is then re-fetched.
        declared = request.headers.get("content-length", "")
        body = await request.body() if declared.isdigit() and int(declared) <= MAX_CALLBACK_BYTES else b""
        if not await service.callback(token, body):
            raise NotFound("Unknown callback")
        return {"ok": True}

    @get(
        "/v1/media/{token:str}",
        operation_id="signedMedia",
        summary="An upload, at the signed expiring URL vidgate gave an upstream",
        include_in_schema=False,
        opt={"log_path_template": True},
    )
    async def media(self, token: FromPath[str], service: NamedDependency[VideoService]) -> Stream:
        record, chunks = await service.signed_media(token)

        async def body() -> AsyncIterator[bytes]:
            async for chunk in chunks:
                yield chunk

        return Stream(body(), media_type=record.content_type, headers={"content-length": str(record.bytes)})
