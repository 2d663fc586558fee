"""BytePlus ModelArk Seedance models as data (checked by `providers.capabilities.check`).

Every value cites `/work/shared/upstreams/MODELARK.md` by section ("§9.1" etc.). Where a
fact varies by input mode and `ModelCaps` can only say it per model, the row takes the
narrower reading, so a request that passes `check()` is one the upstream documents; what
that costs is said beside the row.

Facts no `ModelCaps` field can carry (the adapter does not enforce them; the upstream
answers `400 InvalidParameter`, i.e. INVALID_REQUEST): image aspect 0.4-2.5 and < 30 MB
(§3.3); each reference video 2-15 s (2.5: 2-30 s) and each audio 2-15 s (§3.4); 2.5's
`adaptive`-only ratio in first+last frame mode (§4.2); 1.0 lite i2v's "no 1080p in
reference mode" (§9.1).
"""

from __future__ import annotations

from providers.base import Mode
from providers.capabilities import RATIOS, ModelCaps, ReferenceLimits

SEEDANCE_2_0 = "dreamina-seedance-2-0-260128"  # §9.1 (S1a, S5, S6)
SEEDANCE_2_0_FAST = "dreamina-seedance-2-0-fast-260128"  # §9.1 (S1a, S5, S6)
SEEDANCE_2_0_MINI = "dreamina-seedance-2-0-mini-260615"  # §9.1 (S6, S8)
SEEDANCE_2_5 = "dreamina-seedance-2-5-260628"  # §9.1 (S7)
SEEDANCE_1_5_PRO = "seedance-1-5-pro-251215"  # §9.1 (S5)
SEEDANCE_1_0_PRO = "seedance-1-0-pro-250528"  # §9.1 (S5)
SEEDANCE_1_0_PRO_FAST = "seedance-1-0-pro-fast-251015"  # §9.1 (S5)
SEEDANCE_1_0_LITE_T2V = "seedance-1-0-lite-t2v-250428"  # §9.1 (S5); not on the 2026 price page (§11.2)
SEEDANCE_1_0_LITE_I2V = "seedance-1-0-lite-i2v-250428"  # §9.1 (S5); ditto

# vidgate logical model -> ModelArk model id. The 1.x names follow the other providers'
# catalogs (`seedance-1.0-fast` is 1.0 pro fast there too); 1.0 lite is two upstream
# models, one per input kind, so it gets two logical names.
CATALOG: dict[str, str] = {
    "seedance-2.0": SEEDANCE_2_0,
    "seedance-2.0-fast": SEEDANCE_2_0_FAST,
    "seedance-2.0-mini": SEEDANCE_2_0_MINI,
    "seedance-2.5": SEEDANCE_2_5,
    "seedance-1.5-pro": SEEDANCE_1_5_PRO,
    "seedance-1.0-pro": SEEDANCE_1_0_PRO,
    "seedance-1.0-fast": SEEDANCE_1_0_PRO_FAST,
    "seedance-1.0-lite-t2v": SEEDANCE_1_0_LITE_T2V,
    "seedance-1.0-lite-i2v": SEEDANCE_1_0_LITE_I2V,
}

# What the upstream applies when `resolution` / `duration` are left out (§9.1 defaults,
# §2 `duration` default 5, 2.5: -1). Read by cost estimates only: the adapter never
# fills a default in.
DEFAULT_RESOLUTION: dict[str, str] = {
    SEEDANCE_2_0: "720p",
    SEEDANCE_2_0_FAST: "720p",
    SEEDANCE_2_0_MINI: "720p",
    SEEDANCE_2_5: "720p",
    SEEDANCE_1_5_PRO: "720p",
    SEEDANCE_1_0_PRO: "1080p",
    SEEDANCE_1_0_PRO_FAST: "1080p",
    SEEDANCE_1_0_LITE_T2V: "720p",
    SEEDANCE_1_0_LITE_I2V: "720p",
}
DEFAULT_DURATION: dict[str, int] = {SEEDANCE_2_5: -1}  # every other model: 5 (§2)

_ALL_RATIOS = frozenset(RATIOS)  # the six fixed ratios + adaptive (§2 `ratio`, §9.1 "no 9:21")
# 1.0 series: `adaptive` is refused in text-to-video and reference mode (§4.2, §9.1) and is
# already the default for image-to-video; leaving it out refuses only an explicit
# "adaptive" on 1.0 image input, which the upstream would have applied anyway.
_FIXED_RATIOS = frozenset(RATIOS) - {"adaptive"}

_480_4K = frozenset({"480p", "720p", "1080p", "4k"})
_480_1080 = frozenset({"480p", "720p", "1080p"})
_480_720 = frozenset({"480p", "720p"})

# §3.4 / §3.5 / §9.1, 2.0 family: 0-9 images (1-9 when there is no video), 0-3 videos, 0-3
# audios, videos and audios <= 15 s in all, audio never without an image or a video; <= 15
# items (S7 capability table).
_V20_REFERENCES = ReferenceLimits(
    max_images=9,
    max_videos=3,
    max_audios=3,
    max_total=15,
    max_video_seconds_total=15,
    max_audio_seconds_total=15,
    audio_needs_visual=True,
    placeholders_required=False,  # prompts say "Image 1" in free text (§3.5); nothing is required
)
# §3.4 / §9.1, 2.5: 1-30 images, 0-10 videos, 0-10 audios, <= 50 items, <= 30 s of each in
# all, audio alone allowed.
_V25_REFERENCES = ReferenceLimits(
    max_images=30,
    max_videos=10,
    max_audios=10,
    max_total=50,
    max_video_seconds_total=30,
    max_audio_seconds_total=30,
    audio_needs_visual=False,
)
# §3.3 / §9.1, 1.0 lite i2v: reference images only, 1-4.
_LITE_REFERENCES = ReferenceLimits(max_images=4, max_videos=0, max_audios=0, max_total=4)

_V2_MODES: frozenset[Mode] = frozenset({"text", "first_frame", "first_last_frame", "reference"})


def _caps(
    model_id: str,
    *,
    modes: frozenset[Mode],
    durations: range,
    auto_duration: bool,
    resolutions: frozenset[str],
    ratios: frozenset[str],
    audio: bool,
    reference: ReferenceLimits | None = None,
) -> ModelCaps:
    return ModelCaps(
        model_id=model_id,
        modes=modes,  # keyframes is never offered: ModelArk has no multi-frame mode (§3.5)
        durations=frozenset(durations),
        auto_duration=auto_duration,  # `duration: -1` (§2)
        resolutions=resolutions,
        ratios=ratios,
        generate_audio=audio,  # 2.5, 2.0 family, 1.5 pro only (§2 `generate_audio`)
        return_last_frame=True,  # every model (§2 `return_last_frame`, S5/S7 tables)
        seed=True,  # §2 `seed`; on the 2.0 family see the [CONFLICT] note in adapter.build_body
        watermark=True,  # every model (§2 `watermark`)
        image_min_side=300,  # each side 300-6000 px (§3.3, closed bounds per the [CONFLICT] rule)
        image_max_side=6000,
        reference=reference,
    )


MODELS: dict[str, ModelCaps] = {
    # §9.1: T2V, first, first+last, reference; 480p-4k; 4-15 s or -1; audio; §3.4 references.
    SEEDANCE_2_0: _caps(
        SEEDANCE_2_0,
        modes=_V2_MODES,
        durations=range(4, 16),
        auto_duration=True,
        resolutions=_480_4K,
        ratios=_ALL_RATIOS,
        audio=True,
        reference=_V20_REFERENCES,
    ),
    # §9.1: same as 2.0 but "no 1080p/4k".
    SEEDANCE_2_0_FAST: _caps(
        SEEDANCE_2_0_FAST,
        modes=_V2_MODES,
        durations=range(4, 16),
        auto_duration=True,
        resolutions=_480_720,
        ratios=_ALL_RATIOS,
        audio=True,
        reference=_V20_REFERENCES,
    ),
    # §9.1: "same as fast".
    SEEDANCE_2_0_MINI: _caps(
        SEEDANCE_2_0_MINI,
        modes=_V2_MODES,
        durations=range(4, 16),
        auto_duration=True,
        resolutions=_480_720,
        ratios=_ALL_RATIOS,
        audio=True,
        reference=_V20_REFERENCES,
    ),
    # §9.1: 4-30 s or -1; resolutions [CONFLICT] 480p/720p (S1a, the API reference) vs +1080p
    # (S7 tutorial, S8 prices). The API reference's narrower list is taken: a 1080p request
    # goes to another provider instead of risking an upstream refusal.
    SEEDANCE_2_5: _caps(
        SEEDANCE_2_5,
        modes=_V2_MODES,
        durations=range(4, 31),
        auto_duration=True,
        resolutions=_480_720,
        ratios=_ALL_RATIOS,
        audio=True,
        reference=_V25_REFERENCES,
    ),
    # §9.1: T2V, first, first+last (draft->final has no vidgate input); 480p-1080p (S1a/S1b,
    # newer than S1c); 4-12 s or -1; audio.
    SEEDANCE_1_5_PRO: _caps(
        SEEDANCE_1_5_PRO,
        modes=frozenset({"text", "first_frame", "first_last_frame"}),
        durations=range(4, 13),
        auto_duration=True,
        resolutions=_480_1080,
        ratios=_ALL_RATIOS,
        audio=True,
    ),
    # §9.1: T2V, first, first+last; 480p-1080p; 2-12 s; no audio; adaptive for I2V only.
    SEEDANCE_1_0_PRO: _caps(
        SEEDANCE_1_0_PRO,
        modes=frozenset({"text", "first_frame", "first_last_frame"}),
        durations=range(2, 13),
        auto_duration=False,
        resolutions=_480_1080,
        ratios=_FIXED_RATIOS,
        audio=False,
    ),
    # §9.1, §3.5: as 1.0 pro but "no first+last".
    SEEDANCE_1_0_PRO_FAST: _caps(
        SEEDANCE_1_0_PRO_FAST,
        modes=frozenset({"text", "first_frame"}),
        durations=range(2, 13),
        auto_duration=False,
        resolutions=_480_1080,
        ratios=_FIXED_RATIOS,
        audio=False,
    ),
    # §9.1: T2V only; 6 ratios, no adaptive.
    SEEDANCE_1_0_LITE_T2V: _caps(
        SEEDANCE_1_0_LITE_T2V,
        modes=frozenset({"text"}),
        durations=range(2, 13),
        auto_duration=False,
        resolutions=_480_1080,
        ratios=_FIXED_RATIOS,
        audio=False,
    ),
    # §9.1: first, first+last, reference images (1-4); text-only is refused ([CONFLICT] rule:
    # S1c calls it image-to-video only).
    SEEDANCE_1_0_LITE_I2V: _caps(
        SEEDANCE_1_0_LITE_I2V,
        modes=frozenset({"first_frame", "first_last_frame", "reference"}),
        durations=range(2, 13),
        auto_duration=False,
        resolutions=_480_1080,
        ratios=_FIXED_RATIOS,
        audio=False,
        reference=_LITE_REFERENCES,
    ),
}
