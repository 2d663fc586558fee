"""useapi.net Dreamina v1 payloads, spelled exactly as the upstream spells them.

Sources: `upstreams/useapi-dreamina-post-videos.txt` (doc revision Apr 3 2026),
UPSTREAMS.md section 1 (doc revisions Feb 23 - Apr 17 2026, Postman collection
"Updated Feb 23, 2026 (Apr 17, 2026)").

Outgoing bodies omit every unset field (`omit_defaults`), so the upstream applies
its own documented defaults. Incoming payloads are decoded leniently: unknown
fields are ignored and numeric strings are accepted where numbers are expected
(`strict=False`), because useapi also speaks multipart with string-typed values.
"""

from __future__ import annotations

import msgspec

# ---------------------------------------------------------------------------
# POST /videos (request body)
# ---------------------------------------------------------------------------


class VideoCreate(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Body of `POST /videos`. Numbered fields are spelled out so each one is greppable."""

    account: str | None = None
    prompt: str | None = None
    model: str | None = None
    ratio: str | None = None
    duration: int | None = None
    resolution: str | None = None
    firstFrameRef: str | None = None
    endFrameRef: str | None = None
    replyUrl: str | None = None
    replyRef: str | None = None
    maxJobs: int | None = None

    # multi_frame: N = 1..10, contiguous
    frame_1_imageRef: str | None = None
    frame_1_prompt: str | None = None
    frame_1_duration: int | None = None
    frame_2_imageRef: str | None = None
    frame_2_prompt: str | None = None
    frame_2_duration: int | None = None
    frame_3_imageRef: str | None = None
    frame_3_prompt: str | None = None
    frame_3_duration: int | None = None
    frame_4_imageRef: str | None = None
    frame_4_prompt: str | None = None
    frame_4_duration: int | None = None
    frame_5_imageRef: str | None = None
    frame_5_prompt: str | None = None
    frame_5_duration: int | None = None
    frame_6_imageRef: str | None = None
    frame_6_prompt: str | None = None
    frame_6_duration: int | None = None
    frame_7_imageRef: str | None = None
    frame_7_prompt: str | None = None
    frame_7_duration: int | None = None
    frame_8_imageRef: str | None = None
    frame_8_prompt: str | None = None
    frame_8_duration: int | None = None
    frame_9_imageRef: str | None = None
    frame_9_prompt: str | None = None
    frame_9_duration: int | None = None
    frame_10_imageRef: str | None = None
    frame_10_prompt: str | None = None
    frame_10_duration: int | None = None

    # unified_edit (omni reference): images N = 1..9, videos and audios N = 1..3
    omni_1_imageRef: str | None = None
    omni_2_imageRef: str | None = None
    omni_3_imageRef: str | None = None
    omni_4_imageRef: str | None = None
    omni_5_imageRef: str | None = None
    omni_6_imageRef: str | None = None
    omni_7_imageRef: str | None = None
    omni_8_imageRef: str | None = None
    omni_9_imageRef: str | None = None
    omni_1_videoRef: str | None = None
    omni_2_videoRef: str | None = None
    omni_3_videoRef: str | None = None
    omni_1_audioRef: str | None = None
    omni_2_audioRef: str | None = None
    omni_3_audioRef: str | None = None


MAX_FRAMES = 10
MAX_OMNI = {"image": 9, "video": 3, "audio": 3}


# ---------------------------------------------------------------------------
# Job record: POST /videos (200), GET /videos/{jobid}, replyUrl callbacks
# ---------------------------------------------------------------------------


class JobRequest(msgspec.Struct, kw_only=True):
    """`request` inside a job record: what the upstream understood. Only the fields we read
    are typed, so an odd value in any other field can't make a finished job unreadable."""

    model: str | None = None
    account: str | None = None  # not in the doc's model; read when present
    inputMode: str | None = None  # prompt | first_frame | end_frame | multi_frame | unified_edit
    replyRef: str | None = None


class JobResponse(msgspec.Struct, kw_only=True):
    """`response` inside a job record; only `forecastCost` is present before completion."""

    forecastCost: float | None = None
    assetId: str | None = None
    videoId: str | None = None
    videoUrl: str | None = None
    videoUrlWatermarked: str | None = None  # seen in client code, not in the docs
    videoUrlBackup: str | None = None  # seen in client code, not in the docs
    coverUrl: str | None = None
    width: int | None = None
    height: int | None = None
    durationMs: float | None = None  # milliseconds; float so that 5042.0 can't fail a completed record
    hasAudio: bool | None = None
    finishTime: float | None = None  # Unix seconds


class JobRecord(msgspec.Struct, kw_only=True):
    jobid: str
    status: str  # kept as a plain string: an unknown word is classified, not a decode error
    type: str | None = None
    model: str | None = None
    created: str | None = None
    updated: str | None = None
    request: JobRequest | None = None
    response: JobResponse | None = None
    code: int | str | None = None
    error: str | None = None  # top level, e.g. "fail_code: 2043" or "Cancelled by user"
    errorDetails: str | None = None  # top level, e.g. "OutputVideoRisk"


# ---------------------------------------------------------------------------
# GET /scheduler (200): the jobs running now, per account (UPSTREAMS 1.7)
# ---------------------------------------------------------------------------


class ExecutingJob(msgspec.Struct, kw_only=True):
    jobid: str
    submitId: str | None = None
    model: str | None = None
    elapsedSeconds: float | None = None
    replyUrl: str | None = None


class Scheduler(msgspec.Struct, kw_only=True):
    executing: dict[str, list[ExecutingJob]] = {}  # account id -> its running jobs
    total: int | None = None


# ---------------------------------------------------------------------------
# POST /assets/{account} (200)
# ---------------------------------------------------------------------------


class AssetUpload(msgspec.Struct, kw_only=True):
    assetRef: str | None = None
    imageRef: str | None = None  # the name before Mar 2 2026 (images only)
    account: str | None = None
    type: str | None = None  # "video" / "audio"; absent for images
    width: int | None = None
    height: int | None = None
    duration: int | None = None  # milliseconds
    size: int | None = None


# ---------------------------------------------------------------------------
# Error body (any non-2xx)
# ---------------------------------------------------------------------------


class ErrorBody(msgspec.Struct, kw_only=True):
    """`{"error": "<message>"}`, sometimes with `"code": <http status>`."""

    error: str | None = None
    code: int | str | None = None


job_record_decoder = msgspec.json.Decoder(JobRecord, strict=False)
asset_upload_decoder = msgspec.json.Decoder(AssetUpload, strict=False)
scheduler_decoder = msgspec.json.Decoder(Scheduler, strict=False)
error_body_decoder = msgspec.json.Decoder(ErrorBody, strict=False)
