"""useapi.net Dreamina v1: pure translation between vidgate's request and useapi's wire.

No I/O, no environment, no globals: every method maps values to values
(`providers.client.UpstreamClient` does the HTTP). The base URL handed to the
HTTP client is `https://api.useapi.net/v1/dreamina`, so paths here are relative
to it (`/videos`, `/assets/{account}`, `/scheduler/{jobid}`).

Flow (UPSTREAMS 1.3-1.7): every medium is uploaded as raw bytes to
`POST /assets/{account}`, which answers an `assetRef` tied to that account; the
job is submitted with `POST /videos` pinned to the same account; it is followed
with `GET /videos/{jobid}` and cancelled with `DELETE /scheduler/{jobid}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import httpx
import msgspec

from providers.base import (
    AdapterDefaults,
    Cost,
    ErrorClass,
    FirstFrameInput,
    FirstLastFrameInput,
    GenerationRequest,
    HttpCall,
    JobStatus,
    KeyframesInput,
    Media,
    ReferenceInput,
    SubmitContext,
    TextInput,
    UpstreamError,
    UpstreamJob,
    VideoResult,
)
from providers.useapi.errors import CANCELLED_MESSAGE, Phase, http_error, job_failure, malformed
from providers.useapi.wire import (
    MAX_FRAMES,
    MAX_OMNI,
    JobRecord,
    VideoCreate,
    asset_upload_decoder,
    job_record_decoder,
    scheduler_decoder,
)

# Every status word the Dreamina docs use (UPSTREAMS 1.5). Anything else is an error.
#
# `created` -> IN_PROGRESS, not QUEUED: POST /videos answers `created` only once an
# account slot was taken ("Video is generating in the background"); when every account
# is at `maxJobs` useapi refuses with 429 instead of queueing, and a `created` job is
# listed under `executing` by GET /scheduler. Nothing upstream ever waits in a queue.
STATUS_TABLE: dict[str, JobStatus] = {
    "created": JobStatus.IN_PROGRESS,
    "completed": JobStatus.COMPLETED,
    "failed": JobStatus.FAILED,  # CANCELLED when error == "Cancelled by user"
}

# `j<MMDDhhmmssSSS><6 digits><v|i>-u<userId>-<REGION>:<email>-bot:dreamina` (UPSTREAMS 1.4)
_JOBID_ACCOUNT = re.compile(r"^j\d+[a-z]?-u\d+-(?P<account>[A-Z]{2}:.+)-bot:dreamina$")


class UseapiAdapter(AdapterDefaults):
    """The `Adapter` for useapi.net Dreamina v1."""

    provider_type: ClassVar[str] = "useapi"
    media_delivery: ClassVar[Literal["bytes", "url"]] = "bytes"

    # -- auth ---------------------------------------------------------------

    def auth_headers(self, secret: str) -> dict[str, str]:
        # The whole `user:<n>-<string>` token, neither truncated nor encoded (UPSTREAMS 1.1).
        return {"Authorization": f"Bearer {secret}"}

    # -- uploads ------------------------------------------------------------

    def uploads(self, request: GenerationRequest, ctx: SubmitContext) -> list[tuple[str, HttpCall]]:
        """One raw-bytes `POST /assets/{account}` per medium, keyed by where it goes."""
        media = media_by_key(request)
        if not media:
            return []
        if not ctx.account:
            raise ValueError("useapi uploads need SubmitContext.account: an assetRef only works on the account it was uploaded to")
        path = f"/assets/{_seg(ctx.account)}"
        calls: list[tuple[str, HttpCall]] = []
        for key, medium in media:
            if medium.data is None:
                raise ValueError(f"useapi takes media as bytes (media_delivery='bytes'); {key} has only a URL")
            if not medium.content_type:
                raise ValueError(f"{key} has no content_type; useapi needs the file's own Content-Type")
            headers = {"Content-Type": medium.content_type}
            calls.append((key, HttpCall(method="POST", path=path, content=medium.data, headers=headers)))
        return calls

    def parse_upload(self, response: httpx.Response) -> str:
        if not response.is_success:
            raise http_error(response, "upload")
        try:
            asset = asset_upload_decoder.decode(response.content)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise malformed(f"unreadable asset upload answer: {exc}", http_status=response.status_code) from exc
        ref = asset.assetRef or asset.imageRef  # `imageRef` before Mar 2 2026
        if not ref:
            raise malformed("asset upload answer has no assetRef", http_status=response.status_code)
        return ref

    # -- submit -------------------------------------------------------------

    def build_submit(self, request: GenerationRequest, model_id: str, refs: Mapping[str, str], ctx: SubmitContext) -> HttpCall:
        fields: dict[str, Any] = {
            "account": ctx.account,
            "model": model_id,
            "resolution": request.resolution,
            "replyUrl": ctx.callback_url,
            "replyRef": ctx.callback_ref,
        }
        if request.seconds == "auto":
            raise ValueError("useapi models can't choose their own duration; the capability check should reject 'auto'")
        fields["duration"] = request.seconds

        inp = request.input
        if isinstance(inp, TextInput):
            fields["prompt"] = inp.prompt
        elif isinstance(inp, FirstFrameInput):
            fields["prompt"] = inp.prompt
            fields["firstFrameRef"] = _ref(refs, "first_frame")
        elif isinstance(inp, FirstLastFrameInput):
            fields["prompt"] = inp.prompt
            fields["firstFrameRef"] = _ref(refs, "first_frame")
            fields["endFrameRef"] = _ref(refs, "last_frame")
        elif isinstance(inp, KeyframesInput):
            # No top-level prompt in multi_frame mode; each frame carries its own.
            if len(inp.frames) > MAX_FRAMES:
                raise ValueError(f"useapi takes at most {MAX_FRAMES} keyframes, got {len(inp.frames)}")
            for i, frame in enumerate(inp.frames):
                n = i + 1
                fields[f"frame_{n}_imageRef"] = _ref(refs, f"keyframes.{i}")
                fields[f"frame_{n}_prompt"] = frame.prompt
                fields[f"frame_{n}_duration"] = frame.seconds
        elif isinstance(inp, ReferenceInput):
            # images[i] <-> omni_{i+1}_imageRef <-> @image{i+1} in the prompt (same for videos, audios).
            fields["prompt"] = inp.prompt
            for group, kind in (("images", "image"), ("videos", "video"), ("audios", "audio")):
                items = getattr(inp, group)
                if len(items) > MAX_OMNI[kind]:
                    raise ValueError(f"useapi takes at most {MAX_OMNI[kind]} {group}, got {len(items)}")
                for i in range(len(items)):
                    fields[f"omni_{i + 1}_{kind}Ref"] = _ref(refs, f"{group}.{i}")
        else:  # pragma: no cover - the ModeInput union is closed
            raise ValueError(f"unsupported input {type(inp).__name__}")

        # `ratio` must never travel with an image ref: the image's own ratio is used (UPSTREAMS 1.4).
        if not _sends_image(request):
            fields["ratio"] = request.ratio

        body = VideoCreate(**{k: v for k, v in fields.items() if v is not None})
        return HttpCall(method="POST", path="/videos", json=msgspec.to_builtins(body))

    def parse_submit(self, response: httpx.Response) -> UpstreamJob:
        return self._parse_record(response, "submit")

    # -- poll / cancel / content -------------------------------------------

    def build_poll(self, upstream_id: str) -> HttpCall:
        return HttpCall(method="GET", path=f"/videos/{_seg(upstream_id)}")

    def parse_poll(self, response: httpx.Response) -> UpstreamJob:
        return self._parse_record(response, "poll")

    def build_cancel(self, upstream_id: str) -> HttpCall | None:
        return HttpCall(method="DELETE", path=f"/scheduler/{_seg(upstream_id)}")

    def parse_cancel(self, response: httpx.Response) -> None:
        # 204 per sibling useapi schedulers; any 2xx is accepted. 404: not running (anymore).
        if not response.is_success:
            raise http_error(response, "cancel")

    def content_call(self, upstream_id: str, job: UpstreamJob) -> HttpCall | None:
        return None  # `videoUrl` is a direct (signed) CDN URL, fetched without useapi credentials

    # -- reconciliation ---------------------------------------------------------

    def build_find(self, ctx: SubmitContext) -> HttpCall | None:
        """`GET /scheduler` lists the running jobs with their `replyUrl` (UPSTREAMS 1.7);
        a submit's callback URL is unique to its vidgate job, so it identifies the job."""
        return HttpCall(method="GET", path="/scheduler") if ctx.callback_url else None

    def parse_find(self, response: httpx.Response, ctx: SubmitContext) -> UpstreamJob | None:
        if not response.is_success:
            raise http_error(response, "poll")
        try:
            listing = scheduler_decoder.decode(response.content)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise malformed(f"unreadable scheduler listing: {exc}", http_status=response.status_code) from exc
        for account, running in listing.executing.items():
            for job in running:
                if ctx.callback_url and job.replyUrl == ctx.callback_url:
                    return UpstreamJob(upstream_id=job.jobid, status=JobStatus.IN_PROGRESS, upstream_status="created", model=job.model, account=account)
        return None

    def parse_callback(self, body: bytes) -> str | None:
        """A `replyUrl` callback carries the job record (UPSTREAMS 1.8); only its jobid is used."""
        try:
            return job_record_decoder.decode(body).jobid or None
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None

    # -- cost ----------------------------------------------------------------

    def estimate_cost(self, model_id: str, resolution: str | None, seconds: float | None) -> Cost | None:
        """No USD price table: useapi is a flat subscription and jobs spend Dreamina
        credits, which each job record reports itself (`forecastCost`)."""
        return None

    # -- job records ---------------------------------------------------------

    def parse_record(self, content: bytes) -> UpstreamJob:
        """A job record from any source: a poll answer or a `replyUrl` callback body."""
        try:
            record = job_record_decoder.decode(content)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise malformed(f"unreadable job record: {exc}") from exc
        return job_from_record(record)

    def _parse_record(self, response: httpx.Response, phase: Phase) -> UpstreamJob:
        if not response.is_success:
            raise http_error(response, phase)
        try:
            record = job_record_decoder.decode(response.content)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise malformed(f"unreadable job record: {exc}", http_status=response.status_code) from exc
        return job_from_record(record)


# ---------------------------------------------------------------------------
# Helpers (pure, module level so tests and the gateway can reuse them)
# ---------------------------------------------------------------------------


def media_by_key(request: GenerationRequest) -> list[tuple[str, Media]]:
    """Every medium of the request with its stable upload key, in submit order."""
    inp = request.input
    if isinstance(inp, FirstFrameInput):
        return [("first_frame", inp.first_frame)]
    if isinstance(inp, FirstLastFrameInput):
        return [("first_frame", inp.first_frame), ("last_frame", inp.last_frame)]
    if isinstance(inp, KeyframesInput):
        return [(f"keyframes.{i}", frame.image) for i, frame in enumerate(inp.frames)]
    if isinstance(inp, ReferenceInput):
        return [(f"{group}.{i}", medium) for group in ("images", "videos", "audios") for i, medium in enumerate(getattr(inp, group))]
    return []


def job_from_record(record: JobRecord) -> UpstreamJob:
    """Normalize one job record; unknown status words raise `unknown_status`."""
    status = STATUS_TABLE.get(record.status)
    if status is None:
        raise UpstreamError.of(
            ErrorClass.UPSTREAM_UNAVAILABLE,
            f"useapi job {record.jobid} has an unknown status {record.status!r}",
            code="unknown_status",
        )
    response = record.response
    error = None
    result = None
    if status is JobStatus.FAILED:
        if record.error == CANCELLED_MESSAGE:
            status = JobStatus.CANCELLED
        else:
            error = job_failure(record.error, record.errorDetails)
    elif status is JobStatus.COMPLETED:
        result = _result(record)

    cost = None
    if response is not None and response.forecastCost is not None:
        cost = Cost(amount=response.forecastCost, unit="credits")
    return UpstreamJob(
        upstream_id=record.jobid,
        status=status,
        upstream_status=record.status,
        model=record.model or (record.request.model if record.request else None),
        result=result,
        error=error,
        cost=cost,
        account=(record.request.account if record.request else None) or account_of_jobid(record.jobid),
        callback_ref=record.request.replyRef if record.request else None,
    )


def account_of_jobid(jobid: str) -> str | None:
    """The `<REGION>:<email>` account a jobid names, or None if it doesn't look like one."""
    match = _JOBID_ACCOUNT.match(jobid)
    return match.group("account") if match else None


def _result(record: JobRecord) -> VideoResult:
    response = record.response
    url = response and (response.videoUrl or response.videoUrlWatermarked)
    if response is None or not url:
        raise malformed(f"useapi job {record.jobid} is completed but has no videoUrl")
    return VideoResult(
        video_url=url,
        thumbnail_url=response.coverUrl,
        width=response.width,
        height=response.height,
        duration=response.durationMs / 1000 if response.durationMs is not None else None,
        has_audio=response.hasAudio,
    )


def _sends_image(request: GenerationRequest) -> bool:
    inp = request.input
    if isinstance(inp, (FirstFrameInput, FirstLastFrameInput, KeyframesInput)):
        return True
    return isinstance(inp, ReferenceInput) and bool(inp.images)


def _ref(refs: Mapping[str, str], key: str) -> str:
    try:
        return refs[key]
    except KeyError:
        raise ValueError(f"no uploaded reference for {key!r}; run the uploads first") from None


def _seg(value: str) -> str:
    """One path segment: account ids and jobids contain `:` and `@`."""
    return quote(value, safe="")
