"""A store that can't write, for real: `vidgate serve` on a SQLite file while this test holds
an exclusive lock on it from a second connection (as another process would). Creates answer
503 with Retry-After and `store_unavailable`, /readyz is not ready; once the lock is released
every job created before it completes, each with one upstream submit."""

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
from tests.integration.test_restart import CONFIG, KEY

JOB_SECONDS = 2.0
JOBS = ["useapi", "powertokens", "useapi", "powertokens"]


@pytest.fixture
def simulators(tmp_path: Path) -> Iterator[dict[str, str]]:
    with sim_processes(tmp_path, JOB_SECONDS) as urls:
        yield urls


def test_a_locked_store_answers_503_and_jobs_complete_after_the_lock_is_released(tmp_path: Path, simulators: dict[str, str]) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    db = tmp_path / "vidgate.db"
    config = tmp_path / "vidgate.toml"
    config.write_text(CONFIG.format(port=port, db=db, outputs=tmp_path / "outputs", key=KEY, **simulators))
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)

    def body(provider: str, n: int) -> dict[str, Any]:
        return {"model": "seedance-2.0", "prompt": f"A lighthouse, take {n}", "seconds": 5, "provider": provider}

    with client, running("gateway", ["serve", "--config", str(config)], tmp_path / "gateway.log") as gateway:
        wait_for("the gateway to serve", lambda: gateway_ready(base), [gateway])
        assert client.get("/readyz").status_code == 200
        ids = []
        for n, provider in enumerate(JOBS):
            response = client.post("/v1/videos", json=body(provider, n))
            assert response.status_code == 200, response.text
            ids.append(response.json()["id"])

        lock = sqlite3.connect(db, isolation_level=None, timeout=30)
        lock.execute("BEGIN EXCLUSIVE")
        locked_at = time.monotonic()
        try:
            refused = client.post("/v1/videos", json=body("powertokens", 99))
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"].isdigit()
            assert refused.json()["error"]["code"] == "store_unavailable"
            ready = client.get("/readyz")
            assert ready.status_code == 503, ready.text
            assert ready.json()["store"] is False
            time.sleep(max(0.0, JOB_SECONDS + 1 - (time.monotonic() - locked_at)))  # the upstream jobs finish meanwhile
        finally:
            lock.execute("ROLLBACK")
            lock.close()

        wait_for("/readyz to be ready again", lambda: client.get("/readyz").status_code == 200, [gateway])

        def all_finished() -> list[dict[str, Any]] | None:
            seen = [client.get(f"/v1/videos/{i}").json() for i in ids]
            return seen if all(v["status"] not in ("queued", "in_progress") for v in seen) else None

        done = wait_for("every job created before the lock to finish", all_finished, [gateway], every=0.2)
        assert [v["status"] for v in done] == ["completed"] * len(JOBS), done
        for provider in simulators:
            submits = httpx.get(f"{simulators[provider]}/_sim/jobs", timeout=5).json()
            assert len(submits) == JOBS.count(provider), submits  # nothing submitted twice, nothing for the refused create
        with sqlite3.connect(db) as check:
            assert check.execute("SELECT count(*) FROM jobs").fetchone() == (len(JOBS),)  # the refused create left nothing
        assert client.post("/v1/videos", json=body("powertokens", 100)).status_code == 200
