"""What only the PostgreSQL store does: its migrations under an advisory lock, bytes in the database."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from gateway.jobs.postgres import PostgresStore
from gateway.jobs.postgres_schema import MIGRATIONS, SCHEMA_VERSION
from gateway.jobs.store import Lease
from providers.simkit import free_port
from tests.store.records import make_file, make_job


async def fetch(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def test_stores_opening_together_migrate_once(postgres_database: str) -> None:
    stores = [PostgresStore(postgres_database, max_connections=2) for _ in range(6)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        assert all([await s.ping() for s in stores])
        rows = await fetch(postgres_database, "SELECT version FROM schema_version")
        assert [r["version"] for r in rows] == [SCHEMA_VERSION] == [len(MIGRATIONS)]
        await stores[0].create_job(make_job(1))
        assert (await stores[5].get_job("video_0001")).id == "video_0001"
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_a_newer_schema_is_refused_and_left_alone(postgres_database: str) -> None:
    store = PostgresStore(postgres_database)
    await store.open()
    await store.create_job(make_job(1))
    await store.close()
    await fetch(postgres_database, "UPDATE schema_version SET version = $1", SCHEMA_VERSION + 1)
    newer = PostgresStore(postgres_database)
    with pytest.raises(RuntimeError, match="newer than this vidgate"):
        await newer.open()
    assert not await newer.ping()
    rows = await fetch(postgres_database, "SELECT version FROM schema_version")
    assert [r["version"] for r in rows] == [SCHEMA_VERSION + 1]
    assert len(await fetch(postgres_database, "SELECT id FROM jobs")) == 1


async def test_file_bytes_and_leases_are_rows(postgres_database: str) -> None:
    store = PostgresStore(postgres_database, min_connections=0, max_connections=1)
    await store.open()
    try:
        data = bytes(range(256)) * 4096  # 1 MiB
        await store.put_file(make_file("file_a", data), data)
        await store.create_job(make_job(1), lease=Lease("host-a", 123.5))
        await store.create_job(make_job(2))
        # one connection in the pool: streaming must give it back between chunks
        stream = store.stream_file("file_a", chunk_size=300_000)
        first = await anext(stream)
        assert await asyncio.wait_for(store.get_job("video_0001"), timeout=5) is not None
        rest = [c async for c in stream]
        assert [len(c) for c in (first, *rest)] == [300_000, 300_000, 300_000, 148_576]
        assert b"".join((first, *rest)) == data
    finally:
        await store.close()
    rows = await fetch(postgres_database, "SELECT octet_length(data) AS n FROM file_bytes WHERE id = 'file_a'")
    assert [r["n"] for r in rows] == [len(data)]
    storage = await fetch(
        postgres_database,
        "SELECT attstorage FROM pg_attribute WHERE attrelid = 'file_bytes'::regclass AND attname = 'data'",
    )
    assert [r["attstorage"] for r in storage] == [b"e"]  # uncompressed, out of line: slices read cheaply
    leases = await fetch(postgres_database, "SELECT id, lease_owner, lease_until FROM jobs ORDER BY id")
    assert [tuple(r) for r in leases] == [("video_0001", "host-a", 123.5), ("video_0002", None, None)]


def test_pool_bounds_are_checked() -> None:
    with pytest.raises(ValueError):
        PostgresStore("postgresql://x/y", min_connections=3, max_connections=2)
    with pytest.raises(ValueError):
        PostgresStore("postgresql://x/y", min_connections=0, max_connections=0)


async def test_an_unreachable_server_fails_open_and_ping() -> None:
    store = PostgresStore(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")
    with pytest.raises(OSError):
        await store.open()
    assert not await store.ping()
    with pytest.raises(RuntimeError, match="not open"):
        await store.active_jobs()
