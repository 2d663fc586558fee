"""The simulated models, restated from MODELARK.md §3, §4.1, §9 (never from the adapter).

A simulator that imported the adapter's tables would agree with any misreading of them;
this file is written from the contract a second time on purpose.
"""

from __future__ import annotations

from typing import Literal

import msgspec

SimMode = Literal["text", "first_frame", "first_last_frame", "reference"]
Family = Literal["1.0", "2.0", "2.5"]

RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9")  # plus "adaptive" (§2)


class Refs(msgspec.Struct, frozen=True, kw_only=True):
    """Reference-mode limits (§3.3, §3.4, §3.5)."""

    images: int
    videos: int = 0
    audios: int = 0
    items: int
    audio_alone: bool = False


class ModelSpec(msgspec.Struct, frozen=True, kw_only=True):
    modes: frozenset[SimMode]
    resolutions: frozenset[str]
    min_seconds: int
    max_seconds: int
    auto_duration: bool  # duration -1
    family: Family  # which column of the §4.1 pixel table
    default_resolution: str = "720p"  # §9.1
    audio: bool = False  # generate_audio accepted
    refs: Refs | None = None
    frames: bool = False  # `frames` accepted (1.0 series)
    flex: bool = False
    priority: bool = False
    camera_fixed: bool = False
    draft: bool = False
    heic: bool = False  # heic/heif images (1.5 pro and later, §3.3)
    adaptive_in: frozenset[SimMode] = frozenset({"text", "first_frame", "first_last_frame", "reference"})
    adaptive_only_in: frozenset[SimMode] = frozenset()  # ratio must be adaptive (2.5 first+last)
    no_1080p_in: frozenset[SimMode] = frozenset()
    concurrency: int = 10  # running tasks per model, enterprise (§9.2)
    rpm: int = 600  # creates per minute, enterprise (§9.2)


_ALL: frozenset[SimMode] = frozenset({"text", "first_frame", "first_last_frame", "reference"})
_V20_REFS = Refs(images=9, videos=3, audios=3, items=15)
_1_0_ADAPTIVE: frozenset[SimMode] = frozenset({"first_frame", "first_last_frame"})  # not T2V / reference (§4.2)


def _v20(resolutions: frozenset[str]) -> ModelSpec:
    return ModelSpec(
        modes=_ALL,
        resolutions=resolutions,
        min_seconds=4,
        max_seconds=15,
        auto_duration=True,
        family="2.0",
        audio=True,
        refs=_V20_REFS,
        priority=True,
        heic=True,
    )


def _v10(
    modes: frozenset[SimMode],
    *,
    default_resolution: str = "1080p",
    refs: Refs | None = None,
    concurrency: int = 10,
    rpm: int = 600,
    no_1080p_in: frozenset[SimMode] = frozenset(),
) -> ModelSpec:
    return ModelSpec(
        modes=modes,
        resolutions=frozenset({"480p", "720p", "1080p"}),
        default_resolution=default_resolution,
        min_seconds=2,
        max_seconds=12,
        auto_duration=False,
        family="1.0",
        refs=refs,
        frames=True,
        flex=True,
        camera_fixed=True,
        adaptive_in=_1_0_ADAPTIVE,
        no_1080p_in=no_1080p_in,
        concurrency=concurrency,
        rpm=rpm,
    )


# §9.1, the ids exactly ("Simulator: accept exactly the ids in this table").
MODELS: dict[str, ModelSpec] = {
    "dreamina-seedance-2-0-260128": _v20(frozenset({"480p", "720p", "1080p", "4k"})),
    "dreamina-seedance-2-0-fast-260128": _v20(frozenset({"480p", "720p"})),
    "dreamina-seedance-2-0-mini-260615": _v20(frozenset({"480p", "720p"})),
    "dreamina-seedance-2-5-260628": ModelSpec(
        modes=_ALL,
        resolutions=frozenset({"480p", "720p"}),  # [CONFLICT] S1a; the adapter takes the same side
        min_seconds=4,
        max_seconds=30,
        auto_duration=True,
        family="2.5",
        audio=True,
        refs=Refs(images=30, videos=10, audios=10, items=50, audio_alone=True),
        priority=True,
        draft=True,
        heic=True,
        adaptive_only_in=frozenset({"first_last_frame"}),
    ),
    "seedance-1-5-pro-251215": ModelSpec(
        modes=frozenset({"text", "first_frame", "first_last_frame"}),
        resolutions=frozenset({"480p", "720p", "1080p"}),
        min_seconds=4,
        max_seconds=12,
        auto_duration=True,
        family="2.0",  # "1.5 pro & 2.0 family" column of §4.1
        audio=True,
        flex=True,
        camera_fixed=True,
        draft=True,
        heic=True,
    ),
    "seedance-1-0-pro-250528": _v10(frozenset({"text", "first_frame", "first_last_frame"})),
    "seedance-1-0-pro-fast-251015": _v10(frozenset({"text", "first_frame"})),
    "seedance-1-0-lite-t2v-250428": _v10(frozenset({"text"}), default_resolution="720p", concurrency=5, rpm=300),
    "seedance-1-0-lite-i2v-250428": _v10(
        frozenset({"first_frame", "first_last_frame", "reference"}),  # [CONFLICT] rule: no text-only
        default_resolution="720p",
        refs=Refs(images=4, items=4),
        concurrency=5,
        rpm=300,
        no_1080p_in=frozenset({"reference"}),
    ),
}

# §9.2: 2.0 at 4k has its own, much smaller limits.
FOUR_K_CONCURRENCY = 1
FOUR_K_RPM = 15

# §4.1, (w, h) by family, resolution and ratio.
SIZES: dict[Family, dict[str, dict[str, tuple[int, int]]]] = {
    "1.0": {
        "480p": {"16:9": (864, 480), "4:3": (736, 544), "1:1": (640, 640), "3:4": (544, 736), "9:16": (480, 864), "21:9": (960, 416)},
        "720p": {"16:9": (1248, 704), "4:3": (1120, 832), "1:1": (960, 960), "3:4": (832, 1120), "9:16": (704, 1248), "21:9": (1504, 640)},
        "1080p": {"16:9": (1920, 1088), "4:3": (1664, 1248), "1:1": (1440, 1440), "3:4": (1248, 1664), "9:16": (1088, 1920), "21:9": (2176, 928)},
    },
    "2.0": {
        "480p": {"16:9": (864, 496), "4:3": (752, 560), "1:1": (640, 640), "3:4": (560, 752), "9:16": (496, 864), "21:9": (992, 432)},
        "720p": {"16:9": (1280, 720), "4:3": (1112, 834), "1:1": (960, 960), "3:4": (834, 1112), "9:16": (720, 1280), "21:9": (1470, 630)},
        "1080p": {"16:9": (1920, 1080), "4:3": (1664, 1248), "1:1": (1440, 1440), "3:4": (1248, 1664), "9:16": (1080, 1920), "21:9": (2206, 946)},
        "4k": {"16:9": (3840, 2160), "4:3": (3326, 2494), "1:1": (2880, 2880), "3:4": (2494, 3326), "9:16": (2160, 3840), "21:9": (4398, 1886)},
    },
    "2.5": {
        "480p": {"16:9": (854, 480), "4:3": (752, 560), "1:1": (640, 640), "3:4": (560, 752), "9:16": (480, 854), "21:9": (992, 432)},
        "720p": {"16:9": (1280, 720), "4:3": (1112, 834), "1:1": (960, 960), "3:4": (834, 1112), "9:16": (720, 1280), "21:9": (1470, 630)},
    },
}
