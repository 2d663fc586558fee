"""Job leases: how replicas on one database divide the active jobs. Two stores on one
database stand for two processes; claims race for real (two pools, or two SQLite connections)."""

from __future__ import annotations

import asyncio
import itertools

from gateway.jobs.store import Lease, Store
from providers.base import JobStatus
from tests.store.conftest import Backend
from tests.store.records import make_job


async def held_by(store: Store, owner: str, job_ids: list[str]) -> set[str]:
    """Which of `job_ids` `owner` holds, asked the only way the protocol allows: by renewing."""
    return await store.renew_leases(Lease(owner, 10_000.0), job_ids)


async def finish(store: Store, job_id: str, status: JobStatus = JobStatus.COMPLETED) -> None:
    job = await store.get_job(job_id)
    job.status = status
    await store.update_job(job)


async def test_claims_take_unheld_active_jobs_oldest_first(store: Store) -> None:
    for n in (3, 1, 2, 4, 5):
        await store.create_job(make_job(n))
    await finish(store, "video_0004")
    await finish(store, "video_0005", JobStatus.CANCELLED)
    first = await store.claim_jobs(Lease("a", 100.0), now=50.0, limit=2)
    # creation order is insertion order, not id order
    assert [j.id for j in first] == ["video_0003", "video_0001"]
    assert first[0] == await store.get_job("video_0003")  # the jobs as stored, version included
    rest = await store.claim_jobs(Lease("b", 100.0), now=50.0, limit=10)
    assert [j.id for j in rest] == ["video_0002"]  # terminal jobs are never claimed
    assert await store.claim_jobs(Lease("c", 100.0), now=50.0, limit=10) == []
    assert await store.claim_jobs(Lease("c", 100.0), now=200.0, limit=0) == []
    # all lapsed: everything active is claimable again, still never the terminal ones
    again = await store.claim_jobs(Lease("c", 300.0), now=200.0, limit=10)
    assert [j.id for j in again] == ["video_0003", "video_0001", "video_0002"]


async def test_a_lease_holds_until_it_lapses(backend: Backend) -> None:
    a, b = await backend.open(), await backend.open()
    for n in range(1, 4):
        await a.create_job(make_job(n))
    ids = ["video_0001", "video_0002", "video_0003"]
    assert [j.id for j in await a.claim_jobs(Lease("a", 100.0), now=50.0, limit=10)] == ids
    assert await b.claim_jobs(Lease("b", 200.0), now=99.0, limit=10) == []
    assert await b.claim_jobs(Lease("b", 200.0), now=100.0, limit=10) == []  # lapses only once `until` has passed
    assert await a.renew_leases(Lease("a", 150.0), ["video_0001"]) == {"video_0001"}
    # at 120 a's renewed lease holds; the other two lapsed at 100 and b takes them
    assert [j.id for j in await b.claim_jobs(Lease("b", 220.0), now=120.0, limit=10)] == ["video_0002", "video_0003"]
    assert await a.renew_leases(Lease("a", 250.0), ids) == {"video_0001"}  # the rest were lost
    assert await held_by(b, "b", ids) == {"video_0002", "video_0003"}


async def test_renew_returns_only_leases_still_held(store: Store) -> None:
    for n in range(1, 6):
        await store.create_job(make_job(n))
    await store.claim_jobs(Lease("a", 100.0), now=0.0, limit=3)  # 1, 2, 3
    await store.claim_jobs(Lease("b", 100.0), now=0.0, limit=1)  # 4; 5 stays unleased
    await finish(store, "video_0002")
    assert await store.delete_job("video_0003", "t1")
    asked = ["video_0001", "video_0002", "video_0003", "video_0004", "video_0005", "video_9999"]
    assert await store.renew_leases(Lease("a", 200.0), asked) == {"video_0001"}
    assert await store.renew_leases(Lease("a", 200.0), []) == set()
    # the renewal moved `until`: at 150 job 1 is still held, job 4 (b's, lapsed at 100) is not
    assert [j.id for j in await store.claim_jobs(Lease("c", 300.0), now=150.0, limit=10)] == ["video_0004", "video_0005"]


async def test_release_makes_jobs_claimable_at_once(backend: Backend) -> None:
    a, b = await backend.open(), await backend.open()
    for n in range(1, 4):
        await a.create_job(make_job(n))
    await a.claim_jobs(Lease("a", 1000.0), now=0.0, limit=10)
    await b.release_leases("b", ["video_0001"])  # not b's to release: nothing happens
    await a.release_leases("a", [])
    assert await b.claim_jobs(Lease("b", 1000.0), now=1.0, limit=10) == []
    await a.release_leases("a", ["video_0001", "video_0003", "video_9999"])
    assert [j.id for j in await b.claim_jobs(Lease("b", 1000.0), now=1.0, limit=10)] == ["video_0001", "video_0003"]
    assert await held_by(a, "a", ["video_0001", "video_0002", "video_0003"]) == {"video_0002"}


async def test_a_job_created_with_a_lease_is_its_creators(backend: Backend) -> None:
    a, b = await backend.open(), await backend.open()
    created = await a.create_job(make_job(1), lease=Lease("a", 100.0))
    await a.create_job(make_job(2))  # no lease: anyone may claim it
    assert [j.id for j in await b.claim_jobs(Lease("b", 50_000.0), now=50.0, limit=10)] == ["video_0002"]
    assert await held_by(a, "a", ["video_0001"]) == {"video_0001"}  # renewed to 10 000 here
    assert await b.claim_jobs(Lease("b", 500.0), now=9_999.0, limit=10) == []
    assert await b.claim_jobs(Lease("b", 20_000.0), now=10_001.0, limit=10) == [created]
    # an idempotent replay inserts nothing, so it leases nothing either
    await a.create_job(make_job(3, idempotency_key="k"))
    replay = await b.create_job(make_job(4, idempotency_key="k"), lease=Lease("b", 500.0))
    assert replay.id == "video_0003"
    assert await held_by(b, "b", ["video_0003"]) == set()


async def test_concurrent_claims_from_two_stores_never_share_a_job(backend: Backend) -> None:
    a, b = await backend.open(), await backend.open()
    for n in range(60):
        await a.create_job(make_job(n))
    await finish(a, "video_0007")
    claimers = [(store, f"{name}{i}") for (store, name), i in itertools.product(((a, "a"), (b, "b")), range(3))]
    taken: dict[str, list[str]] = {owner: [] for _, owner in claimers}

    async def claim_until_none_left(store: Store, owner: str) -> None:
        while jobs := await store.claim_jobs(Lease(owner, 100.0), now=10.0, limit=4):
            taken[owner] += [j.id for j in jobs]

    await asyncio.gather(*(claim_until_none_left(store, owner) for store, owner in claimers))
    everything = [job_id for ids in taken.values() for job_id in ids]
    assert len(everything) == len(set(everything)) == 59  # disjoint, and every active job once
    assert "video_0007" not in everything
    assert sum(1 for ids in taken.values() if ids) > 1  # the race really was run by several claimers
    for store, owner in claimers:
        assert await held_by(store, owner, everything) == set(taken[owner])


async def test_lapsed_leases_are_split_between_racing_claimers(backend: Backend) -> None:
    a, b = await backend.open(), await backend.open()
    for n in range(30):
        await a.create_job(make_job(n))
    await a.claim_jobs(Lease("dead", 100.0), now=0.0, limit=20)  # a process that then died
    ids = [f"video_{n:04d}" for n in range(30)]
    before = await asyncio.gather(a.claim_jobs(Lease("a", 300.0), now=50.0, limit=30), b.claim_jobs(Lease("b", 300.0), now=50.0, limit=30))
    assert sorted(j.id for js in before for j in js) == ids[20:]  # the dead one's leases still hold
    after = await asyncio.gather(a.claim_jobs(Lease("a2", 300.0), now=150.0, limit=30), b.claim_jobs(Lease("b2", 300.0), now=150.0, limit=30))
    assert sorted(j.id for js in after for j in js) == ids[:20]
    assert await a.renew_leases(Lease("dead", 400.0), ids) == set()
