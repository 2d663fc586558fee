"""The webhook delivery API: a video's delivery log and redelivery, tenant-scoped.

The controller runs in a small Litestar app beside `VideosController` (so the two
`/v1/videos/...` route sets are known not to collide), over a real SqliteStore and a
real dispatcher whose receiver is an `httpx.MockTransport`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar, Request, Response
from litestar.di import NamedDependency, Provide
from litestar.testing import AsyncTestClient

from gateway.api.videos import VideosController
from gateway.api.webhooks import WebhooksController
from gateway.auth import Caller, KeyRing
from gateway.errors import ErrorEnvelope, GatewayError
from gateway.jobs.model import Job
from gateway.jobs.sqlite import SqliteStore
from gateway.service import VideoService
from gateway.settings import KeySettings, WebhookEndpointSettings, WebhookSettings
from gateway.urlguard import UrlGuard
from gateway.webhooks import WebhookDispatcher, event_payload, generate_secret
from providers.base import GenerationRequest, JobStatus, TextInput

KEYS = [KeySettings(name="app", tenant="acme", key="acme-key"), KeySettings(name="g", tenant="globex", key="globex-key")]
ACME = {"authorization": "Bearer acme-key"}
GLOBEX = {"authorization": "Bearer globex-key"}
NOW = 1_700_000_000.0


class Service(VideoService):
    """The controller's view of the service: its store, dispatcher and keys only."""

    def __init__(self, store: SqliteStore, webhooks: WebhookDispatcher | None) -> None:
        self.store = store
        self.webhooks = webhooks
        self.keyring = KeyRing(KEYS)


class Receiver:
    def __init__(self) -> None:
        self.status = 503
        self.ids: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.ids.append(request.headers["webhook-id"])
        return httpx.Response(self.status)


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[SimpleNamespace]:
    store = SqliteStore(tmp_path / "vidgate.db")
    await store.open()
    receiver = Receiver()
    settings = WebhookSettings(
        secret=generate_secret(),
        endpoints=[WebhookEndpointSettings(name="acme-hook", url="https://93.184.216.34/acme", secrets=[generate_secret()], tenant="acme")],
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
    dispatcher = WebhookDispatcher(store, http, settings, guard=UrlGuard(), clock=lambda: NOW, jitter=0.0)
    service = Service(store, dispatcher)

    def provide_service() -> VideoService:
        return service

    def provide_caller(request: Request[Any, Any, Any], service: NamedDependency[Any]) -> Caller:
        return service.keyring.authenticate(request.headers)

    def on_error(request: Request[Any, Any, Any], exc: GatewayError) -> Response[ErrorEnvelope]:
        return Response(exc.envelope(), status_code=exc.status)

    app = Litestar(
        route_handlers=[VideosController, WebhooksController],
        dependencies={"service": Provide(provide_service, sync_to_thread=False), "caller": Provide(provide_caller, sync_to_thread=False)},
        exception_handlers={GatewayError: on_error},
    )
    job = await store.create_job(
        Job(
            id="video_1",
            tenant="acme",
            key_name="app",
            created_at=NOW,
            updated_at=NOW,
            status=JobStatus.FAILED,
            model="seedance-2.0",
            mode="text",
            request=GenerationRequest(model="seedance-2.0", input=TextInput(prompt="p")),
            webhook_url="https://93.184.216.35/mine?token=t",
        )
    )
    payload = event_payload("evt_1", "video.failed", NOW, msgspec.json.encode({"id": "video_1"}))
    deliveries = dispatcher.deliveries_for(job, "video.failed", payload, NOW)
    await store.update_job(job, deliveries=deliveries)
    await dispatcher.run_due()  # one failed attempt each (503)
    async with AsyncTestClient(app) as client:
        yield SimpleNamespace(client=client, store=store, dispatcher=dispatcher, service=service, receiver=receiver, deliveries=deliveries)
    await http.aclose()
    await store.close()


async def test_lists_a_videos_deliveries_with_every_attempt_but_no_payload(stack: SimpleNamespace) -> None:
    response = await stack.client.get("/v1/videos/video_1/deliveries", headers=ACME)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    endpoint, own = body["data"]
    assert endpoint == {
        "id": stack.deliveries[0].id,
        "object": "webhook.delivery",
        "video_id": "video_1",
        "event_type": "video.failed",
        "url": "https://93.184.216.34/acme",
        "endpoint": "acme-hook",
        "status": "pending",
        "attempts": 1,
        "next_attempt_at": int(NOW + 5),
        "last_status_code": 503,
        "last_error": "HTTP 503",
        "created_at": int(NOW),
        "log": [{"at": int(NOW), "status_code": 503, "latency_ms": endpoint["log"][0]["latency_ms"], "error": "HTTP 503"}],
    }
    assert isinstance(endpoint["log"][0]["latency_ms"], int)
    assert (own["endpoint"], own["url"], own["id"]) == (None, "https://93.184.216.35/mine?token=t", stack.deliveries[1].id)
    assert "payload" not in response.text and "evt_1" not in response.text


async def test_another_tenant_or_an_unknown_video_gets_404(stack: SimpleNamespace) -> None:
    for path, headers in [("/v1/videos/video_1/deliveries", GLOBEX), ("/v1/videos/video_nope/deliveries", ACME)]:
        response = await stack.client.get(path, headers=headers)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert (await stack.client.get("/v1/videos/video_1/deliveries")).status_code == 401


async def test_redeliver_requeues_under_the_same_id(stack: SimpleNamespace) -> None:
    delivery_id = stack.deliveries[0].id
    await stack.store.update_delivery(msgspec.structs.replace(await stack.store.get_delivery(delivery_id), status="failed", next_attempt_at=None))

    response = await stack.client.post(f"/v1/webhooks/{delivery_id}/redeliver", headers=ACME)
    assert response.status_code == 200
    view = response.json()
    assert (view["id"], view["status"], view["next_attempt_at"], view["attempts"]) == (delivery_id, "pending", int(NOW), 1)

    stack.receiver.status = 204
    assert await stack.dispatcher.run_due() == 1  # the redelivery only: the job URL's retry is due in 5 s
    assert stack.receiver.ids.count(delivery_id) == 2
    listed = (await stack.client.get("/v1/videos/video_1/deliveries", headers=ACME)).json()["data"][0]
    assert (listed["status"], listed["attempts"], [a["status_code"] for a in listed["log"]]) == ("delivered", 2, [503, 204])


async def test_redeliver_is_tenant_scoped(stack: SimpleNamespace) -> None:
    delivery_id = stack.deliveries[0].id
    for headers, path in [(GLOBEX, f"/v1/webhooks/{delivery_id}/redeliver"), (ACME, "/v1/webhooks/msg_nope/redeliver")]:
        response = await stack.client.post(path, headers=headers)
        assert response.status_code == 404
        assert response.json()["error"]["param"] == "delivery_id"


async def test_routes_are_in_the_openapi_schema(stack: SimpleNamespace) -> None:
    schema = (await stack.client.get("/schema/openapi.json")).json()
    assert schema["paths"]["/v1/videos/{video_id}/deliveries"]["get"]["operationId"] == "listVideoDeliveries"
    assert schema["paths"]["/v1/webhooks/{delivery_id}/redeliver"]["post"]["operationId"] == "redeliverWebhook"
    assert "/v1/videos/{video_id}/content" in schema["paths"]
