"""The public create request: JSON and SDK-form decoding, mode inference and its errors."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import default as email_policy
from typing import Any

import httpx
import openai
import pytest
from openai._qs import Querystring

from gateway.errors import InvalidRequest
from gateway.schema import (
    SIZES,
    CreateVideoBody,
    KeyframeBody,
    MediaObject,
    ReferencesBody,
    build_request,
    decode_json,
    from_form,
    size_of,
    unflatten_form,
)
from providers.base import (
    FirstFrameInput,
    FirstLastFrameInput,
    GenerationRequest,
    KeyframesInput,
    Media,
    ReferenceInput,
    TextInput,
)

QS = Querystring(array_format="brackets", nested_format="brackets")
IMG = "https://x/a.png"


def qs_items(body: dict[str, Any]) -> list[tuple[str, str]]:
    """The fields as qs "brackets" stringifies them, one per value, in body order."""
    return QS.stringify_items(body)


def sdk_form_items(**create: Any) -> list[tuple[str, str]]:
    """The form fields exactly as `openai` `client.videos.create(**create)` puts them on the wire.

    The SDK groups repeated keys before handing them to httpx, so this is not always the
    order `qs_items` gives: it is what the gateway really receives.
    """
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "video_1", "object": "video", "status": "queued"})

    client = openai.OpenAI(
        api_key="sk-test",
        base_url="http://vidgate.test/v1",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    client.videos.create(**create)
    (request,) = seen
    content_type = request.headers["content-type"]
    assert content_type.startswith("multipart/form-data")
    message = BytesParser(policy=email_policy).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + request.content)
    return [(part.get_param("name", header="content-disposition"), part.get_content()) for part in message.iter_parts()]


class Resolver:
    """A stand-in for the gateway's media loader: records (field path, kind, value)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []

    def __call__(self, value: Any, kind: str, path: str) -> Media:
        self.calls.append((path, kind, value))
        if isinstance(value, str):
            url = value
        else:
            url = value.url or value.image_url or f"https://files.test/{value.file_id}"
        return Media(kind=kind, url=url)  # type: ignore[arg-type]


def build(body: CreateVideoBody | dict[str, Any], resolver: Resolver | None = None) -> GenerationRequest:
    if isinstance(body, dict):
        body = CreateVideoBody(**body)
    return build_request(body, default_model="seedance-2.0", media=resolver or Resolver())


def invalid(fn: Any, *args: Any, **kwargs: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        fn(*args, **kwargs)
    return info.value


# ---------------------------------------------------------------------------
# decode_json
# ---------------------------------------------------------------------------


def test_decode_json_reads_every_field() -> None:
    body = decode_json(
        b'{"model":"seedance-1.5-pro","prompt":"a cat","seconds":"5","size":"1280x720",'
        b'"input_reference":{"image_url":"https://x/a.png"},"seed":42,"generate_audio":true,'
        b'"watermark":false,"return_last_frame":true,"provider":"useapi","metadata":{"team":"a"},'
        b'"webhook_url":"https://hooks.test/v","routing":{"order":["powertokens"],"allow_fallbacks":false}}'
    )
    assert body.model == "seedance-1.5-pro"
    assert body.seconds == "5"
    assert body.input_reference == MediaObject(image_url="https://x/a.png")
    assert (body.seed, body.generate_audio, body.watermark, body.return_last_frame) == (42, True, False, True)
    assert body.metadata == {"team": "a"}
    assert body.routing is not None
    assert body.routing.order == ["powertokens"]
    assert body.routing.allow_fallbacks is False


def test_decode_json_not_json() -> None:
    err = invalid(decode_json, b"{not json")
    assert err.param is None
    assert "not valid JSON" in err.message
    assert err.status == 422


def test_decode_json_top_level_unknown_field_is_named() -> None:
    err = invalid(decode_json, b'{"prompt":"x","colour":"red"}')
    assert err.param == "colour"
    assert "Unknown field `colour`" in err.message


def test_decode_json_nested_unknown_field_names_its_object() -> None:
    err = invalid(decode_json, b'{"keyframes":[{"image":"a","zoom":1},{"image":"b"}]}')
    assert err.param == "keyframes[0]"
    assert "$.keyframes[0]" in err.message
    assert "Unknown field `zoom`" in err.message

    err = invalid(decode_json, b'{"keyframes":[{"image":"a"},{"image":{"uri":"b"}}]}')
    assert err.param == "keyframes[1].image"
    assert "$.keyframes[1].image" in err.message


@pytest.mark.parametrize(
    ("raw", "param", "phrase"),
    [
        (b'{"keyframes":[{"image":"a"}]}', "keyframes", "length >= 2"),
        (b'{"keyframes":[' + b",".join([b'{"image":"a"}'] * 11) + b"]}", "keyframes", "length <= 10"),
        (b'{"prompt":"' + b"x" * 5001 + b'"}', "prompt", "length <= 5000"),
        (b'{"seed":-2}', "seed", ">= -1"),
        (b'{"seed":4294967296}', "seed", "<= 4294967295"),
        (b'{"ratio":"2:1"}', "ratio", "'2:1'"),
        (b'{"resolution":"2k"}', "resolution", "'2k'"),
        (b'{"seconds":true}', "seconds", "got `bool`"),
        (b'{"input_reference":{"image_url":"u","foo":1}}', "input_reference", "Unknown field `foo`"),
        (b'{"references":{"images":[],"gifs":[]}}', "references", "Unknown field `gifs`"),
        (b'{"metadata":{"k":1}}', "metadata[...]", "Expected `str`"),
    ],
)
def test_decode_json_structural_errors_name_the_path(raw: bytes, param: str, phrase: str) -> None:
    err = invalid(decode_json, raw)
    assert err.param == param
    assert f"$.{param}" in err.message
    assert phrase in err.message


def test_decode_json_metadata_limits() -> None:
    too_many = b'{"metadata":{' + b",".join(b'"k%d":"v"' % i for i in range(17)) + b"}}"
    err = invalid(decode_json, too_many)
    assert err.param == "metadata"
    assert "length <= 16" in err.message


def test_decode_json_metadata_key_too_long_names_metadata() -> None:
    # BUG: msgspec reports a dict-key failure as "... - at `key` in `$.metadata`", which
    # `_invalid` does not recognise: param comes back None and the message has no path.
    err = invalid(decode_json, b'{"metadata":{"' + b"k" * 65 + b'":"v"}}')
    assert err.param == "metadata"
    assert "$.metadata" in err.message


# ---------------------------------------------------------------------------
# unflatten_form / from_form: the qs "brackets" format
# ---------------------------------------------------------------------------


def test_unflatten_nested_objects_and_lists() -> None:
    body = {
        "prompt": "hi",
        "input_reference": {"image_url": IMG},
        "references": {"images": ["https://x/1.png", "https://x/2.png"], "audios": ["https://x/a.mp3"]},
        "metadata": {"team": "a", "run": "7"},
        "routing": {"order": ["p1", "p2"], "allow_fallbacks": False},
    }
    assert unflatten_form(qs_items(body)) == {
        "prompt": "hi",
        "input_reference": {"image_url": IMG},
        "references": {"images": ["https://x/1.png", "https://x/2.png"], "audios": ["https://x/a.mp3"]},
        "metadata": {"team": "a", "run": "7"},
        "routing": {"order": ["p1", "p2"], "allow_fallbacks": "false"},
    }


def test_unflatten_list_of_objects_starts_a_new_element_when_a_key_repeats() -> None:
    body = {
        "keyframes": [
            {"image": "https://x/1.png", "prompt": "a", "seconds": 3},
            {"image": {"url": "https://x/2.png"}},
            {"image": {"url": "https://x/3.png"}, "prompt": "c"},
        ]
    }
    assert unflatten_form(qs_items(body)) == {
        "keyframes": [
            {"image": "https://x/1.png", "prompt": "a", "seconds": "3"},
            {"image": {"url": "https://x/2.png"}},
            {"image": {"url": "https://x/3.png"}, "prompt": "c"},
        ]
    }


@pytest.mark.parametrize(
    ("items", "param", "phrase"),
    [
        ([("a]b", "1")], "a]b", "not a valid bracketed key"),
        ([("prompt", "a"), ("prompt", "b")], "prompt", "more than once"),
        ([("metadata", "x"), ("metadata[k]", "v")], "metadata[k]", "mixes an object with a single value"),
        ([("routing[order]", "x"), ("routing[order][]", "y")], "routing[order][]", "mixes a list with a single value"),
        ([("refs[]", "x"), ("refs[k]", "y")], "refs[k]", "mixes an object with a single value"),
    ],
)
def test_unflatten_rejects_malformed_keys(items: list[tuple[str, str]], param: str, phrase: str) -> None:
    err = invalid(unflatten_form, items)
    assert err.param == param
    assert phrase in err.message


def test_from_form_converts_strings_to_types() -> None:
    body = from_form(
        qs_items(
            {
                "model": "seedance-1.0-mini",
                "seconds": "10",
                "seed": 42,
                "generate_audio": True,
                "watermark": False,
                "keyframes": [{"image": "https://x/1.png", "seconds": 4}, {"image": "https://x/2.png"}],
                "routing": {"allow_fallbacks": False},
            }
        )
    )
    assert body.seconds == "10"
    assert body.seed == 42
    assert body.generate_audio is True
    assert body.watermark is False
    assert body.keyframes == [KeyframeBody(image="https://x/1.png", seconds=4), KeyframeBody(image="https://x/2.png")]
    assert body.routing is not None and body.routing.allow_fallbacks is False


def test_from_form_file_part_key() -> None:
    # the controller turns a file part named input_reference into input_reference[file_id]
    body = from_form([("prompt", "p"), ("input_reference[file_id]", "file_abc")])
    assert body.input_reference == MediaObject(file_id="file_abc")


def test_from_form_errors_name_the_path() -> None:
    err = invalid(from_form, [("prompt", "p"), ("seed", "lots")])
    assert err.param == "seed"
    assert "$.seed" in err.message

    err = invalid(from_form, qs_items({"keyframes": [{"image": "a", "seconds": "x"}, {"image": "b"}]}))
    assert err.param == "keyframes[0].seconds"
    assert "$.keyframes[0].seconds" in err.message

    err = invalid(from_form, [("prompt", "p"), ("colour", "red")])
    assert err.param == "colour"


def test_sdk_form_first_frame_request_round_trips() -> None:
    items = sdk_form_items(
        prompt="a cat on a skateboard",
        model="seedance-2.0",
        seconds="8",
        size="1280x720",
        # The SDK (3.54) refuses a dict in its own `input_reference` argument (it expects a
        # file there), so a URL first frame rides in extra_body as input_reference[image_url].
        extra_body={"input_reference": {"image_url": IMG}, "generate_audio": True, "seed": 7, "metadata": {"team": "a"}},
    )
    body = from_form(items)
    resolver = Resolver()
    request = build(body, resolver)
    assert request.model == "seedance-2.0"
    assert request.input == FirstFrameInput(first_frame=Media(kind="image", url=IMG), prompt="a cat on a skateboard")
    assert (request.seconds, request.ratio, request.resolution) == (8, "16:9", "720p")
    assert (request.generate_audio, request.seed) == (True, 7)
    assert body.metadata == {"team": "a"}
    assert resolver.calls == [("input_reference", "image", MediaObject(image_url=IMG))]


def test_sdk_form_references_round_trip() -> None:
    items = sdk_form_items(
        prompt="@image1 dances to @audio1 like @video1",
        model="seedance-2.0",
        extra_body={
            "references": {
                "images": ["https://x/1.png", "https://x/2.png"],
                "videos": ["https://x/v.mp4"],
                "audios": ["https://x/a.mp3"],
            }
        },
    )
    request = build(from_form(items))
    assert isinstance(request.input, ReferenceInput)
    assert [m.url for m in request.input.images] == ["https://x/1.png", "https://x/2.png"]
    assert [m.url for m in request.input.videos] == ["https://x/v.mp4"]
    assert [m.url for m in request.input.audios] == ["https://x/a.mp3"]


def test_sdk_form_keyframes_keep_each_frames_fields() -> None:
    # BUG: the SDK groups repeated keys before sending (`keyframes[][image]` x3, then
    # `keyframes[][prompt]` x3, then `keyframes[][seconds]` x2), so "a new element begins
    # when a key repeats" shifts every prompt and seconds onto the wrong frame.
    frames = [
        {"image": "https://x/1.png", "prompt": "first", "seconds": 3},
        {"image": "https://x/2.png", "prompt": "second", "seconds": 2},
        {"image": "https://x/3.png", "prompt": "third"},
    ]
    items = sdk_form_items(prompt=openai.omit, model="seedance-1.0-mini", extra_body={"keyframes": frames})
    body = from_form(items)
    assert body.keyframes == [
        KeyframeBody(image="https://x/1.png", prompt="first", seconds=3),
        KeyframeBody(image="https://x/2.png", prompt="second", seconds=2),
        KeyframeBody(image="https://x/3.png", prompt="third"),
    ]


# ---------------------------------------------------------------------------
# build_request: mode inference
# ---------------------------------------------------------------------------


def test_text_mode() -> None:
    request = build({"prompt": "a cat"})
    assert request.mode == "text"
    assert request.input == TextInput(prompt="a cat")
    assert request.model == "seedance-2.0"  # the default
    assert (request.seconds, request.ratio, request.resolution) == (None, None, None)


def test_model_from_body_wins_over_default() -> None:
    assert build({"prompt": "a", "model": "seedance-1.5-pro"}).model == "seedance-1.5-pro"


@pytest.mark.parametrize("prompt", [None, ""])
def test_text_mode_needs_a_prompt(prompt: str | None) -> None:
    err = invalid(build, {"prompt": prompt})
    assert err.param == "prompt"
    assert "prompt is required" in err.message


def test_first_frame_from_first_frame_and_from_input_reference() -> None:
    resolver = Resolver()
    request = build({"first_frame": IMG}, resolver)
    assert request.mode == "first_frame"
    assert request.input == FirstFrameInput(first_frame=Media(kind="image", url=IMG))
    assert resolver.calls == [("first_frame", "image", IMG)]

    resolver = Resolver()
    request = build({"input_reference": MediaObject(file_id="file_1"), "prompt": "go"}, resolver)
    assert request.input == FirstFrameInput(first_frame=Media(kind="image", url="https://files.test/file_1"), prompt="go")
    assert resolver.calls == [("input_reference", "image", MediaObject(file_id="file_1"))]


def test_first_last_frame() -> None:
    resolver = Resolver()
    request = build({"first_frame": "https://x/1.png", "last_frame": MediaObject(url="https://x/2.png"), "prompt": "morph"}, resolver)
    assert request.mode == "first_last_frame"
    assert request.input == FirstLastFrameInput(
        first_frame=Media(kind="image", url="https://x/1.png"),
        last_frame=Media(kind="image", url="https://x/2.png"),
        prompt="morph",
    )
    assert [c[0] for c in resolver.calls] == ["first_frame", "last_frame"]


def test_input_reference_plus_last_frame_is_first_last() -> None:
    resolver = Resolver()
    request = build({"input_reference": "https://x/1.png", "last_frame": "https://x/2.png"}, resolver)
    assert request.mode == "first_last_frame"
    assert [c[0] for c in resolver.calls] == ["input_reference", "last_frame"]


def test_last_frame_alone_is_rejected() -> None:
    err = invalid(build, {"last_frame": IMG, "prompt": "x"})
    assert err.param == "last_frame"
    assert "needs first_frame" in err.message


def test_input_reference_and_first_frame_conflict() -> None:
    err = invalid(build, {"input_reference": IMG, "first_frame": IMG})
    assert err.param == "first_frame"
    assert "input_reference and first_frame can't be used together" in err.message


def test_keyframes_mode() -> None:
    resolver = Resolver()
    request = build(
        {
            "keyframes": [
                KeyframeBody(image="https://x/1.png", prompt="one", seconds=3),
                KeyframeBody(image=MediaObject(url="https://x/2.png")),
            ]
        },
        resolver,
    )
    assert request.mode == "keyframes"
    assert isinstance(request.input, KeyframesInput)
    assert [(f.image.url, f.prompt, f.seconds) for f in request.input.frames] == [
        ("https://x/1.png", "one", 3),
        ("https://x/2.png", None, None),
    ]
    assert [c[0] for c in resolver.calls] == ["keyframes[0].image", "keyframes[1].image"]
    assert request.prompt is None


def test_keyframes_refuse_a_top_level_prompt() -> None:
    err = invalid(build, {"prompt": "x", "keyframes": [KeyframeBody(image=IMG), KeyframeBody(image=IMG)]})
    assert err.param == "prompt"
    assert "keyframes[].prompt" in err.message


@pytest.mark.parametrize("seconds", [0, -1])
def test_keyframe_seconds_must_be_positive(seconds: int) -> None:
    frames = [KeyframeBody(image=IMG), KeyframeBody(image=IMG), KeyframeBody(image=IMG, seconds=seconds)]
    err = invalid(build, {"keyframes": frames})
    assert err.param == "keyframes[2].seconds"
    assert "$.keyframes[2].seconds" in err.message
    assert ">= 1" in err.message


def test_reference_mode() -> None:
    resolver = Resolver()
    refs = ReferencesBody(images=["https://x/1.png", "https://x/2.png"], videos=["https://x/v.mp4"], audios=["https://x/a.mp3"])
    request = build({"prompt": "@image1 meets @image2 like @video1 to @audio1", "references": refs}, resolver)
    assert request.mode == "reference"
    assert isinstance(request.input, ReferenceInput)
    assert request.input.total == 4
    assert [(c[0], c[1]) for c in resolver.calls] == [
        ("references.images[0]", "image"),
        ("references.images[1]", "image"),
        ("references.videos[0]", "video"),
        ("references.audios[0]", "audio"),
    ]


def test_reference_mode_needs_media_and_a_prompt() -> None:
    err = invalid(build, {"prompt": "x", "references": ReferencesBody()})
    assert err.param == "references"
    assert "at least one" in err.message

    err = invalid(build, {"references": ReferencesBody(images=[IMG])})
    assert err.param == "prompt"
    assert "prompt is required with references" in err.message


@pytest.mark.parametrize(
    ("prompt", "phrase"),
    [
        ("@image1 and @image2", "prompt names @image2 but references.images has 1 item(s)"),
        ("@image0", "prompt names @image0"),
        ("@image1 to @audio1", "prompt names @audio1 but references.audios has 0 item(s)"),
        ("@image1 like @video2", "prompt names @video2 but references.videos has 1 item(s)"),
    ],
)
def test_reference_placeholders_must_name_sent_media(prompt: str, phrase: str) -> None:
    refs = ReferencesBody(images=[IMG], videos=["https://x/v.mp4"])
    err = invalid(build, {"prompt": prompt, "references": refs})
    assert err.param == "prompt"
    assert phrase in err.message


@pytest.mark.parametrize(
    ("body", "param", "first"),
    [
        ({"first_frame": IMG, "keyframes": [KeyframeBody(image=IMG)] * 2}, "keyframes", "first_frame"),
        ({"input_reference": IMG, "references": ReferencesBody(images=[IMG]), "prompt": "@image1"}, "references", "input_reference"),
        ({"last_frame": IMG, "references": ReferencesBody(images=[IMG]), "prompt": "@image1"}, "references", "first_frame"),
        ({"keyframes": [KeyframeBody(image=IMG)] * 2, "references": ReferencesBody(images=[IMG])}, "references", "keyframes"),
    ],
)
def test_input_families_conflict(body: dict[str, Any], param: str, first: str) -> None:
    err = invalid(build, body)
    assert err.param == param
    assert f"{first} and {param} can't be used together" in err.message


# ---------------------------------------------------------------------------
# seconds / duration
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"seconds": 5}, 5),
        ({"seconds": "8"}, 8),
        ({"seconds": " 12 "}, 12),
        ({"duration": 10}, 10),
        ({"duration": "4"}, 4),
        ({"seconds": "auto"}, "auto"),
        ({"duration": "auto"}, "auto"),
        ({"seconds": "5", "duration": 5}, 5),
        ({"seconds": "auto", "duration": "auto"}, "auto"),
    ],
)
def test_seconds_and_duration(fields: dict[str, Any], expected: int | str) -> None:
    assert build({"prompt": "x", **fields}).seconds == expected


@pytest.mark.parametrize(
    ("fields", "param", "phrase"),
    [
        ({"seconds": "5.5"}, "seconds", 'whole number of seconds or "auto"'),
        ({"seconds": "-1"}, "seconds", 'whole number of seconds or "auto"'),
        ({"seconds": "AUTO"}, "seconds", 'whole number of seconds or "auto"'),
        ({"duration": "five"}, "duration", "duration must be a whole number"),
        ({"seconds": 0}, "seconds", "must be positive, got 0"),
        ({"duration": -3}, "duration", "must be positive, got -3"),
        ({"seconds": 5, "duration": 10}, "duration", "seconds and duration can't be used together"),
        ({"seconds": "auto", "duration": 5}, "duration", "they disagree"),
    ],
)
def test_seconds_errors(fields: dict[str, Any], param: str, phrase: str) -> None:
    err = invalid(build, {"prompt": "x", **fields})
    assert err.param == param
    assert phrase in err.message


def test_seconds_non_ascii_digit_is_a_422_not_a_crash() -> None:
    # BUG: "²".isdigit() is True but int("²") raises ValueError, which escapes as a 500.
    err = invalid(build, {"prompt": "x", "seconds": "²"})
    assert err.param == "seconds"


# ---------------------------------------------------------------------------
# size <-> ratio + resolution
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "ratio", "resolution"),
    [
        ("1280x720", "16:9", "720p"),
        ("720x1280", "9:16", "720p"),
        ("1920x1080", "16:9", "1080p"),
        ("1080x1920", "9:16", "1080p"),
        ("854x480", "16:9", "480p"),
        ("480x854", "9:16", "480p"),
        ("720x720", "1:1", "720p"),
        ("960x720", "4:3", "720p"),
        ("720x960", "3:4", "720p"),
        ("1680x720", "21:9", "720p"),
        ("3840x2160", "16:9", "4k"),
    ],
)
def test_size_table(size: str, ratio: str, resolution: str) -> None:
    assert SIZES[size] == (ratio, resolution)
    assert size_of(ratio, resolution) == size
    request = build({"prompt": "x", "size": size})
    assert (request.ratio, request.resolution) == (ratio, resolution)


def test_size_of_unknown_pairs() -> None:
    assert size_of("adaptive", "720p") is None
    assert size_of("16:9", None) is None
    assert size_of(None, None) is None


def test_size_is_case_and_space_tolerant() -> None:
    request = build({"prompt": "x", "size": " 1280X720 "})
    assert (request.ratio, request.resolution) == ("16:9", "720p")


def test_ratio_and_resolution_without_size_pass_through() -> None:
    request = build({"prompt": "x", "ratio": "adaptive", "resolution": "1080p"})
    assert (request.ratio, request.resolution) == ("adaptive", "1080p")


def test_size_agreeing_with_ratio_and_resolution_is_fine() -> None:
    request = build({"prompt": "x", "size": "720x1280", "ratio": "9:16", "resolution": "720p"})
    assert (request.ratio, request.resolution) == ("9:16", "720p")


@pytest.mark.parametrize(
    ("fields", "param", "phrase"),
    [
        ({"size": "1024x1792"}, "size", "not a supported size"),
        ({"size": "big"}, "size", "not a supported size"),
        ({"size": "1280x720", "ratio": "9:16"}, "ratio", "size 1280x720 means ratio 16:9, not 9:16"),
        ({"size": "1280x720", "resolution": "1080p"}, "resolution", "size 1280x720 means 720p, not 1080p"),
    ],
)
def test_size_errors(fields: dict[str, Any], param: str, phrase: str) -> None:
    err = invalid(build, {"prompt": "x", **fields})
    assert err.param == param
    assert phrase in err.message


def test_passthrough_fields() -> None:
    request = build_request(
        CreateVideoBody(prompt="x", seed=-1, generate_audio=False, watermark=True, return_last_frame=True),
        default_model="m",
        media=Resolver(),
        end_user="tenant-hash",
    )
    assert (request.seed, request.generate_audio, request.watermark, request.return_last_frame) == (-1, False, True, True)
    assert request.end_user == "tenant-hash"
