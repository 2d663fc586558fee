"""Prometheus metrics: what the gateway's parts report, and the registry that counts it.

Each part is handed the narrow Protocol it reports to, and a no-op by default, so
nothing here is global and several apps can run in one process:

    metrics = PrometheusMetrics()                 # one CollectorRegistry of its own
    engine = JobEngine(..., metrics=metrics)      # JobMetrics: job transitions
    WebhookDispatcher(..., metrics=metrics)       # DeliveryMetrics
    OutputCopier(..., metrics=metrics)            # CopyMetrics
    UpstreamClient(..., observer=metrics.upstream(name))      # providers.client.CallObserver, per provider
    metrics.watch(engine)                         # queue depth and slots, read at scrape time
    body, content_type = metrics.exposition()

Job counters are derived from transitions (`job_written(before, after)`), so the engine
and the service report what they wrote and this module decides what it means: a job
finished when its status became terminal, failed over when an attempt started after an
earlier one failed, reconciled when its last attempt left `reconciling`.

Labels are bounded by the config (provider, account, logical model), by vidgate's own
vocabularies (mode, status, operation, error class, outcome, variant) or by the route
table (route templates, never raw paths): never a job id, a prompt or a URL.

Every process counts what it did itself: with several replicas, scrape each one and sum
in Prometheus (`sum by (provider) (rate(vidgate_jobs_finished_total[5m]))`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Literal, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from providers.client import CallObserver

if TYPE_CHECKING:
    from gateway.jobs.model import Job
    from gateway.jobs.slots import PoolUsage

__all__ = [
    "NO_METRICS",
    "CopyMetrics",
    "DeliveryMetrics",
    "DeliveryOutcome",
    "HttpMetrics",
    "JobMetrics",
    "Metrics",
    "NoMetrics",
    "PrometheusMetrics",
    "UsageSource",
]

DeliveryOutcome = Literal["delivered", "retrying", "failed", "skipped"]

# Seconds. HTTP answers are quick; upstream calls may take a timeout's worth; a video takes minutes.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UPSTREAM_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
VIDEO_BUCKETS = (1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)

# the last attempt's status after `reconciling` (or on entering it) -> the outcome counted
_RECONCILED = {"reconciling": "started", "submitted": "found", "unknown": "unknown_outcome"}
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
NO_PROVIDER = "none"  # a job that ended before any attempt started (cancelled while queued)
POOL = "pool"  # the account label of a provider whose slots are one pool, not accounts


# ---------------------------------------------------------------------------
# What each part reports to
# ---------------------------------------------------------------------------


class JobMetrics(Protocol):
    """The engine and the service: jobs created, and every job they wrote."""

    def job_created(self, job: Job, provider: str | None) -> None:
        """A new job was stored; `provider` is the first candidate routing chose."""
        ...

    def job_written(self, before: Job, after: Job) -> None:
        """A job moved from `before` to `after` (and the move was stored)."""
        ...


class DeliveryMetrics(Protocol):
    def webhook_delivery(self, outcome: DeliveryOutcome) -> None:
        """One delivery attempt ended: delivered, failed with a retry scheduled, failed for
        good, or skipped without a request (endpoint disabled, nothing to sign with)."""
        ...


class CopyMetrics(Protocol):
    def output_copied(self, variant: str, size: int) -> None: ...
    def output_copy_failed(self, variant: str) -> None: ...


class HttpMetrics(Protocol):
    """Told of every HTTP request (by `gateway.logging.RequestLoggingMiddleware`): its route
    template (`unmatched` when none matched), status, and seconds to the response's headers
    (a stream's body, e.g. server-sent events, is not latency)."""

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None: ...


class UsageSource(Protocol):
    """What the engine tells about capacity (`JobEngine`), read at every scrape."""

    def usage(self) -> Mapping[str, PoolUsage]: ...

    @property
    def driving(self) -> int: ...


class Metrics(JobMetrics, DeliveryMetrics, CopyMetrics, HttpMetrics, Protocol):
    """Everything the app hands out, plus the scrape."""

    def upstream(self, provider: str) -> CallObserver:
        """The observer of one provider's upstream calls."""
        ...

    def watch(self, source: UsageSource) -> None:
        """Read queue depth and slots from `source` at scrape time."""
        ...

    def exposition(self) -> tuple[bytes, str]:
        """The text format and its content type."""
        ...


# ---------------------------------------------------------------------------
# No metrics
# ---------------------------------------------------------------------------


class _NoCalls:
    def upstream_call(self, operation: str, error_class: str | None, seconds: float) -> None:
        pass


class NoMetrics:
    """Counts nothing: the default for every part, and the app's choice with `[metrics] expose = "off"`."""

    def job_created(self, job: Job, provider: str | None) -> None:
        pass

    def job_written(self, before: Job, after: Job) -> None:
        pass

    def webhook_delivery(self, outcome: DeliveryOutcome) -> None:
        pass

    def output_copied(self, variant: str, size: int) -> None:
        pass

    def output_copy_failed(self, variant: str) -> None:
        pass

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        pass

    def upstream(self, provider: str) -> CallObserver:
        return _NO_CALLS

    def watch(self, source: UsageSource) -> None:
        pass

    def exposition(self) -> tuple[bytes, str]:
        return b"", CONTENT_TYPE_LATEST


_NO_CALLS = _NoCalls()
NO_METRICS = NoMetrics()


# ---------------------------------------------------------------------------
# Prometheus
# ---------------------------------------------------------------------------


class PrometheusMetrics:
    """Every vidgate metric, in a `CollectorRegistry` of its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # Label children by their labels' source values; every label is from a closed set
        # (methods, route templates, statuses, configured providers, operations, error
        # classes), so these stay small.
        self._http_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._call_children: dict[tuple[str, str, str | None], tuple[Counter, Histogram]] = {}
        self.http_requests = Counter(
            "vidgate_http_requests", "HTTP requests answered, by route template and status.", ["method", "route", "status"], registry=r
        )
        self.http_duration = Histogram(
            "vidgate_http_request_duration_seconds",
            "Time from a request's arrival to its response headers, by route template.",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.jobs_created = Counter(
            "vidgate_jobs_created", "Video jobs created, by the provider routing chose first.", ["provider", "model", "mode"], registry=r
        )
        self.jobs_finished = Counter(
            "vidgate_jobs_finished",
            "Video jobs that reached a final status, by the provider of their last attempt (none: ended before any).",
            ["provider", "model", "mode", "status"],
            registry=r,
        )
        self.time_to_video = Histogram(
            "vidgate_time_to_video_seconds",
            "From a job's creation to its completed video, by the provider that made it.",
            ["provider", "model"],
            buckets=VIDEO_BUCKETS,
            registry=r,
        )
        self.failovers = Counter(
            "vidgate_failovers",
            "Jobs moved to another provider after an attempt failed, by the error class that moved them.",
            ["from_provider", "to_provider", "reason"],
            registry=r,
        )
        self.reconciliations = Counter(
            "vidgate_reconciliations",
            "Submits with an unknown outcome: started, found upstream, or given up on (unknown_outcome).",
            ["provider", "outcome"],
            registry=r,
        )
        self.upstream_calls = Counter(
            "vidgate_upstream_calls",
            "HTTP calls to upstreams, by operation and the error class they ended in (none: success).",
            ["provider", "operation", "error_class"],
            registry=r,
        )
        self.upstream_duration = Histogram(
            "vidgate_upstream_call_duration_seconds",
            "Latency of upstream calls, up to the response headers.",
            ["provider", "operation"],
            buckets=UPSTREAM_BUCKETS,
            registry=r,
        )
        self.webhook_deliveries = Counter("vidgate_webhook_deliveries", "Webhook delivery attempts, by outcome.", ["outcome"], registry=r)
        self.output_copies = Counter("vidgate_output_copies", "Outputs copied into vidgate's storage, by variant.", ["variant"], registry=r)
        self.output_bytes = Counter("vidgate_output_copy_bytes", "Bytes of outputs copied into vidgate's storage, by variant.", ["variant"], registry=r)
        self.output_failures = Counter("vidgate_output_copy_failures", "Output copies that failed (after their retries), by variant.", ["variant"], registry=r)
        self.cost_usd = Counter(
            "vidgate_cost_usd", "Estimated upstream cost in US dollars of finished jobs, where a price table exists.", ["provider"], registry=r
        )
        self._usage = _UsageCollector()
        r.register(self._usage)

    # -- jobs -----------------------------------------------------------------------

    def job_created(self, job: Job, provider: str | None) -> None:
        self.jobs_created.labels(provider or NO_PROVIDER, job.model, job.mode).inc()

    def job_written(self, before: Job, after: Job) -> None:
        attempts, earlier = after.attempts, before.attempts
        if len(attempts) > len(earlier) and len(attempts) >= 2 and attempts[-1].status == "preparing":
            previous = attempts[-2]
            reason = previous.error.error_class.value if previous.error is not None else "unknown"
            self.failovers.labels(previous.provider, attempts[-1].provider, reason).inc()
        if attempts and len(earlier) == len(attempts):
            was, now = earlier[-1].status, attempts[-1].status
            if was != now and "reconciling" in (was, now):
                outcome = _RECONCILED.get(now)
                if outcome is not None:
                    self.reconciliations.labels(attempts[-1].provider, outcome).inc()
        if after.status.terminal and after.status != before.status:
            provider = after.attempt.provider if after.attempt is not None else NO_PROVIDER
            self.jobs_finished.labels(provider, after.model, after.mode, after.status.value).inc()
            if after.status.value == "completed" and after.completed_at is not None:
                self.time_to_video.labels(provider, after.model).observe(max(0.0, after.completed_at - after.created_at))
            if not before.status.terminal and after.cost is not None and after.cost.usd_estimate:
                self.cost_usd.labels(provider).inc(after.cost.usd_estimate)

    # -- webhooks, outputs, HTTP ------------------------------------------------------------

    def webhook_delivery(self, outcome: DeliveryOutcome) -> None:
        self.webhook_deliveries.labels(outcome).inc()

    def output_copied(self, variant: str, size: int) -> None:
        self.output_copies.labels(variant).inc()
        self.output_bytes.labels(variant).inc(size)

    def output_copy_failed(self, variant: str) -> None:
        self.output_failures.labels(variant).inc()

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method if method in _METHODS else "other", route, status)
        children = self._http_children.get(key)
        if children is None:  # labels() hashes and locks on every call: look each series up once
            children = self._http_children[key] = (self.http_requests.labels(key[0], route, str(status)), self.http_duration.labels(key[0], route))
        children[0].inc()
        children[1].observe(seconds)

    # -- upstreams and capacity ----------------------------------------------------------------

    def upstream(self, provider: str) -> CallObserver:
        return _ProviderCalls(self, provider)

    def upstream_call(self, provider: str, operation: str, error_class: str | None, seconds: float) -> None:
        key = (provider, operation, error_class)
        children = self._call_children.get(key)
        if children is None:
            children = self._call_children[key] = (
                self.upstream_calls.labels(provider, operation, error_class or "none"),
                self.upstream_duration.labels(provider, operation),
            )
        children[0].inc()
        children[1].observe(seconds)

    def watch(self, source: UsageSource) -> None:
        self._usage.source = source

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _ProviderCalls:
    """One provider's `CallObserver`: its name goes into every sample."""

    def __init__(self, metrics: PrometheusMetrics, provider: str) -> None:
        self._metrics = metrics
        self._provider = provider

    def upstream_call(self, operation: str, error_class: str | None, seconds: float) -> None:
        self._metrics.upstream_call(self._provider, operation, error_class, seconds)


class _UsageCollector(Collector):
    """Gauges read from the engine at scrape time: nothing to keep in step."""

    def __init__(self) -> None:
        self.source: UsageSource | None = None

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        source = self.source
        if source is not None:
            queue, in_use, limit, driving = families
            for provider, pool in sorted(source.usage().items()):
                queue.add_metric([provider], pool.queued)
                for account in pool.accounts:
                    labels = [provider, account.account or POOL]
                    in_use.add_metric(labels, account.in_use)
                    limit.add_metric(labels, 0 if account.disabled else account.limit)
            driving.add_metric([], source.driving)
        yield from families

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily("vidgate_queue_depth", "Jobs waiting in vidgate's queue for a slot on this provider.", labels=["provider"]),
            GaugeMetricFamily(
                "vidgate_slots_in_use", "Job slots held on each provider account (pool: the provider's one pool).", labels=["provider", "account"]
            ),
            GaugeMetricFamily("vidgate_slots_limit", "Job slots each provider account allows (0 while disabled).", labels=["provider", "account"]),
            GaugeMetricFamily("vidgate_jobs_driven", "Unfinished jobs this process drives."),
        )
