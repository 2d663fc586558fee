"""The two servers every harness runs: the mock upstream and `vidgate serve` in front of it.

    mock = start_mock(procs, job_seconds=0)                  # Mock: .url, .stats(), .window(), .polls()
    vg = start_vidgate(procs, VidgateConfig(upstream=mock.url, store_url=..., data=scratch / "vg"))

vidgate runs exactly as an operator runs it, `vidgate serve --config FILE --json-logs`
(the console script of this environment), so what is measured is the shipped server
stack and its default `info` logging, written to the process's log file.
"""

from __future__ import annotations

import json
import socket
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from procs import Proc, Processes, check_loopback_only, wait_http

HERE = Path(__file__).resolve().parent
KEY = "sk-bench"  # the caller key vidgate accepts
UPSTREAM_SECRET = "sk-upstream"  # what vidgate (and the peers) send the mock; the mock ignores it
MODEL = "sora-2"  # the logical model callers ask for
UPSTREAM_MODEL = "dreamina-seedance-2-0-260128"  # a PowerTokens model id with a 4 s, 720x1280 text mode
WEBHOOK_SECRET = "whsec_" + "YmVuY2gtd2ViaG9vay1zZWNyZXQtMzItYnl0ZXMhIQ=="
CREATE_BODY = json.dumps({"model": MODEL, "prompt": "a cat on a skateboard", "seconds": "4", "size": "720x1280"}, separators=(",", ":"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------
# The mock upstream
# ---------------------------------------------------------------------------


@dataclass
class Mock:
    proc: Proc
    url: str

    def _call(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, int]:
        """Counters (submit, poll, content, webhook, not_found, other) and `jobs`."""
        body = self._call("/__stats")
        return {**body["counts"], "jobs": body["jobs"]}

    def window(self) -> None:
        """Start recording every poll's time, per job."""
        self._call("/__window", "POST")

    def polls(self) -> tuple[float, float, dict[str, list[float]]]:
        """(window start, now, {upstream job id: [poll times]}) on the mock's clock."""
        body = self._call("/__polls")
        return body["start"], body["now"], body["polls"]


def start_mock(procs: Processes, *, job_seconds: float, progress: bool = False, name: str = "mock") -> Mock:
    port = free_port()
    argv = [sys.executable, str(HERE / "mock_upstream.py"), "--port", str(port), "--job-seconds", str(job_seconds)]
    proc = procs.start(name, [*argv, "--progress"] if progress else argv)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/__stats", proc=proc)
    check_loopback_only(port, name)
    return Mock(proc, url)


# ---------------------------------------------------------------------------
# vidgate
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VidgateConfig:
    upstream: str  # the mock's base URL, served as a powertokens-type provider
    store_url: str  # sqlite:////abs/path.db or postgresql://...
    data: Path  # a scratch folder for the config and output copies
    slots: int = 10_000  # the provider's max_concurrency: jobs in flight upstream at once
    poll_interval: float = 5.0  # the provider's poll_interval_seconds
    poll_min: float = 1.0  # [jobs] poll_min_seconds: the first poll after a submit
    poll_max: float = 30.0  # [jobs] poll_max_seconds: the cap of the back-off as a job ages
    max_jobs: int = 10_000  # [cluster] max_jobs
    webhook_url: str | None = None  # a tenant endpoint receiving every event

    def toml(self, port: int) -> str:
        hooks = ""
        if self.webhook_url:
            hooks = f"""
[[webhooks.endpoints]]
name = "bench"
url = "{self.webhook_url}"
secrets = ["{WEBHOOK_SECRET}"]
tenant = "bench"
"""
        return f"""# written by bench/servers.py
[server]
host = "127.0.0.1"
port = {port}

[store]
url = "{self.store_url}"

[security]
allow_private_urls = true  # the mock and the webhook receiver are on loopback

[outputs]
dir = "{self.data / "outputs"}"

[jobs]
default_model = "{MODEL}"
poll_min_seconds = {self.poll_min}
poll_max_seconds = {self.poll_max}

[cluster]
max_jobs = {self.max_jobs}

[[keys]]
name = "bench"
tenant = "bench"
key = "{KEY}"

[providers.mock]
type = "powertokens"
base_url = "{self.upstream}"
secret = "{UPSTREAM_SECRET}"
max_concurrency = {self.slots}
poll_interval_seconds = {self.poll_interval}

[models."{MODEL}"]
providers = {{ mock = "{UPSTREAM_MODEL}" }}
{hooks}"""


@dataclass
class Vidgate:
    proc: Proc
    url: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {KEY}"}

    def create(self) -> str:
        """One create, as a caller sends it; the new video's id."""
        request = urllib.request.Request(
            self.url + "/v1/videos", data=CREATE_BODY.encode(), method="POST", headers={**self.headers, "Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(json.loads(response.read())["id"])

    def log_events(self) -> dict[str, int]:
        """How many times each structlog event appears in the JSON log so far."""
        counts: dict[str, int] = {}
        with self.proc.log.open(errors="replace") as fh:
            for line in fh:
                if line.startswith("{"):
                    try:
                        event = json.loads(line).get("event", "?")
                    except ValueError:
                        continue
                    counts[event] = counts.get(event, 0) + 1
        return counts


def vidgate_argv(config: Path) -> list[str]:
    """`vidgate serve` from this environment (the console script beside this interpreter)."""
    script = Path(sys.executable).with_name("vidgate")
    prefix = [str(script)] if script.exists() else [sys.executable, "-m", "gateway.cli"]
    return [*prefix, "serve", "--config", str(config), "--json-logs"]


def start_vidgate(procs: Processes, config: VidgateConfig, *, name: str = "vidgate") -> Vidgate:
    config.data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    path = config.data / "vidgate.toml"
    path.write_text(config.toml(port))
    proc = procs.start(name, vidgate_argv(path), cwd=config.data)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/healthz", proc=proc)
    check_loopback_only(port, name)
    return Vidgate(proc, url)
