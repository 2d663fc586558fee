"""The store contract for jobs and their events, on both stores."""

from __future__ import annotations

import asyncio
import inspect

import msgspec
import pytest

from gateway.jobs.model import Candidate, RoutingTrace, StatusEvent
from gateway.jobs.postgres import PostgresStore
from gateway.jobs.sqlite import SqliteStore
from gateway.jobs.store import Lease, StaleJob, Store
from providers.base import Cost, ErrorClass, ErrorInfo, JobStatus, VideoResult
from tests.store.conftest import Backend
from tests.store.records import attempt, make_job


@pytest.mark.parametrize("cls", [SqliteStore, PostgresStore])
def test_both_stores_have_the_protocols_signatures(cls: type) -> None:
    for name, method in vars(Store).items():
        if callable(method) and not name.startswith("_"):
            assert inspect.signature(getattr(cls, name)) == inspect.signature(method), f"{cls.__name__}.{name}"


async def test_closed_store_refuses_work(backend: Backend) -> None:
    s = backend.new()
    assert not await s.ping()
    with pytest.raises(RuntimeError):
        await s.get_job("video_0001")
    await s.open()
    await s.open()  # idempotent
    assert await s.ping()
    await s.close()
    await s.close()
    assert not await s.ping()
    with pytest.raises(RuntimeError):
        await s.get_job("video_0001")


async def test_full_job_round_trip(store: Store) -> None:
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
        routing=RoutingTrace(rule="default", candidates=[Candidate(provider="a"), Candidate(provider="b", skipped="x")]),
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


async def test_idempotency_returns_existing_job(store: Store, backend: Backend) -> None:
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
    with pytest.raises(backend.clash):
        await store.create_job(make_job(4))
    await store.create_job(make_job(6, callback_token="cb"))
    with pytest.raises(backend.clash):
        await store.create_job(make_job(7, idempotency_key="k3", callback_token="cb"))
    assert await store.find_idempotent("t1", "k3") is None


async def test_a_batch_of_creates_keeps_each_ones_idempotency(store: Store) -> None:
    stored = await store.create_job(make_job(1, idempotency_key="old"))
    batch = [
        (make_job(2, idempotency_key="new"), Lease("a", 100.0)),
        (make_job(3), Lease("a", 100.0)),
        (make_job(4, idempotency_key="old", prompt="replayed"), Lease("a", 100.0)),  # taken before the batch
        (make_job(5, idempotency_key="new"), Lease("a", 100.0)),  # taken earlier in the batch
        (make_job(6, tenant="t2", idempotency_key="new"), None),  # another tenant's key
        (make_job(7), None),
    ]
    created = await store.create_jobs(batch)
    assert [j.id for j in created] == ["video_0002", "video_0003", "video_0001", "video_0002", "video_0006", "video_0007"]
    assert created[2] == stored and created[1] == batch[1][0]
    assert await store.get_job("video_0004") is None and await store.get_job("video_0005") is None
    page, _ = await store.list_jobs("t1", order="asc")
    assert [j.id for j in page] == ["video_0001", "video_0002", "video_0003", "video_0007"]  # creation order is the batch's
    assert await store.held_by("a", [f"video_{n:04d}" for n in range(1, 8)]) == {"video_0002", "video_0003"}
    assert await store.claim_jobs(Lease("b", 200.0), now=50.0, limit=10) == [await store.get_job("video_0001"), await store.get_job("video_0006"), created[5]]
    assert await store.create_jobs([]) == []


async def test_a_clash_in_a_batch_of_creates_stores_nothing_of_it(store: Store, backend: Backend) -> None:
    await store.create_job(make_job(1, callback_token="cb"))
    with pytest.raises(backend.clash):
        await store.create_jobs([(make_job(2, idempotency_key="k"), None), (make_job(3, callback_token="cb"), None)])
    assert await store.get_job("video_0002") is None and await store.find_idempotent("t1", "k") is None
    with pytest.raises(backend.clash):
        await store.create_jobs([(make_job(4), None), (make_job(4, prompt="same id"), None)])
    assert await store.get_job("video_0004") is None


async def test_batches_of_creates_racing_across_two_stores_insert_each_key_once(backend: Backend) -> None:
    a, b = await backend.open(), await backend.open()
    batches = [[(make_job(100 * n + k, idempotency_key=f"key-{(k * 7 + n) % 10}"), None) for k in range(10)] for n in range(6)]
    results = await asyncio.gather(*((a, b)[n % 2].create_jobs(batch) for n, batch in enumerate(batches)))
    by_key: dict[str, set[str]] = {}
    for batch, created in zip(batches, results, strict=True):
        for (job, _), got in zip(batch, created, strict=True):
            assert got.idempotency_key == job.idempotency_key
            by_key.setdefault(job.idempotency_key or "", set()).add(got.id)
    assert all(len(ids) == 1 for ids in by_key.values()) and len(by_key) == 10
    page, _ = await a.list_jobs("t1", limit=100)
    assert len(page) == 10


async def test_a_replay_after_the_job_was_updated_returns_its_current_state(store: Store) -> None:
    first = await store.create_job(make_job(1, idempotency_key="k"))
    first.status = JobStatus.IN_PROGRESS
    saved = await store.update_job(first)
    assert await store.create_job(make_job(2, idempotency_key="k")) == saved


async def test_concurrent_idempotent_creates_insert_once(store: Store) -> None:
    results = await asyncio.gather(*(store.create_job(make_job(n, idempotency_key="same")) for n in range(10)))
    assert len({r.id for r in results}) == 1
    page, more = await store.list_jobs("t1")
    assert len(page) == 1 and not more


async def test_update_bumps_version_and_rejects_stale(store: Store) -> None:
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


async def test_update_races_between_coroutines_have_one_winner(store: Store) -> None:
    job = await store.create_job(make_job(1))
    outcomes = await asyncio.gather(*(store.update_job(msgspec.structs.replace(job, progress=p)) for p in range(5)), return_exceptions=True)
    winners = [o for o in outcomes if not isinstance(o, StaleJob)]
    assert len(winners) == 1
    assert await store.get_job(job.id) == winners[0]


async def test_indexed_columns_follow_the_doc(store: Store) -> None:
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
    assert len((await store.list_jobs("t1", provider="powertokens", status=JobStatus.COMPLETED))[0]) == 1
    assert (await store.list_jobs("t1", status="in_progress"))[0] == []


async def test_tenant_isolation(store: Store) -> None:
    await store.create_job(make_job(1, tenant="t1"))
    await store.create_job(make_job(2, tenant="t2"))
    assert await store.get_job("video_0001", "t2") is None
    assert (await store.get_job("video_0001", "t1")).id == "video_0001"
    assert [j.id for j in (await store.list_jobs("t2"))[0]] == ["video_0002"]
    with pytest.raises(KeyError):
        await store.list_jobs("t2", after="video_0001")
    assert not await store.delete_job("video_0001", "t2")
    assert await store.get_job("video_0001") is not None


async def test_delete_removes_job_and_events(store: Store) -> None:
    await store.create_job(make_job(1))
    await store.create_job(make_job(2))
    await store.add_event(StatusEvent(job_id="video_0001", at=1.0, status="queued"))
    await store.add_event(StatusEvent(job_id="video_0002", at=1.0, status="queued"))
    assert await store.delete_job("video_0001", "t1")
    assert await store.get_job("video_0001") is None
    assert await store.events("video_0001") == []
    assert len(await store.events("video_0002")) == 1
    assert not await store.delete_job("video_0001", "t1")
    with pytest.raises(KeyError):
        await store.add_event(StatusEvent(job_id="video_0001", at=2.0, status="queued"))


async def test_pagination(store: Store) -> None:
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
    with pytest.raises(ValueError):
        await store.list_jobs("t1", order="sideways")  # type: ignore[arg-type]


async def test_active_jobs(store: Store) -> None:
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


async def test_events_in_order(store: Store) -> None:
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
    assert await store.events("video_9999") == []


async def test_jobs_since_filters_by_time_and_tenant_oldest_first(store: Store) -> None:
    for n, tenant in [(3, "t1"), (1, "t1"), (2, "t2"), (5, "t1")]:
        await store.create_job(make_job(n, tenant=tenant))  # created_at = 1000 + n
    assert [j.id for j in await store.jobs_since("t1", 1002.0)] == ["video_0003", "video_0005"]
    assert [j.id for j in await store.jobs_since(None, 1002.0)] == ["video_0002", "video_0003", "video_0005"]
    assert [j.id for j in await store.jobs_since("t2", 0.0)] == ["video_0002"]
    assert await store.jobs_since("t1", 2000.0) == []


async def test_find_recent_duplicate_is_the_tenants_newest_in_the_window(store: Store) -> None:
    for n in (1, 3, 5):
        await store.create_job(make_job(n, request_hash="h"))  # created at 1001, 1003, 1005
    await store.create_job(make_job(6, tenant="t2", request_hash="h"))
    await store.create_job(make_job(7, request_hash="other"))
    await store.create_job(make_job(8))  # no hash at all

    async def found(tenant: str, request_hash: str, since: float) -> str | None:
        job = await store.find_recent_duplicate(tenant, request_hash, since)
        return job.id if job else None

    assert await found("t1", "h", 1000.0) == "video_0005"
    assert await found("t1", "h", 1005.0) == "video_0005"  # the window's start is inclusive
    assert await found("t1", "h", 1005.5) is None
    assert await found("t2", "h", 1000.0) == "video_0006"
    assert await found("t3", "h", 0.0) is None
    assert await found("t1", "other", 1000.0) == "video_0007"
    assert await found("t1", "nope", 0.0) is None
    # two jobs created in the same instant: the later insert is the newer
    await store.create_job(make_job(9, created_at=1005.0, request_hash="h"))
    assert await found("t1", "h", 1000.0) == "video_0009"
    # the version column is authoritative on what comes back
    job = await store.get_job("video_0009")
    job.status = JobStatus.IN_PROGRESS
    saved = await store.update_job(job)
    assert await store.find_recent_duplicate("t1", "h", 1000.0) == saved
