"""Structural limits checked before a parser sees a caller's bytes.

msgspec, like any recursive-descent JSON parser, recurses once per nested array
or object: ten thousand `[` exhaust the interpreter's recursion limit and escape
as a RecursionError. `json_depth_exceeds` answers "nested deeper than N?" in one
pass, without parsing, so the caller can refuse such input with a clean error.
"""

from __future__ import annotations

_STRUCTURAL = frozenset(b'"[]{}')
_NOT_STRUCTURAL = bytes(b for b in range(256) if b not in _STRUCTURAL)
_OPENERS = b"[{"


def json_depth_exceeds(raw: bytes, limit: int) -> bool:
    """Whether arrays and objects in the JSON text `raw` nest more than `limit` deep.

    Brackets inside strings don't count. Malformed text gets an answer too (a stray
    closer never takes the depth below zero); the parser rejects it afterwards.
    O(n), with the per-byte work in bytes methods: Python only steps through the
    brackets that lie outside strings.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # cannot nest deeper than the brackets it holds
    # Drop escaped backslashes, then escaped quotes: the quotes left delimit strings.
    text = raw.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURAL)
    # Only quotes and brackets remain; between an odd and the next even quote is a string.
    outside = b"".join(text.replace(b'""', b"").split(b'"')[::2])
    depth = 0
    for byte in outside:
        if byte in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        elif depth:
            depth -= 1
    return False
