"""A store held up longer than a lease leaks no slot (the job-core issue): real processes,
a real SQLite write lock held by the test.

One account with `max_jobs = 1`: job A holds the only slot, job B waits in vidgate's queue.
The test then holds SQLite's write lock for longer than a lease, so the lease renewal
that was waiting for it commits an expiry that has already passed, and the claim that
follows finds A "unheld". The old runner claimed its own running job again, counted its
slot a second time and released it once: B then waited forever. Here A is recognised as
already driven, both finish, and the provider ends with nothing in flight.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from providers.simkit import free_port
from tests.integration.processes import gateway_ready, running, wait_for
from tests.integration.processes import simulators as sim_processes

KEY = "sk-test"
LEASE_SECONDS = 3.0

CONFIG = """\
[server]
host = "127.0.0.1"
port = {port}
public_url = "http://127.0.0.1:{port}"

[store]
url = "sqlite:///{db}"

[security]
allow_private_urls = true

[jobs]
poll_min_seconds = 0.2
poll_max_seconds = 0.5

[outputs]
keep = false

[cluster]
lease_seconds = {lease}
claim_interval_seconds = 1

[[keys]]
name = "test"
tenant = "test"
key = "{key}"

[providers.useapi]
type = "useapi"
base_url = "{useapi}/v1/dreamina"
secret = "user:1-test"
poll_interval_seconds = 0.2
accounts = [{{ id = "CA:sim@example.com", region = "CA", max_jobs = 1 }}]

[providers.powertokens]
type = "powertokens"
base_url = "{powertokens}"
secret = "pt-test"
enabled = false
"""


@pytest.fixture
def simulators(tmp_path: Path) -> Iterator[dict[str, str]]:
    with sim_processes(tmp_path, 0.5) as urls:
        yield urls


def test_a_renewal_held_up_past_its_lease_by_a_locked_store_leaks_no_slot(tmp_path: Path, simulators: dict[str, str]) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    db = tmp_path / "vidgate.db"
    config = tmp_path / "vidgate.toml"
    config.write_text(CONFIG.format(port=port, db=db, key=KEY, lease=LEASE_SECONDS, **simulators))
    useapi = simulators["useapi"]
    body = {"model": "seedance-2.0", "prompt": "a boat", "seconds": 5, "provider": "useapi"}

    with (
        running("gateway", ["serve", "--config", str(config)], tmp_path / "gateway.log") as gateway,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=15) as client,
    ):
        wait_for("the gateway to serve", lambda: gateway_ready(base), [gateway])

        def video(video_id: str) -> dict[str, Any]:
            return client.get(f"/v1/videos/{video_id}").raise_for_status().json()

        def in_flight() -> int:
            return next(p for p in client.get("/v1/providers").json()["data"] if p["id"] == "useapi")["in_flight"]

        httpx.post(f"{useapi}/_sim/faults", json={"job_outcome": "hang"}).raise_for_status()
        first = client.post("/v1/videos", json=body).raise_for_status().json()["id"]
        wait_for("job A to run upstream", lambda: video(first)["upstream"], [gateway])
        second = client.post("/v1/videos", json={**body, "prompt": "waits for the slot"}).raise_for_status().json()["id"]
        assert in_flight() == 1

        locker = sqlite3.connect(db, isolation_level=None, timeout=10)
        locker.execute("BEGIN EXCLUSIVE")  # the gateway's writes now wait (its busy timeout is 5 s)
        time.sleep(LEASE_SECONDS + 1.0)
        locker.execute("ROLLBACK")
        locker.close()
        time.sleep(2.5)  # the late renewal commits, and the claims that follow run

        assert "jobs.leases_lapsed_here" in gateway.output(), "the late renewal let the claim find job A"
        assert in_flight() == 1, "job A's slot is counted once"
        assert video(second)["status"] == "queued"
        httpx.put(f"{useapi}/_sim/faults", json={}).raise_for_status()  # new jobs succeed again
        assert httpx.post(f"{useapi}/_sim/release").raise_for_status().json()["released"] == 1

        done = wait_for(
            "both jobs to finish",
            lambda: all(video(v)["status"] == "completed" for v in (first, second)) and [video(first), video(second)],
            [gateway],
            timeout=30,
        )
        assert [v["status"] for v in done] == ["completed", "completed"]
        assert in_flight() == 0
        submits = httpx.get(f"{useapi}/_sim/jobs").json()
        assert len(submits) == 2  # one upstream job each: nothing resubmitted by the re-claim
