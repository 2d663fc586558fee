"""What only the SQLite store does: WAL, its schema table, file bytes on disk, old files migrating."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import msgspec
import pytest

from gateway.jobs.sqlite import INLINE_WRITE_ROWS, MIGRATIONS, SCHEMA_VERSION, SqliteStore
from providers.base import JobStatus
from tests.store.records import PER_JOB_LEASES, assert_per_job_leases_became_a_heartbeat, comparison, make_delivery, make_file, make_job


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "vidgate.db")
    await s.open()
    yield s
    await s.close()


async def test_wal_schema_version_and_default_files_dir(store: SqliteStore, tmp_path: Path) -> None:
    assert store.files_dir == tmp_path / "vidgate-files"
    with sqlite3.connect(tmp_path / "vidgate.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


async def test_file_bytes_live_in_files_dir(tmp_path: Path) -> None:
    files_dir = tmp_path / "blobs"
    store = SqliteStore(tmp_path / "db.sqlite", files_dir=files_dir)
    await store.open()
    try:
        data = bytes(range(256)) * 10
        await store.put_file(make_file("file_a", data), data)
        assert (files_dir / "file_a").read_bytes() == data
        with pytest.raises(FileExistsError):
            await store.put_file(make_file("file_a", b"other"), b"other")
        with pytest.raises(ValueError):
            await store.put_file(make_file("file_b", b"abc"), b"abcd")
        with pytest.raises(ValueError):
            await store.put_file(make_file("../escape", b"x"), b"x")
        assert [p.name for p in files_dir.iterdir()] == ["file_a"]  # no temp file left behind
    finally:
        await store.close()


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


async def test_reads_answer_while_a_write_transaction_is_open(store: SqliteStore) -> None:
    await store.create_job(make_job(1))
    await store.put_file(make_file("file_a", b"abc"), b"abc")
    inside, release = threading.Event(), threading.Event()

    def slow_write(conn: sqlite3.Connection) -> None:  # a group commit of thousands of jobs, say
        conn.execute("UPDATE jobs SET version = 7 WHERE id = 'video_0001'")
        inside.set()
        release.wait(10)

    writing = asyncio.create_task(store._write(slow_write))
    try:
        assert await asyncio.to_thread(inside.wait, 5)
        async with asyncio.timeout(5):  # behind the writer these would wait for `release`
            job = await store.get_job("video_0001", "t1")
            assert job is not None and job.version == 0  # the last commit, not the open transaction
            assert [j.id for j in (await store.list_jobs("t1"))[0]] == ["video_0001"]
            assert await store.get_file("file_a", "t1") is not None
            assert await store.events("video_0001") == []
        assert not writing.done()
    finally:
        release.set()
        await writing
    # a write returns once committed, so the next read sees it
    assert (await store.get_job("video_0001")).version == 7  # type: ignore[union-attr]


async def test_small_writes_and_point_reads_run_on_the_loop_and_big_ones_on_their_threads(store: SqliteStore) -> None:
    """On the writer's thread every statement's step hands the GIL over and back; a small
    write pays less run where it was asked for. A big one still goes to the thread."""
    loop_thread = threading.get_ident()

    def where(conn: sqlite3.Connection) -> int:
        conn.execute("SELECT 1").fetchone()
        return threading.get_ident()

    assert await store._write(where, rows=1) == loop_thread
    assert await store._write(where, rows=INLINE_WRITE_ROWS) == loop_thread
    assert await store._write(where, rows=INLINE_WRITE_ROWS + 1) != loop_thread
    assert await store._write(where) != loop_thread  # a write of unknown size
    assert await store._read(where, point=True) == loop_thread
    assert await store._read(where) != loop_thread
    # and what ran on the loop was committed like any other write
    job = await store.create_job(make_job(1))
    written = await store.update_job(msgspec.structs.replace(job, status=JobStatus.IN_PROGRESS))
    with sqlite3.connect(store.path) as other:
        assert other.execute("SELECT status, version FROM jobs WHERE id = 'video_0001'").fetchone() == ("in_progress", written.version)


async def test_a_small_write_never_overtakes_writes_queued_on_the_thread(store: SqliteStore) -> None:
    assert store._executor is not None
    order: list[str] = []
    gate = threading.Event()
    store._executor.submit(gate.wait, 10)  # the writer's thread is busy, the connection free

    def first(conn: sqlite3.Connection) -> None:
        order.append("queued first")

    def small(conn: sqlite3.Connection) -> None:
        order.append("small, asked second")

    queued = asyncio.create_task(store._write(first))
    await asyncio.sleep(0)  # on the thread's queue
    second = asyncio.create_task(store._write(small, rows=1))
    await asyncio.sleep(0.05)
    assert not second.done() and order == []  # it waits behind the queued write, on the thread
    gate.set()
    await asyncio.gather(queued, second)
    assert order == ["queued first", "small, asked second"]


async def test_a_small_write_waits_for_a_lock_held_elsewhere_on_the_thread_not_on_the_loop(store: SqliteStore) -> None:
    await store.create_job(make_job(1))
    job = await store.get_job("video_0001")
    assert job is not None
    locker = sqlite3.connect(store.path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another process's write transaction
    try:
        write = asyncio.create_task(store.update_job(msgspec.structs.replace(job, status=JobStatus.IN_PROGRESS)))
        await asyncio.sleep(0.1)  # the loop runs meanwhile: it is not the one waiting for the lock
        assert not write.done()
        assert (await store.get_job("video_0001")).status == JobStatus.QUEUED  # type: ignore[union-attr]
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    written = await asyncio.wait_for(write, 5)
    assert written.status == JobStatus.IN_PROGRESS and written.version == job.version + 1


async def test_the_store_used_from_another_threads_loop_stays_off_the_first_loops_connections(store: SqliteStore) -> None:
    await store.create_job(make_job(1))

    async def elsewhere() -> tuple[int, JobStatus]:
        job = await store.get_job("video_0001")
        assert job is not None
        written = await store.update_job(msgspec.structs.replace(job, status=JobStatus.IN_PROGRESS))
        return written.version, written.status

    assert await asyncio.to_thread(asyncio.run, elsewhere()) == (1, JobStatus.IN_PROGRESS)
    assert (await store.get_job("video_0001")).version == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("my_limit", "mine_expected"),
    [
        (10, ["msg_4", "msg_5"]),  # chose all five; the three the other took are left to it
        (2, ["msg_4", "msg_5"]),  # chose msg_1 and msg_2, both taken meanwhile: chosen again, not an empty answer
    ],
)
async def test_a_delivery_claim_chooses_on_a_snapshot_and_takes_only_what_is_still_due(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, my_limit: int, mine_expected: list[str]
) -> None:
    """The claim's choice (window functions over every due delivery) is made outside the
    write lock. Another process claiming in between must not make a delivery claimed twice,
    nor leave this claim empty-handed while deliveries are due."""
    for n in range(1, 6):
        await store.add_delivery(make_delivery(n, due=1.0, url=f"https://hooks.example/{n}"))
    other = SqliteStore(tmp_path / "vidgate.db")
    await other.open()
    try:
        write = store._write
        taken_between: list[str] = []

        async def the_other_claims_first(fn: Callable[[sqlite3.Connection], object], *, rows: int | None = None) -> object:
            if not taken_between:  # between this claim's choice and its first write
                taken_between.extend(d.id for d in await other.claim_deliveries(now=2.0, lease_until=500.0, limit=3))
            return await write(fn, rows=rows)

        monkeypatch.setattr(store, "_write", the_other_claims_first)
        mine = [d.id for d in await store.claim_deliveries(now=2.0, lease_until=600.0, limit=my_limit)]
    finally:
        await other.close()
    assert taken_between == ["msg_1", "msg_2", "msg_3"]
    assert mine == mine_expected
    with sqlite3.connect(store.path) as conn:
        leases = dict(conn.execute("SELECT id, claimed_until FROM deliveries"))
    assert leases == {"msg_1": 500.0, "msg_2": 500.0, "msg_3": 500.0, "msg_4": 600.0, "msg_5": 600.0}


async def test_a_cancelled_caller_whose_write_was_still_queued_does_not_keep_small_writes_off_the_loop(store: SqliteStore) -> None:
    assert store._executor is not None
    gate = threading.Event()
    store._executor.submit(gate.wait, 10)  # the writer's thread is busy (without the connection)
    queued = asyncio.create_task(store._write(lambda conn: None))
    await asyncio.sleep(0)  # it is queued behind the busy thread
    queued.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await queued
    gate.set()
    await store._write(lambda conn: None)  # the thread has run everything before this
    assert await store._write(lambda conn: threading.get_ident(), rows=1) == threading.get_ident()


async def test_the_read_connection_cannot_write(store: SqliteStore) -> None:
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await store._read(lambda conn: conn.execute("DELETE FROM jobs"))


async def test_per_job_leases_become_heartbeats_on_migration(tmp_path: Path) -> None:
    # A version-5 file with per-job leases (PER_JOB_LEASES).
    path = tmp_path / "v5.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version (version) VALUES (5)")
        for statements in MIGRATIONS[:5]:
            for step in statements:
                step(conn) if callable(step) else conn.execute(step)
        for seq, (n, owner, until, status) in enumerate(PER_JOB_LEASES):
            doc = msgspec.json.encode(make_job(n, status=JobStatus(status)))
            conn.execute(
                """INSERT INTO jobs (id, tenant, status, model, created_seq, created_at, version, doc, lease_owner, lease_until)
                   VALUES (?, 't1', ?, 'seedance-2.0', ?, ?, 0, ?, ?, ?)""",
                (f"video_{n:04d}", status, seq + 1, 1000.0 + n, doc, owner, until),
            )
    store = SqliteStore(path)
    await store.open()
    try:
        await assert_per_job_leases_became_a_heartbeat(store)
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(jobs)")}
        assert "lease_owner" in columns and "lease_until" not in columns
        assert conn.execute("SELECT owner FROM owners ORDER BY owner").fetchall() == [("new",), ("old",)]  # "old" came back; "gone" never had a row


async def test_a_few_commits_wait_for_more_before_a_checkpoint_is_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An idle process commits a heartbeat every couple of seconds: a checkpoint (two fsyncs)
    after each would be most of what it does. A checkpoint is asked for once CHECKPOINT_COMMITS
    commits wait in the WAL (or CHECKPOINT_IDLE_SECONDS passed), not after every commit."""
    import gateway.jobs.sqlite as sqlite_module

    store = SqliteStore(tmp_path / "vidgate.db")
    await store.open()
    try:
        asked: list[int] = []
        monkeypatch.setattr(store, "_checkpoint", lambda: asked.append(1))
        monkeypatch.setattr(sqlite_module, "CHECKPOINT_SECONDS", 0.0)
        monkeypatch.setattr(sqlite_module, "CHECKPOINT_COMMITS", 5)
        assert store._checkpointer is not None

        async def asks_after(commits: int) -> int:
            for _ in range(commits):
                await store.create_job(make_job(len(jobs) + 1))
                jobs.append(1)
            await asyncio.get_running_loop().run_in_executor(store._checkpointer, lambda: None)  # what was asked for has run
            return len(asked)

        jobs: list[int] = []
        first = await asks_after(1)  # the store's first commit (or one after the idle time) asks at once
        assert await asks_after(4) == first  # four more: fewer than CHECKPOINT_COMMITS since
        assert await asks_after(1) == first + 1  # the fifth asks
        monkeypatch.setattr(sqlite_module, "CHECKPOINT_IDLE_SECONDS", 0.0)
        assert await asks_after(1) == first + 2  # one commit after the idle time asks too
    finally:
        await store.close()


async def test_wal_checkpoints_run_on_their_own_thread_not_in_the_writers_commits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer's connection never checkpoints (no fsync of the database in a commit); the
    checkpointer's thread copies the WAL into the database file while the store is open."""
    import shutil

    import gateway.jobs.sqlite as sqlite_module

    store = SqliteStore(tmp_path / "vidgate.db")
    await store.open()
    try:
        assert await store._run(lambda conn: conn.execute("PRAGMA wal_autocheckpoint").fetchone()) == (0,)
        seen: list[str] = []
        checkpoint = store._checkpoint
        monkeypatch.setattr(store, "_checkpoint", lambda: (seen.append(threading.current_thread().name), checkpoint()))
        monkeypatch.setattr(sqlite_module, "CHECKPOINT_SECONDS", 0.0)
        monkeypatch.setattr(sqlite_module, "CHECKPOINT_COMMITS", 1)  # every commit asks
        for n in range(1, 31):
            await store.create_job(make_job(n))
        assert store._checkpointer is not None
        await asyncio.get_running_loop().run_in_executor(store._checkpointer, lambda: None)  # what was asked for has run
        assert store.checkpoints >= 1
        assert seen and all(name.startswith("vidgate-sqlite-checkpoint") for name in seen)
        # The database file alone, without its WAL, holds every job: the checkpoints copied them.
        shutil.copy(tmp_path / "vidgate.db", tmp_path / "copy.db")
        with sqlite3.connect(tmp_path / "copy.db") as conn:
            assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 30
    finally:
        await store.close()
