"""Webhook deliveries: a video's delivery log, and redelivery of one delivery."""

from __future__ import annotations

from typing import Literal

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from gateway.api.docs import VideoId, errors
from gateway.auth import Caller
from gateway.jobs.model import WebhookDelivery
from gateway.service import VideoService


class DeliveryAttemptView(msgspec.Struct, kw_only=True):
    at: int
    status_code: int | None
    latency_ms: int | None
    error: str | None


class DeliveryView(msgspec.Struct, kw_only=True):
    """A delivery as callers see it: everything but the payload."""

    id: str  # the `webhook-id` header, the same on every attempt
    object: Literal["webhook.delivery"] = "webhook.delivery"
    video_id: str
    event_type: str
    url: str
    endpoint: str | None  # the configured endpoint's name; null for the job's own webhook_url
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: int | None
    last_status_code: int | None
    last_error: str | None
    created_at: int
    log: list[DeliveryAttemptView]


class DeliveryList(msgspec.Struct, kw_only=True):
    object: Literal["list"] = "list"
    data: list[DeliveryView]


def delivery_view(d: WebhookDelivery) -> DeliveryView:
    return DeliveryView(
        id=d.id,
        video_id=d.job_id,
        event_type=d.event_type,
        url=d.url,
        endpoint=d.endpoint,
        status=d.status,
        attempts=d.attempts,
        next_attempt_at=int(d.next_attempt_at) if d.next_attempt_at is not None and d.status == "pending" else None,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
        created_at=int(d.created_at),
        log=[DeliveryAttemptView(at=int(a.at), status_code=a.status_code, latency_ms=a.latency_ms, error=a.error) for a in d.log],
    )


class WebhooksController(Controller):
    path = "/v1"
    tags = ["webhooks"]

    @get(
        "/videos/{video_id:str}/deliveries",
        operation_id="listVideoDeliveries",
        summary="A video's webhook deliveries and every attempt",
        responses=errors(401, 404),
    )
    async def list_deliveries(self, video_id: VideoId, caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> DeliveryList:
        return DeliveryList(data=[delivery_view(d) for d in await service.deliveries(caller, video_id)])

    @post(
        "/webhooks/{delivery_id:str}/redeliver",
        operation_id="redeliverWebhook",
        summary="Send a webhook delivery again now, under the same id",
        status_code=200,
        responses=errors(401, 404, 409),
    )
    async def redeliver(self, delivery_id: FromPath[str], caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> DeliveryView:
        return delivery_view(await service.redeliver(caller, delivery_id))
