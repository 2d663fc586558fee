"""README.md runs as written: every `sh` and `python` block, in order, against a demo.

What differs from a reader's terminal, and only this:
- the demo runs on a free port P (`vidgate demo --port P`) and every `127.0.0.1:8000` in a
  block is replaced by `127.0.0.1:P`, so a demo a developer left running on 8000 is not hit;
- `--job-seconds 1` makes the simulated jobs take one second instead of five;
- the demo is started with `python -m gateway.cli` (what `uv run vidgate` runs).

The `sh` blocks run in one bash process (`set -euo pipefail`), so `$VIDEO_ID` from one block
is there in the next, as in one terminal; each `python` block runs in its own interpreter;
all of them in one scratch directory. A block preceded by `<!-- readme-test: skip (why) -->`
is not run, and the test checks that no skipped block holds a curl or SDK call.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from providers.simkit import free_port

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"(?P<skip><!-- readme-test: skip[^>]*-->\s*\n)?```(?P<lang>\w*)\n(?P<code>.*?)```", re.S)
RUN = {"sh", "python"}


def blocks() -> list[tuple[str, str, bool]]:
    """(language, code, skipped) for every fenced block, in order."""
    return [(m["lang"], m["code"], m["skip"] is not None) for m in FENCE.finditer(README.read_text())]


@contextlib.contextmanager
def running_demo(tmp: Path, stop: signal.Signals = signal.SIGINT) -> Iterator[tuple[str, int, subprocess.Popen[bytes]]]:
    """`vidgate demo --port P --job-seconds 1` with TMPDIR=tmp; stopped with `stop` (Ctrl-C's SIGINT) at the end."""
    port = free_port()
    with (tmp / "demo.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "demo", "--port", str(port), "--job-seconds", "1"],
            env={**os.environ, "TMPDIR": str(tmp)},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=README.parent,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while not _healthy(base):
                assert process.poll() is None, f"the demo exited: {(tmp / 'demo.log').read_text()}"
                assert time.monotonic() < deadline, "the demo did not start"
                time.sleep(0.1)
            yield base, port, process
        finally:
            process.send_signal(stop)
            try:
                process.wait(timeout=30)
            finally:
                if process.poll() is None:
                    process.kill()


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    with running_demo(tmp_path_factory.mktemp("demo")) as (base, port, _):
        yield base, port


def test_no_skipped_block_hides_a_command_the_reader_would_run() -> None:
    found = blocks()
    assert {lang for lang, _, skipped in found if not skipped} <= RUN
    for lang, code, skipped in found:
        if skipped:
            assert "curl " not in code and "OpenAI(" not in code, code
        else:
            assert lang in RUN and "127.0.0.1:8000" in code, code
    assert sum(1 for lang, _, skipped in found if lang == "python" and not skipped) >= 2


def test_every_sh_and_python_block_runs_against_the_demo(demo: tuple[str, int], tmp_path: Path) -> None:
    base, port = demo
    runnable = [(lang, code.replace("127.0.0.1:8000", f"127.0.0.1:{port}")) for lang, code, skipped in blocks() if not skipped]
    shell = ["set -euo pipefail"]
    for n, (lang, code) in enumerate(runnable):
        if lang == "sh":
            shell += [f"echo '>>> README block {n}' >&2", code]
    started = time.monotonic()
    ran = subprocess.run(["bash", "-c", "\n".join(shell)], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert ran.returncode == 0, f"a README sh block failed (the last '>>> README block N' on stderr):\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}"
    assert (tmp_path / "video.mp4").read_bytes()[4:8] == b"ftyp"
    assert (tmp_path / "frame.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "vidgate_jobs_finished_total" in ran.stdout  # the metrics block printed the scrape
    for n, (lang, code) in enumerate(runnable):
        if lang == "python":
            done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, f"README python block {n} failed:\n{code}\n{done.stdout}\n{done.stderr}"
            assert "completed" in done.stdout
    assert (tmp_path / "lighthouse.mp4").read_bytes()[4:8] == b"ftyp"
    print(f"README blocks ran in {time.monotonic() - started:.1f} s")
    assert httpx.get(f"{base}/healthz").status_code == 200


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_the_demo_removes_its_data_directory_when_it_stops(tmp_path: Path, stop: signal.Signals) -> None:
    with running_demo(tmp_path, stop) as (_, _, process):
        made = list(tmp_path.glob("vidgate-demo-*"))
        assert made and (made[0] / "vidgate.db").exists()
    assert process.returncode == 0
    assert not made[0].exists()


def test_the_demo_on_a_busy_port_says_so_in_one_line_naming_the_port_flag() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ran = subprocess.run([sys.executable, "-m", "gateway.cli", "demo", "--port", str(port)], capture_output=True, text=True, timeout=60, cwd=README.parent)
    assert ran.returncode == 2
    assert ran.stdout == ""
    assert ran.stderr.count("\n") == 1 and "--port" in ran.stderr and str(port) in ran.stderr
