"""Every transition of the pure job lifecycle: no clock, no store, no sockets, microseconds each."""

from __future__ import annotations

import msgspec
import pytest

from gateway.jobs.lifecycle import (
    AcquireSlot,
    CalledBack,
    CancelRequested,
    CancelUpstream,
    Copied,
    CopyOutputs,
    DisableAccount,
    Facts,
    Find,
    Forget,
    Found,
    LeaseLost,
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
    decide,
    phase,
)
from gateway.jobs.model import Attempt, Candidate, Job, OutputCopy, RoutingTrace, SlotRef
from providers.base import (
    Cost,
    ErrorClass,
    ErrorInfo,
    GenerationRequest,
    JobStatus,
    TextInput,
    UpstreamJob,
    VideoResult,
)

NOW = 10_000.0
A = ProviderView(poll_interval=5.0, max_age=600.0, finds=True, calls_back=True)
B = ProviderView(poll_interval=5.0, max_age=600.0)


def facts(now: float = NOW, **providers: ProviderView) -> Facts:
    return Facts(now=now, providers=providers or {"a": A, "b": B}, poll_min=1.0, poll_max=30.0, keep_outputs=True, output_retention=1000.0, output_ttl=100.0)


def job(*, candidates: tuple[str, ...] = ("a", "b"), **kw: object) -> Job:
    base = Job(
        id="video_1",
        tenant="t",
        key_name="k",
        created_at=NOW - 100,
        updated_at=NOW - 100,
        status=JobStatus.QUEUED,
        model="seedance-2.0",
        mode="text",
        request=GenerationRequest(model="seedance-2.0", input=TextInput(prompt="p")),
        routing=RoutingTrace(candidates=[Candidate(provider=p, model_id=f"{p}-m") for p in candidates]),
    )
    return msgspec.structs.replace(base, **kw)


def running(provider: str = "a", *, started: float = NOW - 10, **kw: object) -> Job:
    att = Attempt(
        provider=provider, model_id=f"{provider}-m", started_at=started, status="submitted", upstream_id="up-1", account="acct", upstream_status="in_progress"
    )
    fields: dict[str, object] = {"status": JobStatus.IN_PROGRESS, "attempts": [att], "slot": SlotRef(provider, "acct"), "next_poll_at": NOW}
    fields.update(kw)
    return job(**fields)


def at(status: str, provider: str = "a", **kw: object) -> Job:
    """A job whose only attempt is in `status`."""
    att = Attempt(provider=provider, model_id=f"{provider}-m", started_at=NOW - 10, status=status, account="acct", **kw)  # type: ignore[arg-type]
    return job(attempts=[att], slot=SlotRef(provider, "acct"))


def upstream(status: JobStatus = JobStatus.IN_PROGRESS, *, uid: str = "up-1", **kw: object) -> UpstreamJob:
    return UpstreamJob(upstream_id=uid, status=status, upstream_status=status.value, **kw)  # type: ignore[arg-type]


def kinds(step: Step) -> list[str]:
    return [type(a).__name__ for a in step.actions]


ERR_5XX = ErrorInfo.of(ErrorClass.UPSTREAM_UNAVAILABLE, "503")
ERR_CONTENT = ErrorInfo.of(ErrorClass.CONTENT_REJECTED, "nope")


# -- starting and slots ----------------------------------------------------------------


def test_a_new_job_asks_for_a_slot_on_its_first_candidate_and_writes_nothing() -> None:
    step = decide(job(), Started(), facts())
    assert step.actions == [AcquireSlot("a", "a-m")]
    assert phase(step.job) == "pending"


def test_a_cooling_provider_is_skipped_while_another_can_serve() -> None:
    step = decide(job(), Started(), facts(a=ProviderView(cooling=True), b=B))
    assert step.actions == [AcquireSlot("b", "b-m")]


def test_when_every_candidate_cools_down_the_first_is_tried_anyway() -> None:
    cool = ProviderView(cooling=True)
    assert decide(job(), Started(), facts(a=cool, b=cool)).actions == [AcquireSlot("a", "a-m")]


def test_a_job_with_no_routable_candidate_fails_at_once() -> None:
    step = decide(job(), Started(), facts(a=ProviderView(routable=False), b=ProviderView(routable=False)))
    assert step.job.status is JobStatus.FAILED
    assert kinds(step) == ["Save", "Forget"]


def test_a_granted_slot_opens_an_attempt_that_prepares_and_holds_the_slot() -> None:
    step = decide(job(), SlotGranted("a", "a-m", "acct"), facts())
    assert step.actions == [Prepare("a", "a-m", "acct")]
    assert step.job.slot == SlotRef("a", "acct")
    assert step.job.attempt is not None and step.job.attempt.status == "preparing"


def test_a_slot_granted_after_a_cancel_is_handed_back() -> None:
    ended = job(status=JobStatus.CANCELLED)
    step = decide(ended, SlotGranted("a", "a-m", "acct"), facts())
    assert step.job.slot is None and step.actions == [Save(None)]


def test_a_slot_refusal_fails_the_attempt_over_to_the_next_candidate() -> None:
    step = decide(job(), SlotRefused("a", "a-m", "no account in CA"), facts())
    assert step.job.attempts[0].status == "failed"
    assert step.job.attempts[0].error is not None and step.job.attempts[0].error.reason == "no_account"
    assert step.actions[-1] == AcquireSlot("b", "b-m")


def test_a_claimed_pending_job_that_still_holds_a_slot_uses_it_instead_of_asking_again() -> None:
    step = decide(job(slot=SlotRef("a", "acct")), Started(), facts())
    assert step.actions == [Prepare("a", "a-m", "acct")]


def test_a_claimed_pending_job_holding_a_slot_elsewhere_gives_it_back_first() -> None:
    step = decide(job(candidates=("b",), slot=SlotRef("a", "acct")), Started(), facts())
    assert step.job.slot is None and step.actions == [Save(None), AcquireSlot("b", "b-m")]


# -- preparing and submitting --------------------------------------------------------------


def test_prepared_stores_the_attempt_as_submitting_before_the_paid_call() -> None:
    step = decide(at("preparing"), Prepared(), facts())
    assert step.actions == [Save(None), Submit("a", "a-m")]
    assert step.job.attempt is not None and step.job.attempt.status == "submitting"


def test_a_failed_upload_fails_the_attempt_and_frees_the_slot() -> None:
    step = decide(at("preparing"), PrepareFailed(ERR_5XX), facts())
    assert step.job.slot is None
    assert step.actions[0] == RecordOutcome("a", ErrorClass.UPSTREAM_UNAVAILABLE)
    assert step.actions[-1] == AcquireSlot("b", "b-m")


def test_an_accepted_submit_is_saved_and_polled_after_poll_min() -> None:
    up = upstream(JobStatus.QUEUED, cost=Cost(amount=125, unit="credits"), account="acct2")
    step = decide(at("submitting"), Submitted(up), facts())
    att = step.job.attempt
    assert att is not None and (att.status, att.upstream_id, att.account) == ("submitted", "up-1", "acct2")
    assert step.job.status is JobStatus.QUEUED and step.job.cost == Cost(amount=125, unit="credits")
    assert step.actions == [Save("submitted", routine=True), WakeAt(NOW + 1.0)]  # still queued: job.submitted says it


def test_a_submit_that_starts_the_job_upstream_is_a_status_change() -> None:
    step = decide(at("submitting"), Submitted(upstream(JobStatus.IN_PROGRESS)), facts())
    assert step.job.status is JobStatus.IN_PROGRESS
    assert step.actions == [Save("submitted", routine=False), WakeAt(NOW + 1.0)]


def test_a_submit_refused_for_capacity_fails_over_under_the_same_job() -> None:
    step = decide(at("submitting"), SubmitFailed(ErrorInfo.of(ErrorClass.CAPACITY, "429"), ambiguous=False), facts())
    assert [a.status for a in step.job.attempts] == ["failed"]
    assert step.job.slot is None and step.job.status is JobStatus.QUEUED
    assert step.actions == [RecordOutcome("a", ErrorClass.CAPACITY), Save("failover after capacity"), AcquireSlot("b", "b-m")]


def test_a_content_rejection_ends_the_job_without_failover() -> None:
    step = decide(at("submitting"), SubmitFailed(ERR_CONTENT, ambiguous=False), facts())
    assert step.job.status is JobStatus.FAILED and step.job.error == ERR_CONTENT
    assert kinds(step) == ["RecordOutcome", "Save", "Forget"]


def test_an_expired_session_takes_the_account_out() -> None:
    step = decide(at("submitting"), SubmitFailed(ErrorInfo.of(ErrorClass.SESSION_EXPIRED, "596"), ambiguous=False), facts())
    assert DisableAccount("a", "acct", "session expired: 596") in step.actions


# -- reconciling: an unknown outcome is never resent ------------------------------------------


def test_an_ambiguous_submit_reconciles_holding_the_slot_and_looks_the_job_up() -> None:
    step = decide(at("submitting"), SubmitFailed(ERR_5XX, ambiguous=True), facts())
    att = step.job.attempt
    assert att is not None and att.status == "reconciling" and att.reconcile_until == NOW + 600
    assert step.job.slot == SlotRef("a", "acct") and step.job.status is JobStatus.QUEUED
    assert step.actions == [Save(None), Find("a")]


def test_a_provider_that_can_only_call_back_waits_for_the_callback() -> None:
    only_callbacks = ProviderView(max_age=600.0, calls_back=True)
    step = decide(at("submitting"), SubmitFailed(ERR_5XX, ambiguous=True), facts(a=only_callbacks, b=B))
    assert step.actions == [Save(None), WakeAt(NOW + 600)]


def test_a_provider_that_can_neither_list_nor_call_back_fails_the_job_as_unknown_at_once() -> None:
    step = decide(at("submitting", "b"), SubmitFailed(ERR_5XX, ambiguous=True), facts())
    assert step.job.status is JobStatus.FAILED
    assert step.job.error is not None and step.job.error.reason == "submit_outcome_unknown"
    assert step.job.attempt is not None and step.job.attempt.status == "unknown"
    assert step.job.slot is None
    assert kinds(step) == ["RecordOutcome", "Save", "Forget"]


def test_a_process_that_stopped_mid_submit_leaves_a_job_the_next_owner_reconciles() -> None:
    step = decide(at("submitting"), Started(), facts())
    assert step.job.attempt is not None and step.job.attempt.status == "reconciling"
    assert Find("a") in step.actions and not any(isinstance(a, Submit) for a in step.actions)


def test_a_lookup_that_finds_nothing_looks_again_later_with_backoff() -> None:
    rec = decide(at("submitting"), SubmitFailed(ERR_5XX, ambiguous=True), facts()).job
    first = decide(rec, Found(None), facts())
    second = decide(first.job, Found(None), facts())
    assert first.actions == [WakeAt(NOW + 5.0)] and second.actions == [WakeAt(NOW + 10.0)]


def test_a_found_job_is_bound_and_carried_on() -> None:
    rec = decide(at("submitting"), SubmitFailed(ERR_5XX, ambiguous=True), facts()).job
    step = decide(rec, Found(upstream(uid="up-9", callback_ref="video_1")), facts())
    att = step.job.attempt
    assert att is not None and (att.status, att.upstream_id, att.error) == ("submitted", "up-9", None)
    assert step.job.status is JobStatus.IN_PROGRESS and kinds(step)[0] == "Save"


def test_a_found_job_that_echoes_another_reference_is_not_ours() -> None:
    rec = decide(at("submitting"), SubmitFailed(ERR_5XX, ambiguous=True), facts()).job
    step = decide(rec, Found(upstream(uid="up-9", callback_ref="video_other")), facts())
    assert step.job.attempt is not None and step.job.attempt.status == "reconciling"


def test_a_callback_naming_an_upstream_job_is_fetched_then_bound() -> None:
    rec = decide(at("submitting"), SubmitFailed(ERR_5XX, ambiguous=True), facts()).job
    fetch = decide(rec, CalledBack("up-7"), facts())
    assert fetch.actions == [Poll("a", "up-7")]
    bound = decide(fetch.job, Polled(upstream(JobStatus.COMPLETED, uid="up-7", callback_ref="video_1", result=VideoResult(video_url="u")), "a"), facts())
    assert bound.job.attempt is not None and bound.job.attempt.upstream_id == "up-7"
    assert CopyOutputs in [type(a) for a in bound.actions]


def test_reconciling_gives_up_at_the_providers_max_age() -> None:
    rec = decide(at("submitting"), SubmitFailed(ERR_5XX, ambiguous=True), facts()).job
    step = decide(rec, Tick(), facts(NOW + 601))
    assert step.job.status is JobStatus.FAILED and step.job.error is not None and step.job.error.reason == "submit_outcome_unknown"
    assert step.job.slot is None


def test_a_late_callback_for_a_job_failed_as_unknown_completes_it_with_the_revealed_upstream_job() -> None:
    failed = decide(at("submitting", "b"), SubmitFailed(ERR_5XX, ambiguous=True), facts()).job
    fetch = decide(failed, CalledBack("up-late"), facts())
    assert fetch.actions == [Poll("b", "up-late")]
    done_upstream = upstream(JobStatus.COMPLETED, uid="up-late", result=VideoResult(video_url="u"), cost=Cost(amount=5, unit="usd"))
    revealed = decide(fetch.job, Polled(done_upstream, "b"), facts())
    assert revealed.actions == [Save("upstream job revealed"), CopyOutputs("b", done_upstream)]
    att = revealed.job.attempt
    assert att is not None and att.upstream_id == "up-late" and att.cost == Cost(amount=5, unit="usd")
    completed = decide(revealed.job, Copied({}), facts())
    assert completed.job.status is JobStatus.COMPLETED and completed.job.result == VideoResult(video_url="u")
    assert completed.actions == [Save("completed"), Forget()]


def test_a_late_reveal_of_a_still_running_job_is_recorded_without_reviving_the_video() -> None:
    failed = decide(at("submitting", "b"), SubmitFailed(ERR_5XX, ambiguous=True), facts()).job
    step = decide(failed, Polled(upstream(JobStatus.IN_PROGRESS, uid="up-late", cost=Cost(amount=5, unit="usd")), "b"), facts())
    assert step.job.status is JobStatus.FAILED
    assert step.job.attempt is not None and step.job.attempt.upstream_id == "up-late" and step.job.cost == Cost(amount=5, unit="usd")
    assert step.actions == [Save("upstream job revealed"), Forget()]


def test_a_callback_for_a_job_that_ended_normally_changes_nothing() -> None:
    done = running(status=JobStatus.COMPLETED)
    assert decide(done, CalledBack("up-1"), facts()).actions == [Forget()]


# -- running -------------------------------------------------------------------------------------


def test_a_tick_polls_when_the_poll_is_due_and_waits_otherwise() -> None:
    assert decide(running(), Tick(), facts()).actions == [Poll("a", "up-1")]
    later = running(next_poll_at=NOW + 3)
    assert decide(later, Tick(), facts()).actions == [WakeAt(NOW + 3)]


def test_progress_is_saved_only_when_something_changed() -> None:
    same = decide(running(progress=0), Polled(upstream(JobStatus.IN_PROGRESS), "a"), facts())
    assert not any(isinstance(a, Save) for a in same.actions)
    moved = decide(running(), Polled(upstream(JobStatus.IN_PROGRESS, progress=40), "a"), facts())
    assert Save("progress", routine=True) in moved.actions and moved.job.progress == 40


def test_progress_alone_is_written_in_steps_of_ten_points_but_kept_exactly() -> None:
    small = decide(running(progress=41), Polled(upstream(JobStatus.IN_PROGRESS, progress=47), "a"), facts())
    assert not any(isinstance(a, Save) for a in small.actions) and small.job.progress == 47
    step = decide(small.job, Polled(upstream(JobStatus.IN_PROGRESS, progress=52), "a"), facts())
    assert Save("progress", routine=True) in step.actions and step.job.progress == 52
    status = decide(running(progress=41, status=JobStatus.QUEUED), Polled(upstream(JobStatus.IN_PROGRESS, progress=42), "a"), facts())
    assert Save("progress", routine=False) in status.actions  # a status change is always written, and is no routine


def test_polls_back_off_as_the_job_ages() -> None:
    young = decide(running(started=NOW - 10), Polled(upstream(), "a"), facts())
    old = decide(running(started=NOW - 200), Polled(upstream(), "a"), facts())
    assert young.job.next_poll_at == NOW + 5 and old.job.next_poll_at == NOW + 20


def test_a_completed_upstream_job_is_copied_before_the_video_completes() -> None:
    up = upstream(JobStatus.COMPLETED, result=VideoResult(video_url="https://cdn/v.mp4"))
    step = decide(running(), Polled(up, "a"), facts())
    assert step.actions == [RecordOutcome("a", None), CopyOutputs("a", up)]
    assert step.job.status is JobStatus.IN_PROGRESS
    copy = OutputCopy(key="video_1/video.mp4", content_type="video/mp4", bytes=10, sha256="x", stored_at=NOW)
    done = decide(step.job, Copied({"video": copy}), facts())
    assert done.job.status is JobStatus.COMPLETED and done.job.slot is None and done.job.progress == 100
    assert done.job.expires_at == NOW + 1000  # our copy's retention, not the link's
    assert done.actions == [Save("completed"), Forget()]


def test_without_output_copies_completion_is_immediate_and_expires_with_the_upstream_link() -> None:
    up = upstream(JobStatus.COMPLETED, result=VideoResult(video_url="u"))
    step = decide(running(), Polled(up, "a"), Facts(now=NOW, providers={"a": A}, keep_outputs=False, output_ttl=100.0))
    assert step.job.status is JobStatus.COMPLETED and step.job.expires_at == NOW + 100
    assert kinds(step) == ["RecordOutcome", "Save", "Forget"]


def test_a_failed_upstream_job_fails_over_after_acceptance() -> None:
    step = decide(running(), Polled(upstream(JobStatus.FAILED, error=ErrorInfo.of(ErrorClass.GENERATION_FAILED, "x")), "a"), facts())
    assert step.job.attempts[0].status == "failed" and step.actions[-1] == AcquireSlot("b", "b-m")


def test_a_job_cancelled_upstream_ends_cancelled() -> None:
    step = decide(running(), Polled(upstream(JobStatus.CANCELLED), "a"), facts())
    assert step.job.status is JobStatus.CANCELLED and step.job.slot is None


def test_a_poll_of_another_upstream_id_is_ignored_while_running() -> None:
    step = decide(running(), Polled(upstream(uid="up-other"), "a"), facts())
    assert step.actions == []


def test_transient_poll_failures_back_off_then_fail_the_attempt() -> None:
    step = decide(running(), PollFailed(ErrorInfo.of(ErrorClass.UPSTREAM_UNAVAILABLE, "502")), facts())
    assert step.job.poll_failures == 1 and step.actions == [WakeAt(NOW + 2.0)]
    retry_after = decide(running(), PollFailed(ErrorInfo.of(ErrorClass.RATE_LIMIT, "429", retry_after=7.0)), facts())
    assert retry_after.actions == [WakeAt(NOW + 7.0)]
    exhausted = decide(running(poll_failures=12), PollFailed(ErrorInfo.of(ErrorClass.UPSTREAM_UNAVAILABLE, "502")), facts())
    assert exhausted.job.attempts[0].status == "failed"


def test_a_lost_upstream_job_fails_over() -> None:
    step = decide(running(), PollFailed(ErrorInfo.of(ErrorClass.NOT_FOUND, "404")), facts())
    assert step.actions[-1] == AcquireSlot("b", "b-m")


def test_a_callback_makes_the_next_poll_happen_now() -> None:
    assert decide(running(next_poll_at=NOW + 20), CalledBack(None), facts()).actions == [Poll("a", "up-1")]


# -- deadlines -------------------------------------------------------------------------------------


def test_a_job_past_the_providers_max_age_is_cancelled_there_and_fails_over() -> None:
    step = decide(running(started=NOW - 601), Tick(), facts())
    assert step.actions[0] == CancelUpstream("a", "up-1")
    assert step.job.attempts[0].error is not None and step.job.attempts[0].error.reason == "upstream_timeout"
    assert step.job.slot is None and step.actions[-1] == AcquireSlot("b", "b-m")


def test_a_job_past_max_age_with_nowhere_to_go_fails_with_upstream_timeout() -> None:
    step = decide(running(started=NOW - 601, routing=RoutingTrace(candidates=[Candidate(provider="a", model_id="a-m")])), Tick(), facts())
    assert step.job.status is JobStatus.FAILED and step.job.error is not None
    assert (step.job.error.error_class, step.job.error.reason) == (ErrorClass.TIMEOUT, "upstream_timeout")
    assert step.job.slot is None


def test_the_timer_a_running_job_asks_for_covers_its_max_age() -> None:
    step = decide(running(started=NOW - 599, next_poll_at=NOW + 30), Tick(), facts())
    assert step.actions == [WakeAt(NOW + 1)]


def test_a_job_still_queued_at_the_routes_deadline_is_cancelled_and_moves_on() -> None:
    queued = running(status=JobStatus.QUEUED, queued_deadline_seconds=5.0, started=NOW - 6)
    step = decide(queued, Polled(upstream(JobStatus.QUEUED), "a"), facts())
    assert step.actions[0] == CancelUpstream("a", "up-1")
    assert step.job.attempts[0].error is not None and step.job.attempts[0].error.reason == "queued_deadline"


# -- cancel, leases, races --------------------------------------------------------------------------


def test_cancelling_a_running_job_cancels_upstream_and_frees_the_slot_once() -> None:
    step = decide(running(), CancelRequested(), facts())
    assert step.actions == [CancelUpstream("a", "up-1"), Save("cancelled"), Forget()]
    assert step.job.status is JobStatus.CANCELLED and step.job.slot is None


def test_cancelling_a_pending_job_needs_no_upstream_call() -> None:
    step = decide(job(), CancelRequested(), facts())
    assert step.actions == [Save("cancelled"), Forget()]


def test_a_cancel_during_an_unanswered_submit_waits_for_the_answer_then_cancels_upstream() -> None:
    waiting = decide(at("submitting"), CancelRequested(), facts())
    assert waiting.job.cancel_requested and waiting.actions == [Save(None)]
    step = decide(waiting.job, Submitted(upstream()), facts())
    assert step.actions == [CancelUpstream("a", "up-1"), Save("cancelled"), Forget()]


def test_a_lost_lease_forgets_the_job_without_writing() -> None:
    assert decide(running(), LeaseLost(), facts()).actions == [Forget()]


def test_a_write_lost_to_a_callers_cancel_is_redone_as_a_cancel_on_top_of_our_state() -> None:
    ours = running(version=3)
    stored = msgspec.structs.replace(at("submitting"), version=4, cancel_requested=True)
    step = decide(ours, Refreshed(stored), facts())
    assert step.job.version == 4 and step.job.status is JobStatus.CANCELLED
    assert step.actions[0] == CancelUpstream("a", "up-1")  # our state knows the upstream id


def test_a_write_lost_to_another_process_stops_driving_the_job() -> None:
    stored = msgspec.structs.replace(running(), version=9)
    assert decide(running(), Refreshed(stored), facts()).actions == [Forget()]


def test_a_claimed_running_job_is_polled_promptly() -> None:
    step = decide(running(next_poll_at=NOW + 100), Started(), facts())
    assert step.actions == [Poll("a", "up-1")]


def test_a_job_on_a_provider_no_longer_configured_fails_rather_than_pay_twice() -> None:
    # after a restart without the provider: its upstream job may still run, so no resubmit elsewhere
    step = decide(running(), Tick(), facts(b=B))
    assert step.job.status is JobStatus.FAILED and step.job.slot is None
    assert step.job.error is not None and step.job.error.error_class is ErrorClass.INVALID_REQUEST


def test_decide_never_changes_the_job_it_was_given() -> None:
    original = running()
    snapshot = msgspec.json.encode(original)
    decide(original, CancelRequested(), facts())
    decide(original, Polled(upstream(JobStatus.COMPLETED, result=VideoResult(video_url="u")), "a"), facts())
    assert msgspec.json.encode(original) == snapshot


@pytest.mark.parametrize("event", [Tick(), Prepared(), Found(None), CalledBack(None), PollFailed(ERR_5XX)])
def test_events_out_of_phase_do_nothing_to_a_pending_job(event: object) -> None:
    step = decide(job(), event, facts())  # type: ignore[arg-type]
    assert step.actions == [] and step.job.attempts == []
