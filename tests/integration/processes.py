"""Real OS processes for integration tests: `vidgate serve` and the simulators, with logs.

Each child runs in its own process group so `kill()` (SIGKILL) takes it down with
anything it started; its output goes to a log file that a failing wait prints.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from providers.simkit import free_port

REPO = Path(__file__).resolve().parents[2]
WAIT = 60.0  # default upper bound on every wait


class Proc:
    """A child process with its output in a log file, killed (group and all) on `kill()`."""

    def __init__(self, name: str, args: list[str], log: Path) -> None:
        self.name = name
        self.log = log
        self._fh = log.open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", *args],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=self._fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so kill() reaches any children
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        self._fh.flush()
        return self.log.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)
        self._fh.close()


@contextlib.contextmanager
def running(name: str, args: list[str], log: Path) -> Iterator[Proc]:
    proc = Proc(name, args, log)
    try:
        yield proc
    finally:
        proc.kill()


def wait_for(what: str, check: Callable[[], Any], procs: list[Proc], timeout: float = WAIT, every: float = 0.1) -> Any:
    """Call `check` until it returns something truthy; fail early if a process died."""
    deadline = time.monotonic() + timeout
    while True:
        for proc in procs:
            if not proc.alive():
                pytest.fail(f"{proc.name} exited with {proc.popen.returncode} while waiting for {what}:\n{proc.output()}")
        with contextlib.suppress(httpx.TransportError, OSError):
            if result := check():
                return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def accepts(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def gateway_ready(base: str) -> bool:
    return httpx.get(f"{base}/healthz", timeout=2).status_code == 200


@contextlib.contextmanager
def simulators(tmp_path: Path, job_seconds: float, capacity: int | None = None) -> Iterator[dict[str, str]]:
    """Both upstream simulators as processes; yields their base URLs by provider."""
    ports = {"useapi": free_port(), "powertokens": free_port()}
    extra = ["--capacity", str(capacity)] if capacity is not None else []
    with contextlib.ExitStack() as stack:
        procs = [
            stack.enter_context(
                running(f"{name} simulator", ["simulate", name, "--port", str(port), "--job-seconds", str(job_seconds), *extra], tmp_path / f"{name}.log")
            )
            for name, port in ports.items()
        ]
        for (name, port), _proc in zip(ports.items(), procs, strict=False):
            wait_for(f"the {name} simulator on port {port}", lambda port=port: accepts(port), procs)
        yield {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
