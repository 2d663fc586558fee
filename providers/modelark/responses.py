"""Reading ModelArk answers: the create answer, task objects (GET, list items, callback
bodies) and the list (MODELARK.md §2, §5, §6.1). Pure: reads the response only."""

from __future__ import annotations

import httpx
import msgspec

from providers.base import Cost, ErrorClass, ErrorInfo, JobStatus, UpstreamError, UpstreamJob, VideoResult
from providers.modelark import models, pricing
from providers.modelark.errors import Phase, expired, http_error, malformed, task_failure
from providers.modelark.wire import TASK_ID, Task, TaskList, task_decoder, task_id_decoder, task_list_decoder

# Every status word of §5.1. `expired` is a failure the gateway may fail over on
# (`errors.expired`: TIMEOUT). Any other word is an error, never a silent "queued": LiteLLM
# maps unknown words, `expired` included, to queued (§5.1), which would poll a dead task
# until vidgate's max age.
STATUS: dict[str, JobStatus] = {
    "queued": JobStatus.QUEUED,
    "running": JobStatus.IN_PROGRESS,
    "succeeded": JobStatus.COMPLETED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
    "expired": JobStatus.FAILED,
}


def parse_created(response: httpx.Response) -> UpstreamJob:
    """`200 {"id": "cgt-…"}` (§2): the task exists and waits in the queue."""
    if not response.is_success:
        raise http_error(response, "submit")
    try:
        created = task_id_decoder.decode(response.content)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise malformed(f"ModelArk answered the create with an unreadable body: {exc}", response) from exc
    return UpstreamJob(upstream_id=_checked_id(created.id, response), status=JobStatus.QUEUED, upstream_status="queued")


def parse_task_response(response: httpx.Response, phase: Phase = "poll") -> UpstreamJob:
    if not response.is_success:
        raise http_error(response, phase)
    try:
        task = task_decoder.decode(response.content)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise malformed(f"ModelArk answered with an unreadable task object: {exc}", response) from exc
    return job_from_task(task, response)


def parse_list(response: httpx.Response) -> TaskList:
    if not response.is_success:
        raise http_error(response, "list")
    try:
        return task_list_decoder.decode(response.content)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise malformed(f"ModelArk answered the list with an unreadable body: {exc}", response) from exc


def job_from_task(task: Task, response: httpx.Response | None = None) -> UpstreamJob:
    """One task object as an `UpstreamJob`; an unknown status word raises `unknown_status`."""
    upstream_id = _checked_id(task.id, response)
    word = task.status or ""
    status = STATUS.get(word)
    if status is None:
        raise UpstreamError.of(
            ErrorClass.UPSTREAM_UNAVAILABLE,
            f"ModelArk task {upstream_id} has an unknown status {word!r}",
            code="unknown_status",
            http_status=None if response is None else response.status_code,
        )
    error: ErrorInfo | None = None
    if word == "failed":
        error = task_failure(task.error)
    elif word == "expired":
        error = expired(task.error)
    completed = status is JobStatus.COMPLETED
    return UpstreamJob(
        upstream_id=upstream_id,
        status=status,
        upstream_status=word,
        model=task.model,
        progress=100 if completed else None,  # ModelArk reports no progress (§5)
        result=_result(task, upstream_id, response) if completed else None,
        error=error,
        cost=_cost(task) if completed else None,  # only successful tasks are billed (§11.1)
    )


def _checked_id(upstream_id: str | None, response: httpx.Response | None) -> str:
    if not upstream_id:
        raise malformed("ModelArk answer carries no task id", response)
    if not TASK_ID.fullmatch(upstream_id):
        raise malformed(f"ModelArk task id {upstream_id!r} is blank or over 200 characters", response)
    return upstream_id


def _seconds(task: Task) -> float | None:
    """The output's length: `duration`, or `frames` / 24 when the request used frames (§5)."""
    if task.duration is not None and task.duration > 0:
        return float(task.duration)
    if task.frames is not None and task.frames > 0:
        return task.frames / (task.framespersecond or pricing.FPS)
    return None


def _result(task: Task, upstream_id: str, response: httpx.Response | None) -> VideoResult:
    video_url = task.content.video_url if task.content else None
    if not video_url:
        raise malformed(f"ModelArk task {upstream_id} succeeded but has no content.video_url", response)
    size = pixel_size_of(task)
    caps = models.MODELS.get(task.model or "")
    has_audio = task.generate_audio
    if has_audio is None and caps is not None and not caps.generate_audio:
        has_audio = False  # a model that can't make sound
    return VideoResult(
        video_url=video_url,
        last_frame_url=task.content.last_frame_url if task.content else None,
        width=size[0] if size else None,
        height=size[1] if size else None,
        duration=_seconds(task),
        has_audio=has_audio,
    )


def pixel_size_of(task: Task) -> tuple[int, int] | None:
    """The §4.1 pixel size of the returned resolution and ratio (the task has no pixels)."""
    return pricing.pixel_size(task.model or "", task.resolution, task.ratio)


def _cost(task: Task) -> Cost | None:
    """`usage.completion_tokens` as billed, with a USD estimate from the §11.2 list prices."""
    tokens = task.usage.completion_tokens if task.usage is not None else None
    if tokens is None:
        return None
    usd = pricing.task_usd(
        task.model or "",
        tokens,
        resolution=task.resolution,
        ratio=task.ratio,
        seconds=_seconds(task),
        audio=task.generate_audio,
        flex=task.service_tier == "flex",
    )
    return Cost(amount=float(tokens), unit="tokens", usd_estimate=usd)
