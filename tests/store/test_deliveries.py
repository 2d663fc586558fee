"""Webhook deliveries: the outbox written with a job update, claims, and disabled endpoints."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from gateway.jobs.model import DeliveryAttempt
from gateway.jobs.store import DeliveryInFlight, DeliveryOutcome, StaleJob, Store
from providers.base import JobStatus
from tests.store.conftest import Backend
from tests.store.records import make_delivery, make_job


async def test_claims_take_due_pending_deliveries_earliest_first(store: Store) -> None:
    await store.add_delivery(make_delivery(1, due=50.0))
    await store.add_delivery(make_delivery(2, due=10.0))
    await store.add_delivery(make_delivery(3, due=None))  # due from created_at = 3.0
    await store.add_delivery(make_delivery(4, due=10.0))
    await store.add_delivery(make_delivery(5, due=5000.0))
    await store.add_delivery(make_delivery(6, due=1.0, job_id="video_0002", status="delivered"))
    await store.add_delivery(make_delivery(7, due=1.0, job_id="video_0002", status="failed"))
    assert await store.claim_deliveries(0.5, lease_until=1000.0) == []
    first = await store.claim_deliveries(100.0, lease_until=1000.0, limit=2)
    assert first == [make_delivery(3, due=None), make_delivery(2, due=10.0)]  # as they were before the claim
    assert [d.id for d in await store.claim_deliveries(100.0, lease_until=1000.0)] == ["msg_4", "msg_1"]
    assert await store.claim_deliveries(999.0, lease_until=2000.0) == []  # claimed ones wait for their lease
    assert await store.claim_deliveries(100.0, lease_until=1000.0, limit=0) == []

    # the claimer records its outcomes, but one claim is never recorded (its process died)
    retry = msgspec.structs.replace(make_delivery(2, due=10.0), attempts=1, next_attempt_at=1500.0, last_status_code=500, last_error="boom")
    await store.update_delivery(retry)
    done = msgspec.structs.replace(make_delivery(3, due=None), attempts=1, status="delivered", last_status_code=200)
    await store.update_delivery(done)
    gave_up = msgspec.structs.replace(make_delivery(4, due=10.0), attempts=9, status="failed")
    await store.update_delivery(gave_up)
    assert await store.claim_deliveries(1000.0, lease_until=3000.0) == [make_delivery(1, due=50.0)]
    assert await store.claim_deliveries(1499.0, lease_until=3000.0) == []
    assert await store.claim_deliveries(1500.0, lease_until=3000.0) == [retry]
    # delivered and failed ones are never claimed again, however late
    assert [d.id for d in await store.claim_deliveries(1e9, lease_until=2e9)] == ["msg_1", "msg_2", "msg_5"]

    listed = await store.deliveries("video_0001")
    assert [d.id for d in listed] == ["msg_1", "msg_2", "msg_3", "msg_4", "msg_5"]
    assert listed[1] == retry and listed[1].payload == b'{"id": "evt"}'
    assert listed[2] == done and listed[3] == gave_up
    assert [d.id for d in await store.deliveries("video_0002")] == ["msg_6", "msg_7"]
    assert await store.deliveries("video_9999") == []
    with pytest.raises(KeyError):
        await store.update_delivery(make_delivery(9, due=1.0))


async def test_get_delivery_is_tenant_scoped(store: Store) -> None:
    delivery = make_delivery(1, due=None)
    await store.add_delivery(delivery)
    assert await store.get_delivery("msg_1") == delivery
    assert await store.get_delivery("msg_1", "t1") == delivery
    assert await store.get_delivery("msg_1", "t2") is None
    assert await store.get_delivery("msg_9") is None


async def test_update_job_writes_its_deliveries_in_the_same_transaction(store: Store) -> None:
    job = await store.create_job(make_job(1))
    reader = await store.get_job(job.id)
    job.status = JobStatus.COMPLETED
    outbox = [make_delivery(1, due=None), make_delivery(2, due=None, url="https://other.example/hook")]
    saved = await store.update_job(job, deliveries=outbox)
    assert saved.version == 1
    assert await store.deliveries(job.id) == outbox

    # a stale update writes nothing: neither the job nor its deliveries
    reader.status = JobStatus.FAILED
    with pytest.raises(StaleJob):
        await store.update_job(reader, deliveries=[make_delivery(3, due=None)])
    assert await store.get_delivery("msg_3") is None
    assert (await store.get_job(job.id)).status is JobStatus.COMPLETED
    with pytest.raises(StaleJob):
        await store.update_job(make_job(99), deliveries=[make_delivery(4, due=None, job_id="video_0099")])
    assert await store.get_delivery("msg_4") is None

    # a delivery id already stored is skipped, the rest of the outbox still goes in
    changed = msgspec.structs.replace(outbox[0], url="https://elsewhere.example/")
    again = await store.update_job(saved, deliveries=[changed, make_delivery(5, due=None)])
    assert again.version == 2
    assert [d.id for d in await store.deliveries(job.id)] == ["msg_1", "msg_2", "msg_5"]
    assert await store.get_delivery("msg_1") == outbox[0]
    # and what went in through the outbox is claimed like any delivery
    claimed = await store.claim_deliveries(100.0, lease_until=200.0)
    assert [d.id for d in claimed] == ["msg_1", "msg_2", "msg_5"]


async def test_concurrent_claims_from_two_stores_are_disjoint(backend: Backend) -> None:
    a, b = await backend.open(), await backend.open()
    for n in range(1, 61):
        await a.add_delivery(make_delivery(n, due=float(n % 7)))
    claimers = [a, a, a, b, b, b]
    claimed: list[list[str]] = [[] for _ in claimers]

    async def claim_until_none_left(i: int) -> None:
        while batch := await claimers[i].claim_deliveries(10.0, lease_until=100.0, limit=4):
            claimed[i] += [d.id for d in batch]

    await asyncio.gather(*(claim_until_none_left(i) for i in range(len(claimers))))
    everything = [d for batch in claimed for d in batch]
    assert len(everything) == len(set(everything)) == 60
    assert sum(1 for batch in claimed if batch) > 1
    # none is due again before the claims' lease ends, all are at its end
    assert await b.claim_deliveries(99.9, lease_until=200.0, limit=100) == []
    assert len(await b.claim_deliveries(100.0, lease_until=200.0, limit=100)) == 60


async def test_disabled_endpoints_are_per_tenant_and_url(store: Store) -> None:
    url = "https://hooks.example/v"
    assert await store.endpoint_disabled("t1", url) is None
    await store.disable_endpoint("t1", url, "410 Gone", at=5.0)
    assert await store.endpoint_disabled("t1", url) == "410 Gone"
    assert await store.endpoint_disabled("t2", url) is None
    assert await store.endpoint_disabled("t1", "https://hooks.example/other") is None
    await store.disable_endpoint("t1", url, "410 Gone again", at=6.0)
    assert await store.endpoint_disabled("t1", url) == "410 Gone again"
    assert not await store.enable_endpoint("t2", url)
    assert await store.enable_endpoint("t1", url)
    assert await store.endpoint_disabled("t1", url) is None
    assert not await store.enable_endpoint("t1", url)


async def test_endpoint_disables_are_seen_by_other_processes(backend: Backend) -> None:
    a, b = await backend.open(), await backend.open()
    await a.disable_endpoint("t1", "https://hooks.example/v", "410 Gone", at=5.0)
    assert await b.endpoint_disabled("t1", "https://hooks.example/v") == "410 Gone"
    assert await b.enable_endpoint("t1", "https://hooks.example/v")
    assert await a.endpoint_disabled("t1", "https://hooks.example/v") is None


OUTCOME = DeliveryOutcome(status="pending", next_attempt_at=500.0, last_status_code=503, last_error="HTTP 503")


async def test_record_attempt_appends_atomically_and_ends_the_claim(backend: Backend) -> None:
    a, b = await backend.open(), await backend.open()
    await a.add_delivery(make_delivery(1, due=None))
    [claimed] = await a.claim_deliveries(10.0, lease_until=100.0)
    # two writers append at once (one per process): neither entry is lost
    entries = [DeliveryAttempt(at=float(n), status_code=503) for n in range(10)]
    await asyncio.gather(*((a if n % 2 else b).record_attempt(claimed.id, e, OUTCOME) for n, e in enumerate(entries)))
    stored = await a.get_delivery("msg_1")
    assert stored is not None
    assert stored.attempts == 10 and sorted(e.at for e in stored.log) == [float(n) for n in range(10)]
    assert (stored.status, stored.next_attempt_at, stored.last_status_code) == ("pending", 500.0, 503)
    skipped = await a.record_attempt("msg_1", None, DeliveryOutcome(status="failed", next_attempt_at=None, last_status_code=None, last_error="skipped"))
    assert skipped.attempts == 10 and skipped.status == "failed"  # nothing sent: nothing counted
    with pytest.raises(KeyError):
        await a.record_attempt("msg_9", None, OUTCOME)


async def test_a_delivery_in_flight_is_not_requeued_until_its_claim_ends_or_lapses(store: Store) -> None:
    await store.add_delivery(make_delivery(1, due=None))
    await store.add_delivery(make_delivery(2, due=None))
    await store.claim_deliveries(10.0, lease_until=100.0)
    with pytest.raises(DeliveryInFlight):
        await store.requeue_delivery("msg_1", "t1", 20.0)
    with pytest.raises(KeyError):
        await store.requeue_delivery("msg_1", "t2", 20.0)  # another tenant's
    await store.record_attempt(
        "msg_1", DeliveryAttempt(at=20.0, status_code=200), DeliveryOutcome(status="delivered", next_attempt_at=None, last_status_code=200, last_error=None)
    )
    requeued = await store.requeue_delivery("msg_1", "t1", 30.0)
    assert (requeued.status, requeued.next_attempt_at, requeued.attempts) == ("pending", 30.0, 1)
    assert [d.id for d in await store.claim_deliveries(30.0, lease_until=130.0)] == ["msg_1"]
    assert (await store.requeue_delivery("msg_2", "t1", 101.0)).next_attempt_at == 101.0  # its claim lapsed at 100


async def test_claims_pass_over_skipped_tenants_and_urls_and_deferred_deliveries_come_back(store: Store) -> None:
    await store.add_delivery(make_delivery(1, due=1.0, tenant="t1", url="https://a.example/"))
    await store.add_delivery(make_delivery(2, due=2.0, tenant="t2", url="https://b.example/"))
    await store.add_delivery(make_delivery(3, due=3.0, tenant="t2", url="https://c.example/"))
    assert [d.id for d in await store.claim_deliveries(10.0, 100.0, skip_tenants=["t1"], skip_urls=["https://b.example/"])] == ["msg_3"]
    await store.defer_deliveries(["msg_3"], until=50.0)
    assert await store.claim_deliveries(49.0, 100.0, skip_tenants=["t1", "t2"]) == []
    assert [d.id for d in await store.claim_deliveries(50.0, 100.0)] == ["msg_1", "msg_2", "msg_3"]


async def test_a_claim_takes_at_most_so_many_per_tenant_and_per_url(store: Store) -> None:
    for n in range(1, 7):
        await store.add_delivery(make_delivery(n, due=float(n), tenant="t1", url="https://a.example/"))
    for n in range(7, 10):
        await store.add_delivery(make_delivery(n, due=float(n), tenant="t2", url=f"https://b.example/{n}"))
    claimed = await store.claim_deliveries(100.0, 200.0, 50, per_tenant=2, per_url=2)
    assert [d.id for d in claimed] == ["msg_1", "msg_2", "msg_7", "msg_8"]
    claimed = await store.claim_deliveries(100.0, 200.0, 50, per_url=1)
    assert [d.id for d in claimed] == ["msg_3", "msg_9"]
