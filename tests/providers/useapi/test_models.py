"""The useapi capability table against the doc (Apr 3 2026) and the Apr 17 Postman additions."""

from __future__ import annotations

import pytest

from providers.base import (
    FirstFrameInput,
    FirstLastFrameInput,
    GenerationRequest,
    Keyframe,
    KeyframesInput,
    Media,
    ModeInput,
    ReferenceInput,
    TextInput,
)
from providers.capabilities import check
from providers.useapi.models import CATALOG, MODELS


def img(w: int = 1280, h: int = 720) -> Media:
    return Media(kind="image", data=b"x", content_type="image/png", width=w, height=h)


def vid(ms: int) -> Media:
    return Media(kind="video", data=b"x", content_type="video/mp4", duration_ms=ms)


def aud(ms: int) -> Media:
    return Media(kind="audio", data=b"x", content_type="audio/wav", duration_ms=ms)


def req(inp: ModeInput, **kw: object) -> GenerationRequest:
    return GenerationRequest(model="x", input=inp, **kw)  # type: ignore[arg-type]


def fields(request: GenerationRequest, model: str, regions: list[str] | None = None) -> list[str]:
    return [r.field for r in check(request, MODELS[model], regions=regions)]


TEXT = TextInput(prompt="a cat")
FIRST = FirstFrameInput(first_frame=img())
FIRST_LAST = FirstLastFrameInput(first_frame=img(), last_frame=img())
KEYFRAMES = KeyframesInput(frames=(Keyframe(image=img()), Keyframe(image=img())))  # 5 s default
REFERENCE = ReferenceInput(prompt="@image1 waves", images=(img(),))


def test_catalog_maps_every_logical_name_to_a_model() -> None:
    assert set(CATALOG) >= {
        "seedance-2.0",
        "seedance-2.0-fast",
        "seedance-1.5-pro",
        "seedance-1.0-pro",
        "seedance-1.0-mini",
        "seedance-1.0-fast",
        "sora2",
    }
    assert all(model_id in MODELS for model_id in CATALOG.values())
    assert all(caps.model_id == key for key, caps in MODELS.items())


def test_shared_facts() -> None:
    for caps in MODELS.values():
        assert caps.ratios == frozenset({"21:9", "16:9", "4:3", "1:1", "3:4", "9:16"})
        assert not caps.ratio_with_images and caps.first_last_same_aspect
        assert not (caps.seed or caps.watermark or caps.generate_audio or caps.return_last_frame or caps.auto_duration)
        assert caps.max_prompt_chars == 5000
        assert caps.regions <= {"US", "CA"} and caps.regions


@pytest.mark.parametrize(
    ("model", "modes"),
    [
        ("seedance-2.0", {"text", "first_frame", "first_last_frame", "reference"}),
        ("seedance-2.0-fast", {"text", "first_frame", "first_last_frame", "reference"}),
        ("seedance-2.0-mini", {"text"}),
        ("seedance-1.5-pro", {"text", "first_frame", "first_last_frame"}),
        ("seedance-1.0-pro", {"text", "first_frame"}),
        ("seedance-1.0-mini", {"text", "first_frame", "keyframes"}),
        ("seedance-1.0-fast", {"text", "first_frame", "keyframes"}),
        ("sora2", {"text", "first_frame"}),
    ],
)
def test_modes_per_model(model: str, modes: set[str]) -> None:
    assert MODELS[model].modes == modes
    inputs: dict[str, ModeInput] = {
        "text": TEXT,
        "first_frame": FIRST,
        "first_last_frame": FIRST_LAST,
        "keyframes": KEYFRAMES,
        "reference": REFERENCE,
    }
    for mode, inp in inputs.items():
        assert ("mode" in fields(req(inp), model)) is (mode not in modes), (model, mode)


@pytest.mark.parametrize(
    ("model", "durations"),
    [
        ("seedance-2.0", set(range(4, 16))),
        ("seedance-2.0-fast", set(range(4, 16))),
        ("seedance-2.0-mini", set(range(4, 16))),
        ("seedance-1.5-pro", {5, 10, 12}),
        ("seedance-1.0-pro", {5, 10}),
        ("seedance-1.0-mini", {5, 10}),
        ("seedance-1.0-fast", {5, 10}),
        ("sora2", {4, 8, 12}),
    ],
)
def test_durations(model: str, durations: set[int]) -> None:
    assert MODELS[model].durations == durations
    for s in range(1, 20):
        assert ("seconds" in fields(req(TEXT, seconds=s), model)) is (s not in durations)


def test_allowed_combinations() -> None:
    assert check(req(TEXT, seconds=15, ratio="21:9", resolution="720p"), MODELS["seedance-2.0"], regions=["US"]) == []
    assert check(req(FIRST, seconds=10, resolution="1080p"), MODELS["seedance-1.5-pro"], regions=["US"]) == []
    assert check(req(FIRST_LAST, seconds=12), MODELS["seedance-1.5-pro"], regions=["CA"]) == []
    assert check(req(TEXT, resolution="1080p"), MODELS["seedance-1.0-pro"], regions=["CA"]) == []
    assert check(req(TEXT, seconds=8), MODELS["sora2"], regions=["US", "CA"]) == []
    assert check(req(TEXT, resolution="4k", seconds=4), MODELS["seedance-2.0"], regions=["US", "CA"]) == []


def test_forbidden_combinations() -> None:
    assert fields(req(KEYFRAMES), "seedance-2.0") == ["mode"]
    assert fields(req(TEXT, seconds=3), "seedance-1.5-pro") == ["seconds"]
    assert fields(req(TEXT, seconds="auto"), "seedance-2.0") == ["seconds"]
    assert fields(req(REFERENCE), "seedance-1.5-pro") == ["mode"]
    assert fields(req(FIRST_LAST), "sora2") == ["mode"]
    assert fields(req(TEXT, ratio="adaptive"), "seedance-2.0") == ["ratio"]
    assert fields(req(FIRST, ratio="16:9"), "seedance-2.0") == ["ratio"]
    assert fields(req(TEXT, seed=7, watermark=False, generate_audio=True, return_last_frame=True), "seedance-2.0") == [
        "generate_audio",
        "return_last_frame",
        "seed",
        "watermark",
    ]
    assert fields(req(TextInput(prompt="x" * 5001)), "seedance-2.0") == ["prompt"]


def test_regions_and_resolutions() -> None:
    assert fields(req(TEXT, resolution="4k"), "seedance-2.0", ["US"]) == ["resolution"]
    assert fields(req(TEXT, resolution="1080p"), "seedance-2.0", ["US"]) == ["resolution"]
    assert fields(req(TEXT, resolution="720p"), "seedance-2.0", ["US"]) == []
    assert fields(req(TEXT, resolution="1080p"), "seedance-2.0", ["CA"]) == []
    assert fields(req(TEXT, resolution="1080p"), "seedance-2.0-fast", ["CA"]) == ["resolution"]
    assert fields(req(TEXT, resolution="720p"), "seedance-1.0-pro", ["CA"]) == ["resolution"]  # always 1080p
    assert fields(req(TEXT, resolution="480p"), "seedance-1.5-pro") == ["resolution"]
    for ca_only in ("seedance-2.0-mini", "seedance-1.0-pro", "seedance-1.0-fast", "sora2"):
        assert fields(req(TEXT), ca_only, ["US"]) == ["model"], ca_only
    for both in ("seedance-2.0", "seedance-2.0-fast", "seedance-1.5-pro", "seedance-1.0-mini"):
        assert fields(req(TEXT), both, ["US"]) == [], both


def test_first_last_same_aspect() -> None:
    mismatched = FirstLastFrameInput(first_frame=img(1280, 720), last_frame=img(720, 1280))
    assert fields(req(mismatched), "seedance-1.5-pro") == ["last_frame"]


def test_reference_limits() -> None:
    ten_images = ReferenceInput(prompt=" ".join(f"@image{i}" for i in range(1, 11)), images=tuple(img() for _ in range(10)))
    assert fields(req(ten_images), "seedance-2.0") == ["references.images"]

    sixteen_s_of_video = ReferenceInput(prompt="@video1 @video2", videos=(vid(8000), vid(8000)))
    assert fields(req(sixteen_s_of_video), "seedance-2.0") == ["references.videos"]
    assert fields(req(ReferenceInput(prompt="@video1 @video2", videos=(vid(8000), vid(7400)))), "seedance-2.0") == []

    too_much_audio = ReferenceInput(prompt="@audio1 @audio2", audios=(aud(8000), aud(7100)))
    assert fields(req(too_much_audio), "seedance-2.0-fast") == ["references.audios"]

    four_videos = ReferenceInput(prompt="@video1 @video2 @video3 @video4", videos=tuple(vid(2000) for _ in range(4)))
    assert fields(req(four_videos), "seedance-2.0") == ["references.videos"]

    thirteen = ReferenceInput(
        prompt=" ".join([*(f"@image{i}" for i in range(1, 10)), "@video1 @video2 @audio1 @audio2"]),
        images=tuple(img() for _ in range(9)),
        videos=(vid(2000), vid(2000)),
        audios=(aud(2000), aud(2000)),
    )
    assert fields(req(thirteen), "seedance-2.0") == ["references"]

    missing_placeholder = ReferenceInput(prompt="@image1 waves at the camera", images=(img(), img()))
    assert fields(req(missing_placeholder), "seedance-2.0") == ["prompt"]

    audio_only = ReferenceInput(prompt="music video for @audio1", audios=(aud(5000),))
    assert fields(req(audio_only), "seedance-2.0") == []


def test_keyframe_limits() -> None:
    def frames(*seconds: int | None) -> KeyframesInput:
        return KeyframesInput(frames=tuple(Keyframe(image=img(), seconds=s) for s in seconds))

    assert fields(req(frames(5, None)), "seedance-1.0-mini") == []  # 5 s: default per frame
    assert fields(req(frames(6, 4, 1)), "seedance-1.0-fast") == []  # non-last sum 10
    assert fields(req(frames(3, 3)), "seedance-1.0-mini") == ["keyframes"]  # 3 s is no duration
    assert fields(req(frames(5)), "seedance-1.0-mini") == ["keyframes"]  # one frame
    assert fields(req(frames(*([1] * 11))), "seedance-1.0-mini") == ["keyframes"]  # 11 frames (sum 10 is fine)
    assert fields(req(frames(7, 3, 5)), "seedance-1.0-mini") == ["keyframes[0].seconds"]
    mixed = KeyframesInput(frames=(Keyframe(image=img(1280, 720)), Keyframe(image=img(720, 720))))
    assert fields(req(mixed), "seedance-1.0-mini") == ["keyframes"]
