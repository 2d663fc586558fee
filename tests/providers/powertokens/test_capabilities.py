"""PowerTokens capability table through `capabilities.check()`: what is allowed and what is not."""

from __future__ import annotations

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
from providers.capabilities import check
from providers.powertokens.models import CATALOG, MODELS, PRICES_USD_PER_SECOND

V20, FAST, V25 = "dreamina-seedance-2-0-260128", "dreamina-seedance-2-0-fast-260128", "dreamina-seedance-2-5-260628"
V15, V10, V10F = "seedance-1-5-pro-251215", "seedance-1-0-pro-250528", "seedance-1-0-pro-fast-251015"


def img(n: int = 1) -> Media:
    return Media(kind="image", url=f"https://e.x/{n}.png")


def vid(seconds: float | None = None) -> Media:
    return Media(kind="video", url="https://e.x/v.mp4", duration_ms=None if seconds is None else int(seconds * 1000))


def aud(seconds: float | None = None) -> Media:
    return Media(kind="audio", url="https://e.x/a.mp3", duration_ms=None if seconds is None else int(seconds * 1000))


TEXT = TextInput(prompt="p")
FIRST = FirstFrameInput(first_frame=img())
FIRST_LAST = FirstLastFrameInput(first_frame=img(1), last_frame=img(2))
KEYFRAMES = KeyframesInput(frames=(Keyframe(image=img(1)), Keyframe(image=img(2))))
REFERENCE = ReferenceInput(prompt="@image1", images=(img(),))


def fields(model_id: str, inp=TEXT, **kw) -> list[str]:
    request = GenerationRequest(model="x", input=inp, **kw)
    return [r.field for r in check(request, MODELS[model_id])]


# --- 2.0 family ----------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", [V20, FAST, V25])
@pytest.mark.parametrize("inp", [TEXT, FIRST, FIRST_LAST, REFERENCE], ids=["text", "first", "first_last", "reference"])
def test_v2_modes_allowed(model_id, inp):
    assert fields(model_id, inp) == []


@pytest.mark.parametrize("model_id", [V20, FAST, V25])
def test_keyframes_forbidden_everywhere_on_v2(model_id):
    assert fields(model_id, KEYFRAMES) == ["mode"]


def test_v20_everything_documented_at_once():
    assert (
        fields(
            V20,
            REFERENCE,
            seconds="auto",
            resolution="1080p",
            ratio="adaptive",
            seed=4294967295,
            watermark=True,
            generate_audio=True,
            return_last_frame=True,
        )
        == []
    )


@pytest.mark.parametrize("seconds,ok", [(4, True), (13, True), (15, True), (3, False), (16, False), (20, False), ("auto", True)])
def test_v20_durations(seconds, ok):
    assert (fields(V20, seconds=seconds) == []) is ok


@pytest.mark.parametrize("ratio", ["21:9", "16:9", "4:3", "1:1", "3:4", "9:16", "adaptive"])
def test_v20_ratios_include_adaptive(ratio):
    assert fields(V20, ratio=ratio) == []


def test_v20_4k_forbidden():
    assert fields(V20, resolution="4k") == ["resolution"]


def test_fast_has_no_1080p():
    assert fields(FAST, resolution="1080p") == ["resolution"]
    assert fields(FAST, resolution="720p") == []
    assert fields(FAST, resolution="480p") == []


@pytest.mark.parametrize("seconds,ok", [(30, True), (20, True), (31, False), (3, False)])
def test_v25_durations(seconds, ok):
    assert (fields(V25, seconds=seconds) == []) is ok


def test_nine_images_allowed_ten_forbidden():
    assert fields(V20, ReferenceInput(prompt="p", images=tuple(img(i) for i in range(9)))) == []
    assert fields(V20, ReferenceInput(prompt="p", images=tuple(img(i) for i in range(10)))) == ["references.images"]


def test_full_mix_of_fifteen_is_allowed():
    full = ReferenceInput(
        prompt="p",
        images=tuple(img(i) for i in range(9)),
        videos=(vid(5), vid(5), vid(5)),
        audios=(aud(5), aud(5), aud(5)),
    )
    assert fields(V20, full) == []


def test_four_videos_or_audios_forbidden():
    assert fields(V20, ReferenceInput(prompt="p", videos=(vid(),) * 4)) == ["references.videos"]
    assert fields(V20, ReferenceInput(prompt="p", images=(img(),), audios=(aud(),) * 4)) == ["references.audios"]


def test_audio_alone_forbidden():
    assert fields(V20, ReferenceInput(prompt="p", audios=(aud(3),))) == ["references.audios"]
    assert fields(V20, ReferenceInput(prompt="p", videos=(vid(3),), audios=(aud(3),))) == []


def test_reference_media_totals_fifteen_seconds():
    assert fields(V20, ReferenceInput(prompt="p", videos=(vid(10), vid(5)))) == []
    assert fields(V20, ReferenceInput(prompt="p", videos=(vid(10), vid(6)))) == ["references.videos"]
    assert fields(V20, ReferenceInput(prompt="p", images=(img(),), audios=(aud(8), aud(8)))) == ["references.audios"]


def test_placeholders_not_required():
    assert fields(V20, ReferenceInput(prompt="a dog", images=(img(1), img(2)))) == []


# --- 1.x -----------------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", [V15, V10, V10F])
def test_v1_text_and_first_frame_only(model_id):
    assert fields(model_id, TEXT) == []
    assert fields(model_id, FIRST) == []
    assert fields(model_id, FIRST_LAST) == ["mode"]
    assert fields(model_id, REFERENCE) == ["mode"]
    assert fields(model_id, KEYFRAMES) == ["mode"]


@pytest.mark.parametrize("model_id", [V15, V10, V10F])
def test_v1_has_no_auto_duration(model_id):
    assert fields(model_id, seconds="auto") == ["seconds"]


@pytest.mark.parametrize(
    "model_id,ok,bad",
    [(V15, [4, 12], [3, 13, 15]), (V10, [2, 12], [1, 13]), (V10F, [2, 12], [1, 13])],
)
def test_v1_durations(model_id, ok, bad):
    for s in ok:
        assert fields(model_id, seconds=s) == []
    for s in bad:
        assert fields(model_id, seconds=s) == ["seconds"]


def test_v1_audio_and_last_frame_only_on_15_pro():
    assert fields(V15, generate_audio=True, return_last_frame=True) == []
    assert fields(V10, generate_audio=True, return_last_frame=True) == ["generate_audio", "return_last_frame"]
    assert fields(V10F, generate_audio=True) == ["generate_audio"]
    assert fields(V10, generate_audio=False) == []  # asking for no audio is not asking for audio


def test_v1_resolutions():
    assert fields(V15, resolution="1080p") == []
    assert fields(V10, resolution="1080p") == []
    assert fields(V10F, resolution="1080p") == ["resolution"]
    assert fields(V10F, resolution="720p") == []


# --- table hygiene ---------------------------------------------------------------------------


def test_table_keys_match_model_ids_and_prices_fit_resolutions():
    assert all(caps.model_id == key for key, caps in MODELS.items())
    assert set(CATALOG) == {
        "seedance-2.0",
        "seedance-2.0-fast",
        "seedance-2.5",
        "seedance-1.5-pro",
        "seedance-1.0-pro",
        "seedance-1.0-fast",
    }
    for model_id, prices in PRICES_USD_PER_SECOND.items():
        assert set(prices) <= MODELS[model_id].resolutions
