"""Several vidgate replicas on one PostgreSQL (SPEC 5): real processes, a real SIGKILL.

Two `vidgate serve` processes share one database. They must agree on idempotency
(one upstream job for 20 racing requests spread over both), divide the in-flight
jobs so no job is polled by both at once, take over a killed replica's jobs once
its leases lapse, announce each job's end exactly once, and route a sticky A/B
user to the same arm whichever replica answers.

Who polled what, when, comes from the simulators' request log (`/_sim/requests`):
each replica sends its instance id in its User-Agent.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from litestar import Litestar, Request, post

from providers.simkit import free_port, serve_in_thread
from tests.integration.processes import Proc, gateway_ready, running, wait_for
from tests.integration.processes import simulators as sim_processes
from tests.pg_server import new_database

KEY = "sk-replicas"
JOB_SECONDS = 1.0  # once released: the jobs are held in flight with job_outcome="hang" until the test lets them go
LEASE_SECONDS = 3.0

CONFIG = """\
[server]
host = "127.0.0.1"
port = {port}
public_url = "http://127.0.0.1:{port}"

[store]
url = "{db}"

[security]
allow_private_urls = true

[webhooks]
secret = "whsec_ZGVtby13ZWJob29rLXNlY3JldC0wMTIzNDU2Nzg5"
schedule_seconds = [0.5, 1]
max_attempts = 3

[jobs]
default_model = "seedance-2.0"
poll_min_seconds = 1.0
poll_max_seconds = 1.0

[outputs]
dir = "{outputs}"

[cluster]
instance_id = "{instance}"
lease_seconds = {lease}
claim_interval_seconds = 0.5

[[keys]]
name = "test"
tenant = "test"
key = "{key}"

[providers.useapi]
type = "useapi"
base_url = "{useapi}/v1/dreamina"
secret = "user:1-test"
poll_interval_seconds = 1.0
# Slots live in the store: both replicas together stay within the upstream's 50 per account.
accounts = [
  {{ id = "CA:sim@example.com", region = "CA", max_jobs = 50 }},
  {{ id = "US:sim@example.com", region = "US", max_jobs = 50 }},
]

[providers.powertokens]
type = "powertokens"
base_url = "{powertokens}"
secret = "pt-test"
poll_interval_seconds = 1.0
max_concurrency = 200

[models."seedance-2.0"]
providers = {{ useapi = "seedance-2.0", powertokens = "dreamina-seedance-2-0-260128" }}

[[routes]]
name = "ab"
when = {{ model = "seedance-2.0" }}
split = {{ useapi = 30, powertokens = 70 }}
sticky = "metadata.user"
"""


class Replica:
    def __init__(self, name: str, proc: Proc, base: str) -> None:
        self.name = name
        self.proc = proc
        self.base = base
        self.client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)

    def video(self, video_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/videos/{video_id}")
        response.raise_for_status()
        return response.json()


class Receiver:
    """A webhook receiver on loopback that accepts everything and remembers it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[tuple[str, dict[str, Any]]] = []  # (webhook-id, event)

        @post("/hook", status_code=200)
        async def hook(request: Request) -> dict[str, bool]:
            event = await request.json()
            with self.lock:
                self.received.append((request.headers["webhook-id"], event))
            return {"ok": True}

        self.app = Litestar(route_handlers=[hook])


@contextlib.contextmanager
def replicas(tmp_path: Path, db: str, sims: dict[str, str], names: tuple[str, ...] = ("a", "b")) -> Iterator[dict[str, Replica]]:
    started: dict[str, Replica] = {}
    with contextlib.ExitStack() as stack:
        for name in names:
            port = free_port()
            config = tmp_path / f"vidgate-{name}.toml"
            config.write_text(CONFIG.format(port=port, db=db, outputs=tmp_path / "outputs", instance=name, lease=LEASE_SECONDS, key=KEY, **sims))
            proc = stack.enter_context(running(f"replica {name}", ["serve", "--config", str(config)], tmp_path / f"replica-{name}.log"))
            started[name] = Replica(name, proc, f"http://127.0.0.1:{port}")
        procs = [r.proc for r in started.values()]
        for replica in started.values():
            wait_for(f"replica {replica.name} to serve", lambda r=replica: gateway_ready(r.base), procs)
        yield started
        for replica in started.values():
            replica.client.close()


@pytest.fixture
def sims(tmp_path: Path) -> Iterator[dict[str, str]]:
    # room upstream for every job at once: 300 PowerTokens tasks, 50 per useapi account
    with sim_processes(tmp_path, JOB_SECONDS, capacity=300) as urls:
        yield urls


def test_twenty_racing_requests_with_one_idempotency_key_make_one_upstream_job(tmp_path: Path, postgres_url: str, sims: dict[str, str]) -> None:
    db = new_database(postgres_url)
    with replicas(tmp_path, db, sims) as running_replicas:
        a, b = running_replicas["a"], running_replicas["b"]
        body = {"model": "seedance-2.0", "prompt": "One render only", "seconds": 5, "provider": "powertokens"}
        headers = {"Idempotency-Key": "order-1234"}
        targets = [a, b] * 10
        barrier = threading.Barrier(len(targets))

        def send(replica: Replica) -> httpx.Response:
            barrier.wait()
            return replica.client.post("/v1/videos", json=body, headers=headers)

        with ThreadPoolExecutor(len(targets)) as pool:
            answers = list(pool.map(send, targets))

        assert [r.status_code for r in answers] == [200] * 20, [r.text for r in answers if r.status_code != 200]
        ids = {r.json()["id"] for r in answers}
        assert len(ids) == 1, ids
        firsts = {(r.json()["created_at"], r.json()["prompt"], r.json()["model"]) for r in answers}
        assert len(firsts) == 1
        assert sum(r.headers.get("idempotent-replayed") == "true" for r in answers) == 19

        video_id = ids.pop()
        done = wait_for("the job to complete", lambda: (v := a.video(video_id))["status"] == "completed" and v, [a.proc, b.proc])
        assert b.video(video_id) == done
        submits = httpx.get(f"{sims['powertokens']}/_sim/jobs").json()
        assert len(submits) == 1, submits

        # the same key with another body is refused, on either replica
        for replica in (a, b):
            other = replica.client.post("/v1/videos", json=body | {"prompt": "Another"}, headers=headers)
            assert other.status_code == 409, other.text
            assert other.json()["error"]["param"] == "Idempotency-Key"


def test_a_killed_replicas_jobs_finish_on_the_other_one_polled_by_one_at_a_time(tmp_path: Path, postgres_url: str, sims: dict[str, str]) -> None:
    db = new_database(postgres_url)
    receiver = Receiver()
    with serve_in_thread(receiver.app) as hooks, replicas(tmp_path, db, sims) as running_replicas:
        a, b = running_replicas["a"], running_replicas["b"]
        created: dict[str, str] = {}  # video id -> replica that created it
        arm: dict[tuple[str, str], str] = {}  # (user, replica) -> provider

        def create(n: int) -> tuple[str, str, str, str]:
            replica = (a, b)[n % 2]
            user = f"user-{n // 2}"
            body = {
                "model": "seedance-2.0",
                "prompt": f"A lighthouse at dawn, take {n}",
                "seconds": 5,
                "metadata": {"user": user},
                "webhook_url": f"{hooks}/hook",
            }
            response = replica.client.post("/v1/videos", json=body)
            assert response.status_code == 200, response.text
            video = response.json()
            return video["id"], replica.name, user, video["routing"]["arm"]

        for url in sims.values():  # every job stays in flight upstream until released below
            httpx.post(f"{url}/_sim/faults", json={"job_outcome": "hang"}).raise_for_status()
        with ThreadPoolExecutor(8) as pool:
            for video_id, name, user, provider in pool.map(create, range(200)):
                created[video_id] = name
                arm[(user, name)] = provider

        # sticky A/B: each user created one job on each replica, and both picked the same arm
        users = {user for user, _ in arm}
        assert len(users) == 100
        assert all(arm[(u, "a")] == arm[(u, "b")] for u in users)
        assert set(arm.values()) == {"useapi", "powertokens"}

        def all_submitted() -> dict[str, dict[str, Any]] | None:
            seen = {vid: b.video(vid) for vid in created}
            return seen if all((v.get("upstream") or {}).get("id") for v in seen.values()) else None

        before = wait_for("every job to be running upstream", all_submitted, [a.proc, b.proc], every=0.5)
        assert all(v["status"] in ("queued", "in_progress") for v in before.values())

        os.killpg(a.proc.popen.pid, signal.SIGKILL)
        a.proc.popen.wait(timeout=10)
        for url in sims.values():
            released = httpx.post(f"{url}/_sim/release").raise_for_status().json()["released"]
            assert released == sum(1 for v in before.values() if v["provider"] == next(p for p, u in sims.items() if u == url))

        def all_finished() -> dict[str, dict[str, Any]] | None:
            seen = {vid: b.video(vid) for vid in created}
            return seen if all(v["status"] not in ("queued", "in_progress") for v in seen.values()) else None

        after = wait_for("every job to finish on the surviving replica", all_finished, [b.proc], timeout=120, every=0.5)
        for vid, v in after.items():
            assert v["status"] == "completed", v
            assert len(v["attempts"]) == 1, v["attempts"]
            assert v["upstream"]["id"] == before[vid]["upstream"]["id"]

        # exactly one paid submit per job
        upstream_ids = {v["upstream"]["id"]: vid for vid, v in after.items()}
        for provider, url in sims.items():
            submits = httpx.get(f"{url}/_sim/jobs").json()
            assert len(submits) == sum(v["provider"] == provider for v in after.values())

        # no job was polled by both replicas at once, and none went back and forth
        polls = _polls_by_job(sims, upstream_ids)
        assert set(polls) == set(created), "every job was polled"
        took_over = 0
        for vid, requests in polls.items():
            requests.sort(key=lambda r: r["started"])
            owners = [r["instance"] for r in requests]
            switches = sum(1 for x, y in itertools.pairwise(owners) if x != y)
            assert switches <= 1, (vid, owners)
            for x, y in itertools.pairwise(requests):
                if x["instance"] != y["instance"]:
                    assert y["started"] >= max(r["ended"] for r in requests if r["instance"] == x["instance"]), (vid, x, y)
            if created[vid] == "a":
                took_over += owners[-1] == "b"
        assert took_over == sum(1 for name in created.values() if name == "a"), "b finished every job a had started"

        # each job's end was announced once: one delivery id per video, each received once
        def all_announced() -> bool:
            with receiver.lock:
                return len({event["data"]["id"] for _, event in receiver.received}) == len(created)

        wait_for("every completion webhook", all_announced, [b.proc], timeout=30)
        with receiver.lock:
            received = list(receiver.received)
        per_video = collections.Counter(event["data"]["id"] for _, event in received)
        assert set(per_video) == set(created)
        assert set(per_video.values()) == {1}, [vid for vid, n in per_video.items() if n > 1]
        assert all(event["type"] == "video.completed" for _, event in received)
        assert len({webhook_id for webhook_id, _ in received}) == len(created)


def _polls_by_job(sims: dict[str, str], upstream_ids: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Each job's status polls from the simulators' request logs, with the polling replica."""
    polls: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for url in sims.values():
        for record in httpx.get(f"{url}/_sim/requests", timeout=30).json():
            if record["method"] != "GET":
                continue
            upstream_id = unquote(record["path"].rstrip("/").rsplit("/", 1)[-1])
            video_id = upstream_ids.get(upstream_id)
            if video_id is None:
                continue  # not a poll (content, assets, accounts)
            instance = record["user_agent"].rsplit("(", 1)[-1].rstrip(")")
            polls[video_id].append({"instance": instance, "started": record["started"], "ended": record["ended"]})
    return polls
