"""SqliteStore: comparisons, the stats window (`jobs_since`), and the migration that added them."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from gateway.jobs.model import Comparison, ComparisonChild, ComparisonSkip
from gateway.jobs.sqlite import MIGRATIONS, SCHEMA_VERSION, SqliteStore
from tests.unit.test_sqlite_store import make_job


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "vidgate.db")
    await s.open()
    yield s
    await s.close()


def comparison(cid: str = "cmp_1", tenant: str = "t1", video: str = "video_0001") -> Comparison:
    return Comparison(
        id=cid,
        tenant=tenant,
        created_at=5.0,
        model="seedance-2.0",
        children=[ComparisonChild(provider="useapi", video_id=video)],
        skipped=[ComparisonSkip(provider="powertokens", reason="model: not served")],
    )


async def test_comparison_round_trip_is_tenant_isolated_and_first_write_wins(store: SqliteStore) -> None:
    original = comparison()
    assert await store.put_comparison(original) == original
    assert await store.get_comparison("cmp_1", "t1") == original
    assert await store.get_comparison("cmp_1", "t2") is None
    assert await store.get_comparison("cmp_nope", "t1") is None
    assert await store.put_comparison(comparison(video="video_0002")) == original  # a replay keeps the stored one


async def test_an_idempotency_key_names_one_comparison_per_tenant(store: SqliteStore) -> None:
    keyed = msgspec.structs.replace(comparison(), idempotency_key="k", request_hash="h")
    assert await store.put_comparison(keyed) == keyed
    assert await store.find_comparison("t1", "k") == keyed
    assert await store.find_comparison("t2", "k") is None
    racer = msgspec.structs.replace(keyed, id="cmp_2", request_hash="h2")
    assert await store.put_comparison(racer) == keyed  # the first write wins
    assert await store.get_comparison("cmp_2", "t1") is None
    other_tenant = msgspec.structs.replace(keyed, id="cmp_3", tenant="t2")
    assert await store.put_comparison(other_tenant) == other_tenant


async def test_jobs_since_filters_by_time_and_tenant_oldest_first(store: SqliteStore) -> None:
    for n, tenant in [(3, "t1"), (1, "t1"), (2, "t2"), (5, "t1")]:
        await store.create_job(make_job(n, tenant=tenant))  # created_at = 1000 + n
    assert [j.id for j in await store.jobs_since("t1", 1002.0)] == ["video_0003", "video_0005"]
    assert [j.id for j in await store.jobs_since(None, 1002.0)] == ["video_0002", "video_0003", "video_0005"]
    assert [j.id for j in await store.jobs_since("t2", 0.0)] == ["video_0002"]
    assert await store.jobs_since("t1", 2000.0) == []


async def test_a_version_1_database_migrates(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # what the first release wrote
        for sql in MIGRATIONS[0]:
            conn.execute(sql)
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version (version) VALUES (1)")

    store = SqliteStore(path)
    await store.open()
    try:
        await store.create_job(make_job(1))
        assert [j.id for j in await store.jobs_since("t1", 0.0)] == ["video_0001"]
        await store.put_comparison(comparison())
        assert await store.get_comparison("cmp_1", "t1") is not None
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"jobs_tenant_created", "jobs_created"} <= indexes
