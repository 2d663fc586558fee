"""Server stacks side by side: several `vidgate serve` variants on one mock, in one run.

    uv run python bench/stacks.py                        # h11/asyncio vs httptools/uvloop, 5 rounds
    uv run python bench/stacks.py --variants h11/asyncio,httptools/asyncio,httptools/uvloop
    uv run python bench/stacks.py --variants httptools/uvloop/info,httptools/uvloop/warning

Run by hand, never in CI; loopback only; bounded (rounds x variants x routes x --seconds,
plus each create burst's drain, at most --drain-limit). `bench/peers.py` compares vidgate
with its peers and starts one vidgate; this starts one per variant, all on the same mock
upstream, and runs them in an order rotated every round, so a busy moment of the shared
machine lands on each variant in turn. A variant is `HTTP/LOOP[/LEVEL]`: `vidgate serve
--http HTTP --loop LOOP [--log-level LEVEL]` (JSON logs, as peers.py runs it).

Per round, per variant: `status` (wrk -c32 on `GET /v1/videos/{id}` of a finished job),
then `create` (wrk -c32 on `POST /v1/videos`, then the drain: until the mock has served
the output copy of every job submitted). Printed, as medians over rounds: requests/s, and
CPU per request of vidgate's process tree (for create: including the drain, so the
submit, poll and copy each job causes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from loadgen import Request, require_tools, wrk
from procs import BenchError, Processes, check_loopback_only, loadavg, snapshot, usage, wait_calm, wait_http
from servers import CREATE_BODY, KEY, Mock, Vidgate, VidgateConfig, free_port, start_mock, vidgate_argv


@dataclass
class Variant:
    name: str
    vidgate: Vidgate
    status_id: str = ""
    rows: dict[str, list[float]] = field(default_factory=dict)

    def add(self, row: str, value: float) -> None:
        self.rows.setdefault(row, []).append(value)


def start_variant(procs: Processes, spec: str, mock: Mock, scratch: Path) -> Variant:
    http, loop, *level = spec.split("/")
    data = scratch / spec.replace("/", "-")
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = VidgateConfig(upstream=mock.url, store_url=f"sqlite:///{data / 'vidgate.db'}", data=data)
    (data / "vidgate.toml").write_text(config.toml(port))
    argv = [*vidgate_argv(data / "vidgate.toml"), "--http", http, "--loop", loop, *(["--log-level", level[0]] if level else [])]
    proc = procs.start(spec.replace("/", "-"), argv, cwd=data)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/healthz", proc=proc)
    check_loopback_only(port, spec)
    variant = Variant(spec, Vidgate(proc, url))
    variant.status_id = variant.vidgate.create()
    return variant


def drain(mock: Mock, before: dict[str, int], limit: float) -> float:
    """Wait until the mock served an output copy for every job submitted since `before`."""
    start = last_move = time.monotonic()
    last = mock.stats()
    while True:
        now = mock.stats()
        if now["content"] - before["content"] >= now["submit"] - before["submit"]:
            return time.monotonic() - start
        if now != last:
            last, last_move = now, time.monotonic()
        if time.monotonic() - last_move > 5 or time.monotonic() - start > limit:
            raise BenchError(f"vidgate's background work stalled: {now} after {before}")
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1]
    )
    parser.add_argument("--variants", default="h11/asyncio,httptools/uvloop", help="comma-separated HTTP/LOOP[/LEVEL] (default h11/asyncio,httptools/uvloop)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each wrk phase (default 8)")
    parser.add_argument("--routes", default="status,create", help="status, create or both (default both)")
    parser.add_argument("--drain-limit", type=float, default=120.0)
    parser.add_argument("--calm-wait", type=float, default=3.0, help="most seconds to wait for the machine to calm before a phase (default 3)")
    args = parser.parse_args(argv)
    require_tools("wrk")
    specs = [v for v in args.variants.split(",") if v]
    routes = [r for r in args.routes.split(",") if r]
    scratch = Path(tempfile.mkdtemp(prefix="vidgate-stacks-"))
    headers = {"Authorization": f"Bearer {KEY}"}
    print(f"stacks bench: {', '.join(specs)}; scratch {scratch}", file=sys.stderr, flush=True)
    loads = [loadavg()]
    with Processes(scratch / "logs") as procs:
        mock = start_mock(procs, job_seconds=0)
        variants = [start_variant(procs, spec, mock, scratch) for spec in specs]
        pids = [mock.proc.pid, *(v.vidgate.proc.pid for v in variants)]
        for rnd in range(args.rounds):
            order = variants[rnd % len(variants) :] + variants[: rnd % len(variants)]
            print(f"== round {rnd + 1}/{args.rounds}  loadavg {loadavg()}", file=sys.stderr, flush=True)
            for variant in order:
                pid, url = variant.vidgate.proc.pid, variant.vidgate.url
                for route in routes:
                    wait_calm(pids, max_cores=0.3, max_wait=args.calm_wait)
                    request = (
                        Request("POST", f"{url}/v1/videos", headers, CREATE_BODY)
                        if route == "create"
                        else Request("GET", f"{url}/v1/videos/{variant.status_id}", headers)
                    )
                    before, before_mock = snapshot(pids), mock.stats()
                    result = wrk(request, connections=32, seconds=args.seconds, script=scratch / f"{route}.lua")
                    if route == "create":
                        drain(mock, before_mock, args.drain_limit)
                    used = usage(before, snapshot(pids))
                    if result.non2xx or result.socket_errors:
                        raise BenchError(f"{variant.name} {route}: {result.non2xx} non-2xx, {result.socket_errors} socket errors")
                    variant.add(f"{route} c=32 (req/s)", result.ok_rps)
                    variant.add(f"{route} CPU per request (ms)", 1000 * used.cpu[pid] / max(result.ok, 1))
                    variant.add(f"{route} foreign cores", used.foreign_cores)
                    print(
                        f"    {variant.name:<24} {route:6s} {result.ok_rps:7.0f} req/s  {1000 * used.cpu[pid] / max(result.ok, 1):6.3f} ms CPU/req  foreign {used.foreign_cores:.2f}",
                        file=sys.stderr,
                        flush=True,
                    )
        loads.append(loadavg())

    rows = list(variants[0].rows)
    width = max(map(len, rows))
    print(f"\nmedians of {args.rounds} rounds, wrk -c32 {args.seconds:g} s per phase; load average at start {loads[0]}, at end {loads[-1]}")
    print(f"{'':<{width}}  " + "  ".join(f"{v.name:>20}" for v in variants) + "".join(f"  {v.name + ' / first':>26}" for v in variants[1:]))
    for row in rows:
        meds = [statistics.median(v.rows[row]) for v in variants]
        ratios = "".join(f"  {m / meds[0]:>26.2f}" for m in meds[1:]) if meds[0] else ""
        print(f"{row:<{width}}  " + "  ".join(f"{m:>20.3f}" for m in meds) + ratios)
    print("\nper round:")
    for v in variants:
        for row, values in v.rows.items():
            print(f"  {v.name:<24} {row:<{width}} " + " / ".join(f"{x:.3f}" for x in values))
    print(f"scratch: {scratch}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except BenchError as exc:
        print(f"stacks bench: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
