"""The validation of useapi.net Dreamina v1 `POST /videos`, as its docs state it.

Pure: request fields in, a `VideoPlan` (and, per account region, a `Resolved`
request) or a `UseapiError` out. Written from `upstreams/UPSTREAMS.md` section 1
and the `post-dreamina-videos` doc page alone; it never looks at the adapter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from providers.useapi.sim.models import (
    DEFAULT_DURATION,
    DEFAULT_MODEL,
    FRAME_MAX,
    MAX_PROMPT,
    MAX_REPLY,
    MODELS,
    OMNI_AUDIO_TOTAL_MS,
    OMNI_MAX,
    OMNI_MODELS,
    OMNI_TOTAL_MAX,
    OMNI_VIDEO_TOTAL_MS,
    RATIOS,
    RESOLUTION_CREDIT_FACTOR,
    RESOLUTIONS,
    AssetKind,
    AssetRef,
    Mode,
    bad,
    closest_ratio,
    models_for_region,
    output_size,
    parse_ref,
)

# ---------------------------------------------------------------------------
# Fields: JSON values or multipart strings, coerced to one shape
# ---------------------------------------------------------------------------

_STRING_FIELDS = frozenset({"account", "prompt", "model", "ratio", "resolution", "firstFrameRef", "endFrameRef", "replyUrl", "replyRef"})
_INT_FIELDS = frozenset({"duration", "maxJobs"})
_FRAME = re.compile(r"^frame_(\d+)_(imageRef|prompt|duration)$")
_OMNI = re.compile(r"^omni_(\d+)_(image|video|audio)Ref$")
_PLACEHOLDER = re.compile(r"@(image|video|audio)(\d+)")
_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise bad(f"Parameter {name} ({str(value).lower()}) must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.match(value):
        return int(value)
    raise bad(f"Parameter {name} ({value}) must be an integer")


def normalize(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Known fields only, numbers coerced from strings, empty values dropped."""
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if value is None or value == "":
            continue
        frame = _FRAME.match(name)
        if name in _INT_FIELDS or (frame and frame[2] == "duration"):
            out[name] = _as_int(name, value)
        elif name in _STRING_FIELDS or frame or _OMNI.match(name):
            if not isinstance(value, str):
                raise bad(f"Parameter {name} must be a string")
            out[name] = value
        else:
            raise bad(f"Unknown parameter {name}")
    return out


# ---------------------------------------------------------------------------
# The plan: everything that does not depend on which account runs the job
# ---------------------------------------------------------------------------


class VideoPlan(msgspec.Struct, kw_only=True):
    fields: dict[str, Any]  # normalized fields as received
    mode: Mode
    model: str | None
    account: str | None  # pinned by `account` or by the refs' account
    prompt: str | None
    ratio: str | None  # as given
    detected_ratio: str | None  # from the first image ref (frame modes)
    duration: int | None  # as given
    resolution: str | None  # as given
    frame_durations: list[int]
    max_jobs: int | None
    reply_url: str | None
    has_audio: bool


class Resolved(msgspec.Struct, kw_only=True):
    model: str
    duration: int
    resolution: str
    ratio: str
    width: int
    height: int
    forecast_cost: int
    request: dict[str, Any]  # the record's `request` object


def _join(values: Iterable[object]) -> str:
    return ", ".join(str(v) for v in values)


def _ref(fields: Mapping[str, Any], name: str, kind: AssetKind) -> AssetRef:
    text = fields[name]
    ref = parse_ref(text)
    if ref is None:
        raise bad(f"Parameter {name} ({text}) is not a valid assetRef")
    if ref.kind != kind:
        raise bad(f"Parameter {name} ({text}) must be an assetRef of type {kind}, got {ref.kind}")
    return ref


def plan_video(raw: Mapping[str, Any], known_models: Sequence[str]) -> VideoPlan:
    """Validate everything account-independent; `known_models` feeds the model error text."""
    f = normalize(raw)
    model = f.get("model")
    if model is not None and model not in known_models:
        raise bad(f"Parameter model ({model}) valid values: {_join(known_models)}")
    ratio = f.get("ratio")
    if ratio is not None and ratio not in RATIOS:
        raise bad(f"Parameter ratio ({ratio}) valid values: {_join(RATIOS)}")
    resolution = f.get("resolution")
    if resolution is not None and resolution not in RESOLUTIONS:
        raise bad(f"Parameter resolution ({resolution}) valid values: {_join(RESOLUTIONS)}")
    max_jobs = f.get("maxJobs")
    if max_jobs is not None and not 1 <= max_jobs <= 50:
        raise bad(f"Parameter maxJobs ({max_jobs}) valid values: 1-50")
    prompt = f.get("prompt")
    _check_length("prompt", prompt)
    reply_url = f.get("replyUrl")
    if reply_url is not None:
        if len(reply_url) > MAX_REPLY:
            raise bad("replyUrl is too long")
        if not reply_url.startswith(("http://", "https://")):
            raise bad(f"Parameter replyUrl ({reply_url}) must be an http(s) URL")
    if len(f.get("replyRef", "")) > MAX_REPLY:
        raise bad("replyRef is too long")

    refs: list[AssetRef] = []
    frames: dict[int, dict[str, str]] = {}
    omni: dict[str, dict[int, str]] = {"image": {}, "video": {}, "audio": {}}
    for name in f:
        if m := _FRAME.match(name):
            n = int(m[1])
            if not 1 <= n <= FRAME_MAX:
                raise bad(f"Parameter {name}: frame number must be 1-{FRAME_MAX}")
            frames.setdefault(n, {})[m[2]] = name
        elif m := _OMNI.match(name):
            n, kind = int(m[1]), m[2]
            if not 1 <= n <= OMNI_MAX[kind]:
                raise bad(f"Parameter {name}: maximum {OMNI_MAX[kind]} {kind} references (omni_1..{OMNI_MAX[kind]})")
            omni[kind][n] = name

    first, end = "firstFrameRef" in f, "endFrameRef" in f
    frame_images = sorted(n for n, parts in frames.items() if "imageRef" in parts)
    has_omni = any(omni.values())
    if has_omni and (first or end or frames):
        raise bad("omni_N_*Ref cannot be combined with firstFrameRef, endFrameRef or frame_N_imageRef")
    if frames and (first or end):
        raise bad("firstFrameRef/endFrameRef cannot be combined with multi_frame mode (frame_N_imageRef)")
    for n, parts in sorted(frames.items()):
        if "imageRef" not in parts:
            raise bad(f"Parameter {next(iter(parts.values()))} requires frame_{n}_imageRef")
    if end and not first:
        raise bad("Parameter endFrameRef requires firstFrameRef")

    mode: Mode
    detected: str | None = None
    frame_durations: list[int] = []
    if has_omni:
        mode = "unified_edit"
        refs = _plan_omni(f, omni, prompt)
    elif frames:
        mode = "multi_frame"
        refs, frame_durations = _plan_frames(f, frames, frame_images, prompt)
    elif first:
        mode = "end_frame" if end else "first_frame"
        refs = [_ref(f, "firstFrameRef", "image")]
        if end:
            refs.append(_ref(f, "endFrameRef", "image"))
            a, b = (closest_ratio(r.width, r.height) for r in refs)
            if a != b:
                raise bad(f"firstFrameRef and endFrameRef must have the same aspect ratio ({a} vs {b})")
    else:
        mode = "prompt"
        if prompt is None:
            raise bad("Parameter prompt is required")
    if mode in ("first_frame", "end_frame", "multi_frame"):
        if ratio is not None:
            raise bad("Parameter ratio cannot be used with image refs (the image aspect ratio is used)")
        detected = closest_ratio(refs[0].width, refs[0].height)

    ref_accounts = sorted({r.account for r in refs})
    if len(ref_accounts) > 1:
        raise bad(f"All asset refs must belong to the same account ({_join(ref_accounts)})")
    account = f.get("account")
    if ref_accounts and account is not None and account != ref_accounts[0]:
        raise bad(f"Parameter account ({account}) does not match the account of the asset refs ({ref_accounts[0]})")
    return VideoPlan(
        fields=f,
        mode=mode,
        model=model,
        account=account or (ref_accounts[0] if ref_accounts else None),
        prompt=prompt,
        ratio=ratio,
        detected_ratio=detected,
        duration=f.get("duration"),
        resolution=resolution,
        frame_durations=frame_durations,
        max_jobs=max_jobs,
        reply_url=reply_url,
        has_audio=bool(omni["audio"]),
    )


def _check_length(name: str, text: str | None) -> None:
    if text is not None and len(text) > MAX_PROMPT:
        raise bad(f"Parameter {name} is too long ({len(text)} characters). Maximum: {MAX_PROMPT}")


def _plan_frames(f: Mapping[str, Any], frames: dict[int, dict[str, str]], images: list[int], prompt: str | None) -> tuple[list[AssetRef], list[int]]:
    if len(images) < 2:
        raise bad("multi_frame mode requires at least 2 frames (frame_1_imageRef and frame_2_imageRef)")
    for expected, n in enumerate(images, start=1):
        if n != expected:
            raise bad(f"frame_N_imageRef must be contiguous from frame_1: frame_{expected}_imageRef is missing")
    if prompt is not None:
        raise bad("Parameter prompt cannot be used with multi_frame mode (use frame_N_prompt instead)")
    refs, durations = [], []
    for n in images:
        refs.append(_ref(f, f"frame_{n}_imageRef", "image"))
        _check_length(f"frame_{n}_prompt", f.get(f"frame_{n}_prompt"))
        seconds = f.get(f"frame_{n}_duration", DEFAULT_DURATION)
        if not 1 <= seconds <= 6:
            raise bad(f"Parameter frame_{n}_duration ({seconds}) valid values: 1-6")
        durations.append(seconds)
    ratios = [closest_ratio(r.width, r.height) for r in refs]
    if len(set(ratios)) > 1:
        raise bad(f"All frame images must have the same aspect ratio ({_join(ratios)})")
    return refs, durations


def _plan_omni(f: Mapping[str, Any], omni: dict[str, dict[int, str]], prompt: str | None) -> list[AssetRef]:
    total = sum(len(v) for v in omni.values())
    if total > OMNI_TOTAL_MAX:
        raise bad(f"Maximum {OMNI_TOTAL_MAX} total materials (omni_N_imageRef, omni_N_videoRef, omni_N_audioRef), got {total}")
    refs: list[AssetRef] = []
    per_kind_ms = {"video": 0, "audio": 0}
    for kind, named in omni.items():
        for n in sorted(named):
            ref = _ref(f, named[n], kind)  # type: ignore[arg-type]
            refs.append(ref)
            if kind in per_kind_ms:
                per_kind_ms[kind] += ref.duration_ms or 0
    if per_kind_ms["video"] > OMNI_VIDEO_TOTAL_MS:
        raise bad(f"Total video duration ({per_kind_ms['video'] / 1000:g}s) exceeds maximum of {OMNI_VIDEO_TOTAL_MS / 1000:g}s")
    if per_kind_ms["audio"] > OMNI_AUDIO_TOTAL_MS:
        raise bad(f"Total audio duration ({per_kind_ms['audio'] / 1000:g}s) exceeds maximum of {OMNI_AUDIO_TOTAL_MS / 1000:g}s")
    if prompt is None:
        raise bad("Parameter prompt is required for Omni Reference (use @imageN, @videoN, @audioN placeholders)")
    named_in_prompt = {(m[1], int(m[2])) for m in _PLACEHOLDER.finditer(prompt)}
    provided = {(kind, n) for kind, named in omni.items() for n in named}
    if unknown := sorted(named_in_prompt - provided):
        kind, n = unknown[0]
        raise bad(f"Prompt references @{kind}{n} but omni_{n}_{kind}Ref is not provided")
    if unused := sorted(provided - named_in_prompt):
        kind, n = unused[0]
        raise bad(f"omni_{n}_{kind}Ref is provided but @{kind}{n} is not referenced in the prompt")
    return refs


# ---------------------------------------------------------------------------
# Per account region: model, duration, resolution
# ---------------------------------------------------------------------------


def resolve(plan: VideoPlan, region: str) -> Resolved:
    """The request as an account in `region` would run it, or the error it would give."""
    model = plan.model or DEFAULT_MODEL[region]
    spec = MODELS[model]
    if region not in spec.resolutions:
        raise bad(f"Parameter model ({model}) valid values: {_join(models_for_region(region))}")
    if plan.mode not in spec.modes:
        if plan.mode == "unified_edit":
            raise bad(f"Omni Reference (omni_N_*Ref) requires model {' or '.join(OMNI_MODELS)}")
        raise bad(f"Model {model} does not support {plan.mode} mode. Supported input modes: {_join(spec.modes)}")

    if plan.mode == "multi_frame":
        duration = sum(plan.frame_durations[:-1])
        if duration not in spec.durations:
            raise bad(f"Total duration of non-last frames ({duration}) must equal a valid duration for model {model}: {_join(spec.durations)}")
        if plan.duration is not None and plan.duration != duration:
            raise bad(f"Parameter duration ({plan.duration}) must equal the total duration of non-last frames ({duration})")
    else:
        default = DEFAULT_DURATION if DEFAULT_DURATION in spec.durations else spec.durations[0]
        duration = plan.duration if plan.duration is not None else default
        if duration not in spec.durations:
            raise bad(f"Parameter duration ({duration}) valid values: {_join(spec.durations)}")

    resolution = plan.resolution or spec.default_resolution
    offered = spec.resolutions[region]
    if resolution not in offered:
        raise bad(f"Parameter resolution ({resolution}) valid values for model {model} on {region} accounts: {_join(offered)}")

    ratio = plan.ratio or plan.detected_ratio or "16:9"
    width, height = output_size(ratio, resolution)
    request: dict[str, Any] = {}
    if plan.prompt is not None:
        request["prompt"] = plan.prompt
    request |= {"model": model, "ratio": ratio, "duration": duration, "inputMode": plan.mode}
    if plan.resolution is not None:
        request["resolution"] = plan.resolution
    skip = {"account", "maxJobs", "prompt", "model", "ratio", "duration", "resolution"}
    request |= {k: v for k, v in plan.fields.items() if k not in skip}
    return Resolved(
        model=model,
        duration=duration,
        resolution=resolution,
        ratio=ratio,
        width=width,
        height=height,
        forecast_cost=spec.credits_per_second * duration * RESOLUTION_CREDIT_FACTOR[resolution],
        request=request,
    )
