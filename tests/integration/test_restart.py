"""A restart loses no job (SPEC 5): real processes, a real SIGKILL, the same SQLite file.

Both upstream simulators and `vidgate serve` run as separate OS processes talking over
loopback. Jobs are submitted through the public API; once each one has an upstream id
the gateway is killed with SIGKILL (no shutdown hook runs) and a fresh gateway is
started on the same database and port. Every job must then complete under the SAME
upstream id, and the simulators must have seen exactly one submit per job (nothing
resubmitted, so nothing paid for twice). The restarted process takes the jobs over
once the dead one's leases lapse (`[cluster] lease_seconds`).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from providers.simkit import free_port
from tests.integration.processes import gateway_ready, running, wait_for
from tests.integration.processes import simulators as sim_processes

KEY = "sk-test"
JOB_SECONDS = 0.5  # once released: jobs are held in flight (job_outcome="hang") until the first gateway is dead
JOBS = [("useapi", i) for i in range(3)] + [("powertokens", i) for i in range(3)]

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
default_model = "seedance-2.0"
poll_min_seconds = 0.2
poll_max_seconds = 0.5

[outputs]
dir = "{outputs}"

[cluster]
lease_seconds = 2
claim_interval_seconds = 0.5

[[keys]]
name = "test"
tenant = "test"
key = "{key}"

[providers.useapi]
type = "useapi"
base_url = "{useapi}/v1/dreamina"
secret = "user:1-test"
poll_interval_seconds = 0.2
accounts = [
  {{ id = "CA:sim@example.com", region = "CA", max_jobs = 10 }},
  {{ id = "US:sim@example.com", region = "US", max_jobs = 10 }},
]

[providers.powertokens]
type = "powertokens"
base_url = "{powertokens}"
secret = "pt-test"
poll_interval_seconds = 0.2

[models."seedance-2.0"]
providers = {{ useapi = "seedance-2.0", powertokens = "dreamina-seedance-2-0-260128" }}
"""


# ---------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------


@pytest.fixture
def simulators(tmp_path: Path) -> Iterator[dict[str, str]]:
    with sim_processes(tmp_path, JOB_SECONDS) as urls:
        yield urls


def test_sigkilled_gateway_resumes_every_job_without_resubmitting(tmp_path: Path, simulators: dict[str, str]) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = tmp_path / "vidgate.toml"
    config.write_text(CONFIG.format(port=port, db=tmp_path / "vidgate.db", outputs=tmp_path / "outputs", key=KEY, **simulators))
    serve = ["serve", "--config", str(config)]
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=10)

    def video(video_id: str) -> dict[str, Any]:
        response = client.get(f"/v1/videos/{video_id}")
        response.raise_for_status()
        return response.json()

    def sim_jobs(provider: str) -> list[dict[str, Any]]:
        return httpx.get(f"{simulators[provider]}/_sim/jobs", timeout=5).json()

    with client:
        # -- first life: submit, and wait until every job is running upstream --------
        with running("gateway (first)", serve, tmp_path / "gateway-1.log") as first:
            wait_for("the first gateway to serve", lambda: gateway_ready(base), [first])
            for url in simulators.values():
                httpx.post(f"{url}/_sim/faults", json={"job_outcome": "hang"}).raise_for_status()
            ids: dict[str, str] = {}
            for provider, n in JOBS:
                body = {
                    "model": "seedance-2.0",
                    "prompt": f"A lighthouse at dawn, take {n}",
                    "seconds": 5,
                    "provider": provider,
                    "metadata": {"take": str(n)},
                }
                response = client.post("/v1/videos", json=body)
                assert response.status_code == 200, response.text
                ids[response.json()["id"]] = provider

            def all_submitted() -> dict[str, dict[str, Any]] | None:
                seen = {video_id: video(video_id) for video_id in ids}
                if all((v.get("upstream") or {}).get("id") for v in seen.values()):
                    return seen
                return None

            before = wait_for("every job to have an upstream id", all_submitted, [first])
            for video_id, v in before.items():
                assert v["provider"] == ids[video_id]
                # not finished yet: the second gateway, not the first, has to see them through
                assert v["status"] in ("queued", "in_progress"), v
            upstream_ids = {video_id: v["upstream"]["id"] for video_id, v in before.items()}
            assert len(set(upstream_ids.values())) == len(JOBS)

            os.killpg(first.popen.pid, signal.SIGKILL)
            first.popen.wait(timeout=10)
            assert first.popen.returncode == -signal.SIGKILL

        # The kill landed while the jobs were still running upstream: only now may they finish.
        with pytest.raises(httpx.TransportError):
            client.get("/healthz")
        for provider, url in simulators.items():
            released = httpx.post(f"{url}/_sim/release").raise_for_status().json()["released"]
            assert released == sum(1 for p in ids.values() if p == provider)

        # -- second life: same database, same port (useapi calls back to public_url) ------
        with running("gateway (second)", serve, tmp_path / "gateway-2.log") as second:
            wait_for("the second gateway to serve", lambda: gateway_ready(base), [second])

            def all_finished() -> dict[str, dict[str, Any]] | None:
                seen = {video_id: video(video_id) for video_id in ids}
                if all(v["status"] not in ("queued", "in_progress") for v in seen.values()):
                    return seen
                return None

            after = wait_for("every job to finish after the restart", all_finished, [second], every=0.2)
            for video_id, v in after.items():
                assert v["status"] == "completed", v
                assert v["upstream"]["id"] == upstream_ids[video_id], (v["upstream"], upstream_ids[video_id])
                assert len(v["attempts"]) == 1, v["attempts"]
                content = client.get(f"/v1/videos/{video_id}/content")
                assert content.status_code == 200, content.text[:300]
                assert content.content[4:8] == b"ftyp"

            # exactly one upstream submit per job, and it is the one the job still points at
            for provider in simulators:
                expected = {upstream_ids[video_id] for video_id, p in ids.items() if p == provider}
                submits = sim_jobs(provider)
                assert len(submits) == len(expected), submits
                got = {s.get("jobid") or s.get("task_id") for s in submits}
                assert got == expected, (got, expected)
