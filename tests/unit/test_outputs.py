"""vidgate's output storage on local disk, and the content checks that guard it."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest

from gateway.outputs import (
    ContentCheckFailed,
    InvalidKey,
    InvalidRange,
    LocalDiskStorage,
    ObjectInfo,
    ObjectStream,
    ObjectTooLarge,
    OutputStorage,
    check_image,
    check_mp4,
    validate_key,
)
from providers.simkit import sample

MP4 = sample("video.mp4")
PNG = sample("cover.png")
JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64
WEBP_HEAD = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 64
HTML = b"<!DOCTYPE html>\n<html><body>AccessDenied: Request has expired</body></html>\n"


async def chunks_of(data: bytes, size: int = 1000, *, pause: bool = False) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        if pause:
            await asyncio.sleep(0)
        yield data[i : i + size]


async def chunk_list(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


async def read_all(stream: ObjectStream) -> bytes:
    return b"".join([chunk async for chunk in stream])


@pytest.fixture
def storage(tmp_path: Path) -> LocalDiskStorage:
    return LocalDiskStorage(tmp_path / "outputs")


# ---------------------------------------------------------------------------
# put / open round trip
# ---------------------------------------------------------------------------


async def test_put_stores_the_bytes_with_their_size_and_sha256(storage: LocalDiskStorage) -> None:
    stored = await storage.put("video_abc/video.mp4", chunks_of(MP4, 777), content_type="video/mp4", max_bytes=10**6, check=check_mp4)

    assert (stored.key, stored.bytes, stored.sha256, stored.content_type) == (
        "video_abc/video.mp4",
        len(MP4),
        hashlib.sha256(MP4).hexdigest(),
        "video/mp4",
    )
    assert (storage.root / "video_abc" / "video.mp4").read_bytes() == MP4
    assert files_under(storage.root) == ["video_abc", "video_abc/video.mp4"]  # no temp file left behind
    async with await storage.open("video_abc/video.mp4", chunk_size=4096) as body:
        assert (body.size, body.length) == (len(MP4), len(MP4))
        parts = [chunk async for chunk in body]
    assert b"".join(parts) == MP4
    assert max(len(p) for p in parts) == 4096


async def test_local_disk_storage_satisfies_the_protocol(storage: LocalDiskStorage) -> None:
    as_protocol: OutputStorage = storage  # type-checked; and the stream is the runtime protocol
    await as_protocol.put("j/a.png", chunk_list([PNG]), content_type="image/png", max_bytes=10**6)
    assert isinstance(await as_protocol.open("j/a.png"), ObjectStream)


async def test_put_replaces_an_existing_object(storage: LocalDiskStorage) -> None:
    await storage.put("j/thumbnail.png", chunk_list([b"old"]), content_type="image/png", max_bytes=100)
    stored = await storage.put("j/thumbnail.png", chunk_list([b"new!"]), content_type="image/png", max_bytes=100)

    assert stored.bytes == 4
    assert await read_all(await storage.open("j/thumbnail.png")) == b"new!"


async def test_exactly_max_bytes_is_accepted(storage: LocalDiskStorage) -> None:
    stored = await storage.put("j/x.bin", chunks_of(b"a" * 5000, 999), content_type="application/octet-stream", max_bytes=5000)
    assert stored.bytes == 5000


async def test_an_empty_object_can_be_stored_when_nothing_checks_it(storage: LocalDiskStorage) -> None:
    stored = await storage.put("j/empty", chunk_list([]), content_type="text/plain", max_bytes=10)
    assert (stored.bytes, stored.sha256) == (0, hashlib.sha256(b"").hexdigest())
    assert await read_all(await storage.open("j/empty")) == b""


# ---------------------------------------------------------------------------
# failed puts leave nothing behind
# ---------------------------------------------------------------------------


async def test_too_large_aborts_mid_stream_and_keeps_the_previous_object(storage: LocalDiskStorage) -> None:
    await storage.put("j/video.mp4", chunk_list([MP4]), content_type="video/mp4", max_bytes=10**6)
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled
        yield MP4[:64]
        while True:
            pulled += 1
            yield b"\0" * 10_000

    with pytest.raises(ObjectTooLarge, match="larger than the limit of 100000 bytes"):
        await storage.put("j/video.mp4", endless(), content_type="video/mp4", max_bytes=100_000, check=check_mp4)

    assert pulled == 10  # stopped at the first chunk past the limit, not at the end of the stream
    assert files_under(storage.root) == ["j", "j/video.mp4"]  # temp file removed
    assert (storage.root / "j" / "video.mp4").read_bytes() == MP4  # the old copy is untouched


async def test_too_large_on_a_fresh_key_leaves_nothing_at_the_key(storage: LocalDiskStorage) -> None:
    with pytest.raises(ObjectTooLarge):
        await storage.put("j/video.mp4", chunks_of(MP4, 1000), content_type="video/mp4", max_bytes=5000)
    assert not await storage.exists("j/video.mp4")
    assert [p for p in files_under(storage.root) if "/" in p] == []


async def test_check_refuses_before_anything_is_written(storage: LocalDiskStorage) -> None:
    seen: list[bytes] = []

    def check(head: bytes) -> None:
        seen.append(head)
        check_mp4(head)

    with pytest.raises(ContentCheckFailed, match="expected an MP4"):
        # one-byte chunks: the check still gets at least the first 64 bytes
        await storage.put("j/video.mp4", chunks_of(HTML, 1), content_type="video/mp4", max_bytes=10**6, check=check)

    assert seen == [HTML[:64]]
    assert not (storage.root / "j").exists() or files_under(storage.root / "j") == []


async def test_a_failing_source_removes_the_temp_file(storage: LocalDiskStorage) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield MP4[:5000]
        yield b"\0" * (2 * 1024 * 1024)  # enough to have reached the disk
        raise ConnectionResetError("peer went away")

    with pytest.raises(ConnectionResetError):
        await storage.put("j/video.mp4", broken(), content_type="video/mp4", max_bytes=10**8)
    assert files_under(storage.root) == ["j"]


async def test_a_cancelled_put_removes_the_temp_file(storage: LocalDiskStorage) -> None:
    started = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        yield MP4[:64]
        yield b"\0" * (2 * 1024 * 1024)
        started.set()
        await asyncio.Event().wait()
        yield b""  # pragma: no cover

    task = asyncio.create_task(storage.put("j/video.mp4", stalls(), content_type="video/mp4", max_bytes=10**8))
    await started.wait()
    assert any(name.startswith(".tmp-") for name in os.listdir(storage.root / "j"))  # mid-write
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert files_under(storage.root) == ["j"]


# ---------------------------------------------------------------------------
# keys
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "../x",
        "j/../../x",
        "/abs",
        "/etc/passwd",
        "a//b",
        "a/",
        "",
        ".hidden",
        "j/.tmp-video.mp4.abc",
        "..",
        "a\\b",
        "C:/x",
        "a/b c",
        "a\x00b",
        "vidéo/x",
        "x" * 600,
        "/".join("a" * 9),
    ],
)
async def test_unsafe_keys_are_refused_everywhere(storage: LocalDiskStorage, key: str) -> None:
    with pytest.raises(InvalidKey):
        validate_key(key)
    with pytest.raises(InvalidKey):
        await storage.put(key, chunk_list([b"x"]), content_type="text/plain", max_bytes=10)
    with pytest.raises(InvalidKey):
        await storage.open(key)
    with pytest.raises(InvalidKey):
        await storage.exists(key)
    with pytest.raises(InvalidKey):
        await storage.delete(key)
    assert not storage.root.exists()  # nothing was created anywhere


@pytest.mark.parametrize("key", ["video_abc/video.mp4", "video_0123/last_frame.webp", "a", "A-1/b_2/c.d"])
async def test_valid_keys_stay_under_the_root(storage: LocalDiskStorage, key: str) -> None:
    assert validate_key(key) == key
    assert storage.root in storage.path(key).parents


# ---------------------------------------------------------------------------
# open / stat / exists / delete
# ---------------------------------------------------------------------------


async def test_open_of_a_missing_key_raises_key_error_before_iteration(storage: LocalDiskStorage) -> None:
    with pytest.raises(KeyError):
        await storage.open("video_abc/video.mp4")
    await storage.put("video_abc/other.png", chunk_list([PNG]), content_type="image/png", max_bytes=10**6)
    with pytest.raises(KeyError):
        await storage.open("video_abc/video.mp4")
    with pytest.raises(KeyError):
        await storage.open("video_abc")  # a directory is not an object


async def test_open_a_range(storage: LocalDiskStorage) -> None:
    await storage.put("j/video.mp4", chunk_list([MP4]), content_type="video/mp4", max_bytes=10**6)

    body = await storage.open("j/video.mp4", start=100, length=1000, chunk_size=300)
    assert (body.size, body.length) == (len(MP4), 1000)
    assert await read_all(body) == MP4[100:1100]
    assert await read_all(await storage.open("j/video.mp4", start=len(MP4) - 10)) == MP4[-10:]
    assert await read_all(await storage.open("j/video.mp4", start=10, length=10**9)) == MP4[10:]
    with pytest.raises(InvalidRange):
        await storage.open("j/video.mp4", start=len(MP4))
    with pytest.raises(InvalidRange):
        await storage.open("j/video.mp4", start=-1)


async def test_an_open_stream_keeps_reading_what_it_opened(storage: LocalDiskStorage) -> None:
    old = b"A" * 300_000
    await storage.put("j/video.mp4", chunk_list([old]), content_type="video/mp4", max_bytes=10**6)
    body = await storage.open("j/video.mp4", chunk_size=1000)
    first = await anext(body)

    await storage.put("j/video.mp4", chunk_list([b"B" * 10]), content_type="video/mp4", max_bytes=10**6)
    rest = await read_all(body)
    assert first + rest == old
    assert await storage.delete("j/video.mp4")


async def test_stat_exists_and_delete(storage: LocalDiskStorage) -> None:
    assert await storage.stat("j/a.png") is None
    assert not await storage.exists("j/a.png")
    assert await storage.delete("j/a.png") is False

    await storage.put("j/a.png", chunk_list([PNG]), content_type="image/png", max_bytes=10**6)
    info = await storage.stat("j/a.png")
    assert info == ObjectInfo(key="j/a.png", bytes=len(PNG), modified_at=info.modified_at)  # type: ignore[union-attr]
    assert abs(info.modified_at - time.time()) < 60  # type: ignore[union-attr]
    assert await storage.exists("j/a.png")

    assert await storage.delete("j/a.png") is True
    assert not await storage.exists("j/a.png")
    assert files_under(storage.root) == []  # the emptied job directory went too


async def test_early_aclose_releases_the_file(storage: LocalDiskStorage) -> None:
    await storage.put("j/v.mp4", chunk_list([MP4]), content_type="video/mp4", max_bytes=10**6)
    body = await storage.open("j/v.mp4", chunk_size=100)
    await anext(body)
    await body.aclose()
    with pytest.raises(StopAsyncIteration):
        await anext(body)


# ---------------------------------------------------------------------------
# sweep
# ---------------------------------------------------------------------------


async def test_sweep_deletes_by_age_and_removes_emptied_job_directories(storage: LocalDiskStorage) -> None:
    now = time.time()
    day = 86400.0
    for key in ("old_job/video.mp4", "old_job/thumbnail.png", "mixed_job/video.mp4", "mixed_job/last_frame.png", "new_job/video.mp4"):
        await storage.put(key, chunk_list([b"data"]), content_type="video/mp4", max_bytes=10)
    old = now - 10 * day
    for key in ("old_job/video.mp4", "old_job/thumbnail.png", "mixed_job/video.mp4"):
        os.utime(storage.path(key), (old, old))
    # a temp file a crash left behind, and an empty job directory from a put that never wrote
    abandoned = storage.root / "mixed_job" / ".tmp-last_frame.png.x1"
    abandoned.write_bytes(b"partial")
    os.utime(abandoned, (old, old))
    (storage.root / "empty_job").mkdir()
    os.utime(storage.root / "empty_job", (old, old))
    (storage.root / "fresh_empty_job").mkdir()  # may be a put about to write: left alone

    deleted = await storage.sweep(now - 7 * day)

    assert deleted == 3  # objects only; the temp file is removed but not counted
    assert files_under(storage.root) == [
        "fresh_empty_job",
        "mixed_job",
        "mixed_job/last_frame.png",
        "new_job",
        "new_job/video.mp4",
    ]
    assert storage.root.is_dir()
    assert await storage.sweep(now - 7 * day) == 0


async def test_sweep_of_a_missing_root_is_a_no_op(tmp_path: Path) -> None:
    assert await LocalDiskStorage(tmp_path / "never-created").sweep(time.time()) == 0


async def test_a_put_survives_a_sweep_removing_its_directory(storage: LocalDiskStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    # The sweep may rmdir an empty directory between the put's mkdir and its temp file.
    real_mkdir = os.mkdir
    raced = 0

    def mkdir_then_sweep(path: str | os.PathLike[str], *args: int) -> None:
        nonlocal raced
        real_mkdir(path, *args)
        if raced == 0 and Path(path).name == "j":
            raced += 1
            os.rmdir(path)  # what a concurrent sweep would do

    monkeypatch.setattr(os, "mkdir", mkdir_then_sweep)
    stored = await storage.put("j/video.mp4", chunk_list([MP4]), content_type="video/mp4", max_bytes=10**6)
    assert raced == 1
    assert stored.bytes == len(MP4)
    assert storage.path("j/video.mp4").read_bytes() == MP4


async def test_a_new_directory_is_fsynced_into_its_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = LocalDiskStorage(tmp_path / "outputs")
    synced: list[tuple[int, int]] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        st = os.fstat(fd)
        synced.append((st.st_dev, st.st_ino))
        real_fsync(fd)

    def identity(path: Path) -> tuple[int, int]:
        st = path.stat()
        return st.st_dev, st.st_ino

    monkeypatch.setattr(os, "fsync", recording_fsync)
    await storage.put("j/video.mp4", chunk_list([MP4]), content_type="video/mp4", max_bytes=10**6)
    root, job = storage.root, storage.root / "j"
    # the file, its directory, and the entries of the two directories made for it
    assert sorted(synced) == sorted(identity(p) for p in (job / "video.mp4", job, root, tmp_path))

    synced.clear()
    await storage.put("j/thumbnail.png", chunk_list([PNG]), content_type="image/png", max_bytes=10**6)
    assert sorted(synced) == sorted(identity(p) for p in (job / "thumbnail.png", job))  # nothing new above it


async def test_without_fsync_a_put_makes_its_directories_and_syncs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = LocalDiskStorage(tmp_path / "a" / "b", fsync=False)
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    stored = await storage.put("j/k/video.mp4", chunk_list([MP4]), content_type="video/mp4", max_bytes=10**6)
    assert stored.bytes == len(MP4)
    assert storage.path("j/k/video.mp4").read_bytes() == MP4
    assert synced == []


# ---------------------------------------------------------------------------
# concurrency and memory
# ---------------------------------------------------------------------------


async def test_concurrent_writers_of_one_key_leave_one_whole_file(storage: LocalDiskStorage) -> None:
    a = MP4[:64] + b"A" * 1_500_000
    b = MP4[:64] + b"B" * 1_000_000
    key = "j/video.mp4"
    seen: set[bytes] = set()
    done = False

    async def reader() -> None:
        path = storage.path(key)
        while not done:
            try:
                seen.add(hashlib.sha256(path.read_bytes()).digest())
            except FileNotFoundError:
                pass
            await asyncio.sleep(0)

    watcher = asyncio.create_task(reader())
    results = await asyncio.gather(
        *(storage.put(key, chunks_of(data, 50_000, pause=True), content_type="video/mp4", max_bytes=10**7, check=check_mp4) for data in (a, b, a, b))
    )
    done = True
    await watcher

    assert sorted(r.bytes for r in results) == sorted(len(x) for x in (a, b, a, b))
    final = storage.path(key).read_bytes()
    assert final in (a, b)
    assert seen <= {hashlib.sha256(a).digest(), hashlib.sha256(b).digest()}  # never a partial file
    assert files_under(storage.root) == ["j", "j/video.mp4"]


async def test_a_50_mb_put_is_streamed_not_held(storage: LocalDiskStorage) -> None:
    size = 50 * 1024 * 1024
    expected = hashlib.sha256()

    async def generate() -> AsyncIterator[bytes]:
        header = MP4[:64]
        expected.update(header)
        yield header
        sent, n = len(header), 0
        while sent < size:
            part = bytes([n % 251]) * min(64 * 1024, size - sent)  # a new object every time
            expected.update(part)
            sent, n = sent + len(part), n + 1
            yield part

    tracemalloc.start()
    try:
        stored = await storage.put("big/video.mp4", generate(), content_type="video/mp4", max_bytes=size, check=check_mp4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert stored.bytes == size
    assert stored.sha256 == expected.hexdigest()
    assert storage.path("big/video.mp4").stat().st_size == size
    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB for a {size / 2**20:.0f} MiB object"


async def test_file_writes_leave_the_event_loop_free(storage: LocalDiskStorage) -> None:
    size = 20 * 1024 * 1024
    ticks = 0
    seen: list[int] = []

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    async def generate() -> AsyncIterator[bytes]:
        # never awaits: if the writes ran on the loop, nothing else would run until the end
        yield MP4[:64]
        seen.append(ticks)  # after the temp file exists: from here on only the writes can yield
        for _ in range(size // (64 * 1024)):
            yield b"\1" * (64 * 1024)
        seen.append(ticks)

    tick_task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        await storage.put("j/video.mp4", generate(), content_type="video/mp4", max_bytes=size + 64)
    finally:
        tick_task.cancel()
    assert seen[1] - seen[0] >= 10, f"only {seen[1] - seen[0]} turns of the loop while 20 MiB were written"


# ---------------------------------------------------------------------------
# content checks
# ---------------------------------------------------------------------------


def test_check_mp4_accepts_an_mp4() -> None:
    assert check_mp4(MP4[:64]) == "video/mp4"
    large = b"\x00\x00\x00\x01ftyp" + (24).to_bytes(8, "big") + b"isom"  # 64-bit box size
    assert check_mp4(large) == "video/mp4"


@pytest.mark.parametrize(
    ("head", "seen"),
    [
        (PNG[:64], "got image/png data"),
        (HTML[:64], "got text starting '<!DOCTYPE html> <html><b'"),
        (b"", "got an empty body"),
        (b"\x00\x00\x00\x03ftypisom", "'ftyp' box with an impossible size of 3 bytes"),
        (b"\x1a\x45\xdf\xa3" + b"\x00" * 60, "got video/webm data"),
        (bytes(range(200, 220)), "got bytes c8 c9 ca cb cc cd ce cf d0 d1 d2 d3"),
    ],
)
def test_check_mp4_names_what_it_expected_and_saw(head: bytes, seen: str) -> None:
    with pytest.raises(ContentCheckFailed) as caught:
        check_mp4(head)
    assert str(caught.value).startswith("expected an MP4 video (ISO BMFF: a box size, then 'ftyp' at bytes 4..8), ")
    assert seen in str(caught.value)


def test_check_image_accepts_png_jpeg_and_webp() -> None:
    assert check_image(PNG[:64]) == "image/png"
    assert check_image(JPEG_HEAD) == "image/jpeg"
    assert check_image(WEBP_HEAD) == "image/webp"


@pytest.mark.parametrize(
    ("head", "seen"),
    [
        (b"GIF89a" + b"\x00" * 58, "image/gif data"),
        (MP4[:64], "video/mp4 data"),
        (b'{"error": "not found"}', 'text starting \'{"error": "not found"}\''),
    ],
)
def test_check_image_refuses_other_content(head: bytes, seen: str) -> None:
    with pytest.raises(ContentCheckFailed, match="expected a PNG, JPEG or WebP image") as caught:
        check_image(head)
    assert caught.value.seen.endswith(seen)
