"""What only the PostgreSQL store does: its migrations under an advisory lock, bytes in the database."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import msgspec
import pytest

from gateway.jobs.postgres import PostgresStore
from gateway.jobs.postgres_schema import MIGRATIONS, SCHEMA_VERSION
from gateway.jobs.store import JobWrite, Lease
from providers.base import JobStatus
from providers.simkit import free_port
from tests.store.records import PER_JOB_LEASES, assert_per_job_leases_became_a_heartbeat, make_delivery, make_file, make_job


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
    leases = await fetch(postgres_database, "SELECT id, lease_owner FROM jobs ORDER BY id")
    assert [tuple(r) for r in leases] == [("video_0001", "host-a"), ("video_0002", None)]
    owners = await fetch(postgres_database, "SELECT owner, until FROM owners")
    assert [tuple(r) for r in owners] == [("host-a", 123.5)]


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


async def test_overlapping_batches_and_lease_writes_from_two_replicas_never_deadlock(postgres_database: str) -> None:
    # Two replicas' group commits, slot grants and lease writes over the same jobs, each in
    # its own order: rows locked in no fixed order deadlock (PostgreSQL aborts one side).
    a, b = PostgresStore(postgres_database), PostgresStore(postgres_database)
    await a.open()
    await b.open()
    try:
        ids = [f"video_{n:04d}" for n in range(40)]
        for n in range(40):
            await a.create_job(make_job(n), lease=Lease("a", 1e9))
        rng = random.Random(14)

        async def batch(store: PostgresStore) -> None:
            jobs = [await store.get_job(job_id) for job_id in rng.sample(ids, 25)]
            for job in jobs:
                job.progress = (job.progress + 1) % 100
            await store.update_jobs([JobWrite(job) for job in jobs])

        async def leases(store: PostgresStore) -> None:
            await store.release_leases("a", rng.sample(ids, 10))
            await store.claim_jobs(Lease("a", 1e9), now=0.0, limit=40)
            await store.heartbeat(Lease("a", 1e9))

        async def slots(store: PostgresStore) -> None:
            await store.acquire_slots(f"p/{rng.randrange(3)}", 100, rng.sample(ids, 20))

        for _ in range(30):
            await asyncio.gather(*(work(store) for store in (a, b) for work in (batch, batch, leases, slots)))
        assert {j.id for j in await a.active_jobs()} == set(ids)
    finally:
        await a.close()
        await b.close()


async def test_a_deadlocked_batch_is_retried_inside_the_store(postgres_database: str) -> None:
    # Another client locks video_0002 and then asks for video_0001 while the batch, which
    # locked video_0001, waits for video_0002: PostgreSQL aborts the batch (the side that
    # waited longest detects it); the store runs it again once the other side is through.
    store = PostgresStore(postgres_database)
    await store.open()
    other = await asyncpg.connect(postgres_database)
    try:
        for n in (1, 2):
            await store.create_job(make_job(n))
        jobs = [await store.get_job(f"video_{n:04d}") for n in (1, 2)]
        tx = other.transaction()
        await tx.start()
        await other.execute("UPDATE jobs SET model = model WHERE id = 'video_0002'")
        batch = asyncio.create_task(store.update_jobs([JobWrite(j) for j in jobs]))
        await asyncio.sleep(0.3)  # the batch holds video_0001 and waits for video_0002
        await asyncio.wait_for(other.execute("UPDATE jobs SET model = model WHERE id = 'video_0001'"), timeout=10)
        await tx.commit()
        written = await asyncio.wait_for(batch, timeout=10)
        assert [w.version for w in written] == [1, 1]  # type: ignore[union-attr]
    finally:
        await other.close()
        await store.close()


async def test_per_job_leases_become_heartbeats_on_migration(postgres_database: str) -> None:
    # A version-3 database with per-job leases (PER_JOB_LEASES).
    conn = await asyncpg.connect(postgres_database)
    try:
        async with conn.transaction():
            await conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            await conn.execute("INSERT INTO schema_version (version) VALUES (3)")
            for statements in MIGRATIONS[:3]:
                for step in statements:
                    await (step(conn) if callable(step) else conn.execute(step))
            for n, owner, until, status in PER_JOB_LEASES:
                await conn.execute(
                    """INSERT INTO jobs (id, tenant, status, model, created_at, version, doc, lease_owner, lease_until)
                       VALUES ($1, 't1', $2, 'seedance-2.0', $3, 0, $4, $5, $6)""",
                    f"video_{n:04d}",
                    status,
                    1000.0 + n,
                    msgspec.json.encode(make_job(n, status=JobStatus(status))),
                    owner,
                    until,
                )
    finally:
        await conn.close()
    store = PostgresStore(postgres_database)
    await store.open()
    try:
        await assert_per_job_leases_became_a_heartbeat(store)
    finally:
        await store.close()
    columns = {r["column_name"] for r in await fetch(postgres_database, "SELECT column_name FROM information_schema.columns WHERE table_name = 'jobs'")}
    assert "lease_owner" in columns and "lease_until" not in columns
    assert [r["owner"] for r in await fetch(postgres_database, "SELECT owner FROM owners ORDER BY owner")] == ["new", "old"]


async def test_a_claim_passes_over_deliveries_another_claim_has_locked(postgres_database: str) -> None:
    """Two replicas claiming at once: the second takes the next due deliveries, not nothing
    (it used to rank a tenant's first `limit` deliveries, all locked by the first claim)."""
    store = PostgresStore(postgres_database)
    await store.open()
    holder = await asyncpg.connect(postgres_database)
    try:
        for n in range(1, 13):
            await store.add_delivery(make_delivery(n, due=float(n)))
        async with holder.transaction():  # another replica's claim, in flight
            await holder.execute("SELECT FROM deliveries WHERE id = ANY($1::text[]) FOR UPDATE", ["msg_1", "msg_2", "msg_3", "msg_4"])
            batch = await store.claim_deliveries(20.0, lease_until=100.0, limit=4)
        assert [d.id for d in batch] == ["msg_5", "msg_6", "msg_7", "msg_8"]
    finally:
        await holder.close()
        await store.close()
