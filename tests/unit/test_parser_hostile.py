"""Crafted create and comparison requests: each is a clean 4xx naming the field, never a 500."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest

import gateway.schema
from gateway.comparisons import decode_comparison
from gateway.errors import BadRequest, GatewayError, InvalidRequest
from gateway.schema import (
    MAX_FORM_FIELDS,
    MAX_FORM_KEY_DEPTH,
    MAX_JSON_DEPTH,
    MAX_JSON_TOKENS,
    CreateVideoBody,
    build_request,
    decode_json,
    from_form,
    unflatten_form,
)
from providers.base import Media

HUGE = "1" * 5000  # int() refuses more than 4300 digits
DEEP = 10_000


def media(value: Any, kind: str, path: str) -> Media:
    return Media(kind=kind, url="https://x/a.png")  # type: ignore[arg-type]


def build(body: CreateVideoBody) -> Any:
    return build_request(body, default_model="seedance-2.0", media=media)


def refused(fn: Callable[..., Any], *args: Any) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        fn(*args)
    err = caught.value
    assert 400 <= err.status < 500
    msgspec.json.encode(err.envelope())  # the error itself can be sent
    assert "<class" not in err.message and "Error(" not in err.message
    assert len(err.message) < 300  # a hostile value is never echoed whole
    return err


def nested_array(depth: int) -> str:
    return "[" * depth + "]" * depth


def nested_object(depth: int) -> str:
    return '{"a":' * depth + '"x"' + "}" * depth


# ---------------------------------------------------------------------------
# numbers with thousands of digits
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["seconds", "duration"])
def test_seconds_with_thousands_of_digits_is_a_422_naming_the_field(name: str) -> None:
    for body in (decode_json(b'{"prompt":"p","%s":"%s"}' % (name.encode(), HUGE.encode())), from_form([("prompt", "p"), (name, HUGE)])):
        err = refused(build, body)
        assert isinstance(err, InvalidRequest)
        assert err.param == name
        assert "5000 digits" in err.message


def test_leading_zeros_do_not_count_as_digits() -> None:
    assert build(from_form([("prompt", "p"), ("seconds", "0" * 5000 + "5")])).seconds == 5


def test_a_long_non_numeric_seconds_is_quoted_short() -> None:
    err = refused(build, from_form([("prompt", "p"), ("seconds", "x" * 5000)]))
    assert err.param == "seconds"
    assert "must be a whole number of seconds" in err.message


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (b'{"prompt":"p","seconds":' + HUGE.encode() + b"}", "seconds"),
        (b'{"prompt":"p","duration":-' + HUGE.encode() + b"}", "duration"),
        (b'{"prompt":"p","seed":' + HUGE.encode() + b"}", "seed"),
        (b'{"keyframes":[{"image":"a","seconds":' + HUGE.encode() + b'},{"image":"b"}]}', "keyframes[0].seconds"),
        (b'{"prompt":"p","seconds":1e' + HUGE.encode() + b"}", "seconds"),
    ],
)
def test_json_number_tokens_with_thousands_of_digits(raw: bytes, param: str) -> None:
    err = refused(decode_json, raw)
    assert isinstance(err, InvalidRequest)
    assert err.param == param


def test_a_placeholder_with_thousands_of_digits_is_a_422_naming_prompt() -> None:
    body = decode_json(b'{"prompt":"@image' + b"1" * 4400 + b'","references":{"images":["a"]}}')
    err = refused(build, body)
    assert isinstance(err, InvalidRequest)
    assert err.param == "prompt"
    assert "references.images has 1 item(s)" in err.message


def test_placeholders_with_leading_zeros_still_name_their_reference() -> None:
    body = decode_json(b'{"prompt":"@image01 then @image' + b"0" * 4400 + b'1","references":{"images":["a"]}}')
    assert build(body).input.prompt.startswith("@image01")


# ---------------------------------------------------------------------------
# nesting
# ---------------------------------------------------------------------------


def test_form_keys_nested_thousands_of_brackets_deep() -> None:
    key = "metadata" + "[a]" * 2000
    for fn in (unflatten_form, from_form):
        err = refused(fn, [("prompt", "p"), (key, "v")])
        assert isinstance(err, InvalidRequest)
        assert err.param == "metadata" + "[a]" * (MAX_FORM_KEY_DEPTH + 1)
        assert f"more than {MAX_FORM_KEY_DEPTH} brackets deep" in err.message


def test_form_keys_up_to_the_depth_limit_still_unflatten() -> None:
    expected: Any = "v"
    for _ in range(MAX_FORM_KEY_DEPTH):
        expected = {"a": expected}
    assert unflatten_form([("x" + "[a]" * MAX_FORM_KEY_DEPTH, "v")]) == {"x": expected}


@pytest.mark.parametrize("name", ["keyframes", "references", "metadata", "routing"])
@pytest.mark.parametrize("nest", [nested_array, nested_object])
@pytest.mark.parametrize("depth", [5_000, DEEP])
def test_json_form_fields_nested_thousands_deep(name: str, nest: Callable[[int], str], depth: int) -> None:
    err = refused(from_form, [("prompt", "p"), (name, nest(depth))])
    assert isinstance(err, InvalidRequest)
    assert err.param == name
    assert f"more than {MAX_JSON_DEPTH} levels deep" in err.message


@pytest.mark.parametrize(
    "raw",
    [
        nested_array(DEEP).encode(),
        nested_object(DEEP).encode(),
        b'{"keyframes":' + nested_array(DEEP).encode() + b"}",
        b'{"colour":' + nested_object(DEEP).encode() + b"}",
    ],
)
def test_json_bodies_nested_thousands_deep(raw: bytes) -> None:
    err = refused(decode_json, raw)
    assert isinstance(err, InvalidRequest)
    assert err.param is None
    assert f"Request body nests arrays or objects more than {MAX_JSON_DEPTH} levels deep" == err.message


@pytest.mark.parametrize(
    "raw",
    [
        b'{"request":' + nested_array(DEEP).encode() + b"}",
        b'{"request":' + nested_object(DEEP).encode() + b"}",
        b'{"request":{"prompt":"p"},"providers":' + nested_array(DEEP).encode() + b"}",
        b'{"extra":' + nested_array(DEEP).encode() + b',"request":{}}',
    ],
)
def test_comparison_bodies_nested_thousands_deep(raw: bytes) -> None:
    err = refused(decode_comparison, raw)
    assert isinstance(err, InvalidRequest)
    assert err.param is None
    assert f"more than {MAX_JSON_DEPTH} levels deep" in err.message


@pytest.mark.parametrize(
    ("fn", "raw"),
    [
        (decode_json, b"[]" * (MAX_JSON_TOKENS + 1)),
        (decode_json, b'{"routing":{"order":[' + b'"a",' * MAX_JSON_TOKENS + b'"a"]}}'),
        (decode_comparison, b'{"request":{},"providers":[' + b"[]," * MAX_JSON_TOKENS + b"[]]}"),
    ],
)
def test_bodies_with_too_many_values_are_refused_before_any_per_token_scan(fn: Callable[[bytes], Any], raw: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_scan(raw: bytes, limit: int) -> bool:
        raise AssertionError("the depth scan ran")

    monkeypatch.setattr(gateway.schema, "json_depth_exceeds", no_scan)
    err = refused(fn, raw)
    assert isinstance(err, InvalidRequest)
    assert err.param is None
    assert err.message == f"Request body holds more than {MAX_JSON_TOKENS} strings, arrays and objects"


def test_a_json_form_field_with_too_many_values() -> None:
    err = refused(from_form, [("prompt", "p"), ("keyframes", "[" + "{}," * MAX_JSON_TOKENS + "{}]")])
    assert err.param == "keyframes"
    assert "more than" in err.message


def test_the_largest_valid_body_is_under_the_token_cap() -> None:
    # Brackets wherever text may go: keyframe prompts, URLs (up to the guard's 8192), metadata, webhook.
    url = "https://x/a.png?q=" + "[]" * 4087
    frames = [{"image": url, "prompt": "[" * 5000} for _ in range(10)]
    metadata = {"{" * 60 + str(i): "[" * 512 for i in range(16)}
    raw = msgspec.json.encode({"keyframes": frames, "metadata": metadata, "webhook_url": "https://x/" + "[" * 2030})
    body = decode_json(raw)
    assert body.keyframes is not None and len(body.keyframes) == 10
    assert len(build(body).input.frames) == 10


def test_valid_bodies_at_their_deepest_still_decode() -> None:
    body = decode_json(b'{"keyframes":[{"image":{"url":"https://x/1.png"}},{"image":{"file_id":"file_1"}}]}')
    assert body.keyframes is not None and len(body.keyframes) == 2
    _, inner = decode_comparison(b'{"request":{"keyframes":[{"image":{"url":"a"}},{"image":"b"}]},"providers":["p"]}')
    assert inner.keyframes is not None


# ---------------------------------------------------------------------------
# text that is not UTF-8
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "raw"),
    [
        (decode_json, b'{"prompt":"\xff"}'),
        (decode_json, b'{"metadata":{"\xc3\x28":"v"}}'),
        (decode_comparison, b'{"request":{"prompt":"\xff"}}'),
        (decode_comparison, b'{"request":{"prompt":"p"},"providers":["\xed\xa0\x80"]}'),
    ],
)
def test_invalid_utf8_in_a_json_body_is_a_400(fn: Callable[[bytes], Any], raw: bytes) -> None:
    err = refused(fn, raw)
    assert isinstance(err, BadRequest)
    assert err.status == 400
    assert err.param is None
    assert err.message.startswith("Request body is not valid JSON/UTF-8")


def test_form_text_with_lone_surrogates_is_refused_before_anything_echoes_it() -> None:
    # A multipart part decoded with an odd charset (unicode_escape) can carry them.
    err = refused(from_form, [("prompt", "a\ud800b")])
    assert err.param == "prompt"
    err = refused(from_form, [("prompt\udc80", "p")])
    assert err.param == "prompt?"
    err = refused(from_form, [("metadata", '{"k":"\ud800"}')])
    assert err.param == "metadata"


# ---------------------------------------------------------------------------
# many fields
# ---------------------------------------------------------------------------


def test_a_form_with_too_many_fields_is_refused_before_they_are_all_read() -> None:
    # Grouped list fields cost O(n) each to place, so an unbounded count is quadratic.
    read = 0

    def items() -> Iterator[tuple[str, str]]:
        nonlocal read
        for _ in range(4 * MAX_FORM_FIELDS):
            read += 1
            yield "keyframes[][image]", "https://x/a.png"

    err = refused(unflatten_form, items())
    assert isinstance(err, InvalidRequest)
    assert f"more than {MAX_FORM_FIELDS} fields" in err.message
    assert read == MAX_FORM_FIELDS + 1


def test_a_form_at_the_field_limit_is_fine() -> None:
    items = [("prompt", "p")] + [(f"metadata[k{i}]", "v") for i in range(MAX_FORM_FIELDS - 1)]
    assert len(unflatten_form(items)["metadata"]) == MAX_FORM_FIELDS - 1
