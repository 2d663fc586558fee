"""What does vidgate add on top of talking to the upstream directly?

    uv run python bench/overhead.py [--requests N] [--concurrency 1,32] [--provider useapi|powertokens]

Everything runs on loopback in this one process: two copies of the upstream simulator
(one the bench calls directly, one behind vidgate, so each sees the same number of jobs)
and vidgate itself, each on its own uvicorn thread, and an `httpx.AsyncClient` load loop
on the main thread. For each concurrency level it measures, side by side:

  create    direct: the upstream's own submit        vidgate: POST /v1/videos
  retrieve  direct: the upstream's own job GET       vidgate: GET /v1/videos/{id}
  submitted vidgate only: POST /v1/videos until the upstream simulator has received the
            submit (vidgate answers create before it submits upstream, in the background)

and prints p50/p99 latency and throughput for each path, with the ratios
vidgate/direct for latency (>1 = vidgate slower) and vidgate/direct for throughput
(<1 = vidgate slower). See bench/README.md for how to read them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gateway.app import create_app
from gateway.logging import configure_logging
from gateway.settings import parse_settings
from providers.simkit import free_port, serve_in_thread

KEY = "sk-bench"
JOB_SECONDS = 3600.0  # upstream jobs stay in progress for the whole run
POLL_SECONDS = 600.0  # vidgate's background polling never fires during the run
PER_ACCOUNT = 50  # useapi's maxJobs ceiling (both the simulator and vidgate's config cap it at 50)
PROMPT = "A lighthouse at dawn, waves rolling in"


# ---------------------------------------------------------------------------
# The two upstreams, as the bench and as vidgate see them
# ---------------------------------------------------------------------------


@dataclass
class Upstream:
    """How to submit and fetch a job on one upstream, bypassing vidgate."""

    name: str
    headers: dict[str, str]
    submit_path: str
    body: Callable[[int], dict[str, Any]]  # request number -> JSON body
    job_id: Callable[[dict[str, Any]], str]  # submit response -> upstream id
    get_path: Callable[[str], str]
    submits: Callable[[], int]  # how many submits the simulator accepted so far (reads its state)
    callbacks: Callable[[], int] = lambda: 0  # how many callbacks it has delivered (useapi replyUrl)


def useapi_accounts(n: int) -> list[str]:
    return [f"CA:bench{i}@example.com" for i in range(n)]  # CA: seedance-2.0 is offered there


def make_useapi(app: Any, accounts: list[str]) -> Upstream:
    state = app.state.sim
    cycle = itertools.cycle(accounts)

    def body(_: int) -> dict[str, Any]:
        # what vidgate's adapter sends for a text job, minus the replyUrl a polling client omits;
        # pinning the account (as vidgate does) keeps the simulator's capacity check per account
        return {"prompt": PROMPT, "model": "seedance-2.0", "duration": 5, "ratio": "16:9", "account": next(cycle)}

    return Upstream(
        name="useapi",
        headers={"Authorization": "Bearer user:1-bench"},
        submit_path="/v1/dreamina/videos",
        body=body,
        job_id=lambda r: r["jobid"],
        get_path=lambda jobid: f"/v1/dreamina/videos/{jobid}",
        submits=lambda: sum(1 for s in state.submits if s.status == 200),
        callbacks=lambda: len(state.replies),
    )


def make_powertokens(app: Any) -> Upstream:
    store = app.state.simulator.store
    return Upstream(
        name="powertokens",
        headers={"Authorization": "Bearer pt-bench"},
        submit_path="/v1/videos",
        # what vidgate's adapter sends for a text job
        body=lambda _: {"model": "dreamina-seedance-2-0-260128", "media": [{"type": "text", "text": PROMPT}], "seconds": "5", "ratio": "16:9"},
        job_id=lambda r: r["id"],
        get_path=lambda task_id: f"/v1/videos/{task_id}",
        submits=lambda: sum(1 for s in store.submissions if s["status_code"] == 200),
    )


def simulator_app(provider: str, accounts: list[str], capacity: int) -> Any:
    if provider == "useapi":
        from providers.useapi.sim import SimAccount, SimConfig
        from providers.useapi.sim import create_app as sim_app

        sim_accounts = [SimAccount(account=a, region="CA", max_jobs=PER_ACCOUNT, credits=10**9) for a in accounts]
        return sim_app(SimConfig(job_seconds=JOB_SECONDS, accounts=sim_accounts))
    from providers.powertokens.sim import SimConfig
    from providers.powertokens.sim import create_app as sim_app

    return sim_app(SimConfig(job_seconds=JOB_SECONDS, max_concurrent=capacity))


def vidgate_config(provider: str, sim_url: str, accounts: list[str], capacity: int, port: int, db: Path) -> str:
    if provider == "useapi":
        account_rows = ",\n".join(f'  {{ id = "{a}", region = "CA", max_jobs = {PER_ACCOUNT} }}' for a in accounts)
        upstream = f"""
[providers.useapi]
type = "useapi"
base_url = "{sim_url}/v1/dreamina"
secret = "user:1-bench"
poll_interval_seconds = {POLL_SECONDS}
max_concurrency = 64
accounts = [
{account_rows}
]

[models."seedance-2.0"]
providers = {{ useapi = "seedance-2.0" }}
"""
    else:
        upstream = f"""
[providers.powertokens]
type = "powertokens"
base_url = "{sim_url}"
secret = "pt-bench"
poll_interval_seconds = {POLL_SECONDS}
max_concurrency = {capacity}

[models."seedance-2.0"]
providers = {{ powertokens = "dreamina-seedance-2-0-260128" }}
"""
    return f"""
[server]
host = "127.0.0.1"
port = {port}

[store]
url = "sqlite:///{db}"

[security]
allow_private_urls = true

[jobs]
default_model = "seedance-2.0"
poll_min_seconds = {POLL_SECONDS}
poll_max_seconds = {POLL_SECONDS}

[[keys]]
name = "bench"
tenant = "bench"
key = "{KEY}"
{upstream}"""


# ---------------------------------------------------------------------------
# Load loop
# ---------------------------------------------------------------------------


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds, one per successful request
    errors: dict[str, int] = field(default_factory=dict)
    wall: float = 0.0
    truncated: bool = False  # stopped by the phase time limit before `requests` were done

    @property
    def count(self) -> int:
        return len(self.latencies)

    def pct(self, q: float) -> float:
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    @property
    def rps(self) -> float:
        return self.count / self.wall if self.wall > 0 else math.nan


async def load(
    client: httpx.AsyncClient,
    make: Callable[[int], tuple[str, str, dict[str, Any] | None]],
    *,
    requests: int,
    concurrency: int,
    time_limit: float,
    on_ok: Callable[[httpx.Response], None] | None = None,
) -> Result:
    """Send `requests` requests from `concurrency` workers; `make(i)` gives (method, url, json)."""
    result = Result()
    counter = itertools.count()
    start = time.perf_counter()
    deadline = start + time_limit

    async def worker() -> None:
        while (i := next(counter)) < requests:
            if time.perf_counter() > deadline:
                result.truncated = True
                return
            method, url, body = make(i)
            t0 = time.perf_counter()
            try:
                response = await client.request(method, url, json=body)
            except httpx.HTTPError as exc:
                key = type(exc).__name__
                result.errors[key] = result.errors.get(key, 0) + 1
                continue
            elapsed = time.perf_counter() - t0
            if response.status_code != 200:
                key = f"HTTP {response.status_code}"
                result.errors[key] = result.errors.get(key, 0) + 1
                if sum(result.errors.values()) == 1:
                    print(f"  first error on {method} {url}: {response.status_code} {response.text[:200]}", file=sys.stderr)
                continue
            result.latencies.append(elapsed)
            if on_ok is not None:
                on_ok(response)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.wall = time.perf_counter() - start
    return result


async def wait_submitted(upstream: Upstream, target: int, timeout: float) -> float | None:
    """Seconds (from now) until the simulator behind vidgate has accepted `target` submits."""
    start = time.perf_counter()
    while upstream.submits() < target:
        if time.perf_counter() - start > timeout:
            return None
        await asyncio.sleep(0.005)
    return time.perf_counter() - start


async def settle(upstream: Upstream, timeout: float) -> None:
    """Let vidgate's background work from a create burst finish before the next phase.

    useapi sends one `replyUrl` callback per submit (vidgate re-fetches the job on each);
    measuring the next phase while those run would charge that work to whichever path
    happens to be measured.
    """
    deadline = time.perf_counter() + timeout
    if upstream.callbacks() > 0:  # this upstream calls back
        while upstream.callbacks() < upstream.submits() and time.perf_counter() < deadline:  # noqa: ASYNC110 - counters in another process
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)  # the re-fetch each callback triggers


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------


@dataclass
class Row:
    operation: str
    concurrency: int
    direct: Result | None
    vidgate: Result


async def run(
    direct_url: str, direct: Upstream, behind: Upstream, vidgate_url: str, *, requests: int, levels: list[int], phase_limit: float, warmup: int
) -> list[Row]:
    rows: list[Row] = []
    limits = httpx.Limits(max_connections=max(levels) + 4, max_keepalive_connections=max(levels) + 4)
    vg_headers = {"Authorization": f"Bearer {KEY}"}
    vg_body = {"model": "seedance-2.0", "prompt": PROMPT, "seconds": 5, "ratio": "16:9"}
    direct_ids: list[str] = []
    vidgate_ids: list[str] = []

    async with (
        httpx.AsyncClient(base_url=direct_url, headers=direct.headers, limits=limits, timeout=30) as dc,
        httpx.AsyncClient(base_url=vidgate_url, headers=vg_headers, limits=limits, timeout=30) as vc,
    ):

        def direct_create(i: int) -> tuple[str, str, dict[str, Any]]:
            return "POST", direct.submit_path, direct.body(i)

        def vidgate_create(_: int) -> tuple[str, str, dict[str, Any]]:
            return "POST", "/v1/videos", vg_body

        def keep(ids: list[str], pick: Callable[[dict[str, Any]], str]) -> Callable[[httpx.Response], None]:
            return lambda r: ids.append(pick(r.json()))

        # warm-up: connections, first-request code paths, SQLite pages; a few ids to fetch
        await load(dc, direct_create, requests=warmup, concurrency=1, time_limit=phase_limit, on_ok=keep(direct_ids, direct.job_id))
        await load(vc, vidgate_create, requests=warmup, concurrency=1, time_limit=phase_limit, on_ok=keep(vidgate_ids, lambda v: v["id"]))
        if not direct_ids or not vidgate_ids:
            raise SystemExit("the warm-up creates failed; see the first error above")
        await load(dc, lambda i: ("GET", direct.get_path(direct_ids[i % len(direct_ids)]), None), requests=warmup, concurrency=1, time_limit=phase_limit)
        await load(vc, lambda i: ("GET", f"/v1/videos/{vidgate_ids[i % len(vidgate_ids)]}", None), requests=warmup, concurrency=1, time_limit=phase_limit)
        if await wait_submitted(behind, warmup, timeout=phase_limit) is None:
            raise SystemExit("vidgate did not submit the warm-up jobs upstream; is it configured right?")
        await settle(behind, timeout=phase_limit)

        for level in levels:
            print(f"  concurrency {level}: create ...", file=sys.stderr, flush=True)
            d = await load(dc, direct_create, requests=requests, concurrency=level, time_limit=phase_limit, on_ok=keep(direct_ids, direct.job_id))
            already = behind.submits()
            t0 = time.perf_counter()
            v = await load(vc, vidgate_create, requests=requests, concurrency=level, time_limit=phase_limit, on_ok=keep(vidgate_ids, lambda v: v["id"]))
            rows.append(Row("create", level, d, v))
            # end to end: the same burst, counted until the upstream has every submit
            drained = await wait_submitted(behind, already + v.count, timeout=phase_limit)
            submitted = Result(wall=(time.perf_counter() - t0) if drained is not None else math.nan)
            submitted.latencies = [math.nan] * v.count  # no per-request latency: the submit is asynchronous
            rows.append(Row("create+submit", level, None, submitted))
            await settle(behind, timeout=phase_limit)

            print(f"  concurrency {level}: retrieve ...", file=sys.stderr, flush=True)
            d = await load(
                dc, lambda i: ("GET", direct.get_path(direct_ids[i % len(direct_ids)]), None), requests=requests, concurrency=level, time_limit=phase_limit
            )
            v = await load(
                vc, lambda i: ("GET", f"/v1/videos/{vidgate_ids[i % len(vidgate_ids)]}", None), requests=requests, concurrency=level, time_limit=phase_limit
            )
            rows.append(Row("retrieve", level, d, v))
    return rows


def peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.2f}"


def num(x: float, fmt: str = "{:.0f}") -> str:
    return "-" if math.isnan(x) else fmt.format(x)


def table(rows: list[Row]) -> str:
    head = ["operation", "conc", "direct p50", "p99", "rps", "vidgate p50", "p99", "rps", "p50 x", "p99 x", "rps x"]
    out = [head]
    for row in rows:
        v, d = row.vidgate, row.direct
        cells = [row.operation, str(row.concurrency)]
        if d is None:
            cells += ["-", "-", "-"]
        else:
            cells += [ms(d.pct(0.5)), ms(d.pct(0.99)), num(d.rps)]
        cells += [ms(v.pct(0.5)), ms(v.pct(0.99)), num(v.rps)]
        if d is None:
            cells += ["-", "-", "-"]
        else:
            cells += [
                num(v.pct(0.5) / d.pct(0.5), "{:.2f}"),
                num(v.pct(0.99) / d.pct(0.99), "{:.2f}"),
                num(v.rps / d.rps, "{:.2f}"),
            ]
        out.append(cells)
    widths = [max(len(r[i]) for r in out) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) if i > 0 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=False))) for r in out]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500, help="requests per operation, path and concurrency (default 500)")
    parser.add_argument("--concurrency", default="1,32", help="comma-separated concurrency levels (default 1,32)")
    parser.add_argument("--provider", choices=["useapi", "powertokens"], default="useapi")
    parser.add_argument("--phase-seconds", type=float, default=10.0, help="time limit per measured phase (default 10)")
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    if not levels or min(levels) < 1 or args.requests < 1:
        parser.error("need --requests >= 1 and concurrency levels >= 1")

    configure_logging(level="warning")  # per-request info lines would measure the terminal, not vidgate
    rss_start = peak_rss_mib()

    # every upstream job stays running, so size the capacity for all of them
    jobs = args.warmup + args.requests * len(levels)
    n_accounts = math.ceil(jobs / PER_ACCOUNT) + 1
    accounts = useapi_accounts(n_accounts)
    capacity = n_accounts * PER_ACCOUNT

    started = time.monotonic()
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="vidgate-bench-") as tmp:
        direct_app = simulator_app(args.provider, accounts, capacity)
        # its own state, so each simulator holds the same number of jobs; only this one gets callbacks to send
        behind_app = simulator_app(args.provider, accounts, capacity)
        direct_url = stack.enter_context(serve_in_thread(direct_app))
        behind_url = stack.enter_context(serve_in_thread(behind_app))
        port = free_port()
        settings = parse_settings(vidgate_config(args.provider, behind_url, accounts, capacity, port, Path(tmp) / "vidgate.db"), env={}, source="<bench>")
        vidgate_url = stack.enter_context(serve_in_thread(create_app(settings), port=port))
        if args.provider == "useapi":
            direct, behind = make_useapi(direct_app, accounts), make_useapi(behind_app, accounts)
        else:
            direct, behind = make_powertokens(direct_app), make_powertokens(behind_app)
        rss_ready = peak_rss_mib()

        print(
            f"vidgate overhead bench: provider {args.provider}, {args.requests} requests per phase, "
            f"concurrency {','.join(map(str, levels))}, all on loopback in one process",
            file=sys.stderr,
        )
        rows = asyncio.run(
            run(direct_url, direct, behind, vidgate_url, requests=args.requests, levels=levels, phase_limit=args.phase_seconds, warmup=args.warmup)
        )
        rss_end = peak_rss_mib()
    took = time.monotonic() - started

    print()
    print(table(rows))
    print()
    print("latency in ms; 'x' columns are vidgate / direct: p50 x, p99 x > 1 means vidgate is slower per request,")
    print("rps x < 1 means vidgate serves fewer requests per second. create+submit: vidgate's create burst")
    print("timed until the upstream simulator had accepted every submit (its rps is end-to-end submit throughput).")
    problems = []
    for row in rows:
        for path, res in (("direct", row.direct), ("vidgate", row.vidgate)):
            if res is None:
                continue
            if res.errors:
                problems.append(f"{row.operation} c={row.concurrency} {path}: errors {res.errors}")
            if res.truncated:
                problems.append(f"{row.operation} c={row.concurrency} {path}: stopped at the time limit after {res.count} requests")
            if math.isnan(res.wall):
                problems.append(f"{row.operation} c={row.concurrency} {path}: upstream submits did not all arrive in time")
    print()
    print(
        f"peak RSS (whole process: bench client + 2 simulators + vidgate): {rss_start:.0f} MiB at start, "
        f"{rss_ready:.0f} MiB with servers up, {rss_end:.0f} MiB after the run (+{rss_end - rss_ready:.0f} MiB)"
    )
    print(f"total {took:.1f}s")
    for p in problems:
        print(f"WARNING: {p}")
    return 1 if any("errors" in p for p in problems) else 0


if __name__ == "__main__":
    raise SystemExit(main())
