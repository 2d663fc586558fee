"""Turning a stored job into the public video object (SPEC 3.2)."""

from __future__ import annotations

import msgspec

from gateway.jobs.model import Job
from gateway.schema import (
    AttemptInfo,
    CandidateInfo,
    CostInfo,
    RoutingInfo,
    UpstreamInfo,
    Video,
    VideoError,
    size_of,
)
from providers.base import ErrorInfo, JobStatus

_encoder = msgspec.json.Encoder()


def video_of(job: Job) -> Video:
    attempt = job.attempt
    return Video(
        id=job.id,
        model=job.model,
        status=job.status.value,
        progress=100 if job.status is JobStatus.COMPLETED else job.progress,
        created_at=int(job.created_at),
        completed_at=int(job.completed_at) if job.completed_at else None,
        expires_at=int(job.expires_at) if job.expires_at else None,
        prompt=job.prompt,
        seconds=job.seconds,
        size=_size(job),
        error=_error(job.error),
        mode=job.mode,
        ratio=job.ratio,
        resolution=job.resolution,
        provider=attempt.provider if attempt else None,
        upstream=UpstreamInfo(id=attempt.upstream_id, model=attempt.model_id, status=attempt.upstream_status) if attempt else None,
        result=job.result,
        cost=CostInfo(amount=job.cost.amount, unit=job.cost.unit, usd_estimate=job.cost.usd_estimate) if job.cost else None,
        attempts=[
            AttemptInfo(
                provider=a.provider,
                upstream_id=a.upstream_id,
                account=a.account,
                started_at=int(a.started_at),
                ended_at=int(a.ended_at) if a.ended_at else None,
                status=a.status,
                error=_error(a.error),
                error_class=a.error.error_class.value if a.error else None,
            )
            for a in job.attempts
        ],
        routing=RoutingInfo(
            rule=job.routing.rule,
            arm=job.routing.arm,
            candidates=[CandidateInfo(provider=c.provider, model_id=c.model_id, skipped=c.skipped) for c in job.routing.candidates],
        ),
        metadata=job.metadata,
    )


def _size(job: Job) -> str | None:
    """`WIDTHxHEIGHT` of the result when the upstream said, else what ratio and resolution imply."""
    result = job.result
    if result is not None and result.width and result.height:
        return f"{result.width}x{result.height}"
    return size_of(job.ratio, job.resolution)


def _error(info: ErrorInfo | None) -> VideoError | None:
    if info is None:
        return None
    # The code is vidgate's own reason when vidgate decided (submit_outcome_unknown,
    # upstream_timeout, ...), else its stable taxonomy; the upstream's own code stays in the message.
    detail = f" (upstream code {info.code})" if info.code else ""
    return VideoError(code=info.reason or info.error_class.value, message=f"{info.message}{detail}")


def encode_video(job: Job) -> bytes:
    return _encoder.encode(video_of(job))
