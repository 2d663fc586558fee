"""Is this really the video / image it should be? Judged from the first bytes only.

An expired or mistyped link often answers 200 with an HTML or XML error page; these
checks refuse such a body before it is stored. Each returns the content type the bytes
declare by their magic number (the type a server declared is never trusted), or raises
`ContentCheckFailed` naming what was expected and what was seen.
"""

from __future__ import annotations

import struct

from gateway.outputs.storage import OutputError
from providers.media_probe import sniff_type

EXTENSIONS = {"video/mp4": ".mp4", "image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}

_MP4_EXPECTED = "an MP4 video (ISO BMFF: a box size, then 'ftyp' at bytes 4..8)"
_IMAGE_EXPECTED = "a PNG, JPEG or WebP image"


class ContentCheckFailed(OutputError):
    def __init__(self, expected: str, seen: str) -> None:
        super().__init__(f"expected {expected}, got {seen}")
        self.expected = expected
        self.seen = seen


def check_mp4(head: bytes) -> str:
    """ "video/mp4" if `head` starts an ISO BMFF file with an `ftyp` box."""
    if len(head) >= 8 and head[4:8] == b"ftyp":
        size = struct.unpack(">I", head[:4])[0]
        if size == 1 and len(head) >= 16:  # 64-bit "largesize" follows the type
            size = struct.unpack(">Q", head[8:16])[0]
            minimum = 16
        else:
            minimum = 8
        if size >= minimum + 4:  # a major brand at least
            return "video/mp4"
        raise ContentCheckFailed(_MP4_EXPECTED, f"an 'ftyp' box with an impossible size of {size} bytes")
    raise ContentCheckFailed(_MP4_EXPECTED, describe(head))


def check_image(head: bytes) -> str:
    """The type of a PNG, JPEG or WebP image from its magic number."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    raise ContentCheckFailed(_IMAGE_EXPECTED, describe(head))


def describe(head: bytes) -> str:
    """A short, log-safe description of what some bytes look like."""
    if not head:
        return "an empty body"
    sniffed = sniff_type(head)
    if sniffed is not None:
        return f"{sniffed} data"
    sample = head[:24]
    if all(32 <= b < 127 or b in (9, 10, 13) for b in sample):
        text = " ".join(sample.decode("ascii").split())
        return f"text starting {text!r}"
    return "bytes " + sample[:12].hex(" ")
