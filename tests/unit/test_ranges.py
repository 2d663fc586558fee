"""`gateway.ranges`: one `Range: bytes=...` header against an object's size."""

from __future__ import annotations

import pytest

from gateway.ranges import ByteRange, Unsatisfiable, parse_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-", (0, 1000)),
        ("bytes=0-99", (0, 100)),
        ("bytes=900-", (900, 100)),
        ("bytes=900-5000", (900, 100)),  # an end past the object is cut to it
        ("bytes=-100", (900, 100)),
        ("bytes=-5000", (0, 1000)),
        ("bytes = 10 - 19", (10, 10)),
        ("bytes=0-1,5-6", None),  # several ranges: the whole object
        ("items=0-1", None),
        ("bytes=-", None),
        ("bytes=9-2", None),  # invalid: ignored
        ("bytes=abc", None),
        ("bytes=" + "9" * 30 + "-", None),  # absurd digits: ignored before int()
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    parsed = parse_range(header, 1000)
    assert ((parsed.start, parsed.length) if parsed else None) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_a_range_past_the_end_is_unsatisfiable(header: str) -> None:
    with pytest.raises(Unsatisfiable) as caught:
        parse_range(header, 1000)
    assert caught.value.size == 1000


def test_content_range_is_inclusive() -> None:
    assert ByteRange(start=10, length=5, size=100).content_range == "bytes 10-14/100"
