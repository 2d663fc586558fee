"""Where vidgate keeps its own copies of finished outputs.

`OutputStorage` is what the copier and the content endpoint need from a store; it is
shaped so that an S3-compatible store can implement it (a bounded streaming put that
hashes on the way, a ranged streaming get, head, delete, an age sweep).
`LocalDiskStorage` implements it on a local directory:

    storage = LocalDiskStorage(Path("vidgate-outputs"))
    stored = await storage.put("video_abc/video.mp4", chunks, content_type="video/mp4", max_bytes=2**31, check=check_mp4)
    async with await storage.open("video_abc/video.mp4") as body:   # KeyError here if absent
        async for chunk in body: ...
    await storage.sweep(time.time() - retention)

A put streams into a temp file beside its target and renames it into place once it is
complete and fsynced, so a reader sees the old object or the new one, never a part.
Temp files are named with a leading dot, which no valid key has, so they are never
served, and a sweep removes the ones a crash left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import re
import stat
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol, Self, runtime_checkable

import msgspec

DEFAULT_CHUNK_SIZE = 256 * 1024
HEAD_BYTES = 64  # what a content check gets at least (or the whole object, if smaller)
_WRITE_BATCH = 1024 * 1024  # chunks are gathered up to this size per trip to the worker thread
_TEMP_PREFIX = ".tmp-"
_KEY_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_MAX_KEY_LENGTH = 512
_MAX_KEY_DEPTH = 8

Check = Callable[[bytes], object]  # raises to refuse the object; its return value is ignored


# ---------------------------------------------------------------------------
# Errors and records
# ---------------------------------------------------------------------------


class OutputError(Exception):
    """Base of everything the outputs package raises on purpose."""


class InvalidKey(OutputError, ValueError):
    """A storage key that is not `segment(/segment)*` of `[A-Za-z0-9][A-Za-z0-9._-]*`."""


class ObjectTooLarge(OutputError):
    def __init__(self, key: str, limit: int) -> None:
        super().__init__(f"{key}: larger than the limit of {limit} bytes")
        self.key = key
        self.limit = limit


class InvalidRange(OutputError, ValueError):
    """A byte range that does not fit the object (HTTP 416)."""


class StoredObject(msgspec.Struct, frozen=True, kw_only=True):
    """What a completed put wrote."""

    key: str
    bytes: int
    sha256: str  # hex
    content_type: str


class ObjectInfo(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    bytes: int
    modified_at: float  # epoch seconds


@runtime_checkable
class ObjectStream(Protocol):
    """An opened object: iterate it for the bytes, `aclose()` it (or use `async with`)
    if you stop early. It closes itself when iterated to the end."""

    key: str
    size: int  # the whole object's size
    length: int  # how many bytes this stream yields (the range asked for)
    modified_at: float

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def __anext__(self) -> bytes: ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...


class OutputStorage(Protocol):
    async def put(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        *,
        content_type: str,
        max_bytes: int,
        check: Check | None = None,
    ) -> StoredObject:
        """Store the stream under `key`, replacing any object there, all or nothing.

        Raises `ObjectTooLarge` as soon as more than `max_bytes` arrived, and whatever
        `check(head)` raises, where head is at least the first `HEAD_BYTES` bytes (all
        of them for a shorter object) and is checked before anything is written. On any
        failure, or cancellation, nothing is left at `key` that was not there before."""
        ...

    async def open(self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE, start: int = 0, length: int | None = None) -> ObjectStream:
        """Open `key` for reading, from byte `start`, `length` bytes (default: to the end).

        Raises `KeyError` here, before any byte is read, when the object does not exist,
        and `InvalidRange` when `start` is past the end. The returned stream keeps
        reading the object it opened even if it is replaced or deleted meanwhile."""
        ...

    async def stat(self, key: str) -> ObjectInfo | None: ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> bool:
        """Remove `key`; False if there was nothing to remove."""
        ...

    async def sweep(self, older_than: float) -> int:
        """Delete every object last written before `older_than` (epoch seconds);
        returns how many."""
        ...


def validate_key(key: str) -> str:
    """`key` if it is a safe relative key (e.g. "video_abc/video.mp4"), else `InvalidKey`.

    Segments start with a letter or digit and use only letters, digits and `._-`, so a
    key has no `..`, no leading `/`, no backslash, no hidden name, and cannot leave the
    storage root however it is joined."""
    if not isinstance(key, str) or not key:
        raise InvalidKey("a storage key must be a non-empty string")
    if len(key) > _MAX_KEY_LENGTH:
        raise InvalidKey(f"storage key longer than {_MAX_KEY_LENGTH} characters")
    segments = key.split("/")
    if len(segments) > _MAX_KEY_DEPTH:
        raise InvalidKey(f"storage key {key!r} has more than {_MAX_KEY_DEPTH} segments")
    for segment in segments:
        if not _KEY_SEGMENT.fullmatch(segment):
            raise InvalidKey(
                f"storage key {key!r} is not allowed: each '/'-separated segment must start with a letter or "
                "digit and use only letters, digits, '.', '_' and '-'"
            )
    return key


async def peek(chunks: AsyncIterator[bytes], size: int = HEAD_BYTES) -> tuple[bytes, AsyncIterator[bytes]]:
    """Read at least `size` bytes off `chunks` (fewer only if it ends first).

    Returns them and an iterator that yields the whole stream again, head included."""
    parts: list[bytes] = []
    have = 0
    async for chunk in chunks:
        if chunk:
            parts.append(chunk)
            have += len(chunk)
        if have >= size:
            break
    head = b"".join(parts)

    async def replay() -> AsyncIterator[bytes]:
        if head:
            yield head
        if have >= size:  # the source may have more
            async for chunk in chunks:
                yield chunk

    return head, replay()


# ---------------------------------------------------------------------------
# Local disk
# ---------------------------------------------------------------------------


class LocalDiskStorage:
    """`OutputStorage` on a directory. File I/O runs on worker threads, never on the loop.

    `fsync=False` skips the fsyncs (tests of throughput only; a crash may then leave an
    empty or partial file at a key)."""

    def __init__(self, root: Path | str, *, fsync: bool = True) -> None:
        self.root = Path(root).resolve()
        self._fsync = fsync

    def path(self, key: str) -> Path:
        """The file behind `key` (validated)."""
        return self.root.joinpath(*validate_key(key).split("/"))

    # -- writing ---------------------------------------------------------------

    async def put(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        *,
        content_type: str,
        max_bytes: int,
        check: Check | None = None,
    ) -> StoredObject:
        target = self.path(key)
        head, stream = await peek(chunks, HEAD_BYTES)
        if len(head) > max_bytes:
            raise ObjectTooLarge(key, max_bytes)
        if check is not None:
            check(head)  # before a file exists: a refused object costs no disk
        # Each trip to a worker thread costs a hand-off both ways, so the temp file is made
        # with the first batch and committed with the last: an object of one batch (most
        # videos under `_WRITE_BATCH`, every thumbnail) is written in one trip.
        # (Cancelled during a trip, the thread may still create a temp file that nobody
        # removes: a sweep does, as it does those of a crashed process.)
        hasher = hashlib.sha256()
        size = 0
        batch: list[bytes] = []
        batched = 0
        opened: tuple[io.BufferedWriter, str] | None = None
        try:
            async for chunk in stream:
                size += len(chunk)
                if size > max_bytes:
                    raise ObjectTooLarge(key, max_bytes)
                batch.append(chunk)
                batched += len(chunk)
                if batched >= _WRITE_BATCH:
                    opened = await asyncio.to_thread(self._write_batch, opened, target, hasher, batch, commit=False)
                    batch, batched = [], 0
            await asyncio.to_thread(self._write_batch, opened, target, hasher, batch, commit=True)
        except BaseException:
            if opened is not None:
                # Synchronous on purpose: it must run even when the task is being cancelled.
                # close() waits for a write still running on a worker thread (the buffered
                # file's lock), so the file is never closed under it.
                _discard(*opened)
            raise
        return StoredObject(key=key, bytes=size, sha256=hasher.hexdigest(), content_type=content_type)

    def _write_batch(
        self, opened: tuple[io.BufferedWriter, str] | None, target: Path, hasher: hashlib._Hash, batch: list[bytes], *, commit: bool
    ) -> tuple[io.BufferedWriter, str]:
        """On a worker thread: the temp file made if it is not yet, `batch` written, and with
        `commit` the file made durable under its key. A failure here after the temp file was
        made removes it before raising (`put` knows of the file only once this returns)."""
        made = opened is None
        fh, temp = self._create_temp(target) if opened is None else opened
        try:
            _write(fh, hasher, batch)
            if commit:
                self._commit(fh, temp, target)
        except BaseException:
            if made:
                _discard(fh, temp)
            raise
        return fh, temp

    def _create_temp(self, target: Path) -> tuple[io.BufferedWriter, str]:
        # A sweep may remove the (empty) directory between mkdir and mkstemp: try again.
        for attempt in range(5):
            self._make_dir(target.parent)
            try:
                fd, temp = tempfile.mkstemp(prefix=f"{_TEMP_PREFIX}{target.name}.", dir=target.parent)
            except FileNotFoundError:
                if attempt == 4:
                    raise
                continue
            return os.fdopen(fd, "wb"), temp
        raise AssertionError("unreachable")

    def _make_dir(self, directory: Path) -> None:
        """`directory` made, with any parents missing. With `fsync`, each one made here is
        fsynced into its parent: `_commit` makes a file's entry durable in its own directory
        only, and a new job's directory is new too. (A put that finds the directory made by
        a concurrent one does not wait for that one's fsync; the copier records a job's
        outputs only once all of its puts have returned.)"""
        try:
            os.mkdir(directory)
        except FileExistsError:
            return
        except FileNotFoundError:
            if directory.parent == directory:
                raise
            self._make_dir(directory.parent)
            try:
                os.mkdir(directory)
            except FileExistsError:
                return
        if self._fsync:
            _fsync_dir(directory.parent)

    def _commit(self, fh: io.BufferedWriter, temp: str, target: Path) -> None:
        fh.flush()
        if self._fsync:
            os.fsync(fh.fileno())
        fh.close()
        os.replace(temp, target)  # atomic: readers see the old file or the new one
        if self._fsync:
            _fsync_dir(target.parent)

    # -- reading ---------------------------------------------------------------

    async def open(self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE, start: int = 0, length: int | None = None) -> ObjectStream:
        path = self.path(key)
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        if start < 0 or (length is not None and length < 0):
            raise InvalidRange(f"{key}: a range must not be negative")
        try:
            fh, st = await asyncio.to_thread(_open_for_read, path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyError(key) from None
        if start > 0 and start >= st.st_size:
            fh.close()
            raise InvalidRange(f"{key}: range starts at {start}, the object has {st.st_size} bytes")
        remaining = st.st_size - start if length is None else min(length, st.st_size - start)
        return _FileStream(key, fh, size=st.st_size, start=start, length=remaining, modified_at=st.st_mtime, chunk_size=chunk_size)

    async def stat(self, key: str) -> ObjectInfo | None:
        path = self.path(key)
        try:
            st = await asyncio.to_thread(path.stat)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not _is_regular(st.st_mode):
            return None
        return ObjectInfo(key=key, bytes=st.st_size, modified_at=st.st_mtime)

    async def exists(self, key: str) -> bool:
        return await self.stat(key) is not None

    # -- removing --------------------------------------------------------------

    async def delete(self, key: str) -> bool:
        path = self.path(key)
        return await asyncio.to_thread(self._delete, path)

    def _delete(self, path: Path) -> bool:
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return False
        self._prune(path.parent)
        return True

    async def sweep(self, older_than: float) -> int:
        """Delete objects (and abandoned temp files) last modified before `older_than`,
        then directories left empty. Returns how many objects were deleted (temp files
        are not counted)."""
        return await asyncio.to_thread(self._sweep, older_than)

    def _sweep(self, older_than: float) -> int:
        if not self.root.is_dir():
            return 0
        deleted = 0
        for dirpath, _dirnames, filenames in os.walk(self.root, topdown=False):
            directory = Path(dirpath)
            removed_here = False
            for name in filenames:
                path = directory / name
                try:
                    st = path.lstat()
                except FileNotFoundError:
                    continue
                if st.st_mtime >= older_than:
                    continue
                try:
                    path.unlink()
                except FileNotFoundError:
                    continue
                removed_here = True
                if not name.startswith(_TEMP_PREFIX):
                    deleted += 1
            if directory == self.root:
                continue
            # A directory emptied now, or empty and stale (a put that failed before its
            # first byte). A fresh empty one may be a put's, about to get its temp file.
            try:
                stale = directory.stat().st_mtime < older_than
            except FileNotFoundError:
                continue
            if (removed_here or stale) and not _has_entries(directory):
                with contextlib.suppress(OSError):  # not empty after all: someone is writing
                    directory.rmdir()
        return deleted

    def _prune(self, directory: Path) -> None:
        """Remove now-empty directories from `directory` up to (not including) the root."""
        while directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent


def _has_entries(directory: Path) -> bool:
    try:
        with os.scandir(directory) as entries:
            return any(True for _ in entries)
    except FileNotFoundError:
        return False


class _FileStream:
    """An open local file read in chunks on worker threads; see `ObjectStream`."""

    def __init__(self, key: str, fh: io.BufferedReader, *, size: int, start: int, length: int, modified_at: float, chunk_size: int) -> None:
        self.key = key
        self.size = size
        self.length = length
        self.modified_at = modified_at
        self._fh: io.BufferedReader | None = fh
        self._start = start
        self._left = length
        self._chunk_size = chunk_size
        self._positioned = start == 0

    def __aiter__(self) -> _FileStream:
        return self

    async def __anext__(self) -> bytes:
        if self._left <= 0 or self._fh is None:
            await self.aclose()
            raise StopAsyncIteration
        want = min(self._chunk_size, self._left)
        try:
            chunk = await asyncio.to_thread(self._read, want)
        except BaseException:
            await self.aclose()
            raise
        if not chunk:  # the file shrank under us: it cannot, renames replace whole files
            await self.aclose()
            raise StopAsyncIteration
        self._left -= len(chunk)
        return chunk

    def _read(self, n: int) -> bytes:
        fh = self._fh
        if fh is None:
            return b""
        if not self._positioned:
            fh.seek(self._start)
            self._positioned = True
        return fh.read(n)

    async def aclose(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            fh.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _discard(fh: io.BufferedWriter, temp: str) -> None:
    """A temp file given up: closed and removed, whatever state it is in."""
    with contextlib.suppress(OSError):
        fh.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temp)


def _write(fh: io.BufferedWriter, hasher: hashlib._Hash, parts: list[bytes]) -> None:
    for part in parts:
        hasher.update(part)
        fh.write(part)


def _open_for_read(path: Path) -> tuple[io.BufferedReader, os.stat_result]:
    fh = open(path, "rb")  # noqa: SIM115 - handed to the stream, which closes it
    try:
        st = os.fstat(fh.fileno())
        if not _is_regular(st.st_mode):
            raise IsADirectoryError(str(path))
    except BaseException:
        fh.close()
        raise
    return fh, st


def _is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
