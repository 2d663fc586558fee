"""Golden tests: the exact calls the adapter builds, derived from the useapi doc examples
(`upstreams/useapi-dreamina-post-videos.txt`, Apr 3 2026, section "Examples")."""

from __future__ import annotations

import msgspec
import pytest

from providers.base import (
    FirstFrameInput,
    FirstLastFrameInput,
    GenerationRequest,
    HttpCall,
    Keyframe,
    KeyframesInput,
    Media,
    ReferenceInput,
    SubmitContext,
    TextInput,
)
from providers.useapi.adapter import UseapiAdapter

ACCOUNT = "CA:user@example.com"
ACCOUNT_SEG = "CA%3Auser%40example.com"
CTX = SubmitContext(account=ACCOUNT)
# Refs in the documented format (UPSTREAMS 1.3 / doc examples).
IMG1 = "CA:user@example.com-image:w685:h900:s86866-uri:tos-useast5-i-wopfjsm1ax-tx/abc123"
IMG2 = "CA:user@example.com-image:w2560:h1440:s580914-uri:tos-alisg-i-wopfjsm1ax-sg/abc123"
VID1 = "CA:user@example.com-video:w1070:h1904:s1656759:d5880-vid:v10762g50003d77lv1nog65ie0vi8oh0"
AUD1 = "CA:user@example.com-audio:w480:h360:s562605:d14040-vid:v10762g50003d77l5uvog65nl4esjs2g"

adapter = UseapiAdapter()


def png(width: int = 1280, height: int = 720) -> Media:
    return Media(kind="image", data=b"\x89PNG-fake", content_type="image/png", width=width, height=height)


def mp4(ms: int = 5880) -> Media:
    return Media(kind="video", data=b"fake-mp4", content_type="video/mp4", duration_ms=ms)


def wav(ms: int = 14040) -> Media:
    return Media(kind="audio", data=b"RIFF-fake", content_type="audio/wav", duration_ms=ms)


def submit_body(request: GenerationRequest, model_id: str, refs: dict[str, str], ctx: SubmitContext = CTX) -> dict:
    call = adapter.build_submit(request, model_id, refs, ctx)
    assert (call.method, call.path, call.content) == ("POST", "/videos", None)
    # What goes on the wire is JSON: compare the decoded encoding, not a Python object.
    return msgspec.json.decode(msgspec.json.encode(call.json))


# ---------------------------------------------------------------------------
# POST /videos bodies, one per mode
# ---------------------------------------------------------------------------


def test_text_mode_matches_doc_example_plus_pinned_account() -> None:
    request = GenerationRequest(model="seedance-2.0", input=TextInput(prompt="A serene mountain landscape at sunset"), seconds=5, ratio="16:9")
    assert submit_body(request, "seedance-2.0", {}) == {
        "account": "CA:user@example.com",
        "prompt": "A serene mountain landscape at sunset",
        "model": "seedance-2.0",
        "ratio": "16:9",
        "duration": 5,
    }


def test_text_mode_sends_resolution_and_webhook() -> None:
    request = GenerationRequest(model="seedance-1.5-pro", input=TextInput(prompt="Two cool cats"), seconds=10, ratio="9:16", resolution="1080p")
    ctx = SubmitContext(account=ACCOUNT, callback_url="https://vidgate.example/cb/useapi/tok_abc", callback_ref="video_1")
    body = submit_body(request, "seedance-1.5-pro", {}, ctx)
    assert body == {
        "account": "CA:user@example.com",
        "prompt": "Two cool cats",
        "model": "seedance-1.5-pro",
        "ratio": "9:16",
        "duration": 10,
        "resolution": "1080p",
        "replyUrl": "https://vidgate.example/cb/useapi/tok_abc",
        "replyRef": "video_1",
    }
    assert type(body["duration"]) is int


def test_unset_fields_are_omitted_so_upstream_defaults_apply() -> None:
    request = GenerationRequest(model="seedance-2.0", input=TextInput(prompt="hi"))
    assert submit_body(request, "seedance-2.0", {}, SubmitContext()) == {"prompt": "hi", "model": "seedance-2.0"}


def test_model_is_the_provider_model_id_not_the_logical_name() -> None:
    request = GenerationRequest(model="some-logical-alias", input=TextInput(prompt="hi"), seconds=8)
    assert submit_body(request, "sora2", {})["model"] == "sora2"


def test_first_frame_matches_doc_example() -> None:
    request = GenerationRequest(
        model="seedance-2.0",
        input=FirstFrameInput(first_frame=png(685, 900), prompt="Camera slowly pans across the scene"),
        seconds=5,
    )
    assert submit_body(request, "seedance-2.0", {"first_frame": IMG1}) == {
        "account": "CA:user@example.com",
        "prompt": "Camera slowly pans across the scene",
        "model": "seedance-2.0",
        "firstFrameRef": IMG1,
        "duration": 5,
    }


def test_first_frame_without_prompt_and_ratio_never_sent_with_an_image() -> None:
    # The capability check rejects this ratio first; the adapter must still never send it.
    request = GenerationRequest(model="sora2", input=FirstFrameInput(first_frame=png()), seconds=4, ratio="16:9")
    body = submit_body(request, "sora2", {"first_frame": IMG1})
    assert body == {"account": ACCOUNT, "model": "sora2", "firstFrameRef": IMG1, "duration": 4}


def test_first_last_frame() -> None:
    request = GenerationRequest(
        model="seedance-1.5-pro",
        input=FirstLastFrameInput(first_frame=png(), last_frame=png(), prompt="Day turns to night"),
        seconds=5,
        ratio="1:1",
        resolution="720p",
    )
    assert submit_body(request, "seedance-1.5-pro", {"first_frame": IMG1, "last_frame": IMG2}) == {
        "account": "CA:user@example.com",
        "prompt": "Day turns to night",
        "model": "seedance-1.5-pro",
        "duration": 5,
        "resolution": "720p",
        "firstFrameRef": IMG1,
        "endFrameRef": IMG2,
    }


def test_keyframes_number_from_one_without_top_level_prompt() -> None:
    request = GenerationRequest(
        model="seedance-1.0-mini",
        input=KeyframesInput(
            frames=(
                Keyframe(image=png(), prompt="a seed", seconds=3),
                Keyframe(image=png(), prompt="a sprout", seconds=2),
                Keyframe(image=png()),
            )
        ),
        ratio="16:9",
    )
    refs = {"keyframes.0": "REF-A", "keyframes.1": "REF-B", "keyframes.2": "REF-C"}
    assert submit_body(request, "seedance-1.0-mini", refs) == {
        "account": "CA:user@example.com",
        "model": "seedance-1.0-mini",
        "frame_1_imageRef": "REF-A",
        "frame_1_prompt": "a seed",
        "frame_1_duration": 3,
        "frame_2_imageRef": "REF-B",
        "frame_2_prompt": "a sprout",
        "frame_2_duration": 2,
        "frame_3_imageRef": "REF-C",
    }


def test_ten_keyframes_reach_frame_10() -> None:
    frames = tuple(Keyframe(image=png(), seconds=1) for _ in range(10))
    request = GenerationRequest(model="seedance-1.0-fast", input=KeyframesInput(frames=frames), seconds=9)
    refs = {f"keyframes.{i}": f"R{i}" for i in range(10)}
    body = submit_body(request, "seedance-1.0-fast", refs)
    assert body["frame_10_imageRef"] == "R9" and body["frame_10_duration"] == 1
    assert body["duration"] == 9
    assert "prompt" not in body
    assert sorted(k for k in body if k.endswith("_imageRef")) == sorted(f"frame_{n}_imageRef" for n in range(1, 11))


def test_reference_matches_doc_omni_example_but_without_ratio() -> None:
    # The doc's Omni example also sends "ratio": "16:9" beside omni_1_imageRef; its own rule
    # ("ratio cannot be specified when image refs are provided") forbids that, and so do we.
    request = GenerationRequest(
        model="seedance-2.0",
        input=ReferenceInput(prompt="@image1 slowly moving forward while @audio1 plays in background", images=(png(),), audios=(wav(),)),
        seconds=4,
        ratio="16:9",
    )
    assert submit_body(request, "seedance-2.0", {"images.0": IMG2, "audios.0": AUD1}) == {
        "account": "CA:user@example.com",
        "prompt": "@image1 slowly moving forward while @audio1 plays in background",
        "model": "seedance-2.0",
        "duration": 4,
        "omni_1_imageRef": IMG2,
        "omni_1_audioRef": AUD1,
    }


def test_reference_placeholder_numbering_per_kind() -> None:
    request = GenerationRequest(
        model="seedance-2.0-fast",
        input=ReferenceInput(
            prompt="@image1 and @image2 dance like @video1 and @video2 to @audio1",
            images=(png(), png()),
            videos=(mp4(), mp4()),
            audios=(wav(),),
        ),
        seconds=15,
    )
    refs = {"images.0": "I1", "images.1": "I2", "videos.0": "V1", "videos.1": "V2", "audios.0": "A1"}
    body = submit_body(request, "seedance-2.0-fast", refs)
    assert {k: v for k, v in body.items() if k.startswith("omni_")} == {
        "omni_1_imageRef": "I1",
        "omni_2_imageRef": "I2",
        "omni_1_videoRef": "V1",
        "omni_2_videoRef": "V2",
        "omni_1_audioRef": "A1",
    }
    assert body["prompt"] == "@image1 and @image2 dance like @video1 and @video2 to @audio1"


def test_reference_without_images_keeps_the_ratio() -> None:
    request = GenerationRequest(model="seedance-2.0", input=ReferenceInput(prompt="a dancer like @video1", videos=(mp4(),)), ratio="9:16")
    body = submit_body(request, "seedance-2.0", {"videos.0": VID1})
    assert body == {
        "account": ACCOUNT,
        "prompt": "a dancer like @video1",
        "model": "seedance-2.0",
        "ratio": "9:16",
        "omni_1_videoRef": VID1,
    }


def test_missing_ref_is_a_clear_error() -> None:
    request = GenerationRequest(model="seedance-2.0", input=FirstFrameInput(first_frame=png()))
    with pytest.raises(ValueError, match="first_frame"):
        adapter.build_submit(request, "seedance-2.0", {}, CTX)


def test_auto_duration_never_reaches_the_wire() -> None:
    request = GenerationRequest(model="seedance-2.0", input=TextInput(prompt="x"), seconds="auto")
    with pytest.raises(ValueError, match="auto"):
        adapter.build_submit(request, "seedance-2.0", {}, CTX)


# ---------------------------------------------------------------------------
# Uploads, paths, auth
# ---------------------------------------------------------------------------


def test_uploads_one_raw_post_per_medium_with_stable_keys() -> None:
    request = GenerationRequest(
        model="seedance-2.0",
        input=ReferenceInput(prompt="@image1 @image2 @video1 @audio1", images=(png(), png()), videos=(mp4(),), audios=(wav(),)),
    )
    calls = adapter.uploads(request, CTX)
    assert [key for key, _ in calls] == ["images.0", "images.1", "videos.0", "audios.0"]
    assert calls[2][1] == HttpCall(method="POST", path=f"/assets/{ACCOUNT_SEG}", content=b"fake-mp4", headers={"Content-Type": "video/mp4"})
    assert all(call.json is None for _, call in calls)
    assert calls[3][1].headers == {"Content-Type": "audio/wav"}


def test_upload_keys_for_frame_modes() -> None:
    flf = GenerationRequest(model="m", input=FirstLastFrameInput(first_frame=png(), last_frame=png()))
    assert [k for k, _ in adapter.uploads(flf, CTX)] == ["first_frame", "last_frame"]
    kf = GenerationRequest(model="m", input=KeyframesInput(frames=(Keyframe(image=png()), Keyframe(image=png()))))
    assert [k for k, _ in adapter.uploads(kf, CTX)] == ["keyframes.0", "keyframes.1"]
    assert adapter.uploads(GenerationRequest(model="m", input=TextInput(prompt="x")), SubmitContext()) == []


def test_uploads_need_an_account() -> None:
    request = GenerationRequest(model="m", input=FirstFrameInput(first_frame=png()))
    with pytest.raises(ValueError, match="account"):
        adapter.uploads(request, SubmitContext())


def test_uploads_refuse_url_media_and_missing_content_type() -> None:
    by_url = GenerationRequest(model="m", input=FirstFrameInput(first_frame=Media(kind="image", url="https://x.example/a.png")))
    with pytest.raises(ValueError, match="bytes"):
        adapter.uploads(by_url, CTX)
    untyped = GenerationRequest(model="m", input=FirstFrameInput(first_frame=Media(kind="image", data=b"x")))
    with pytest.raises(ValueError, match="Content-Type"):
        adapter.uploads(untyped, CTX)


def test_ids_are_one_percent_encoded_path_segment() -> None:
    jobid = "j0223140530123456789v-u12345-CA:user@example.com-bot:dreamina"
    assert adapter.build_poll(jobid) == HttpCall(method="GET", path="/videos/j0223140530123456789v-u12345-CA%3Auser%40example.com-bot%3Adreamina")
    assert adapter.build_cancel(jobid) == HttpCall(method="DELETE", path="/scheduler/j0223140530123456789v-u12345-CA%3Auser%40example.com-bot%3Adreamina")
    # Nothing in an id can climb out of its segment.
    assert adapter.build_poll("../accounts/x?y#z").path == "/videos/..%2Faccounts%2Fx%3Fy%23z"


def test_auth_header_is_the_whole_token() -> None:
    assert adapter.auth_headers("user:1-abc/+=") == {"Authorization": "Bearer user:1-abc/+="}


def test_class_surface() -> None:
    assert UseapiAdapter.provider_type == "useapi"
    assert UseapiAdapter.media_delivery == "bytes"
    assert adapter.content_call("j1", None) is None  # type: ignore[arg-type]
    assert adapter.estimate_cost("seedance-2.0", "720p", 5) is None
