"""Reading PowerTokens task objects (create answers and `GET /v1/videos/{id}`).

The same endpoint has been seen speaking two status vocabularies (PT-docs
`pending|queued|running|succeeded|failed|cancelled|expired`, and new-api's
`queued|in_progress|completed|failed`, UPSTREAMS 2.5); both are in `STATUS`. The result URL
may sit in `video_url`, `metadata.url` or `content.video_url`. Pure: reads the response only.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import msgspec

from providers.base import Cost, ErrorClass, JobStatus, UpstreamError, UpstreamJob, VideoResult
from providers.powertokens import models
from providers.powertokens.errors import error_from_response, malformed, read_envelope, task_error, task_failure
from providers.powertokens.wire import TASK_ID, TaskContent, TaskMetadata, VideoTask, task_decoder

# Every status word either vocabulary uses (UPSTREAMS 2.5, 5.6; PT-studio `wait()` also
# treats `success` as ready and `canceled` as terminal). Matched case-insensitively after
# trimming, as the official client's `normalize_status` does. `expired` ends the job as
# failed with a TIMEOUT error (see `errors.task_failure`). Anything else is an error.
STATUS: dict[str, JobStatus] = {
    "pending": JobStatus.QUEUED,
    "queued": JobStatus.QUEUED,
    "running": JobStatus.IN_PROGRESS,
    "in_progress": JobStatus.IN_PROGRESS,
    "succeeded": JobStatus.COMPLETED,
    "completed": JobStatus.COMPLETED,
    "success": JobStatus.COMPLETED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
    "canceled": JobStatus.CANCELLED,
    "expired": JobStatus.FAILED,
}

# PowerTokens' own authenticated download route; a "result URL" pointing here is not a
# public link (the MiniMax page puts it in `metadata.url`, UPSTREAMS 2.5).
_CONTENT_PATH = re.compile(r"/v1/videos/[^/]+/content/?")


def parse_task(response: httpx.Response, *, submit: bool) -> UpstreamJob:
    """One task object as an `UpstreamJob`; any other answer as a classified `UpstreamError`.

    `submit` is True for the create answer, where only an id is certain (the 2.0 T2V page
    shows `{id, task_id, status}`): a missing status there means "accepted", i.e. queued.
    """
    if not response.is_success:
        raise error_from_response(response)
    try:
        task = task_decoder.decode(response.content)
    except msgspec.DecodeError as exc:
        raise malformed(f"PowerTokens answered HTTP {response.status_code} with an unreadable body: {exc}", response) from exc

    upstream_id = task.id or task.task_id or (None if submit else _requested_id(response))
    if not upstream_id:
        _code, said = read_envelope(response.content)
        raise malformed("PowerTokens answer carries no task id" + (f": {said}" if said else ""), response)
    if not TASK_ID.fullmatch(upstream_id):
        raise malformed(f"PowerTokens task id {upstream_id!r} is not of the documented form", response)

    word = (task.status or "").strip()
    if not word:
        if not submit:
            raise malformed("PowerTokens task object carries no status", response)
        status = JobStatus.QUEUED  # the create answer acknowledged a task (UPSTREAMS 2.4), nothing more
    else:
        found = STATUS.get(word.lower())
        if found is None:
            raise UpstreamError.of(
                ErrorClass.UPSTREAM_UNAVAILABLE,
                f"PowerTokens reported an unknown task status {word!r}",
                code="unknown_status",
                http_status=response.status_code,
            )
        status = found

    error = None
    if status is JobStatus.FAILED:
        # new-api's vocabulary has no `cancelled` / `expired`: it folds Ark's words into
        # `failed` and the word survives only as `error.code` (UPSTREAMS 2.5, 5.6) [I].
        code, _message = task_error(task)
        folded = (code or "").lower()
        if folded in ("cancelled", "canceled"):
            status = JobStatus.CANCELLED
        else:
            error = task_failure(task, expired=word.lower() == "expired" or folded == "expired")
    return UpstreamJob(
        upstream_id=upstream_id,
        status=status,
        upstream_status=task.status or "",
        model=task.model,
        progress=None if task.progress is None else int(task.progress),
        result=_result(task) if status is JobStatus.COMPLETED else None,
        error=error,
        cost=_usage_cost(task),
    )


def _requested_id(response: httpx.Response) -> str | None:
    """The id in the polled path, for a task object that omits its own id."""
    try:
        path = response.request.url.path
    except RuntimeError:  # a Response built without a request
        return None
    match = re.fullmatch(r".*/v1/videos/([^/]+)/?", path)
    return match.group(1) if match else None


def _public_url(value: str | None) -> str | None:
    """`value` if it is a usable http(s) download link, not PowerTokens' own content route."""
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    if _CONTENT_PATH.fullmatch(parts.path):
        return None  # needs the API key: the gateway downloads it through `content_call`
    return value


def _result(task: VideoTask) -> VideoResult:
    metadata = task.metadata or TaskMetadata()
    content = task.content or TaskContent()
    video_url = _public_url(task.video_url) or _public_url(metadata.url) or _public_url(content.video_url)
    last_frame = _public_url(task.last_frame_url) or _public_url(content.last_frame_url)
    width, height = _dimensions(task.size)
    return VideoResult(
        video_url=video_url,  # None: fetch via content_call (GET /v1/videos/{id}/content)
        last_frame_url=last_frame,
        width=width,
        height=height,
        duration=models.as_seconds(task.duration if task.duration is not None else task.seconds),
    )


def _dimensions(size: str | None) -> tuple[int | None, int | None]:
    """new-api echoes `size`; when it is "WxH" it gives the output's pixels."""
    match = re.fullmatch(r"(\d+)[xX*](\d+)", size or "")
    return (int(match.group(1)), int(match.group(2))) if match else (None, None)


def _usage_cost(task: VideoTask) -> Cost | None:
    """`usage.completion_tokens` as reported (UPSTREAMS 2.5, [I]); a USD estimate from the
    per-second price table when the answer says which model, size and duration it was."""
    tokens = task.usage.completion_tokens if task.usage is not None else None
    if tokens is None:
        return None
    estimate = None
    resolution = task.resolution or task.size
    seconds = task.duration if task.duration is not None else task.seconds
    if task.model and resolution and seconds is not None:
        priced = models.estimate_cost(task.model, resolution, seconds)
        estimate = priced.amount if priced is not None else None
    return Cost(amount=float(tokens), unit="tokens", usd_estimate=estimate)
