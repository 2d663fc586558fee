"""Validation of `POST /v1/videos` bodies as PowerTokens documents them.

Sources: UPSTREAMS 2.2 (Seedance 2.x `media` body), 2.3 (Seedance 1.x body), 3.2/3.3 (the Ark
rules PowerTokens mirrors: mode exclusivity, reference limits, image and clip limits) and the
seed doc page `powertokens-seedance-2-0-post-videos.txt`.

`validate(body)` returns an `Accepted` summary or raises `Invalid` naming the parameter.
Unknown fields are rejected (a guess: the real upstream may ignore them, but an adapter that
sends a field the model does not take should find out here, not in production).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, Literal, get_args

import msgspec

from providers.media_probe import probe
from providers.powertokens.sim.errors import ErrorKind

Size = Literal["480p", "720p", "1080p"]
Ratio = Literal["16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive"]
Role = Literal["text", "first_frame", "last_frame", "reference_image", "reference_video", "reference_audio"]
Seed = Annotated[int, msgspec.Meta(ge=-1, le=4294967295)]


class Invalid(Exception):
    """A 400 answer: which parameter, why, and whether it was missing or wrong."""

    def __init__(self, param: str | None, message: str, kind: ErrorKind = "invalid_parameter") -> None:
        super().__init__(message)
        self.param = param
        self.message = message
        self.kind: ErrorKind = kind


class ModelRule(msgspec.Struct, frozen=True, kw_only=True):
    family: Literal["2.x", "1.x"]
    durations: tuple[int, int]  # inclusive range of explicit seconds
    auto_duration: bool  # "-1" (model picks) accepted
    sizes: tuple[Size, ...]
    default_size: Size = "720p"
    extras_1_5: bool = False  # 1.x: generate_audio / draft / return_last_frame accepted


MODELS: dict[str, ModelRule] = {
    "dreamina-seedance-2-0-260128": ModelRule(family="2.x", durations=(4, 15), auto_duration=True, sizes=("480p", "720p", "1080p")),
    "dreamina-seedance-2-0-fast-260128": ModelRule(family="2.x", durations=(4, 15), auto_duration=True, sizes=("480p", "720p")),
    "dreamina-seedance-2-5-260628": ModelRule(family="2.x", durations=(4, 30), auto_duration=True, sizes=("480p", "720p", "1080p")),
    "seedance-1-5-pro-251215": ModelRule(family="1.x", durations=(4, 12), auto_duration=True, sizes=("480p", "720p", "1080p"), extras_1_5=True),
    "seedance-1-0-pro-250528": ModelRule(family="1.x", durations=(2, 12), auto_duration=False, sizes=("480p", "720p", "1080p"), default_size="1080p"),
    "seedance-1-0-pro-fast-251015": ModelRule(family="1.x", durations=(2, 12), auto_duration=False, sizes=("480p", "720p", "1080p"), default_size="1080p"),
}

AUTO_DURATION_PICK = 5  # what "-1" resolves to (the real model chooses; the simulator is deterministic)

# Output pixel sizes per tier and ratio (UPSTREAMS 3.4 gives 720p [I]; 480p/1080p are the Ark table [I]).
PIXELS: dict[str, dict[str, tuple[int, int]]] = {
    "480p": {
        "16:9": (864, 480),
        "4:3": (736, 544),
        "1:1": (640, 640),
        "3:4": (544, 736),
        "9:16": (480, 864),
        "21:9": (960, 416),
    },
    "720p": {
        "16:9": (1280, 720),
        "4:3": (1112, 834),
        "1:1": (960, 960),
        "3:4": (834, 1112),
        "9:16": (720, 1280),
        "21:9": (1470, 630),
    },
    "1080p": {
        "16:9": (1920, 1080),
        "4:3": (1664, 1248),
        "1:1": (1440, 1440),
        "3:4": (1248, 1664),
        "9:16": (1080, 1920),
        "21:9": (2176, 928),
    },
}


class MediaItem(msgspec.Struct, forbid_unknown_fields=True):
    type: Role
    text: str | None = None
    url: str | None = None


class Body2x(msgspec.Struct, forbid_unknown_fields=True):
    model: str
    media: Annotated[list[MediaItem], msgspec.Meta(min_length=1)]
    seconds: str = "5"
    size: Size | None = None
    ratio: Ratio | None = None
    seed: Seed = -1
    watermark: bool = False
    generate_audio: bool = True
    return_last_frame: bool = False
    safety_identifier: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class Body1x(msgspec.Struct, forbid_unknown_fields=True):
    model: str
    prompt: str | None = None
    image: str | None = None
    seconds: str = "5"
    size: Size | None = None
    ratio: Ratio | None = None
    seed: Seed = -1
    camera_fixed: bool = False
    watermark: bool = False
    generate_audio: bool | None = None
    draft: bool | None = None
    return_last_frame: bool | None = None


class Accepted(msgspec.Struct, frozen=True, kw_only=True):
    """What the simulator keeps of a valid request."""

    model: str
    mode: Literal["text", "first_frame", "first_last_frame", "reference"]
    duration: int  # resolved seconds
    size: Size
    ratio: str  # as requested / defaulted (may be "adaptive")
    width: int
    height: int
    return_last_frame: bool


def validate(body: Any) -> Accepted:
    if not isinstance(body, dict):
        raise Invalid(None, "The request body must be a JSON object.")
    model = body.get("model")
    if model is None:
        raise Invalid("model", "The required parameter `model` is missing.", "missing_parameter")
    if not isinstance(model, str) or model not in MODELS:
        raise Invalid("model", f"The parameter `model` specified in the request is not valid: {model!r}. Valid values: {', '.join(MODELS)}.")
    rule = MODELS[model]
    if rule.family == "2.x":
        return _validate_2x(_convert(body, Body2x, model), rule)
    return _validate_1x(_convert(body, Body1x, model), rule)


_CHOICES: dict[str, tuple[str, ...]] = {"size": get_args(Size), "ratio": get_args(Ratio), "type": get_args(Role)}
_AT = re.compile(r"^(?P<detail>.*?)(?: - at `\$(?P<path>[^`]*)`)?$")
_FIELD = re.compile(r"(unknown|required) field `([^`]+)`")


def _convert(body: dict, kind: type, model: str) -> Any:
    try:
        return msgspec.convert(body, kind)
    except msgspec.ValidationError as exc:
        m = _AT.match(str(exc))
        detail, path = (m["detail"], (m["path"] or "").lstrip(".")) if m else (str(exc), "")
        field = _FIELD.search(detail)
        if field:
            param = f"{path}.{field[2]}" if path else field[2]
            if field[1] == "required":
                raise Invalid(param, f"The required parameter `{param}` is missing.", "missing_parameter") from None
            raise Invalid(param, f"The parameter `{param}` is not supported by model {model}.") from None
        hint = ""
        choices = _CHOICES.get(path.rsplit(".", 1)[-1])
        if choices and detail.startswith("Invalid enum value"):
            hint = f" Valid values: {', '.join(choices)}."
        elif path == "seconds":
            hint = ' `seconds` is a string, e.g. "5".'
        message = f"The parameter `{path}` specified in the request is not valid: {detail}.{hint}"
        raise Invalid(path or None, message) from None


def _seconds(seconds: str, rule: ModelRule, model: str) -> int:
    lo, hi = rule.durations
    if seconds == "-1" and rule.auto_duration:
        return AUTO_DURATION_PICK
    if re.fullmatch(r"[1-9][0-9]{0,2}", seconds) and lo <= int(seconds) <= hi:
        return int(seconds)
    auto = ' or "-1"' if rule.auto_duration else ""
    raise Invalid(
        "seconds", f'The parameter `seconds` specified in the request is not valid: {seconds!r}. Model {model} accepts "{lo}".."{hi}"{auto} (a string).'
    )


def _size(size: Size | None, rule: ModelRule, model: str) -> Size:
    size = size or rule.default_size
    if size not in rule.sizes:
        raise Invalid(
            "size",
            f"The parameter `size` specified in the request is not valid: {size!r} is not supported by model {model}. Valid values: {', '.join(rule.sizes)}.",
        )
    return size


def _accept(model: str, mode: Any, duration: int, size: Size, ratio: str, last_frame: bool) -> Accepted:
    width, height = PIXELS[size]["16:9" if ratio == "adaptive" else ratio]
    return Accepted(model=model, mode=mode, duration=duration, size=size, ratio=ratio, width=width, height=height, return_last_frame=last_frame)


# ---------------------------------------------------------------------------
# Seedance 2.x: the `media` array
# ---------------------------------------------------------------------------

_KIND_OF: dict[str, str] = {
    "first_frame": "image",
    "last_frame": "image",
    "reference_image": "image",
    "reference_video": "video",
    "reference_audio": "audio",
}
_REF_LIMITS = {"reference_image": 9, "reference_video": 3, "reference_audio": 3}


def _validate_2x(body: Body2x, rule: ModelRule) -> Accepted:
    duration = _seconds(body.seconds, rule, body.model)
    size = _size(body.size, rule, body.model)
    counts = {role: 0 for role in _KIND_OF}
    texts = 0
    clip_ms = {"video": 0, "audio": 0}
    for i, item in enumerate(body.media):
        where = f"media[{i}]"
        if item.type == "text":
            texts += 1
            if item.url is not None:
                raise Invalid(f"{where}.url", f"`{where}` is a text item and takes no `url`.")
            if not item.text or not item.text.strip():
                raise Invalid(f"{where}.text", f"The required parameter `{where}.text` is missing or empty.", "missing_parameter")
            continue
        if item.text is not None:
            raise Invalid(f"{where}.text", f"`{where}` is a {item.type} item and takes no `text`.")
        if not item.url:
            raise Invalid(f"{where}.url", f"The required parameter `{where}.url` is missing.", "missing_parameter")
        counts[item.type] += 1
        kind = _KIND_OF[item.type]
        ms = check_url(item.url, kind, f"{where}.url")
        if ms is not None and kind in clip_ms:
            clip_ms[kind] += ms
    if texts > 1:
        raise Invalid("media", "At most one `text` item is allowed in `media`.")
    first, last = counts["first_frame"], counts["last_frame"]
    refs = {role: counts[role] for role in _REF_LIMITS}
    if (first or last) and any(refs.values()):
        raise Invalid(
            "media",
            "first_frame / last_frame and reference_* items are mutually exclusive: use "
            "first frame, first + last frame, or multimodal reference mode, not a mix.",
        )
    if first > 1 or last > 1:
        raise Invalid("media", "At most one first_frame and one last_frame item are allowed.")
    if last and not first:
        raise Invalid("media", "A last_frame item needs a first_frame item.")
    for role, limit in _REF_LIMITS.items():
        if refs[role] > limit:
            raise Invalid("media", f"Too many {role} items: {refs[role]} (at most {limit}).")
    if refs["reference_audio"] and not (refs["reference_image"] or refs["reference_video"]):
        raise Invalid("media", "reference_audio cannot be the only reference media: add a reference_image or reference_video.")
    for kind in ("video", "audio"):
        if clip_ms[kind] > 15_000:
            raise Invalid("media", f"The reference {kind} clips add up to {clip_ms[kind] / 1000:g} s (at most 15 s).")
    if not texts and not first and not any(refs.values()):
        raise Invalid("media", "`media` needs a text item or at least one image / video.")
    mode = "first_last_frame" if last else "first_frame" if first else "reference" if any(refs.values()) else "text"
    ratio = body.ratio or ("adaptive" if first else "16:9")
    return _accept(body.model, mode, duration, size, ratio, body.return_last_frame)


# ---------------------------------------------------------------------------
# Seedance 1.x: `prompt` + optional first-frame `image`
# ---------------------------------------------------------------------------


def _validate_1x(body: Body1x, rule: ModelRule) -> Accepted:
    if not rule.extras_1_5:
        for name in ("generate_audio", "draft", "return_last_frame"):
            if getattr(body, name) is not None:
                raise Invalid(name, f"The parameter `{name}` is not supported by model {body.model} (seedance-1-5-pro only).")
    duration = _seconds(body.seconds, rule, body.model)
    if body.draft:
        if body.size not in (None, "480p"):
            raise Invalid("size", "A draft (`draft: true`) is 480p only.")
        if body.return_last_frame:
            raise Invalid("return_last_frame", "A draft (`draft: true`) cannot return the last frame.")
        size: Size = "480p"
    else:
        size = _size(body.size, rule, body.model)
    if body.image is not None:
        if not body.image:
            raise Invalid("image", "The parameter `image` is empty.")
        check_url(body.image, "image", "image", raw_base64=True)
    elif not body.prompt or not body.prompt.strip():
        raise Invalid("prompt", "The required parameter `prompt` is missing (text-to-video needs a prompt).", "missing_parameter")
    ratio = body.ratio or ("adaptive" if body.image else "16:9")
    mode = "first_frame" if body.image else "text"
    return _accept(body.model, mode, duration, size, ratio, bool(body.return_last_frame))


# ---------------------------------------------------------------------------
# Media references
# ---------------------------------------------------------------------------

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)$", re.DOTALL)


def check_url(url: str, kind: str, param: str, *, raw_base64: bool = False) -> int | None:
    """Check one media reference; returns the clip length in ms when a data: URL reveals it.

    Accepted forms: `https://…` and `asset://…` (not fetched), `data:<mime>;base64,…` (decoded and
    checked against the Ark limits of UPSTREAMS 3.3), and for the 1.x `image` field bare Base64.
    """
    if url.startswith("https://") and len(url) > len("https://"):
        return None
    if url.startswith("asset://") and len(url) > len("asset://"):
        return None
    m = _DATA_URL.match(url)
    if m:
        mime, payload = m["mime"], m["data"]
        if not mime.startswith(f"{kind}/"):
            raise Invalid(param, f"`{param}` declares {mime}, but this item needs {kind} media.")
    elif raw_base64 and not url.startswith(("http:", "data:", "asset:")):
        payload = url
    else:
        raise Invalid(param, f"`{param}` must be an https:// URL, a data:<mime>;base64, URL or an asset:// id.")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(param, f"`{param}` is not valid Base64.") from None
    return _check_media(data, kind, param)


def _check_media(data: bytes, kind: str, param: str) -> int | None:
    found = probe(data)
    if found.content_type is not None and not found.content_type.startswith(f"{kind}/"):
        raise Invalid(param, f"`{param}` holds {found.content_type}, but this item needs {kind} media.")
    if kind == "image":
        if found.content_type is None:
            raise Invalid(param, f"`{param}` is not a supported image format.")
        w, h = found.width, found.height
        if w and h:
            if not (300 <= w <= 6000 and 300 <= h <= 6000):
                raise Invalid(param, f"`{param}` is {w}x{h}; each side must be 300-6000 px.")
            if not 0.4 <= w / h <= 2.5:
                raise Invalid(param, f"`{param}` has aspect ratio {w / h:.2f}; it must be 0.4-2.5.")
        return None
    ms = found.duration_ms
    if ms is not None and not 2000 <= ms <= 15000:
        raise Invalid(param, f"`{param}` lasts {ms / 1000:g} s; each {kind} clip must last 2-15 s.")
    return ms
