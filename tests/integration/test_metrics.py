"""`GET /metrics` during a demo-like run with failover, a lost submit answer, a priced job and webhooks
(issue 12's acceptance): every family is there, parsed by prometheus_client's own parser,
and the counters moved by exactly what the run caused."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import msgspec
import pytest
from litestar import Litestar, Request, post
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_app
from gateway.cli import demo_settings
from gateway.demo import running_simulators
from providers.simkit import free_port, serve_in_thread
from tests.integration.conftest import Stack

ADMIN = "sk-demo-admin"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class Receiver:
    """A webhook receiver on loopback that records the event types it was sent."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self._lock = threading.Lock()

        @post("/hook", status_code=204)
        async def hook(request: Request) -> None:
            body = msgspec.json.decode(await request.body())
            with self._lock:
                self.events.append(body["type"])

        self.app = Litestar([hook])


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Receiver, str]]:
    receiver = Receiver()
    with running_simulators(job_seconds=0.5) as sims, serve_in_thread(receiver.app) as hooks:
        port = free_port()
        settings = demo_settings(port=port, urls=sims, data_dir=str(tmp_path_factory.mktemp("metrics")), job_seconds=0.5)
        with serve_in_thread(create_app(settings), port=port) as base:
            yield Stack(base=base, sims=sims), receiver, f"{hooks}/hook"


def scrape(stack: Stack) -> tuple[Samples, set[str]]:
    response = httpx.get(f"{stack.base}/metrics", headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    families = set()
    for family in text_string_to_metric_families(response.text):
        families.add(family.name)
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, families


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every sample of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def wait_for(client: httpx.Client, ids: list[str], timeout: float = 40.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        videos = [client.get(f"/v1/videos/{i}").json() for i in ids]
        if all(v["status"] not in ("queued", "in_progress") for v in videos) or time.monotonic() > deadline:
            return videos
        time.sleep(0.1)


def test_metrics_count_exactly_the_failovers_reconciliations_and_webhooks_a_run_caused(metered: tuple[Stack, Receiver, str]) -> None:
    stack, receiver, hook_url = metered
    before, _ = scrape(stack)
    with stack.client() as client:
        # Three jobs whose first provider (useapi) refuses every submit for capacity: each fails over once.
        stack.set_faults("useapi", submit_status=429, submit_status_count=-1)
        body = {"model": "seedance-2.0", "prompt": "a paper boat", "seconds": 5, "resolution": "720p", "ratio": "16:9", "webhook_url": hook_url}
        moved = [client.post("/v1/videos", json=body).json()["id"] for _ in range(3)]
        videos = wait_for(client, moved)
        stack.reset()
        # One job whose submit answer is garbled: the upstream job exists, vidgate finds it instead of resending.
        stack.set_faults("useapi", malformed_count=1)
        found = client.post("/v1/videos", json={**body, "provider": "useapi"}).json()["id"]
        videos += wait_for(client, [found])
        stack.reset()
        # One job on a provider with a price table: its USD estimate is counted.
        priced = client.post("/v1/videos", json={**body, "provider": "modelark"}).json()["id"]
        videos += wait_for(client, [priced])
        assert client.get("/v1/videos/video_nope").status_code == 404
        deadline = time.monotonic() + 20
        while len(receiver.events) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [v["status"] for v in videos] == ["completed"] * 5, videos
    assert [[a["provider"] for a in v["attempts"]] for v in videos] == [["useapi", "powertokens"]] * 3 + [["useapi"], ["modelark"]]
    assert receiver.events == ["video.completed"] * 5
    usd = videos[4]["cost"]["usd_estimate"]

    after, families = scrape(stack)

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    expected = {
        "vidgate_http_requests",
        "vidgate_http_request_duration_seconds",
        "vidgate_jobs_created",
        "vidgate_jobs_finished",
        "vidgate_time_to_video_seconds",
        "vidgate_upstream_calls",
        "vidgate_upstream_call_duration_seconds",
        "vidgate_queue_depth",
        "vidgate_slots_in_use",
        "vidgate_slots_limit",
        "vidgate_jobs_driven",
        "vidgate_failovers",
        "vidgate_reconciliations",
        "vidgate_webhook_deliveries",
        "vidgate_output_copies",
        "vidgate_output_copy_bytes",
        "vidgate_output_copy_failures",
        "vidgate_cost_usd",
    }
    assert expected <= families, expected - families

    assert delta("vidgate_failovers_total") == 3
    assert delta("vidgate_failovers_total", from_provider="useapi", to_provider="powertokens", reason="capacity") == 3
    assert delta("vidgate_reconciliations_total", provider="useapi", outcome="started") == 1
    assert delta("vidgate_reconciliations_total", provider="useapi", outcome="found") == 1
    assert delta("vidgate_jobs_created_total", provider="useapi", model="seedance-2.0", mode="text") == 4
    assert delta("vidgate_jobs_created_total", provider="modelark", model="seedance-2.0", mode="text") == 1
    assert delta("vidgate_jobs_finished_total", provider="powertokens", model="seedance-2.0", mode="text", status="completed") == 3
    assert delta("vidgate_jobs_finished_total", provider="useapi", model="seedance-2.0", mode="text", status="completed") == 1
    assert delta("vidgate_time_to_video_seconds_count") == 5
    assert 0 < delta("vidgate_time_to_video_seconds_sum") < 5 * 40
    assert delta("vidgate_webhook_deliveries_total", outcome="delivered") == 5
    assert delta("vidgate_webhook_deliveries_total", outcome="failed") == 0
    # every refused submit is one call (vidgate retries a 429 before it moves on), each counted with its class
    refused = delta("vidgate_upstream_calls_total", provider="useapi", operation="submit", error_class="capacity")
    assert refused >= 3 and refused % 3 == 0
    assert delta("vidgate_upstream_calls_total", provider="powertokens", operation="submit", error_class="none") == 3
    assert delta("vidgate_upstream_calls_total", provider="useapi", operation="find", error_class="none") >= 1
    assert delta("vidgate_upstream_calls_total", operation="poll", error_class="none") >= 4
    assert delta("vidgate_upstream_call_duration_seconds_count", provider="powertokens", operation="submit") == 3
    assert delta("vidgate_output_copies_total", variant="video") == 5
    assert delta("vidgate_output_copy_bytes_total", variant="video") >= 5 * 1000  # the simulators' tiny real MP4
    assert delta("vidgate_output_copy_failures_total") == 0
    assert usd > 0 and delta("vidgate_cost_usd_total", provider="modelark") == pytest.approx(usd)
    assert delta("vidgate_http_requests_total", method="POST", route="/v1/videos", status="200") == 5
    assert delta("vidgate_http_requests_total", method="GET", route="/v1/videos/{video_id}", status="404") == 1
    assert delta("vidgate_http_request_duration_seconds_count", method="POST", route="/v1/videos") == 5
    # capacity, read at scrape time: nothing is queued or held once every job ended
    assert {ls for (n, ls) in after if n == "vidgate_queue_depth"} >= {(("provider", p),) for p in ("useapi", "powertokens", "modelark")}
    assert total(after, "vidgate_queue_depth") == 0
    assert total(after, "vidgate_slots_in_use") == 0
    assert total(after, "vidgate_slots_limit", provider="useapi", account="CA:sim@example.com") == 10
    # no id, prompt or URL ever becomes a label
    text = httpx.get(f"{stack.base}/metrics", headers={"Authorization": f"Bearer {ADMIN}"}).text
    for leak in [*moved, found, priced, "paper boat", "127.0.0.1", "video_nope"]:
        assert leak not in text


def test_metrics_need_an_admin_key(metered: tuple[Stack, Receiver, str]) -> None:
    stack, _, _ = metered
    assert httpx.get(f"{stack.base}/metrics").status_code == 401
    refused = httpx.get(f"{stack.base}/metrics", headers={"Authorization": "Bearer sk-demo"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "admin_key_required"


def test_metrics_on_a_separate_listener_without_a_key_and_gone_from_the_main_port(tmp_path) -> None:
    metrics_port = free_port()
    with running_simulators(job_seconds=0.5) as sims:
        port = free_port()
        settings = demo_settings(port=port, urls=sims, data_dir=str(tmp_path), job_seconds=0.5)
        settings.metrics.expose = "separate"
        settings.metrics.port = metrics_port
        with serve_in_thread(create_app(settings), port=port) as base:
            assert httpx.get(f"{base}/healthz").status_code == 200
            scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
            assert scraped.status_code == 200
            names = {f.name for f in text_string_to_metric_families(scraped.text)}
            assert {"vidgate_http_requests", "vidgate_queue_depth"} <= names
            assert (
                total(
                    {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(scraped.text) for s in f.samples},
                    "vidgate_http_requests_total",
                    route="/healthz",
                )
                == 1
            )
            main = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {ADMIN}"})
            assert main.status_code == 404
        with pytest.raises(httpx.ConnectError):  # the listener stops with the app
            httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")


def test_metrics_off_collects_nothing_and_serves_no_route(tmp_path) -> None:
    with running_simulators(job_seconds=0.5) as sims:
        port = free_port()
        settings = demo_settings(port=port, urls=sims, data_dir=str(tmp_path), job_seconds=0.5)
        settings.metrics.expose = "off"
        with serve_in_thread(create_app(settings), port=port) as base:
            assert httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 404
