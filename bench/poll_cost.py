"""CPU per upstream poll: what one `UpstreamClient.poll` costs vidgate's event loop, by HTTP transport.

    uv run python bench/poll_cost.py [--polls 6000] [--concurrency 64] [--rounds 3]

At 10,000 jobs in flight the polls are most of what a vidgate process does, so their
CPU decides how many jobs a core can carry. This runs the bench's raw-asyncio mock
upstream (bench/mock_upstream.py, ~0.02 ms a request) in a child process and, in this
process, polls it through the PowerTokens adapter and `providers.client.UpstreamClient`
exactly as the engine does, with each transport in turn (rotated every round), on the
default asyncio loop and on uvloop: httpx's own pool (httpcore), vidgate's transport
(`gateway.h1_transport`) with every call going through httpx requests and streams, and the
same transport with API calls on its whole-answer lane (what vidgate runs). It prints CPU ms per poll (this process's CPU time
over the polls) and polls per second, medians over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.servers import free_port  # noqa: E402
from gateway.h1_transport import H1Transport  # noqa: E402
from providers.base import GenerationRequest, SubmitContext, TextInput  # noqa: E402
from providers.client import UpstreamClient  # noqa: E402
from providers.powertokens.adapter import PowerTokensAdapter  # noqa: E402

MODEL = "dreamina-seedance-2-0-260128"
try:
    import uvloop  # noqa: F401

    LOOPS = ("asyncio", "uvloop")
except ImportError:  # measured on the default loop only
    LOOPS = ("asyncio",)


class HttpxLane(httpx.AsyncBaseTransport):
    """H1Transport without its whole-answer lane: every call builds httpx requests and streams."""

    def __init__(self, inner: H1Transport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def transports(pool: int) -> dict[str, Callable[[], httpx.AsyncBaseTransport]]:
    return {
        "httpcore": lambda: httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool)),
        "h1-httpx": lambda: HttpxLane(H1Transport(max_connections=pool)),
        "h1": lambda: H1Transport(max_connections=pool),
    }


async def measure(base: str, transport: httpx.AsyncBaseTransport, *, jobs: int, polls: int, concurrency: int, pool: int) -> tuple[float, float]:
    async with httpx.AsyncClient(base_url=base, transport=transport, timeout=30) as http:
        client = UpstreamClient(PowerTokensAdapter(), http, "bench", max_in_flight=pool)
        request = GenerationRequest(model="seedance-2.0", input=TextInput(prompt="a boat"))
        ids = [(await client.submit(request, MODEL, {}, SubmitContext())).upstream_id for _ in range(jobs)]
        gate = asyncio.Semaphore(concurrency)

        async def poll(i: int) -> None:
            async with gate:
                await client.poll(ids[i % jobs])

        await asyncio.gather(*(poll(i) for i in range(min(500, polls))))  # warm the pool
        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(poll(i) for i in range(polls)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return cpu / polls * 1000, polls / wall


def run_on(loop: str, coro: Coroutine[Any, Any, tuple[float, float]]) -> tuple[float, float]:
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--polls", type=int, default=6000, help="polls measured per transport and round")
    parser.add_argument("--concurrency", type=int, default=64, help="polls in flight at once (the engine's lanes)")
    parser.add_argument("--pool", type=int, default=32, help="connections to the upstream (max_connections)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    port = free_port()
    mock = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "mock_upstream.py"), "--port", str(port), "--job-seconds", "1000000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.0)
        base = f"http://127.0.0.1:{port}"
        results: dict[tuple[str, str], list[tuple[float, float]]] = {}
        names = list(transports(args.pool))
        for round_no in range(args.rounds):
            order = names[round_no % len(names) :] + names[: round_no % len(names)]
            for loop in LOOPS:
                for name in order:
                    make = transports(args.pool)[name]
                    results.setdefault((loop, name), []).append(
                        run_on(loop, measure(base, make(), jobs=200, polls=args.polls, concurrency=args.concurrency, pool=args.pool))
                    )
        print(f"{'loop':8} {'transport':10} {'cpu ms/poll':>12} {'polls/s':>9}   (medians of {args.rounds} rounds, {args.polls} polls each)")
        for (loop, name), runs in results.items():
            cpu = statistics.median(r[0] for r in runs)
            rate = statistics.median(r[1] for r in runs)
            print(f"{loop:8} {name:10} {cpu:12.3f} {rate:9.0f}")
    finally:
        mock.terminate()
        mock.wait(timeout=10)


if __name__ == "__main__":
    main()
