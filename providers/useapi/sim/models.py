"""Facts of useapi.net Dreamina v1 for its simulator: models, sizes, asset refs, errors.

Taken from `upstreams/UPSTREAMS.md` section 1 and the `post-dreamina-videos` doc page
(Apr 3 revision, plus the Apr 17 Postman additions), never from the adapter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Literal

import msgspec

Mode = Literal["prompt", "first_frame", "end_frame", "multi_frame", "unified_edit"]
AssetKind = Literal["image", "video", "audio"]


class UseapiError(Exception):
    """An answer in useapi's flat error shape: `{"error": "..."}` (+ `code` where useapi adds it)."""

    def __init__(self, status: int, message: str, *, with_code: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.with_code = with_code

    def body(self) -> dict[str, Any]:
        if self.with_code:
            return {"error": self.message, "code": self.status}
        return {"error": self.message}


def bad(message: str) -> UseapiError:
    return UseapiError(400, message)


# ---------------------------------------------------------------------------
# Model capabilities (seed doc Apr 3 + the Apr 17 Postman additions)
# ---------------------------------------------------------------------------


class ModelSpec(msgspec.Struct, frozen=True, kw_only=True):
    durations: tuple[int, ...]
    resolutions: Mapping[str, tuple[str, ...]]  # account region -> resolutions offered there
    modes: tuple[Mode, ...]
    credits_per_second: int  # invented (UPSTREAMS 1.9 [U]); seedance-2.0 gives the doc's 125 for 5 s 720p
    default_resolution: str = "720p"


_FRAMES: tuple[Mode, ...] = ("prompt", "first_frame", "end_frame")
_V2_RANGE = tuple(range(4, 16))

MODELS: dict[str, ModelSpec] = {
    "seedance-2.0": ModelSpec(
        durations=_V2_RANGE,
        resolutions={"CA": ("720p", "1080p", "4k"), "US": ("720p",)},
        modes=(*_FRAMES, "unified_edit"),
        credits_per_second=25,
    ),
    "seedance-2.0-fast": ModelSpec(
        durations=_V2_RANGE,
        resolutions={"CA": ("720p",), "US": ("720p",)},
        modes=(*_FRAMES, "unified_edit"),
        credits_per_second=15,
    ),
    "seedance-2.0-mini": ModelSpec(durations=_V2_RANGE, resolutions={"CA": ("720p",)}, modes=_FRAMES, credits_per_second=10),
    "seedance-1.5-pro": ModelSpec(
        durations=(5, 10, 12),
        resolutions={"US": ("720p", "1080p"), "CA": ("720p", "1080p")},
        modes=_FRAMES,
        credits_per_second=20,
    ),
    "seedance-1.0-pro": ModelSpec(
        durations=(5, 10),
        resolutions={"CA": ("1080p",)},
        modes=("prompt", "first_frame"),
        credits_per_second=20,
        default_resolution="1080p",
    ),
    "seedance-1.0-mini": ModelSpec(
        durations=(5, 10),
        resolutions={"US": ("720p", "1080p"), "CA": ("720p", "1080p")},
        modes=("prompt", "first_frame", "multi_frame"),
        credits_per_second=10,
    ),
    "seedance-1.0-fast": ModelSpec(
        durations=(5, 10),
        resolutions={"CA": ("720p", "1080p")},
        modes=("prompt", "first_frame", "multi_frame"),
        credits_per_second=10,
    ),
    "sora2": ModelSpec(durations=(4, 8, 12), resolutions={"CA": ("720p",)}, modes=("prompt", "first_frame"), credits_per_second=30),
}
DEFAULT_MODEL = {"CA": "seedance-2.0", "US": "seedance-1.5-pro"}
OMNI_MODELS = tuple(name for name, spec in MODELS.items() if "unified_edit" in spec.modes)
RESOLUTIONS = ("720p", "1080p", "4k")
RESOLUTION_CREDIT_FACTOR = {"720p": 1, "1080p": 2, "4k": 4}  # invented
RATIOS = ("21:9", "16:9", "4:3", "1:1", "3:4", "9:16")
SIZE_720P = {
    "21:9": (1680, 720),
    "16:9": (1280, 720),
    "4:3": (960, 720),
    "1:1": (720, 720),
    "3:4": (720, 960),
    "9:16": (720, 1280),
}
_SCALE = {"720p": 1.0, "1080p": 1.5, "4k": 3.0}
DEFAULT_DURATION = 5
MAX_PROMPT = 5000
MAX_REPLY = 1024
FRAME_MAX = 10
OMNI_MAX = {"image": 9, "video": 3, "audio": 3}
OMNI_TOTAL_MAX = 12
OMNI_VIDEO_TOTAL_MS = 15_400
OMNI_AUDIO_TOTAL_MS = 15_000


def models_for_region(region: str) -> list[str]:
    return [name for name, spec in MODELS.items() if region in spec.resolutions]


def output_size(ratio: str, resolution: str) -> tuple[int, int]:
    w, h = SIZE_720P[ratio]
    scale = _SCALE[resolution]
    return round(w * scale), round(h * scale)


def closest_ratio(width: int, height: int) -> str | None:
    if width <= 0 or height <= 0:
        return None
    target = math.log(width / height)

    def distance(ratio: str) -> float:
        a, b = ratio.split(":")
        return abs(math.log(int(a) / int(b)) - target)

    return min(RATIOS, key=distance)


# ---------------------------------------------------------------------------
# Asset refs: `<account>-image:w<W>:h<H>:s<bytes>-uri:<id>`, `<account>-video:...:d<ms>-vid:<id>`
# ---------------------------------------------------------------------------


class AssetRef(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    kind: AssetKind
    width: int
    height: int
    size: int
    duration_ms: int | None = None  # video and audio only
    native: str

    def __str__(self) -> str:
        if self.kind == "image":
            return f"{self.account}-image:w{self.width}:h{self.height}:s{self.size}-uri:{self.native}"
        return f"{self.account}-{self.kind}:w{self.width}:h{self.height}:s{self.size}:d{self.duration_ms or 0}-vid:{self.native}"


_REF = re.compile(
    r"^(?P<account>(?:US|CA):[^\s]+?)-(?P<kind>image|video|audio)"
    r":w(?P<w>\d+):h(?P<h>\d+):s(?P<s>\d+)(?::d(?P<d>\d+))?-(?P<scheme>uri|vid):(?P<native>\S+)$"
)


def parse_ref(text: str) -> AssetRef | None:
    m = _REF.match(text)
    if m is None:
        return None
    kind = m["kind"]
    timed = kind != "image"
    if timed != (m["d"] is not None) or m["scheme"] != ("vid" if timed else "uri"):
        return None
    return AssetRef(
        account=m["account"],
        kind=kind,  # type: ignore[arg-type]
        width=int(m["w"]),
        height=int(m["h"]),
        size=int(m["s"]),
        duration_ms=int(m["d"]) if timed else None,
        native=m["native"],
    )
