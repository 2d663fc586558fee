"""PowerTokens `/v1/videos` adapter: pure translation, no I/O, no env, no globals.

Request side (UPSTREAMS 2.2 / 2.3): the Seedance 2.0 family takes a `media` array of typed
items with the prompt as the FIRST item (as PowerTokens' official client sends it); 1.x
takes flat `prompt` + `image`. `seconds` is always a string. Response side: `responses.py`
(task objects, both status vocabularies) and `errors.py` (error envelopes).

Media (UPSTREAMS 2.1): a `Media` with a URL is sent as that URL; bytes are sent inline as a
`data:<mime>;base64,...` URL, which the official client sends and the schema accepts. The
Asset Library flow (`asset://<id>` after an upload to a *different* host, then polling a
job for the id) is only inferred from a third-party CLI ([I], UPSTREAMS 2.1) and is not
implemented: `uploads()` is empty.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import ClassVar, Literal

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
from providers.powertokens import models
from providers.powertokens.errors import error_from_response
from providers.powertokens.responses import STATUS, parse_task
from providers.powertokens.wire import TASK_ID, CreateVideoRequest, CreateVideoRequestV1, MediaItem

__all__ = ["STATUS", "PowerTokensAdapter", "build_body", "media_url", "safe_task_id", "safety_identifier"]

_SAFETY_ID_MAX = 64  # seed doc: `safety_identifier` "length not exceeding 64 characters"


def safe_task_id(upstream_id: str) -> str:
    """`upstream_id` if it is a well-formed PowerTokens id; ValueError before any path is built."""
    if not isinstance(upstream_id, str) or not TASK_ID.fullmatch(upstream_id):
        raise ValueError(f"not a PowerTokens task id: {upstream_id!r}")
    return upstream_id


def safety_identifier(end_user: str) -> str:
    """The end user as PowerTokens' `safety_identifier` (<= 64 chars).

    Short values pass unchanged. A longer one is replaced by its SHA-256 hex digest
    (exactly 64 chars), never truncated: truncation would merge distinct users who share
    a 64-char prefix (e.g. `tenant/…/user-1` and `…/user-2`), defeating the per-user
    compliance tracking the field exists for, and could send a cut-off personal id
    upstream. The digest is stable, so the same user always gets the same identifier.
    """
    if len(end_user) <= _SAFETY_ID_MAX:
        return end_user
    return hashlib.sha256(end_user.encode()).hexdigest()


def media_url(media: Media) -> str:
    """A `Media` as the URL string PowerTokens takes: its URL, or its bytes as a data URL."""
    if media.url is not None:
        return media.url
    assert media.data is not None  # Media guarantees exactly one of url / data
    content_type = media.content_type or sniff_type(media.data) or "application/octet-stream"
    return f"data:{content_type};base64,{base64.b64encode(media.data).decode('ascii')}"


def _item(role: str, media: Media, kind: MediaKind) -> MediaItem:
    if media.kind != kind:
        raise ValueError(f"{role} must be {kind} media, got {media.kind}")
    return MediaItem(type=role, url=media_url(media))


def _seconds(request: GenerationRequest) -> str | None:
    if request.seconds is None:
        return None  # upstream default ("5") applies
    if request.seconds == "auto":
        return "-1"  # seed doc: "-1" = smart selection
    return str(int(request.seconds))


def _media_items(request: GenerationRequest) -> list[MediaItem]:
    inp = request.input
    items: list[MediaItem] = []
    if request.prompt:  # the prompt first, as the official client sends it (UPSTREAMS 2.2)
        items.append(MediaItem(type="text", text=request.prompt))
    if isinstance(inp, TextInput):
        pass
    elif isinstance(inp, FirstFrameInput):
        items.append(_item("first_frame", inp.first_frame, "image"))
    elif isinstance(inp, FirstLastFrameInput):
        items.append(_item("first_frame", inp.first_frame, "image"))
        items.append(_item("last_frame", inp.last_frame, "image"))
    elif isinstance(inp, ReferenceInput):
        # images, then videos, then audios; order within a kind kept so that "@image1" is
        # the first reference_image sent.
        items.extend(_item("reference_image", m, "image") for m in inp.images)
        items.extend(_item("reference_video", m, "video") for m in inp.videos)
        items.extend(_item("reference_audio", m, "audio") for m in inp.audios)
    else:
        raise ValueError(f"PowerTokens has no {request.mode} input")
    if not items:
        raise ValueError("PowerTokens needs a prompt or at least one medium (`media` minItems 1)")
    return items


def _v1_switch(name: str, value: bool | None, documented: bool) -> bool | None:
    """A 1.5-pro-only switch (UPSTREAMS 2.3) for a 1.x model. On 1.0 models an explicit
    `false` is what the model does anyway, so it is left out rather than sending a field
    their body does not document; `true` can't be honoured (the capability check refuses
    it before dispatch)."""
    if documented or value is None:
        return value
    if value:
        raise ValueError(f"{name} is documented for seedance 1.5 pro only")
    return None


def build_body(request: GenerationRequest, model_id: str) -> CreateVideoRequest | CreateVideoRequestV1:
    """The create body for `model_id`, with only the fields the caller set."""
    if models.body_style(model_id) == "prompt":
        inp = request.input
        if isinstance(inp, TextInput):
            image = None
        elif isinstance(inp, FirstFrameInput):
            image = media_url(inp.first_frame)
        else:  # UPSTREAMS 2.3: 1.x documents text-to-video and first frame only
            raise ValueError(f"PowerTokens 1.x model {model_id} has no {request.mode} input")
        # `safety_identifier` is a 2.0-series field (seed doc); the 1.x body has none, so
        # an end user is not sent to 1.x models (it is compliance metadata, not an input).
        caps = models.MODELS.get(model_id)
        return CreateVideoRequestV1(
            model=model_id,
            prompt=request.prompt or None,
            image=image,
            seconds=_seconds(request),
            size=request.resolution,
            ratio=request.ratio,
            seed=request.seed,
            watermark=request.watermark,
            generate_audio=_v1_switch("generate_audio", request.generate_audio, caps is None or caps.generate_audio),
            return_last_frame=_v1_switch("return_last_frame", request.return_last_frame, caps is None or caps.return_last_frame),
        )
    return CreateVideoRequest(
        model=model_id,
        media=_media_items(request),
        seconds=_seconds(request),
        size=request.resolution,
        ratio=request.ratio,
        seed=request.seed,
        watermark=request.watermark,
        generate_audio=request.generate_audio,
        return_last_frame=request.return_last_frame,
        safety_identifier=None if request.end_user is None else safety_identifier(request.end_user),
    )


class PowerTokensAdapter(AdapterDefaults):
    """Translation for PowerTokens' OpenAI-style `/v1/videos` surface."""

    provider_type: ClassVar[str] = "powertokens"
    media_delivery: ClassVar[Literal["bytes", "url"]] = "url"
    # every kind may travel inline as a data: URL, as the official client sends it (module docstring)
    inline_media: ClassVar[Mapping[MediaKind, int | None]] = {"image": None, "video": None, "audio": None}

    def auth_headers(self, secret: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret}"}  # API reference + official client (UPSTREAMS 2.1)

    def uploads(self, request: GenerationRequest, ctx: SubmitContext) -> list[tuple[str, HttpCall]]:
        return []  # media travel inside the body as URLs / data URLs (module docstring)

    def parse_upload(self, response: httpx.Response) -> str:
        raise RuntimeError("PowerTokens adapter makes no uploads; parse_upload is unreachable")

    def build_submit(self, request: GenerationRequest, model_id: str, refs: Mapping[str, str], ctx: SubmitContext) -> HttpCall:
        # ctx.callback_url is not sent: `callback_url` is documented on the native Ark route
        # only, its support on `/v1/videos` is unknown (UPSTREAMS 5.11). PowerTokens has no
        # accounts to pin (ctx.account).
        body = build_body(request, model_id)
        return HttpCall(method="POST", path="/v1/videos", json=msgspec.to_builtins(body))

    def parse_submit(self, response: httpx.Response) -> UpstreamJob:
        return parse_task(response, submit=True)

    def build_poll(self, upstream_id: str) -> HttpCall:
        return HttpCall(method="GET", path=f"/v1/videos/{safe_task_id(upstream_id)}")

    def parse_poll(self, response: httpx.Response) -> UpstreamJob:
        return parse_task(response, submit=False)

    def build_cancel(self, upstream_id: str) -> HttpCall | None:
        # Ark cancels a queued task with DELETE (UPSTREAMS 3.1); on `/v1/videos` it is [I] (5.13).
        return HttpCall(method="DELETE", path=f"/v1/videos/{safe_task_id(upstream_id)}")

    def parse_cancel(self, response: httpx.Response) -> None:
        if not response.is_success:
            raise error_from_response(response)

    def content_call(self, upstream_id: str, job: UpstreamJob) -> HttpCall | None:
        # The authenticated fallback download (UPSTREAMS 2.6), valid whatever the job says.
        return HttpCall(method="GET", path=f"/v1/videos/{safe_task_id(upstream_id)}/content")

    def estimate_cost(self, model_id: str, resolution: str | None, seconds: float | str | None) -> Cost | None:
        return models.estimate_cost(model_id, resolution, seconds)
