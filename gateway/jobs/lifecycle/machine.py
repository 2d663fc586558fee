"""A job's lifecycle as a pure state machine (in the style of h11): every decision, no I/O.

    step = decide(job, Polled(upstream), facts)
    step.job        # the job as it is now (a new object; the argument is not changed)
    step.actions    # what the driver must do, in order: Save, Poll, WakeAt, ...

`decide` never awaits, never reads the clock (`facts.now` is the time), never touches
the store or an upstream. The engine (`gateway.jobs.engine`) performs the actions and
feeds their outcomes back as events. A job's phase is derived from its last attempt
(see `phase`); docs/architecture.md has the table of phases, events and actions.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from gateway.jobs.lifecycle.types import (
    AcquireSlot,
    CalledBack,
    CancelRequested,
    CancelUpstream,
    Copied,
    CopyOutputs,
    DisableAccount,
    Event,
    Facts,
    Find,
    Forget,
    Found,
    LeaseLost,
    LifecycleAction,
    Poll,
    Polled,
    PollFailed,
    Prepare,
    Prepared,
    PrepareFailed,
    ProviderView,
    RecordOutcome,
    Refreshed,
    Save,
    SlotGranted,
    SlotRefused,
    Started,
    Step,
    Submit,
    SubmitFailed,
    Submitted,
    Tick,
    WakeAt,
)
from gateway.jobs.model import Attempt, Job, OutputCopy, SlotRef
from gateway.policy import Action, action_for
from providers.base import ErrorClass, ErrorInfo, JobStatus, UpstreamJob

Phase = Literal["pending", "preparing", "submitting", "reconciling", "running", "ended"]

PROGRESS_STEP = 10  # points of progress between two writes of a running job

UNKNOWN_OUTCOME = "submit_outcome_unknown"
MAX_AGE = "upstream_timeout"
QUEUED_DEADLINE = "queued_deadline"
CANCELLED = "cancelled"
NO_ACCOUNT = "no_account"


# ---------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------


def phase(job: Job) -> Phase:
    if job.status.terminal:
        return "ended"
    att = job.attempt
    if att is None or att.status in ("failed", "cancelled", "unknown", "completed"):
        return "pending"
    if att.status == "submitted":
        return "running"
    if att.status == "preparing":
        return "preparing"
    return "submitting" if att.status == "submitting" else "reconciling"


def decide(job: Job, event: Event, facts: Facts) -> Step:
    """The job after `event`, and what to do about it."""
    job = _copy(job)
    match event:
        case Started():
            return _started(job, facts)
        case Refreshed(stored):
            return _refreshed(job, stored, facts)
        case Tick():
            return _tick(job, facts)
        case SlotGranted():
            return _slot_granted(job, event, facts)
        case SlotRefused(provider, model_id, reason):
            if phase(job) != "pending":
                return Step(job)
            att = Attempt(provider=provider, model_id=model_id, started_at=facts.now)
            job.attempts.append(att)
            return _attempt_failed(job, ErrorInfo.of(ErrorClass.SESSION_EXPIRED, reason, reason=NO_ACCOUNT), facts)
        case Prepared():
            return _prepared(job, facts)
        case PrepareFailed(error):
            return _attempt_failed(job, error, facts) if phase(job) == "preparing" else Step(job)
        case Submitted(upstream):
            return _submitted(job, upstream, facts)
        case SubmitFailed(error, ambiguous):
            if phase(job) != "submitting":
                return Step(job)
            return _reconcile(job, error, facts) if ambiguous else _attempt_failed(job, error, facts)
        case Polled(upstream, provider):
            return _polled(job, upstream, provider, facts)
        case PollFailed(error):
            return _poll_failed(job, error, facts)
        case Found(upstream):
            return _found(job, upstream, facts)
        case CalledBack(upstream_id):
            return _called_back(job, upstream_id, facts)
        case Copied(outputs):
            return _complete(job, dict(outputs), facts)
        case CancelRequested():
            return _cancel(job, facts)
        case LeaseLost():
            return Step(job, [Forget()])
    raise TypeError(f"not a lifecycle event: {event!r}")  # pragma: no cover


# -- starting -------------------------------------------------------------------


def _started(job: Job, facts: Facts) -> Step:
    match phase(job):
        case "ended":
            return Step(job, [Forget()])
        case _ if job.cancel_requested:
            return _cancel(job, facts)
        case "pending":
            return _next_attempt(job, facts, detail=None)
        case "preparing":
            # uploads were under way when the last owner stopped: nothing was paid for
            att = _att(job)
            att.status, att.ended_at = "failed", facts.now
            att.error = ErrorInfo.of(ErrorClass.UPSTREAM_UNAVAILABLE, "stopped before the submit", retryable=True)
            job.slot = None
            return _next_attempt(job, facts, detail=None)
        case "submitting":
            error = ErrorInfo.of(ErrorClass.UPSTREAM_UNAVAILABLE, "the process driving the submit stopped before its answer arrived")
            return _reconcile(job, error, facts)
        case "reconciling":
            job.next_poll_at = facts.now
            return _tick(job, facts)
        case _:  # running
            job.next_poll_at = min(job.next_poll_at or facts.now, facts.now)
            return _tick(job, facts)


def _refreshed(job: Job, stored: Job, facts: Facts) -> Step:
    """Our write lost to someone else's. A caller's cancel is honoured on top of our own
    state (which may know an upstream id the store does not yet); any other change means
    another process drives the job now."""
    if not stored.status.terminal and stored.cancel_requested and not job.cancel_requested:
        job.version, job.cancel_requested = stored.version, True
        return _cancel(job, facts)
    return Step(job, [Forget()])


def _next_attempt(job: Job, facts: Facts, *, detail: str | None) -> Step:
    """Ask for a slot on the next candidate, or fail when none is left."""
    candidate = _next_candidate(job, facts)
    if candidate is None:
        last = job.attempt.error if job.attempt else None
        return _fail(job, last or ErrorInfo.of(ErrorClass.UPSTREAM_UNAVAILABLE, "no configured provider can take the job"), facts)
    provider, model_id = candidate
    actions: list[LifecycleAction] = [Save(detail)] if detail is not None else []
    if job.slot is not None and job.slot.provider != provider:
        job.slot = None  # a slot on another provider, left by a process that stopped
        actions = [Save(detail)]
    if job.slot is not None:  # already holds one there (claimed after a stop): use it
        return _slot_granted(job, SlotGranted(provider, model_id, job.slot.account), facts, actions)
    return Step(job, [*actions, AcquireSlot(provider, model_id)])


def _next_candidate(job: Job, facts: Facts) -> tuple[str, str] | None:
    tried = {a.provider for a in job.attempts}
    remaining = [c for c in job.routing.usable if c.provider not in tried and _view(facts, c.provider, routable=True)]
    # Prefer a provider that is not cooling down; if all are, try the first rather than fail.
    ready = [c for c in remaining if not facts.providers[c.provider].cooling]
    pool = ready or remaining
    return (pool[0].provider, pool[0].model_id or "") if pool else None


def _slot_granted(job: Job, event: SlotGranted, facts: Facts, actions: list[LifecycleAction] | None = None) -> Step:
    actions = list(actions or [])
    if phase(job) != "pending" or job.cancel_requested:
        # granted to a job that no longer wants it (cancelled meanwhile): hand it back
        job.slot = None
        return Step(job, [*actions, Save(None)])
    job.slot = SlotRef(event.provider, event.account)
    job.attempts.append(Attempt(provider=event.provider, model_id=event.model_id, started_at=facts.now, status="preparing", account=event.account))
    return Step(job, [*actions, Prepare(event.provider, event.model_id, event.account)])


def _prepared(job: Job, facts: Facts) -> Step:
    if phase(job) != "preparing":
        return Step(job)
    att = _att(job)
    att.status = "submitting"
    # Stored before the paid call: from here a stop is an unknown outcome, never a resend.
    return Step(job, [Save(None), Submit(att.provider, att.model_id)])


def _submitted(job: Job, up: UpstreamJob, facts: Facts) -> Step:
    if phase(job) != "submitting":
        return Step(job)
    att = _att(job)
    att.status, att.upstream_id, att.upstream_status = "submitted", up.upstream_id, up.upstream_status
    att.account = up.account or att.account
    att.cost = up.cost or att.cost
    before = job.status
    job.status = up.status if up.status in (JobStatus.QUEUED, JobStatus.IN_PROGRESS) else JobStatus.IN_PROGRESS
    job.progress = up.progress or job.progress
    job.cost = up.cost or job.cost
    job.next_poll_at = facts.now + facts.poll_min
    if job.cancel_requested:
        return _cancel(job, facts)
    return Step(job, [Save("submitted", routine=job.status == before), WakeAt(_next_due(job, facts))])


# -- running ---------------------------------------------------------------------


def _tick(job: Job, facts: Facts) -> Step:
    now = facts.now
    match phase(job):
        case "running":
            att = _att(job)
            view = _view(facts, att.provider)
            if view is None:
                return _attempt_failed(job, ErrorInfo.of(ErrorClass.INVALID_REQUEST, f"provider {att.provider!r} is no longer configured"), facts)
            if now >= att.started_at + view.max_age:
                return _give_up_running(
                    job,
                    ErrorInfo.of(ErrorClass.TIMEOUT, f"still unfinished upstream after the provider's {view.max_age:g} s maximum job age", reason=MAX_AGE),
                    facts,
                )
            if _past_queued_deadline(job, now):
                message = f"still queued upstream after the route's {job.queued_deadline_seconds:g} s deadline; cancelled there"
                return _give_up_running(job, ErrorInfo.of(ErrorClass.TIMEOUT, message, reason=QUEUED_DEADLINE), facts)
            if now >= (job.next_poll_at or now):
                return Step(job, [Poll(att.provider, att.upstream_id or "")])
            return Step(job, [WakeAt(_next_due(job, facts))])
        case "reconciling":
            att = _att(job)
            view = _view(facts, att.provider)
            if view is None or now >= (att.reconcile_until or now):
                return _unknown_outcome(job, facts)
            if view.finds and now >= (job.next_poll_at or now):
                return Step(job, [Find(att.provider)])
            return Step(job, [WakeAt(_next_due(job, facts))])
    return Step(job)


def _next_due(job: Job, facts: Facts) -> float:
    """The earliest moment something is due for a running or reconciling job."""
    att = _att(job)
    view = _view(facts, att.provider)
    candidates = [job.next_poll_at if job.next_poll_at is not None else facts.now]
    if view is not None:
        if att.status == "reconciling":
            candidates = [job.next_poll_at] if view.finds and job.next_poll_at is not None else []
            candidates.append(att.reconcile_until or facts.now)
        else:
            candidates.append(att.started_at + view.max_age)
    if att.status == "submitted" and job.queued_deadline_seconds is not None and job.status is JobStatus.QUEUED:
        # look again right when the deadline passes, not a poll interval later
        candidates.append(att.started_at + job.queued_deadline_seconds + 0.05)
    return min(candidates)


def _past_queued_deadline(job: Job, now: float) -> bool:
    deadline = job.queued_deadline_seconds
    return deadline is not None and job.status is JobStatus.QUEUED and now - _att(job).started_at > deadline


def _polled(job: Job, up: UpstreamJob, provider: str, facts: Facts) -> Step:
    match phase(job):
        case "running" if up.upstream_id == _att(job).upstream_id:
            return _apply(job, up, facts)
        case "reconciling" if _ours(job, up):
            return _bind(job, up, facts)
        case "ended":
            return _revealed(job, up, provider, facts)
    return Step(job)


def _apply(job: Job, up: UpstreamJob, facts: Facts) -> Step:
    att = _att(job)
    # Progress alone is written in steps of PROGRESS_STEP points: at 10,000 jobs in flight a
    # write (and a status event) per poll would be most of the store's work.
    moved = (up.progress or 0) // PROGRESS_STEP != job.progress // PROGRESS_STEP
    routine = up.status == job.status
    changed = not routine or moved or up.upstream_status != att.upstream_status
    att.upstream_status = up.upstream_status
    att.cost = up.cost or att.cost
    job.poll_failures = 0
    job.cost = up.cost or job.cost
    if up.progress is not None:
        job.progress = up.progress
    match up.status:
        case JobStatus.COMPLETED:
            actions: list[LifecycleAction] = [RecordOutcome(att.provider, None)]
            job.result = up.result
            if facts.keep_outputs and up.result is not None:
                return Step(job, [*actions, CopyOutputs(att.provider, up)])
            step = _complete(job, {}, facts)
            return Step(step.job, actions + step.actions)
        case JobStatus.CANCELLED:
            att.status, att.ended_at = "cancelled", facts.now
            error = up.error or ErrorInfo.of(ErrorClass.INVALID_REQUEST, "Cancelled upstream", reason=CANCELLED)
            return _end(job, JobStatus.CANCELLED, error, "cancelled upstream", facts)
        case JobStatus.FAILED:
            return _attempt_failed(job, up.error or ErrorInfo.of(ErrorClass.GENERATION_FAILED, "The upstream job failed without a reason"), facts)
    job.status = up.status
    # Poll at the provider's interval at first, then back off as the job ages.
    view = _view(facts, att.provider)
    interval = view.poll_interval if view is not None else facts.poll_min
    age = facts.now - att.started_at
    job.next_poll_at = facts.now + min(facts.poll_max, max(facts.poll_min, interval, age / 10))
    step = _tick(job, facts) if _past_queued_deadline(job, facts.now) else Step(job, [WakeAt(_next_due(job, facts))])
    saves = any(isinstance(a, Save) for a in step.actions)
    return Step(step.job, ([Save("progress", routine=routine)] if changed and not saves else []) + step.actions)


def _poll_failed(job: Job, error: ErrorInfo, facts: Facts) -> Step:
    if phase(job) == "ended":  # a reveal's fetch failed: nothing to record
        return Step(job, [Forget()])
    if phase(job) != "running":
        return Step(job)
    if error.retryable and job.poll_failures < facts.max_poll_failures:
        job.poll_failures += 1
        delay = error.retry_after or min(facts.poll_max, facts.poll_min * 2**job.poll_failures)
        job.next_poll_at = facts.now + delay
        return Step(job, [WakeAt(_next_due(job, facts))])
    return _attempt_failed(job, error, facts)


def _give_up_running(job: Job, error: ErrorInfo, facts: Facts) -> Step:
    """Cancel the attempt's upstream job (where the upstream can) and move on."""
    att = _att(job)
    step = _attempt_failed(job, error, facts)
    return Step(step.job, [CancelUpstream(att.provider, att.upstream_id or ""), *step.actions])


# -- reconciling -------------------------------------------------------------------


def _reconcile(job: Job, error: ErrorInfo, facts: Facts) -> Step:
    """The submit's outcome is unknown: hold the slot and look for the upstream job."""
    att = _att(job)
    att.status, att.error = "reconciling", error
    view = _view(facts, att.provider)
    if view is None or not (view.finds or view.calls_back):
        return _unknown_outcome(job, facts)
    att.reconcile_until = facts.now + view.max_age
    job.next_poll_at = facts.now
    job.poll_failures = 0
    step = _tick(job, facts)
    return Step(step.job, [Save(None), *step.actions])


def _found(job: Job, up: UpstreamJob | None, facts: Facts) -> Step:
    if phase(job) != "reconciling":
        return Step(job)
    if up is not None and _ours(job, up):
        return _bind(job, up, facts)
    job.poll_failures += 1  # counts lookups here
    job.next_poll_at = facts.now + min(facts.poll_max, facts.find_interval * 2 ** (job.poll_failures - 1))
    return Step(job, [WakeAt(_next_due(job, facts))])


def _bind(job: Job, up: UpstreamJob, facts: Facts) -> Step:
    """The upstream job an unknown submit created was found: carry on with it."""
    att = _att(job)
    att.status, att.upstream_id, att.error, att.reconcile_until = "submitted", up.upstream_id, None, None
    att.upstream_status = up.upstream_status
    att.account = up.account or att.account
    job.poll_failures = 0
    job.status = JobStatus.IN_PROGRESS if job.status is JobStatus.QUEUED else job.status
    step = _apply(job, up, facts)
    if job.cancel_requested and not step.job.status.terminal:
        return _cancel(step.job, facts)
    saves = [a for a in step.actions if isinstance(a, Save)]
    return step if saves else Step(step.job, [Save("reconciled"), *step.actions])


def _unknown_outcome(job: Job, facts: Facts) -> Step:
    """Give up looking: fail the job, never resend. A later callback may still reveal it."""
    att = _att(job)
    att.status, att.ended_at = "unknown", facts.now
    info = ErrorInfo.of(
        ErrorClass.UPSTREAM_UNAVAILABLE,
        "The upstream's answer to the submit was lost and the job could not be found there; vidgate did not resend it to avoid a duplicate paid job",
        retryable=False,
        reason=UNKNOWN_OUTCOME,
    )
    att.error = att.error or info
    step = _fail(job, info, facts)
    return Step(step.job, [RecordOutcome(att.provider, att.error.error_class), *step.actions])


def _called_back(job: Job, upstream_id: str | None, facts: Facts) -> Step:
    match phase(job):
        case "running":
            job.next_poll_at = facts.now
            return _tick(job, facts)
        case "reconciling":
            att = _att(job)
            if upstream_id:
                return Step(job, [Poll(att.provider, upstream_id)])
            job.next_poll_at = facts.now
            return _tick(job, facts)
        case "ended" if upstream_id and upstream_id not in {a.upstream_id for a in job.attempts}:
            provider = next((a.provider for a in reversed(job.attempts) if a.status == "unknown"), None)
            if provider is not None and _view(facts, provider) is not None:
                return Step(job, [Poll(provider, upstream_id)])  # then Polled: _revealed
            return Step(job, [Forget()])
        case "ended":
            return Step(job, [Forget()])
    return Step(job)


def _revealed(job: Job, up: UpstreamJob, provider: str, facts: Facts) -> Step:
    """An upstream job for a video that already ended: record what it cost, and complete
    the video when it had failed only because this job's submit was lost."""
    if up.upstream_id in {a.upstream_id for a in job.attempts} or not _ours(job, up):
        return Step(job, [Forget()])
    lost = next((a for a in reversed(job.attempts) if a.status == "unknown" and a.provider == provider), None)
    if lost is None:
        return Step(job, [Forget()])
    lost.upstream_id, lost.upstream_status, lost.cost = up.upstream_id, up.upstream_status, up.cost
    lost.account = up.account or lost.account
    job.cost = job.cost or up.cost
    failed_for_it = job.status is JobStatus.FAILED and job.error is not None and job.error.reason == UNKNOWN_OUTCOME
    if failed_for_it and up.status is JobStatus.COMPLETED:
        lost.status = "submitted"
        job.result = up.result
        if facts.keep_outputs and up.result is not None:
            return Step(job, [Save("upstream job revealed"), CopyOutputs(provider, up)])
        return _complete(job, {}, facts)
    lost.status = {JobStatus.COMPLETED: "completed", JobStatus.FAILED: "failed", JobStatus.CANCELLED: "cancelled"}.get(up.status, "unknown")  # type: ignore[assignment]
    return Step(job, [Save("upstream job revealed"), Forget()])


def _ours(job: Job, up: UpstreamJob) -> bool:
    """Whether an upstream job may be this job's: it echoes our reference, or echoes none."""
    return up.callback_ref is None or up.callback_ref == job.id


# -- ending ----------------------------------------------------------------------------


def _attempt_failed(job: Job, error: ErrorInfo, facts: Facts) -> Step:
    """Close the attempt; fail over to the next candidate when the policy allows it."""
    att = _att(job)
    actions: list[LifecycleAction] = [RecordOutcome(att.provider, error.error_class)]
    if error.error_class is ErrorClass.SESSION_EXPIRED and att.account is not None:
        actions.append(DisableAccount(att.provider, att.account, f"session expired: {error.message}"))
    att.status, att.error, att.ended_at = "failed", error, facts.now
    job.slot = None
    job.poll_failures = 0
    if action_for(error.error_class) is Action.NEXT and _next_candidate(job, facts) is not None and not job.cancel_requested:
        job.status, job.progress = JobStatus.QUEUED, 0
        step = _next_attempt(job, facts, detail=f"failover after {error.error_class.value}")
        return Step(step.job, actions + step.actions)
    if job.cancel_requested:
        step = _cancel(job, facts)
    else:
        step = _fail(job, error, facts)
    return Step(step.job, actions + step.actions)


def _cancel(job: Job, facts: Facts) -> Step:
    att = job.attempt
    match phase(job):
        case "ended":
            return Step(job, [Forget()])
        case "submitting":
            job.cancel_requested = True  # the submit's answer decides (see _submitted)
            return Step(job, [Save(None)])
    actions: list[LifecycleAction] = []
    if att is not None and att.status in ("submitted", "reconciling", "preparing", "submitting"):
        if att.upstream_id and att.status == "submitted":
            actions.append(CancelUpstream(att.provider, att.upstream_id))
        att.status, att.ended_at = "cancelled", facts.now
    step = _end(job, JobStatus.CANCELLED, ErrorInfo.of(ErrorClass.INVALID_REQUEST, "Cancelled by the caller", reason=CANCELLED), "cancelled", facts)
    return Step(step.job, actions + step.actions)


def _fail(job: Job, error: ErrorInfo, facts: Facts) -> Step:
    return _end(job, JobStatus.FAILED, error, "failed", facts)


def _complete(job: Job, outputs: dict[str, OutputCopy], facts: Facts) -> Step:
    att = _att(job)
    att.status, att.ended_at = "completed", facts.now
    job.outputs = outputs
    job.progress = 100
    step = _end(job, JobStatus.COMPLETED, None, "completed", facts)
    # our copy outlives the upstream link; without one, the link's life is all there is
    step.job.expires_at = facts.now + (facts.output_retention if "video" in outputs else facts.output_ttl)
    return step


def _end(job: Job, status: JobStatus, error: ErrorInfo | None, detail: str, facts: Facts) -> Step:
    job.status, job.error, job.completed_at = status, error, facts.now
    job.slot = None
    job.next_poll_at = None
    return Step(job, [Save(detail), Forget()])


# -- helpers ---------------------------------------------------------------------------


def _view(facts: Facts, provider: str, *, routable: bool = False) -> ProviderView | None:
    view = facts.providers.get(provider)
    if view is None or (routable and not view.routable):
        return None
    return view


def _att(job: Job) -> Attempt:
    att = job.attempt
    assert att is not None, "this phase has an attempt"
    return att


def _copy(job: Job) -> Job:
    """A copy the lifecycle may change: the job and its attempts (everything else is replaced, not mutated)."""
    return msgspec.structs.replace(job, attempts=[msgspec.structs.replace(a) for a in job.attempts])
