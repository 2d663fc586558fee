"""useapi.net Dreamina v1 video models as data (checked by `providers.capabilities.check`).

Sources, cited per row:
- [D0403] doc `post-dreamina-videos`, revision "February 23, 2026 (April 3, 2026)"
  (`upstreams/useapi-dreamina-post-videos.txt`): Model Capabilities table, body field
  rules, Omni Reference and Multi-frame constraints.
- [P0417] Postman collection `api-evangelist/useapi` `postman/useapi-dreamina-v1.json`,
  "Updated February 23, 2026 (April 17, 2026)": POST videos `model`, `duration` and
  `resolution` field descriptions (UPSTREAMS 1.4, the ★ additions).
- [D0223] doc revision Feb 23 2026 (UPSTREAMS 1.4 notes), only where it still stands.

Mode names: doc `prompt` -> text, `first_frame` -> first_frame, `end_frame` (the doc's
"First/Last Frame", which also covers a first frame alone) -> first_last_frame,
`multi_frame` -> keyframes, `unified_edit` ("Omni Reference") -> reference.

Shared facts for every model [D0403]: ratios 21:9, 16:9, 4:3, 1:1, 3:4, 9:16 (no
`adaptive`); `ratio` can't be sent with image refs; first and last frame must share an
aspect ratio; prompt <= 5000 chars; no seed, watermark, audio or last-frame switches
exist in the body.
"""

from __future__ import annotations

from providers.base import Mode
from providers.capabilities import KeyframeLimits, ModelCaps, ReferenceLimits

RATIOS = frozenset({"21:9", "16:9", "4:3", "1:1", "3:4", "9:16"})
REGIONS_ALL = frozenset({"US", "CA"})
CA = frozenset({"CA"})

_TEXT_FIRST: frozenset[Mode] = frozenset({"text", "first_frame"})
_TEXT_FRAMES: frozenset[Mode] = frozenset({"text", "first_frame", "first_last_frame"})

# [D0403] Omni Reference constraints: <=9 images, <=3 videos, <=3 audios, <=12 in all,
# videos <= 15.4 s in total, audios <= 15 s in total, prompt names every @imageN/@videoN/@audioN.
OMNI = ReferenceLimits(
    max_images=9,
    max_videos=3,
    max_audios=3,
    max_total=12,
    max_video_seconds_total=15.4,
    max_audio_seconds_total=15.0,
    audio_needs_visual=False,  # not a documented useapi rule
    placeholders_required=True,
)

# [D0403] Multi-frame constraints: 2-10 contiguous frames, frame_N_duration 1-6 (default 5),
# the non-last frames' durations add up to a valid model duration, no top-level prompt.
MULTI_FRAME = KeyframeLimits(
    min_frames=2,
    max_frames=10,
    min_frame_seconds=1,
    max_frame_seconds=6,
    default_frame_seconds=5,
    non_last_sum_is_duration=True,
    prompt_allowed=False,
)


def _caps(
    model_id: str,
    *,
    modes: frozenset[Mode],
    durations: frozenset[int] | range,
    resolutions: frozenset[str],
    regions: frozenset[str],
    resolution_regions: dict[str, frozenset[str]] | None = None,
    reference: ReferenceLimits | None = None,
    keyframes: KeyframeLimits | None = None,
) -> ModelCaps:
    return ModelCaps(
        model_id=model_id,
        modes=modes,
        durations=frozenset(durations),
        resolutions=resolutions,
        ratios=RATIOS,
        auto_duration=False,
        resolution_regions=resolution_regions or {},
        regions=regions,
        ratio_with_images=False,
        first_last_same_aspect=True,
        generate_audio=False,
        return_last_frame=False,
        seed=False,
        watermark=False,
        max_prompt_chars=5000,
        reference=reference,
        keyframes=keyframes,
    )


MODELS: dict[str, ModelCaps] = {
    # [D0403] CA, 4-15 s, 720p, Prompt + First/Last Frame + Omni Reference (Feb 23: 4-12 s).
    # [P0417] also US, 720p only there; 1080p and 4k on CA only.
    "seedance-2.0": _caps(
        "seedance-2.0",
        modes=frozenset({"text", "first_frame", "first_last_frame", "reference"}),
        durations=range(4, 16),
        resolutions=frozenset({"720p", "1080p", "4k"}),
        regions=REGIONS_ALL,
        resolution_regions={"1080p": CA, "4k": CA},
        reference=OMNI,
    ),
    # [D0403] CA, 4-15 s, 720p, Prompt + First/Last Frame + Omni Reference.
    # [P0417] US+CA; "720p only".
    "seedance-2.0-fast": _caps(
        "seedance-2.0-fast",
        modes=frozenset({"text", "first_frame", "first_last_frame", "reference"}),
        durations=range(4, 16),
        resolutions=frozenset({"720p"}),
        regions=REGIONS_ALL,
        reference=OMNI,
    ),
    # [P0417] only: "CA region: ... plus seedance-2.0-mini", "seedance-2.0 and seedance-2.0-mini:
    # 4-15", "seedance-2.0-mini ... 720p only". Its input modes are not documented anywhere, so
    # only text-to-video (every Dreamina model's prompt mode) is offered until a doc names more.
    "seedance-2.0-mini": _caps(
        "seedance-2.0-mini",
        modes=frozenset({"text"}),
        durations=range(4, 16),
        resolutions=frozenset({"720p"}),
        regions=CA,
    ),
    # [D0403] US+CA, 5/10/12 s, 720p + 1080p, Prompt + First/Last Frame. [P0417] unchanged.
    "seedance-1.5-pro": _caps(
        "seedance-1.5-pro",
        modes=_TEXT_FRAMES,
        durations=frozenset({5, 10, 12}),
        resolutions=frozenset({"720p", "1080p"}),
        regions=REGIONS_ALL,
    ),
    # [D0403] CA, 5/10 s, "always 1080p", Prompt + First Frame. [P0417] unchanged.
    "seedance-1.0-pro": _caps(
        "seedance-1.0-pro",
        modes=_TEXT_FIRST,
        durations=frozenset({5, 10}),
        resolutions=frozenset({"1080p"}),
        regions=CA,
    ),
    # [D0403] US+CA, 5/10 s, 720p + 1080p, Prompt + First Frame + Multi-Frame. [P0417] unchanged.
    "seedance-1.0-mini": _caps(
        "seedance-1.0-mini",
        modes=frozenset({"text", "first_frame", "keyframes"}),
        durations=frozenset({5, 10}),
        resolutions=frozenset({"720p", "1080p"}),
        regions=REGIONS_ALL,
        keyframes=MULTI_FRAME,
    ),
    # [D0403] CA, 5/10 s, 720p + 1080p, Prompt + First Frame + Multi-Frame. [P0417] unchanged.
    "seedance-1.0-fast": _caps(
        "seedance-1.0-fast",
        modes=frozenset({"text", "first_frame", "keyframes"}),
        durations=frozenset({5, 10}),
        resolutions=frozenset({"720p", "1080p"}),
        regions=CA,
        keyframes=MULTI_FRAME,
    ),
    # [D0403] CA, 4/8/12 s, 720p, Prompt + First Frame. [P0417] "720p only".
    "sora2": _caps(
        "sora2",
        modes=_TEXT_FIRST,
        durations=frozenset({4, 8, 12}),
        resolutions=frozenset({"720p"}),
        regions=CA,
    ),
}

# USD per Dreamina credit (a job's `forecastCost` unit): none published. useapi itself is a flat
# $15/month (UPSTREAMS 1.9) and a credit's worth depends on the Dreamina plan it was bought
# with, so the operator sets it (`[providers.x] usd_per_credit`).
USD_PER_CREDIT: float | None = None

# vidgate logical model name -> useapi model id.
CATALOG: dict[str, str] = {
    "seedance-2.0": "seedance-2.0",
    "seedance-2.0-fast": "seedance-2.0-fast",
    "seedance-2.0-mini": "seedance-2.0-mini",  # [P0417] only; see MODELS
    "seedance-1.5-pro": "seedance-1.5-pro",
    "seedance-1.0-pro": "seedance-1.0-pro",
    "seedance-1.0-mini": "seedance-1.0-mini",
    "seedance-1.0-fast": "seedance-1.0-fast",
    "sora2": "sora2",
}
