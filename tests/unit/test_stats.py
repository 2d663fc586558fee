"""`gateway.stats`: grouping, rates, percentiles and cost per second, without HTTP."""

from __future__ import annotations

import pytest

from gateway.jobs.model import Attempt, Job, RoutingTrace
from gateway.stats import compute, percentile, summarize
from providers.base import Cost, ErrorClass, ErrorInfo, GenerationRequest, JobStatus, TextInput, VideoResult


def job(
    status: JobStatus = JobStatus.COMPLETED,
    *,
    provider: str | None = "useapi",
    providers: tuple[str, ...] | None = None,
    model: str = "seedance-2.0",
    took: float | None = 10.0,
    usd: float | None = None,
    seconds: str | None = "5",
    duration: float | None = None,
    error: ErrorClass | None = None,
    rule: str | None = None,
    arm: str | None = None,
) -> Job:
    names = providers if providers is not None else ((provider,) if provider else ())
    done = status is JobStatus.COMPLETED
    return Job(
        id="video_x",
        tenant="t",
        key_name="k",
        created_at=1000.0,
        updated_at=1000.0,
        status=status,
        model=model,
        mode="text",
        request=GenerationRequest(model="seedance-2.0", input=TextInput(prompt="p")),
        seconds=seconds,
        completed_at=1000.0 + took if took is not None and status.terminal else None,
        error=ErrorInfo.of(error, "boom") if error else None,
        result=VideoResult(video_url="https://x/v.mp4", duration=duration) if done else None,
        cost=Cost(amount=1, unit="credits", usd_estimate=usd) if done else None,
        routing=RoutingTrace(rule=rule, arm=arm),
        attempts=[Attempt(provider=p, model_id="m", started_at=1000.0) for p in names],
    )


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 95) == 7.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)
    assert percentile([float(i) for i in range(1, 101)], 95) == pytest.approx(95.05)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_provider_group_is_the_last_attempt_and_none_without_attempts() -> None:
    jobs = [
        job(providers=("useapi", "powertokens")),  # failed over: counts for the provider that finished it
        job(provider="useapi"),
        job(JobStatus.QUEUED, provider=None, took=None),
    ]
    groups = {g.group: g for g in compute(jobs, "provider")}
    assert [g for g in groups] == ["none", "powertokens", "useapi"]
    assert (groups["powertokens"].jobs, groups["useapi"].jobs) == (1, 1)
    assert groups["none"].in_flight == 1 and groups["none"].success_rate is None


def test_counts_rates_and_failures_by_class() -> None:
    jobs = [
        job(),
        job(),
        job(JobStatus.FAILED, error=ErrorClass.CONTENT_REJECTED),
        job(JobStatus.FAILED, error=ErrorClass.CONTENT_REJECTED),
        job(JobStatus.FAILED, error=ErrorClass.TIMEOUT),
        job(JobStatus.FAILED),  # no error recorded
        job(JobStatus.CANCELLED),
        job(JobStatus.IN_PROGRESS, took=None),
        job(JobStatus.QUEUED, took=None),
    ]
    [stats] = compute(jobs, "provider")
    assert (stats.jobs, stats.completed, stats.failed, stats.cancelled, stats.in_flight) == (9, 2, 4, 1, 2)
    assert stats.failed_by_class == {"content_rejected": 2, "timeout": 1, "unknown": 1}
    assert stats.success_rate == pytest.approx(2 / 7)  # in-flight jobs are not counted


def test_time_to_video_percentiles_use_completed_jobs_only() -> None:
    jobs = [job(took=t) for t in (10.0, 20.0, 30.0, 40.0)] + [job(JobStatus.FAILED, took=500.0)]
    stats = summarize("useapi", jobs)
    assert stats.p50_time_to_video_seconds == 25.0
    assert stats.p95_time_to_video_seconds == pytest.approx(38.5)


def test_cost_per_video_second_weights_by_length_and_skips_jobs_without_an_estimate() -> None:
    jobs = [
        job(usd=1.0, seconds="5"),
        job(usd=3.0, seconds="10"),
        job(usd=None, seconds="10"),  # no price table: left out of both sums
        job(usd=2.0, seconds="auto", duration=5.0),  # "auto": the delivered length
        job(usd=9.0, seconds="auto", duration=None),  # length unknown: left out
        job(JobStatus.FAILED, usd=None),
    ]
    assert summarize("g", jobs).cost_per_video_second_usd == pytest.approx(6.0 / 20.0)
    assert summarize("g", [job(usd=None)]).cost_per_video_second_usd is None


def test_grouping_by_model_rule_and_arm() -> None:
    jobs = [
        job(model="seedance-2.0", rule="ab", arm="a"),
        job(model="seedance-2.0", rule="ab", arm="b"),
        job(model="seedance-1.0-mini", rule=None, arm=None),
    ]
    assert [(g.group, g.jobs) for g in compute(jobs, "model")] == [("seedance-1.0-mini", 1), ("seedance-2.0", 2)]
    assert [(g.group, g.jobs) for g in compute(jobs, "rule")] == [("ab", 2), ("none", 1)]
    assert [(g.group, g.jobs) for g in compute(jobs, "arm")] == [("a", 1), ("b", 1), ("none", 1)]
    assert compute([], "provider") == []


def test_votes_become_win_rates_per_group_counting_a_tie_as_half() -> None:
    import msgspec

    from gateway.jobs.model import Comparison, ComparisonChild, ComparisonVote
    from gateway.stats import verdicts

    def child(video_id: str, provider: str, status: JobStatus = JobStatus.COMPLETED, model: str = "seedance-2.0") -> Job:
        return msgspec.structs.replace(job(status, provider=provider, model=model), id=video_id)

    def compared(cid: str, winner: str | None, *kids: Job, voted: bool = True) -> Comparison:
        return Comparison(
            id=cid,
            tenant="t",
            created_at=1000.0,
            model="seedance-2.0",
            children=[ComparisonChild(provider=k.attempts[-1].provider, video_id=k.id) for k in kids],
            vote=ComparisonVote(winner=winner, at=1010.0, key_name="k") if voted else None,
        )

    kids = {
        "1u": child("1u", "useapi"),
        "1p": child("1p", "powertokens"),
        "2u": child("2u", "useapi"),
        "2p": child("2p", "powertokens"),
        "2m": child("2m", "modelark", JobStatus.FAILED),  # failed: it took no part in the vote
        "3u": child("3u", "useapi"),
        "3p": child("3p", "powertokens"),
        "4u": child("4u", "useapi"),
        "4p": child("4p", "powertokens", JobStatus.FAILED),  # one video alone: nothing was compared
        "5u": child("5u", "useapi"),
        "5p": child("5p", "powertokens"),
    }
    comparisons = [
        compared("c1", "useapi", kids["1u"], kids["1p"]),
        compared("c2", "powertokens", kids["2u"], kids["2p"], kids["2m"]),
        compared("c3", None, kids["3u"], kids["3p"]),
        compared("c4", "useapi", kids["4u"], kids["4p"]),
        compared("c5", "useapi", kids["5u"], kids["5p"], voted=False),
    ]
    judged = verdicts(comparisons, kids)
    assert judged == {"1u": "win", "1p": "loss", "2u": "loss", "2p": "win", "3u": "tie", "3p": "tie"}
    groups = {g.group: g for g in compute(kids.values(), "provider", judged)}
    assert (groups["useapi"].votes, groups["useapi"].wins, groups["useapi"].ties) == (3, 1, 1)
    assert groups["useapi"].win_rate == pytest.approx(0.5) and groups["powertokens"].win_rate == pytest.approx(0.5)
    assert groups["modelark"].votes == 0 and groups["modelark"].win_rate is None
    [by_model] = compute(kids.values(), "model", judged)
    assert by_model.win_rate == pytest.approx(0.5)
