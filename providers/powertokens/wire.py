"""PowerTokens `/v1/videos` payloads, spelled as the upstream spells them.

Sources (see `/work/shared/upstreams/UPSTREAMS.md`):
- request bodies: section 2.2 (Seedance 2.0 family, `media` array) and 2.3 (Seedance 1.x,
  flat `prompt` / `image`), plus the stored reference page
  `powertokens-seedance-2-0-post-videos.txt`;
- the task object: sections 2.4 / 2.5 (PT-docs, new-api's `OpenAIVideo`) and 3.4 (Ark's
  `content{video_url,last_frame_url}`, which a pass-through may leak);
- error envelopes: section 2.8 (new-api `{code,message,data}`, OpenAI `{error:{...}}`,
  Ark `{error:{code,message,type,param}}`).

Request structs use `omit_defaults=True`, so a field the caller did not set is never
sent and the upstream's documented default applies. Response structs are decoded
leniently: unknown fields are ignored, and fields the gateway does not interpret
accept any plausible JSON type, so a new or oddly typed field never turns a good
answer into a "malformed" one.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

# ---------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------


class MediaItem(msgspec.Struct, frozen=True, omit_defaults=True):
    """One element of the 2.0 family's `media` array (UPSTREAMS 2.2).

    Either `{"type": "text", "text": ...}` or `{"type": <role>, "url": ...}` with role in
    `first_frame`, `last_frame`, `reference_image`, `reference_video`, `reference_audio`.
    """

    type: str
    text: str | None = None
    url: str | None = None


class CreateVideoRequest(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """`POST /v1/videos` body for the Seedance 2.0 family (UPSTREAMS 2.2)."""

    model: str
    media: list[MediaItem]
    seconds: str | None = None  # a STRING: "4".."15" or "-1" (the model picks)
    size: str | None = None  # resolution tier: 480p | 720p | 1080p
    ratio: str | None = None  # 16:9 4:3 1:1 3:4 9:16 21:9 adaptive
    seed: int | None = None
    watermark: bool | None = None
    generate_audio: bool | None = None
    return_last_frame: bool | None = None
    safety_identifier: str | None = None  # <= 64 characters, 2.0 series only


class CreateVideoRequestV1(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """`POST /v1/videos` body for Seedance 1.x (UPSTREAMS 2.3).

    `camera_fixed` and `draft` exist upstream but have no counterpart in vidgate's
    normalized request, so they are never sent (and not modelled).
    """

    model: str
    prompt: str | None = None
    image: str | None = None  # first frame: URL or Base64 (data URL)
    seconds: str | None = None
    size: str | None = None
    ratio: str | None = None
    seed: int | None = None
    watermark: bool | None = None
    generate_audio: bool | None = None  # 1.5 pro only
    return_last_frame: bool | None = None  # 1.5 pro only


# ---------------------------------------------------------------------------
# Responses: the task object (create answer and GET /v1/videos/{id})
# ---------------------------------------------------------------------------

Number = int | float


class TaskError(msgspec.Struct, frozen=True):
    """`error` of a failed task: `{message, code}` (new-api / Ark)."""

    message: str | None = None
    code: str | int | None = None


class TaskMetadata(msgspec.Struct, frozen=True):
    """`metadata`: its children are undocumented (UPSTREAMS 2.5); new-api puts the
    video URL in `url`, the PT MiniMax page puts the authenticated content URL there."""

    url: str | None = None


class TaskContent(msgspec.Struct, frozen=True):
    """Ark's `content` object (UPSTREAMS 3.4), seen through a pass-through."""

    video_url: str | None = None
    last_frame_url: str | None = None


class Usage(msgspec.Struct, frozen=True):
    completion_tokens: Number | None = None
    total_tokens: Number | None = None


class VideoTask(msgspec.Struct, frozen=True, kw_only=True):
    """The PowerTokens task object (UPSTREAMS 2.4 / 2.5), both status vocabularies.

    `id` and `task_id` are the same value (`task_id` is a backward-compatible alias).
    """

    id: str | None = None
    task_id: str | None = None
    object: str | None = None
    model: str | None = None
    status: str | None = None
    progress: Number | None = None
    created_at: Any = None
    updated_at: Any = None
    completed_at: Any = None
    expires_at: Any = None
    seconds: str | Number | None = None
    size: str | None = None
    # Ark-style echoes of the resolved output (UPSTREAMS 3.4), in case they pass through.
    duration: Number | None = None
    resolution: str | None = None
    ratio: str | None = None
    video_url: str | None = None
    last_frame_url: str | None = None
    metadata: TaskMetadata | None = None
    content: TaskContent | None = None
    error: TaskError | str | None = None
    usage: Usage | None = None


# ---------------------------------------------------------------------------
# Error envelopes (UPSTREAMS 2.8)
# ---------------------------------------------------------------------------


class ErrorObject(msgspec.Struct, frozen=True):
    """The inner `error` of both the OpenAI envelope `{message, type, param, code}` and
    Ark's `{code, message, type, param}`: the same four keys, so one struct reads both."""

    message: str | None = None
    type: str | None = None
    param: Any = None
    code: str | int | None = None


class ErrorEnvelope(msgspec.Struct, frozen=True):
    """Any of the three documented-or-likely error bodies, read with one decode.

    - OpenAI / Ark: `{"error": {...}}` (an `ErrorObject`);
    - new-api task routes: `{"code": "...", "message": "...", "data": null}`;
    - some new-api routes answer `{"error": "text"}` or `{"message": "text"}` alone.
    The keys of the three shapes do not collide, so reading them together is safe.
    """

    error: ErrorObject | str | None = None
    code: str | int | None = None
    message: str | None = None
    data: Any = None


# PowerTokens task ids (UPSTREAMS 5.12; PT-studio `task_url` uses `[A-Za-z0-9_-]{1,200}`).
TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")

task_decoder = msgspec.json.Decoder(VideoTask)
error_decoder = msgspec.json.Decoder(ErrorEnvelope)
