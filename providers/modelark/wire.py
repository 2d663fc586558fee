"""BytePlus ModelArk task payloads, spelled as the upstream spells them (MODELARK.md).

Requests (§2, §3.1) use `omit_defaults=True`: a field the caller did not set is never
sent, so the upstream's documented default applies (the official SDK drops unset values
too, §2). Content items are a tagged union on `type`; `role` is a sibling of the media
object, not inside it (§3.1).

Fields of the create body vidgate has no input for are not modelled and never sent:
`priority`, `draft`, `camera_fixed`, `frames`, `omni_reference_task_type`, `output_format`,
`tools` (never on BytePlus, §2) and `service_tier` (no field on `GenerationRequest`; the
upstream default `default` applies). `execution_expires_after` follows vidgate's own
maximum job age for the provider (`SubmitContext.max_age_seconds`), so a task vidgate
gave up on stops billing instead of running on for the 48 h default.

Responses (§5, §6.1, §8.1) are decoded leniently: unknown fields are ignored, numbers may
arrive as strings (`strict=False`), and fields vidgate does not interpret accept any JSON
type, so an odd value in an unread field never makes a good answer unreadable.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

# ---------------------------------------------------------------------------
# Create task (POST /contents/generations/tasks)
# ---------------------------------------------------------------------------


class MediaUrl(msgspec.Struct, frozen=True):
    """`{"url": "<https URL | data:<mime>;base64,… | asset://<id>>"}` (§3.1)."""

    url: str


class TextItem(msgspec.Struct, frozen=True, tag_field="type", tag="text"):
    text: str


class ImageItem(msgspec.Struct, frozen=True, omit_defaults=True, tag_field="type", tag="image_url"):
    image_url: MediaUrl
    role: str | None = None  # first_frame | last_frame | reference_image


class VideoItem(msgspec.Struct, frozen=True, tag_field="type", tag="video_url"):
    video_url: MediaUrl
    role: str = "reference_video"


class AudioItem(msgspec.Struct, frozen=True, tag_field="type", tag="audio_url"):
    audio_url: MediaUrl
    role: str = "reference_audio"


ContentItem = TextItem | ImageItem | VideoItem | AudioItem


class CreateTask(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The create body (§2); field order as the official SDK sends it."""

    model: str
    content: list[ContentItem]
    safety_identifier: str | None = None
    callback_url: str | None = None
    return_last_frame: bool | None = None
    generate_audio: bool | None = None
    watermark: bool | None = None
    seed: int | None = None
    resolution: str | None = None
    ratio: str | None = None
    duration: int | None = None
    execution_expires_after: int | None = None  # seconds, in [3600, 259200] (§2)


# ---------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------


class TaskId(msgspec.Struct, frozen=True):
    """The create answer `{"id": "cgt-…"}` (§2)."""

    id: str | None = None
    safety_identifier: Any = None


class TaskError(msgspec.Struct, frozen=True):
    """`error` of a failed task: `{code, message}`, no type or param (§5, §8.1)."""

    code: str | int | None = None
    message: str | None = None


class TaskContent(msgspec.Struct, frozen=True):
    video_url: str | None = None
    last_frame_url: str | None = None  # only with `return_last_frame: true`


class Usage(msgspec.Struct, frozen=True):
    completion_tokens: int | float | None = None
    total_tokens: int | float | None = None


class Task(msgspec.Struct, frozen=True, kw_only=True):
    """The task object of GET, of every list item and of every callback body (§5)."""

    id: str | None = None
    model: str | None = None
    status: str | None = None
    error: TaskError | None = None
    created_at: Any = None
    updated_at: Any = None
    content: TaskContent | None = None
    seed: Any = None
    resolution: str | None = None
    ratio: str | None = None
    duration: int | float | None = None
    frames: int | float | None = None
    framespersecond: int | float | None = None
    generate_audio: bool | None = None
    safety_identifier: Any = None
    priority: Any = None
    draft: Any = None
    draft_task_id: Any = None
    service_tier: str | None = None
    execution_expires_after: Any = None
    usage: Usage | None = None


class TaskList(msgspec.Struct, frozen=True):
    """`GET /contents/generations/tasks` (§6.1)."""

    items: list[Task] = []
    total: int | None = None


class ErrorObject(msgspec.Struct, frozen=True):
    code: str | int | None = None
    message: str | None = None
    param: Any = None
    type: str | None = None


class ErrorEnvelope(msgspec.Struct, frozen=True):
    """`{"error": {"code", "message", "param", "type"}}` (§8.1, §12.6)."""

    error: ErrorObject | None = None


# `cgt-` + a UTC-ish timestamp + `-` + 5 characters in every example (§2), but the contract
# says to treat it as opaque: any non-blank string; paths percent-encode it.
TASK_ID = re.compile(r"\S{1,200}")

task_id_decoder = msgspec.json.Decoder(TaskId, strict=False)
task_decoder = msgspec.json.Decoder(Task, strict=False)
task_list_decoder = msgspec.json.Decoder(TaskList, strict=False)
error_decoder = msgspec.json.Decoder(ErrorEnvelope, strict=False)
