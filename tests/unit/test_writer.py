"""Group commit of creates: what a burst of creates hands the store, and what each waiter gets back."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from gateway.errors import StoreUnavailable
from gateway.jobs.model import Job
from gateway.jobs.sqlite import SqliteStore
from gateway.jobs.store import Lease
from gateway.jobs.writer import CreateWriter
from tests.store.records import make_job


class CountingStore(SqliteStore):
    """A real store that counts its create transactions and can be held up or made to fail."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.batches: list[list[str]] = []
        self.gate: asyncio.Event | None = None
        self.down = False

    async def create_jobs(self, items: Sequence[tuple[Job, Lease | None]]) -> list[Job]:
        self.batches.append([job.id for job, _ in items])
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise StoreUnavailable()
        return await super().create_jobs(items)


@pytest.fixture
async def store(tmp_path: Path) -> CountingStore:
    s = CountingStore(tmp_path / "vidgate.db")
    await s.open()
    yield s  # type: ignore[misc]
    await s.close()


async def test_a_burst_of_creates_is_stored_in_few_transactions_each_with_its_own_answer(store: CountingStore) -> None:
    writer = CreateWriter(store)
    lease = Lease("me", 100.0)
    await store.create_job(make_job(0, idempotency_key="taken"))
    store.batches.clear()
    jobs = [make_job(n, idempotency_key="taken" if n == 7 else None) for n in range(1, 41)]
    created = await asyncio.gather(*(writer.create(job, lease) for job in jobs))
    assert [c.id for c in created] == [("video_0000" if j.idempotency_key else j.id) for j in jobs]
    assert len(store.batches) < 10 and sum(len(b) for b in store.batches) == 40  # the first alone, the rest behind it
    assert writer.writes == 40
    assert await store.held_by("me", [j.id for j in jobs]) == {j.id for j in jobs} - {"video_0007"}


async def test_a_clash_fails_only_the_create_that_clashed(store: CountingStore) -> None:
    writer = CreateWriter(store)
    await store.create_job(make_job(1, callback_token="cb"))
    store.gate = asyncio.Event()
    first = asyncio.create_task(writer.create(make_job(2), None))  # holds the store while the others queue
    await asyncio.sleep(0.01)
    queued = [asyncio.create_task(writer.create(make_job(n, callback_token="cb" if n == 4 else None), None)) for n in (3, 4, 5)]
    await asyncio.sleep(0.01)
    store.gate.set()
    outcomes = await asyncio.gather(first, *queued, return_exceptions=True)
    assert [o.id if isinstance(o, Job) else type(o).__name__ for o in outcomes] == ["video_0002", "video_0003", "IntegrityError", "video_0005"]


async def test_a_store_outage_fails_every_create_of_the_batch(store: CountingStore) -> None:
    writer = CreateWriter(store)
    store.down = True
    outcomes = await asyncio.gather(*(writer.create(make_job(n), None) for n in range(3)), return_exceptions=True)
    assert all(isinstance(o, StoreUnavailable) for o in outcomes)
    store.down = False
    assert (await writer.create(make_job(9), None)).id == "video_0009"


async def test_a_job_stored_for_a_create_that_went_away_is_released_for_a_claim(store: CountingStore) -> None:
    writer = CreateWriter(store)
    await store.heartbeat(Lease("me", 100.0))
    store.gate = asyncio.Event()
    waiter = asyncio.create_task(writer.create(make_job(1), Lease("me", 100.0)))
    await asyncio.sleep(0.01)
    waiter.cancel()  # the request is gone; the transaction carries on
    store.gate.set()
    await asyncio.gather(waiter, return_exceptions=True)
    for _ in range(500):  # the transaction, then the release, finish on the store's thread
        if await store.get_job("video_0001") is not None and not await store.held_by("me", ["video_0001"]):
            break
        await asyncio.sleep(0.01)
    assert await store.get_job("video_0001") is not None
    assert [j.id for j in await store.claim_jobs(Lease("me", 100.0), now=50.0, limit=10)] == ["video_0001"]
