"""Fuzzing the create parser: whatever arrives, the only way out besides a request is a 4xx.

JSON bodies go through `decode_json`, form items with the SDK's bracketed keys through
`from_form`; whatever parses goes on through `build_request` with a resolver that
accepts any media. Inputs are valid request templates with hostile values spliced into
real fields, random builtins and bytes, and mutations of all of these. Generated text
holds no `<`, so a `<` followed by a name in a message can only be a Python repr.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import GatewayError
from gateway.schema import CreateVideoBody, build_request, decode_json, from_form
from providers.base import Media

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
REPR = re.compile(r"<[A-Za-z_]")

FIELDS = list(CreateVideoBody.__struct_fields__)
JSON_FORM_FIELDS = ["keyframes", "references", "metadata", "routing"]
INNER_KEYS = ["url", "file_id", "image_url", "image", "prompt", "seconds", "images", "videos", "audios", "order", "allow_fallbacks", "k"]
IMG = "https://x/a.png"

TEMPLATES: list[dict[str, Any]] = [
    {"prompt": "a cat", "seconds": "5", "size": "1280x720"},
    {"prompt": "p", "input_reference": {"image_url": IMG}, "last_frame": IMG, "duration": 5},
    {"keyframes": [{"image": IMG, "prompt": "a", "seconds": 2}, {"image": {"url": IMG}}]},
    {"prompt": "@image1 with @audio1", "references": {"images": [IMG, {"file_id": "file_1"}], "audios": [IMG]}},
    {"prompt": "p", "ratio": "16:9", "resolution": "720p", "metadata": {"team": "a"}, "routing": {"order": ["useapi"]}, "seed": 7},
]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


HOSTILE_TEXT = [
    "auto",
    " 10 ",
    "0",
    "-3",
    "1" * 5000,
    "0" * 5000 + "7",
    "٣",
    "true",
    "@image" + "9" * 4400,
    "@video" + "0" * 4400 + "1",
    nested(10_000),
    '{"a":' * 5000 + "1" + "}" * 5000,
    '[{"image":"https://x/1.png"},{"image":{"url":"https://x/2.png"}}]',
    '{"images":["https://x/1.png"]}',
    "x" * 6000,
]
HOSTILE_NUMBERS = [0, -1, 2**63, 10**30, -(10**30), 1e308, 0.5]
# Form text can also hold what JSON can't carry: a part decoded with an odd charset.
FORM_ONLY_TEXT = ["a\ud800b", "\udc80"]


def media(value: Any, kind: str, path: str) -> Media:
    return Media(kind=kind, url=IMG)  # type: ignore[arg-type]


def only_4xx(parse: Callable[[], CreateVideoBody]) -> None:
    try:
        body = parse()
        build_request(body, default_model="seedance-2.0", media=media)
    except GatewayError as exc:
        assert 400 <= exc.status < 500, exc
        assert not REPR.search(exc.message), exc.message
        assert exc.param is None or not REPR.search(exc.param), exc.param
        msgspec.json.encode(exc.envelope())  # the error can be sent as it is


_plain_text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="<"), max_size=20)
_text = st.one_of(st.sampled_from(HOSTILE_TEXT), _plain_text)
_key = st.one_of(st.sampled_from(FIELDS + INNER_KEYS), _plain_text)
_scalar = st.one_of(_text, st.sampled_from(HOSTILE_NUMBERS), st.none(), st.booleans(), st.integers(), st.floats())
_values = st.recursive(
    _scalar,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(_key, children, max_size=4)),
    max_leaves=20,
)


@st.composite
def json_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A template with a few fields (real ones, mostly) replaced or added."""
    body = dict(draw(st.sampled_from(TEMPLATES)))
    for _ in range(draw(st.integers(0, 3))):
        body[draw(st.one_of(st.sampled_from(FIELDS), _key))] = draw(_values)
    return body


HOSTILE_BODIES = [
    nested(10_000).encode(),
    b'{"keyframes":' + nested(10_000).encode() + b"}",
    b'{"colour":' + b'{"a":' * 10_000 + b"1" + b"}" * 10_000 + b"}",
    b'{"prompt":"\xff"}',
    b'{"prompt":"p","seconds":' + b"1" * 5000 + b"}",
    b'{"prompt":"p","seconds":"' + b"1" * 5000 + b'"}',
]


@FUZZ
@given(json_bodies())
def test_json_bodies(body: dict[str, Any]) -> None:
    raw = msgspec.json.encode(body)
    only_4xx(lambda: decode_json(raw))


@FUZZ
@given(
    st.one_of(st.binary(max_size=200), json_bodies().map(msgspec.json.encode), st.sampled_from(HOSTILE_BODIES)),
    st.lists(st.tuples(st.integers(0, 10_000), st.binary(max_size=3)), max_size=4),
)
def test_json_bodies_as_mutated_bytes(raw: bytes, edits: list[tuple[int, bytes]]) -> None:
    data = bytearray(raw)
    for at, replacement in edits:
        at = at % (len(data) + 1)
        data[at : at + len(replacement)] = replacement
    only_4xx(lambda: decode_json(bytes(data)))


def form_items(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """`value` as the SDK's bracketed form fields, every scalar a string."""
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in form_items(v, f"{prefix}[{k}]" if prefix else str(k))]
    if isinstance(value, list):
        return [item for v in value for item in form_items(v, f"{prefix}[]")]
    text = "true" if value is True else "false" if value is False else "" if value is None else str(value)
    return [(prefix, text)]


_segment = st.one_of(st.just(""), st.sampled_from(INNER_KEYS), st.text(alphabet=st.characters(codec="utf-8", exclude_characters="<[]"), max_size=6))


@st.composite
def form_keys(draw: st.DrawFn) -> str:
    name = draw(st.one_of(st.sampled_from(FIELDS), st.text(alphabet=st.characters(codec="utf-8", exclude_characters="<[]"), min_size=1, max_size=8)))
    depth = draw(st.one_of(st.integers(0, 4), st.integers(0, 12), st.just(2000)))
    if depth == 2000:  # past the nesting bound; drawing 2000 segments would cost the run seconds
        key = name + f"[{draw(_segment)}]" * depth
    else:
        key = name + "".join(f"[{draw(_segment)}]" for _ in range(depth))
    if draw(st.integers(0, 19)) == 0:  # now and then a malformed or undecodable key
        key = draw(st.sampled_from(["", "[", "]", "a]b", key + "[", "[" + key, key + "\udc80"]))
    return key


@FUZZ
@given(
    json_bodies().map(form_items),
    st.lists(
        st.tuples(st.one_of(st.sampled_from(FIELDS), form_keys()), st.one_of(_text, st.sampled_from(FORM_ONLY_TEXT))),
        max_size=6,
    ),
    st.randoms(use_true_random=False),
)
def test_form_items_with_bracketed_keys(items: list[tuple[str, str]], extra: list[tuple[str, str]], rnd: Any) -> None:
    items = items + extra
    if rnd.random() < 0.5:
        rnd.shuffle(items)
    only_4xx(lambda: from_form(items))


@FUZZ
@given(st.sampled_from(JSON_FORM_FIELDS), _values, st.one_of(st.integers(0, 40), st.just(10_000)))
def test_json_form_fields(name: str, value: Any, depth: int) -> None:
    encoded = "[" * depth + msgspec.json.encode(value).decode() + "]" * depth
    only_4xx(lambda: from_form([("prompt", "p"), (name, encoded)]))
