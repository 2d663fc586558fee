"""Golden request bodies for PowerTokens `POST /v1/videos` (UPSTREAMS 2.2 / 2.3, seed doc)."""

from __future__ import annotations

import base64
import hashlib

import msgspec
import pytest

from providers.base import (
    FirstFrameInput,
    FirstLastFrameInput,
    GenerationRequest,
    Keyframe,
    KeyframesInput,
    Media,
    ReferenceInput,
    SubmitContext,
    TextInput,
)
from providers.powertokens.adapter import PowerTokensAdapter, safety_identifier
from providers.powertokens.models import BODY_STYLE, CATALOG, MODELS, body_style

V20 = "dreamina-seedance-2-0-260128"
V15 = "seedance-1-5-pro-251215"
V10 = "seedance-1-0-pro-250528"
V10F = "seedance-1-0-pro-fast-251015"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 12

adapter = PowerTokensAdapter()


def img(url: str) -> Media:
    return Media(kind="image", url=url)


def body(request: GenerationRequest, model_id: str = V20) -> dict:
    call = adapter.build_submit(request, model_id, {}, SubmitContext())
    assert (call.method, call.path, call.content) == ("POST", "/v1/videos", None)
    return call.json


def req(inp, **kw) -> GenerationRequest:
    return GenerationRequest(model="seedance-2.0", input=inp, **kw)


# --- 2.0 family -------------------------------------------------------------------------


def test_text_minimal_sends_only_model_and_prompt_item():
    assert body(req(TextInput(prompt="a cat surfing"))) == {
        "model": V20,
        "media": [{"type": "text", "text": "a cat surfing"}],
    }


def test_text_every_option_spelled_as_upstream():
    got = body(
        req(
            TextInput(prompt="p"),
            seconds=5,
            resolution="1080p",
            ratio="adaptive",
            seed=42,
            watermark=False,
            generate_audio=False,
            return_last_frame=True,
            end_user="user_123",
        )
    )
    assert got == {
        "model": V20,
        "media": [{"type": "text", "text": "p"}],
        "seconds": "5",
        "size": "1080p",
        "ratio": "adaptive",
        "seed": 42,
        "watermark": False,
        "generate_audio": False,
        "return_last_frame": True,
        "safety_identifier": "user_123",
    }


def test_seconds_is_a_string_on_the_wire():
    call = adapter.build_submit(req(TextInput(prompt="p"), seconds=12), V20, {}, SubmitContext())
    raw = msgspec.json.encode(call.json)
    assert b'"seconds":"12"' in raw
    assert isinstance(call.json["seconds"], str)


def test_auto_seconds_is_minus_one_string():
    assert body(req(TextInput(prompt="p"), seconds="auto"))["seconds"] == "-1"


def test_false_switches_are_sent_none_are_omitted():
    got = body(req(TextInput(prompt="p"), watermark=False, seed=0))
    assert got["watermark"] is False and got["seed"] == 0
    assert not {"generate_audio", "return_last_frame", "seconds", "size", "ratio", "safety_identifier"} & got.keys()


def test_first_frame_with_prompt_text_first():
    got = body(req(FirstFrameInput(first_frame=img("https://e.x/f.png"), prompt="go"), seconds="auto", ratio="adaptive"))
    assert got == {
        "model": V20,
        "media": [{"type": "text", "text": "go"}, {"type": "first_frame", "url": "https://e.x/f.png"}],
        "seconds": "-1",
        "ratio": "adaptive",
    }


def test_first_frame_without_prompt_has_no_text_item():
    got = body(req(FirstFrameInput(first_frame=img("https://e.x/f.png"))))
    assert got["media"] == [{"type": "first_frame", "url": "https://e.x/f.png"}]


def test_first_last_frame_bytes_become_data_urls():
    first = Media(kind="image", data=PNG, content_type="image/png")
    last = Media(kind="image", data=JPEG)  # no content type: sniffed
    got = body(req(FirstLastFrameInput(first_frame=first, last_frame=last, prompt="morph")))
    assert got["media"] == [
        {"type": "text", "text": "morph"},
        {"type": "first_frame", "url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
        {"type": "last_frame", "url": "data:image/jpeg;base64," + base64.b64encode(JPEG).decode()},
    ]


def test_unrecognised_bytes_without_type_are_octet_stream():
    odd = Media(kind="image", data=b"????")
    got = body(req(FirstFrameInput(first_frame=odd)))
    assert got["media"][0]["url"] == "data:application/octet-stream;base64,Pz8/Pw=="


def test_reference_matches_the_seed_doc_example():
    """The request shown on the stored PowerTokens reference page, rebuilt from vidgate's side."""
    request = req(
        ReferenceInput(
            prompt="Supplementary prompt",
            images=(img("https://example.com/img1.jpg"),),
            videos=(Media(kind="video", url="https://example.com/motion.mp4"),),
            audios=(Media(kind="audio", url="https://example.com/audio.mp3"),),
        ),
        seconds="auto",
        resolution="720p",
        ratio="16:9",
        generate_audio=False,
        return_last_frame=False,
        end_user="user_123",
    )
    assert body(request) == {
        "model": V20,
        "media": [
            {"type": "text", "text": "Supplementary prompt"},
            {"type": "reference_image", "url": "https://example.com/img1.jpg"},
            {"type": "reference_video", "url": "https://example.com/motion.mp4"},
            {"type": "reference_audio", "url": "https://example.com/audio.mp3"},
        ],
        "seconds": "-1",
        "size": "720p",
        "ratio": "16:9",
        "generate_audio": False,
        "return_last_frame": False,
        "safety_identifier": "user_123",
    }


def test_reference_order_images_videos_audios_and_within_kind_kept():
    request = req(
        ReferenceInput(
            prompt="@image1 meets @image2, moves like @video1, sounds like @audio2",
            images=(
                img("https://e.x/i1.png"),
                Media(kind="image", data=PNG, content_type="image/png"),
                img("https://e.x/i3.png"),
            ),
            videos=(Media(kind="video", url="https://e.x/v1.mp4"), Media(kind="video", url="https://e.x/v2.mp4")),
            audios=(Media(kind="audio", url="https://e.x/a1.mp3"), Media(kind="audio", data=b"RIFF\0\0\0\0WAVEfmt ")),
        )
    )
    media = body(request)["media"]
    assert [m["type"] for m in media] == [
        "text",
        "reference_image",
        "reference_image",
        "reference_image",
        "reference_video",
        "reference_video",
        "reference_audio",
        "reference_audio",
    ]
    assert media[1]["url"] == "https://e.x/i1.png"
    assert media[2]["url"].startswith("data:image/png;base64,")
    assert media[3]["url"] == "https://e.x/i3.png"
    assert [m["url"] for m in media[4:6]] == ["https://e.x/v1.mp4", "https://e.x/v2.mp4"]
    assert media[6]["url"] == "https://e.x/a1.mp3"
    assert media[7]["url"].startswith("data:audio/wav;base64,")
    assert all(set(m) == {"type", "url"} for m in media[1:])


def test_reference_with_empty_prompt_sends_media_only():
    got = body(req(ReferenceInput(prompt="", images=(img("https://e.x/i.png"),))))
    assert got["media"] == [{"type": "reference_image", "url": "https://e.x/i.png"}]


def test_media_kind_must_match_its_slot():
    with pytest.raises(ValueError, match="reference_image must be image"):
        body(req(ReferenceInput(prompt="p", images=(Media(kind="video", url="https://e.x/v.mp4"),))))


def test_keyframes_cannot_be_expressed():
    frames = (Keyframe(image=img("https://e.x/1.png")), Keyframe(image=img("https://e.x/2.png")))
    with pytest.raises(ValueError, match="keyframes"):
        body(req(KeyframesInput(frames=frames)))


def test_empty_text_prompt_is_refused_not_sent_empty():
    with pytest.raises(ValueError, match="minItems"):
        body(req(TextInput(prompt="")))


def test_long_end_user_is_hashed_not_truncated():
    long_a = "tenant-42/" + "x" * 60 + "/user-1"
    long_b = "tenant-42/" + "x" * 60 + "/user-2"
    got = body(req(TextInput(prompt="p"), end_user=long_a))["safety_identifier"]
    assert got == hashlib.sha256(long_a.encode()).hexdigest()
    assert len(got) == 64
    assert got == safety_identifier(long_a)  # stable
    assert got != safety_identifier(long_b)  # a shared prefix does not merge users
    assert got != long_a[:64]


def test_end_user_of_exactly_64_chars_is_sent_verbatim():
    exact = "u" * 64
    assert safety_identifier(exact) == exact


def test_callback_and_refs_are_not_sent():
    call = adapter.build_submit(req(TextInput(prompt="p")), V20, {}, SubmitContext(callback_url="https://gw/cb", callback_ref="r"))
    assert "callback_url" not in call.json


# --- 1.x ----------------------------------------------------------------------------------


def test_v15_text_body():
    got = body(
        req(
            TextInput(prompt="a lighthouse"),
            seconds=10,
            resolution="720p",
            ratio="16:9",
            seed=7,
            watermark=True,
            generate_audio=True,
            return_last_frame=True,
            end_user="user_123",
        ),
        V15,
    )
    assert got == {
        "model": V15,
        "prompt": "a lighthouse",
        "seconds": "10",
        "size": "720p",
        "ratio": "16:9",
        "seed": 7,
        "watermark": True,
        "generate_audio": True,
        "return_last_frame": True,
    }  # no `media`, no `safety_identifier` (2.0-series only)


def test_v10_first_frame_url_in_image():
    got = body(req(FirstFrameInput(first_frame=img("https://e.x/f.png"), prompt="zoom"), seconds=2), V10)
    assert got == {"model": V10, "prompt": "zoom", "image": "https://e.x/f.png", "seconds": "2"}


def test_v10_fast_first_frame_bytes_without_prompt():
    got = body(req(FirstFrameInput(first_frame=Media(kind="image", data=PNG))), V10F)
    assert got == {"model": V10F, "image": "data:image/png;base64," + base64.b64encode(PNG).decode()}


@pytest.mark.parametrize(
    "inp",
    [
        FirstLastFrameInput(first_frame=img("https://e.x/1.png"), last_frame=img("https://e.x/2.png")),
        ReferenceInput(prompt="p", images=(img("https://e.x/1.png"),)),
    ],
    ids=["first_last_frame", "reference"],
)
def test_v1_modes_beyond_text_and_first_frame_are_refused(inp):
    with pytest.raises(ValueError, match=r"1\.x"):
        body(req(inp), V15)


def test_body_style_table_and_family_fallback():
    assert {m: body_style(m) for m in MODELS} == BODY_STYLE
    assert body_style("dreamina-seedance-2-0-mini-260615") == "media"
    assert body_style("seedance-1-5-pro-260101") == "prompt"


def test_catalog_points_at_known_models_and_omits_what_powertokens_lacks():
    assert set(CATALOG.values()) <= set(MODELS)
    assert CATALOG["seedance-2.0"] == V20
    assert CATALOG["seedance-1.5-pro"] == V15
    assert CATALOG["seedance-1.0-pro"] == V10
    assert CATALOG["seedance-1.0-fast"] == V10F
    assert not {"seedance-1.0-mini", "sora2", "sora-2"} & CATALOG.keys()


# --- other calls --------------------------------------------------------------------------


def test_poll_cancel_content_calls_and_auth():
    assert adapter.auth_headers("sk-1") == {"Authorization": "Bearer sk-1"}
    assert adapter.uploads(req(TextInput(prompt="p")), SubmitContext()) == []
    poll = adapter.build_poll("cgt-20250331175019-68d9t")
    assert (poll.method, poll.path) == ("GET", "/v1/videos/cgt-20250331175019-68d9t")
    cancel = adapter.build_cancel("task_abc123")
    assert cancel is not None and (cancel.method, cancel.path) == ("DELETE", "/v1/videos/task_abc123")
    content = adapter.content_call("task_abc123", None)  # type: ignore[arg-type]
    assert content is not None and (content.method, content.path) == ("GET", "/v1/videos/task_abc123/content")


@pytest.mark.parametrize("bad", ["", "../admin", "a/b", "a b", "a?b=1", "a%2Fb", "id\n", "é", "x" * 201])
def test_ids_outside_the_documented_alphabet_are_refused(bad):
    for build in (adapter.build_poll, adapter.build_cancel, lambda i: adapter.content_call(i, None)):
        with pytest.raises(ValueError):
            build(bad)


def test_parse_upload_is_unreachable():
    import httpx

    with pytest.raises(RuntimeError):
        adapter.parse_upload(httpx.Response(200))


def test_v10_explicit_false_audio_switches_are_not_sent_true_is_refused():
    got = body(req(TextInput(prompt="p"), generate_audio=False, return_last_frame=False), V10)
    assert got == {"model": V10, "prompt": "p"}
    with pytest.raises(ValueError, match=r"1\.5 pro"):
        body(req(TextInput(prompt="p"), generate_audio=True), V10F)
    assert body(req(TextInput(prompt="p"), generate_audio=False), V15)["generate_audio"] is False
