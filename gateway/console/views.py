"""What the console's templates show, made from stored records. Pure: no I/O, no HTTP.

A blind comparison's cards hide everything that names or betrays the provider (its name,
the cost's native unit, attempts and error details) until the comparison has a vote.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from gateway.jobs.model import Comparison, ComparisonChild, Job
from gateway.stats import time_to_video
from providers.base import Cost, JobStatus

PREFIX = "/console"


def content_url(video_id: str, variant: str = "video") -> str:
    suffix = "" if variant == "video" else f"?variant={variant}"
    return f"{PREFIX}/videos/{video_id}/content{suffix}"


# -- formatting -----------------------------------------------------------------


def usd(amount: float | None, *, per: str = "") -> str:
    if amount is None:
        return "–"
    text = f"${amount:,.2f}" if amount >= 1 else f"${amount:.4f}".rstrip("0").rstrip(".")
    if text == "$0":
        text = "$0.00"
    return f"{text}/{per}" if per else text


def native(cost: Cost | None) -> str:
    """The cost as the upstream reported it."""
    if cost is None:
        return "–"
    if cost.unit == "usd":
        return usd(cost.amount)
    amount = f"{cost.amount:,.0f}" if cost.amount == int(cost.amount) else f"{cost.amount:,.2f}"
    return f"{amount} {cost.unit}"


def seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def when(epoch: float | None) -> str:
    if epoch is None:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch)) + " UTC"


# -- comparison cards --------------------------------------------------------------


@dataclass(frozen=True)
class AttemptLine:
    provider: str
    status: str
    error: str | None


@dataclass(frozen=True)
class Card:
    label: str
    provider: str | None  # None while a blind comparison hides it
    video_id: str
    status: str  # a video status, or "deleted"
    progress: int
    video_url: str | None  # set once completed
    time_to_video: str
    cost_usd: str
    cost_native: str
    attempts: list[AttemptLine] = field(default_factory=list)
    error: str | None = None

    @property
    def dom_id(self) -> str:
        return f"card-{self.label}"

    @property
    def done(self) -> bool:
        return self.status not in (JobStatus.QUEUED.value, JobStatus.IN_PROGRESS.value)

    @property
    def title(self) -> str:
        return f"{self.label} · {self.provider}" if self.provider else self.label


def hidden(comparison: Comparison) -> bool:
    """Whether the providers are still hidden: blind, and nobody has voted."""
    return comparison.blind and comparison.vote is None


def card(comparison: Comparison, label: str, child: ComparisonChild, job: Job | None) -> Card:
    veiled = hidden(comparison)
    if job is None:
        return Card(
            label=label,
            provider=None if veiled else child.provider,
            video_id=child.video_id,
            status="deleted",
            progress=0,
            video_url=None,
            time_to_video="–",
            cost_usd="–",
            cost_native="–",
        )
    completed = job.status is JobStatus.COMPLETED
    return Card(
        label=label,
        provider=None if veiled else child.provider,
        video_id=job.id,
        status=job.status.value,
        progress=100 if completed else job.progress,
        video_url=content_url(job.id) if completed else None,
        time_to_video="hidden" if veiled else seconds(time_to_video(job)),
        cost_usd="hidden" if veiled else usd(job.cost.usd_estimate if job.cost else None),
        cost_native="hidden" if veiled else native(job.cost),
        attempts=[] if veiled else [AttemptLine(a.provider, a.status, a.error.message if a.error else None) for a in job.attempts],
        error=None if job.error is None else ("failed" if veiled else f"{job.error.reason or job.error.error_class.value}: {job.error.message}"),
    )


def cards(comparison: Comparison, jobs: dict[str, Job | None]) -> list[Card]:
    return [card(comparison, label, child, jobs.get(child.video_id)) for label, child in comparison.labelled()]


@dataclass(frozen=True)
class Ballot:
    """The vote form: who may be voted for (labels, or providers when not blind)."""

    open: bool  # every video has ended, two or more completed, and nobody voted yet
    choices: list[tuple[str, str]]  # (value sent, text shown)
    verdict: str | None  # after the vote: what it said


def ballot(comparison: Comparison, shown: list[Card]) -> Ballot:
    completed = [c for c in shown if c.status == JobStatus.COMPLETED.value]
    vote = comparison.vote
    if vote is not None:
        winner = next((label for label, child in comparison.labelled() if child.provider == vote.winner), None)
        verdict = "a tie" if vote.winner is None else f"{winner} · {vote.winner}"
        return Ballot(open=False, choices=[], verdict=verdict)
    ready = all(c.done for c in shown) and len(completed) >= 2
    return Ballot(open=ready, choices=[(c.label, c.title) for c in completed], verdict=None)


def provider_of_label(comparison: Comparison, label: str) -> str | None:
    return next((child.provider for shown, child in comparison.labelled() if shown == label), None)


# -- jobs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobRow:
    id: str
    created: str
    status: str
    provider: str
    model: str
    mode: str
    rule: str
    arm: str
    time_to_video: str
    cost_usd: str
    comparison: str | None


def job_row(job: Job) -> JobRow:
    return JobRow(
        id=job.id,
        created=when(job.created_at),
        status=job.status.value,
        provider=job.provider or "–",
        model=job.model,
        mode=job.mode,
        rule=job.routing.rule or "–",
        arm=job.routing.arm or "–",
        time_to_video=seconds(time_to_video(job)),
        cost_usd=usd(job.cost.usd_estimate if job.cost else None),
        comparison=job.metadata.get("comparison_id"),
    )
