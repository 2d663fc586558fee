"""Validation of a create body as MODELARK.md §2, §3 and §9 describe it (checklist §13.2).

Body fields are validated strictly (§2): a wrong type or value is `400 InvalidParameter`
with `param`; a missing `model`/`content` is `400 MissingParameter`; an unknown model is
`404 InvalidEndpoint.NotFound`. Unknown top-level fields are ignored, except `tools` (§2).
Media are not fetched: only counts, roles, declared types and `data:` URLs are checked
(§3.5 "trust the URL reachability").
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from providers.media_probe import probe
from providers.modelark.sim.catalog import MODELS, RATIOS, ModelSpec, SimMode
from providers.modelark.sim.errors import ArkError, invalid, missing

MAX_TEXT = 10_000  # no documented maximum (§3.2 [UNKNOWN]); the contract's simulator rule
IMAGE_MAX_BYTES = 30 * 1024 * 1024  # < 30 MB (§3.3)
AUDIO_MAX_BYTES = 15 * 1024 * 1024  # <= 15 MB (§3.4)
SEED_MAX = 4_294_967_295  # [CONFLICT] rule of §2
IMAGE_FORMATS = frozenset({"jpeg", "png", "webp", "bmp", "tiff", "gif"})  # §3.3
HEIC_FORMATS = frozenset({"heic", "heif"})  # 1.5 pro and later (§3.3)
AUDIO_FORMATS = frozenset({"wav", "mp3"})  # §3.4
_DATA_URL = re.compile(r"data:(?P<family>[^/;,]+)/(?P<format>[^;,]+);base64,(?P<payload>.*)", re.DOTALL)
_FRAME_ROLES = (None, "first_frame", "last_frame")

Mode = SimMode | Literal["draft_task"]


class Accepted(msgspec.Struct, kw_only=True):
    """A valid create body with every default applied (ratio/duration/seed not yet resolved)."""

    model: str
    mode: Mode
    resolution: str
    ratio: str
    duration: int  # -1: the model chooses
    frames: int | None
    seed: int  # -1: random
    generate_audio: bool | None  # None: the model has no audio switch
    return_last_frame: bool
    watermark: bool
    camera_fixed: bool | None
    service_tier: str
    execution_expires_after: int
    priority: int
    draft: bool | None  # None: the model has no draft switch
    callback_url: str | None
    safety_identifier: str | None
    video_input: bool
    draft_task_id: str | None = None


def validate(body: Any, endpoints: Mapping[str, str]) -> Accepted:
    if not isinstance(body, dict):
        raise invalid("", "The request body must be a JSON object.")
    if "model" not in body:
        raise missing("model")
    if "content" not in body:
        raise missing("content")
    model = _model(body["model"], endpoints)
    spec = MODELS[model]
    if "tools" in body:  # §2: never on BytePlus
        raise invalid("tools", "The parameter tools is not supported.")
    mode, video_input, draft_task_id = _content(body["content"], spec, model)

    tier = _choice(body, "service_tier", ("default", "flex"), "default")
    draft = _bool(body, "draft")
    priority = _int(body, "priority", 0, 9)
    _unless(draft is not None and not spec.draft, "draft", f"draft is not supported by model {model}.")
    _unless(tier == "flex" and not spec.flex, "service_tier", f"service_tier flex is not supported by model {model}.")
    _unless(tier == "flex" and bool(draft), "service_tier", "service_tier flex is not supported with draft.")
    _unless(priority is not None and not spec.priority, "priority", f"priority is not supported by model {model}.")
    _unless(bool(priority) and tier == "flex", "priority", "priority is not supported with service_tier flex.")

    resolution = _choice(body, "resolution", tuple(sorted(spec.resolutions)), "480p" if draft else spec.default_resolution)
    _unless(bool(draft) and resolution != "480p", "resolution", "Draft mode supports 480p only.")
    _unless(resolution == "1080p" and mode in spec.no_1080p_in, "resolution", f"1080p is not supported in {mode} mode.")

    ratio = _choice(body, "ratio", (*RATIOS, "adaptive"), _default_ratio(spec, mode))
    _unless(
        ratio == "adaptive" and mode not in spec.adaptive_in and mode != "draft_task", "ratio", f"adaptive is not supported in {mode} mode by model {model}."
    )
    _unless(ratio != "adaptive" and mode in spec.adaptive_only_in, "ratio", f"{mode} mode requires ratio adaptive on model {model}.")

    frames = _int(body, "frames", 29, 289)
    _unless(frames is not None and not spec.frames, "frames", f"frames is not supported by model {model}.")
    _unless(frames is not None and (frames - 25) % 4 != 0, "frames", "frames must be 25 + 4n.")
    duration = _int(body, "duration", -1, spec.max_seconds)
    if duration is not None and duration != -1 and duration < spec.min_seconds:
        raise invalid("duration", f"duration must be within [{spec.min_seconds}, {spec.max_seconds}] for model {model}.")
    _unless(duration == -1 and not spec.auto_duration, "duration", f"duration -1 is not supported by model {model}.")
    _unless(duration is not None and -1 < duration < 1, "duration", "duration must be positive or -1.")

    generate_audio = _bool(body, "generate_audio")
    _unless(generate_audio is not None and not spec.audio, "generate_audio", f"generate_audio is not supported by model {model}.")
    camera_fixed = _bool(body, "camera_fixed")
    _unless(camera_fixed is not None and not spec.camera_fixed, "camera_fixed", f"camera_fixed is not supported by model {model}.")
    _unless(bool(camera_fixed) and mode == "reference", "camera_fixed", "camera_fixed is not supported in reference mode.")
    return_last_frame = _bool(body, "return_last_frame")
    _unless(bool(return_last_frame) and bool(draft), "return_last_frame", "return_last_frame is not supported with draft.")
    expires = _int(body, "execution_expires_after", 3600, 259200)
    seed = _int(body, "seed", -1, SEED_MAX)
    for name in ("omni_reference_task_type", "output_format"):
        _unless(name in body and model != "dreamina-seedance-2-5-260628", name, f"{name} is not supported by model {model}.")
    _choice(body, "omni_reference_task_type", ("auto", "reference", "edit", "extend"), "auto")
    _choice(body, "output_format", ("mp4", "mov"), "mp4")

    return Accepted(
        model=model,
        mode=mode,
        resolution=resolution,
        ratio=ratio,
        duration=duration if duration is not None else (-1 if model == "dreamina-seedance-2-5-260628" else 5),
        frames=frames,
        seed=-1 if seed is None else seed,
        generate_audio=(True if generate_audio is None else generate_audio) if spec.audio else None,
        return_last_frame=bool(return_last_frame),
        watermark=bool(_bool(body, "watermark")),
        camera_fixed=bool(camera_fixed) if spec.camera_fixed else None,
        service_tier=tier,
        execution_expires_after=172800 if expires is None else expires,
        priority=priority or 0,
        draft=bool(draft) if spec.draft else None,
        callback_url=_callback_url(body),
        safety_identifier=_safety_identifier(body),
        video_input=video_input,
        draft_task_id=draft_task_id,
    )


# -- fields ------------------------------------------------------------------


def _unless(bad: bool, param: str, message: str) -> None:
    if bad:
        raise invalid(param, message)


def _model(value: Any, endpoints: Mapping[str, str]) -> str:
    if not isinstance(value, str) or not value:
        raise invalid("model", "The parameter model must be a non-empty string.")
    model = endpoints.get(value, value) if value.startswith("ep-") else value
    if model not in MODELS:
        raise ArkError("InvalidEndpoint.NotFound", f"The model or endpoint {value} does not exist or you do not have access to it.", param="model")
    return model


def _int(body: dict[str, Any], name: str, low: int, high: int) -> int | None:
    if name not in body or body[name] is None:
        return None
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int):  # "5" is not 5 (§2 [UNKNOWN] rule)
        raise invalid(name, f"The parameter {name} must be an integer.")
    if not low <= value <= high:
        raise invalid(name, f"The parameter {name} must be within [{low}, {high}].")
    return value


def _bool(body: dict[str, Any], name: str) -> bool | None:
    if name not in body or body[name] is None:
        return None
    if not isinstance(body[name], bool):
        raise invalid(name, f"The parameter {name} must be a boolean.")
    return body[name]


def _choice(body: dict[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    if name not in body or body[name] is None:
        return default
    value = body[name]
    if not isinstance(value, str) or value not in allowed:
        raise invalid(name, f"The parameter {name} specified in the request is not valid: {value!r}. Valid values: {', '.join(allowed)}.")
    return value


def _callback_url(body: dict[str, Any]) -> str | None:
    url = body.get("callback_url")
    if url is None:
        return None
    if not isinstance(url, str) or not re.match(r"https?://[^/\s]+", url):
        raise invalid("callback_url", "The parameter callback_url must be an http(s) URL.")
    return url


def _safety_identifier(body: dict[str, Any]) -> str | None:
    value = body.get("safety_identifier")
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise invalid("safety_identifier", "The parameter safety_identifier must be a string of at most 64 characters.")
    return value


def _default_ratio(spec: ModelSpec, mode: Mode) -> str:
    """§9.1 defaults: `adaptive` wherever it is allowed, else 16:9 (1.0 T2V / reference)."""
    return "adaptive" if mode in spec.adaptive_in or mode == "draft_task" else "16:9"


# -- content -------------------------------------------------------------------


def _content(content: Any, spec: ModelSpec, model: str) -> tuple[Mode, bool, str | None]:
    """The mode the content array asks for, whether a video goes in, and a draft task id."""
    if not isinstance(content, list) or not content:
        raise invalid("content", "The parameter content must be a non-empty array.")
    texts, frames, refs, videos, audios, drafts = 0, [], 0, 0, 0, []
    for i, item in enumerate(content):
        where = f"content[{i}]"
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "text":
            text = item.get("text")
            if not isinstance(text, str) or len(text) > MAX_TEXT:
                raise invalid(where, f"The text must be a string of at most {MAX_TEXT} characters.")
            texts += 1
        elif kind == "image_url":
            _media(item, "image", where, spec)
            role = item.get("role")
            if role == "reference_image":
                refs += 1
            elif role in _FRAME_ROLES:
                frames.append(role)
            else:
                raise invalid(f"{where}.role", f"The role {role!r} is not valid for image_url.")
        elif kind in ("video_url", "audio_url"):
            word = kind.partition("_")[0]
            _media(item, word, where, spec)
            if item.get("role") != f"reference_{word}":
                raise invalid(f"{where}.role", f"A {kind} item needs role reference_{word}.")
            videos += kind == "video_url"
            audios += kind == "audio_url"
        elif kind == "draft_task":
            draft_id = (item.get("draft_task") or {}).get("id") if isinstance(item.get("draft_task"), dict) else None
            if not isinstance(draft_id, str) or not draft_id:
                raise invalid(f"{where}.draft_task.id", "The draft task id must be a string.")
            drafts.append(draft_id)
        else:
            raise invalid(f"{where}.type", f"The content type {kind!r} is not valid.")
    if texts > 1:  # every example has one (§3.2 [UNKNOWN] rule)
        raise invalid("content", "At most one text item is allowed.")
    if drafts:
        if len(content) != 1 or not spec.draft:
            raise invalid("content", f"A draft_task item must be the only content item, on a model with draft support (not {model}).")
        return "draft_task", False, drafts[0]
    mode = _mode(texts, frames, refs, videos, audios)
    if mode not in spec.modes:
        raise invalid("content", f"Model {model} does not support {mode} input.")
    if mode == "reference":
        _check_refs(spec, model, refs, videos, audios)
    return mode, videos > 0, None


def _mode(texts: int, frames: list[str | None], refs: int, videos: int, audios: int) -> SimMode:
    if frames and (refs or videos or audios):
        raise invalid("content", "First/last frame images and reference media cannot be mixed.")
    if frames:
        if len(frames) > 2:
            raise invalid("content", "At most two frame images (first_frame, last_frame) are allowed.")
        if len(frames) == 1:
            if frames[0] == "last_frame":
                raise invalid("content", "A last_frame needs a first_frame.")
            return "first_frame"
        if frames != ["first_frame", "last_frame"]:
            raise invalid("content", "Two images need the roles first_frame then last_frame.")
        return "first_last_frame"
    if refs or videos or audios:
        return "reference"
    if texts:
        return "text"
    raise invalid("content", "The content needs a text prompt or media.")


def _check_refs(spec: ModelSpec, model: str, images: int, videos: int, audios: int) -> None:
    limits = spec.refs
    assert limits is not None  # every model with reference mode has limits
    for param, count, most in (
        ("reference_image", images, limits.images),
        ("reference_video", videos, limits.videos),
        ("reference_audio", audios, limits.audios),
    ):
        if count > most:
            raise invalid("content", f"Model {model} takes at most {most} {param} items, got {count}.")
    if images + videos + audios > limits.items:
        raise invalid("content", f"Model {model} takes at most {limits.items} reference items.")
    if audios and not (images or videos) and not limits.audio_alone:
        raise invalid("content", "Audio can't be the only reference: add a reference image or video.")


def _media(item: dict[str, Any], kind: str, where: str, spec: ModelSpec) -> None:
    holder = item.get(f"{kind}_url")
    url = holder.get("url") if isinstance(holder, dict) else None
    if not isinstance(url, str) or not url:
        raise invalid(f"{where}.{kind}_url.url", f"The {kind}_url.url must be a non-empty string.")
    if re.match(r"https?://[^/\s]+", url) or re.match(r"asset://\S+", url):
        return
    if not url.startswith("data:"):
        raise invalid(f"{where}.{kind}_url.url", f"The {kind} URL must be http(s)://, asset:// or a data: URL.")
    if kind == "video":  # §3.1: URL or asset id only
        raise invalid(f"{where}.video_url.url", "Video does not support Base64 input; use a URL.")
    _data_url(url, kind, f"{where}.{kind}_url.url", spec)


def _data_url(url: str, kind: str, param: str, spec: ModelSpec) -> None:
    match = _DATA_URL.fullmatch(url)
    if match is None or match["family"] != kind:
        raise invalid(param, f"The data URL must look like data:{kind}/<format>;base64,<data>.")
    fmt = match["format"]
    if fmt != fmt.lower():
        raise invalid(param, "The data URL must use a lowercase format.")
    allowed = AUDIO_FORMATS if kind == "audio" else IMAGE_FORMATS | (HEIC_FORMATS if spec.heic else frozenset())
    if fmt not in allowed:
        raise invalid(param, f"The {kind} format {fmt} is not supported.")
    try:
        data = base64.b64decode(match["payload"], validate=True)
    except (binascii.Error, ValueError):
        raise invalid(param, "The data URL is not valid Base64.") from None
    if len(data) > (AUDIO_MAX_BYTES if kind == "audio" else IMAGE_MAX_BYTES - 1):
        raise invalid(param, f"The {kind} is too large.")
    if kind == "image":
        found = probe(data)
        if found.width and found.height:
            w, h = found.width, found.height
            if not (300 <= w <= 6000 and 300 <= h <= 6000 and 0.4 <= w / h <= 2.5):  # §3.3, closed bounds
                raise invalid(param, f"The image is {w}x{h}; each side must be 300-6000 px and the aspect 0.4-2.5.")
