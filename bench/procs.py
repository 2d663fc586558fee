"""The processes a bench run starts, and what /proc says about them.

    with Processes(scratch / "logs") as procs:
        mock = procs.start("mock", [sys.executable, "bench/mock_upstream.py", "--port", "18080"])
        wait_http(f"http://127.0.0.1:18080/__stats", procs=procs, proc=mock)
        ...                                   # every process is stopped on the way out, even on Ctrl-C

Each child gets its own session (so the terminal's Ctrl-C reaches only this script, which
then stops the children in reverse order) and writes stdout + stderr to `<logs>/<name>.log`.
Children are stopped by their process-group id, which is their own pid: never by name.

CPU and RSS are read from /proc for a process and all its descendants (uvicorn or node
workers, LiteLLM's children), so one number covers what a server costs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """A setup step failed; the message says what to do about it."""


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    _file: IO[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class Processes:
    """Starts named processes, logs each to a file, and stops them all on exit."""

    logs: Path
    started: list[Proc] = field(default_factory=list)

    def __enter__(self) -> Processes:
        self.logs.mkdir(parents=True, exist_ok=True)
        # SIGTERM (a `kill`, a timeout) unwinds like Ctrl-C, so the `with` block stops the children;
        # SIGINT too when started as a background job, where the shell had it ignored.
        self._previous = {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self.started):
            self.stop(proc)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def start(self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Proc:
        log = self.logs / f"{name}.log"
        fh = log.open("ab")
        fh.write(f"$ {' '.join(argv)}\n".encode())
        fh.flush()
        popen = subprocess.Popen(
            list(argv), stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=None if env is None else dict(env), cwd=cwd, start_new_session=True
        )
        proc = Proc(name, popen, log, fh)
        self.started.append(proc)
        return proc

    def stop(self, proc: Proc, timeout: float = 10.0) -> None:
        """SIGTERM to the process group this script created, then SIGKILL if it lingers."""
        if proc not in self.started:
            return
        self.started.remove(proc)
        if proc.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.popen.wait(5)
        # a child that forked helpers into its group (node, LiteLLM) may leave them behind
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc._file.close()


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def wait_http(url: str, *, proc: Proc, timeout: float = 60.0, headers: Mapping[str, str] | None = None) -> None:
    """Wait until `url` answers at all (any HTTP status), or fail with the end of the process's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise BenchError(f"{proc.name} exited ({proc.popen.returncode}) while starting; its log ({proc.log}) ends:\n{proc.tail()}")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=dict(headers or {})), timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise BenchError(f"{proc.name} did not answer {url} within {timeout:g} s; its log ({proc.log}) ends:\n{proc.tail()}")


def check_loopback_only(port: int, name: str) -> None:
    """Refuse to go on if anything listens on `port` beyond 127.0.0.1 / ::1."""
    for table, loopbacks in (("/proc/net/tcp", {"0100007F"}), ("/proc/net/tcp6", {"00000000000000000000000001000000", "0000000000000000FFFF00000100007F"})):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port and address not in loopbacks:  # 0A = LISTEN
                raise BenchError(f"{name} listens on port {port} beyond loopback ({table} {address}); stopping")


# ---------------------------------------------------------------------------
# /proc: CPU and memory of a process tree
# ---------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()  # fields from the 3rd on (state is [0])


def descendants(pid: int) -> list[int]:
    """`pid` and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                children.setdefault(int(_stat_fields(int(entry))[1]), []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    tree, stack = [], [pid]
    while stack:
        p = stack.pop()
        tree.append(p)
        stack.extend(children.get(p, []))
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid`'s tree: every thread, plus children already reaped."""
    total = 0
    for p in descendants(pid):
        try:
            fields = _stat_fields(p)
        except OSError:
            continue
        total += sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime, stime, cutime, cstime
    return total / CLOCK_TICKS


def rss_kib(pid: int) -> int:
    total = 0
    for p in descendants(pid):
        with contextlib.suppress(OSError), open(f"/proc/{p}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
    return total


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as fh:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fh.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def own_seconds() -> float:
    """CPU of this script and the children it has waited for (hey, wrk)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class RssPeak:
    """Samples a process tree's RSS in a thread while the `with` block runs; `.mib` is the peak."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        self.pid, self.every, self.peak_kib = pid, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, rss_kib(self.pid))
            self._stop.wait(self.every)

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.peak_kib = max(self.peak_kib, rss_kib(self.pid))

    @property
    def mib(self) -> float:
        return self.peak_kib / 1024


@dataclass(frozen=True)
class Snapshot:
    """CPU counters at one moment: per process tree, the whole machine, and this script."""

    at: float
    cpu: dict[int, float]
    busy: float
    own: float


def snapshot(pids: Sequence[int]) -> Snapshot:
    return Snapshot(time.monotonic(), {p: cpu_seconds(p) for p in pids}, machine_busy_seconds(), own_seconds())


@dataclass(frozen=True)
class Usage:
    wall: float
    cpu: dict[int, float]  # CPU seconds per process tree
    foreign_cores: float  # cores used meanwhile by processes this script did not start

    def cores(self, pid: int) -> float:
        return self.cpu[pid] / self.wall if self.wall > 0 else 0.0


def usage(before: Snapshot, after: Snapshot) -> Usage:
    wall = after.at - before.at
    cpu = {p: after.cpu[p] - before.cpu[p] for p in before.cpu}
    ours = sum(cpu.values()) + after.own - before.own
    foreign = max(0.0, (after.busy - before.busy - ours) / wall) if wall > 0 else 0.0
    return Usage(wall, cpu, foreign)


def wait_calm(pids: Sequence[int], *, max_cores: float, max_wait: float) -> float:
    """Wait (at most `max_wait` s) until other processes use under `max_cores` for 2 s in a row.
    Returns the foreign load seen last, in cores. The machine is shared: this keeps a phase
    from starting in the middle of someone else's test run, without waiting forever."""
    deadline, calm, foreign = time.monotonic() + max_wait, 0, 0.0
    while time.monotonic() < deadline and calm < 2:
        before = snapshot(pids)
        time.sleep(1.0)
        foreign = usage(before, snapshot(pids)).foreign_cores
        calm = calm + 1 if foreign < max_cores else 0
    return foreign


_SPEED_PROBE = r"""
import asyncio, json, os, time
doc = {"id": "video_0123456789abcdef", "status": "in_progress", "progress": 40, "model": "sora-2",
       "tags": ["a", "b", "c"], "meta": {"seconds": 8, "size": "1280x720", "price": 0.25}}
start = time.process_time()
for _ in range(20_000):
    json.loads(json.dumps(doc))
work_ms = 1000 * (time.process_time() - start)

async def sleeps(n):
    for _ in range(n):
        await asyncio.sleep(0.01)
start = time.process_time()
asyncio.run(sleeps(100))
wake_us = 1e6 * (time.process_time() - start) / 100
print(f"{work_ms:.0f} {wake_us:.0f}")
"""


def machine_speed() -> str:
    """What this (shared, noisy) machine costs right now, measured in a fresh interpreter:
    the CPU time of a fixed piece of Python work (20,000 JSON round trips), and the CPU time
    of one event-loop wake-up (an idle `asyncio.sleep(0.01)`). Printed beside each run so
    that absolute numbers from different hours can be compared: on these VMs both moved by
    2x or more within a day, with the load average near zero."""
    out = subprocess.run([sys.executable, "-c", _SPEED_PROBE], capture_output=True, text=True, timeout=120, check=True).stdout.split()
    return f"reference work {out[0]} ms, a loop wake-up {out[1]} us of CPU"
