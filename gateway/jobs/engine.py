"""The job engine: drives every job this process holds, by performing what the pure
lifecycle (`gateway.jobs.lifecycle`) decides and feeding the outcomes back to it.

No task sleeps per job. A job is data in `_jobs` plus, at most, one live entry in a
heap of due times; one scheduler task wakes when the earliest is due and posts a
`Tick` into that job's mailbox. A job's mailbox is drained by one short task at a
time, so its steps are strictly sequential (an upstream call's outcome is processed
before anything that arrived meanwhile), while different jobs run concurrently.
Upstream calls are bounded per provider by the upstream client's in-flight limit,
not by job slots; store writes go through `JobWriter` (group commit).

Leases (`gateway.jobs.leases`) divide the jobs between processes sharing a store:
the engine beats one heartbeat per interval, which keeps everything it holds
whatever the count, and claims what nobody holds. A job it already drives is
never claimed twice, and a lost lease is a `LeaseLost` event, never a cancelled
task.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Literal, Protocol

import msgspec
import structlog

from gateway.clock import Clock
from gateway.health import HealthBoard
from gateway.http import RetryPolicy, call_with_retries
from gateway.jobs import lifecycle as lc
from gateway.jobs.leases import LeaseBook
from gateway.jobs.model import Job, MediaRef, OutputCopy, SlotRef, StatusEvent, WebhookDelivery
from gateway.jobs.request import adapter_request
from gateway.jobs.slots import PoolUsage, SlotBoard, SlotStore
from gateway.jobs.store import JobWrite, Lease
from gateway.jobs.writer import JobWriter
from gateway.logging import job_log_context
from gateway.metrics import NO_METRICS, JobMetrics
from gateway.pricing import output_seconds
from gateway.runtime import ProviderRuntime, Runtime
from providers.base import ErrorClass, ErrorInfo, GenerationRequest, Media, MediaKind, SubmitContext, UpstreamError, UpstreamJob, media_items
from providers.capabilities import ModelCaps

log = structlog.get_logger("vidgate.jobs")

SUBMIT_POLICY = RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=10.0, max_total=60.0)
TIMER_GRAIN = 0.01  # seconds: how late a timer may fire so that thousands of jobs' timers batch
CALL_POLICY = RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=8.0, max_total=60.0)
WRITE_RETRY_BASE = 0.5  # seconds before a failed job write is tried again; doubles per failure in a row
WRITE_RETRY_MAX = 10.0


# ---------------------------------------------------------------------------
# What the engine is handed
# ---------------------------------------------------------------------------


class EngineStore(Protocol):
    async def get_job(self, job_id: str, tenant: str | None = None) -> Job | None: ...
    async def claim_jobs(self, lease: Lease, now: float, limit: int) -> list[Job]: ...
    async def heartbeat(self, lease: Lease) -> bool: ...
    async def held_by(self, owner: str, job_ids: Sequence[str]) -> set[str]: ...
    async def release_leases(self, owner: str, job_ids: Sequence[str]) -> None: ...


class RuntimeSource(Protocol):
    @property
    def current(self) -> Runtime: ...


class MediaSource(Protocol):
    async def media_for(self, ref: MediaRef, *, delivery: Literal["bytes", "url"], inline: Mapping[MediaKind, int | None]) -> Media:
        """The medium as this adapter takes it: the caller's URL, inline bytes, or a URL vidgate serves."""
        ...


class Notifier(Protocol):
    def deliveries(self, job: Job) -> Sequence[WebhookDelivery]:
        """The webhook deliveries announcing a job's end, stored in the same write."""
        ...

    def published(self, job: Job, detail: str) -> None:
        """A status change was stored: tell watchers (server-sent events) and webhooks."""
        ...


Opener = Callable[[], AbstractAsyncContextManager[tuple[str, AsyncIterator[bytes]]]]


class OutputCopies(Protocol):
    async def copy(self, job_id: str, sources: Mapping[str, str | Opener | None]) -> OutputReport: ...


class OutputReport(Protocol):
    @property
    def copies(self) -> dict[str, OutputCopy]: ...
    @property
    def failures(self) -> dict[str, str]: ...


@dataclass(frozen=True, kw_only=True)
class EngineConfig:
    public_url: str  # upstream callbacks reach {public_url}/v1/callbacks/{token}
    poll_min: float = 1.0
    poll_max: float = 30.0
    keep_outputs: bool = True
    output_retention: float = 7 * 86400.0
    output_ttl: float = 86400.0
    claim_interval: float = 2.0
    max_jobs: int = 10_000


# ---------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------


class JobEngine:
    def __init__(
        self,
        *,
        store: EngineStore,
        runtime: RuntimeSource,
        health: HealthBoard,
        slot_store: SlotStore,
        leases: LeaseBook,
        writer: JobWriter,
        media: MediaSource,
        notifier: Notifier,
        outputs: OutputCopies | None,
        clock: Clock,
        config: EngineConfig,
        metrics: JobMetrics = NO_METRICS,
    ) -> None:
        self._store = store
        self._runtime = runtime
        self._health = health
        self.slots = SlotBoard(slot_store, self)  # the engine hears its grants (SlotListener)
        self.leases = leases
        self._writer = writer
        self._media = media
        self._notifier = notifier
        self._outputs = outputs
        self._clock = clock
        self._config = config
        self._metrics = metrics
        self._jobs: dict[str, Job] = {}  # every job driven here, as last stored (or decided)
        self._mail: dict[str, deque[tuple[lc.Event, asyncio.Future[None] | None]]] = {}
        self._draining: dict[str, asyncio.Task[None]] = {}
        self._logged_provider: dict[str, str] = {}  # the provider a drain task's log context names
        self._timers: list[tuple[float, int, str]] = []  # (due, seq, job id); stale entries are skipped
        self._timer_of: dict[str, int] = {}  # job id -> the seq of its live timer
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._renewed = asyncio.Event()  # set after every heartbeat
        self._prepared: dict[str, tuple[GenerationRequest[Media], dict[str, str], SubmitContext]] = {}
        self._wanted: dict[str, str] = {}  # job id -> the model id its pending slot request is for
        self._parked: set[str] = set()  # jobs waiting for a heartbeat before their next upstream call
        self._views: Mapping[str, lc.ProviderView] = {}
        self._views_key: tuple[int, int] | None = None
        self._unsaved: dict[str, _Unsaved] = {}  # jobs whose last write failed: what is left to do, retried on their timer

    # -- what the service calls ------------------------------------------------------

    def adopt(self, job: Job) -> None:
        """Drive a job this process just created (with a lease of `new_lease()`)."""
        self.leases.hold([job.id])
        self._start(job)

    def holds(self, job_id: str) -> bool:
        return job_id in self._jobs

    def new_lease(self) -> Lease:
        """A lease from now for a job this process is about to create."""
        return self.leases.new()

    def facts(self) -> lc.Facts:
        """What the lifecycle is told about the world right now."""
        return self._facts()

    def usage(self) -> dict[str, PoolUsage]:
        return self.slots.usage()

    async def cancel(self, job_id: str) -> Job | None:
        """Cancel a job driven here (upstream too, where it can be); the job after it, or
        None when this process does not drive it."""
        if job_id not in self._jobs:
            return None
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._post(job_id, lc.CancelRequested(), done)
        await done
        return self._jobs.get(job_id) or await self._store.get_job(job_id)

    def callback(self, job_id: str, upstream_id: str | None) -> bool:
        """An upstream said the job changed (naming its own id, maybe): look now."""
        if job_id not in self._jobs:
            return False
        self._post(job_id, lc.CalledBack(upstream_id))
        return True

    def reveal(self, job: Job, upstream_id: str) -> None:
        """A callback named an upstream job for a video that already ended: fetch it and
        let the lifecycle record it (no lease: an ended job is nobody's to drive)."""
        if job.id in self._jobs or not job.status.terminal:
            return
        self._jobs[job.id] = job
        self._post(job.id, lc.CalledBack(upstream_id))

    @property
    def driving(self) -> int:
        return len(self._jobs)

    # -- running ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Claim what nobody holds, then drive jobs until `stop` is set; the heartbeat is
        beaten every `claim_interval` by a task of its own, never starved by job work."""
        keeper = asyncio.create_task(self._keep_leases(stop), name="leases")
        try:
            while not stop.is_set():
                self.fire_due()
                await self._sleep_until_next(stop)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)

    def fire_due(self) -> int:
        """Post a `Tick` to every job whose time has come; returns how many."""
        now = self._clock.now()
        fired = 0
        while self._timers and self._timers[0][0] <= now:
            _, seq, job_id = heapq.heappop(self._timers)
            if self._timer_of.get(job_id) == seq:
                del self._timer_of[job_id]
                self._post(job_id, lc.Tick())
                fired += 1
        return fired

    def next_due(self) -> float | None:
        while self._timers and self._timer_of.get(self._timers[0][2]) != self._timers[0][1]:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    @property
    def quiet(self) -> bool:
        """No job has anything to do until time passes (every busy mailbox waits for a heartbeat)."""
        return all(job_id in self._parked for job_id in self._draining)

    async def settle(self) -> None:
        """Wait until the engine is `quiet`. For tests, which move time themselves."""
        while True:
            await self.slots.settle()
            busy = [task for job_id, task in self._draining.items() if job_id not in self._parked]
            if not busy:
                await asyncio.sleep(0)
                if self.quiet:
                    return
                continue
            await asyncio.wait(busy, timeout=0.05)

    async def claim(self) -> int:
        """Lease jobs nobody holds (a restart's own, or a dead replica's) and drive them."""
        room = self._config.max_jobs - len(self._jobs)
        if room <= 0:
            return 0
        claimed = await self._store.claim_jobs(self.leases.new(), self._clock.now(), room)
        self.leases.hold(j.id for j in claimed)
        fresh = [j for j in claimed if j.id not in self._jobs]  # already driven here: nothing changes
        if len(fresh) < len(claimed):
            # our own heartbeat had lapsed (it came late, e.g. the store was held up): nothing else changes
            log.warning("jobs.leases_lapsed_here", jobs=len(claimed) - len(fresh))
        for job in fresh:
            if job.slot is not None:
                self.slots.hold(job.id, job.slot)
            log.info("job.claimed", job_id=job.id, status=job.status.value)
            self._start(job)
        return len(fresh)

    async def renew(self) -> None:
        """Beat the heartbeat that keeps every job held here. When the store says another
        process may have claimed some of them meanwhile, ask which are still held: the
        others stop being driven here."""
        lease = self.leases.new()
        if not await self._store.heartbeat(lease):
            held = [j for j in self.leases.held() if j in self._jobs]
            kept = await self._store.held_by(lease.owner, held) if held else set()
            for job_id in set(held) - kept:
                self.leases.drop(job_id)
                job = self._jobs.get(job_id)
                if job is not None and not job.status.terminal:
                    log.warning("job.lease_lost", job_id=job_id)
                    self._post(job_id, lc.LeaseLost())
        self.leases.renewed(lease.until)
        self._renewed.set()
        self._renewed = asyncio.Event()
        self.slots.poke()

    async def stop(self) -> None:
        """Stop driving and hand the leases back (and the heartbeat with them), so another
        process takes the jobs at once."""
        held = self.leases.held()
        tasks = list(self._draining.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await self._store.release_leases(self.leases.owner, held)
        except Exception:  # shutting down: the leases lapse by themselves
            log.exception("jobs.lease_release_failed")

    async def _keep_leases(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.renew()
                await self.claim()
            except Exception:  # a store hiccup must not end the loop; leases lapse only if it lasts
                log.exception("jobs.lease_keeping_failed")
            await self._wait(stop, self._config.claim_interval)

    async def _sleep_until_next(self, stop: asyncio.Event) -> None:
        due = self.next_due()
        delay = self._config.claim_interval if due is None else max(0.0, due - self._clock.now())
        if 0 < delay < TIMER_GRAIN:
            delay = TIMER_GRAIN  # timers due within a grain fire together: one wake-up, not one per job
        self._wake.clear()
        await self._wait(stop, delay, self._wake)

    async def _wait(self, stop: asyncio.Event, seconds: float, *events: asyncio.Event) -> None:
        """Until `seconds` pass on the engine's clock, `stop` is set, or one of `events` is."""
        waiters = [asyncio.ensure_future(e.wait()) for e in (stop, *events)]
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        try:
            await asyncio.wait([sleeper, *waiters], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in (sleeper, *waiters):
                future.cancel()

    # -- mailboxes -------------------------------------------------------------------------------

    def _start(self, job: Job) -> None:
        self._jobs[job.id] = job
        self._post(job.id, lc.Started())

    def _post(self, job_id: str, event: lc.Event, done: asyncio.Future[None] | None = None) -> None:
        self._mail.setdefault(job_id, deque()).append((event, done))
        if job_id not in self._draining:
            # each drain task starts from a context of its own: its log lines name its job only
            job = self._jobs.get(job_id)
            provider = job.provider if job is not None else None
            if provider is not None:
                self._logged_provider[job_id] = provider
            self._draining[job_id] = asyncio.get_running_loop().create_task(
                self._drain(job_id), name=f"job-{job_id}", context=job_log_context(job_id, provider=provider)
            )

    async def _drain(self, job_id: str) -> None:
        try:
            while (mail := self._mail.get(job_id)) and mail:
                event, done = mail.popleft()
                try:
                    if job_id in self._jobs:
                        await self._step(job_id, event)
                except Exception:
                    log.exception("job.step_failed", on=type(event).__name__)
                finally:
                    if done is not None and not done.done():
                        done.set_result(None)
        finally:
            self._draining.pop(job_id, None)
            self._logged_provider.pop(job_id, None)
            if not self._mail.get(job_id):
                self._mail.pop(job_id, None)

    async def _step(self, job_id: str, event: lc.Event) -> None:
        unsaved = self._unsaved.get(job_id)
        if unsaved is not None and isinstance(event, lc.Tick):  # the retry timer of a failed write
            if await self._run(job_id, unsaved.actions, unsaved.before) and job_id in self._jobs:
                self._metrics.job_written(unsaved.before, self._jobs[job_id])
            return
        before = self._jobs[job_id]
        step = lc.decide(before, event, self._facts())
        self._jobs[job_id] = step.job
        if await self._run(job_id, step.actions, before):
            self._metrics.job_written(before, step.job)

    async def _run(self, job_id: str, actions: Sequence[lc.LifecycleAction], before: Job) -> bool:
        """Perform a step's actions in order; False when they stopped short (a write lost its
        race, or could not be stored): nothing after an unstored decision may run."""
        for i, action in enumerate(actions):
            if job_id not in self._jobs:
                break
            try:
                if not await self._do(job_id, action):
                    return False
            except Exception as exc:
                if not isinstance(action, lc.Save):
                    raise
                self._write_failed(job_id, exc, actions[i:], before)
                return False  # a submit, above all, must never run without its stored record
        return True

    def _write_failed(self, job_id: str, exc: Exception, rest: Sequence[lc.LifecycleAction], before: Job) -> None:
        """A job's write failed (the store is locked, read-only, unreachable). The decision
        stays in memory (it may know an upstream id the store does not) and the failed Save,
        with every action after it, runs again after a backoff, on the job's timer. A later
        step whose own write succeeds stores the decision as well, and the retry then only
        performs what is left."""
        earlier = self._unsaved.get(job_id)
        failures = (earlier.failures if earlier is not None else 0) + 1
        self._unsaved[job_id] = _Unsaved(failures, tuple(rest), earlier.before if earlier is not None else before)
        delay = min(WRITE_RETRY_MAX, WRITE_RETRY_BASE * 2 ** (failures - 1))
        log.warning("job.write_failed", job_id=job_id, error=type(exc).__name__, failures=failures, retry_in=delay)
        self._schedule(job_id, self._clock.now() + delay)

    def _facts(self) -> lc.Facts:
        runtime = self._runtime.current
        now = self._clock.now()
        # The provider views change with a reload or a cooldown: rebuilt at most once a second
        # per runtime, not on every step of every job.
        key = (id(runtime), int(now))
        if self._views_key != key:
            cooling = self._health.unavailable(now)
            self._views = {name: self._view(rt, name in runtime.providers, name in cooling) for name, rt in {**runtime.retired, **runtime.providers}.items()}
            self._views_key = key
        c = self._config
        return lc.Facts(
            now=now,
            providers=self._views,
            poll_min=c.poll_min,
            poll_max=c.poll_max,
            keep_outputs=c.keep_outputs and self._outputs is not None,
            output_retention=c.output_retention,
            output_ttl=c.output_ttl,
        )

    @staticmethod
    def _view(rt: ProviderRuntime, configured: bool, cooling: bool) -> lc.ProviderView:
        return lc.ProviderView(
            routable=configured and rt.settings.enabled,
            cooling=cooling,
            poll_interval=rt.settings.poll_interval_seconds,
            max_age=rt.max_age,
            finds=rt.descriptor.finds_lost_submits,
            calls_back=rt.descriptor.calls_back,
        )

    # -- actions -----------------------------------------------------------------------------------

    async def _do(self, job_id: str, action: lc.LifecycleAction) -> bool:
        """Perform one action; False when the rest of the step must not run (a write lost its race)."""
        job = self._jobs[job_id]
        match action:
            # the cases most steps take first: a match tries its cases in order
            case lc.Poll(provider, upstream_id):
                await self._upstream(job, provider, self._poll(job, provider, upstream_id), leased=not job.status.terminal)
            case lc.WakeAt(at):
                self._schedule(job_id, at)
            case lc.Save(detail, routine):
                return await self._save(job_id, job, detail, routine=routine)
            case lc.AcquireSlot(provider, model_id):
                self._acquire(job, provider, model_id)
            case lc.Prepare(provider, model_id, account):
                await self._upstream(job, provider, self._prepare(job, provider, account))
            case lc.Submit(provider, _):
                await self._upstream(job, provider, self._submit(job))
            case lc.Find(provider):
                await self._upstream(job, provider, self._find(job, provider))
            case lc.CancelUpstream(provider, upstream_id):
                await self._cancel_upstream(job, provider, upstream_id)
            case lc.CopyOutputs(provider, upstream):
                await self._copy_outputs(job, provider, upstream)
            case lc.RecordOutcome(provider, error_class):
                health = self._health[provider]
                if error_class is None:
                    health.success()
                else:
                    health.failure(error_class, self._clock.now())
            case lc.DisableAccount(provider, account, reason):
                self.slots.disable(provider, account, reason)
            case lc.Forget():
                self._forget(job_id)
        return True

    async def _save(self, job_id: str, job: Job, detail: str | None, *, routine: bool = False) -> bool:
        now = self._clock.now()
        job.updated_at = now
        event = StatusEvent(job_id=job.id, at=now, status=job.status.value, progress=job.progress, detail=detail) if detail else None
        deliveries = self._notifier.deliveries(job) if job.status.terminal and detail else ()
        written = await self._writer.write(JobWrite(job, deliveries=deliveries, event=event))
        if written is None:
            stored = await self._store.get_job(job_id)
            if stored is None:  # deleted meanwhile
                self._forget(job_id)
            else:
                self._mail.setdefault(job_id, deque()).appendleft((lc.Refreshed(stored), None))
            return False
        self._jobs[job_id] = written
        self._unsaved.pop(job_id, None)  # stored, and with it any decision whose write failed before
        if written.slot is None and self.slots.holds(job_id):
            self.slots.release(job_id)  # the write that gave it up is stored: the slot is free for the next job
        if detail:
            (log.debug if routine else log.info)("job.status_changed", job_id=job_id, status=written.status.value, detail=detail)
            self._notifier.published(written, detail)
        return True

    def _schedule(self, job_id: str, at: float) -> None:
        seq = next(self._seq)
        self._timer_of[job_id] = seq
        heapq.heappush(self._timers, (at, seq, job_id))
        if self._timers[0][1] == seq:  # earlier than what the scheduler sleeps for
            self._wake.set()

    def _acquire(self, job: Job, provider: str, model_id: str) -> None:
        rt = self._runtime.current.provider(provider)
        if rt is None:
            self._post(job.id, lc.SlotRefused(provider, model_id, f"provider {provider!r} is not configured"))
            return
        self._wanted[job.id] = model_id
        self.slots.request(job.id, provider, _regions_for(rt.descriptor.models.get(model_id), job.resolution), job.tenant)

    # the slot board's listener (gateway.jobs.slots.SlotListener)
    def slot_granted(self, job_id: str, slot: SlotRef) -> None:
        model_id = self._wanted.pop(job_id, None)
        if job_id not in self._jobs or model_id is None:
            self.slots.release(job_id)  # the job is no longer driven here; its next write clears the store's mark
            return
        self._post(job_id, lc.SlotGranted(slot.provider, model_id, slot.account))

    def slot_refused(self, job_id: str, provider: str, reason: str) -> None:
        model_id = self._wanted.pop(job_id, None)
        if job_id in self._jobs and model_id is not None:
            self._post(job_id, lc.SlotRefused(provider, model_id, reason))

    # -- upstream calls (each ends in one event posted to the job) -----------------------------------

    async def _upstream(self, job: Job, provider: str, call: Coroutine[object, None, lc.Event], *, leased: bool = True) -> None:
        rt = self._runtime.current.provider(provider)
        if rt is None:
            call.close()
            self._post(job.id, _lost_provider(job, provider))
            return
        if leased and not await self._lease_held(job.id):
            call.close()
            return
        if self._logged_provider.get(job.id) != provider:  # bound once per drain task, not per call
            structlog.contextvars.bind_contextvars(provider=provider)
            self._logged_provider[job.id] = provider
        self._post(job.id, await call)

    async def _lease_held(self, job_id: str) -> bool:
        """Hold off while the lease is about to lapse, until a heartbeat extends it (True)
        or the job stops being driven here (False)."""
        while not self.leases.holds(job_id):
            if job_id not in self._jobs:
                return False
            self._parked.add(job_id)
            try:
                await self._renewed.wait()
            finally:
                self._parked.discard(job_id)
        return job_id in self._jobs

    def _rt(self, provider: str) -> ProviderRuntime:
        rt = self._runtime.current.provider(provider)
        assert rt is not None, "checked by _upstream"
        return rt

    def _context(self, job: Job, account: str | None, rt: ProviderRuntime) -> SubmitContext:
        callback = f"{self._config.public_url.rstrip('/')}/v1/callbacks/{job.callback_token}" if job.callback_token else None
        return SubmitContext(account=account, callback_url=callback, callback_ref=job.id, max_age_seconds=rt.max_age)

    async def _prepare(self, job: Job, provider: str, account: str | None) -> lc.Event:
        rt = self._rt(provider)
        adapter = rt.adapter
        try:
            media = [await self._media.media_for(ref, delivery=adapter.media_delivery, inline=adapter.inline_media) for _, _, ref in media_items(job.request)]
            request = adapter_request(job.request, media)
            ctx = self._context(job, account, rt)
            refs = await call_with_retries(lambda: rt.client.upload_all(request, ctx), policy=CALL_POLICY, submit=False, sleep=self._clock.sleep, what="upload")
        except UpstreamError as exc:
            return lc.PrepareFailed(exc.info)
        except (KeyError, ValueError) as exc:  # a stored file is gone, or the adapter can't take the request
            return lc.PrepareFailed(ErrorInfo.of(ErrorClass.INVALID_REQUEST, f"could not prepare the request: {exc}"))
        except Exception as exc:  # nothing was paid for: this provider is unwell, the next may do
            log.exception("job.prepare_crashed", job_id=job.id)
            return lc.PrepareFailed(ErrorInfo.of(ErrorClass.UPSTREAM_UNAVAILABLE, f"uploads failed: {type(exc).__name__}", retryable=True))
        self._prepared[job.id] = (request, refs, ctx)
        return lc.Prepared()

    async def _submit(self, job: Job) -> lc.Event:
        att = job.attempt
        prepared = self._prepared.pop(job.id, None)
        if att is None or prepared is None:
            return lc.SubmitFailed(ErrorInfo.of(ErrorClass.UPSTREAM_UNAVAILABLE, "the prepared request was lost before the submit", retryable=True), False)
        rt = self._rt(att.provider)
        request, refs, ctx = prepared
        try:
            upstream = await call_with_retries(
                lambda: rt.client.submit(request, att.model_id, refs, ctx), policy=SUBMIT_POLICY, submit=True, sleep=self._clock.sleep, what="submit"
            )
        except UpstreamError as exc:
            if exc.ambiguous:
                log.warning("job.submit_ambiguous", job_id=job.id, provider=att.provider, error=str(exc))
            return lc.SubmitFailed(exc.info, exc.ambiguous)
        except Exception as exc:  # an error nobody classified: the request may have left, so it is an unknown outcome
            log.exception("job.submit_ambiguous", job_id=job.id, provider=att.provider)
            return lc.SubmitFailed(ErrorInfo.of(ErrorClass.UPSTREAM_UNAVAILABLE, f"submit failed: {type(exc).__name__}"), True)
        log.info("job.submitted", job_id=job.id, provider=att.provider, upstream_id=upstream.upstream_id, account=upstream.account or att.account)
        return lc.Submitted(self._priced(job, rt, att.model_id, upstream))

    async def _poll(self, job: Job, provider: str, upstream_id: str) -> lc.Event:
        try:
            rt = self._rt(provider)
            polled = await rt.client.poll(upstream_id)
        except UpstreamError as exc:
            log.info("job.poll_failed", job_id=job.id, error=str(exc), failures=job.poll_failures + 1)
            return lc.PollFailed(exc.info)
        except Exception as exc:
            log.exception("job.poll_failed", job_id=job.id, failures=job.poll_failures + 1)
            return lc.PollFailed(ErrorInfo.of(ErrorClass.UPSTREAM_UNAVAILABLE, f"poll failed: {type(exc).__name__}"))
        return lc.Polled(self._priced(job, rt, _model_id(job, provider, polled), polled), provider)

    async def _find(self, job: Job, provider: str) -> lc.Event:
        att = job.attempt
        try:
            rt = self._rt(provider)
            found = await rt.client.find(self._context(job, att.account if att else None, rt))
        except Exception as exc:  # a lookup that fails finds nothing; the next one may
            log.info("job.find_failed", job_id=job.id, error=str(exc))
            return lc.Found(None)
        if found is None:
            return lc.Found(None)
        log.info("job.reconciled", job_id=job.id, provider=provider, upstream_id=found.upstream_id)
        return lc.Found(self._priced(job, rt, _model_id(job, provider, found), found))

    @staticmethod
    def _priced(job: Job, rt: ProviderRuntime, model_id: str, up: UpstreamJob) -> UpstreamJob:
        """The answer with its cost in USD where a price is known (`gateway.pricing`)."""
        seconds, known = output_seconds(job.seconds, up.result.duration if up.result is not None else None)
        try:
            cost = rt.pricer.price(up.cost, model_id=model_id, resolution=job.resolution, seconds=seconds, seconds_known=known)
        except Exception:  # a price table's bug must not cost a job its answer
            log.exception("job.pricing_failed", job_id=job.id, provider=rt.name)
            return up
        return up if cost == up.cost else msgspec.structs.replace(up, cost=cost)

    async def _cancel_upstream(self, job: Job, provider: str, upstream_id: str) -> None:
        rt = self._runtime.current.provider(provider)
        if rt is None or not upstream_id:
            return
        try:
            await rt.client.cancel(upstream_id)
        except UpstreamError as exc:
            log.warning("job.cancel_upstream_failed", job_id=job.id, error=str(exc))

    async def _copy_outputs(self, job: Job, provider: str, up: UpstreamJob) -> None:
        """Keep vidgate's own copy before announcing completion; a copy that fails leaves the
        upstream link as the only source, never fails the job."""
        rt = self._runtime.current.provider(provider)
        if self._outputs is None or up.result is None or rt is None:
            self._post(job.id, lc.Copied({}))
            return
        result, client = up.result, rt.client

        @asynccontextmanager
        async def from_content_endpoint() -> AsyncIterator[tuple[str, AsyncIterator[bytes]]]:
            async with client.stream_content(up.upstream_id, up) as response:
                yield response.headers.get("content-type", "video/mp4"), response.aiter_bytes()

        report = await self._outputs.copy(
            job.id, {"video": result.video_url or from_content_endpoint, "thumbnail": result.thumbnail_url, "last_frame": result.last_frame_url}
        )
        if report.failures:
            log.warning("job.output_copy_failed", job_id=job.id, failures=report.failures)
        self._post(job.id, lc.Copied(report.copies))

    def _forget(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)
        self._unsaved.pop(job_id, None)
        self._timer_of.pop(job_id, None)
        self._prepared.pop(job_id, None)
        self._wanted.pop(job_id, None)
        self.leases.drop(job_id)
        self.slots.withdraw(job_id)
        self.slots.release(job_id)


def _model_id(job: Job, provider: str, up: UpstreamJob) -> str:
    """The upstream model id the job runs on at `provider`: its attempt there, else the answer's."""
    att = next((a for a in reversed(job.attempts) if a.provider == provider), None)
    return att.model_id if att is not None else (up.model or "")


@dataclass(frozen=True)
class _Unsaved:
    failures: int  # in a row
    actions: tuple[lc.LifecycleAction, ...]  # the Save that failed and everything after it
    before: Job  # the job before the step whose write failed (what metrics compare the outcome with)


def _lost_provider(job: Job, provider: str) -> lc.Event:
    info = ErrorInfo.of(ErrorClass.INVALID_REQUEST, f"provider {provider!r} is no longer configured")
    return lc.PollFailed(info) if job.attempt is not None and job.attempt.status == "submitted" else lc.PrepareFailed(info)


def _regions_for(caps: ModelCaps | None, resolution: str | None) -> frozenset[str] | None:
    """The account regions that can run this model at this resolution (None = any)."""
    if caps is None or not caps.regions:
        return None
    regions = caps.regions
    if resolution is not None and resolution in caps.resolution_regions:
        regions = regions & caps.resolution_regions[resolution]
    return frozenset(regions)
