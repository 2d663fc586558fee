"""Stored files: the record, its bytes, reading whole and streaming in chunks."""

from __future__ import annotations

import hashlib

import msgspec
import pytest

from gateway.jobs.store import Store
from tests.store.conftest import Backend
from tests.store.records import make_file


async def test_files_round_trip_stream_and_isolation(store: Store) -> None:
    data = bytes(range(256)) * 1000  # 256 000 bytes
    saved = await store.put_file(make_file("file_a", data), data)
    assert saved.sha256 == hashlib.sha256(data).hexdigest()
    assert saved == msgspec.structs.replace(make_file("file_a", data), sha256=saved.sha256)
    assert await store.get_file("file_a") == saved
    assert await store.get_file("file_a", "t1") == saved
    assert await store.get_file("file_a", "t2") is None
    assert await store.get_file("file_missing") is None
    assert await store.read_file("file_a") == data
    chunks = [c async for c in store.stream_file("file_a", chunk_size=100_000)]
    assert [len(c) for c in chunks] == [100_000, 100_000, 56_000]
    assert b"".join(chunks) == data
    assert [len(c) for c in [c async for c in store.stream_file("file_a")]] == [65536, 65536, 65536, 59392]

    with pytest.raises(FileExistsError):
        await store.put_file(make_file("file_a", b"other"), b"other")
    assert await store.read_file("file_a") == data  # the original bytes survive
    assert await store.get_file("file_a") == saved
    with pytest.raises(ValueError):
        await store.put_file(make_file("file_b", b"abc"), b"abcd")
    assert await store.get_file("file_b") is None
    with pytest.raises(KeyError):
        await store.read_file("file_b")
    with pytest.raises(KeyError):
        async for _ in store.stream_file("file_b"):
            pass


async def test_a_given_digest_is_kept_and_empty_files_work(store: Store) -> None:
    record = msgspec.structs.replace(make_file("file_a", b"abc"), sha256="given")
    assert (await store.put_file(record, b"abc")).sha256 == "given"
    empty = await store.put_file(make_file("file_e", b""), b"")
    assert empty.sha256 == hashlib.sha256(b"").hexdigest()
    assert await store.read_file("file_e") == b""
    assert [c async for c in store.stream_file("file_e")] == []


async def test_stream_can_be_abandoned(store: Store) -> None:
    data = bytes(range(256)) * 4
    await store.put_file(make_file("file_a", data), data)
    stream = store.stream_file("file_a", chunk_size=10)
    assert await anext(stream) == data[:10]
    assert await anext(stream) == data[10:20]
    await stream.aclose()
    assert await store.read_file("file_a") == data  # the store is fine afterwards


async def test_another_process_reads_the_bytes(backend: Backend) -> None:
    a, b = await backend.open(), await backend.open()
    data = b"\x00\xff" * 50_000
    saved = await a.put_file(make_file("file_a", data), data)
    assert await b.get_file("file_a", "t1") == saved
    assert await b.read_file("file_a") == data
    assert b"".join([c async for c in b.stream_file("file_a", chunk_size=4096)]) == data


async def test_delete_file_removes_the_record_and_its_bytes(backend: Backend) -> None:
    store = await backend.open()
    other = await backend.open()  # another process on the same database
    await store.put_file(make_file("file_a", b"abc"), b"abc")
    await store.put_file(make_file("file_b", b"def"), b"def")
    assert await store.delete_file("file_a") is True
    for s in (store, other):
        assert await s.get_file("file_a") is None
        with pytest.raises(KeyError):
            await s.read_file("file_a")
        with pytest.raises(KeyError):
            async for _ in s.stream_file("file_a"):
                pass
        assert await s.read_file("file_b") == b"def"  # only that one
    assert await store.delete_file("file_a") is False
    assert await store.delete_file("file_never") is False
    await store.put_file(make_file("file_a", b"new"), b"new")  # the id is free again
    assert await other.read_file("file_a") == b"new"
