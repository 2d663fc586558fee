"""The JSON nesting scanner, checked against a byte-at-a-time reference tokenizer."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.bounds import json_depth_exceeds, json_tokens_exceed


def reference(raw: bytes) -> tuple[int, bool]:
    """(deepest nesting outside strings, whether every backslash was inside a string).

    Steps through strings as a JSON tokenizer does; a stray closer does not take the
    depth below zero."""
    depth = deepest = 0
    in_string = escaped = False
    clean = True
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == ord("\\"):
                escaped = True
            elif byte == ord('"'):
                in_string = False
        elif byte == ord('"'):
            in_string = True
        elif byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif byte in b"]}":
            depth = max(depth - 1, 0)
        elif byte == ord("\\"):
            clean = False
    return deepest, clean


@pytest.mark.parametrize(
    ("raw", "depth"),
    [
        (b"", 0),
        (b'{"a":1}', 1),
        (b'{"keyframes":[{"image":{"url":"x"}}]}', 4),
        (b'["[[[[", "{{{{"]', 1),  # brackets in strings don't count
        (b'["\\"[[[[", 1]', 1),  # nor after an escaped quote
        (b'["\\\\", [[1]]]', 3),  # an escaped backslash does not escape the closing quote
        (b'["\\\\\\"[[", [1]]', 2),
        (b'"unterminated [[[[[', 0),
        (b"]]]]][[", 2),  # stray closers don't go below zero
        (b"[" * 10_000, 10_000),
    ],
)
def test_examples(raw: bytes, depth: int) -> None:
    assert reference(raw)[0] == depth
    assert json_depth_exceeds(raw, depth - 1) is (depth > 0)
    assert json_depth_exceeds(raw, depth) is False


def test_deep_input_is_caught_early_at_any_size() -> None:
    assert json_depth_exceeds(b'{"request":' + b"[" * 10_000 + b"]" * 10_000 + b"}", 16)
    assert json_depth_exceeds(b'{"a":' * 10_000 + b"1" + b"}" * 10_000, 16)


@pytest.mark.parametrize(
    ("raw", "at_most"),
    [
        (b"", 0),
        (b'{"a":[1,2,{"b":null}]}', 5),  # 2 strings, 1 array, 2 objects
        (b'["[{", "\\"q\\""]', 6),  # brackets and escaped quotes inside strings count too
        (b"[]" * 1000, 1000),
    ],
)
def test_token_bound(raw: bytes, at_most: int) -> None:
    assert not json_tokens_exceed(raw, at_most)
    assert json_tokens_exceed(raw, at_most - 1)


_TRICKY_TEXT = st.lists(st.sampled_from(['"', "\\", "\\\\", '\\"', "[", "]", "{", "}", "a", "é", "\n", "\\u0022"]), max_size=12).map("".join)
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | _TRICKY_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_TRICKY_TEXT, children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(_JSON_VALUES, st.booleans())
def test_agrees_with_the_reference_on_json_documents(value: object, ascii_only: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only).encode()
    depth, clean = reference(raw)
    assert clean
    for limit in range(depth + 2):
        assert json_depth_exceeds(raw, limit) is (depth > limit)


_SOUP = st.lists(st.sampled_from([b"[", b"]", b"{", b"}", b'"', b"\\", b"\\\\", b'\\"', b"a", b",", b":", b'{"k":', b"\xff"]), max_size=80).map(b"".join)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(_SOUP)
def test_agrees_with_the_reference_on_malformed_text_without_stray_backslashes(raw: bytes) -> None:
    depth, clean = reference(raw)
    for limit in range(depth + 2):
        result = json_depth_exceeds(raw, limit)
        assert isinstance(result, bool)
        if clean:  # a backslash outside a string is where any parser stops
            assert result is (depth > limit)
