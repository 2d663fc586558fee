"""`GET /metrics` on the main port, for admin keys (`[metrics] expose = "admin"`)."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gateway.api.docs import errors
from gateway.auth import Caller
from gateway.service import VideoService


class MetricsController(Controller):
    tags = ["operations"]

    @get(
        "/metrics",
        operation_id="metrics",
        summary="Prometheus metrics of this process (admin keys only)",
        description="The Prometheus text format. Each replica exposes its own counters: scrape every one.",
        media_type=CONTENT_TYPE_LATEST,
        responses=errors(401, 403),
    )
    async def metrics(self, caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> Response[bytes]:
        body, content_type = service.metrics_exposition(caller)
        return Response(body, media_type=content_type)
