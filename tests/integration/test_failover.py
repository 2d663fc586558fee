"""Failover, cooldown and capacity through the real gateway (routing issue acceptance)."""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Callable, Iterator

import httpx

from gateway.app import create_app
from gateway.cli import demo_settings
from gateway.settings import AccountSettings, Settings
from providers.modelark.sim import simulator as ark_simulator
from providers.powertokens.sim import SimConfig as PtConfig
from providers.powertokens.sim import create_app as pt_app
from providers.simkit import free_port, sample, serve_in_thread
from providers.useapi.sim import SimAccount
from providers.useapi.sim import SimConfig as UaConfig
from providers.useapi.sim import create_app as ua_app
from tests.integration.conftest import Stack

IMAGE = "data:image/png;base64," + base64.b64encode(sample("image.png")).decode()


@contextlib.contextmanager
def stack_with(tmp_path, *, ua: UaConfig | None = None, tweak: Callable[[Settings], None] | None = None, job_seconds: float = 0.5) -> Iterator[Stack]:
    with (
        serve_in_thread(ua_app(ua or UaConfig(job_seconds=job_seconds))) as ua_url,
        serve_in_thread(pt_app(PtConfig(job_seconds=job_seconds))) as pt_url,
        serve_in_thread(ark_simulator(job_seconds=job_seconds)) as ark_url,
    ):
        sims = {"useapi": ua_url, "powertokens": pt_url, "modelark": ark_url}
        port = free_port()
        settings = demo_settings(port=port, urls=sims, data_dir=str(tmp_path), job_seconds=job_seconds)
        if tweak is not None:
            tweak(settings)
        with serve_in_thread(create_app(settings), port=port) as base:
            yield Stack(base=base, sims=sims)


def wait_all(client: httpx.Client, ids: list[str], timeout: float = 40.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        videos = [client.get(f"/v1/videos/{i}").json() for i in ids]
        if all(v["status"] not in ("queued", "in_progress") for v in videos) or time.monotonic() > deadline:
            return videos
        time.sleep(0.1)


def submits(stack: Stack, provider: str, status: int | None = None) -> list[dict]:
    jobs = stack.sim_jobs(provider)
    return [j for j in jobs if status is None or j.get("status_code", 200) == status]


def test_429_on_every_useapi_submit_falls_back_to_powertokens_with_two_attempts(tmp_path) -> None:
    with stack_with(tmp_path) as stack, stack.client() as client:
        stack.set_faults("useapi", submit_status=429, submit_status_count=-1)
        ids = [client.post("/v1/videos", json={"model": "seedance-2.0", "prompt": f"p{i}"}).json()["id"] for i in range(3)]
        videos = wait_all(client, ids)
        pt_submits = submits(stack, "powertokens", 200)
    for video in videos:
        assert video["status"] == "completed", video
        assert video["provider"] == "powertokens"
        assert [(a["provider"], a["status"], a["error_class"]) for a in video["attempts"]] == [
            ("useapi", "failed", "capacity"),
            ("powertokens", "completed", None),
        ]
    assert len(pt_submits) == 3


def test_job_failed_after_acceptance_is_resubmitted_elsewhere_under_the_same_id(tmp_path) -> None:
    with stack_with(tmp_path) as stack, stack.client() as client:
        stack.set_faults("useapi", job_outcome="fail", fail_reason="InternalServerError")
        created = client.post("/v1/videos", json={"model": "seedance-2.0", "prompt": "retry me"}).json()
        [video] = wait_all(client, [created["id"]])
    assert video["id"] == created["id"] and video["status"] == "completed"
    attempts = video["attempts"]
    assert [a["provider"] for a in attempts] == ["useapi", "powertokens"]
    assert attempts[0]["status"] == "failed" and attempts[0]["error_class"] == "generation_failed"
    assert attempts[0]["upstream_id"] and attempts[1]["upstream_id"]


def test_content_rejection_does_not_fail_over(tmp_path) -> None:
    with stack_with(tmp_path) as stack, stack.client() as client:
        stack.set_faults("useapi", job_outcome="fail")  # the simulator's default reason is OutputVideoRisk
        created = client.post("/v1/videos", json={"model": "seedance-2.0", "prompt": "risky"}).json()
        [video] = wait_all(client, [created["id"]])
        assert submits(stack, "powertokens") == []
    assert video["status"] == "failed" and video["error"]["code"] == "content_rejected"
    assert [a["provider"] for a in video["attempts"]] == ["useapi"]


def test_a_provider_whose_jobs_keep_failing_cools_down_and_is_skipped(tmp_path) -> None:
    with stack_with(tmp_path) as stack, stack.client() as client:
        stack.set_faults("useapi", job_outcome="fail", fail_reason="InternalServerError")
        ids = [client.post("/v1/videos", json={"model": "seedance-2.0", "prompt": f"p{i}"}).json()["id"] for i in range(5)]
        wait_all(client, ids)
        providers = {p["id"]: p for p in client.get("/v1/providers").json()["data"]}
        assert providers["useapi"]["healthy"] is False
        assert "in a row" in providers["useapi"]["health"]["reason"]
        assert providers["powertokens"]["healthy"] is True
        before = len(submits(stack, "useapi"))
        later = client.post("/v1/videos", json={"model": "seedance-2.0", "prompt": "after cooldown"}).json()["id"]
        [video] = wait_all(client, [later])
        assert len(submits(stack, "useapi")) == before  # skipped while cooling down
    assert video["status"] == "completed" and [a["provider"] for a in video["attempts"]] == ["powertokens"]


def test_max_jobs_two_keeps_at_most_two_in_flight_upstream_and_all_ten_complete(tmp_path) -> None:
    account = "CA:sim@example.com"

    def one_account(settings: Settings) -> None:
        settings.providers["useapi"].accounts = [AccountSettings(id=account, region="CA", max_jobs=2)]

    ua = UaConfig(job_seconds=0.4, accounts=[SimAccount(account=account, region="CA", max_jobs=2)])
    with stack_with(tmp_path, ua=ua, tweak=one_account) as stack, stack.client() as client:
        body = {"model": "seedance-1.0-mini", "keyframes": [{"image": IMAGE, "seconds": 5}, {"image": IMAGE}], "provider": "useapi"}
        ids = []
        for _ in range(10):
            response = client.post("/v1/videos", json=body)
            assert response.status_code == 200, response.text
            ids.append(response.json()["id"])
        peak = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            useapi = next(p for p in client.get("/v1/providers").json()["data"] if p["id"] == "useapi")
            peak = max(peak, useapi["in_flight"])
            scheduler = httpx.get(f"{stack.sims['useapi']}/v1/dreamina/scheduler", headers={"Authorization": "Bearer user:1-x"}).json()
            assert scheduler["total"] <= 2
            if all(client.get(f"/v1/videos/{i}").json()["status"] == "completed" for i in ids):
                break
            time.sleep(0.05)
        videos = wait_all(client, ids, timeout=5)
        assert submits(stack, "useapi", 429) == []  # vidgate queued instead of overrunning maxJobs
        assert len(submits(stack, "useapi", 200)) == 10
    assert [v["status"] for v in videos] == ["completed"] * 10
    assert peak == 2


def test_route_deadline_cancels_a_job_still_queued_upstream_and_moves_on(tmp_path) -> None:
    from gateway.settings import RouteSettings

    def deadline_route(settings: Settings) -> None:
        settings.routes = [RouteSettings(name="pt-first", use=["powertokens", "useapi"], deadline_seconds=0.3)]

    # PowerTokens' simulator keeps a job pending/queued for the first quarter of its run.
    with stack_with(tmp_path, ua=UaConfig(job_seconds=0.5), tweak=deadline_route, job_seconds=8.0) as stack, stack.client() as client:
        stack.set_faults("useapi", job_outcome="succeed")
        created = client.post("/v1/videos", json={"model": "seedance-2.0", "prompt": "slow queue"}).json()
        assert created["routing"]["rule"] == "pt-first"
        [video] = wait_all(client, [created["id"]], timeout=30)
        pt_task = video["attempts"][0]["upstream_id"]
        pt_state = httpx.get(f"{stack.sims['powertokens']}/v1/videos/{pt_task}", headers={"Authorization": "Bearer x"}).json()
    assert video["status"] == "completed", video
    assert [(a["provider"], a["status"], a["error_class"]) for a in video["attempts"]] == [
        ("powertokens", "failed", "timeout"),
        ("useapi", "completed", None),
    ]
    assert pt_state["status"] == "cancelled"
