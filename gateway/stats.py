"""Per provider / model / rule / arm statistics over a set of jobs (`GET /v1/stats`).

Pure: jobs in, numbers out. No store, no clock, no HTTP.

- The provider of a job is the provider of its last attempt (the one that
  finished it, or is working on it); a job never submitted is grouped as "none".
- `success_rate` is completed / terminal (completed + failed + cancelled); null
  while nothing in the group has finished.
- Time to video is `completed_at - created_at` of completed jobs; percentiles
  interpolate linearly between the closest ranks (numpy's default).
- `cost_per_video_second_usd` is the sum of the USD estimates over the sum of the
  seconds, taken over completed jobs that have both an estimate and a known length
  (the requested seconds; the delivered duration when the request said "auto").
- Win rate comes from people's votes on comparisons (`verdicts`): every completed video of
  a voted comparison took part; the winner's won, the others lost, a tie ties them all.
  `win_rate` is (wins + ties / 2) / votes; null while the group has no votes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal

import msgspec

from gateway.jobs.model import Comparison, Job
from providers.base import JobStatus

GroupBy = Literal["provider", "model", "rule", "arm"]
Verdict = Literal["win", "loss", "tie"]
NONE = "none"

_KEYS: dict[str, Callable[[Job], str]] = {
    "provider": lambda job: job.attempts[-1].provider if job.attempts else NONE,
    "model": lambda job: job.model,
    "rule": lambda job: job.routing.rule or NONE,
    "arm": lambda job: job.routing.arm or NONE,
}


class GroupStats(msgspec.Struct, kw_only=True):
    group: str
    jobs: int
    completed: int
    failed: int
    cancelled: int
    in_flight: int
    failed_by_class: dict[str, int]
    success_rate: float | None
    p50_time_to_video_seconds: float | None
    p95_time_to_video_seconds: float | None
    cost_per_video_second_usd: float | None
    votes: int = 0  # videos of this group that took part in a voted comparison
    wins: int = 0
    ties: int = 0
    win_rate: float | None = None


def group_key(job: Job, group_by: GroupBy) -> str:
    return _KEYS[group_by](job)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The `q`-th percentile (0..100) with linear interpolation; None for no values."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def time_to_video(job: Job) -> float | None:
    if job.status is not JobStatus.COMPLETED or job.completed_at is None:
        return None
    return max(0.0, job.completed_at - job.created_at)


def video_seconds(job: Job) -> float | None:
    """The length the job was asked for, or (for "auto") the length delivered."""
    if job.seconds is not None:
        try:
            seconds = float(job.seconds)
        except ValueError:
            seconds = math.nan
        if math.isfinite(seconds) and seconds > 0:
            return seconds
    duration = job.result.duration if job.result is not None else None
    return float(duration) if duration else None


def verdicts(comparisons: Iterable[Comparison], jobs: Mapping[str, Job]) -> dict[str, Verdict]:
    """The verdict on each video (by id) that took part in a voted comparison: its completed
    children among `jobs`, when there are at least two of them to compare."""
    out: dict[str, Verdict] = {}
    for comparison in comparisons:
        vote = comparison.vote
        if vote is None:
            continue
        shown = [c for c in comparison.children if (job := jobs.get(c.video_id)) is not None and job.status is JobStatus.COMPLETED]
        if len(shown) < 2:
            continue
        for child in shown:
            out[child.video_id] = "tie" if vote.winner is None else "win" if child.provider == vote.winner else "loss"
    return out


def summarize(group: str, jobs: Iterable[Job], judged: Mapping[str, Verdict] | None = None) -> GroupStats:
    judged = judged or {}
    verdict_counts: Counter[Verdict] = Counter()
    counts: Counter[JobStatus] = Counter()
    failed_by_class: Counter[str] = Counter()
    times: list[float] = []
    usd = seconds = 0.0
    total = 0
    for job in jobs:
        total += 1
        counts[job.status] += 1
        if job.id in judged:
            verdict_counts[judged[job.id]] += 1
        if job.status is JobStatus.FAILED:
            failed_by_class[job.error.error_class.value if job.error else "unknown"] += 1
        elapsed = time_to_video(job)
        if elapsed is not None:
            times.append(elapsed)
        length = video_seconds(job) if job.status is JobStatus.COMPLETED else None
        if length is not None and job.cost is not None and job.cost.usd_estimate is not None:
            usd += job.cost.usd_estimate
            seconds += length
    completed, failed, cancelled = counts[JobStatus.COMPLETED], counts[JobStatus.FAILED], counts[JobStatus.CANCELLED]
    terminal = completed + failed + cancelled
    votes = sum(verdict_counts.values())
    return GroupStats(
        group=group,
        jobs=total,
        completed=completed,
        failed=failed,
        cancelled=cancelled,
        in_flight=total - terminal,
        failed_by_class=dict(sorted(failed_by_class.items())),
        success_rate=completed / terminal if terminal else None,
        p50_time_to_video_seconds=percentile(times, 50),
        p95_time_to_video_seconds=percentile(times, 95),
        cost_per_video_second_usd=usd / seconds if seconds else None,
        votes=votes,
        wins=verdict_counts["win"],
        ties=verdict_counts["tie"],
        win_rate=(verdict_counts["win"] + verdict_counts["tie"] / 2) / votes if votes else None,
    )


def compute(jobs: Iterable[Job], group_by: GroupBy, judged: Mapping[str, Verdict] | None = None) -> list[GroupStats]:
    """One entry per group that has jobs, ordered by group name; `judged` from `verdicts`."""
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        groups.setdefault(group_key(job, group_by), []).append(job)
    return [summarize(name, members, judged) for name, members in sorted(groups.items())]
