"""Drives every job from queued to its end: submit, poll, fail over, notify.

One asyncio task per active job this process holds the lease of. A job waits
in vidgate's own queue for a slot on its provider (account `maxJobs` / provider
concurrency), is submitted with its attempt persisted before the paid call, then
polled with backoff (or woken early by an upstream callback) until it ends.

Leases (`gateway.jobs.leases`) divide the jobs between processes sharing one
store: `keep_leases()` renews what this process holds, cancels the tasks of
leases it lost, and claims unheld jobs (a restart's own jobs, or a dead
replica's once its leases lapse). Every step that reaches the upstream first
checks the lease is still good.

The terminal status and its webhook deliveries are written in one transaction
(`Store.update_job(deliveries=...)`); only the process whose write wins the
version check produces them, so an event is never announced twice.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import structlog

from gateway.events import EventHub
from gateway.health import ProviderHealth
from gateway.http import RetryPolicy, call_with_retries
from gateway.jobs.capacity import AccountPool, NoAccount
from gateway.jobs.leases import LeaseBook
from gateway.jobs.model import Attempt, Job, OutputCopy, StatusEvent, WebhookDelivery
from gateway.jobs.request import rebuild_request
from gateway.jobs.store import StaleJob, Store
from gateway.logging import bind_job_context
from gateway.outputs import OutputCopier
from gateway.policy import Action, action_for
from providers.base import (
    ErrorClass,
    ErrorInfo,
    JobStatus,
    SubmitContext,
    UpstreamError,
    UpstreamJob,
)
from providers.capabilities import ModelCaps
from providers.client import UpstreamClient
from providers.descriptor import ProviderDescriptor

log = structlog.get_logger("vidgate.jobs")

MAX_POLL_FAILURES = 12
SUBMIT_POLICY = RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=10.0, max_total=60.0)
CALL_POLICY = RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=8.0, max_total=60.0)


def _no_outbox(job: Job) -> Sequence[WebhookDelivery]:
    return ()


class ProviderRuntime:
    """One configured provider, live: its adapter kind, client and slots."""

    def __init__(self, name: str, kind: ProviderDescriptor, client: UpstreamClient, pool: AccountPool, poll_interval: float) -> None:
        self.name = name
        self.kind = kind
        self.client = client
        self.pool = pool
        self.poll_interval = poll_interval
        self.health = ProviderHealth()


class JobRunner:
    def __init__(
        self,
        store: Store,
        providers: dict[str, ProviderRuntime],
        *,
        media: Any,
        hub: EventHub,
        on_terminal: Callable[[Job], Awaitable[None]],
        public_url: str,
        poll_min: float,
        poll_max: float,
        output_ttl: float,
        leases: LeaseBook,
        claim_interval: float = 2.0,
        max_jobs: int = 1000,
        outbox: Callable[[Job], Sequence[WebhookDelivery]] = _no_outbox,
        outputs: OutputCopier | None = None,
        output_retention: float = 0.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.providers = providers
        self.media = media
        self.hub = hub
        self.on_terminal = on_terminal
        self.public_url = public_url.rstrip("/")
        self.poll_min = poll_min
        self.poll_max = poll_max
        self.output_ttl = output_ttl
        self.leases = leases
        self.claim_interval = claim_interval
        self.max_jobs = max_jobs
        self.outbox = outbox
        self.outputs = outputs
        self.output_retention = output_retention
        self.clock = clock
        self.sleep = sleep
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.wakeups: dict[str, asyncio.Event] = {}
        self._slots: dict[str, tuple[ProviderRuntime, str | None]] = {}  # job id -> the provider slot it holds

    # -- lifecycle -----------------------------------------------------------

    async def resume(self) -> int:
        """Claim every active job nobody holds and drive it (at start-up: this store's
        jobs from before a restart, once their old leases lapse)."""
        return await self.claim()

    async def claim(self) -> int:
        """Lease unheld active jobs, up to `max_jobs` driven at once, and drive them."""
        room = self.max_jobs - len(self.tasks)
        if room <= 0:
            return 0
        lease = self.leases.new()
        jobs = await self.store.claim_jobs(lease, self.clock(), room)
        self.leases.hold((j.id for j in jobs), lease.until)
        for job in jobs:
            att = job.attempt
            if att is not None and att.status in ("submitting", "submitted") and att.provider in self.providers:
                runtime = self.providers[att.provider]
                runtime.pool.claim(att.account)
                self._slots[job.id] = (runtime, att.account)
            log.info("job.claimed", job_id=job.id, status=job.status.value)
            self.spawn(job.id)
        return len(jobs)

    async def renew(self) -> None:
        """Extend every lease held; stop driving the jobs whose lease was lost."""
        held = self.leases.held()
        if not held:
            return
        lease = self.leases.new()
        kept = await self.store.renew_leases(lease, held)
        self.leases.hold(kept, lease.until)
        for job_id in set(held) - kept:
            if not self.leases.has(job_id):
                continue  # it ended here while the renewal ran: not lost, just done
            self.leases.drop(job_id)
            task = self.tasks.get(job_id)
            if task is not None:
                log.warning("job.lease_lost", job_id=job_id)
                task.cancel()

    async def keep_leases(self, stop: asyncio.Event) -> None:
        """Renew and claim every `claim_interval` until `stop` is set."""
        while not stop.is_set():
            try:
                await self.renew()
                await self.claim()
            except Exception:  # a store hiccup must not end the loop; leases lapse only if it lasts
                log.exception("jobs.lease_keeping_failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.claim_interval)
            except TimeoutError:
                pass

    def adopt(self, job_id: str, until: float) -> None:
        """Drive a job this process just created with a lease ending at `until`."""
        self.leases.hold([job_id], until)
        self.spawn(job_id)

    def spawn(self, job_id: str) -> None:
        if job_id in self.tasks:
            return
        self.wakeups[job_id] = asyncio.Event()
        self.tasks[job_id] = asyncio.create_task(self._drive(job_id), name=f"job-{job_id}")

    def wake(self, job_id: str) -> bool:
        event = self.wakeups.get(job_id)
        if event is None:
            return False
        event.set()
        return True

    async def stop(self) -> None:
        """Stop driving jobs and hand their leases back, so another process takes them at once."""
        held = self.leases.held()  # before the tasks end and drop them
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if held:
            try:
                await self.store.release_leases(self.leases.owner, held)
            except Exception:  # shutting down: the leases lapse by themselves
                log.exception("jobs.lease_release_failed")

    async def cancel(self, job_id: str) -> Job | None:
        """Stop driving the job, cancel it upstream where possible, mark it cancelled."""
        task = self.tasks.get(job_id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        job = await self.store.get_job(job_id)
        if job is None or job.status.terminal:
            return job
        att = job.attempt
        if att is not None and att.upstream_id and att.status == "submitted":
            runtime = self.providers.get(att.provider)
            if runtime is not None:
                try:
                    await runtime.client.cancel(att.upstream_id)
                except UpstreamError as exc:
                    log.warning("job.cancel_upstream_failed", job_id=job_id, error=str(exc))
            att.status = "cancelled"
            att.ended_at = self.clock()
        await self._release(job_id)
        job.status = JobStatus.CANCELLED
        job.error = ErrorInfo.of(ErrorClass.INVALID_REQUEST, "Cancelled by the caller", code="cancelled")
        job.completed_at = self.clock()
        return await self._save(job, "cancelled")

    # -- the drive loop --------------------------------------------------------

    async def _drive(self, job_id: str) -> None:
        try:
            with bind_job_context(job_id, None):
                job = await self.store.get_job(job_id)
                while job is not None and not job.status.terminal:
                    await self._await_lease(job_id)
                    att = job.attempt
                    if att is None or att.status == "failed":
                        job = await self._submit_next(job)
                    elif att.status in ("submitting", "unknown"):
                        job = await self._unknown_outcome(job)
                    else:
                        job = await self._poll(job)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job.crashed", job_id=job_id)
        finally:
            self.tasks.pop(job_id, None)
            self.wakeups.pop(job_id, None)
            self.leases.drop(job_id)
            await self._release(job_id)

    async def _await_lease(self, job_id: str) -> None:
        """Hold off while the lease is about to lapse; `renew()` extends it or cancels this task."""
        while not self.leases.holds(job_id):  # noqa: ASYNC110 - replaced by the engine
            await asyncio.sleep(min(0.5, self.claim_interval / 2))

    async def _release(self, job_id: str) -> None:
        """Free the provider slot the job holds, if any (safe to call twice)."""
        held = self._slots.pop(job_id, None)
        if held is not None:
            runtime, account = held
            await runtime.pool.release(account)

    async def _submit_next(self, job: Job) -> Job:
        tried = {a.provider for a in job.attempts}
        remaining = [c for c in job.routing.usable if c.provider not in tried and c.provider in self.providers]
        now = self.clock()
        # Prefer a provider that is not cooling down; if all are, try the first rather than fail.
        candidate = next((c for c in remaining if self.providers[c.provider].health.unavailable(now) is None), None)
        candidate = candidate or (remaining[0] if remaining else None)
        if candidate is None:
            last = job.attempt.error if job.attempt else None
            return await self._finish_failed(job, last or ErrorInfo.of(ErrorClass.UPSTREAM_UNAVAILABLE, "No provider could take the job"))
        runtime = self.providers[candidate.provider]
        model_id = candidate.model_id or ""
        attempt = Attempt(provider=runtime.name, model_id=model_id, started_at=self.clock())
        try:
            account = await runtime.pool.acquire(_regions_for(runtime.kind.models.get(model_id), job.resolution), tenant=job.tenant)
        except NoAccount as exc:
            return await self._attempt_failed(job, attempt, ErrorInfo.of(ErrorClass.SESSION_EXPIRED, str(exc), code="no_account"), runtime)
        attempt.account = account
        self._slots[job.id] = (runtime, account)  # freed by _release, or by _drive when the task ends

        structlog.contextvars.bind_contextvars(provider=runtime.name)
        try:
            request = await rebuild_request(job, self.media, runtime.client.adapter.media_delivery)
            ctx = SubmitContext(
                account=account,
                callback_url=f"{self.public_url}/v1/callbacks/{job.callback_token}" if job.callback_token else None,
                callback_ref=job.id,
            )
            refs = await call_with_retries(lambda: runtime.client.upload_all(request, ctx), policy=CALL_POLICY, submit=False, sleep=self.sleep, what="upload")
            # Record the attempt before the paid call: a crash from here on is an unknown outcome, never a blind resend.
            job.attempts.append(attempt)
            job = await self._save(job, None)
            attempt = job.attempts[-1]
            await self._await_lease(job.id)
            upstream = await call_with_retries(
                lambda: runtime.client.submit(request, model_id, refs, ctx), policy=SUBMIT_POLICY, submit=True, sleep=self.sleep, what="submit"
            )
        except UpstreamError as exc:
            await self._release(job.id)
            if exc.ambiguous:
                if attempt not in job.attempts:
                    job.attempts.append(attempt)
                attempt.status = "unknown"
                attempt.error = exc.info
                log.warning("job.submit_ambiguous", job_id=job.id, provider=runtime.name, error=str(exc))
                return await self._save(job, None)
            return await self._attempt_failed(job, attempt, exc.info, runtime)
        attempt.status = "submitted"
        attempt.upstream_id = upstream.upstream_id
        attempt.upstream_status = upstream.upstream_status
        attempt.account = upstream.account or account
        job.status = upstream.status if not upstream.status.terminal else JobStatus.IN_PROGRESS
        job.progress = upstream.progress or job.progress
        job.cost = upstream.cost or job.cost
        job.next_poll_at = self.clock() + self.poll_min
        log.info("job.submitted", job_id=job.id, provider=runtime.name, upstream_id=upstream.upstream_id, account=attempt.account)
        return await self._save(job, "submitted")

    async def _poll(self, job: Job) -> Job:
        att = job.attempt
        assert att is not None and att.upstream_id is not None
        runtime = self.providers.get(att.provider)
        if runtime is None:
            return await self._finish_failed(job, ErrorInfo.of(ErrorClass.INVALID_REQUEST, f"provider {att.provider!r} is no longer configured"))
        wait = max(0.0, (job.next_poll_at or 0) - self.clock())
        await self._wait(job.id, wait)
        try:
            upstream = await runtime.client.poll(att.upstream_id)
        except UpstreamError as exc:
            job = await self.store.get_job(job.id) or job
            if exc.info.retryable and job.poll_failures < MAX_POLL_FAILURES:
                job.poll_failures += 1
                delay = exc.info.retry_after or min(self.poll_max, self.poll_min * 2**job.poll_failures)
                job.next_poll_at = self.clock() + delay
                log.info("job.poll_failed", job_id=job.id, error=str(exc), failures=job.poll_failures)
                return await self._save(job, None)
            await self._release(job.id)
            return await self._attempt_failed(job, job.attempts[-1], exc.info, runtime)
        job = await self.store.get_job(job.id) or job
        return await self._apply(job, upstream, runtime)

    async def _apply(self, job: Job, up: UpstreamJob, runtime: ProviderRuntime) -> Job:
        att = job.attempt
        assert att is not None
        changed = up.status != job.status or (up.progress or 0) != job.progress
        att.upstream_status = up.upstream_status
        job.poll_failures = 0
        job.cost = up.cost or job.cost
        if up.progress is not None:
            job.progress = up.progress
        # Poll slowly at first for a provider's configured interval, then back off as the job ages.
        age = self.clock() - att.started_at
        job.next_poll_at = self.clock() + min(self.poll_max, max(self.poll_min, runtime.poll_interval, age / 10))
        if up.status is JobStatus.COMPLETED:
            await self._release(job.id)
            runtime.health.success()
            job.outputs = await self._copy_outputs(job, up, runtime)
            att.status = "completed"
            att.ended_at = self.clock()
            job.status = JobStatus.COMPLETED
            job.result = up.result
            job.progress = 100
            job.completed_at = self.clock()
            # our copy outlives the upstream link; without one, the link's life is all there is
            job.expires_at = job.completed_at + (self.output_retention if "video" in job.outputs else self.output_ttl)
            job.error = None
            return await self._save(job, "completed")
        if up.status is JobStatus.CANCELLED:
            await self._release(job.id)
            att.status = "cancelled"
            att.ended_at = self.clock()
            job.status = JobStatus.CANCELLED
            job.completed_at = self.clock()
            job.error = up.error or ErrorInfo.of(ErrorClass.INVALID_REQUEST, "Cancelled upstream", code="cancelled")
            return await self._save(job, "cancelled upstream")
        if up.status is JobStatus.FAILED:
            await self._release(job.id)
            error = up.error or ErrorInfo.of(ErrorClass.GENERATION_FAILED, "The upstream job failed without a reason")
            return await self._attempt_failed(job, att, error, runtime)
        job.status = up.status
        if self._past_queue_deadline(job, att, up):
            return await self._abandon_queued(job, att, runtime)
        if job.queued_deadline_seconds is not None and up.status is JobStatus.QUEUED:
            # look again right when the deadline passes, not a poll interval later
            job.next_poll_at = min(job.next_poll_at or 0, att.started_at + job.queued_deadline_seconds + 0.05)
        return await self._save(job, "progress" if changed else None)

    def _past_queue_deadline(self, job: Job, att: Attempt, up: UpstreamJob) -> bool:
        deadline = job.queued_deadline_seconds
        return deadline is not None and up.status is JobStatus.QUEUED and self.clock() - att.started_at > deadline

    async def _abandon_queued(self, job: Job, att: Attempt, runtime: ProviderRuntime) -> Job:
        """The route's deadline passed with the job still queued upstream: cancel it there, move on."""
        assert att.upstream_id is not None
        try:
            await runtime.client.cancel(att.upstream_id)
        except UpstreamError as exc:
            log.warning("job.deadline_cancel_failed", job_id=job.id, error=str(exc))
        await self._release(job.id)
        error = ErrorInfo.of(
            ErrorClass.TIMEOUT,
            f"still queued upstream after the route's {job.queued_deadline_seconds:g} s deadline; cancelled there",
            code="queued_deadline",
        )
        return await self._attempt_failed(job, att, error, runtime)

    async def _attempt_failed(self, job: Job, att: Attempt, error: ErrorInfo, runtime: ProviderRuntime) -> Job:
        """Close the attempt; fail over to the next candidate when the policy allows it."""
        runtime.health.failure(error.error_class, self.clock())
        if error.error_class is ErrorClass.SESSION_EXPIRED and att.account is not None:
            await runtime.pool.disable(att.account, f"session expired: {error.message}")
        if att not in job.attempts:
            job.attempts.append(att)
        att.status = "failed"
        att.error = error
        att.ended_at = self.clock()
        tried = {a.provider for a in job.attempts}
        more = any(c.provider not in tried and c.provider in self.providers for c in job.routing.usable)
        failover = more and action_for(error.error_class) is Action.NEXT
        log.info("job.attempt_failed", job_id=job.id, provider=att.provider, error_class=error.error_class.value, failover=failover)
        if failover:
            job.status = JobStatus.QUEUED
            job.progress = 0
            return await self._save(job, f"failover after {error.error_class.value}")
        return await self._finish_failed(job, error)

    async def _unknown_outcome(self, job: Job) -> Job:
        """A submit whose outcome we never learned (timeout, broken answer, crash).

        It is never resent: a second paid job could be created. The job fails
        with the attempt marked `unknown`, so an operator can reconcile it
        against the upstream's own records.
        """
        att = job.attempt
        assert att is not None
        att.status = "unknown"
        att.ended_at = self.clock()
        runtime = self.providers.get(att.provider)
        if runtime is not None:
            runtime.health.failure(att.error.error_class if att.error else ErrorClass.UPSTREAM_UNAVAILABLE, self.clock())
        info = ErrorInfo.of(
            ErrorClass.UPSTREAM_UNAVAILABLE,
            "The upstream's answer to the submit was lost; vidgate did not resend it to avoid a duplicate paid job",
            code="submit_outcome_unknown",
            retryable=False,
        )
        if att.error is None:
            att.error = info
        return await self._finish_failed(job, info)

    async def _finish_failed(self, job: Job, error: ErrorInfo) -> Job:
        job.status = JobStatus.FAILED
        job.error = error
        job.completed_at = self.clock()
        log.info("job.failed", job_id=job.id, error_class=error.error_class.value)
        return await self._save(job, "failed")

    async def _copy_outputs(self, job: Job, up: UpstreamJob, runtime: ProviderRuntime) -> dict[str, OutputCopy]:
        """Keep vidgate's own copy of the outputs before announcing completion; a copy
        that fails leaves the upstream link as the only source, never fails the job."""
        if self.outputs is None or up.result is None:
            return {}
        result = up.result

        @asynccontextmanager
        async def from_content_endpoint() -> AsyncIterator[tuple[str, AsyncIterator[bytes]]]:
            async with runtime.client.stream_content(up.upstream_id, up) as response:
                yield response.headers.get("content-type", "video/mp4"), response.aiter_bytes()

        report = await self.outputs.copy(
            job.id,
            {"video": result.video_url or from_content_endpoint, "thumbnail": result.thumbnail_url, "last_frame": result.last_frame_url},
        )
        if report.failures:
            log.warning("job.output_copy_failed", job_id=job.id, failures=report.failures)
        return report.copies

    # -- helpers -------------------------------------------------------------

    async def _wait(self, job_id: str, seconds: float) -> None:
        event = self.wakeups.get(job_id)
        if event is None:
            await self.sleep(seconds)
            return
        try:
            await asyncio.wait_for(event.wait(), timeout=seconds)
        except TimeoutError:
            pass
        event.clear()

    async def _save(self, job: Job, event: str | None) -> Job:
        """Write the job; a terminal status is written together with its webhook deliveries."""
        job.updated_at = self.clock()
        deliveries = self.outbox(job) if job.status.terminal else ()
        for _ in range(5):
            try:
                saved = await self.store.update_job(job, deliveries=deliveries)
                break
            except StaleJob:
                fresh = await self.store.get_job(job.id)
                if fresh is None:
                    return job
                if fresh.cancel_requested or fresh.status.terminal:
                    return fresh
                job.version = fresh.version
        else:  # pragma: no cover - five lost races in a row
            raise StaleJob(job.id)
        if event is not None:
            await self.store.add_event(StatusEvent(job_id=job.id, at=job.updated_at, status=job.status.value, progress=job.progress, detail=event))
            self.hub.publish(saved)
            log.info("job.status_changed", job_id=job.id, status=job.status.value, detail=event)
        if saved.status.terminal:
            self.leases.drop(job.id)  # nothing left to drive; a renewal must not count it lost
            await self.on_terminal(saved)
        return saved


def _regions_for(caps: ModelCaps | None, resolution: str | None) -> frozenset[str] | None:
    """The account regions that can run this model at this resolution (None = any)."""
    if caps is None or not caps.regions:
        return None
    regions = caps.regions
    if resolution is not None and resolution in caps.resolution_regions:
        regions = regions & caps.resolution_regions[resolution]
    return frozenset(regions)


def new_token() -> str:
    return secrets.token_urlsafe(24)
