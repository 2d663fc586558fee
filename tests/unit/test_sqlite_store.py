"""SqliteStore against a real file in tmp_path: every behaviour the Store protocol promises."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from gateway.jobs.model import (
    Attempt,
    Candidate,
    FileRecord,
    Job,
    RoutingTrace,
    StatusEvent,
    WebhookDelivery,
)
from gateway.jobs.sqlite import SCHEMA_VERSION, SqliteStore
from gateway.jobs.store import StaleJob, Store
from providers.base import Cost, ErrorClass, ErrorInfo, JobStatus, VideoResult


def make_job(n: int, *, tenant: str = "t1", **kw) -> Job:
    job = Job(
        id=f"video_{n:04d}",
        tenant=tenant,
        key_name="default",
        created_at=1000.0 + n,
        updated_at=1000.0 + n,
        status=JobStatus.QUEUED,
        model="seedance-2.0",
        mode="text",
        request={"model": "seedance-2.0", "prompt": f"job {n}"},
        prompt=f"job {n}",
    )
    return msgspec.structs.replace(job, **kw)


def attempt(provider: str, **kw) -> Attempt:
    return Attempt(provider=provider, model_id=f"{provider}-model", started_at=1.0, **kw)


def make_file(file_id: str, data: bytes, *, tenant: str = "t1") -> FileRecord:
    return FileRecord(
        id=file_id,
        tenant=tenant,
        created_at=5.0,
        filename="frame.png",
        content_type="image/png",
        bytes=len(data),
        kind="image",
        width=640,
        height=360,
    )


def make_delivery(n: int, *, job_id: str = "video_0001", due: float | None, **kw) -> WebhookDelivery:
    return WebhookDelivery(
        id=f"msg_{n}",
        job_id=job_id,
        tenant="t1",
        url="https://hooks.example/v",
        event_type="video.completed",
        payload=b'{"id": "evt"}',
        created_at=float(n),
        next_attempt_at=due,
        **kw,
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "vidgate.db")
    await s.open()
    yield s
    await s.close()


async def test_satisfies_protocol_and_pragmas(store: SqliteStore, tmp_path: Path) -> None:
    for name, method in vars(Store).items():
        if callable(method) and not name.startswith("_"):
            assert inspect.signature(getattr(SqliteStore, name)) == inspect.signature(method), name
    assert await store.ping()
    assert store.files_dir == tmp_path / "vidgate-files"
    with sqlite3.connect(tmp_path / "vidgate.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


async def test_closed_store_refuses_work(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "x.db")
    assert not await s.ping()
    with pytest.raises(RuntimeError):
        await s.get_job("video_0001")
    await s.open()
    await s.open()  # idempotent
    await s.close()
    await s.close()
    assert not await s.ping()


async def test_full_job_round_trip(store: SqliteStore) -> None:
    error = ErrorInfo.of(ErrorClass.CAPACITY, "busy", code="503", http_status=503, retry_after=2.5)
    job = make_job(
        1,
        status=JobStatus.COMPLETED,
        seconds="8",
        ratio="16:9",
        resolution="720p",
        metadata={"order": "42"},
        progress=100,
        completed_at=1100.25,
        expires_at=87500.0,
        error=None,
        result=VideoResult(video_url="https://cdn/x.mp4", width=1280, height=720, duration=8.0, has_audio=True),
        cost=Cost(amount=12.5, unit="credits", usd_estimate=0.31),
        routing=RoutingTrace(
            rule="default", candidates=[Candidate(provider="a"), Candidate(provider="b", skipped="x")]
        ),
        attempts=[
            attempt("useapi", status="failed", upstream_id="u1", error=error, ended_at=2.0),
            attempt("powertokens", status="completed", upstream_id="p1", account="acct", upstream_status="done"),
        ],
        webhook_url="https://hooks.example/v",
        idempotency_key="idem-1",
        request_hash="abc",
        callback_token="cb_secret",
        next_poll_at=None,
        poll_failures=3,
    )
    assert await store.create_job(job) == job
    got = await store.get_job(job.id)
    assert got == job
    assert got.attempts[0].error == error and got.status is JobStatus.COMPLETED
    assert await store.get_by_callback_token("cb_secret") == job
    assert await store.get_by_callback_token("nope") is None
    assert await store.get_job("video_9999") is None


async def test_idempotency_returns_existing_job(store: SqliteStore) -> None:
    first = await store.create_job(make_job(1, idempotency_key="k"))
    replay = await store.create_job(make_job(2, idempotency_key="k", prompt="different"))
    assert replay == first and replay.id == "video_0001"
    assert await store.get_job("video_0002") is None
    assert await store.find_idempotent("t1", "k") == first
    assert await store.find_idempotent("t2", "k") is None
    assert await store.find_idempotent("t1", "other") is None
    page, _ = await store.list_jobs("t1")
    assert [j.id for j in page] == ["video_0001"]
    # the key is per tenant, and jobs without a key never collide
    other = await store.create_job(make_job(3, tenant="t2", idempotency_key="k"))
    assert other.id == "video_0003"
    await store.create_job(make_job(4))
    await store.create_job(make_job(5))
    # a clash that is not an idempotent replay is an error, not a silent return
    with pytest.raises(sqlite3.IntegrityError):
        await store.create_job(make_job(4))


async def test_concurrent_idempotent_creates_insert_once(store: SqliteStore) -> None:
    results = await asyncio.gather(*(store.create_job(make_job(n, idempotency_key="same")) for n in range(10)))
    assert len({r.id for r in results}) == 1
    page, more = await store.list_jobs("t1")
    assert len(page) == 1 and not more


async def test_update_bumps_version_and_rejects_stale(store: SqliteStore) -> None:
    job = await store.create_job(make_job(1))
    reader_a = await store.get_job(job.id)
    reader_b = await store.get_job(job.id)
    reader_a.status = JobStatus.IN_PROGRESS
    reader_a.attempts.append(attempt("useapi", status="submitted"))
    saved = await store.update_job(reader_a)
    assert saved.version == 1 and reader_a.version == 0  # the argument is left alone
    reader_b.status = JobStatus.CANCELLED
    with pytest.raises(StaleJob):
        await store.update_job(reader_b)
    assert (await store.get_job(job.id)) == saved
    assert (await store.update_job(saved)).version == 2
    with pytest.raises(StaleJob):
        await store.update_job(make_job(99))  # never created


async def test_update_races_between_coroutines_have_one_winner(store: SqliteStore) -> None:
    job = await store.create_job(make_job(1))
    outcomes = await asyncio.gather(
        *(store.update_job(msgspec.structs.replace(job, progress=p)) for p in range(5)), return_exceptions=True
    )
    assert sum(not isinstance(o, StaleJob) for o in outcomes) == 1


async def test_indexed_columns_follow_the_doc(store: SqliteStore) -> None:
    job = await store.create_job(make_job(1))
    job.status = JobStatus.IN_PROGRESS
    job.attempts = [attempt("useapi")]
    job = await store.update_job(job)
    assert [j.id for j in (await store.list_jobs("t1", provider="useapi"))[0]] == ["video_0001"]
    job.attempts.append(attempt("powertokens"))
    job.status = JobStatus.COMPLETED
    await store.update_job(job)
    assert (await store.list_jobs("t1", provider="useapi"))[0] == []
    assert len((await store.list_jobs("t1", provider="powertokens", status="completed"))[0]) == 1
    assert (await store.list_jobs("t1", status="in_progress"))[0] == []


async def test_tenant_isolation(store: SqliteStore) -> None:
    await store.create_job(make_job(1, tenant="t1"))
    await store.create_job(make_job(2, tenant="t2"))
    assert await store.get_job("video_0001", "t2") is None
    assert (await store.get_job("video_0001", "t1")).id == "video_0001"
    assert [j.id for j in (await store.list_jobs("t2"))[0]] == ["video_0002"]
    with pytest.raises(KeyError):
        await store.list_jobs("t2", after="video_0001")
    assert not await store.delete_job("video_0001", "t2")
    assert await store.get_job("video_0001") is not None


async def test_delete_removes_job_and_events(store: SqliteStore) -> None:
    await store.create_job(make_job(1))
    await store.add_event(StatusEvent(job_id="video_0001", at=1.0, status="queued"))
    assert await store.delete_job("video_0001", "t1")
    assert await store.get_job("video_0001") is None
    assert await store.events("video_0001") == []
    assert not await store.delete_job("video_0001", "t1")
    with pytest.raises(KeyError):
        await store.add_event(StatusEvent(job_id="video_0001", at=2.0, status="queued"))


async def test_pagination(store: SqliteStore) -> None:
    for n in range(1, 26):
        await store.create_job(
            make_job(
                n,
                tenant="t1",
                model="veo" if n % 5 == 0 else "seedance-2.0",
                status=JobStatus.COMPLETED if n % 2 else JobStatus.QUEUED,
            )
        )
        await store.create_job(make_job(100 + n, tenant="t2"))  # interleaved noise

    async def walk(order: str, limit: int, **filters) -> list[list[int]]:
        pages, after = [], None
        while True:
            page, more = await store.list_jobs("t1", after=after, limit=limit, order=order, **filters)
            pages.append([int(j.id[-4:]) for j in page])
            if not more:
                return pages
            after = page[-1].id

    assert await walk("asc", 10) == [list(range(1, 11)), list(range(11, 21)), list(range(21, 26))]
    assert await walk("desc", 10) == [list(range(25, 15, -1)), list(range(15, 5, -1)), list(range(5, 0, -1))]
    assert await walk("desc", 25) == [list(range(25, 0, -1))]  # exactly a page: has_more is False
    assert await walk("asc", 3, model="veo") == [[5, 10, 15], [20, 25]]
    assert await walk("desc", 4, status=JobStatus.QUEUED) == [[24, 22, 20, 18], [16, 14, 12, 10], [8, 6, 4, 2]]
    page, more = await store.list_jobs("t1", after="video_0025", order="desc", limit=1)
    assert [j.id for j in page] == ["video_0024"] and more
    assert await store.list_jobs("t1", after="video_0025", order="asc") == ([], False)
    with pytest.raises(KeyError):
        await store.list_jobs("t1", after="video_9999")
    with pytest.raises(ValueError):
        await store.list_jobs("t1", limit=0)


async def test_active_jobs(store: SqliteStore) -> None:
    for n in range(1, 6):
        await store.create_job(make_job(n, tenant=f"t{n % 2}"))
    for n, status in (
        (1, JobStatus.COMPLETED),
        (2, JobStatus.IN_PROGRESS),
        (3, JobStatus.FAILED),
        (4, JobStatus.CANCELLED),
    ):
        job = await store.get_job(f"video_{n:04d}")
        job.status = status
        await store.update_job(job)
    assert [j.id for j in await store.active_jobs()] == ["video_0002", "video_0005"]


async def test_second_store_on_same_file_sees_writes(tmp_path: Path) -> None:
    a = SqliteStore(tmp_path / "shared.db")
    b = SqliteStore(tmp_path / "shared.db")
    await a.open()
    await b.open()  # schema already there: no re-migration
    try:
        job = await a.create_job(make_job(1, idempotency_key="k"))
        seen = await b.get_job(job.id)
        assert seen == job
        seen.status = JobStatus.IN_PROGRESS
        await b.update_job(seen)
        with pytest.raises(StaleJob):
            await a.update_job(job)  # written by the other "process" meanwhile
        assert (await b.create_job(make_job(2, idempotency_key="k"))).id == job.id
        await a.put_file(make_file("file_1", b"abc"), b"abc")
        assert await b.read_file("file_1") == b"abc"
    finally:
        await a.close()
    await b.close()
    restarted = SqliteStore(tmp_path / "shared.db")
    await restarted.open()
    try:
        assert [j.id for j in await restarted.active_jobs()] == ["video_0001"]
        assert (await restarted.get_job("video_0001")).version == 1
    finally:
        await restarted.close()


async def test_two_writers_on_one_file_interleave_safely(tmp_path: Path) -> None:
    a, b = SqliteStore(tmp_path / "shared.db"), SqliteStore(tmp_path / "shared.db")
    await asyncio.gather(a.open(), b.open())
    try:
        await asyncio.gather(
            *(a.create_job(make_job(n)) for n in range(0, 40, 2)),
            *(b.create_job(make_job(n)) for n in range(1, 40, 2)),
        )
        page, more = await a.list_jobs("t1", limit=100, order="asc")
        assert len(page) == 40 and not more
        assert sorted(j.id for j in page) == [f"video_{n:04d}" for n in range(40)]
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_events_in_order(store: SqliteStore) -> None:
    await store.create_job(make_job(1))
    await store.create_job(make_job(2))
    await store.add_event(StatusEvent(job_id="video_0001", at=3.0, status="completed", progress=100))
    await store.add_event(StatusEvent(job_id="video_0001", at=1.0, status="queued"))
    await store.add_event(StatusEvent(job_id="video_0002", at=1.5, status="queued"))
    await store.add_event(StatusEvent(job_id="video_0001", at=2.0, status="in_progress", progress=10, detail="a"))
    await store.add_event(StatusEvent(job_id="video_0001", at=2.0, status="in_progress", progress=50, detail="b"))
    events = await store.events("video_0001")
    assert [(e.at, e.progress, e.detail) for e in events] == [
        (1.0, 0, None),
        (2.0, 10, "a"),
        (2.0, 50, "b"),
        (3.0, 100, None),
    ]
    assert events[-1] == StatusEvent(job_id="video_0001", at=3.0, status="completed", progress=100)


async def test_files_round_trip_stream_and_isolation(tmp_path: Path) -> None:
    files_dir = tmp_path / "blobs"
    store = SqliteStore(tmp_path / "db.sqlite", files_dir=files_dir)
    await store.open()
    try:
        data = bytes(range(256)) * 1000  # 256 000 bytes
        saved = await store.put_file(make_file("file_a", data), data)
        assert saved.sha256 == hashlib.sha256(data).hexdigest()
        assert (files_dir / "file_a").read_bytes() == data
        assert [p.name for p in files_dir.iterdir()] == ["file_a"]  # no temp file left behind
        assert await store.get_file("file_a") == saved
        assert await store.get_file("file_a", "t1") == saved
        assert await store.get_file("file_a", "t2") is None
        assert await store.get_file("file_missing") is None
        assert await store.read_file("file_a") == data
        chunks = [c async for c in store.stream_file("file_a", chunk_size=100_000)]
        assert [len(c) for c in chunks] == [100_000, 100_000, 56_000]
        assert b"".join(chunks) == data

        with pytest.raises(FileExistsError):
            await store.put_file(make_file("file_a", b"other"), b"other")
        assert await store.read_file("file_a") == data  # the original bytes survive
        with pytest.raises(ValueError):
            await store.put_file(make_file("file_b", b"abc"), b"abcd")
        with pytest.raises(ValueError):
            await store.put_file(make_file("../escape", b"x"), b"x")
        with pytest.raises(KeyError):
            await store.read_file("file_b")
        with pytest.raises(KeyError):
            async for _ in store.stream_file("file_b"):
                pass
        assert sorted(p.name for p in files_dir.iterdir()) == ["file_a"]
    finally:
        await store.close()


async def test_stream_closes_file_when_abandoned(store: SqliteStore) -> None:
    data = b"x" * 1000
    await store.put_file(make_file("file_a", data), data)
    stream = store.stream_file("file_a", chunk_size=10)
    assert await anext(stream) == b"x" * 10
    await stream.aclose()


async def test_deliveries(store: SqliteStore) -> None:
    await store.add_delivery(make_delivery(1, due=50.0))
    await store.add_delivery(make_delivery(2, due=10.0))
    await store.add_delivery(make_delivery(3, due=None))  # due from created_at = 3.0
    await store.add_delivery(make_delivery(4, due=10.0))
    await store.add_delivery(make_delivery(5, due=200.0))
    await store.add_delivery(make_delivery(6, due=1.0, job_id="video_0002", status="delivered"))
    assert [d.id for d in await store.due_deliveries(100.0)] == ["msg_3", "msg_2", "msg_4", "msg_1"]
    assert [d.id for d in await store.due_deliveries(100.0, limit=2)] == ["msg_3", "msg_2"]
    assert await store.due_deliveries(0.5) == []

    retry = msgspec.structs.replace(
        make_delivery(2, due=10.0), attempts=1, next_attempt_at=150.0, last_status_code=500, last_error="boom"
    )
    await store.update_delivery(retry)
    done = msgspec.structs.replace(make_delivery(3, due=None), attempts=1, status="delivered", last_status_code=200)
    await store.update_delivery(done)
    assert [d.id for d in await store.due_deliveries(100.0)] == ["msg_4", "msg_1"]
    assert [d.id for d in await store.due_deliveries(160.0)] == ["msg_4", "msg_1", "msg_2"]

    listed = await store.deliveries("video_0001")
    assert [d.id for d in listed] == ["msg_1", "msg_2", "msg_3", "msg_4", "msg_5"]
    assert listed[1] == retry and listed[1].payload == b'{"id": "evt"}'
    assert [d.id for d in await store.deliveries("video_0002")] == ["msg_6"]
    with pytest.raises(KeyError):
        await store.update_delivery(make_delivery(9, due=1.0))
