"""vidgate side by side with Portkey's gateway and LiteLLM's proxy, in front of one mock upstream.

    uv run python bench/peers.py             # 3 rounds: about 12-16 minutes
    uv run python bench/peers.py --quick     # 1 round, small counts: under 3 minutes once installed
    uv run python bench/peers.py --rounds 5 --targets direct,portkey,vidgate

Run by hand, never in CI. Everything listens on 127.0.0.1. What runs, each a process of
its own (logs in the scratch folder printed at the end):

  mock      bench/mock_upstream.py: PowerTokens' /v1/videos on raw asyncio (~0.05 ms a request)
  direct    the mock itself, measured as a target: the baseline "added" latency is taken over
  vidgate   `vidgate serve`, the mock as a powertokens-type provider (SQLite in the scratch folder)
  portkey   @portkey-ai/gateway 1.15.x, a blind passthrough to the mock (x-portkey-custom-host)
  litellm   litellm[proxy] 1.106.2, its openai/ video route pointed at the mock

LiteLLM and Portkey are installed on first use into --tools (pip venv / npm folder) and
reused after. Per round, per route (create, then status), the targets run in an order
rotated by one each round, each with the same load generators:

  warm-up   hey -c 4
  c=1       hey -n N -c 1      per-request latency; "added" = target minus direct, same round
  c=32      wrk -c 32 -d S     requests/s (2xx only)

CPU is the target's process tree from /proc, RSS its peak sampled every 0.5 s. A vidgate
create burst is followed by its own background work (submit upstream, poll, copy the
output): the harness waits for that drain (the mock has seen a submit and a content
download for every job) and charges it to vidgate, so it never lands in another target's
phase. `--e2e-jobs` then measures vidgate's whole pipeline: create -> submit -> polls ->
completed -> output copy -> webhook, on a second mock whose jobs last --e2e-job-seconds.
The printed table holds medians over rounds; see bench/README.md for what each row means.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from loadgen import Request, hey, require_tools, wrk
from peer_servers import start_litellm, start_portkey
from procs import BenchError, Processes, RssPeak, loadavg, machine_speed, snapshot, usage, wait_calm
from servers import CREATE_BODY, UPSTREAM_SECRET, Mock, VidgateConfig, start_mock, start_vidgate

ALL_TARGETS = ("direct", "portkey", "litellm", "vidgate")
ROUTES = ("create", "status")
E2E_CONCURRENCY = 8  # hey sends n // c requests per worker: keep --e2e-jobs a multiple of this


@dataclass
class Target:
    name: str
    url: str
    headers: dict[str, str]
    pid: int
    version: str = ""
    status_id: str = ""  # a job created through this target, for the status route

    def request(self, route: str) -> Request:
        if route == "create":
            return Request("POST", f"{self.url}/v1/videos", self.headers, CREATE_BODY)
        return Request("GET", f"{self.url}/v1/videos/{self.status_id}", self.headers)


@dataclass
class Phase:
    """One measured phase: a target, a route, c=1 or c=32, in one round."""

    round: int
    target: str
    route: str
    kind: str  # "c1" | "c32"
    requests: int  # answered with 2xx
    errors: int  # answered otherwise, or not at all (socket errors)
    wall: float  # seconds of load
    p50_ms: float
    p99_ms: float
    rps: float  # 2xx per second
    cpu_s: float  # target's CPU during the load
    rss_mib: float
    foreign_cores: float
    # vidgate create only: the background work that follows the burst
    submits: int = 0  # jobs that reached the mock (its POST /v1/videos count)
    drain_s: float = 0.0  # after the load, until every job was submitted and its output copied
    drain_note: str = ""
    cpu_with_drain_s: float = 0.0


@dataclass
class EndToEnd:
    round: int
    jobs: int  # webhooks received
    seconds: float  # first create to last webhook
    cpu_s: float
    polls: int
    contents: int
    note: str = ""


@dataclass
class Run:
    phases: list[Phase] = field(default_factory=list)
    e2e: list[EndToEnd] = field(default_factory=list)
    loadavg: list[str] = field(default_factory=list)
    speed: list[str] = field(default_factory=list)  # machine_speed() before each round, and at the end
    versions: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------


def wait_drained(mock: Mock, before: dict[str, int], *, cap: float, quiet: float = 5.0) -> tuple[float, dict[str, int], str]:
    """Wait until every job vidgate submitted has had its output copied (the mock's content
    count catches up with its submit count), or nothing moved for `quiet` s, or `cap` s passed.
    Returns (seconds waited, the mock's counters, why it stopped)."""
    start = last_change = time.monotonic()
    last = mock.stats()
    while True:
        now = mock.stats()
        submits, contents = now["submit"] - before["submit"], now["content"] - before["content"]
        if contents >= submits:
            return time.monotonic() - start, now, ""
        if now != last:
            last, last_change = now, time.monotonic()
        if time.monotonic() - last_change > quiet:
            return last_change - start, now, f"stalled: {contents} of {submits} jobs copied"
        if time.monotonic() - start > cap:
            return cap, now, f"gave up after {cap:g} s: {contents} of {submits} jobs copied"
        time.sleep(0.1)


def load(req: Request, kind: str, args: argparse.Namespace, script: Path) -> tuple[int, int, float, float, float]:
    """One phase's load: (2xx answers, other answers and socket errors, seconds, p50 ms, p99 ms)."""
    if kind == "c1":
        lat = hey(req, n=args.requests, concurrency=1, time_limit=args.phase_limit)
        return lat.ok(), len(lat.ms) - lat.ok(), lat.wall, lat.p(0.5), lat.p(0.99)
    thr = wrk(req, connections=args.connections, seconds=args.seconds, script=script)
    return thr.ok, thr.non2xx + thr.socket_errors, thr.seconds, thr.p50_ms, thr.p99_ms


def measure(target: Target, route: str, kind: str, rnd: int, args: argparse.Namespace, *, mock: Mock, pids: list[int], scratch: Path) -> Phase:
    wait_calm(pids, max_cores=args.calm_cores, max_wait=args.calm_wait)
    before_mock = mock.stats()
    before = snapshot(pids)
    with RssPeak(target.pid) as rss:
        ok, errors, wall, p50, p99 = load(target.request(route), kind, args, scratch / f"{target.name}-{route}.lua")
        phase_usage = usage(before, snapshot(pids))
        phase = Phase(
            round=rnd,
            target=target.name,
            route=route,
            kind=kind,
            requests=ok,
            errors=errors,
            wall=wall,
            p50_ms=p50,
            p99_ms=p99,
            rps=ok / wall if wall > 0 else math.nan,
            cpu_s=phase_usage.cpu[target.pid],
            rss_mib=0.0,
            foreign_cores=phase_usage.foreign_cores,
        )
        if target.name == "vidgate" and route == "create":
            phase.drain_s, after_mock, phase.drain_note = wait_drained(mock, before_mock, cap=args.drain_limit)
            phase.submits = after_mock["submit"] - before_mock["submit"]
            phase.cpu_with_drain_s = usage(before, snapshot(pids)).cpu[target.pid]
    phase.rss_mib = rss.mib
    return phase


def describe(phase: Phase) -> str:
    text = f"    {phase.target:8s} {phase.route:6s} {phase.kind:3s}"
    if phase.kind == "c1":
        text += f" p50 {phase.p50_ms:7.2f} ms  p99 {phase.p99_ms:7.2f} ms"
    else:
        text += f" {phase.rps:7.0f} req/s"
    text += f"  cpu {1000 * phase.cpu_s / max(phase.requests, 1):6.2f} ms/req  rss {phase.rss_mib:4.0f} MiB  foreign {phase.foreign_cores:.2f}"
    if phase.errors:
        text += f"  ERRORS {phase.errors}"
    if phase.submits:
        text += f"  | {phase.submits} submits, drain {phase.drain_s:.1f} s, cpu incl. drain {1000 * phase.cpu_with_drain_s / phase.submits:.2f} ms/job"
    if phase.drain_note:
        text += f"  ({phase.drain_note})"
    return text


def prepare(target: Target, args: argparse.Namespace, mock: Mock) -> None:
    """Create one job through the target, for the status route; let vidgate finish it."""
    request = urllib.request.Request(
        target.url + "/v1/videos", data=CREATE_BODY.encode(), method="POST", headers={**target.headers, "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            target.status_id = json.loads(response.read())["id"]
    except (OSError, ValueError, KeyError) as exc:
        raise BenchError(f"{target.name}: the first create failed ({exc}); see its log in the scratch folder") from None
    if target.name == "vidgate":
        wait_drained(mock, {"submit": 0, "content": 0}, cap=args.drain_limit)


def run_rounds(targets: list[Target], args: argparse.Namespace, mock: Mock, pids: list[int], scratch: Path, run: Run) -> None:
    for rnd in range(1, args.rounds + 1):
        run.loadavg.append(loadavg())
        run.speed.append(machine_speed())
        order = targets[(rnd - 1) % len(targets) :] + targets[: (rnd - 1) % len(targets)]
        print(f"== round {rnd}/{args.rounds}  order {','.join(t.name for t in order)}  loadavg {run.loadavg[-1]}; {run.speed[-1]}", file=sys.stderr, flush=True)
        for route in ROUTES:
            for target in order:
                hey(target.request(route), n=args.warmup, concurrency=4, time_limit=args.phase_limit)
                if target.name == "vidgate" and route == "create":
                    wait_drained(mock, {"submit": 0, "content": 0}, cap=args.drain_limit)
                for kind in ("c1", "c32"):
                    phase = measure(target, route, kind, rnd, args, mock=mock, pids=pids, scratch=scratch)
                    print(describe(phase), file=sys.stderr, flush=True)
                    run.phases.append(phase)
    run.loadavg.append(loadavg())
    run.speed.append(machine_speed())


def end_to_end(procs: Processes, args: argparse.Namespace, scratch: Path, run: Run) -> None:
    """vidgate's whole pipeline per job: create -> submit -> polls -> completed -> copy -> webhook."""
    mock = start_mock(procs, job_seconds=args.e2e_job_seconds, progress=True, name="mock-e2e")
    data = scratch / "vidgate-e2e"
    config = VidgateConfig(
        upstream=mock.url,
        store_url=f"sqlite:///{data / 'vidgate.db'}",
        data=data,
        poll_interval=1.0,
        poll_max=1.0,
        webhook_url=f"{mock.url}/hooks",
    )
    vg = start_vidgate(procs, config, name="vidgate-e2e")
    target = Target("vidgate", vg.url, vg.headers, vg.proc.pid)
    pids = [vg.proc.pid, mock.proc.pid]
    print(f"== end to end: {args.e2e_jobs} jobs of {args.e2e_job_seconds:g} s, polled every 1 s, webhook per job", file=sys.stderr, flush=True)
    for rnd in range(1, args.rounds + 1):
        wait_calm(pids, max_cores=args.calm_cores, max_wait=args.calm_wait)
        before_mock, before = mock.stats(), snapshot(pids)
        created = hey(target.request("create"), n=args.e2e_jobs, concurrency=E2E_CONCURRENCY, time_limit=args.phase_limit).ok()
        note = wait_webhooks(mock, before_mock, created, cap=args.e2e_job_seconds + args.drain_limit)
        after_mock, spent = mock.stats(), usage(before, snapshot(pids))
        e2e = EndToEnd(
            round=rnd,
            jobs=after_mock["webhook"] - before_mock["webhook"],
            seconds=spent.wall,
            cpu_s=spent.cpu[vg.proc.pid],
            polls=after_mock["poll"] - before_mock["poll"],
            contents=after_mock["content"] - before_mock["content"],
            note=note,
        )
        run.e2e.append(e2e)
        print(
            f"    round {rnd}: {e2e.jobs} jobs in {e2e.seconds:.1f} s, cpu {1000 * e2e.cpu_s / max(e2e.jobs, 1):.2f} ms/job, "
            f"{e2e.polls / max(e2e.jobs, 1):.1f} polls/job {note}",
            file=sys.stderr,
            flush=True,
        )
    procs.stop(vg.proc)
    procs.stop(mock.proc)


def wait_webhooks(mock: Mock, before: dict[str, int], jobs: int, *, cap: float) -> str:
    start = time.monotonic()
    while time.monotonic() - start < cap:
        if mock.stats()["webhook"] - before["webhook"] >= jobs:
            return ""
        time.sleep(0.1)
    got = mock.stats()["webhook"] - before["webhook"]
    return f"(only {got} of {jobs} webhooks within {cap:g} s)"


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------


def median(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else math.nan


def by_round(run: Run, target: str, route: str, kind: str) -> dict[int, Phase]:
    return {p.round: p for p in run.phases if (p.target, p.route, p.kind) == (target, route, kind)}


def added(run: Run, target: str, route: str, q: str) -> list[float]:
    """Per round: the target's c=1 latency minus the direct mock's, same round (`q`: p50_ms | p99_ms)."""
    mine, direct = by_round(run, target, route, "c1"), by_round(run, "direct", route, "c1")
    return [getattr(mine[r], q) - getattr(direct[r], q) for r in sorted(mine) if r in direct]


def rows_for(run: Run, target: str) -> dict[str, list[float]]:
    """Every row of the table, as one value per round (the direct mock has no "added" rows)."""
    create32 = by_round(run, target, "create", "c32")
    status32 = by_round(run, target, "status", "c32")
    phases = [p for p in run.phases if p.target == target]
    rows = {
        "create added p50 c=1 (ms)": added(run, target, "create", "p50_ms"),
        "create added p99 c=1 (ms)": added(run, target, "create", "p99_ms"),
        "create c=32 (req/s)": [p.rps for p in create32.values()],
        "upstream submits that follow (jobs/s incl. drain)": [p.submits / (p.wall + p.drain_s) for p in create32.values() if p.submits],
        "CPU per job (ms)": [1000 * (p.cpu_with_drain_s if p.submits else p.cpu_s) / max(p.submits or p.requests, 1) for p in create32.values()],
        "status c=32 (req/s)": [p.rps for p in status32.values()],
        "status added p99 c=1 (ms)": added(run, target, "status", "p99_ms"),
        "peak RSS (MiB)": [max(p.rss_mib for p in phases if p.round == r) for r in sorted({p.round for p in phases})],
    }
    if target == "vidgate" and run.e2e:
        rows["CPU per job end to end (ms)"] = [1000 * e.cpu_s / max(e.jobs, 1) for e in run.e2e]
    if target == "direct":
        rows = {name: values for name, values in rows.items() if "added" not in name}
    return rows


def mock_latency(run: Run) -> str:
    parts = []
    for route in ROUTES:
        phases = by_round(run, "direct", route, "c1").values()
        parts.append(f"{route} p50 {fmt(median([p.p50_ms for p in phases]))} ms, p99 {fmt(median([p.p99_ms for p in phases]))} ms")
    return "the mock's own latency at c=1 (what 'added' is taken over): " + "; ".join(parts)


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(b) else math.nan


def fmt(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def table(run: Run, targets: list[str]) -> str:
    per_target = {t: rows_for(run, t) for t in targets}
    names = list(per_target.get("vidgate", per_target[targets[0]]))
    peers = [t for t in ("portkey", "litellm") if t in targets]
    head = ["row", *targets] + ([f"vidgate/{p}" for p in peers] if "vidgate" in targets else [])
    lines = [head]
    for name in names:
        meds = {t: median(per_target[t].get(name, [])) for t in targets}
        cells = [name] + [fmt(meds[t]) for t in targets]
        if "vidgate" in targets:
            cells += [fmt(ratio(meds["vidgate"], meds[p])) for p in peers]
        lines.append(cells)
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    out = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in lines]
    out.insert(1, "-" * len(out[0]))
    return "\n".join(out)


def rounds_detail(run: Run, targets: list[str]) -> str:
    lines = ["every round's value (round 1 / 2 / ...):"]
    for t in targets:
        for name, values in rows_for(run, t).items():
            if values:
                lines.append(f"  {t:8s} {name}: {' / '.join(fmt(v) for v in values)}")
    return "\n".join(lines)


def report(run: Run, targets: list[str], args: argparse.Namespace) -> str:
    foreign = {t: median([p.foreign_cores for p in run.phases if p.target == t]) for t in targets}
    errors = [f"{p.target} {p.route} {p.kind} round {p.round}: {p.errors} failed requests" for p in run.phases if p.errors]
    notes = [f"{p.target} {p.route} {p.kind} round {p.round}: {p.drain_note}" for p in run.phases if p.drain_note]
    notes += [f"end to end round {e.round}: {e.note}" for e in run.e2e if e.note]
    parts = [
        f"medians of {args.rounds} round(s); c=1: hey -n {args.requests}; c={args.connections}: wrk {args.seconds:g} s; "
        f"versions: {', '.join(f'{k} {v}' for k, v in run.versions.items())}",
        "",
        table(run, targets),
        "",
        mock_latency(run),
        "added = the target's latency minus the mock's own, same round. Ratios vidgate/peer:",
        "latency, CPU, RSS > 1 = vidgate costs more; req/s > 1 = vidgate serves more. CPU per job: vidgate's",
        "create burst plus its background submit/poll/copy per job; the peers' CPU per create request (a",
        "passthrough has no job to drive). End to end adds polls at 1 s, a webhook, and jobs that take time.",
        "",
        f"load average (1/5/15 min) at start {run.loadavg[0]}, end {run.loadavg[-1]}; per round {' | '.join(run.loadavg)}",
        "machine speed (per round, then at the end): " + " | ".join(run.speed),
        "foreign CPU (other processes on the machine, cores, median over phases): " + ", ".join(f"{t} {fmt(v)}" for t, v in foreign.items()),
        "",
        rounds_detail(run, targets),
    ]
    if errors or notes:
        parts += ["", *(f"WARNING: {e}" for e in errors + notes)]
    return "\n".join(parts)


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1]
    )
    parser.add_argument("--quick", action="store_true", help="1 round, 200 requests at c=1, 5 s at c=32, 100 end-to-end jobs (under 3 minutes once installed)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the tables show medians over them (default 3)")
    parser.add_argument("--targets", default=",".join(ALL_TARGETS), help=f"comma-separated, from {','.join(ALL_TARGETS)} (direct is always measured)")
    parser.add_argument("--requests", type=int, default=500, help="requests per c=1 phase (hey -n; default 500)")
    # 20 s as in the reference harness (shared/peer-bench, --dur 20): the submits row divides by
    # phase + drain, and the drain holds a fixed second (the first poll), 1/11 of a 10 s phase.
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each c=32 phase (wrk -d; default 20)")
    parser.add_argument("--connections", type=int, default=32, help="connections of the throughput phase (default 32)")
    parser.add_argument("--warmup", type=int, default=100, help="warm-up requests before each target's route (default 100)")
    parser.add_argument("--e2e-jobs", type=int, default=300, help="vidgate end-to-end jobs per round; 0 skips (default 300)")
    parser.add_argument("--e2e-job-seconds", type=float, default=3.0, help="how long an end-to-end job runs upstream (default 3)")
    parser.add_argument("--drain-limit", type=float, default=120.0, help="most seconds to wait for vidgate's background work after a burst (default 120)")
    parser.add_argument("--phase-limit", type=float, default=180.0, help="most seconds for one hey run (default 180)")
    parser.add_argument("--calm-cores", type=float, default=0.3, help="before a phase, wait while other processes use more cores than this (default 0.3)")
    parser.add_argument("--calm-wait", type=float, default=3.0, help="most seconds of that wait (default 3; 0 = never wait)")
    parser.add_argument(
        "--tools",
        type=Path,
        default=Path("~/.cache/vidgate-bench").expanduser(),
        help="where LiteLLM and Portkey are installed (default ~/.cache/vidgate-bench)",
    )
    parser.add_argument("--scratch", type=Path, default=None, help="folder for logs, databases and results (default: a new temporary folder)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.requests, args.seconds, args.warmup, args.e2e_jobs, args.calm_wait = 1, 200, 5.0, 50, 100, 3.0
    targets = [t for t in args.targets.split(",") if t]
    unknown = set(targets) - set(ALL_TARGETS)
    args.e2e_jobs = -(-args.e2e_jobs // E2E_CONCURRENCY) * E2E_CONCURRENCY
    if unknown or args.rounds < 1 or args.requests < 1:
        parser.error(f"unknown targets {sorted(unknown)}" if unknown else "need --rounds >= 1 and --requests >= 1")
    args.targets = ["direct", *[t for t in ALL_TARGETS if t in targets and t != "direct"]]
    return args


def start_targets(procs: Processes, args: argparse.Namespace, mock: Mock, scratch: Path, run: Run) -> list[Target]:
    targets = [Target("direct", mock.url, {"Authorization": f"Bearer {UPSTREAM_SECRET}"}, mock.proc.pid)]
    if "portkey" in args.targets:
        pk = start_portkey(procs, args.tools, upstream=mock.url)
        targets.append(Target("portkey", pk.url, pk.headers, pk.proc.pid, pk.version))
    if "litellm" in args.targets:
        ll = start_litellm(procs, args.tools, upstream=mock.url)
        targets.append(Target("litellm", ll.url, ll.headers, ll.proc.pid, ll.version))
    if "vidgate" in args.targets:
        data = scratch / "vidgate"
        vg = start_vidgate(procs, VidgateConfig(upstream=mock.url, store_url=f"sqlite:///{data / 'vidgate.db'}", data=data))
        targets.append(Target("vidgate", vg.url, vg.headers, vg.proc.pid, "this checkout"))
    for t in targets:
        prepare(t, args, mock)
        run.versions[t.name] = t.version or "-"
    return targets


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="vidgate-peers-"))
    scratch.mkdir(parents=True, exist_ok=True)
    run = Run()
    started = time.monotonic()
    try:
        require_tools("hey", "wrk", *(["node", "npm"] if "portkey" in args.targets else []))
        with Processes(scratch / "logs") as procs:
            mock = start_mock(procs, job_seconds=0.0)
            print(f"peers bench: targets {','.join(args.targets)}, scratch {scratch}", file=sys.stderr, flush=True)
            targets = start_targets(procs, args, mock, scratch, run)
            pids = [p.pid for p in procs.started]
            run_rounds(targets, args, mock, pids, scratch, run)
            for proc in [p for p in procs.started if p.name in ("portkey", "litellm", "vidgate")]:
                procs.stop(proc)  # the end-to-end phase runs alone
            if "vidgate" in args.targets and args.e2e_jobs > 0:
                end_to_end(procs, args, scratch, run)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted; every process this run started was stopped. Logs: {scratch / 'logs'}", file=sys.stderr)
        return 130
    (scratch / "peers-results.json").write_text(json.dumps(asdict(run), indent=1))
    print(report(run, args.targets, args))
    print(f"\ntook {time.monotonic() - started:.0f} s; logs and raw results in {scratch}")
    return 1 if any(p.errors for p in run.phases) else 0


if __name__ == "__main__":
    raise SystemExit(main())
