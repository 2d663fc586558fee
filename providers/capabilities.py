"""Capability facts as data, and the one check that reads them.

Each adapter's `models.py` describes its upstream's models with `ModelCaps`
values taken from the upstream docs. `check()` compares a normalized request
with one model's facts and returns every reason it can't be served (empty = OK).
Nothing here clamps, drops or renames: a mismatch is a reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

import msgspec

from providers.base import (
    FirstLastFrameInput,
    GenerationRequest,
    KeyframesInput,
    MediaFacts,
    Mode,
    ReferenceInput,
    media_items,
)

F = TypeVar("F", bound=MediaFacts)  # the request's media, in whichever form: facts are all check() reads

RATIOS = ("21:9", "16:9", "4:3", "1:1", "3:4", "9:16", "adaptive")
RESOLUTIONS = ("480p", "720p", "1080p", "4k")


class Reason(msgspec.Struct, frozen=True):
    """Why a provider can't serve a request: the public field path and a sentence."""

    field: str
    message: str


class ReferenceLimits(msgspec.Struct, frozen=True, kw_only=True):
    max_images: int = 9
    max_videos: int = 3
    max_audios: int = 3
    max_total: int = 12
    max_video_seconds_total: float | None = None
    max_audio_seconds_total: float | None = None
    audio_needs_visual: bool = False  # audio may not be the only reference
    placeholders_required: bool = False  # prompt must name every @imageN/@videoN/@audioN sent


class KeyframeLimits(msgspec.Struct, frozen=True, kw_only=True):
    min_frames: int = 2
    max_frames: int = 10
    min_frame_seconds: int = 1
    max_frame_seconds: int = 6
    default_frame_seconds: int = 5
    # the non-last frames' durations must add up to one of the model's durations
    non_last_sum_is_duration: bool = True
    prompt_allowed: bool = False  # a top-level prompt beside keyframes


class ModelCaps(msgspec.Struct, frozen=True, kw_only=True):
    """What one upstream model accepts. Every field comes from the upstream's docs."""

    model_id: str
    modes: frozenset[Mode]
    durations: frozenset[int]
    resolutions: frozenset[str]
    # a factory, not a value: the API document would list a frozenset default in hash order,
    # different in every process
    ratios: frozenset[str] = msgspec.field(default_factory=lambda: frozenset(RATIOS[:-1]))
    auto_duration: bool = False
    # resolution -> regions that offer it; a resolution absent here is offered wherever the model is
    resolution_regions: dict[str, frozenset[str]] = msgspec.field(default_factory=dict)
    regions: frozenset[str] = frozenset()  # empty = the upstream has no regions
    ratio_with_images: bool = True  # False: ratio may not be sent when an image input is
    first_last_same_aspect: bool = False
    generate_audio: bool = False
    return_last_frame: bool = False
    seed: bool = True
    watermark: bool = True
    max_prompt_chars: int = 5000
    image_min_side: int | None = None  # pixels, each side of every input image
    image_max_side: int | None = None
    reference: ReferenceLimits | None = None
    keyframes: KeyframeLimits | None = None


ASPECT_TOLERANCE = 0.01


def check(request: GenerationRequest[F], caps: ModelCaps, *, regions: Iterable[str] | None = None) -> list[Reason]:
    """Every reason `caps` can't serve `request`; an empty list means it can.

    `regions` are the regions the provider's accounts are in (useapi); `None`
    means the provider has no notion of region.
    """
    reasons: list[Reason] = []
    add = lambda field, message: reasons.append(Reason(field, message))  # noqa: E731
    mode = request.mode
    model = caps.model_id

    if mode not in caps.modes:
        add("mode", f"model {model} does not support {mode} input (supports {_list(caps.modes)})")

    if caps.regions and regions is not None:
        usable = caps.regions & frozenset(regions)
        if not usable:
            add("model", f"model {model} needs an account in region {_list(caps.regions)}")

    seconds = request.seconds
    if seconds == "auto":
        if not caps.auto_duration:
            add("seconds", f"model {model} can't choose its own duration; use one of {_list(caps.durations)}")
    elif seconds is not None and seconds not in caps.durations:
        add("seconds", f"{seconds} is not a duration of model {model} (valid: {_list(caps.durations)})")

    if request.resolution is not None:
        if request.resolution not in caps.resolutions:
            add("resolution", f"{request.resolution} is not offered by model {model} (valid: {_list(caps.resolutions)})")
        elif regions is not None and request.resolution in caps.resolution_regions and not caps.resolution_regions[request.resolution] & frozenset(regions):
            need = _list(caps.resolution_regions[request.resolution])
            add("resolution", f"{request.resolution} on model {model} needs an account in region {need}")

    if request.ratio is not None:
        if request.ratio not in caps.ratios:
            add("ratio", f"{request.ratio} is not a ratio of model {model} (valid: {_list(caps.ratios)})")
        elif not caps.ratio_with_images and any(kind == "image" for _, kind, _ in media_items(request)):
            add("ratio", f"ratio can't be set with image inputs on model {model}: the image's own ratio is used")

    if request.generate_audio and not caps.generate_audio:
        add("generate_audio", f"model {model} can't generate audio")
    if request.return_last_frame and not caps.return_last_frame:
        add("return_last_frame", f"model {model} can't return the last frame")
    if request.seed is not None and not caps.seed:
        add("seed", f"model {model} does not take a seed")
    if request.watermark is not None and not caps.watermark:
        add("watermark", f"model {model} does not take a watermark switch")

    prompt = request.prompt
    if prompt is not None and len(prompt) > caps.max_prompt_chars:
        add("prompt", f"prompt is {len(prompt)} characters; model {model} takes at most {caps.max_prompt_chars}")

    inp = request.input
    reasons.extend(_check_image_sides(request, caps))
    if isinstance(inp, FirstLastFrameInput) and caps.first_last_same_aspect:
        a, b = inp.first_frame.aspect, inp.last_frame.aspect
        if a is not None and b is not None and abs(a - b) > ASPECT_TOLERANCE * max(a, b):
            add("last_frame", f"first and last frame must have the same aspect ratio on model {model}")
    if isinstance(inp, KeyframesInput) and caps.keyframes is not None:
        reasons.extend(_check_keyframes(inp, caps, caps.keyframes, request.seconds))
    if isinstance(inp, ReferenceInput) and caps.reference is not None:
        reasons.extend(_check_references(inp, model, caps.reference))
    return reasons


def _check_keyframes(inp: KeyframesInput[F], caps: ModelCaps, limits: KeyframeLimits, seconds: object) -> list[Reason]:
    reasons: list[Reason] = []
    n = len(inp.frames)
    if not limits.min_frames <= n <= limits.max_frames:
        reasons.append(Reason("keyframes", f"{n} keyframes given; model {caps.model_id} takes {limits.min_frames}-{limits.max_frames}"))
    for i, frame in enumerate(inp.frames):
        if frame.seconds is not None and not limits.min_frame_seconds <= frame.seconds <= limits.max_frame_seconds:
            reasons.append(
                Reason(
                    f"keyframes[{i}].seconds",
                    f"{frame.seconds} is outside {limits.min_frame_seconds}-{limits.max_frame_seconds} seconds per frame",
                )
            )
    aspects = [f.image.aspect for f in inp.frames]
    known = [a for a in aspects if a is not None]
    if known and any(abs(a - known[0]) > ASPECT_TOLERANCE * max(a, known[0]) for a in known):
        reasons.append(Reason("keyframes", "all keyframe images must have the same aspect ratio"))
    if limits.non_last_sum_is_duration and n >= 2:
        total = sum(f.seconds if f.seconds is not None else limits.default_frame_seconds for f in inp.frames[:-1])
        if isinstance(seconds, int) and seconds != total:
            reasons.append(Reason("seconds", f"seconds is {seconds} but the non-last keyframes last {total} s; leave it out or make them agree"))
        if total not in caps.durations:
            reasons.append(
                Reason(
                    "keyframes",
                    f"the non-last keyframes last {total} s in all; that must be a duration of model {caps.model_id} ({_list(caps.durations)})",
                )
            )
    return reasons


def _check_references(inp: ReferenceInput[F], model: str, limits: ReferenceLimits) -> list[Reason]:
    reasons: list[Reason] = []
    for field, items, most in (
        ("references.images", inp.images, limits.max_images),
        ("references.videos", inp.videos, limits.max_videos),
        ("references.audios", inp.audios, limits.max_audios),
    ):
        if len(items) > most:
            reasons.append(Reason(field, f"{len(items)} given; model {model} takes at most {most}"))
    if inp.total > limits.max_total:
        reasons.append(Reason("references", f"{inp.total} references in all; model {model} takes at most {limits.max_total}"))
    if inp.total == 0:
        reasons.append(Reason("references", "reference mode needs at least one image, video or audio"))
    if limits.audio_needs_visual and inp.audios and not (inp.images or inp.videos):
        reasons.append(Reason("references.audios", "audio can't be the only reference; add an image or a video"))
    for field, items, cap in (
        ("references.videos", inp.videos, limits.max_video_seconds_total),
        ("references.audios", inp.audios, limits.max_audio_seconds_total),
    ):
        total = _total_seconds(items)
        if cap is not None and total is not None and total > cap:
            reasons.append(Reason(field, f"{total:g} s in all; model {model} takes at most {cap:g} s"))
    if limits.placeholders_required:
        missing = [
            f"@{word}{i}"
            for word, items in (("image", inp.images), ("video", inp.videos), ("audio", inp.audios))
            for i in range(1, len(items) + 1)
            if f"@{word}{i}" not in inp.prompt
        ]
        if missing:
            reasons.append(Reason("prompt", f"prompt must name every reference it is given; missing {', '.join(missing)}"))
    return reasons


def _check_image_sides(request: GenerationRequest[F], caps: ModelCaps) -> list[Reason]:
    if caps.image_min_side is None and caps.image_max_side is None:
        return []
    low, high = caps.image_min_side or 1, caps.image_max_side or 1 << 30
    reasons = []
    for field, kind, media in media_items(request):
        if kind != "image":
            continue
        if media.width is None or media.height is None:
            continue
        if not (low <= media.width <= high and low <= media.height <= high):
            reasons.append(Reason(field, f"image is {media.width}x{media.height}; model {caps.model_id} needs each side within {low}-{high} px"))
    return reasons


def _total_seconds(items: tuple[MediaFacts, ...]) -> float | None:
    if not items or any(m.duration_ms is None for m in items):
        return None
    return sum(m.duration_ms for m in items) / 1000  # type: ignore[misc]


def _list(values: Iterable[object]) -> str:
    return ", ".join(str(v) for v in sorted(values, key=_sort_key))


def _sort_key(v: object) -> tuple[int, str]:
    s = str(v)
    digits = "".join(ch for ch in s if ch.isdigit())
    return (int(digits) if digits and s[0].isdigit() else 0, s)
