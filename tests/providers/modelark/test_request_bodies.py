"""Golden create bodies: exactly what the ModelArk adapter sends (pure, no HTTP).

Item order, roles, field names and JSON types are pinned for every mode, as are the
contract's [CONFLICT] rules that reach the request side.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

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
from providers.modelark.adapter import ModelArkAdapter, task_path
from providers.modelark.models import CATALOG
from providers.simkit import sample

from .harness import AUDIO_DATA, AUDIO_URL, CALLBACK, IMAGE_DATA, IMAGE_URL, LAST_URL, VIDEO_URL

V20, V10 = CATALOG["seedance-2.0"], CATALOG["seedance-1.0-pro"]
ADAPTER = ModelArkAdapter()


def body(request: GenerationRequest, model_id: str = V20, ctx: SubmitContext | None = None) -> dict[str, Any]:
    call = ADAPTER.build_submit(request, model_id, {}, ctx or SubmitContext())
    assert (call.method, call.path, call.headers["Content-Type"]) == ("POST", "/contents/generations/tasks", "application/json")
    assert call.content is not None and call.json is None
    return msgspec.json.decode(call.content)


def req(inp: Any, **kw: Any) -> GenerationRequest:
    return GenerationRequest(model="seedance-2.0", input=inp, **kw)


def test_text_to_video_with_every_switch() -> None:
    request = req(
        TextInput(prompt="The kitten is yawning at the camera."),
        seconds=5,
        ratio="16:9",
        resolution="720p",
        seed=11,
        watermark=True,
        generate_audio=False,
        return_last_frame=True,
        end_user="tenant-7/user-42",
    )
    assert body(request, ctx=SubmitContext(callback_url=CALLBACK)) == {
        "model": "dreamina-seedance-2-0-260128",
        "content": [{"type": "text", "text": "The kitten is yawning at the camera."}],
        "safety_identifier": hashlib.sha256(b"tenant-7/user-42").hexdigest(),
        "callback_url": CALLBACK,
        "return_last_frame": True,
        "generate_audio": False,
        "watermark": True,
        "seed": 11,
        "resolution": "720p",
        "ratio": "16:9",
        "duration": 5,
    }


def test_unset_fields_are_never_sent() -> None:
    # the upstream's own defaults apply; no service_tier / execution_expires_after / tools either
    assert body(req(TextInput(prompt="p"))) == {"model": V20, "content": [{"type": "text", "text": "p"}]}


def test_first_frame() -> None:
    assert body(req(FirstFrameInput(first_frame=IMAGE_URL, prompt="go"), seconds="auto")) == {
        "model": V20,
        "content": [
            {"type": "text", "text": "go"},
            {"type": "image_url", "image_url": {"url": "https://cdn.example/first.png"}, "role": "first_frame"},
        ],
        "duration": -1,
    }


def test_first_frame_without_prompt_has_no_text_item() -> None:
    content = body(req(FirstFrameInput(first_frame=IMAGE_URL)))["content"]
    assert content == [{"type": "image_url", "image_url": {"url": "https://cdn.example/first.png"}, "role": "first_frame"}]


def test_first_and_last_frame() -> None:
    assert body(req(FirstLastFrameInput(first_frame=IMAGE_URL, last_frame=LAST_URL, prompt="dusk"), ratio="adaptive")) == {
        "model": V20,
        "content": [
            {"type": "text", "text": "dusk"},
            {"type": "image_url", "image_url": {"url": "https://cdn.example/first.png"}, "role": "first_frame"},
            {"type": "image_url", "image_url": {"url": "https://cdn.example/last.png"}, "role": "last_frame"},
        ],
        "ratio": "adaptive",
    }


def test_image_video_audio_references_keep_order_within_each_type() -> None:
    img = [Media(kind="image", url=f"https://cdn.example/i{n}.jpg") for n in (1, 2)]
    vid = [Media(kind="video", url=f"https://cdn.example/v{n}.mp4") for n in (1, 2)]
    aud = [Media(kind="audio", url=f"https://cdn.example/a{n}.mp3") for n in (1, 2)]
    inp = ReferenceInput(prompt="Image 2 and Video 1 with Audio 2", images=tuple(img), videos=tuple(vid), audios=tuple(aud))
    assert body(req(inp, seconds=11, ratio="16:9", generate_audio=True, watermark=True)) == {
        "model": V20,
        "content": [
            {"type": "text", "text": "Image 2 and Video 1 with Audio 2"},
            {"type": "image_url", "image_url": {"url": "https://cdn.example/i1.jpg"}, "role": "reference_image"},
            {"type": "image_url", "image_url": {"url": "https://cdn.example/i2.jpg"}, "role": "reference_image"},
            {"type": "video_url", "video_url": {"url": "https://cdn.example/v1.mp4"}, "role": "reference_video"},
            {"type": "video_url", "video_url": {"url": "https://cdn.example/v2.mp4"}, "role": "reference_video"},
            {"type": "audio_url", "audio_url": {"url": "https://cdn.example/a1.mp3"}, "role": "reference_audio"},
            {"type": "audio_url", "audio_url": {"url": "https://cdn.example/a2.mp3"}, "role": "reference_audio"},
        ],
        "generate_audio": True,
        "watermark": True,
        "ratio": "16:9",
        "duration": 11,
    }


def test_json_types_are_numbers_and_booleans_never_strings() -> None:
    sent = body(req(TextInput(prompt="p"), seconds=12, seed=0, watermark=False, return_last_frame=False))
    assert type(sent["duration"]) is int and type(sent["seed"]) is int
    assert sent["watermark"] is False and sent["return_last_frame"] is False


# --- [CONFLICT] seed on the 2.0 family: sent only when the caller set it (§2) ---------------


def test_seed_is_left_out_unless_set() -> None:
    assert "seed" not in body(req(TextInput(prompt="p")))
    assert body(req(TextInput(prompt="p"), seed=4294967295))["seed"] == 4294967295


# --- generate_audio on models without audio --------------------------------------------------


def test_generate_audio_false_is_left_out_for_a_silent_model_but_kept_for_2_0() -> None:
    assert "generate_audio" not in body(req(TextInput(prompt="p"), generate_audio=False), V10)
    assert body(req(TextInput(prompt="p"), generate_audio=False), V20)["generate_audio"] is False


# --- safety_identifier: a hash of the end user, never the raw id --------------------------------


@pytest.mark.parametrize("end_user", ["u", "vg_" + "a" * 40, "x" * 500])
def test_safety_identifier_is_a_stable_64_char_hash(end_user: str) -> None:
    first = body(req(TextInput(prompt="p"), end_user=end_user))["safety_identifier"]
    assert first == body(req(TextInput(prompt="p"), end_user=end_user))["safety_identifier"]
    assert len(first) == 64 and end_user not in first


def test_no_end_user_no_safety_identifier_and_no_callback_without_one() -> None:
    sent = body(req(TextInput(prompt="p")))
    assert "safety_identifier" not in sent and "callback_url" not in sent


# --- inline media: data: URLs with a lowercase format; video never ---------------------------------


def test_image_and_audio_bytes_become_lowercase_data_urls() -> None:
    inp = ReferenceInput(prompt="Image 1 to Audio 1", images=(IMAGE_DATA,), audios=(AUDIO_DATA,))
    content = body(req(inp))["content"]
    assert content[1]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(sample("image.png")).decode()
    assert content[2]["audio_url"]["url"] == "data:audio/wav;base64," + base64.b64encode(sample("audio.wav")).decode()


@pytest.mark.parametrize(
    "kind,content_type,prefix",
    [
        ("image", "IMAGE/PNG", "data:image/png;base64,"),
        ("image", "image/jpg", "data:image/jpeg;base64,"),
        ("image", "image/jpeg; charset=binary", "data:image/jpeg;base64,"),
        ("audio", "audio/mpeg", "data:audio/mp3;base64,"),
        ("audio", "audio/x-wav", "data:audio/wav;base64,"),
        ("image", None, "data:image/png;base64,"),  # sniffed from the bytes
    ],
)
def test_data_url_formats(kind: str, content_type: str | None, prefix: str) -> None:
    data = sample("image.png") if kind == "image" else b"ID3\x03" + bytes(64)
    medium = Media(kind=kind, data=data, content_type=content_type)  # type: ignore[arg-type]
    inp = FirstFrameInput(first_frame=medium) if kind == "image" else ReferenceInput(prompt="p", images=(IMAGE_URL,), audios=(medium,))
    urls = [item.get("image_url", item.get("audio_url", {})).get("url", "") for item in body(req(inp))["content"]]
    assert any(u.startswith(prefix) for u in urls)


def test_inline_limits_are_images_and_audio_only() -> None:
    assert ADAPTER.media_delivery == "url"
    assert dict(ADAPTER.inline_media) == {"image": 29_999_999, "audio": 15_000_000}


@pytest.mark.parametrize(
    "medium",
    [
        Media(kind="video", data=sample("video.mp4"), content_type="video/mp4"),  # video: URL only (§3.1)
        Media(kind="image", data=b"\x00" * 30_000_000, content_type="image/png"),  # over < 30 MB
        Media(kind="image", data=b"\x00\x01\x02", content_type=None),  # no type to name
    ],
    ids=["video-bytes", "image-too-large", "image-of-unknown-type"],
)
def test_bytes_that_cannot_travel_inline_are_a_programming_error(medium: Media) -> None:
    inp = ReferenceInput(prompt="p", videos=(medium,)) if medium.kind == "video" else FirstFrameInput(first_frame=medium)
    with pytest.raises(ValueError):
        body(req(inp))


def test_a_body_over_64_mb_is_refused_before_sending() -> None:
    big = Media(kind="image", data=b"\x89PNG\r\n\x1a\n" + bytes(20_000_000), content_type="image/png")
    inp = ReferenceInput(prompt="p", images=(big, big, big))  # each within the limit, 80 MB of base64 together
    with pytest.raises(ValueError, match="64"):
        body(req(inp))


def test_keyframes_have_no_modelark_mode() -> None:
    inp = KeyframesInput(frames=(Keyframe(image=IMAGE_URL), Keyframe(image=LAST_URL)))
    with pytest.raises(ValueError):
        body(req(inp))


def test_media_of_the_wrong_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        body(req(ReferenceInput(prompt="p", images=(VIDEO_URL,))))
    with pytest.raises(ValueError):
        body(req(ReferenceInput(prompt="p", images=(IMAGE_URL,), audios=(VIDEO_URL,))))
    assert body(req(ReferenceInput(prompt="p", images=(IMAGE_URL,), audios=(AUDIO_URL,))))  # the right kinds pass


# --- poll / cancel paths -----------------------------------------------------------------------


def test_poll_and_cancel_paths_encode_the_opaque_id() -> None:
    assert ADAPTER.build_poll("cgt-20250331175019-68d9t").path == "/contents/generations/tasks/cgt-20250331175019-68d9t"
    cancel = ADAPTER.build_cancel("cgt-2025****/x")
    assert cancel is not None and (cancel.method, cancel.path) == ("DELETE", "/contents/generations/tasks/cgt-2025%2A%2A%2A%2A%2Fx")
    assert task_path("a?b#c").endswith("/a%3Fb%23c")
    with pytest.raises(ValueError):
        ADAPTER.build_poll("")


def test_auth_header_and_no_uploads() -> None:
    assert ADAPTER.auth_headers("k-1") == {"Authorization": "Bearer k-1"}
    assert ADAPTER.uploads(req(FirstFrameInput(first_frame=IMAGE_DATA)), SubmitContext()) == []
    assert ADAPTER.content_call("cgt-1", None) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(("max_age", "sent"), [(None, None), (1800.0, 3600), (7200.5, 7200), (10**7, 259200)])
def test_the_task_expires_when_vidgate_would_give_up_on_it_within_the_upstreams_range(max_age: float | None, sent: int | None) -> None:
    got = body(req(TextInput(prompt="p")), ctx=SubmitContext(max_age_seconds=max_age))
    assert got.get("execution_expires_after") == sent
