"""The job engine end to end on a fake clock: vidgate and both simulators in one event loop,
talking over ASGI, time moving only when the test says. Each test is one defect the old
runner had, or one promise of the new centre."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from gateway.errors import StoreUnavailable
from gateway.jobs.model import Job
from gateway.jobs.sqlite import SqliteStore
from gateway.jobs.store import JobWrite, Lease
from providers.modelark.sim import SimConfig as ArkConfig
from providers.modelark.sim import create_app as ark_app
from providers.powertokens.sim import SimConfig as PtConfig
from providers.powertokens.sim import create_app as pt_app
from providers.useapi.sim import SimAccount
from providers.useapi.sim import SimConfig as UaConfig
from providers.useapi.sim import create_app as ua_app
from tests.harness import FakeClock, Harness, settings_for

UA = {"model": "seedance-2.0", "prompt": "a paper boat", "seconds": 5, "provider": "useapi"}


async def test_a_job_runs_to_completion_on_simulated_time(tmp_path: Path) -> None:
    async with Harness.start(settings_for(tmp_path), job_seconds=10) as h:
        video = await h.create(UA)
        assert video["status"] == "queued"
        await h.advance(3)
        running = await h.video(video["id"])
        assert running["status"] == "in_progress" and running["upstream"]["id"]
        await h.advance(10)
        done = await h.video(video["id"])
        assert done["status"] == "completed" and done["progress"] == 100
        assert (await h.providers())["useapi"]["in_flight"] == 0


class SlowRenewals(SqliteStore):
    """A store whose heartbeat is held up (a lock held elsewhere) while the clock runs on,
    so the renewed lease has already lapsed when it is written: the old runner then claimed
    its own jobs again and counted their slot twice."""

    clock: FakeClock
    stall: float = 0.0

    async def heartbeat(self, lease: Lease) -> bool:
        kept = await super().heartbeat(lease)
        if self.stall:
            self.clock.advance(self.stall)
            self.stall = 0.0
        return kept


async def test_a_late_lease_renewal_reclaims_nothing_and_leaks_no_slot(tmp_path: Path) -> None:
    clock = FakeClock()
    settings = settings_for(tmp_path, useapi_max_jobs=1)
    store = SlowRenewals(tmp_path / "vidgate.db")
    store.clock = clock
    async with Harness.start(settings, clock=clock, job_seconds=30, store=store) as h:
        first = await h.create(UA)
        second = await h.create({**UA, "prompt": "waits for the slot"})
        await h.advance(3)
        assert (await h.video(first["id"]))["status"] == "in_progress"
        assert (await h.providers())["useapi"]["in_flight"] == 1

        store.stall = 15.0  # the next heartbeat commits a lease that lapsed 5 s ago
        with capture_logs() as logs:
            await h.advance(2)
            await h.advance(1)  # the claim that follows sees the job's lease lapsed: it is ours
        assert any(e["event"] == "jobs.leases_lapsed_here" for e in logs)  # the defect's setting did arise
        assert (await h.providers())["useapi"]["in_flight"] == 1
        assert h.service.engine.driving == 2  # type: ignore[attr-defined]

        await h.advance(40)
        assert (await h.video(first["id"]))["status"] == "completed"
        await h.advance(40)
        assert (await h.video(second["id"]))["status"] == "completed"
        assert (await h.providers())["useapi"]["in_flight"] == 0


async def test_a_garbled_submit_answer_reconciles_through_the_callback_and_completes_with_one_upstream_job(tmp_path: Path) -> None:
    async with Harness.start(settings_for(tmp_path), job_seconds=10) as h:
        await h.faults("useapi", malformed_count=1)  # the job is created upstream; only its answer is garbled
        with capture_logs() as logs:
            video = await h.create(UA)
            await h.advance(15)
        done = await h.video(video["id"])
        submits = await h.sim("useapi", "/_sim/jobs")
    assert done["status"] == "completed", done
    assert len(submits) == 1
    [attempt] = done["attempts"]
    assert attempt["provider"] == "useapi" and attempt["upstream_id"] == done["upstream"]["id"] and attempt["upstream_id"]
    assert any(e["event"] == "job.submit_ambiguous" for e in logs)


async def test_a_garbled_submit_is_found_in_the_scheduler_listing_without_a_callback(tmp_path: Path) -> None:
    async with Harness.start(settings_for(tmp_path), job_seconds=20, callbacks_reach_us=False) as h:
        await h.faults("useapi", malformed_count=1)
        video = await h.create(UA)
        await h.advance(3)
        found = await h.video(video["id"])
        assert found["status"] == "in_progress" and found["upstream"]["id"], found
        await h.advance(25)
        done = await h.video(video["id"])
        submits = await h.sim("useapi", "/_sim/jobs")
    assert done["status"] == "completed" and len(submits) == 1


async def test_a_provider_that_cannot_reconcile_fails_an_unknown_outcome_without_resending(tmp_path: Path) -> None:
    async with Harness.start(settings_for(tmp_path), job_seconds=10) as h:
        await h.faults("powertokens", drop_count=1)  # the connection drops mid-answer
        video = await h.create({**UA, "provider": "powertokens"})
        await h.advance(3)
        failed = await h.video(video["id"])
        submits = await h.sim("powertokens", "/_sim/jobs")
    assert failed["status"] == "failed" and failed["error"]["code"] == "submit_outcome_unknown", failed
    assert [a["status"] for a in failed["attempts"]] == ["unknown"]
    assert len(submits) <= 1  # never resent


async def test_a_job_that_never_finishes_ends_at_the_providers_max_age_with_its_slot_free(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, useapi_max_jobs=1, useapi_extra="max_job_age_seconds = 60")
    async with Harness.start(settings, job_seconds=10) as h:
        await h.faults("useapi", job_outcome="hang")
        video = await h.create({**UA, "provider": None, "routing": {"order": ["useapi"], "allow_fallbacks": False}})
        await h.advance(30)
        assert (await h.video(video["id"]))["status"] == "in_progress"
        assert (await h.providers())["useapi"]["in_flight"] == 1
        await h.advance(35)
        ended = await h.video(video["id"])
        cancels = [r for r in await h.sim("useapi", "/_sim/requests") if r["method"] == "DELETE"]
        usage = (await h.providers())["useapi"]
    assert ended["status"] == "failed" and ended["error"]["code"] == "upstream_timeout", ended
    assert len(cancels) == 1 and cancels[0]["path"].startswith("/v1/dreamina/scheduler/")
    assert usage["in_flight"] == 0


async def test_max_age_fails_over_to_the_next_provider_under_the_same_video(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, useapi_extra="max_job_age_seconds = 60")
    async with Harness.start(settings, job_seconds=10) as h:
        await h.faults("useapi", job_outcome="hang")
        video = await h.create({k: v for k, v in UA.items() if k != "provider"})
        await h.advance(90)
        done = await h.video(video["id"])
    assert done["status"] == "completed" and [a["provider"] for a in done["attempts"]] == ["useapi", "powertokens"]
    assert done["attempts"][0]["error"]["code"] == "upstream_timeout"


class SlowFinalWrites(SqliteStore):
    """Holds the write of a terminal status until released, so a lease renewal runs meanwhile."""

    gate: asyncio.Event | None = None

    async def update_jobs(self, writes: Sequence[JobWrite]) -> list[Job | None]:
        if self.gate is not None and any(w.job.status.terminal for w in writes):
            written = await super().update_jobs(writes)  # committed: the renewal now misses this job
            await self.gate.wait()
            return written
        return await super().update_jobs(writes)


async def test_a_renewal_racing_the_final_write_neither_loses_the_job_nor_skips_its_event(tmp_path: Path) -> None:
    clock = FakeClock()
    store = SlowFinalWrites(tmp_path / "vidgate.db")
    async with Harness.start(settings_for(tmp_path), clock=clock, job_seconds=5, store=store) as h:
        video = await h.create(UA)
        await h.advance(3)
        store.gate = asyncio.Event()
        published: list[str] = []
        original = h.service.notifier.published
        h.service.notifier.published = lambda job, detail: (published.append(detail), original(job, detail))  # type: ignore[method-assign]
        with capture_logs() as logs:
            clock.advance(4)  # the job completes upstream; its final write is held at the store
            await asyncio.sleep(0.05)
            await h.service.engine.renew()  # type: ignore[attr-defined]
            store.gate.set()
            await h.settle()
        events = await store.events(video["id"])
        deliveries = await store.deliveries(video["id"])
    assert (await asyncio.sleep(0)) is None
    assert "completed" in published
    assert events[-1].status == "completed"
    assert not [e for e in logs if e["event"] == "job.lease_lost"]
    assert [d.event_type for d in deliveries] == []  # no webhook configured for this key; the write carried none


async def test_models_advertise_exactly_what_a_create_can_get(tmp_path: Path) -> None:
    only_useapi = '[models."seedance-2.0-fast"]\nproviders = { useapi = "seedance-2.0-fast" }\n'
    async with Harness.start(settings_for(tmp_path, extra=only_useapi)) as h:
        models = {m["id"]: [p["provider"] for p in m["providers"]] for m in (await h.client.get("/v1/models")).json()["data"]}
        assert models["seedance-2.0-fast"] == ["useapi"]  # powertokens' catalog has it, but the config says who serves it
        refused = await h.client.post("/v1/videos", json={"model": "seedance-2.0-fast", "prompt": "p", "provider": "powertokens"})
        assert refused.status_code == 422
        for name, providers in models.items():
            for provider in providers:
                # whatever else a text request may lack for this model, who serves it is never the reason
                response = await h.client.post("/v1/videos", json={"model": name, "prompt": "p", "provider": provider})
                assert response.status_code == 200 or response.json()["error"]["param"] not in ("model", "provider"), (name, provider, response.text)


async def test_two_replicas_on_one_postgresql_never_exceed_an_accounts_max_jobs(tmp_path: Path, postgres_database: str) -> None:
    clock = FakeClock()
    useapi = ua_app(UaConfig(job_seconds=5, accounts=[SimAccount(account="CA:sim@example.com", region="CA", max_jobs=50)]), clock=clock.now)
    sims = {"useapi": useapi, "powertokens": pt_app(PtConfig(job_seconds=5), clock=clock.now), "modelark": ark_app(clock=clock.now)}
    settings = [settings_for(tmp_path, instance=f"replica-{i}", store_url=postgres_database, useapi_max_jobs=2) for i in range(2)]
    async with (
        Harness.start(settings[0], clock=clock, sims=sims) as a,
        Harness.start(settings[1], clock=clock, sims=sims) as b,
    ):
        ids = [(await (a, b)[n % 2].create({**UA, "prompt": f"take {n}"}))["id"] for n in range(20)]
        most = 0
        videos: list[dict[str, Any]] = []
        for _ in range(300):
            await a.settle()
            await b.settle()
            running = (await a.sim("useapi", "/v1/dreamina/scheduler", headers={"Authorization": "Bearer user:1-test"}))["total"]
            most = max(most, running)
            videos = [await a.video(i) for i in ids]
            if all(v["status"] == "completed" for v in videos):
                break
            clock.advance(1)
    assert [v["status"] for v in videos] == ["completed"] * 20
    assert most == 2  # both replicas together kept the account at its max_jobs, and used all of it
    assert {v["attempts"][0]["account"] for v in videos} == {"CA:sim@example.com"}


ARK = {"model": "seedance-2.0-ark", "prompt": "a paper boat", "seconds": 5}


async def test_a_task_expired_upstream_fails_over_under_the_same_video(tmp_path: Path) -> None:
    clock = FakeClock()
    sims = {
        "useapi": ua_app(clock=clock.now),
        "powertokens": pt_app(PtConfig(job_seconds=10), clock=clock.now),
        # a queue that never drains: the task ends `expired` after 120 s, long before vidgate's max age
        "modelark": ark_app(ArkConfig(queue_seconds=1e9, run_seconds=8, tick_seconds=None, expire_after=120), clock=clock.now),
    }
    async with Harness.start(settings_for(tmp_path, extra=ARK_MODEL), clock=clock, sims=sims) as h:
        video = await h.create(ARK)
        await h.advance(60, step=5)
        assert (await h.video(video["id"]))["upstream"]["status"] == "queued"
        await h.advance(90, step=5)
        done = await h.video(video["id"])
    assert done["status"] == "completed", done
    assert [a["provider"] for a in done["attempts"]] == ["modelark", "powertokens"]
    first = done["attempts"][0]
    assert first["error_class"] == "timeout" and "expire" in first["error"]["message"], first


async def test_a_moderation_refusal_ends_the_job_without_failover(tmp_path: Path) -> None:
    async with Harness.start(settings_for(tmp_path, extra=ARK_MODEL), job_seconds=10) as h:
        await h.sim("modelark", "/_sim/errors", "POST", json={"code": "OutputVideoSensitiveContentDetected", "route": "task", "count": 1})
        video = await h.create(ARK)
        await h.advance(15)
        done = await h.video(video["id"])
    assert done["status"] == "failed" and done["error"]["code"] == "content_rejected", done
    assert [a["provider"] for a in done["attempts"]] == ["modelark"]


ARK_MODEL = """
[models."seedance-2.0-ark"]
providers = { modelark = "dreamina-seedance-2-0-260128", powertokens = "dreamina-seedance-2-0-260128" }
"""


class FlakyWrites(SqliteStore):
    """A store whose writes fail while `down` (another process holds the lock), or only the
    job writes whose last attempt is in status `down_at`."""

    down = False
    down_at: str | None = None
    failed = 0

    async def update_jobs(self, writes: Sequence[JobWrite]) -> list[Job | None]:
        hit = any(w.job.attempt is not None and w.job.attempt.status == self.down_at for w in writes)
        if self.down or hit:
            self.failed += 1
            raise StoreUnavailable()
        return await super().update_jobs(writes)

    async def acquire_slots(self, slot: str, limit: int, job_ids: Sequence[str]) -> list[str]:
        if self.down:
            self.failed += 1
            raise StoreUnavailable()
        return await super().acquire_slots(slot, limit, job_ids)

    async def heartbeat(self, lease: Lease) -> bool:
        if self.down:
            raise StoreUnavailable()
        return await super().heartbeat(lease)


async def test_a_failed_submitting_write_sends_nothing_and_the_job_completes_once_the_store_is_back(tmp_path: Path) -> None:
    store = FlakyWrites(tmp_path / "vidgate.db")
    async with Harness.start(settings_for(tmp_path), job_seconds=10, store=store) as h:
        store.down_at = "submitting"  # the record that must exist before the paid call
        with capture_logs() as logs:
            video = await h.create({**UA, "provider": "powertokens"})
            await h.advance(20)
        assert store.failed >= 3  # it kept trying, backing off
        assert await h.sim("powertokens", "/_sim/jobs") == []  # never submitted without its record
        assert (await h.video(video["id"]))["status"] == "queued"
        assert any(e["event"] == "job.write_failed" for e in logs)

        store.down_at = None
        await h.advance(30)
        done = await h.video(video["id"])
        submits = await h.sim("powertokens", "/_sim/jobs")
    assert done["status"] == "completed", done
    assert len(submits) == 1


async def test_a_job_waiting_for_a_slot_while_the_store_is_down_gets_one_when_it_is_back(tmp_path: Path) -> None:
    store = FlakyWrites(tmp_path / "vidgate.db")
    async with Harness.start(settings_for(tmp_path), job_seconds=10, store=store) as h:
        video = await h.create({**UA, "provider": "powertokens"})  # stored; its slot is asked for next
        store.down = True
        other = await h.client.post("/v1/videos", json={**UA, "provider": "powertokens", "prompt": "second"})
        assert other.status_code == 200  # create_job is not failed by this fake; the slot grant is
        await h.advance(10)
        assert len(await h.sim("powertokens", "/_sim/jobs")) <= 1
        store.down = False
        await h.advance(30)
        statuses = [(await h.video(v))["status"] for v in (video["id"], other.json()["id"])]
    assert statuses == ["completed", "completed"]


async def test_a_failed_final_write_is_written_once_the_store_is_back(tmp_path: Path) -> None:
    store = FlakyWrites(tmp_path / "vidgate.db")
    async with Harness.start(settings_for(tmp_path), job_seconds=10, store=store) as h:
        video = await h.create(UA)
        await h.advance(3)
        assert (await h.video(video["id"]))["status"] == "in_progress"
        store.down = True
        await h.advance(20)  # the upstream finished meanwhile; its completion can't be stored
        assert (await h.video(video["id"]))["status"] == "in_progress"
        store.down = False
        await h.advance(15)
        done = await h.video(video["id"])
        submits = await h.sim("useapi", "/_sim/jobs")
    assert done["status"] == "completed", done
    assert len(submits) == 1 and len(done["attempts"]) == 1


async def test_a_failed_write_of_a_submit_keeps_its_upstream_id_and_completes_without_reconciling(tmp_path: Path) -> None:
    # PowerTokens can neither list lost submits nor call back: re-deciding from the stored
    # 'submitting' record would fail the job as an unknown outcome. The decision is kept instead.
    store = FlakyWrites(tmp_path / "vidgate.db")
    async with Harness.start(settings_for(tmp_path), job_seconds=10, store=store) as h:
        store.down_at = "submitted"
        video = await h.create({**UA, "provider": "powertokens"})
        await h.advance(5)
        assert store.failed >= 2
        assert (await h.video(video["id"]))["status"] == "queued"  # the store still says submitting
        store.down_at = None
        await h.advance(20)
        done = await h.video(video["id"])
        submits = await h.sim("powertokens", "/_sim/jobs")
    assert done["status"] == "completed", done
    assert len(submits) == 1 and done["upstream"]["id"] == (submits[0].get("task_id") or submits[0].get("jobid"))


async def test_progress_alone_is_logged_at_debug_and_every_status_change_at_info(tmp_path: Path) -> None:
    """A job polled for minutes moves its progress a step at a time: each step is written,
    but only the status changes are info lines, so an operator's log is one line a change
    (a submit is `job.submitted`, so one that leaves the job queued is no second line)."""
    async with Harness.start(settings_for(tmp_path), job_seconds=10) as h:
        with capture_logs() as logs:
            video = await h.create({**UA, "provider": "powertokens"})  # its simulator reports progress
            for _ in range(15):
                await h.advance(1)
        assert (await h.video(video["id"]))["status"] == "completed"
    changes = [(e["log_level"], e["status"]) for e in logs if e["event"] == "job.status_changed"]
    statuses = [status for _, status in changes]
    assert statuses[0] == "queued" and statuses[-1] == "completed" and "in_progress" in statuses
    created = ["queued"]  # a create stores the job queued
    assert [level for level, _ in changes] == ["info" if now != before else "debug" for before, now in itertools.pairwise(created + statuses)]
    assert any(e["event"] == "job.submitted" and e["log_level"] == "info" for e in logs)  # a submit that left it queued is told here
    assert sum(level == "debug" for level, _ in changes) >= 2  # progress did move alone, and was written
