"""Structural limits checked before a parser sees a caller's bytes.

msgspec, like any recursive-descent JSON parser, recurses once per nested array
or object: ten thousand `[` exhaust the interpreter's recursion limit and escape
as a RecursionError. `json_depth_exceeds` answers "nested deeper than N?" in one
pass, without parsing, so the caller can refuse such input with a clean error.

Its string skipping still costs a little Python work per string and bracket, so
`json_tokens_exceed` comes first: three `bytes.count` calls that bound how many
strings, arrays and objects the text can hold, whatever its size.
"""

from __future__ import annotations

_STRUCTURAL = frozenset(b'"[]{}')
_NOT_STRUCTURAL = bytes(b for b in range(256) if b not in _STRUCTURAL)
_OPENERS = b"[{"


def json_tokens_exceed(raw: bytes, limit: int) -> bool:
    """Whether the JSON text `raw` may hold more than `limit` strings, arrays and objects.

    An upper bound: a quote or bracket inside a string counts as well, so a caller's
    limit must leave room for the text a valid document may carry.
    """
    return raw.count(b'"') // 2 + raw.count(b"[") + raw.count(b"{") > limit


def json_depth_exceeds(raw: bytes, limit: int) -> bool:
    """Whether arrays and objects in the JSON text `raw` nest more than `limit` deep.

    Brackets inside strings don't count. Malformed text gets an answer too (a stray
    closer never takes the depth below zero); the parser rejects it afterwards.
    O(n): the per-byte work is done by bytes methods; Python touches each string
    and each bracket outside strings once (see `json_tokens_exceed`).
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
