"""`vidgate serve` as a process: its start-up line, a busy port, and slow clients.

Slow connections (headers that never end, nothing sent at all, a body that stalls) are
closed by the server within `[server] header_timeout_seconds` / `body_timeout_seconds`,
while /healthz keeps answering; `max_connections` caps what they can hold. The guard is
checked on both HTTP parsers `vidgate serve` can run (`--http httptools`, the default, and
`--http h11`)."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from providers.simkit import free_port
from tests.integration.processes import REPO, Proc, gateway_ready, running, wait_for

TIMEOUT = 1.5  # header_timeout_seconds and body_timeout_seconds in this test
SLACK = 4.0  # how much later than the timeout a close may be seen on a busy 2-core machine

CONFIG = """\
[server]
host = "127.0.0.1"
port = {port}
header_timeout_seconds = {timeout}
body_timeout_seconds = {timeout}
max_connections = {max_connections}

[store]
url = "sqlite:///{db}"

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


@contextlib.contextmanager
def gateway(
    tmp_path: Path, *, max_connections: int = 1024, http: str | None = None, extra_config: str = "", extra_args: tuple[str, ...] = ()
) -> Iterator[tuple[str, Proc, int]]:
    port = free_port()
    config = tmp_path / "vidgate.toml"
    config.write_text(CONFIG.format(port=port, timeout=TIMEOUT, max_connections=max_connections, db=tmp_path / "vidgate.db") + extra_config)
    args = ["serve", "--config", str(config), *(["--http", http] if http else []), *extra_args]
    with running("gateway", args, tmp_path / "gateway.log") as proc:
        base = f"http://127.0.0.1:{port}"
        wait_for("the gateway to serve", lambda: gateway_ready(base), [proc])
        yield base, proc, port


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes `sock` within `seconds` (reading EOF or a reset)."""
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass  # a 408 or anything else the server says before closing
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def test_serve_logs_the_url_it_listens_on_and_a_busy_port_is_one_line(tmp_path: Path) -> None:
    with gateway(tmp_path) as (base, proc, port):
        lines = [json.loads(line) for line in proc.output().splitlines() if line.startswith("{")]
        listening = [line for line in lines if line["event"] == "server.listening"]
        assert [line["url"] for line in listening] == [base]

        config = tmp_path / "vidgate.toml"
        second = subprocess.run([sys.executable, "-m", "gateway.cli", "serve", "--config", str(config)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert second.returncode != 0
    err = second.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert "--port" in err and str(port) in err and "in use" in err
    assert "Traceback" not in second.stdout + second.stderr


def json_lines(proc: Proc) -> list[dict]:
    return [json.loads(line) for line in proc.output().splitlines() if line.startswith("{")]


@pytest.mark.parametrize(("args", "logged"), [((), False), (("--log-level", "info"), True)])
def test_the_configured_log_level_holds_unless_the_command_line_says_otherwise(tmp_path: Path, args: tuple[str, ...], logged: bool) -> None:
    with gateway(tmp_path, extra_config='\n[logging]\nlevel = "warning"\n', extra_args=args) as (base, proc, _port):
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        assert httpx.get(f"{base}/v1/videos/video_missing", headers={"Authorization": "Bearer sk-test"}, timeout=5).status_code == 404
        time.sleep(0.2)
        events = [line["event"] for line in json_lines(proc)]
    assert ("http.request" in events) is logged, events
    assert ("server.listening" in events) is logged  # an info line of its own


PARSERS = pytest.mark.parametrize("http", ["httptools", "h11"])


@PARSERS
def test_slow_connections_are_closed_within_the_configured_timeouts(tmp_path: Path, http: str) -> None:
    with gateway(tmp_path, http=http) as (base, _proc, port):
        opened = time.monotonic()
        silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(100)]
        headers = []
        for _ in range(150):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finished
            headers.append(s)
        bodies = []
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-test\r\nContent-Length: 100000\r\n\r\nabc")
            bodies.append(s)

        # the server still answers others meanwhile
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        # a slowloris that trickles one header byte at a time is closed all the same
        trickler = socket.create_connection(("127.0.0.1", port))
        trickler.sendall(b"GET /healthz HTTP/1.1\r\n")
        trickle_start = time.monotonic()
        with contextlib.suppress(OSError):
            while time.monotonic() - trickle_start < TIMEOUT + SLACK:
                trickler.sendall(b"X")
                time.sleep(0.2)
        trickled = time.monotonic() - trickle_start

        still_open = [s for s in silent + headers + bodies if not closed_within(s, max(0.1, opened + TIMEOUT + SLACK - time.monotonic()))]
        waited = time.monotonic() - opened
        for s in silent + headers + bodies + [trickler]:
            s.close()
    assert not still_open, f"{len(still_open)} of 300 slow connections still open after {waited:.1f} s"
    assert trickled < TIMEOUT + SLACK, "a trickle of header bytes kept the connection open"


@PARSERS
def test_max_connections_caps_what_slow_clients_hold_until_they_are_closed(tmp_path: Path, http: str) -> None:
    with gateway(tmp_path, max_connections=20, http=http) as (base, _proc, port):
        hogs = [socket.create_connection(("127.0.0.1", port)) for _ in range(25)]
        time.sleep(0.2)
        refused = httpx.get(f"{base}/healthz", timeout=5)
        assert refused.status_code == 503
        assert all(closed_within(s, TIMEOUT + SLACK) for s in hogs)
        for s in hogs:
            s.close()
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200


@PARSERS
@pytest.mark.parametrize("pause", [0.3])
def test_a_body_that_keeps_arriving_is_not_cut(tmp_path: Path, pause: float, http: str) -> None:
    """A slow but steady upload (each pause under the timeout) is served, past the timeout in all."""
    png = (REPO / "providers" / "sim_media" / "image.png").read_bytes()
    boundary = b"xyz"
    body = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n' + png + b"\r\n--xyz--\r\n"
    with gateway(tmp_path, http=http) as (_base, _proc, port):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(
            b"POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-test\r\nContent-Type: multipart/form-data; boundary="
            + boundary
            + b"\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
        )
        pieces = [body[i : i + len(body) // 8 + 1] for i in range(0, len(body), len(body) // 8 + 1)]
        started = time.monotonic()
        for piece in pieces:
            time.sleep(pause)
            s.sendall(piece)
        s.settimeout(10)
        answer = s.recv(200)
        s.close()
    assert time.monotonic() - started > TIMEOUT  # longer than the timeout in all
    assert answer.startswith(b"HTTP/1.1 200"), answer


@PARSERS
def test_a_body_that_stalls_while_the_app_waits_for_it_is_closed(tmp_path: Path, http: str) -> None:
    """The app reads this upload (a valid multipart head), so no early answer and no
    keep-alive timer ends the connection: only the body-pause deadline does. A request
    that arrived whole on the same server is still answered."""
    head = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG'
    with gateway(tmp_path, http=http) as (base, _proc, port):
        stalled = []
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(
                b"POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-test\r\n"
                b"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 100000\r\n\r\n" + head
            )
            stalled.append(s)
        opened = time.monotonic()
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        closed = [closed_within(s, max(0.1, opened + TIMEOUT + SLACK - time.monotonic())) for s in stalled]
        for s in stalled:
            s.close()
    assert all(closed), f"{closed.count(False)} of 5 stalled uploads still open after {TIMEOUT + SLACK} s"


@PARSERS
def test_the_next_request_on_a_kept_alive_connection_has_the_same_header_deadline(tmp_path: Path, http: str) -> None:
    with gateway(tmp_path, http=http) as (_base, _proc, port):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # the keep-alive timer stops at this byte
        closed = closed_within(s, TIMEOUT + SLACK)
        s.close()
    assert closed, "a second request's unfinished headers kept the connection open"
