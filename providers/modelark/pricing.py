"""Output pixel sizes, the token formula and the USD price list (MODELARK.md §4.1, §11).

ModelArk bills `usage.completion_tokens` (§11.1) at a USD price per million tokens that
depends on the model, the resolution, whether a reference video went in (2.x), whether
audio was generated (1.5 pro) and the service tier (§11.2, price page captured
2026-09-15, "last updated 2026-09-11"). Time-limited discounts (§11.2) are not list
prices and are not applied. Pure data and arithmetic.
"""

from __future__ import annotations

from typing import Literal

from providers.base import Cost
from providers.modelark import models as m

Family = Literal["1.0", "2.0", "2.5"]

FPS = 24  # every model renders 24 fps (§4.1)
PRICE_CAPTURED = "2026-09-15"  # §11.2

# §4.1 pixel sizes (w, h) by resolution and ratio, per column of the table.
_SIZES: dict[Family, dict[str, dict[str, tuple[int, int]]]] = {
    "1.0": {
        "480p": {"16:9": (864, 480), "4:3": (736, 544), "1:1": (640, 640), "3:4": (544, 736), "9:16": (480, 864), "21:9": (960, 416)},
        "720p": {"16:9": (1248, 704), "4:3": (1120, 832), "1:1": (960, 960), "3:4": (832, 1120), "9:16": (704, 1248), "21:9": (1504, 640)},
        "1080p": {"16:9": (1920, 1088), "4:3": (1664, 1248), "1:1": (1440, 1440), "3:4": (1248, 1664), "9:16": (1088, 1920), "21:9": (2176, 928)},
    },
    "2.0": {  # "1.5 pro & 2.0 family"
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

_FAMILY: dict[str, Family] = {
    m.SEEDANCE_2_0: "2.0",
    m.SEEDANCE_2_0_FAST: "2.0",
    m.SEEDANCE_2_0_MINI: "2.0",
    m.SEEDANCE_1_5_PRO: "2.0",
    m.SEEDANCE_2_5: "2.5",
    m.SEEDANCE_1_0_PRO: "1.0",
    m.SEEDANCE_1_0_PRO_FAST: "1.0",
    m.SEEDANCE_1_0_LITE_T2V: "1.0",
    m.SEEDANCE_1_0_LITE_I2V: "1.0",
}

# §11.2, 2.x models: resolution -> (USD/1M tokens without a reference video, with one).
# Online tier only: the 2.x models have no flex tier (§2 `service_tier`). 2.5's figures are
# [DERIVED] in the contract from the published per-video examples.
_V2_PRICES: dict[str, dict[str, tuple[float, float]]] = {
    m.SEEDANCE_2_0: {"480p": (7.0, 4.3), "720p": (7.0, 4.3), "1080p": (7.7, 4.7), "4k": (4.0, 2.4)},
    m.SEEDANCE_2_0_FAST: {"480p": (5.6, 3.3), "720p": (5.6, 3.3)},
    m.SEEDANCE_2_0_MINI: {"480p": (3.5, 2.1), "720p": (3.5, 2.1)},
    m.SEEDANCE_2_5: {"480p": (10.70, 6.40), "720p": (10.70, 6.40), "1080p": (11.70, 7.00)},
}
# §11.2, 1.x models: audio generated? -> (online, flex) USD/1M tokens. 1.0 lite is not on the
# current page ([UNKNOWN]): it has no price here.
_V1_PRICES: dict[str, dict[bool, tuple[float, float]]] = {
    m.SEEDANCE_1_5_PRO: {True: (2.4, 1.2), False: (1.2, 0.6)},
    m.SEEDANCE_1_0_PRO: {False: (2.5, 1.25)},
    m.SEEDANCE_1_0_PRO_FAST: {False: (1.0, 0.5)},
}
_AUDIO_BY_DEFAULT = frozenset({m.SEEDANCE_1_5_PRO})  # `generate_audio` defaults to true (§2)

# A reference video adds at least 4 s of input to the billed seconds (§11.1), so its tokens
# are at least (4 + d) / d times the no-input count: >= 1.27x for 2.0's longest output (15 s),
# >= 1.13x for 2.5's (30 s). Above 1.1x is read as "a video went in"; the §4.1 sizes of the
# model families differ from each other by far less than that.
_VIDEO_INPUT_FACTOR = 1.1


def pixel_size(model_id: str, resolution: str | None, ratio: str | None) -> tuple[int, int] | None:
    """The output's (width, height) per §4.1, or None when a fact is missing or unknown."""
    family = _FAMILY.get(model_id)
    if family is None or resolution is None or ratio is None:
        return None
    return _SIZES[family].get(resolution, {}).get(ratio)


def tokens_for(width: int, height: int, seconds: float) -> int:
    """What the API bills for an output without input video: W·H·(24·d+1)/1024, floored (§11.1)."""
    return int(width * height * (FPS * seconds + 1) // 1024)


def usd_per_million(model_id: str, *, resolution: str | None, video_input: bool | None, audio: bool | None, flex: bool) -> float | None:
    """The §11.2 list price for these conditions, or None when it is unknown or not offered."""
    if model_id in _V2_PRICES:
        if flex or video_input is None or resolution is None:
            return None
        pair = _V2_PRICES[model_id].get(resolution)
        return None if pair is None else pair[1 if video_input else 0]
    by_audio = _V1_PRICES.get(model_id)
    if by_audio is None:
        return None
    if audio is None:
        audio = model_id in _AUDIO_BY_DEFAULT
    pair = by_audio.get(audio)
    return None if pair is None else pair[1 if flex else 0]


def task_usd(
    model_id: str,
    tokens: float,
    *,
    resolution: str | None,
    ratio: str | None,
    seconds: float | None,
    audio: bool | None,
    flex: bool,
) -> float | None:
    """USD for a finished task's billed tokens.

    Whether a reference video went in is not in the task object (§5), but it changes the 2.x
    price. It is read from the tokens themselves: with no input video they equal the §11.1
    formula for the returned size and duration; an input video adds at least 4 s more.
    """
    video_input: bool | None = None
    if model_id in _V2_PRICES:
        size = pixel_size(model_id, resolution, ratio)
        if size is not None and seconds is not None and seconds > 0:
            video_input = tokens > _VIDEO_INPUT_FACTOR * tokens_for(*size, seconds)
    price = usd_per_million(model_id, resolution=resolution, video_input=video_input, audio=audio, flex=flex)
    return None if price is None else round(tokens * price / 1_000_000, 6)


def estimate_cost(model_id: str, resolution: str | None, seconds: float | str | None) -> Cost | None:
    """A USD estimate before submit: 16:9 (as the published examples), no input video, the
    model's defaults for what is left out, the online tier. None when the duration is the
    model's choice (`auto`, or 2.5's default -1) or the model has no known price."""
    resolution = resolution or m.DEFAULT_RESOLUTION.get(model_id)
    secs = _seconds(m.DEFAULT_DURATION.get(model_id, 5) if seconds is None else seconds)
    size = pixel_size(model_id, resolution, "16:9")
    if size is None or secs is None:
        return None
    price = usd_per_million(model_id, resolution=resolution, video_input=False, audio=None, flex=False)
    if price is None:
        return None
    usd = round(tokens_for(*size, secs) * price / 1_000_000, 6)
    return Cost(amount=usd, unit="usd", usd_estimate=usd)


def _seconds(value: object) -> float | None:
    try:
        secs = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None  # "auto"
    return secs if secs > 0 else None
