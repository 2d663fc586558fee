"""Two stores on one database stand for two vidgate processes: they see each other's
writes, race on the same rows safely, and a restart finds everything."""

from __future__ import annotations

import asyncio

import pytest

from gateway.jobs.store import StaleJob
from providers.base import JobStatus
from tests.store.conftest import Backend
from tests.store.records import make_file, make_job


async def test_a_second_store_sees_writes_and_a_restart_finds_them(backend: Backend) -> None:
    a, b = await backend.open(), await backend.open()  # the schema is there already: no re-migration
    job = await a.create_job(make_job(1, idempotency_key="k"))
    seen = await b.get_job(job.id)
    assert seen == job
    seen.status = JobStatus.IN_PROGRESS
    await b.update_job(seen)
    with pytest.raises(StaleJob):
        await a.update_job(job)  # written by the other process meanwhile
    assert (await b.create_job(make_job(2, idempotency_key="k"))).id == job.id
    await a.put_file(make_file("file_1", b"abc"), b"abc")
    await backend.close_all()

    restarted = await backend.open()
    assert [j.id for j in await restarted.active_jobs()] == ["video_0001"]
    assert (await restarted.get_job("video_0001")).version == 1
    assert await restarted.read_file("file_1") == b"abc"


async def test_two_writers_interleave_safely(backend: Backend) -> None:
    a, b = await backend.open(), await backend.open()
    await asyncio.gather(
        *(a.create_job(make_job(n)) for n in range(0, 40, 2)),
        *(b.create_job(make_job(n)) for n in range(1, 40, 2)),
    )
    page, more = await a.list_jobs("t1", limit=100, order="asc")
    assert len(page) == 40 and not more
    assert sorted(j.id for j in page) == [f"video_{n:04d}" for n in range(40)]


async def test_idempotent_creates_racing_across_two_stores_insert_once(backend: Backend) -> None:
    a, b = await backend.open(), await backend.open()
    results = await asyncio.gather(*((a if n % 2 else b).create_job(make_job(n, idempotency_key="same")) for n in range(20)))
    assert len({r.id for r in results}) == 1
    assert len({r.version for r in results}) == 1
    page, more = await b.list_jobs("t1", limit=100)
    assert [j.id for j in page] == [results[0].id] and not more
    assert await a.find_idempotent("t1", "same") == results[0]


async def test_updates_racing_across_two_stores_have_one_winner(backend: Backend) -> None:
    a, b = await backend.open(), await backend.open()
    job = await a.create_job(make_job(1))
    readers = [await store.get_job(job.id) for store in (a, b, a, b)]
    for n, reader in enumerate(readers):
        reader.progress = n
    outcomes = await asyncio.gather(*(store.update_job(reader) for store, reader in zip((a, b, a, b), readers, strict=False)), return_exceptions=True)
    winners = [o for o in outcomes if not isinstance(o, StaleJob)]
    assert len(winners) == 1 and winners[0].version == 1
    assert await b.get_job(job.id) == winners[0]


async def test_files_racing_for_one_id_across_two_stores_store_one(backend: Backend) -> None:
    a, b = await backend.open(), await backend.open()
    datas = [bytes([n]) * (1000 + n) for n in range(6)]
    outcomes = await asyncio.gather(*((a if n % 2 else b).put_file(make_file("file_x", d), d) for n, d in enumerate(datas)), return_exceptions=True)
    winners = [o for o in outcomes if not isinstance(o, FileExistsError)]
    assert len(winners) == 1
    winner = datas[outcomes.index(winners[0])]
    assert await a.read_file("file_x") == await b.read_file("file_x") == winner
    assert (await b.get_file("file_x")).bytes == len(winner)
