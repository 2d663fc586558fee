"""The public, OpenAI-Videos-compatible request and video object (SPEC 3.1, 3.2).

A create request arrives as JSON or as the multipart form the `openai` SDK sends
(bracketed keys, every scalar a string). Both become the same `CreateVideoBody`;
`build_request()` then decides the mode and produces the strict
`providers.base.GenerationRequest` that adapters consume. Every error names the
field path and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta

from gateway.bounds import json_depth_exceeds, json_tokens_exceed
from gateway.errors import BadRequest, InvalidRequest
from providers.base import (
    FirstFrameInput,
    FirstLastFrameInput,
    GenerationRequest,
    Keyframe,
    KeyframesInput,
    MediaKind,
    ModeInput,
    ReferenceInput,
    TextInput,
    VideoResult,
)

Ratio = Literal["21:9", "16:9", "4:3", "1:1", "3:4", "9:16", "adaptive"]
Resolution = Literal["480p", "720p", "1080p", "4k"]
MAX_PROMPT = 5000

# Limits on the shape of what callers send, checked before anything recurses or converts.
# The deepest valid create body nests 4 (`keyframes[].image.url`), a comparison 5.
MAX_JSON_DEPTH = 16
# Strings, arrays and objects in a JSON body, counted as an upper bound (quotes and brackets
# inside strings count too). A valid create body made of brackets wherever text may go (10
# keyframe prompts, 10 URLs of 8192 characters, metadata, webhook) stays under 150,000.
# Past this no per-token work is done, however large the body.
MAX_JSON_TOKENS = 2**18
# The SDK's keys go 3 brackets deep (`keyframes[][image][url]`).
MAX_FORM_KEY_DEPTH = 8
# A full request (10 keyframes of 3 fields, 15 references, 16 metadata keys) is ~100 fields.
MAX_FORM_FIELDS = 256
# No duration needs more digits; int() of thousands of them raises (or is slow).
MAX_SECONDS_DIGITS = 9


class MediaObject(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """`{"url": …}`, `{"file_id": …}`, or OpenAI's `{"image_url": …}` (same as url)."""

    url: str | None = None
    file_id: str | None = None
    image_url: str | None = None


MediaValue = str | MediaObject


class KeyframeBody(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    image: MediaValue
    prompt: Annotated[str, Meta(max_length=MAX_PROMPT)] | None = None
    seconds: int | None = None


class ReferencesBody(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    images: list[MediaValue] = []
    videos: list[MediaValue] = []
    audios: list[MediaValue] = []


class RoutingBody(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    order: Annotated[list[Annotated[str, Meta(max_length=128)]], Meta(max_length=32)] | None = None
    allow_fallbacks: bool = True


MetadataMap = Annotated[
    dict[Annotated[str, Meta(min_length=1, max_length=64)], Annotated[str, Meta(max_length=512)]],
    Meta(max_length=16),
]


Name = Annotated[str, Meta(max_length=128)]  # a model or provider name


class CreateVideoBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    model: Name | None = None
    prompt: Annotated[str, Meta(max_length=MAX_PROMPT)] | None = None
    seconds: int | str | None = None
    duration: int | str | None = None
    size: Annotated[str, Meta(max_length=32)] | None = None
    ratio: Ratio | None = None
    resolution: Resolution | None = None
    input_reference: MediaValue | None = None
    first_frame: MediaValue | None = None
    last_frame: MediaValue | None = None
    keyframes: Annotated[list[KeyframeBody], Meta(min_length=2, max_length=10)] | None = None
    references: ReferencesBody | None = None
    seed: Annotated[int, Meta(ge=-1, le=4294967295)] | None = None
    generate_audio: bool | None = None
    watermark: bool | None = None
    return_last_frame: bool | None = None
    provider: Name | None = None
    metadata: MetadataMap | None = None
    webhook_url: Annotated[str, Meta(max_length=2048)] | None = None
    routing: RoutingBody | None = None


_decoder = msgspec.json.Decoder(CreateVideoBody)


def decode_json(raw: bytes) -> CreateVideoBody:
    check_json_shape(raw)
    try:
        return _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from exc
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"Request body is not valid JSON: {exc}", param=None) from exc
    except UnicodeDecodeError as exc:  # what msgspec raises for bad UTF-8 inside a string
        raise not_utf8() from exc


def check_json_shape(raw: bytes, *, what: str = "Request body", param: str | None = None) -> None:
    """Refuse JSON with too many values, or nested deeper than MAX_JSON_DEPTH, before a
    parser builds or recurses into it."""
    if json_tokens_exceed(raw, MAX_JSON_TOKENS):
        raise InvalidRequest(f"{what} holds more than {MAX_JSON_TOKENS} strings, arrays and objects", param=param)
    if json_depth_exceeds(raw, MAX_JSON_DEPTH):
        raise InvalidRequest(f"{what} nests arrays or objects more than {MAX_JSON_DEPTH} levels deep", param=param)


def not_utf8() -> BadRequest:
    return BadRequest("Request body is not valid JSON/UTF-8: it holds bytes that are not UTF-8")


def from_form(items: Iterable[tuple[str, Any]]) -> CreateVideoBody:
    """Build the body from multipart/url-encoded fields as the `openai` SDK sends them."""
    tree = unflatten_form(items)
    for name in _JSON_FORM_FIELDS:
        value = tree.get(name)
        if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
            tree[name] = _json_form_field(name, value)
    try:
        return msgspec.convert(tree, CreateVideoBody, strict=False)
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from exc


def _json_form_field(name: str, value: str) -> Any:
    raw = value.encode()  # unflatten_form refused text that is not UTF-8
    check_json_shape(raw, what=f"Form field {name}", param=name)
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"Form field {name} is not valid JSON: {exc}", param=name) from exc


_JSON_FORM_FIELDS = ("keyframes", "references", "metadata", "routing")
_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def unflatten_form(items: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """`a[b]=1`, `a[c][]=x`, `k[][image]=…` (qs "brackets" format) -> nested dicts and lists.

    A list of objects (`k[][f]`) comes in one of two orders. Interleaved
    (`image, prompt, image, …`, as curl -F sends it): a new element begins when a
    key repeats. Grouped (`image, image, prompt, prompt`, as the openai SDK sends
    it, one run per field): the k-th value of a field belongs to the k-th element,
    so in that order every element should carry the same fields. `keyframes`,
    `references`, `metadata` and `routing` may also be sent as one JSON form field.
    """
    parsed: list[tuple[list[str], Any, str]] = []
    for count, (key, value) in enumerate(items, 1):
        if count > MAX_FORM_FIELDS:
            raise InvalidRequest(f"The form has more than {MAX_FORM_FIELDS} fields", param=None)
        if not _utf8(key):
            raise InvalidRequest(f"Form field name {_shorten(_printable(key))!r} is not valid UTF-8 text", param=_printable(key))
        if isinstance(value, str) and not _utf8(value):
            raise InvalidRequest(f"Form field {_shorten(key)!r} is not valid UTF-8 text", param=key)
        match = _KEY.match(key)
        if not match:
            raise InvalidRequest(f"Form field name {_shorten(key)!r} is not a valid bracketed key", param=key)
        brackets = re.findall(r"\[([^\[\]]*)\]", match.group(2))
        if len(brackets) > MAX_FORM_KEY_DEPTH:
            # Name the key only as far as the limit: the rest may be thousands of brackets.
            shown = match.group(1) + "".join(f"[{b}]" for b in brackets[: MAX_FORM_KEY_DEPTH + 1])
            raise InvalidRequest(f"Form field name {_shorten(shown)!r}… nests more than {MAX_FORM_KEY_DEPTH} brackets deep", param=shown)
        parsed.append(([match.group(1), *brackets], value, key))
    grouped = _grouped_lists(parts for parts, _, _ in parsed)
    root: dict[str, Any] = {}
    for parts, value, key in parsed:
        _insert(root, parts, value, key, grouped, ())
    return root


def _grouped_lists(all_parts: Iterable[list[str]]) -> set[tuple[str, ...]]:
    """The lists of objects whose fields arrive grouped (each field in one run)."""
    sequences: dict[tuple[str, ...], list[str]] = {}
    for parts in all_parts:
        if "" in parts[:-1]:
            i = parts.index("")
            sequences.setdefault(tuple(parts[:i]), []).append(parts[i + 1])
    grouped = set()
    for path, fields in sequences.items():
        runs = [f for i, f in enumerate(fields) if i == 0 or fields[i - 1] != f]
        if len(runs) == len(set(runs)) and len(runs) < len(fields):
            grouped.add(path)
    return grouped


def _insert(node: Any, parts: list[str], value: Any, key: str, grouped: set[tuple[str, ...]], where: tuple[str, ...]) -> None:
    head, rest = parts[0], parts[1:]
    here = (*where, head)
    if not rest:
        if isinstance(node, dict):
            if head in node:
                raise InvalidRequest(f"Form field {key!r} is given more than once", param=key)
            node[head] = value
        return
    nxt = rest[0]
    if nxt == "":  # head is a list
        lst = node.setdefault(head, [])
        if not isinstance(lst, list):
            raise InvalidRequest(f"Form field {key!r} mixes a list with a single value", param=key)
        tail = rest[1:]
        if not tail:
            lst.append(value)
            return
        if here in grouped:  # the k-th value of a field goes to the k-th element
            element = next((e for e in lst if isinstance(e, dict) and not _occupied(e, tail)), None)
        else:  # interleaved: a repeated key starts a new element
            element = lst[-1] if lst and isinstance(lst[-1], dict) and not _occupied(lst[-1], tail) else None
        if element is None:
            element = {}
            lst.append(element)
        _insert(element, tail, value, key, grouped, ())
        return
    child = node.setdefault(head, {})
    if not isinstance(child, dict):
        raise InvalidRequest(f"Form field {key!r} mixes an object with a single value", param=key)
    _insert(child, rest, value, key, grouped, here)


def _utf8(text: str) -> bool:
    """Whether `text` can be written as UTF-8 (a part decoded with an odd charset can
    hold lone surrogates, which every JSON encoder downstream refuses)."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _printable(text: str) -> str:
    return text.encode(errors="replace").decode()


def _occupied(node: dict[str, Any], path: list[str]) -> bool:
    """Whether setting `path` in `node` would collide with what is already there."""
    for part in path[:-1]:
        if part not in node:
            return False
        if not isinstance(node[part], dict):
            return True
        node = node[part]
    return path[-1] in node


def _invalid(exc: msgspec.ValidationError) -> InvalidRequest:
    text = str(exc)
    path_match = re.search(r"at `(\$[^`]*)`", text) or re.search(r"in `(\$[^`]*)`", text)
    path = path_match.group(1) if path_match else None
    reason = text.split(" - at `")[0]
    reason = reason.replace("Object contains unknown field", "Unknown field")
    message = f"Invalid request at {path}: {reason}" if path else f"Invalid request: {reason}"
    return InvalidRequest(message, param=_param(path) if path else _unknown_field(text))


def _param(path: str) -> str:
    return path.removeprefix("$.").removeprefix("$")


def _unknown_field(text: str) -> str | None:
    m = re.search(r"unknown field `([^`]+)`", text)
    return m.group(1) if m else None


# ---------------------------------------------------------------------------
# Sizes: OpenAI's "WxH" <-> ratio + resolution
# ---------------------------------------------------------------------------

_SHORT_SIDE = {"480p": 480, "720p": 720, "1080p": 1080, "4k": 2160}
_RATIO_DIMS = {"21:9": (21, 9), "16:9": (16, 9), "4:3": (4, 3), "1:1": (1, 1), "3:4": (3, 4), "9:16": (9, 16)}


def _size_table() -> dict[str, tuple[str, str]]:
    table: dict[str, tuple[str, str]] = {}
    for res, short in _SHORT_SIDE.items():
        for ratio, (w, h) in _RATIO_DIMS.items():
            if w >= h:
                width, height = round(short * w / h), short
            else:
                width, height = short, round(short * h / w)
            width, height = width + width % 2, height + height % 2
            table[f"{width}x{height}"] = (ratio, res)
    table["854x480"] = ("16:9", "480p")  # the common rounding of 480p 16:9
    table["480x854"] = ("9:16", "480p")
    return table


SIZES = _size_table()


def size_of(ratio: str | None, resolution: str | None) -> str | None:
    """The OpenAI-style `WxH` for a ratio and resolution, when both are known and standard."""
    for size, pair in SIZES.items():
        if pair == (ratio, resolution):
            return size
    return None


# ---------------------------------------------------------------------------
# Mode inference: public body -> strict per-mode request
# ---------------------------------------------------------------------------

M = TypeVar("M")
MediaResolver = Callable[[MediaValue, MediaKind, str], M]


def build_request(body: CreateVideoBody, *, default_model: str, media: MediaResolver[M], end_user: str | None = None) -> GenerationRequest[M]:
    """Decide the mode from the inputs and build the strict request.

    `media(value, kind, field_path)` turns one media value into the request's media type
    (the caller's value with its path at create, a stored file's `MediaRef` after),
    raising `InvalidRequest` that names `field_path` when it can't.
    """
    seconds = _seconds(body)
    ratio, resolution = _ratio_resolution(body)
    return GenerationRequest(
        model=body.model or default_model,
        input=_mode_input(body, media),
        seconds=seconds,
        ratio=ratio,
        resolution=resolution,
        seed=body.seed,
        generate_audio=body.generate_audio,
        watermark=body.watermark,
        return_last_frame=body.return_last_frame,
        end_user=end_user,
    )


def _mode_input(body: CreateVideoBody, media: MediaResolver[M]) -> ModeInput[M]:
    first_field = "first_frame"
    first = body.first_frame
    if body.input_reference is not None:
        if first is not None:
            raise _conflict("input_reference", "first_frame", "both set the first frame; send one")
        first, first_field = body.input_reference, "input_reference"

    refs = body.references
    has_refs = refs is not None and bool(refs.images or refs.videos or refs.audios)
    families = [
        name
        for name, present in (
            (first_field, first is not None or body.last_frame is not None),
            ("keyframes", body.keyframes is not None),
            ("references", refs is not None),
        )
        if present
    ]
    if len(families) > 1:
        raise _conflict(families[0], families[1], "these input modes can't be combined")

    prompt = body.prompt or None  # the openai SDK requires a prompt argument; "" means none
    if body.keyframes is not None:
        if prompt is not None:
            raise InvalidRequest("prompt can't be combined with keyframes; give each frame its own keyframes[].prompt", param="prompt")
        return KeyframesInput(
            frames=tuple(
                Keyframe(
                    image=media(kf.image, "image", f"keyframes[{i}].image"),
                    prompt=kf.prompt,
                    seconds=_frame_seconds(kf.seconds, i),
                )
                for i, kf in enumerate(body.keyframes)
            )
        )
    if refs is not None:
        if not has_refs:
            raise InvalidRequest("references needs at least one image, video or audio", param="references")
        if not prompt:
            raise InvalidRequest("prompt is required with references (name them as @image1, @video1, @audio1)", param="prompt")
        _check_placeholders(prompt, refs)
        return ReferenceInput(
            prompt=prompt,
            images=tuple(media(v, "image", f"references.images[{i}]") for i, v in enumerate(refs.images)),
            videos=tuple(media(v, "video", f"references.videos[{i}]") for i, v in enumerate(refs.videos)),
            audios=tuple(media(v, "audio", f"references.audios[{i}]") for i, v in enumerate(refs.audios)),
        )
    if body.last_frame is not None:
        if first is None:
            raise InvalidRequest("last_frame needs first_frame (or input_reference) as well", param="last_frame")
        return FirstLastFrameInput(
            first_frame=media(first, "image", first_field),
            last_frame=media(body.last_frame, "image", "last_frame"),
            prompt=prompt,
        )
    if first is not None:
        return FirstFrameInput(first_frame=media(first, "image", first_field), prompt=prompt)
    if not prompt:
        raise InvalidRequest("prompt is required when no image, keyframes or references are given", param="prompt")
    return TextInput(prompt=prompt)


_PLACEHOLDER = re.compile(r"@(image|video|audio)(\d+)")
_MAX_PLACEHOLDER_DIGITS = 2  # references hold at most 9 images, 3 videos, 3 audios


def _check_placeholders(prompt: str, refs: ReferencesBody) -> None:
    counts = {"image": len(refs.images), "video": len(refs.videos), "audio": len(refs.audios)}
    for kind, number in _PLACEHOLDER.findall(prompt):
        digits = number.lstrip("0") or "0"
        if len(digits) > _MAX_PLACEHOLDER_DIGITS:  # never int() a hostile run of digits
            raise InvalidRequest(f"prompt names @{kind}{_shorten(number)} but references.{kind}s has {counts[kind]} item(s)", param="prompt")
        n = int(digits)
        if not 1 <= n <= counts[kind]:
            raise InvalidRequest(f"prompt names @{kind}{n} but references.{kind}s has {counts[kind]} item(s)", param="prompt")


def _frame_seconds(value: int | None, index: int) -> int | None:
    if value is not None and value < 1:
        raise InvalidRequest(f"Invalid request at $.keyframes[{index}].seconds: must be >= 1", param=f"keyframes[{index}].seconds")
    return value


def _seconds(body: CreateVideoBody) -> int | Literal["auto"] | None:
    values = [(name, v) for name, v in (("seconds", body.seconds), ("duration", body.duration)) if v is not None]
    if not values:
        return None
    parsed = [(name, _one_seconds(name, v)) for name, v in values]
    if len(parsed) == 2 and parsed[0][1] != parsed[1][1]:
        raise _conflict("seconds", "duration", "they disagree; send one")
    return parsed[0][1]


def _one_seconds(name: str, value: int | str) -> int | Literal["auto"]:
    if isinstance(value, str):
        text = value.strip()
        if text == "auto":
            return "auto"
        if not (text.isascii() and text.isdigit()):
            raise InvalidRequest(f'{name} must be a whole number of seconds or "auto", got {_shorten(value)!r}', param=name)
        digits = text.lstrip("0") or "0"
        if len(digits) > MAX_SECONDS_DIGITS:
            raise InvalidRequest(f"{name} must be a whole number of seconds; {len(digits)} digits is not a duration", param=name)
        value = int(digits)
    if value <= 0:
        raise InvalidRequest(f"{name} must be positive, got {value}", param=name)
    return value


def _shorten(text: str, limit: int = 40) -> str:
    """`text` as an error message may quote it: hostile values can be megabytes long."""
    return text if len(text) <= limit else text[:limit] + "…"


def _ratio_resolution(body: CreateVideoBody) -> tuple[str | None, str | None]:
    if body.size is None:
        return body.ratio, body.resolution
    pair = SIZES.get(body.size.strip().lower())
    if pair is None:
        raise InvalidRequest(
            f"size {body.size!r} is not a supported size; use WxH such as 1280x720 or 720x1280, or ratio + resolution",
            param="size",
        )
    ratio, resolution = pair
    if body.ratio is not None and body.ratio != ratio:
        raise _conflict("size", "ratio", f"size {body.size} means ratio {ratio}, not {body.ratio}")
    if body.resolution is not None and body.resolution != resolution:
        raise _conflict("size", "resolution", f"size {body.size} means {resolution}, not {body.resolution}")
    return ratio, resolution


def _conflict(a: str, b: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"{a} and {b} can't be used together: {why}", param=b)


# ---------------------------------------------------------------------------
# The public video object
# ---------------------------------------------------------------------------


class VideoError(msgspec.Struct, frozen=True):
    code: str
    message: str


class UpstreamInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str | None = None
    model: str | None = None
    status: str | None = None


class CostInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    amount: float | None = None
    unit: str | None = None
    usd_estimate: float | None = None


class AttemptInfo(msgspec.Struct, frozen=True, kw_only=True):
    provider: str
    upstream_id: str | None = None
    account: str | None = None
    started_at: int
    ended_at: int | None = None
    status: str  # submitting | submitted | completed | failed | cancelled | unknown
    error: VideoError | None = None
    error_class: str | None = None


class CandidateInfo(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    provider: str
    model_id: str | None = None
    skipped: str | None = None  # why this candidate was not used


class RoutingInfo(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    rule: str | None = None
    arm: str | None = None
    candidates: list[CandidateInfo] = []


class Video(msgspec.Struct, kw_only=True):
    """SPEC 3.2: OpenAI's video object plus vidgate's own fields."""

    id: str
    object: Literal["video"] = "video"
    model: str
    status: str
    progress: int
    created_at: int
    completed_at: int | None
    expires_at: int | None
    prompt: str | None
    seconds: str | None
    size: str | None
    error: VideoError | None
    remixed_from_video_id: str | None = None
    mode: str
    ratio: str | None
    resolution: str | None
    provider: str | None
    upstream: UpstreamInfo | None
    result: VideoResult | None
    cost: CostInfo | None
    attempts: list[AttemptInfo]
    routing: RoutingInfo | None
    metadata: dict[str, str]


class VideoList(msgspec.Struct, kw_only=True):
    object: Literal["list"] = "list"
    data: list[Video]
    first_id: str | None
    last_id: str | None
    has_more: bool


class VideoDeleted(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool = True
