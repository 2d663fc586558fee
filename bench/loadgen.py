"""The load generators: Debian's `hey` (per-request latency) and `wrk` (throughput).

    lat = hey(Request("GET", url, headers), n=500, concurrency=1)       # lat.p(0.99) in ms
    thr = wrk(Request("POST", url, headers, body), connections=32, seconds=10, scratch=dir)

Both are Go / C programs outside this process, so the Python harness never competes with
the server for a GIL; each call is bounded by a request count or a duration and by a
subprocess timeout. `hey -o csv` gives every request's latency, status and start offset;
`wrk` gives requests/s, and a small Lua script counts answers that are not 2xx.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from procs import BenchError

INSTALL = {"hey": "apt-get install -y hey", "wrk": "apt-get install -y wrk", "node": "apt-get install -y nodejs npm", "npm": "apt-get install -y npm"}


def require_tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        hints = "; ".join(f"{n}: `{INSTALL.get(n, 'install it')}`" for n in missing)
        raise BenchError(f"missing tools on PATH: {', '.join(missing)} ({hints})")


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class Latencies:
    ms: list[float]  # one per answered request, in the order they started
    offsets: list[float]  # seconds from the start of the run at which each request started
    codes: Counter[str]
    wall: float  # seconds, as hey reports the whole run (the last offset + its latency)

    def p(self, q: float) -> float:
        return percentile(self.ms, q)

    def ok(self) -> int:
        return sum(n for code, n in self.codes.items() if code.startswith("2"))


def hey_argv(req: Request, *, n: int, concurrency: int, rate: float | None = None, timeout: float = 20.0, csv_out: bool = True) -> list[str]:
    argv = ["hey", "-n", str(n), "-c", str(concurrency), "-m", req.method, "-t", str(int(timeout))]
    if rate:
        argv += ["-q", f"{rate:g}"]  # per worker
    for name, value in req.headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv += ["-T", "application/json"]  # hey's default text/html is refused by some gateways
    if req.body is not None:
        argv += ["-d", req.body]
    if csv_out:
        argv += ["-o", "csv"]
    return [*argv, req.url]


def hey(req: Request, *, n: int, concurrency: int, rate: float | None = None, time_limit: float = 300.0) -> Latencies:
    """`n` requests from `concurrency` workers. Past `time_limit` hey is interrupted and what
    it finished is returned (hey reports on SIGINT)."""
    proc = subprocess.Popen(hey_argv(req, n=n, concurrency=concurrency, rate=rate), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=time_limit)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.returncode not in (0, -signal.SIGINT) and not out:
        raise BenchError(f"hey failed ({proc.returncode}): {err.strip()[-500:]}")
    return parse_hey_csv(out)


def parse_hey_csv(text: str) -> Latencies:
    rows = sorted(csv.DictReader(io.StringIO(text)), key=lambda r: float(r["offset"]))
    codes: Counter[str] = Counter(r["status-code"] for r in rows)
    ms = [float(r["response-time"]) * 1000 for r in rows]
    offsets = [float(r["offset"]) for r in rows]
    wall = max((o + m / 1000 for o, m in zip(offsets, ms, strict=True)), default=0.0)
    return Latencies(ms, offsets, codes, wall)


@dataclass
class Throughput:
    requests: int  # answered, any status
    non2xx: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    socket_errors: int  # connect, read, write and timeout errors, added up

    @property
    def ok(self) -> int:
        return self.requests - self.non2xx

    @property
    def ok_rps(self) -> float:
        """2xx answers per second (wrk's own Requests/sec counts every answer)."""
        return self.ok / self.seconds if self.seconds > 0 else math.nan


_WRK_SCRIPT = """
wrk.method = {method}
{headers}
{body}
local bad = 0
function response(status, headers, body)
  if status < 200 or status > 299 then bad = bad + 1 end
end
function done(summary, latency, requests)
  io.write(string.format("NON2XX %d\\n", bad))
end
"""


def wrk(req: Request, *, connections: int, seconds: float, script: Path) -> Throughput:
    """`connections` keep-alive connections from one wrk thread for `seconds`; `script` is
    where the request's Lua script is written."""
    lua = json.dumps  # a JSON string literal is a valid Lua string literal for what we send
    headers = dict(req.headers)
    if req.body is not None:
        headers.setdefault("Content-Type", "application/json")
    script.write_text(
        _WRK_SCRIPT.format(
            method=lua(req.method),
            headers="\n".join(f"wrk.headers[{lua(k)}] = {lua(v)}" for k, v in headers.items()),
            body="" if req.body is None else f"wrk.body = {lua(req.body)}",
        )
    )
    duration = max(1, round(seconds))
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "20s", "--latency", "-s", str(script), req.url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return parse_wrk(done.stdout)


def _wrk_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(text: str) -> Throughput:
    def find(pattern: str) -> re.Match[str] | None:
        return re.search(pattern, text, re.MULTILINE)

    total = find(r"(\d+) requests in ([\d.]+)(ms|s|m)")
    if total is None:
        raise BenchError(f"could not read wrk's output:\n{text[-1000:]}")
    seconds = float(total.group(2)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[total.group(3)]
    rps = find(r"Requests/sec:\s+([\d.]+)")
    p50, p99 = find(r"^\s+50%\s+(\S+)"), find(r"^\s+99%\s+(\S+)")
    bad, sockets = find(r"NON2XX (\d+)"), find(r"Socket errors: (.*)")
    return Throughput(
        requests=int(total.group(1)),
        non2xx=int(bad.group(1)) if bad else 0,
        seconds=seconds,
        rps=float(rps.group(1)) if rps else math.nan,
        p50_ms=_wrk_ms(p50.group(1)) if p50 else math.nan,
        p99_ms=_wrk_ms(p99.group(1)) if p99 else math.nan,
        socket_errors=sum(int(n) for n in re.findall(r"\d+", sockets.group(1))) if sockets else 0,
    )
