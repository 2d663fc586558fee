"""Job leases: how replicas on one database divide the active jobs. A job names its holder;
one heartbeat per holder keeps all its jobs. Two stores on one database stand for two
processes; claims and heartbeats race for real (two pools, or two SQLite connections)."""

from __future__ import annotations

import asyncio
import itertools

from gateway.jobs.store import Lease, Store
from providers.base import JobStatus
from tests.store.conftest import Backend
from tests.store.records import make_job


async def finish(store: Store, job_id: str, status: JobStatus = JobStatus.COMPLETED) -> None:
    job = await store.get_job(job_id)
    job.status = status
    await store.update_job(job)


def ids(*numbers: int) -> list[str]:
    return [f"video_{n:04d}" for n in numbers]


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
    # both heartbeats lapsed: everything active is claimable again, still never the terminal ones
    again = await store.claim_jobs(Lease("c", 300.0), now=200.0, limit=10)
    assert [j.id for j in again] == ["video_0003", "video_0001", "video_0002"]


async def test_one_heartbeat_keeps_every_job_its_owner_holds(backend: Backend) -> None:
    a, b = await backend.open(), await backend.open()
    for n in range(1, 4):
        await a.create_job(make_job(n))
    assert not await a.heartbeat(Lease("a", 60.0))  # a new owner: nothing on record to vouch for
    assert [j.id for j in await a.claim_jobs(Lease("a", 100.0), now=50.0, limit=10)] == ids(1, 2, 3)
    assert await b.claim_jobs(Lease("b", 200.0), now=99.0, limit=10) == []
    assert await b.claim_jobs(Lease("b", 200.0), now=100.0, limit=10) == []  # lapses only once `until` has passed
    assert await a.heartbeat(Lease("a", 150.0))  # nothing was taken from a
    assert await b.claim_jobs(Lease("b", 220.0), now=120.0, limit=10) == []  # all three held till 150
    assert [j.id for j in await b.claim_jobs(Lease("b", 220.0), now=151.0, limit=10)] == ids(1, 2, 3)
    assert not await a.heartbeat(Lease("a", 250.0))  # too late: some (here all) were claimed
    assert await a.held_by("a", ids(1, 2, 3)) == set()
    assert await b.held_by("b", ids(1, 2, 3, 9)) == set(ids(1, 2, 3))


async def test_when_one_owner_lapses_another_claims_exactly_its_jobs(backend: Backend) -> None:
    a, b, c = await backend.open(), await backend.open(), await backend.open()
    for n in range(1, 8):
        await a.create_job(make_job(n), lease=Lease("a" if n <= 3 else "b", 100.0) if n <= 6 else None)
    assert await c.claim_jobs(Lease("c", 100.0), now=50.0, limit=10) == [await a.get_job("video_0007")]  # the one nobody held
    assert not await a.heartbeat(Lease("a", 100.0))  # its row was made by a create: not vouched for
    assert await b.heartbeat(Lease("b", 100.0)) is False
    assert await a.heartbeat(Lease("a", 200.0)) and await b.heartbeat(Lease("b", 200.0))
    assert await c.heartbeat(Lease("c", 300.0)) is False  # made by its claim
    assert await b.heartbeat(Lease("b", 300.0))  # b beats on; a stops at 200

    taken = await c.claim_jobs(Lease("c", 400.0), now=250.0, limit=2)
    assert [j.id for j in taken] == ids(1, 2)  # a's, oldest first; never b's
    assert not await a.heartbeat(Lease("a", 500.0))  # a comes back: robbed
    assert await a.held_by("a", ids(1, 2, 3, 4, 5, 6)) == set(ids(3))
    assert await a.heartbeat(Lease("a", 600.0))  # the news is given once
    assert await b.heartbeat(Lease("b", 600.0))
    assert await b.held_by("b", ids(1, 2, 3, 4, 5, 6)) == set(ids(4, 5, 6))
    assert await c.claim_jobs(Lease("c", 700.0), now=350.0, limit=10) == []  # a and b are alive again


async def test_a_stalled_owner_claims_its_own_lapsed_jobs_and_loses_nothing(store: Store) -> None:
    for n in range(1, 3):
        await store.create_job(make_job(n), lease=Lease("a", 100.0))
    assert await store.heartbeat(Lease("a", 100.0)) is False
    # the heartbeat came late: the lease lapsed before anyone else looked, and a finds its own jobs unheld
    assert [j.id for j in await store.claim_jobs(Lease("a", 300.0), now=150.0, limit=10)] == ids(1, 2)
    assert await store.heartbeat(Lease("a", 400.0))  # taken by itself: nothing lost
    assert await store.held_by("a", ids(1, 2)) == set(ids(1, 2))


async def test_an_owner_cleaned_up_after_it_was_robbed_is_never_told_all_is_well(backend: Backend) -> None:
    a, b = await backend.open(), await backend.open()
    for n in range(1, 3):
        await a.create_job(make_job(n))
    await a.claim_jobs(Lease("a", 100.0), now=0.0, limit=10)
    await a.heartbeat(Lease("a", 100.0))
    assert [j.id for j in await b.claim_jobs(Lease("b", 500.0), now=150.0, limit=10)] == ids(1, 2)
    await b.claim_jobs(Lease("b", 500.0), now=160.0, limit=10)  # a holds nothing active now: its row goes
    # a stalled process wakes up and creates a job before its next heartbeat
    await a.create_job(make_job(3), lease=Lease("a", 300.0))
    assert not await a.heartbeat(Lease("a", 300.0))
    assert await a.held_by("a", ids(1, 2, 3)) == set(ids(3))


async def test_a_lapsed_owner_holding_nothing_is_cleaned_up(backend: Backend) -> None:
    a, b = await backend.open(), await backend.open()
    await a.heartbeat(Lease("idle", 100.0))
    assert await a.heartbeat(Lease("idle", 100.0))
    await a.create_job(make_job(1))
    await b.claim_jobs(Lease("b", 500.0), now=150.0, limit=10)  # "idle" lapsed at 100 holding no active job
    assert not await a.heartbeat(Lease("idle", 600.0))  # it has no heartbeat on record any more


async def test_a_finished_or_deleted_job_is_not_lost_to_a_heartbeat(store: Store) -> None:
    for n in range(1, 4):
        await store.create_job(make_job(n), lease=Lease("a", 100.0))
    await finish(store, "video_0002")
    assert await store.delete_job("video_0003", "t1")
    await store.heartbeat(Lease("a", 200.0))
    assert await store.heartbeat(Lease("a", 300.0))
    # a finished job is still its holder's (a heartbeat racing the final write loses nothing); a deleted one is gone
    assert await store.held_by("a", ids(1, 2, 3)) == set(ids(1, 2))
    assert await store.held_by("a", []) == set()


async def test_release_makes_jobs_claimable_at_once(backend: Backend) -> None:
    a, b = await backend.open(), await backend.open()
    for n in range(1, 4):
        await a.create_job(make_job(n))
    await a.heartbeat(Lease("a", 1000.0))
    await a.claim_jobs(Lease("a", 1000.0), now=0.0, limit=10)
    await b.release_leases("b", ids(1))  # not b's to release: nothing happens
    await a.release_leases("a", [])
    assert await b.claim_jobs(Lease("b", 1000.0), now=1.0, limit=10) == []
    await a.release_leases("a", [*ids(1, 3), "video_9999"])
    assert [j.id for j in await b.claim_jobs(Lease("b", 1000.0), now=1.0, limit=10)] == ids(1, 3)
    assert await a.held_by("a", ids(1, 2, 3)) == set(ids(2))
    assert await a.heartbeat(Lease("a", 1000.0))  # a still holds job 2: its heartbeat stays
    await a.release_leases("a", ids(2))  # a clean stop: holding nothing, the heartbeat goes too
    assert not await a.heartbeat(Lease("a", 1000.0))


async def test_a_job_created_with_a_lease_is_its_creators(backend: Backend) -> None:
    a, b = await backend.open(), await backend.open()
    created = await a.create_job(make_job(1), lease=Lease("a", 100.0))
    await a.create_job(make_job(2))  # no lease: anyone may claim it
    assert [j.id for j in await b.claim_jobs(Lease("b", 50_000.0), now=50.0, limit=10)] == ["video_0002"]
    await a.heartbeat(Lease("a", 10_000.0))
    assert await b.claim_jobs(Lease("b", 500.0), now=9_999.0, limit=10) == []
    assert await b.claim_jobs(Lease("b", 20_000.0), now=10_001.0, limit=10) == [created]
    # an idempotent replay inserts nothing, so it leases nothing either
    await a.create_job(make_job(3, idempotency_key="k"))
    replay = await b.create_job(make_job(4, idempotency_key="k"), lease=Lease("b", 500.0))
    assert replay.id == "video_0003"
    assert await b.held_by("b", ["video_0003"]) == set()


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
        assert await store.held_by(owner, everything) == set(taken[owner])


async def test_lapsed_leases_are_split_between_racing_claimers(backend: Backend) -> None:
    a, b = await backend.open(), await backend.open()
    for n in range(30):
        await a.create_job(make_job(n))
    await a.claim_jobs(Lease("dead", 100.0), now=0.0, limit=20)  # a process that then died
    everyone = ids(*range(30))
    before = await asyncio.gather(a.claim_jobs(Lease("a", 300.0), now=50.0, limit=30), b.claim_jobs(Lease("b", 300.0), now=50.0, limit=30))
    assert sorted(j.id for js in before for j in js) == everyone[20:]  # the dead one's heartbeat still holds
    after = await asyncio.gather(a.claim_jobs(Lease("a2", 300.0), now=150.0, limit=30), b.claim_jobs(Lease("b2", 300.0), now=150.0, limit=30))
    assert sorted(j.id for js in after for j in js) == everyone[:20]
    assert not await a.heartbeat(Lease("dead", 400.0))
    assert await a.held_by("dead", everyone) == set()


async def test_heartbeats_racing_claims_never_leave_a_job_with_two_holders(backend: Backend) -> None:
    # Owner "a" beats just as its heartbeat lapses while "b" claims: whichever lands first,
    # a job b took is never one that a's heartbeat (or its held_by) still calls a's.
    a, b = await backend.open(), await backend.open()
    for n in range(20):
        await a.create_job(make_job(n), lease=Lease("a", 100.0))
    everyone = ids(*range(20))
    await a.heartbeat(Lease("a", 100.0))
    held = set(everyone)  # what a believes it holds, as the engine's book would
    until = 100.0
    for round_ in range(20):
        claim = b.claim_jobs(Lease("b", until + 1000.0), now=until + 0.5, limit=3)
        beat = a.heartbeat(Lease("a", until + 10.0))
        # Each order in turn, then the two at once: a store may answer a small write without
        # ever waiting, so a race alone need not ever let the claim land first.
        match round_ % 3:
            case 0:
                claimed, kept = await claim, await beat
            case 1:
                kept, claimed = await beat, await claim
            case _:
                claimed, kept = await asyncio.gather(claim, beat)
        if not kept:
            held = await a.held_by("a", sorted(held))
        assert not held & {j.id for j in claimed}, round_
        assert held == await a.held_by("a", everyone), round_
        until += 10.0
    assert held != set(everyone)  # some rounds were won by the claim
