"""BytePlus ModelArk Seedance tasks: pure translation, no I/O, no env, no globals.

The HTTP client's base URL is `https://ark.ap-southeast.bytepluses.com/api/v3` (§1), so
paths here are relative to it. Flow (MODELARK.md): `POST /contents/generations/tasks` with
a `content` array of role-tagged items (§2, §3), followed with `GET …/tasks/{id}` or woken
by `callback_url` (§7), cancelled with `DELETE …/tasks/{id}` while queued (§6.2).
Answers are read in `responses.py`, failures classified in `errors.py`.

Media travel inside the body (§3.1): a `Media` with a URL is sent as that URL; bytes only
for the kinds in `inline_media`, as a `data:<type>/<format>;base64,` URL with a lowercase
format (§3.1). Videos are never inlined (§3.1 "URL or asset id only").
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import ClassVar, Literal
from urllib.parse import quote

import httpx
import msgspec

from providers.base import (
    AdapterDefaults,
    Cost,
    FirstFrameInput,
    FirstLastFrameInput,
    GenerationRequest,
    HttpCall,
    Media,
    MediaKind,
    ReferenceInput,
    SubmitContext,
    TextInput,
    UpstreamJob,
)
from providers.media_probe import sniff_type
from providers.modelark import models, pricing
from providers.modelark.errors import http_error
from providers.modelark.responses import parse_created, parse_task_response
from providers.modelark.wire import (
    TASK_ID,
    AudioItem,
    ContentItem,
    CreateTask,
    ImageItem,
    MediaUrl,
    TextItem,
    VideoItem,
    task_decoder,
)

TASKS = "/contents/generations/tasks"
MAX_BODY_BYTES = 64 * 1000 * 1000  # "whole request body <= 64 MB" (§1); the smaller reading of MB

# data: URL formats (§3.1 lowercase format; §3.3 image formats; §3.4 audio wav / mp3), keyed
# by the MIME types files arrive with.
_DATA_FORMATS: dict[str, str] = {
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/png": "png",
    "image/webp": "webp",
    "image/bmp": "bmp",
    "image/x-ms-bmp": "bmp",
    "image/tiff": "tiff",
    "image/gif": "gif",
    "image/heic": "heic",
    "image/heif": "heif",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/vnd.wave": "wav",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
}


def safety_identifier(end_user: str) -> str:
    """The end user as `safety_identifier` (§2: stable per user, <= 64 chars, "e.g. a hash of
    the user id"): its SHA-256 hex digest, exactly 64 characters. Always hashed, so the
    upstream never sees the raw id, and stable, so the same user always looks the same."""
    return hashlib.sha256(end_user.encode()).hexdigest()


def task_path(upstream_id: str) -> str:
    """`…/tasks/{id}` with the id as one percent-encoded segment; ValueError for a blank id."""
    if not isinstance(upstream_id, str) or not TASK_ID.fullmatch(upstream_id):
        raise ValueError(f"not a ModelArk task id: {upstream_id!r}")
    return f"{TASKS}/{quote(upstream_id, safe='')}"


def media_url(media: Media, kind: MediaKind, inline: Mapping[MediaKind, int | None]) -> str:
    """A `Media` as the URL string of a content item: its URL, or its bytes as a data: URL
    when `kind` may travel inline at that size. Anything else is a programming error."""
    if media.kind != kind:
        raise ValueError(f"expected {kind} media, got {media.kind}")
    if media.url is not None:
        return media.url
    assert media.data is not None  # Media guarantees exactly one of url / data
    if kind not in inline:
        raise ValueError(f"ModelArk takes {kind} media by URL only; the gateway handed bytes")
    limit = inline[kind]
    if limit is not None and len(media.data) > limit:
        raise ValueError(f"{kind} of {len(media.data)} bytes is over ModelArk's {limit}-byte inline limit")
    mime = (media.content_type or sniff_type(media.data) or "").split(";")[0].strip().lower()
    family, _, subtype = mime.partition("/")
    if family != kind or not subtype:
        raise ValueError(f"{kind} bytes of unknown type {mime or '(none)'}: a data: URL needs data:{kind}/<format>")
    fmt = _DATA_FORMATS.get(mime, subtype)  # an unlisted format goes as named; the upstream judges it
    return f"data:{kind}/{fmt};base64,{base64.b64encode(media.data).decode('ascii')}"


def content_items(request: GenerationRequest, inline: Mapping[MediaKind, int | None]) -> list[ContentItem]:
    """The `content` array: text first (as every example, §3.5), then the media; within
    each media type the caller's order, since the prompt's "Image 2" is the second image."""
    inp = request.input
    items: list[ContentItem] = []
    if request.prompt:
        items.append(TextItem(text=request.prompt))
    if isinstance(inp, TextInput):
        pass
    elif isinstance(inp, FirstFrameInput):
        items.append(ImageItem(image_url=MediaUrl(media_url(inp.first_frame, "image", inline)), role="first_frame"))
    elif isinstance(inp, FirstLastFrameInput):
        items.append(ImageItem(image_url=MediaUrl(media_url(inp.first_frame, "image", inline)), role="first_frame"))
        items.append(ImageItem(image_url=MediaUrl(media_url(inp.last_frame, "image", inline)), role="last_frame"))
    elif isinstance(inp, ReferenceInput):
        items.extend(ImageItem(image_url=MediaUrl(media_url(m, "image", inline)), role="reference_image") for m in inp.images)
        items.extend(VideoItem(video_url=MediaUrl(media_url(m, "video", inline))) for m in inp.videos)
        items.extend(AudioItem(audio_url=MediaUrl(media_url(m, "audio", inline))) for m in inp.audios)
    else:  # keyframes: no ModelArk mode; `capabilities.check` refuses it first
        raise ValueError(f"ModelArk has no {request.mode} input")
    if not items:
        raise ValueError("ModelArk needs a prompt or at least one medium")
    return items


def _duration(request: GenerationRequest) -> int | None:
    if request.seconds is None:
        return None  # the upstream default (5; 2.5: -1) applies
    if request.seconds == "auto":
        return -1  # "-1 = model chooses" (§2); `check` allows it only where documented
    return int(request.seconds)


def build_body(request: GenerationRequest, model_id: str, ctx: SubmitContext, inline: Mapping[MediaKind, int | None]) -> CreateTask:
    """The create body for `model_id`, with only the fields the caller set.

    - `seed` travels only when the caller set one; on the 2.0 family that is the
      [CONFLICT] rule of §2 (S5 ticks it, S1a lists it for 1.x only).
    - `generate_audio: false` is left out for models without audio (1.0 series): their
      video is silent anyway, and the field is "unsupported for the model" there (§2);
      `true` never gets here (`check` refuses it).
    """
    caps = models.MODELS.get(model_id)
    generate_audio = request.generate_audio
    if generate_audio is False and caps is not None and not caps.generate_audio:
        generate_audio = None
    return CreateTask(
        model=model_id,
        content=content_items(request, inline),
        safety_identifier=None if request.end_user is None else safety_identifier(request.end_user),
        callback_url=ctx.callback_url,
        return_last_frame=request.return_last_frame,
        generate_audio=generate_audio,
        watermark=request.watermark,
        seed=request.seed,
        resolution=request.resolution,
        ratio=request.ratio,
        duration=_duration(request),
        execution_expires_after=_expires_after(ctx.max_age_seconds),
    )


EXPIRES_AFTER_RANGE = (3600, 259200)  # seconds (§2)


def _expires_after(max_age: float | None) -> int | None:
    """The gateway's give-up time as the task's own expiry, within the range the upstream takes."""
    if max_age is None:
        return None
    low, high = EXPIRES_AFTER_RANGE
    return max(low, min(high, int(max_age)))


class ModelArkAdapter(AdapterDefaults):
    """The `Adapter` for BytePlus ModelArk's content generation tasks."""

    provider_type: ClassVar[str] = "modelark"
    media_delivery: ClassVar[Literal["bytes", "url"]] = "url"
    # data: URLs (§3.1): images < 30 MB (§3.3), audio <= 15 MB (§3.4), read as decimal MB, the
    # smaller reading; video never ("URL or asset id only"). The whole body is still <= 64 MB.
    inline_media: ClassVar[Mapping[MediaKind, int | None]] = {"image": 30_000_000 - 1, "audio": 15_000_000}

    def auth_headers(self, secret: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret}"}  # API key only (§1)

    def uploads(self, request: GenerationRequest, ctx: SubmitContext) -> list[tuple[str, HttpCall]]:
        return []  # media travel inside the body (§3.1); asset:// needs BytePlus's asset library

    def parse_upload(self, response: httpx.Response) -> str:
        raise RuntimeError("the ModelArk adapter makes no uploads; parse_upload is unreachable")

    def build_submit(self, request: GenerationRequest, model_id: str, refs: Mapping[str, str], ctx: SubmitContext) -> HttpCall:
        # Encoded here, once, because the 64 MB body limit (§1) is checked on the real bytes:
        # the gateway bounds each inline medium, not their sum.
        body = msgspec.json.encode(build_body(request, model_id, ctx, self.inline_media))
        if len(body) > MAX_BODY_BYTES:
            raise ValueError(f"the create body is {len(body)} bytes; ModelArk takes at most {MAX_BODY_BYTES}: send media as URLs")
        # ctx.account: ModelArk has no accounts to pin (one API key, one project, §1).
        return HttpCall(method="POST", path=TASKS, content=body, headers={"Content-Type": "application/json"})

    def parse_submit(self, response: httpx.Response) -> UpstreamJob:
        return parse_created(response)

    def build_poll(self, upstream_id: str) -> HttpCall:
        return HttpCall(method="GET", path=task_path(upstream_id))

    def parse_poll(self, response: httpx.Response) -> UpstreamJob:
        return parse_task_response(response, "poll")

    def build_cancel(self, upstream_id: str) -> HttpCall | None:
        # §6.2: cancels a queued task; a running one is refused (parse_cancel raises). On a
        # finished task the same call deletes its record, which the gateway never asks for.
        return HttpCall(method="DELETE", path=task_path(upstream_id))

    def parse_cancel(self, response: httpx.Response) -> None:
        if not response.is_success:
            raise http_error(response, "cancel")

    def content_call(self, upstream_id: str, job: UpstreamJob) -> HttpCall | None:
        return None  # `content.video_url` is a signed storage URL, fetched without the API key (§5)

    def estimate_cost(self, model_id: str, resolution: str | None, seconds: float | str | None) -> Cost | None:
        return pricing.estimate_cost(model_id, resolution, seconds)

    # -- reconciliation -----------------------------------------------------

    def build_find(self, ctx: SubmitContext) -> HttpCall | None:
        """None: the list (§6.1) can't tell which task a lost submit created. A task object
        carries neither its `callback_url` nor any caller reference (§5), and the list
        filters only by status, task ids, model and tier (§8.3)."""
        return None

    def parse_find(self, response: httpx.Response, ctx: SubmitContext) -> UpstreamJob | None:
        return None

    def parse_callback(self, body: bytes) -> str | None:
        """A callback body is the task object (§7); only its id is used (the gateway re-fetches)."""
        try:
            task_id = task_decoder.decode(body).id
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        return task_id if task_id and TASK_ID.fullmatch(task_id) else None


__all__ = ["ModelArkAdapter", "build_body", "content_items", "media_url", "safety_identifier", "task_path"]
