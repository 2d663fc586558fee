"""Every error class the useapi simulator's fault switches produce, through the adapter
and the generic `UpstreamClient`: in process for HTTP statuses and bodies, over real
loopback HTTP (`serve_in_thread`) for dropped connections and timeouts, which only a
socket can produce.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest

from providers.base import ErrorClass, FirstFrameInput, GenerationRequest, JobStatus, SubmitContext
from providers.client import UpstreamClient
from providers.simkit import serve_in_thread
from providers.useapi.adapter import UseapiAdapter
from providers.useapi.sim import SimAccount, SimConfig, create_app

from .sim_harness import CA, CTX, FIRST, IMAGE, JOB_SECONDS, TEXT, TOKEN, Sim, open_sim, raised, submit_text


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    async with open_sim() as s:
        yield s


async def test_429_fault_is_capacity_with_retry_after(sim: Sim) -> None:
    await sim.faults(submit_status=429, submit_status_count=1, retry_after="7")
    exc = await raised(submit_text(sim))
    assert exc.info.error_class is ErrorClass.CAPACITY
    assert (exc.info.retryable, exc.info.retry_after, exc.info.http_status, exc.ambiguous) == (True, 7.0, 429, False)
    assert exc.info.message == "All accounts at capacity"
    assert (await submit_text(sim)).status is JobStatus.IN_PROGRESS  # the burst is over


async def test_accounts_at_max_jobs_is_capacity_without_retry_after() -> None:
    async with open_sim([SimAccount(account=CA, region="CA", max_jobs=1)]) as s:
        await submit_text(s)
        exc = await raised(submit_text(s))
        assert exc.info.error_class is ErrorClass.CAPACITY and exc.info.retry_after is None
        s.clock.now += JOB_SECONDS  # the first job ends, its slot frees up
        assert (await submit_text(s)).status is JobStatus.IN_PROGRESS


@pytest.mark.parametrize(("status", "ambiguous"), [(500, False), (503, False), (502, True)])
async def test_5xx_on_submit_is_upstream_unavailable(sim: Sim, status: int, ambiguous: bool) -> None:
    await sim.faults(submit_status=status, submit_status_count=1)
    exc = await raised(submit_text(sim))
    assert exc.info.error_class is ErrorClass.UPSTREAM_UNAVAILABLE and exc.info.retryable
    assert exc.info.http_status == status and exc.ambiguous is ambiguous


async def test_5xx_on_poll_and_upload(sim: Sim) -> None:
    job = await submit_text(sim)
    await sim.faults(poll_status=503, poll_status_count=1, upload_status=500, upload_status_count=1, retry_after="2")
    exc = await raised(sim.client.poll(job.upstream_id))
    assert exc.info.error_class is ErrorClass.UPSTREAM_UNAVAILABLE and exc.info.retry_after == 2.0
    exc = await raised(sim.client.upload_all(FIRST, CTX))
    assert exc.info.error_class is ErrorClass.UPSTREAM_UNAVAILABLE
    assert (await sim.client.poll(job.upstream_id)).status is JobStatus.IN_PROGRESS


async def test_596_is_session_expired_on_upload_and_submit(sim: Sim) -> None:
    await sim.faults(session_expired=True)
    for awaitable in (sim.client.upload_all(FIRST, CTX), submit_text(sim)):
        exc = await raised(awaitable)
        assert exc.info.error_class is ErrorClass.SESSION_EXPIRED
        assert (exc.info.http_status, exc.info.retryable, exc.info.message) == (596, False, "Session expired")


async def test_expired_account_session_is_596() -> None:
    async with open_sim([SimAccount(account=CA, region="CA", session_expired=True)]) as s:
        exc = await raised(submit_text(s))
        assert exc.info.error_class is ErrorClass.SESSION_EXPIRED


async def test_failed_job_is_content_rejected(sim: Sim) -> None:
    await sim.faults(job_outcome="fail")
    job = await sim.run(TEXT, "seedance-2.0", CTX)
    assert job.status is JobStatus.FAILED and job.error is not None
    assert job.error.error_class is ErrorClass.CONTENT_REJECTED and not job.error.retryable
    assert (job.error.code, job.error.message) == ("fail_code: 2043", "OutputVideoRisk")


async def test_failed_job_without_moderation_words_is_generation_failed(sim: Sim) -> None:
    await sim.faults(job_outcome="fail", fail_reason="InternalServerError")
    job = await sim.run(TEXT, "seedance-2.0", CTX)
    assert job.error is not None and job.error.error_class is ErrorClass.GENERATION_FAILED and job.error.retryable


async def test_malformed_submit_answer_is_ambiguous_and_the_job_exists(sim: Sim) -> None:
    await sim.faults(malformed_count=1)
    exc = await raised(submit_text(sim))
    assert exc.info.error_class is ErrorClass.UPSTREAM_UNAVAILABLE and exc.info.code == "malformed_response"
    assert exc.ambiguous is True
    assert (await sim.submits())[-1]["jobid"]  # a paid job was created: it must be reconciled, not resent


async def test_malformed_poll_answer_is_not_ambiguous(sim: Sim) -> None:
    job = await submit_text(sim)
    await sim.faults(malformed_count=1)
    exc = await raised(sim.client.poll(job.upstream_id))
    assert exc.info.code == "malformed_response" and not exc.ambiguous


async def test_other_http_errors(sim: Sim) -> None:
    await sim.faults(submit_status=402, submit_status_count=1)
    assert (await raised(submit_text(sim))).info.error_class is ErrorClass.PAYMENT
    exc = await raised(sim.client.upload_all(FIRST, SubmitContext(account="CA:nobody@example.com")))
    assert exc.info.error_class is ErrorClass.NOT_FOUND
    assert exc.info.message == "Unable to find configuration for account CA:nobody@example.com"
    exc = await raised(sim.client.poll("j0101000000000000000v-u1-CA:nobody@example.com-bot:dreamina"))
    assert exc.info.error_class is ErrorClass.NOT_FOUND


async def test_out_of_credits_is_payment() -> None:
    async with open_sim([SimAccount(account=CA, region="CA", credits=10)]) as s:
        assert (await raised(submit_text(s))).info.error_class is ErrorClass.PAYMENT


async def test_wrong_token_is_auth() -> None:
    async with open_sim(token="user:1-wrong") as s:
        for awaitable in (submit_text(s), s.client.upload_all(FIRST, CTX)):
            exc = await raised(awaitable)
            assert exc.info.error_class is ErrorClass.AUTH and exc.info.message == "Unauthorized"


# ---------------------------------------------------------------------------
# Real sockets: dropped connections and timeouts
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loopback() -> Iterator[str]:
    config = SimConfig(job_seconds=0.05, tokens=frozenset({TOKEN}), accounts=[SimAccount(account=CA, region="CA")])
    app = create_app(config)
    with serve_in_thread(app) as base:
        yield base


@asynccontextmanager
async def over_loopback(base: str, timeout: float = 5.0) -> AsyncIterator[tuple[UpstreamClient, httpx.AsyncClient]]:
    async with (
        httpx.AsyncClient(base_url=f"{base}/v1/dreamina", timeout=timeout) as http,
        httpx.AsyncClient(base_url=base) as control,
    ):
        assert (await control.post("/_sim/reset")).status_code == 200
        yield UpstreamClient(UseapiAdapter(), http, TOKEN), control


async def test_loopback_round_trip(loopback: str) -> None:
    async with over_loopback(loopback) as (client, _):
        request = GenerationRequest(model="seedance-2.0", input=FirstFrameInput(first_frame=IMAGE), seconds=4)
        refs = await client.upload_all(request, CTX)
        job = await client.submit(request, "seedance-2.0", refs, CTX)
        for _ in range(100):
            job = await client.poll(job.upstream_id)
            if job.status.terminal:
                break
            await asyncio.sleep(0.02)
        assert job.status is JobStatus.COMPLETED and job.result is not None and job.account == CA


async def test_dropped_connection_on_submit_is_ambiguous(loopback: str) -> None:
    async with over_loopback(loopback) as (client, control):
        assert (await control.post("/_sim/faults", json={"drop_count": 1})).status_code == 200
        exc = await raised(client.submit(TEXT, "seedance-2.0", {}, CTX))
        assert exc.info.error_class is ErrorClass.UPSTREAM_UNAVAILABLE and exc.ambiguous is True


async def test_dropped_connection_on_poll_is_not_ambiguous(loopback: str) -> None:
    async with over_loopback(loopback) as (client, control):
        job = await client.submit(TEXT, "seedance-2.0", {}, CTX)
        assert (await control.post("/_sim/faults", json={"drop_count": 1})).status_code == 200
        exc = await raised(client.poll(job.upstream_id))
        assert exc.info.error_class is ErrorClass.UPSTREAM_UNAVAILABLE and exc.ambiguous is False


async def test_slow_upstream_is_timeout(loopback: str) -> None:
    async with over_loopback(loopback, timeout=0.1) as (client, control):
        assert (await control.post("/_sim/faults", json={"delay_seconds": 0.3})).status_code == 200
        exc = await raised(client.submit(TEXT, "seedance-2.0", {}, CTX))
        assert exc.info.error_class is ErrorClass.TIMEOUT and exc.info.retryable and exc.ambiguous is True
        exc = await raised(client.poll("j0101000000000000000v-u1-CA:x@example.com-bot:dreamina"))
        assert exc.info.error_class is ErrorClass.TIMEOUT and exc.ambiguous is False
