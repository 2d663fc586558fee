"""Probing does bounded work whatever the bytes claim, and still reads real files.

Work is measured structurally: `Counted` bytes count every index and slice the
probe takes of the file, so a walk over millions of tiny segments shows up as
millions of reads, whatever the machine's speed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers.media_probe import MAX_SEGMENTS, Probe, probe, sniff_type

SAMPLES = Path(__file__).parents[2] / "providers" / "sim_media"

# A few reads per segment walked, plus sniffing the magic numbers.
READ_BUDGET = 4 * MAX_SEGMENTS + 32
CRAFTED_SIZE = 2 * 2**20


class Counted(bytes):
    """Bytes that count how often the probe indexes or slices them."""

    reads: int

    def __getitem__(self, key: Any) -> Any:
        self.reads = getattr(self, "reads", 0) + 1
        return super().__getitem__(key)


def probe_counted(data: bytes) -> tuple[Probe, int]:
    counted = Counted(data)
    result = probe(counted)
    return result, getattr(counted, "reads", 0)


# ---------------------------------------------------------------------------
# building files
# ---------------------------------------------------------------------------


def box(name: bytes, body: bytes = b"") -> bytes:
    return struct.pack(">I4s", 8 + len(body), name) + body


FTYP = box(b"ftyp", b"isom\0\0\0\0")


def mvhd(timescale: int, duration: int) -> bytes:
    return box(b"mvhd", b"\0\0\0\0" + b"\0" * 8 + struct.pack(">II", timescale, duration) + b"\0" * 80)


def tkhd(width: int, height: int) -> bytes:
    return box(b"tkhd", b"\0" * 76 + struct.pack(">II", width << 16, height << 16))


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", 2 + len(payload)) + payload


def sof(width: int, height: int) -> bytes:
    return jpeg_segment(0xC0, b"\x08" + struct.pack(">HH", height, width) + b"\x03" + b"\0" * 9)


SOI = b"\xff\xd8"
APP0 = jpeg_segment(0xE0, b"JFIF\0\x01\x02\0\0\x01\0\x01\0\0")
SOS = jpeg_segment(0xDA, b"\x03" + b"\0" * 9)


def riff_chunk(name: bytes, body: bytes) -> bytes:
    return name + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1)


def wav(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


FMT_8K = riff_chunk(b"fmt ", struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16))


# ---------------------------------------------------------------------------
# crafted files: many tiny segments give unknown facts after bounded work
# ---------------------------------------------------------------------------


def crafted_jpeg() -> bytes:
    return b"\xff\xd8\xff" + b"\xff\x01\x00\x00" * (CRAFTED_SIZE // 4)


def crafted_jpeg_garbage() -> bytes:
    return SOI + APP0 + b"\0" * CRAFTED_SIZE + sof(640, 360)  # no marker for megabytes


def crafted_mp4_top() -> bytes:
    return FTYP + box(b"free") * (CRAFTED_SIZE // 8)


def crafted_mp4_in_moov() -> bytes:
    return FTYP + box(b"moov", box(b"free") * (CRAFTED_SIZE // 8))


def crafted_mp4_in_trak() -> bytes:
    return FTYP + box(b"moov", box(b"trak", box(b"free") * (CRAFTED_SIZE // 8)))


def crafted_mp4_empty_traks() -> bytes:
    return FTYP + box(b"moov", box(b"trak") * (CRAFTED_SIZE // 8))


def crafted_wav() -> bytes:
    return wav(FMT_8K, riff_chunk(b"junk", b"") * (CRAFTED_SIZE // 8))


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (crafted_jpeg, "image/jpeg"),
        (crafted_mp4_top, "video/mp4"),
        (crafted_mp4_in_moov, "video/mp4"),
        (crafted_mp4_in_trak, "video/mp4"),
        (crafted_mp4_empty_traks, "video/mp4"),
        (crafted_wav, "audio/wav"),
    ],
)
def test_a_crafted_file_of_tiny_segments_gives_unknown_facts_after_bounded_work(make: Callable[[], bytes], kind: str) -> None:
    result, reads = probe_counted(make())
    assert result == Probe(kind)
    assert reads <= READ_BUDGET


def test_bytes_between_jpeg_markers_are_skipped_not_walked() -> None:
    result, reads = probe_counted(crafted_jpeg_garbage())
    assert result == Probe("image/jpeg", 640, 360)
    assert reads < 16


def test_jpeg_walk_stops_at_the_first_scan() -> None:
    # The frame header precedes the first scan; what follows SOS is entropy-coded data
    # (here stuffed 0xFF 0x00 pairs, each of which looks like a marker).
    data = SOI + APP0 + SOS + b"\xff\x00" * (CRAFTED_SIZE // 2) + sof(640, 360)
    result, reads = probe_counted(data)
    assert result == Probe("image/jpeg")
    assert reads < 16


# ---------------------------------------------------------------------------
# real files probe exactly as before
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("image.png", Probe("image/png", 640, 360)),
        ("cover.png", Probe("image/png", 320, 180)),
        ("last_frame.png", Probe("image/png", 320, 180)),
        ("video.mp4", Probe("video/mp4", 320, 180, 2000)),
        ("audio.wav", Probe("audio/wav", duration_ms=3000)),
    ],
)
def test_sample_files_probe_as_before(name: str, expected: Probe) -> None:
    result, reads = probe_counted((SAMPLES / name).read_bytes())
    assert result == expected
    assert reads < 64


def test_jpeg_with_megabytes_of_metadata_before_the_frame_header() -> None:
    # e.g. extended XMP or an ICC profile split over maximal APP segments
    app = b"".join(jpeg_segment(0xE1, bytes([i % 251]) * 65533) for i in range(300))
    data = SOI + APP0 + app + sof(4032, 3024) + SOS + b"\x12\x34" * 1000
    assert probe(data) == Probe("image/jpeg", 4032, 3024)


def test_mp4_with_moov_after_a_large_64_bit_mdat() -> None:
    mdat = struct.pack(">I4sQ", 1, b"mdat", 16 + 3 * 2**20) + b"\0" * (3 * 2**20)
    moov = box(b"moov", mvhd(600, 9000) + box(b"trak", tkhd(0, 0)) + box(b"trak", tkhd(1920, 1080)))
    assert probe(FTYP + box(b"free") + mdat + moov) == Probe("video/mp4", 1920, 1080, 15000)


def test_fragmented_mp4_answers_from_its_moov_without_walking_the_fragments() -> None:
    moov = box(b"moov", mvhd(1000, 60_000) + box(b"trak", tkhd(1280, 720) + box(b"mdia")))
    fragments = (box(b"moof", box(b"mfhd", b"\0" * 8)) + box(b"mdat", b"\0" * 32)) * 5000
    result, reads = probe_counted(FTYP + moov + fragments)
    assert result == Probe("video/mp4", 1280, 720, 60_000)
    assert reads < 64


def test_wav_with_metadata_chunks_before_its_data() -> None:
    data = wav(riff_chunk(b"LIST", b"INFOISFT" + b"x" * 33), FMT_8K, riff_chunk(b"fact", b"\0" * 4), riff_chunk(b"data", b"\0" * 32000))
    assert probe(data) == Probe("audio/wav", duration_ms=2000)


# ---------------------------------------------------------------------------
# fuzzing: never raises, always within the budget
# ---------------------------------------------------------------------------

MAGICS = [
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"RIFF\0\0\0\0WEBP",
    b"RIFF\0\0\0\0WAVE",
    b"GIF89a",
    b"\0\0\0\x10ftypisom",
    b"\0\0\0\x10ftypqt  ",
    b"\x1a\x45\xdf\xa3",
    b"ID3",
]
REAL = [(SAMPLES / name).read_bytes() for name in ("image.png", "video.mp4", "audio.wav")]
FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])


def assert_bounded(data: bytes) -> None:
    result, reads = probe_counted(data)
    assert isinstance(result, Probe)
    assert result.content_type == sniff_type(data)
    assert reads <= READ_BUDGET


@FUZZ
@given(st.sampled_from(MAGICS), st.binary(max_size=4096))
def test_fuzz_random_bytes_behind_a_magic_number(magic: bytes, tail: bytes) -> None:
    assert_bounded(magic + tail)


@st.composite
def mutated_samples(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(REAL)))
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "size"]))
        if action == "flip":
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif action == "truncate":
            del data[at:]
        else:  # a length field somewhere claims anything
            data[at : at + 4] = draw(st.sampled_from([b"\0\0\0\0", b"\0\0\0\x01", b"\xff\xff\xff\xff", b"\0\0\0\x08"]))
        if not data:
            break
    return bytes(data)


@FUZZ
@given(mutated_samples())
def test_fuzz_mutated_real_files(data: bytes) -> None:
    assert_bounded(data)


_BOX_NAMES = st.sampled_from([b"moov", b"trak", b"mvhd", b"tkhd", b"mdat", b"free", b"mdia"])
_boxes = st.recursive(
    st.tuples(_BOX_NAMES, st.binary(max_size=40)).map(lambda t: box(*t)),
    lambda children: st.tuples(_BOX_NAMES, st.lists(children, max_size=6)).map(lambda t: box(t[0], b"".join(t[1]))),
    max_leaves=40,
)
_jpeg_segments = st.builds(jpeg_segment, st.integers(0, 255), st.binary(max_size=24))
_riff_chunks = st.builds(riff_chunk, st.sampled_from([b"fmt ", b"data", b"LIST", b"junk"]), st.binary(max_size=24))


@FUZZ
@given(
    st.one_of(
        st.lists(_boxes, max_size=8).map(lambda bs: FTYP + b"".join(bs)),
        st.lists(_jpeg_segments, max_size=40).map(lambda ss: SOI + b"".join(ss)),
        st.lists(_riff_chunks, max_size=40).map(lambda cs: wav(*cs)),
    )
)
def test_fuzz_well_framed_structures(data: bytes) -> None:
    assert_bounded(data)
