"""What logging and the request-log middleware cost per request, in one process, no network.

    uv run python bench/request_overhead.py              # ~30 s
    uv run python bench/request_overhead.py --rounds 9

Run by hand, never in CI. It configures logging as `vidgate serve --json-logs` does (JSON
lines, written to a sink that drops them) and times, interleaved over several rounds
(medians printed):

- one `http.request` line at `info` (the whole chain: context, level, timestamp,
  redaction, JSON, the scrub of the rendered line), and one line below the level;
- the middleware around a trivial ASGI app, minus the app alone, at `info` and `warning`;
- `GET /v1/videos/{id}`'s answer: a finished video object through Litestar's `Response`
  (its serializer) and as bytes from one reused `msgspec.json.Encoder`, in a minimal
  Litestar app.

It imports only `gateway.logging`'s public functions and the schema, so the same script
measures an older checkout (`PYTHONPATH=/path/to/old/checkout`).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import io
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import msgspec
import structlog
from litestar import Litestar, Response, get

from gateway.logging import configure_logging, install_request_logging
from gateway.schema import Video

FIELDS = {
    "method": "GET",
    "path": "/v1/videos/video_6a1f0c2d9b8e4f7a",
    "status": 200,
    "duration_ms": 0.532,
    "request_id": "req_0123456789abcdef",
    "route": "/v1/videos/{video_id:str}",
}

VIDEO = msgspec.convert(
    {
        "id": "video_6a1f0c2d9b8e4f7a",
        "model": "seedance-2.0",
        "status": "completed",
        "progress": 100,
        "created_at": 1767225600,
        "completed_at": 1767225690,
        "expires_at": 1767830490,
        "prompt": "A lighthouse at dawn, waves rolling in",
        "seconds": "5",
        "size": "1280x720",
        "error": None,
        "mode": "text",
        "ratio": "16:9",
        "resolution": "720p",
        "provider": "powertokens",
        "upstream": {"id": "video_123", "model": "dreamina-seedance-2-0-260128", "status": "completed"},
        "result": {"video_url": "https://example.com/v.mp4", "thumbnail_url": None, "last_frame_url": None},
        "cost": {"amount": 0.5, "unit": "usd", "usd_estimate": 0.5},
        "attempts": [{"provider": "powertokens", "upstream_id": "video_123", "started_at": 1767225601, "ended_at": 1767225690, "status": "completed"}],
        "routing": {"rule": "default", "candidates": [{"provider": "powertokens", "model_id": "dreamina-seedance-2-0-260128"}]},
        "metadata": {},
    },
    Video,
)


class Sink(io.TextIOBase):
    """Drops what is written: the renderer's cost is measured, not the disk's."""

    def write(self, text: str) -> int:
        return len(text)

    def isatty(self) -> bool:
        return False


def configure(level: str) -> None:
    kwargs: dict[str, Any] = {"json": True, "level": level, "stream": Sink()}
    if "cache_loggers" in inspect.signature(configure_logging).parameters:
        kwargs["cache_loggers"] = True  # as the CLI does, where the option exists
    structlog.reset_defaults()
    configure_logging(**kwargs)


def per_call_us(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def per_request_us(app: Any, scope: dict[str, Any], n: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    async def run() -> float:
        start = time.perf_counter()
        for _ in range(n):
            await app(dict(scope, state={}), receive, send)
        return (time.perf_counter() - start) / n * 1e6

    return asyncio.run(run())


async def trivial(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


ENCODER = msgspec.json.Encoder()


@get("/struct/{video_id:str}", sync_to_thread=False)
def as_struct(video_id: str) -> Response[Video]:
    return Response(VIDEO, headers={"Cache-Control": "no-store"})


@get("/bytes/{video_id:str}", sync_to_thread=False)
def as_bytes(video_id: str) -> Response[bytes]:
    return Response(ENCODER.encode(VIDEO), media_type="application/json", headers={"Cache-Control": "no-store"})


def scope_for(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), (b"authorization", b"Bearer sk-bench"), (b"user-agent", b"hey/0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


class _Wrapped:
    """A plain ASGI app with the request middleware installed as `create_app` installs it."""

    def __init__(self, app: Any) -> None:
        self.asgi_handler = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.asgi_handler(scope, receive, send)


def measure(level: str, n: int) -> dict[str, float]:
    """One round at one level, in a fresh process: loggers bound once stay bound (as in
    `vidgate serve`), so a level can't be changed under them within a process."""
    configure(level)
    log = structlog.get_logger("gateway.http")
    out: dict[str, float] = {}
    if level == "info":
        out["one http.request line at info"] = per_call_us(lambda: log.info("http.request", **FIELDS), n)
        out["one debug line at info (dropped)"] = per_call_us(lambda: log.debug("http.request", **FIELDS), n)
    wrapped = _Wrapped(trivial)
    install_request_logging(wrapped)  # type: ignore[arg-type]
    scope = scope_for("/v1/videos/video_6a1f0c2d9b8e4f7a")
    bare = per_request_us(trivial, scope, n)
    out[f"middleware at {level}: added per request"] = per_request_us(wrapped.asgi_handler, scope, n) - bare
    if level == "warning":
        litestar = Litestar([as_struct, as_bytes], logging_config=None, openapi_config=None)
        out["Litestar GET, video as a Struct (its serializer)"] = per_request_us(litestar, scope_for("/struct/x"), n // 4)
        out["Litestar GET, video as encoder bytes"] = per_request_us(litestar, scope_for("/bytes/x"), n // 4)
        out["encode the video: Litestar's encode_json"] = per_call_us(lambda: _encode_json(VIDEO), n)
        out["encode the video: one reused Encoder"] = per_call_us(lambda: ENCODER.encode(VIDEO), n)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=20_000, help="calls per measurement")
    parser.add_argument("--child", choices=["info", "warning"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.n)))
        return

    results: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for level in ("info", "warning"):
            done = subprocess.run([sys.executable, __file__, "--child", level, "--n", str(args.n)], capture_output=True, text=True, timeout=600, check=True)
            for name, value in json.loads(done.stdout).items():
                results.setdefault(name, []).append(value)

    width = max(map(len, results))
    print(f"median of {args.rounds} rounds, µs per call / request  (min .. max); load average {os.getloadavg()[0]:.2f}")
    for name, values in results.items():
        print(f"  {name:<{width}}  {statistics.median(values):7.2f}   ({min(values):.2f} .. {max(values):.2f})")


def _encode_json(value: object) -> bytes:
    from litestar.serialization import encode_json

    return encode_json(value)


if __name__ == "__main__":
    main()
