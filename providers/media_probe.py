"""Read width, height and duration from the first bytes of common media files.

Pure and dependency-free: PNG, JPEG, WebP and GIF sizes; MP4/MOV size and
duration from the `tkhd`/`mvhd` boxes; WAV duration from its header. Anything
unreadable gives `None` fields, never an exception.

The work is bounded whatever the bytes say: one probe walks at most
`MAX_SEGMENTS` JPEG segments, MP4 boxes and RIFF chunks in all, stops at the
first header that answers, and skips bytes between JPEG markers with
`bytes.find`, never one by one. A file that needs more (only a crafted one
does) gives unknown facts.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import msgspec

# Real files answer within a few dozen. The generous end is a JPEG carrying megabytes
# of ICC or extended-XMP metadata in 64 KiB segments before its frame header: 1024 of
# those is more than an upload may hold. A file of millions of tiny ones stops here.
MAX_SEGMENTS = 1024


class Probe(msgspec.Struct, frozen=True):
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None


def sniff_type(data: bytes) -> str | None:
    """The MIME type the bytes declare by their magic number."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        return "video/mp4"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "video/webm"
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    return None


class _OutOfSteps(Exception):
    pass


class _Steps:
    """The segments, boxes and chunks one probe may still walk."""

    def __init__(self, limit: int = MAX_SEGMENTS) -> None:
        self.left = limit

    def take(self) -> None:
        if self.left <= 0:
            raise _OutOfSteps
        self.left -= 1


def probe(data: bytes) -> Probe:
    kind = sniff_type(data)
    steps = _Steps()
    try:
        if kind == "image/png" and len(data) >= 24:
            w, h = struct.unpack(">II", data[16:24])
            return Probe(kind, w, h)
        if kind == "image/gif" and len(data) >= 10:
            w, h = struct.unpack("<HH", data[6:10])
            return Probe(kind, w, h)
        if kind == "image/jpeg":
            return Probe(kind, *_jpeg_size(data, steps))
        if kind == "image/webp":
            return Probe(kind, *_webp_size(data))
        if kind in ("video/mp4", "video/quicktime", "audio/mp4"):
            return _mp4(data, kind, steps)
        if kind == "audio/wav":
            return Probe(kind, duration_ms=_wav_duration_ms(data, steps))
    except (struct.error, IndexError, ValueError, _OutOfSteps):
        pass
    return Probe(kind)


_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_SOS, _EOI = 0xDA, 0xD9  # the frame header always precedes the first scan


def _jpeg_size(data: bytes, steps: _Steps) -> tuple[int | None, int | None]:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i = data.find(b"\xff", i)
            if i < 0:
                break
            continue
        steps.take()
        marker = data[i + 1]
        if marker in _SOF:
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        if marker in (_SOS, _EOI):
            break
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        i += 2 + length
    return None, None


def _webp_size(data: bytes) -> tuple[int | None, int | None]:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        b = data[21:25]
        w = 1 + (((b[1] & 0x3F) << 8) | b[0])
        h = 1 + (((b[3] & 0xF) << 10) | (b[2] << 2) | ((b[1] & 0xC0) >> 6))
        return w, h
    if chunk == b"VP8X":
        w = 1 + int.from_bytes(data[24:27], "little")
        h = 1 + int.from_bytes(data[27:30], "little")
        return w, h
    return None, None


def _boxes(data: bytes, start: int, end: int, steps: _Steps) -> Iterator[tuple[bytes, int, int]]:
    i = start
    while i + 8 <= end:
        steps.take()
        size, name = struct.unpack(">I4s", data[i : i + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[i + 8 : i + 16])[0]
            header = 16
        elif size == 0:
            size = end - i
        if size < header:
            return
        yield name, i + header, min(i + size, end)
        i += size


def _mp4(data: bytes, kind: str, steps: _Steps) -> Probe:
    duration_ms = width = height = None
    for name, body, end in _boxes(data, 0, len(data), steps):
        if name != b"moov":
            continue
        for child, cbody, cend in _boxes(data, body, end, steps):
            if child == b"mvhd":
                version = data[cbody]
                if version == 1:
                    timescale, duration = struct.unpack(">IQ", data[cbody + 20 : cbody + 32])
                else:
                    timescale, duration = struct.unpack(">II", data[cbody + 12 : cbody + 20])
                if timescale:
                    duration_ms = round(duration * 1000 / timescale)
            elif child == b"trak" and width is None:
                for grand, _gbody, gend in _boxes(data, cbody, cend, steps):
                    if grand == b"tkhd":
                        w, h = struct.unpack(">II", data[gend - 8 : gend])
                        if w >> 16 and h >> 16:
                            width, height = w >> 16, h >> 16
                        break  # one tkhd per track
            if duration_ms is not None and width is not None:
                break
        break  # a file has one moov
    return Probe(kind, width, height, duration_ms)


def _wav_duration_ms(data: bytes, steps: _Steps) -> int | None:
    byte_rate = None
    for name, body, _end in _riff_chunks(data, steps):
        if name == b"fmt ":
            byte_rate = struct.unpack("<I", data[body + 8 : body + 12])[0]
        elif name == b"data" and byte_rate:
            declared = struct.unpack("<I", data[body - 4 : body])[0]
            return round(declared * 1000 / byte_rate)
    return None


def _riff_chunks(data: bytes, steps: _Steps) -> Iterator[tuple[bytes, int, int]]:
    i = 12
    while i + 8 <= len(data):
        steps.take()
        name, size = struct.unpack("<4sI", data[i : i + 8])
        yield name, i + 8, i + 8 + size
        i += 8 + size + (size & 1)
