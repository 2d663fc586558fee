"""`POST /assets/{account}` for the useapi.net Dreamina simulator: raw bytes in, an assetRef out.

The limits are the doc's (UPSTREAMS 1.3): images <= 10 MB; videos <= 50 MB, 2-15.4 s,
200-2160 px; audio <= 15 MB, 2-15 s. Width, height and duration come from
`media_probe`; a duration the probe can't read is not checked.
"""

from __future__ import annotations

import random
import string
from typing import Any

from providers.media_probe import probe
from providers.useapi.sim.models import AssetKind, AssetRef, UseapiError, bad

CONTENT_TYPES: dict[AssetKind, tuple[str, ...]] = {
    "image": ("image/jpeg", "image/png", "image/webp"),
    "video": ("video/mp4", "video/quicktime", "video/webm"),
    "audio": ("audio/mpeg", "audio/mp3", "audio/wav", "audio/mp4", "audio/aac"),
}
_BY_MAJOR: dict[str, tuple[str, ...]] = {str(kind): types for kind, types in CONTENT_TYPES.items()}
_ALL_TYPES = tuple(t for types in CONTENT_TYPES.values() for t in types)
MB = 1024 * 1024
MAX_BYTES: dict[AssetKind, int] = {"image": 10 * MB, "video": 50 * MB, "audio": 15 * MB}
DURATION_MS: dict[AssetKind, tuple[int, int]] = {"video": (2000, 15_400), "audio": (2000, 15_000)}
VIDEO_PX = (200, 2160)


def kind_of(content_type: str | None) -> tuple[AssetKind, str]:
    """The asset kind a `Content-Type` header names, or the doc's 400."""
    mime = (content_type or "").split(";")[0].strip().lower()
    for kind, allowed in CONTENT_TYPES.items():
        if mime in allowed:
            return kind, mime
    valid = _BY_MAJOR.get(mime.split("/")[0], _ALL_TYPES)
    raise bad(f"Content-Type ({mime or 'none'}) not supported. Valid values: {', '.join(valid)}")


def _native_id(kind: AssetKind, rng: random.Random) -> str:
    if kind == "image":
        return "tos-alisg-i-wopfjsm1ax-sg/" + "".join(rng.choices("0123456789abcdef", k=32))
    return "v10762g50000" + "".join(rng.choices(string.ascii_lowercase + string.digits, k=20))


def upload(account: str, content_type: str | None, body: bytes, rng: random.Random) -> AssetRef:
    """Check one upload the way the doc describes; the ref it earns."""
    kind, _mime = kind_of(content_type)
    label = kind.capitalize()
    if not body:
        raise bad(f"{label} is empty")
    if len(body) > MAX_BYTES[kind]:
        raise UseapiError(400, f"{label} is too large ({len(body)} bytes). Maximum: {MAX_BYTES[kind] // MB} MB")
    facts = probe(body)
    width, height, duration = facts.width or 0, facts.height or 0, facts.duration_ms
    if kind == "image" and not (width and height):
        raise bad("Unable to read image dimensions")
    if kind in DURATION_MS and duration is not None:
        low, high = DURATION_MS[kind]
        if not low <= duration <= high:
            raise bad(f"{label} duration ({duration / 1000:g}s) must be between {low / 1000:g} and {high / 1000:g} seconds")
    if kind == "video" and width and height and not VIDEO_PX[0] <= max(width, height) <= VIDEO_PX[1]:
        raise bad(f"Video dimensions ({width}x{height}) must be between {VIDEO_PX[0]} and {VIDEO_PX[1]} px")
    return AssetRef(
        account=account,
        kind=kind,
        width=width,
        height=height,
        size=len(body),
        duration_ms=None if kind == "image" else (duration or 0),
        native=_native_id(kind, rng),
    )


def asset_json(ref: AssetRef) -> dict[str, Any]:
    """The 200 body: image `{assetRef, account, width, height, size}`; video/audio add `type`, `duration` (ms)."""
    if ref.kind == "image":
        return {
            "assetRef": str(ref),
            "account": ref.account,
            "width": ref.width,
            "height": ref.height,
            "size": ref.size,
        }
    body: dict[str, Any] = {"assetRef": str(ref), "account": ref.account, "type": ref.kind}
    if ref.width and ref.height:
        body |= {"width": ref.width, "height": ref.height}
    return body | {"duration": ref.duration_ms, "size": ref.size}
