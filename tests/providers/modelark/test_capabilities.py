"""The ModelArk capability table through `capabilities.check()` (pure): what each model
allows, and that every forbidden pair is refused with a reason before any upstream call."""

from __future__ import annotations

from typing import Any

import pytest

from providers.base import MODES, FirstFrameInput, FirstLastFrameInput, GenerationRequest, Keyframe, KeyframesInput, Media, ModeInput, ReferenceInput
from providers.capabilities import check
from providers.modelark import DESCRIPTOR
from providers.modelark.models import CATALOG, MODELS
from providers.registry import descriptor

from .harness import AUDIO_URL, IMAGE_URL, LAST_URL, VIDEO_URL, input_for

V20, FAST, MINI, V25 = (CATALOG[n] for n in ("seedance-2.0", "seedance-2.0-fast", "seedance-2.0-mini", "seedance-2.5"))
V15, V10, V10F = CATALOG["seedance-1.5-pro"], CATALOG["seedance-1.0-pro"], CATALOG["seedance-1.0-fast"]
LITE_T2V, LITE_I2V = CATALOG["seedance-1.0-lite-t2v"], CATALOG["seedance-1.0-lite-i2v"]

# §3.5 / §9.1, restated here so the table is checked against the contract, not against itself.
EXPECTED_MODES = {
    V20: {"text", "first_frame", "first_last_frame", "reference"},
    FAST: {"text", "first_frame", "first_last_frame", "reference"},
    MINI: {"text", "first_frame", "first_last_frame", "reference"},
    V25: {"text", "first_frame", "first_last_frame", "reference"},
    V15: {"text", "first_frame", "first_last_frame"},
    V10: {"text", "first_frame", "first_last_frame"},
    V10F: {"text", "first_frame"},
    LITE_T2V: {"text"},
    LITE_I2V: {"first_frame", "first_last_frame", "reference"},
}


def fields(model_id: str, inp: ModeInput, **kw: Any) -> list[str]:
    return [r.field for r in check(GenerationRequest(model="x", input=inp, **kw), MODELS[model_id])]


def test_descriptor_is_registered_with_the_table() -> None:
    assert descriptor("modelark") is DESCRIPTOR
    assert DESCRIPTOR.models is MODELS and DESCRIPTOR.catalog is CATALOG
    assert set(CATALOG.values()) == set(MODELS) == set(EXPECTED_MODES)
    assert DESCRIPTOR.adapter().provider_type == "modelark"


@pytest.mark.parametrize("model_id", list(EXPECTED_MODES))
def test_modes_per_model(model_id: str) -> None:
    assert set(MODELS[model_id].modes) == EXPECTED_MODES[model_id]


FORBIDDEN = [(m, mode) for m in EXPECTED_MODES for mode in MODES if mode not in EXPECTED_MODES[m]]


@pytest.mark.parametrize("model_id,mode", FORBIDDEN, ids=[f"{m}-{k}" for m, k in FORBIDDEN])
def test_every_forbidden_mode_is_refused_with_a_reason(model_id: str, mode: str) -> None:
    if mode == "keyframes":
        inp: ModeInput = KeyframesInput(frames=(Keyframe(image=IMAGE_URL), Keyframe(image=LAST_URL)))
    elif mode == "reference":
        inp = ReferenceInput(prompt="Image 1", images=(IMAGE_URL,))
    else:
        inp = input_for(mode, MODELS[V20])
    reasons = check(GenerationRequest(model="x", input=inp), MODELS[model_id])
    assert [r.field for r in reasons] == ["mode"]
    assert mode in reasons[0].message and model_id in reasons[0].message


@pytest.mark.parametrize(
    "model_id,durations,auto",
    [(V20, range(4, 16), True), (FAST, range(4, 16), True), (MINI, range(4, 16), True), (V25, range(4, 31), True), (V15, range(4, 13), True)]
    + [(m, range(2, 13), False) for m in (V10, V10F, LITE_T2V, LITE_I2V)],
)
def test_durations(model_id: str, durations: range, auto: bool) -> None:
    inp = input_for(sorted(EXPECTED_MODES[model_id])[-1], MODELS[model_id])
    for seconds in range(32):
        assert (fields(model_id, inp, seconds=seconds) == []) == (seconds in durations), seconds
    assert (fields(model_id, inp, seconds="auto") == []) is auto


@pytest.mark.parametrize(
    "model_id,resolutions",
    [
        (V20, {"480p", "720p", "1080p", "4k"}),  # §9.1 "follow this table" ([CONFLICT] over time)
        (FAST, {"480p", "720p"}),
        (MINI, {"480p", "720p"}),
        (V25, {"480p", "720p"}),  # [CONFLICT] S1a vs S7: the API reference's narrower list
        (V15, {"480p", "720p", "1080p"}),  # newer revisions win over S1c
        (V10, {"480p", "720p", "1080p"}),
        (V10F, {"480p", "720p", "1080p"}),
        (LITE_T2V, {"480p", "720p", "1080p"}),
        (LITE_I2V, {"480p", "720p", "1080p"}),
    ],
)
def test_resolutions(model_id: str, resolutions: set[str]) -> None:
    inp = input_for(sorted(EXPECTED_MODES[model_id])[0], MODELS[model_id])
    for resolution in ("480p", "720p", "1080p", "4k"):
        assert (fields(model_id, inp, resolution=resolution) == []) == (resolution in resolutions), resolution


@pytest.mark.parametrize("model_id", list(EXPECTED_MODES))
def test_ratios(model_id: str) -> None:
    inp = input_for(sorted(EXPECTED_MODES[model_id])[0], MODELS[model_id])
    for ratio in ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9"):
        assert fields(model_id, inp, ratio=ratio) == []
    assert fields(model_id, inp, ratio="9:21") == ["ratio"]  # no such ratio (§9.1)
    # adaptive: 2.x and 1.5 pro; the 1.0 series refuse it in T2V / reference, default to it for I2V
    assert (fields(model_id, inp, ratio="adaptive") == []) is (model_id in (V20, FAST, MINI, V25, V15))


@pytest.mark.parametrize("model_id", list(EXPECTED_MODES))
def test_audio_and_switches(model_id: str) -> None:
    inp = input_for(sorted(EXPECTED_MODES[model_id])[0], MODELS[model_id])
    has_audio = model_id in (V20, FAST, MINI, V25, V15)  # §2 generate_audio
    assert (fields(model_id, inp, generate_audio=True) == []) is has_audio
    assert fields(model_id, inp, generate_audio=False, return_last_frame=True, watermark=True, seed=4294967295) == []


def test_keyframes_are_refused_on_every_model() -> None:
    inp = KeyframesInput(frames=(Keyframe(image=IMAGE_URL), Keyframe(image=LAST_URL)))
    assert all(fields(m, inp) == ["mode"] for m in MODELS)


# --- references (§3.3, §3.4, §3.5) -----------------------------------------------------------------


def refs(images: int = 0, videos: int = 0, audios: int = 0, video_s: float = 4, audio_s: float = 4) -> ReferenceInput:
    return ReferenceInput(
        prompt="Image 1",
        images=(IMAGE_URL,) * images,
        videos=(Media(kind="video", url="https://v.example/v.mp4", duration_ms=int(video_s * 1000)),) * videos,
        audios=(Media(kind="audio", url="https://a.example/a.mp3", duration_ms=int(audio_s * 1000)),) * audios,
    )


@pytest.mark.parametrize("model_id", [V20, FAST, MINI])
def test_v20_family_references(model_id: str) -> None:
    assert fields(model_id, refs(9, 3, 3)) == []
    assert fields(model_id, refs(videos=1)) == [] and fields(model_id, refs(videos=1, audios=1)) == []
    assert fields(model_id, refs(10)) == ["references.images"]
    assert fields(model_id, refs(1, 4, video_s=3)) == ["references.videos"]
    assert fields(model_id, refs(1, 0, 4, audio_s=3)) == ["references.audios"]
    assert fields(model_id, refs(audios=1)) == ["references.audios"]  # audio never alone
    assert fields(model_id, refs(1, 3, video_s=5.1)) == ["references.videos"]  # <= 15 s of video in all
    assert fields(model_id, refs(1, 0, 2, audio_s=8)) == ["references.audios"]  # <= 15 s of audio in all


def test_v25_references() -> None:
    assert fields(V25, refs(30, 10, 10, video_s=3, audio_s=3)) == []
    assert fields(V25, refs(audios=1)) == []  # 2.5 allows audio alone
    assert fields(V25, refs(31)) == ["references.images"]
    assert fields(V25, refs(1, 10, video_s=3.1)) == ["references.videos"]  # <= 30 s


def test_lite_i2v_takes_up_to_four_images_only() -> None:
    assert fields(LITE_I2V, refs(4)) == []
    assert fields(LITE_I2V, refs(5)) == ["references.images", "references"]
    assert "references.videos" in fields(LITE_I2V, refs(1, 1))
    assert "references.audios" in fields(LITE_I2V, refs(1, 0, 1))


# --- [CONFLICT] image side bounds are closed: 300 and 6000 px allowed (§3.3) ------------------------


@pytest.mark.parametrize("side,ok", [(299, False), (300, True), (6000, True), (6001, False)])
def test_image_sides(side: int, ok: bool) -> None:
    image = Media(kind="image", url="https://i.example/x.png", width=side, height=max(300, min(side, 6000)))
    assert (fields(V20, FirstFrameInput(first_frame=image)) == []) is ok
    assert (fields(V10, FirstLastFrameInput(first_frame=image, last_frame=IMAGE_URL)) == []) is ok


def test_the_catalog_names() -> None:
    assert CATALOG == {
        "seedance-2.0": "dreamina-seedance-2-0-260128",
        "seedance-2.0-fast": "dreamina-seedance-2-0-fast-260128",
        "seedance-2.0-mini": "dreamina-seedance-2-0-mini-260615",
        "seedance-2.5": "dreamina-seedance-2-5-260628",
        "seedance-1.5-pro": "seedance-1-5-pro-251215",
        "seedance-1.0-pro": "seedance-1-0-pro-250528",
        "seedance-1.0-fast": "seedance-1-0-pro-fast-251015",
        "seedance-1.0-lite-t2v": "seedance-1-0-lite-t2v-250428",
        "seedance-1.0-lite-i2v": "seedance-1-0-lite-i2v-250428",
    }


def test_the_harness_inputs_pass_the_table() -> None:
    # the inputs the HTTP tests run for every allowed pair are ones the table accepts
    for model_id, modes in EXPECTED_MODES.items():
        for mode in modes:
            assert check(GenerationRequest(model="x", input=input_for(mode, MODELS[model_id]), seconds=5), MODELS[model_id]) == []
    assert input_for("reference", MODELS[V20]) == ReferenceInput(
        prompt="Image 1 dances like Video 1 to Audio 1; Image 2 is the backdrop", images=(IMAGE_URL, LAST_URL), videos=(VIDEO_URL,), audios=(AUDIO_URL,)
    )
