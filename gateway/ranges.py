"""HTTP byte ranges (RFC 9110 §14): what a `Range: bytes=...` header asks of an object.

Pure. One range per request: a browser's `<video>` asks for one at a time, and a server may
answer a multi-range request with the whole object, which is what ignoring it does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SINGLE = re.compile(r"bytes=(\d{0,19})-(\d{0,19})")


class Unsatisfiable(ValueError):
    """A well-formed range that lies wholly past the end of the object (HTTP 416)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"the range lies past the end of the {size} bytes")
        self.size = size


@dataclass(frozen=True)
class ByteRange:
    start: int
    length: int
    size: int  # the whole object's

    @property
    def end(self) -> int:
        """The last byte's offset, inclusive, as Content-Range writes it."""
        return self.start + self.length - 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range `header` asks for within `size` bytes, or None to send the whole object (no
    header, or one that isn't a single byte range). A range covering everything is still a
    range: a browser that asked `bytes=0-` learns from the 206 that it may seek. Raises
    `Unsatisfiable` for a range that starts past the end (or a suffix of nothing)."""
    if header is None:
        return None
    match = _SINGLE.fullmatch(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # "-N": the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable(size)
        start = max(0, size - suffix)
        end = size - 1
    else:
        start = int(first)
        if start >= size:
            raise Unsatisfiable(size)
        end = min(int(last), size - 1) if last else size - 1
        if end < start:
            return None  # "5-2" is invalid syntax, which a server ignores
    return ByteRange(start=start, length=end - start + 1, size=size)
