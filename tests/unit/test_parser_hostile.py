"""Crafted create and comparison requests: each is a clean 4xx naming the field, never a 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from gateway.errors import GatewayError, InvalidRequest
from gateway.schema import (
    CreateVideoBody,
    build_request,
    decode_json,
    from_form,
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
