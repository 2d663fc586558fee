"""The capability check against hand-built facts, and the real tables against the docs."""

from __future__ import annotations

from typing import Any

import pytest

from providers.base import (
    FirstFrameInput,
    FirstLastFrameInput,
    GenerationRequest,
    Keyframe,
    KeyframesInput,
    Media,
    ReferenceInput,
    TextInput,
)
from providers.capabilities import KeyframeLimits, ModelCaps, Reason, ReferenceLimits, check
from providers.powertokens import models as pt
from providers.useapi import models as ua


def image(width: int | None = 1280, height: int | None = 720, url: str = "https://x/a.png") -> Media:
    return Media(kind="image", url=url, width=width, height=height)


def clip(kind: str, ms: int | None) -> Media:
    return Media(kind=kind, url=f"https://x/{kind}", duration_ms=ms)  # type: ignore[arg-type]


def caps(**kw: Any) -> ModelCaps:
    base: dict[str, Any] = {
        "model_id": "m1",
        "modes": frozenset({"text", "first_frame", "first_last_frame", "keyframes", "reference"}),
        "durations": frozenset({5, 10}),
        "resolutions": frozenset({"720p", "1080p"}),
    }
    base.update(kw)
    return ModelCaps(**base)


def req(input: Any = None, **kw: Any) -> GenerationRequest:
    return GenerationRequest(model="seedance-x", input=input or TextInput(prompt="a cat"), **kw)


def fields(reasons: list[Reason]) -> list[str]:
    return [r.field for r in reasons]


def frames(*seconds: int | None, width: int = 1280, height: int = 720) -> KeyframesInput:
    return KeyframesInput(frames=tuple(Keyframe(image=image(width, height), seconds=s) for s in seconds))


# ---------------------------------------------------------------------------
# modes, durations, resolution, ratio, switches
# ---------------------------------------------------------------------------


def test_a_plain_request_passes() -> None:
    assert check(req(seconds=5, resolution="720p", ratio="16:9"), caps()) == []


def test_unsupported_mode() -> None:
    reasons = check(req(FirstFrameInput(first_frame=image())), caps(modes=frozenset({"text"})))
    assert reasons == [Reason("mode", "model m1 does not support first_frame input (supports text)")]


@pytest.mark.parametrize("seconds", [4, 6, 15])
def test_duration_not_offered(seconds: int) -> None:
    reasons = check(req(seconds=seconds), caps())
    assert fields(reasons) == ["seconds"]
    assert f"{seconds} is not a duration of model m1" in reasons[0].message
    assert "valid: 5, 10" in reasons[0].message


def test_duration_omitted_is_fine() -> None:
    assert check(req(seconds=None), caps()) == []


def test_auto_duration() -> None:
    reasons = check(req(seconds="auto"), caps(auto_duration=False))
    assert fields(reasons) == ["seconds"]
    assert "can't choose its own duration" in reasons[0].message
    assert check(req(seconds="auto"), caps(auto_duration=True)) == []


def test_resolution_not_offered() -> None:
    reasons = check(req(resolution="4k"), caps())
    assert fields(reasons) == ["resolution"]
    assert reasons[0].message == "4k is not offered by model m1 (valid: 720p, 1080p)"


def test_resolution_regions() -> None:
    model = caps(
        resolutions=frozenset({"720p", "1080p"}),
        regions=frozenset({"US", "CA"}),
        resolution_regions={"1080p": frozenset({"CA"})},
    )
    reasons = check(req(resolution="1080p"), model, regions=["US"])
    assert fields(reasons) == ["resolution"]
    assert reasons[0].message == "1080p on model m1 needs an account in region CA"
    assert check(req(resolution="1080p"), model, regions=["US", "CA"]) == []
    assert check(req(resolution="720p"), model, regions=["US"]) == []
    # a provider without regions is not held to the per-region table
    assert check(req(resolution="1080p"), model, regions=None) == []


def test_model_regions() -> None:
    model = caps(regions=frozenset({"CA"}))
    reasons = check(req(), model, regions=["US"])
    assert fields(reasons) == ["model"]
    assert "needs an account in region CA" in reasons[0].message
    assert check(req(), model, regions=["CA"]) == []
    assert check(req(), model, regions=None) == []
    assert fields(check(req(), model, regions=[])) == ["model"]


def test_ratio_not_offered() -> None:
    reasons = check(req(ratio="adaptive"), caps())
    assert fields(reasons) == ["ratio"]
    assert "adaptive is not a ratio of model m1" in reasons[0].message


@pytest.mark.parametrize(
    "input",
    [
        FirstFrameInput(first_frame=image()),
        FirstLastFrameInput(first_frame=image(), last_frame=image()),
        KeyframesInput(frames=(Keyframe(image=image()), Keyframe(image=image()))),
        ReferenceInput(prompt="@image1", images=(image(),)),
    ],
)
def test_ratio_with_images_forbidden(input: Any) -> None:
    model = caps(ratio_with_images=False)
    reasons = [r for r in check(req(input, ratio="16:9"), model) if r.field == "ratio"]
    assert len(reasons) == 1
    assert "ratio can't be set with image inputs" in reasons[0].message
    assert [r for r in check(req(input, ratio="16:9"), caps(ratio_with_images=True)) if r.field == "ratio"] == []


def test_ratio_with_video_only_references_is_allowed_when_images_forbid_it() -> None:
    inp = ReferenceInput(prompt="@video1", videos=(clip("video", 4000),))
    assert check(req(inp, ratio="16:9"), caps(ratio_with_images=False)) == []
    assert check(req(ratio="16:9"), caps(ratio_with_images=False)) == []


@pytest.mark.parametrize(
    ("kw", "flag", "field"),
    [
        ({"generate_audio": True}, "generate_audio", "generate_audio"),
        ({"return_last_frame": True}, "return_last_frame", "return_last_frame"),
        ({"seed": 7}, "seed", "seed"),
        ({"watermark": False}, "watermark", "watermark"),
    ],
)
def test_switches(kw: dict[str, Any], flag: str, field: str) -> None:
    assert fields(check(req(**kw), caps(**{flag: False}))) == [field]
    assert check(req(**kw), caps(**{flag: True})) == []


def test_false_audio_and_last_frame_need_no_support() -> None:
    assert check(req(generate_audio=False, return_last_frame=False), caps(generate_audio=False, return_last_frame=False)) == []


def test_prompt_length() -> None:
    model = caps(max_prompt_chars=10)
    assert check(req(TextInput(prompt="x" * 10)), model) == []
    reasons = check(req(TextInput(prompt="x" * 11)), model)
    assert fields(reasons) == ["prompt"]
    assert reasons[0].message == "prompt is 11 characters; model m1 takes at most 10"


def test_every_reason_is_reported_not_just_the_first() -> None:
    model = caps(modes=frozenset({"text"}), seed=False)
    reasons = check(req(FirstFrameInput(first_frame=image()), seconds=7, resolution="4k", ratio="adaptive", seed=1), model)
    assert fields(reasons) == ["mode", "seconds", "resolution", "ratio", "seed"]


# ---------------------------------------------------------------------------
# images: sides and aspect
# ---------------------------------------------------------------------------


def test_image_side_limits_name_each_image() -> None:
    model = caps(image_min_side=300, image_max_side=6000)
    inp = FirstLastFrameInput(first_frame=image(299, 720), last_frame=image(6001, 3000))
    reasons = check(req(inp), model)
    assert fields(reasons) == ["first_frame", "last_frame"]
    assert reasons[0].message == "image is 299x720; model m1 needs each side within 300-6000 px"
    assert check(req(FirstFrameInput(first_frame=image(300, 6000))), model) == []


def test_image_side_limits_in_keyframes_and_references() -> None:
    model = caps(image_min_side=300)
    kf = KeyframesInput(frames=(Keyframe(image=image(1280, 720)), Keyframe(image=image(200, 200))))
    assert fields(check(req(kf), model)) == ["keyframes[1].image"]
    ref = ReferenceInput(prompt="@image1 @image2", images=(image(), image(100, 100)))
    assert fields(check(req(ref), model)) == ["references.images[1]"]


def test_image_sides_unknown_are_not_judged() -> None:
    model = caps(image_min_side=300, image_max_side=6000)
    assert check(req(FirstFrameInput(first_frame=image(None, None))), model) == []
    assert check(req(FirstFrameInput(first_frame=image(10, 10))), caps()) == []  # no limit in the table


def test_first_last_same_aspect() -> None:
    model = caps(first_last_same_aspect=True)
    same = FirstLastFrameInput(first_frame=image(1280, 720), last_frame=image(1920, 1080))
    assert check(req(same), model) == []
    off = FirstLastFrameInput(first_frame=image(1280, 720), last_frame=image(720, 1280))
    reasons = check(req(off), model)
    assert fields(reasons) == ["last_frame"]
    assert "same aspect ratio" in reasons[0].message
    assert check(req(off), caps(first_last_same_aspect=False)) == []
    unknown = FirstLastFrameInput(first_frame=image(1280, 720), last_frame=image(None, None))
    assert check(req(unknown), model) == []


# ---------------------------------------------------------------------------
# keyframes
# ---------------------------------------------------------------------------

KF = KeyframeLimits(min_frames=2, max_frames=4, min_frame_seconds=1, max_frame_seconds=6, default_frame_seconds=5)


def test_keyframes_within_limits() -> None:
    # non-last frames: 5 (default) + 5 = 10, a model duration; the last frame's seconds don't count
    assert check(req(frames(None, 5, 3)), caps(keyframes=KF)) == []
    assert check(req(frames(2, 3)), caps(keyframes=KF, durations=frozenset({2}))) == []


def test_keyframes_count() -> None:
    reasons = check(req(frames(5, 5, 5, 5, 5)), caps(keyframes=KF, durations=frozenset({20})))
    assert fields(reasons) == ["keyframes"]
    assert reasons[0].message == "5 keyframes given; model m1 takes 2-4"


@pytest.mark.parametrize(("seconds", "index"), [((7, 3), 0), ((5, 0), 1)])
def test_keyframe_seconds_per_frame(seconds: tuple[int, int], index: int) -> None:
    reasons = check(req(frames(*seconds)), caps(keyframes=KF, durations=frozenset({5, 7})))
    assert f"keyframes[{index}].seconds" in fields(reasons)
    r = next(r for r in reasons if r.field == f"keyframes[{index}].seconds")
    assert "outside 1-6 seconds per frame" in r.message


def test_keyframes_sum_must_be_a_duration() -> None:
    reasons = check(req(frames(3, 4, 2)), caps(keyframes=KF))
    assert fields(reasons) == ["keyframes"]
    assert "the non-last keyframes last 7 s in all" in reasons[0].message
    assert "(5, 10)" in reasons[0].message


def test_keyframes_sum_rule_can_be_off() -> None:
    limits = KeyframeLimits(non_last_sum_is_duration=False)
    assert check(req(frames(3, 4, 2)), caps(keyframes=limits)) == []


def test_keyframes_top_level_seconds_must_match_the_sum() -> None:
    model = caps(keyframes=KF)
    assert check(req(frames(5, 5, 5), seconds=10), model) == []
    reasons = check(req(frames(5, 5, 5), seconds=5), model)
    assert fields(reasons) == ["seconds"]
    assert "seconds is 5 but the non-last keyframes last 10 s" in reasons[0].message


def test_keyframes_same_aspect() -> None:
    inp = KeyframesInput(frames=(Keyframe(image=image(1280, 720)), Keyframe(image=image(720, 1280))))
    reasons = check(req(inp), caps(keyframes=KF))
    assert fields(reasons) == ["keyframes"]
    assert "same aspect ratio" in reasons[0].message


def test_keyframes_without_limits_in_the_table_are_not_judged() -> None:
    assert check(req(frames(3, 4, 2)), caps(keyframes=None)) == []


# ---------------------------------------------------------------------------
# references
# ---------------------------------------------------------------------------

REF = ReferenceLimits(max_images=2, max_videos=1, max_audios=1, max_total=3, max_video_seconds_total=10, max_audio_seconds_total=8)


def test_references_within_limits() -> None:
    inp = ReferenceInput(prompt="p", images=(image(), image()), videos=(clip("video", 10_000),))
    assert check(req(inp), caps(reference=REF)) == []


def test_reference_counts_and_total() -> None:
    inp = ReferenceInput(
        prompt="p",
        images=(image(), image(), image()),
        videos=(clip("video", 1000), clip("video", 1000)),
        audios=(clip("audio", 1000), clip("audio", 1000)),
    )
    reasons = check(req(inp), caps(reference=REF))
    assert fields(reasons) == ["references.images", "references.videos", "references.audios", "references"]
    assert reasons[0].message == "3 given; model m1 takes at most 2"
    assert reasons[3].message == "7 references in all; model m1 takes at most 3"


def test_reference_empty() -> None:
    reasons = check(req(ReferenceInput(prompt="p")), caps(reference=REF))
    assert fields(reasons) == ["references"]
    assert "at least one" in reasons[0].message


def test_reference_media_seconds_totals() -> None:
    limits = ReferenceLimits(max_video_seconds_total=15.4, max_audio_seconds_total=15)
    ok = ReferenceInput(prompt="p", videos=(clip("video", 10_000), clip("video", 5_400)), audios=(clip("audio", 15_000),))
    assert check(req(ok), caps(reference=limits)) == []
    over = ReferenceInput(prompt="p", videos=(clip("video", 10_000), clip("video", 5_500)), audios=(clip("audio", 15_001),))
    reasons = check(req(over), caps(reference=limits))
    assert fields(reasons) == ["references.videos", "references.audios"]
    assert reasons[0].message == "15.5 s in all; model m1 takes at most 15.4 s"


def test_reference_seconds_unknown_are_not_judged() -> None:
    limits = ReferenceLimits(max_video_seconds_total=1)
    inp = ReferenceInput(prompt="p", videos=(clip("video", 60_000), clip("video", None)))
    assert check(req(inp), caps(reference=limits)) == []


def test_audio_alone() -> None:
    limits = ReferenceLimits(audio_needs_visual=True)
    alone = ReferenceInput(prompt="p", audios=(clip("audio", 3000),))
    reasons = check(req(alone), caps(reference=limits))
    assert fields(reasons) == ["references.audios"]
    assert "audio can't be the only reference" in reasons[0].message
    with_image = ReferenceInput(prompt="p", images=(image(),), audios=(clip("audio", 3000),))
    assert check(req(with_image), caps(reference=limits)) == []
    assert check(req(alone), caps(reference=ReferenceLimits(audio_needs_visual=False))) == []


def test_placeholders_required() -> None:
    limits = ReferenceLimits(placeholders_required=True)
    inp = ReferenceInput(prompt="@image1 dances to @audio1", images=(image(), image()), audios=(clip("audio", 3000),))
    reasons = check(req(inp), caps(reference=limits))
    assert fields(reasons) == ["prompt"]
    assert reasons[0].message.endswith("missing @image2")
    two_missing = ReferenceInput(prompt="dance", images=(image(),), videos=(clip("video", 3000),))
    reasons = check(req(two_missing), caps(reference=limits))
    assert fields(reasons) == ["prompt"]
    assert reasons[0].message.endswith("missing @image1, @video1")
    named = ReferenceInput(prompt="@image1 and @image2 dance to @audio1", images=inp.images, audios=inp.audios)
    assert check(req(named), caps(reference=limits)) == []
    assert check(req(inp), caps(reference=ReferenceLimits(placeholders_required=False))) == []


# ---------------------------------------------------------------------------
# the real tables, against the upstream docs
# ---------------------------------------------------------------------------


def test_useapi_table_matches_the_capability_table_in_the_doc() -> None:
    # useapi-dreamina-post-videos.txt, "Model Capabilities"
    m = ua.MODELS
    assert m["seedance-1.5-pro"].durations == frozenset({5, 10, 12})
    assert m["seedance-1.5-pro"].regions == frozenset({"US", "CA"})
    assert m["seedance-1.5-pro"].modes == frozenset({"text", "first_frame", "first_last_frame"})
    assert m["seedance-1.0-pro"].resolutions == frozenset({"1080p"})  # "always 1080p"
    assert m["seedance-1.0-pro"].regions == frozenset({"CA"})
    assert m["seedance-1.0-pro"].modes == frozenset({"text", "first_frame"})
    assert m["seedance-1.0-mini"].durations == frozenset({5, 10})
    assert m["seedance-1.0-mini"].regions == frozenset({"US", "CA"})
    assert "keyframes" in m["seedance-1.0-mini"].modes
    assert m["seedance-1.0-fast"].regions == frozenset({"CA"})
    # "Omni Reference ... (Seedance 2.0 only)"
    assert {name for name, c in m.items() if "reference" in c.modes} == {"seedance-2.0", "seedance-2.0-fast"}
    assert m["seedance-2.0"].durations == frozenset(range(4, 16))


def test_useapi_body_rules_from_the_doc() -> None:
    for c in ua.MODELS.values():
        assert not c.ratio_with_images  # "Cannot be specified when image refs are provided"
        assert "adaptive" not in c.ratios
        assert c.max_prompt_chars == 5000
        assert not c.auto_duration
    omni = ua.MODELS["seedance-2.0"].reference
    assert omni is not None
    assert (omni.max_images, omni.max_videos, omni.max_audios, omni.max_total) == (9, 3, 3, 12)
    assert (omni.max_video_seconds_total, omni.max_audio_seconds_total) == (15.4, 15.0)
    assert omni.placeholders_required
    kf = ua.MODELS["seedance-1.0-mini"].keyframes
    assert kf is not None
    assert (kf.min_frames, kf.max_frames, kf.min_frame_seconds, kf.max_frame_seconds, kf.default_frame_seconds) == (2, 10, 1, 6, 5)
    assert kf.non_last_sum_is_duration


def test_useapi_checks_with_the_real_table() -> None:
    m = ua.MODELS
    # 1.0-pro is CA-only and 1080p-only
    reasons = check(req(resolution="720p", seconds=5), m["seedance-1.0-pro"], regions=["US"])
    assert sorted(fields(reasons)) == ["model", "resolution"]
    # 1.5-pro has no keyframes and no 8 s
    reasons = check(req(frames(5, 5), seconds=8), m["seedance-1.5-pro"], regions=["US"])
    assert "mode" in fields(reasons) and "seconds" in fields(reasons)
    # multi-frame: frames 6 + 6 = 12 s is not a 1.0-mini duration (5, 10); 5 + 5 is
    assert fields(check(req(frames(6, 6, 1)), m["seedance-1.0-mini"], regions=["US"])) == ["keyframes"]
    assert check(req(frames(5, 5, 1)), m["seedance-1.0-mini"], regions=["US"]) == []
    # ratio with a first frame is refused
    assert fields(check(req(FirstFrameInput(first_frame=image()), ratio="16:9"), m["seedance-1.5-pro"], regions=["CA"])) == ["ratio"]
    # an unnamed omni image is refused
    ref = ReferenceInput(prompt="make it dance", images=(image(),))
    assert fields(check(req(ref), m["seedance-2.0"], regions=["CA"])) == ["prompt"]


def test_powertokens_table_facts() -> None:
    m = pt.MODELS
    v2 = m[pt.SEEDANCE_2_0]
    # powertokens-seedance-2-0-post-videos.txt: seconds "-1" or "4".."15"; sizes 480p..1080p;
    # ratio includes adaptive; seed, watermark, generate_audio, return_last_frame
    assert v2.auto_duration
    assert v2.durations == frozenset(range(4, 16))
    assert v2.resolutions == frozenset({"480p", "720p", "1080p"})
    assert "adaptive" in v2.ratios
    assert v2.generate_audio and v2.return_last_frame and v2.seed and v2.watermark
    assert "reference" in v2.modes
    assert "1080p" not in m[pt.SEEDANCE_2_0_FAST].resolutions
    assert "reference" not in m[pt.SEEDANCE_1_0_PRO].modes
    assert not m[pt.SEEDANCE_1_0_PRO].auto_duration
    assert check(req(seconds="auto", ratio="adaptive", generate_audio=True, seed=3), v2) == []
    assert fields(check(req(seconds="auto"), m[pt.SEEDANCE_1_5_PRO])) == ["seconds"]
    assert fields(check(req(ReferenceInput(prompt="p", audios=(clip("audio", 3000),))), v2)) == ["references.audios"]
    assert set(pt.CATALOG.values()) <= set(m)
    assert set(ua.CATALOG.values()) <= set(ua.MODELS)
