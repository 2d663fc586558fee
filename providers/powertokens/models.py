"""PowerTokens model facts: capabilities, the logical-name catalog, and prices.

Every value cites where it comes from (`UPSTREAMS.md` section numbers; "seed doc" is
`powertokens-seedance-2-0-post-videos.txt`; "PT-studio" is PowerTokens' official
client `PowerTokens/video-studio` `models.py`, prices checked 2026-10-05). Where the
docs are silent the choice is marked [I] with the reason.
"""

from __future__ import annotations

from typing import Literal

from providers.base import Cost, Mode
from providers.capabilities import RATIOS, ModelCaps, ReferenceLimits

SEEDANCE_2_0 = "dreamina-seedance-2-0-260128"
SEEDANCE_2_0_FAST = "dreamina-seedance-2-0-fast-260128"
SEEDANCE_2_5 = "dreamina-seedance-2-5-260628"
SEEDANCE_1_5_PRO = "seedance-1-5-pro-251215"
SEEDANCE_1_0_PRO = "seedance-1-0-pro-250528"
SEEDANCE_1_0_FAST = "seedance-1-0-pro-fast-251015"

# vidgate logical model -> PowerTokens model id. PowerTokens has no 1.0-mini and no sora2.
CATALOG: dict[str, str] = {
    "seedance-2.0": SEEDANCE_2_0,
    "seedance-2.0-fast": SEEDANCE_2_0_FAST,
    "seedance-2.5": SEEDANCE_2_5,
    "seedance-1.5-pro": SEEDANCE_1_5_PRO,
    "seedance-1.0-pro": SEEDANCE_1_0_PRO,
    "seedance-1.0-fast": SEEDANCE_1_0_FAST,
}

BodyStyle = Literal["media", "prompt"]

# Which `POST /v1/videos` body a model takes: the 2.0 family's `media` array
# (UPSTREAMS 2.2) or the 1.x flat `prompt` / `image` body (UPSTREAMS 2.3).
BODY_STYLE: dict[str, BodyStyle] = {
    SEEDANCE_2_0: "media",
    SEEDANCE_2_0_FAST: "media",
    SEEDANCE_2_5: "media",
    SEEDANCE_1_5_PRO: "prompt",
    SEEDANCE_1_0_PRO: "prompt",
    SEEDANCE_1_0_FAST: "prompt",
}


def body_style(model_id: str) -> BodyStyle:
    """The body a model id takes. An id missing from the table (an operator configured a
    newer dated build) follows its family: `seedance-1-*` ids are 1.x, the rest 2.x."""
    style = BODY_STYLE.get(model_id)
    if style is not None:
        return style
    return "prompt" if model_id.startswith("seedance-1-") else "media"


# What the upstream applies when `size` / `seconds` are omitted, for cost estimates only:
# `size` default "720p" and `seconds` default "5" (seed doc; UPSTREAMS 2.2). Every priced
# model below is a 2.x model, which is where these defaults are documented.
DEFAULT_RESOLUTION = "720p"
DEFAULT_SECONDS = 5  # UPSTREAMS 2.2 `seconds` default "5"; Ark 3.2 `duration` default 5

# USD per output second by resolution, PT-studio `models.py` `list_price_usd_per_second`
# (UPSTREAMS 2.5: "PowerTokens bills USD per second"), "typical T2V (no input video)".
# The docs give no price for 2.0 standard or for any 1.x model: those have none here.
PRICES_USD_PER_SECOND: dict[str, dict[str, float]] = {
    SEEDANCE_2_0_FAST: {"480p": 0.121, "720p": 0.121},
    SEEDANCE_2_5: {"480p": 0.105, "720p": 0.232, "1080p": 0.569},
}

_ALL_RATIOS = frozenset(RATIOS)  # 16:9 4:3 1:1 3:4 9:16 21:9 adaptive: seed doc; UPSTREAMS 2.2, 3.2
_V2_MODES: frozenset[Mode] = frozenset({"text", "first_frame", "first_last_frame", "reference"})
_V1_MODES: frozenset[Mode] = frozenset({"text", "first_frame"})  # UPSTREAMS 2.3: T2V and first frame only

# Reference limits for the 2.0 family: <= 9 images, <= 3 videos, <= 3 audios, audio never
# alone (UPSTREAMS 2.2, Ark 3.3); <= 15 s of video in all and <= 15 s of audio in all
# (Ark 3.3). max_total = 15 = 9 + 3 + 3, i.e. no extra cap on the mix: the 12-file cap of
# 3.3 is the Dreamina *web UI*'s (geelark), and neither PowerTokens nor Ark documents one.
_V2_REFERENCES = ReferenceLimits(
    max_images=9,
    max_videos=3,
    max_audios=3,
    max_total=15,
    max_video_seconds_total=15,
    max_audio_seconds_total=15,
    audio_needs_visual=True,
    placeholders_required=False,  # Ark / PT prompts name media in free text ("image 1"), not required
)


def _v2(model_id: str, *, durations: range, resolutions: frozenset[str]) -> ModelCaps:
    return ModelCaps(
        model_id=model_id,
        modes=_V2_MODES,  # first frame, first+last frame, multimodal reference (UPSTREAMS 2.2; Ark 3.3) + text
        durations=frozenset(durations),
        resolutions=resolutions,
        ratios=_ALL_RATIOS,
        auto_duration=True,  # `seconds: "-1"` (seed doc; UPSTREAMS 2.2)
        generate_audio=True,  # "Supported by the 2.0 series" (seed doc)
        return_last_frame=True,  # seed doc
        seed=True,  # seed doc: -1 .. 4294967295
        watermark=True,  # seed doc
        image_min_side=300,  # Ark 3.3 / PT Asset Library: each side 300-6000 px
        image_max_side=6000,
        reference=_V2_REFERENCES,
    )


def _v1(model_id: str, *, durations: range, resolutions: frozenset[str], audio: bool) -> ModelCaps:
    return ModelCaps(
        model_id=model_id,
        modes=_V1_MODES,
        durations=frozenset(durations),
        resolutions=resolutions,
        # Ark 3.2 lists `adaptive` without a model restriction; the 1.x body has `ratio` (2.3).
        ratios=_ALL_RATIOS,
        auto_duration=False,  # "-1" is documented for the 2.0 family only (UPSTREAMS 3.2)
        generate_audio=audio,  # UPSTREAMS 2.3: generate_audio, draft, return_last_frame are 1.5-pro only
        return_last_frame=audio,
        seed=True,  # UPSTREAMS 2.3 lists `seed`
        watermark=True,  # UPSTREAMS 2.3 lists `watermark`
        image_min_side=300,  # Ark 3.3: each side 300-6000 px
        image_max_side=6000,
        reference=None,
    )


_480_1080 = frozenset({"480p", "720p", "1080p"})
_480_720 = frozenset({"480p", "720p"})

MODELS: dict[str, ModelCaps] = {
    # 2.0: seconds 4..15 (seed doc text "4 to 15"; its enum skips 13-14, which UPSTREAMS 2.2 reads
    # as a doc slip [I]). Sizes 480p/720p/1080p: the seed doc (multimodal reference page) and
    # Ark 3.2 both list 1080p for 2.0 and exclude only "fast"; the T2V page lists only 480p/720p.
    # ModelCaps can't vary resolutions by mode, so we follow the page whose schema is stored
    # verbatim; if text-to-video at 1080p is refused upstream the answer is a clean HTTP 400
    # (INVALID_REQUEST), never a silently different video.
    SEEDANCE_2_0: _v2(SEEDANCE_2_0, durations=range(4, 16), resolutions=_480_1080),
    # 2.0 fast: "max 720p" (UPSTREAMS 2.2; Ark 3.2 "2.0 fast has no 1080p"; PT-studio 480p/720p).
    SEEDANCE_2_0_FAST: _v2(SEEDANCE_2_0_FAST, durations=range(4, 16), resolutions=_480_720),
    # 2.5: "4-30 s, 480p-1080p" (UPSTREAMS 2.2; PT-studio durations range(4, 31)). Modes, auto
    # duration and reference limits are assumed equal to 2.0's [I]: same body, same family.
    SEEDANCE_2_5: _v2(SEEDANCE_2_5, durations=range(4, 31), resolutions=_480_1080),
    # 1.5 pro: 4..12 s (UPSTREAMS 3.2, third-party pages); 480p/720p/1080p (Ark 3.2 `resolution`).
    SEEDANCE_1_5_PRO: _v1(SEEDANCE_1_5_PRO, durations=range(4, 13), resolutions=_480_1080, audio=True),
    # 1.0 pro: 2..12 s (UPSTREAMS 3.2); 480p/720p/1080p (Ark 3.2, default 1080p on 1.0 pro).
    SEEDANCE_1_0_PRO: _v1(SEEDANCE_1_0_PRO, durations=range(2, 13), resolutions=_480_1080, audio=False),
    # 1.0 pro fast: 2..12 s like 1.0 (UPSTREAMS 3.2 "1.0: 2-12"). Resolutions: no stored page lists
    # them; UPSTREAMS 5.4 says "Fast models cap at 720p", so we offer 480p/720p [I] and would
    # rather refuse 1080p up front than send a request the docs don't back.
    SEEDANCE_1_0_FAST: _v1(SEEDANCE_1_0_FAST, durations=range(2, 13), resolutions=_480_720, audio=False),
}


def estimate_cost(model_id: str, resolution: str | None, seconds: float | str | None) -> Cost | None:
    """USD for one video from the per-second price table (`PRICES_USD_PER_SECOND`).

    `None` resolution / seconds mean the upstream defaults (720p, 5 s). `None` back when
    the model or resolution has no known price, or the duration is "auto"/"-1".
    """
    prices = PRICES_USD_PER_SECOND.get(model_id)
    if prices is None:
        return None
    price = prices.get(resolution or DEFAULT_RESOLUTION)
    secs = as_seconds(DEFAULT_SECONDS if seconds is None else seconds)
    if price is None or secs is None:
        return None
    usd = round(price * secs, 6)
    return Cost(amount=usd, unit="usd", usd_estimate=usd)


def as_seconds(value: object) -> float | None:
    """A positive duration from an int, float or numeric string; None for "-1", "auto", junk."""
    try:
        secs = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return secs if secs > 0 else None
