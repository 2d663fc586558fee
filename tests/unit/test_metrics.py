"""gateway.metrics: what each reported event counts, read back through Prometheus' own parser.

Job transitions come from the pure lifecycle (`decide`), so a counter is tested against
the transitions the engine really performs, not hand-made before/after pairs.
"""

from __future__ import annotations

import httpx
import msgspec
import pytest
from litestar import Litestar, get
from prometheus_client.parser import text_string_to_metric_families

from gateway.jobs.lifecycle import Copied, Facts, Found, Polled, Prepared, ProviderView, SlotGranted, Started, SubmitFailed, Submitted, decide
from gateway.jobs.model import Attempt, Candidate, Job, RoutingTrace
from gateway.jobs.slots import AccountUsage, PoolUsage
from gateway.logging import RequestLoggingMiddleware
from gateway.metrics import NO_METRICS, PrometheusMetrics
from providers.base import Cost, ErrorClass, ErrorInfo, GenerationRequest, JobStatus, TextInput, UpstreamJob, VideoResult

NOW = 10_000.0
VIEW = ProviderView(poll_interval=5.0, max_age=600.0, finds=True, calls_back=True)


def facts(now: float = NOW) -> Facts:
    return Facts(now=now, providers={"a": VIEW, "b": VIEW}, poll_min=1.0, poll_max=30.0, keep_outputs=False, output_retention=1000.0, output_ttl=100.0)


def new_job() -> Job:
    return Job(
        id="video_1",
        tenant="t",
        key_name="k",
        created_at=NOW - 100,
        updated_at=NOW - 100,
        status=JobStatus.QUEUED,
        model="seedance-2.0",
        mode="text",
        request=GenerationRequest(model="seedance-2.0", input=TextInput(prompt="p")),
        routing=RoutingTrace(candidates=[Candidate(provider="a", model_id="a-m"), Candidate(provider="b", model_id="b-m")]),
    )


def samples(metrics: PrometheusMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, parsed by prometheus_client's parser: (name, labels) -> value."""
    body, _ = metrics.exposition()
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(metrics: PrometheusMetrics, name: str, **labels: str) -> float:
    return samples(metrics).get((name, tuple(sorted(labels.items()))), 0.0)


class Driver:
    """Feeds events to the lifecycle and reports each transition, as the engine does."""

    def __init__(self, metrics: PrometheusMetrics, job: Job) -> None:
        self.metrics = metrics
        self.job = job

    def __call__(self, event: object, now: float = NOW) -> Job:
        step = decide(self.job, event, facts(now))  # type: ignore[arg-type]
        self.metrics.job_written(self.job, step.job)
        self.job = step.job
        return step.job


def test_a_failover_counts_once_with_the_error_class_that_moved_it_then_the_finish_and_time_to_video() -> None:
    m = PrometheusMetrics()
    job = new_job()
    m.job_created(job, "a")
    drive = Driver(m, job)
    drive(Started())
    drive(SlotGranted("a", "a-m", None))
    drive(Prepared())
    drive(SubmitFailed(ErrorInfo.of(ErrorClass.CAPACITY, "busy", retryable=True), False))
    assert value(m, "vidgate_failovers_total", from_provider="a", to_provider="b", reason="capacity") == 0  # not until b starts
    drive(SlotGranted("b", "b-m", None))
    assert value(m, "vidgate_failovers_total", from_provider="a", to_provider="b", reason="capacity") == 1
    drive(Prepared())
    drive(Submitted(UpstreamJob(upstream_id="up-1", status=JobStatus.IN_PROGRESS, upstream_status="running")))
    cost = Cost(amount=10, unit="credits", usd_estimate=0.25)
    result = VideoResult(video_url="https://b.example/v.mp4", width=1280, height=720)
    done = drive(Polled(UpstreamJob(upstream_id="up-1", status=JobStatus.COMPLETED, upstream_status="done", result=result, cost=cost), "b"), now=NOW + 20)
    assert done.status is JobStatus.COMPLETED
    drive(Copied({}), now=NOW + 20)  # a later event on the ended job counts nothing more

    assert value(m, "vidgate_jobs_created_total", provider="a", model="seedance-2.0", mode="text") == 1
    assert value(m, "vidgate_jobs_finished_total", provider="b", model="seedance-2.0", mode="text", status="completed") == 1
    assert value(m, "vidgate_failovers_total", from_provider="a", to_provider="b", reason="capacity") == 1
    assert value(m, "vidgate_time_to_video_seconds_count", provider="b", model="seedance-2.0") == 1
    assert value(m, "vidgate_time_to_video_seconds_sum", provider="b", model="seedance-2.0") == 120.0  # created NOW-100, completed NOW+20
    assert value(m, "vidgate_time_to_video_seconds_bucket", provider="b", model="seedance-2.0", le="90.0") == 0
    assert value(m, "vidgate_time_to_video_seconds_bucket", provider="b", model="seedance-2.0", le="120.0") == 1
    assert value(m, "vidgate_cost_usd_total", provider="b") == 0.25


def test_an_ambiguous_submit_counts_a_reconciliation_started_then_found() -> None:
    m = PrometheusMetrics()
    drive = Driver(m, new_job())
    drive(Started())
    drive(SlotGranted("a", "a-m", None))
    drive(Prepared())
    drive(SubmitFailed(ErrorInfo.of(ErrorClass.TIMEOUT, "read timeout"), True))
    assert value(m, "vidgate_reconciliations_total", provider="a", outcome="started") == 1
    drive(Found(UpstreamJob(upstream_id="up-9", status=JobStatus.IN_PROGRESS, upstream_status="running")))
    assert value(m, "vidgate_reconciliations_total", provider="a", outcome="found") == 1
    assert value(m, "vidgate_failovers_total", from_provider="a", to_provider="b", reason="timeout") == 0


def test_labels_never_carry_ids_prompts_or_urls() -> None:
    m = PrometheusMetrics()
    drive = Driver(m, new_job())
    drive(Started())
    drive(SlotGranted("a", "a-m", None))
    body, content_type = m.exposition()
    text = body.decode()
    assert content_type.startswith("text/plain")
    for secret in ("video_1", "up-1", '"p"', "example"):
        assert secret not in text


def test_capacity_gauges_are_read_from_the_source_at_scrape_time() -> None:
    class Usage:
        driving = 3

        def __init__(self) -> None:
            self.queued = 2

        def usage(self) -> dict[str, PoolUsage]:
            accounts = (AccountUsage("CA:x", "CA", 10, 4, None), AccountUsage("US:y", "US", 10, 0, "session expired"))
            return {
                "a": PoolUsage(capacity=20, in_use=4, queued=self.queued, accounts=accounts),
                "b": PoolUsage(5, 1, 0, (AccountUsage(None, None, 5, 1, None),)),
            }

    m = PrometheusMetrics()
    assert value(m, "vidgate_jobs_driven") == 0  # nothing watched yet: no samples
    source = Usage()
    m.watch(source)
    assert value(m, "vidgate_queue_depth", provider="a") == 2
    assert value(m, "vidgate_slots_in_use", provider="a", account="CA:x") == 4
    assert value(m, "vidgate_slots_limit", provider="a", account="US:y") == 0  # disabled
    assert value(m, "vidgate_slots_in_use", provider="b", account="pool") == 1
    assert value(m, "vidgate_jobs_driven") == 3
    source.queued = 7
    assert value(m, "vidgate_queue_depth", provider="a") == 7


def test_webhook_output_and_upstream_reports_count_by_their_bounded_labels() -> None:
    m = PrometheusMetrics()
    for outcome in ("delivered", "delivered", "retrying", "failed", "skipped"):
        m.webhook_delivery(outcome)  # type: ignore[arg-type]
    m.output_copied("video", 1000)
    m.output_copied("video", 24)
    m.output_copy_failed("thumbnail")
    calls = m.upstream("a")
    calls.upstream_call("submit", "capacity", 0.2)
    calls.upstream_call("poll", None, 0.01)
    assert value(m, "vidgate_webhook_deliveries_total", outcome="delivered") == 2
    assert value(m, "vidgate_webhook_deliveries_total", outcome="retrying") == 1
    assert value(m, "vidgate_output_copy_bytes_total", variant="video") == 1024
    assert value(m, "vidgate_output_copies_total", variant="video") == 2
    assert value(m, "vidgate_output_copy_failures_total", variant="thumbnail") == 1
    assert value(m, "vidgate_upstream_calls_total", provider="a", operation="submit", error_class="capacity") == 1
    assert value(m, "vidgate_upstream_calls_total", provider="a", operation="poll", error_class="none") == 1
    assert value(m, "vidgate_upstream_call_duration_seconds_count", provider="a", operation="submit") == 1


def test_two_registries_in_one_process_count_apart() -> None:
    one, two = PrometheusMetrics(), PrometheusMetrics()
    one.webhook_delivery("delivered")
    assert value(one, "vidgate_webhook_deliveries_total", outcome="delivered") == 1
    assert value(two, "vidgate_webhook_deliveries_total", outcome="delivered") == 0


async def test_http_requests_are_labelled_by_route_template_never_by_path() -> None:
    @get("/v1/videos/{video_id:str}")
    async def retrieve(video_id: str) -> dict[str, str]:
        return {"id": video_id}

    m = PrometheusMetrics()
    app = Litestar([retrieve])
    asgi = RequestLoggingMiddleware(app, metrics=m)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://t") as client:
        assert (await client.get("/v1/videos/video_secret_1")).status_code == 200
        assert (await client.get("/v1/videos/video_secret_2")).status_code == 200
        assert (await client.get("/no/such/path/video_secret_3")).status_code == 404
        assert (await client.post("/v1/videos/x")).status_code == 405
    assert value(m, "vidgate_http_requests_total", method="GET", route="/v1/videos/{video_id}", status="200") == 2
    assert value(m, "vidgate_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert value(m, "vidgate_http_request_duration_seconds_count", method="GET", route="/v1/videos/{video_id}") == 2
    assert "video_secret" not in m.exposition()[0].decode()


def test_no_metrics_accepts_every_report_and_exposes_nothing() -> None:
    job = new_job()
    NO_METRICS.job_created(job, "a")
    NO_METRICS.job_written(job, msgspec.structs.replace(job, status=JobStatus.FAILED))
    NO_METRICS.upstream("a").upstream_call("poll", None, 0.1)
    assert NO_METRICS.exposition()[0] == b""


@pytest.mark.parametrize("attempts", [0, 1])
def test_a_job_cancelled_before_or_during_its_first_attempt_finishes_as_cancelled(attempts: int) -> None:
    m = PrometheusMetrics()
    before = new_job()
    if attempts:
        before = msgspec.structs.replace(before, attempts=[Attempt(provider="a", model_id="a-m", started_at=NOW, status="submitted", upstream_id="u")])
    after = msgspec.structs.replace(before, status=JobStatus.CANCELLED, completed_at=NOW)
    m.job_written(before, after)
    provider = "a" if attempts else "none"
    assert value(m, "vidgate_jobs_finished_total", provider=provider, model="seedance-2.0", mode="text", status="cancelled") == 1
    assert value(m, "vidgate_time_to_video_seconds_count", provider=provider, model="seedance-2.0") == 0
