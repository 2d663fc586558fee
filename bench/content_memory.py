"""Does a 500 MB video go through vidgate with flat memory? RSS while copying and serving it.

    uv run python bench/content_memory.py                 # 500 MB, ~1 minute
    uv run python bench/content_memory.py --mb 100 --keep-scratch

Run by hand, never in CI; loopback only; every wait is bounded. What runs:

  upstream  this script with --upstream: PowerTokens' /v1/videos (bench/mock_upstream.py's
            answers), whose content is a --mb MB MP4 (an `ftyp` box, then zeros: a sparse
            file) streamed in 1 MiB writes
  vidgate   `vidgate serve`, the upstream as a powertokens-type provider (bench/servers.py)

Phases, each measuring vidgate's RSS (its process tree, sampled every 20 ms) against its
RSS just before the phase (the max of 1 s of samples while idle):

  copy         create one job; the upstream completes it at once; vidgate streams the
               video into its output copy ([outputs] keep, the default)
  content      GET /v1/videos/{id}/content, read as fast as the client can (1 MiB reads)
  range        the same with `Range: bytes=<a fifth>-` (206), as the console's player asks
  slow reader  the first fifth at 25 MB/s, then the client hangs up: the server must stop
               reading the file when the socket's buffer is full, not queue the rest
  proxied      a second vidgate with [outputs] keep = false: /content streams the
               upstream's bytes through (no copy)

The scratch folder holds the sparse source, vidgate's 500 MB copy and the logs; it is
removed at the end unless --keep-scratch (the copy is removed either way).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import shutil
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from procs import BenchError, Processes, RssPeak, check_loopback_only, loadavg, wait_http
from servers import CREATE_BODY, KEY, VidgateConfig, free_port, vidgate_argv

T = TypeVar("T")
MIB = 1024 * 1024
FTYP = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"  # what vidgate's content check wants first


# ---------------------------------------------------------------------------
# The upstream (its own process: `--upstream PORT FILE`)
# ---------------------------------------------------------------------------


def run_upstream(port: int, source: Path) -> None:
    from mock_upstream import Upstream, read_body

    upstream = Upstream(job_seconds=0.0, progress=False)
    size = source.stat().st_size

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, sep, v in (line.partition(":") for line in lines[1:]) if sep}
                await read_body(reader, headers)
                if method == "GET" and path.endswith("/content"):
                    writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: {size}\r\n\r\n".encode())
                    with source.open("rb") as fh:
                        while chunk := fh.read(MIB):
                            writer.write(chunk)
                            await writer.drain()  # at the reader's pace
                    continue
                status, content_type, payload = upstream.route(method, path)
                writer.write(f"HTTP/1.1 {status} OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n\r\n".encode() + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        print(f"upstream on http://127.0.0.1:{port}, content {size} bytes", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------


def idle_rss_kib(pid: int, seconds: float = 1.0) -> int:
    with RssPeak(pid, every=0.02) as trace:
        time.sleep(seconds)
    return trace.peak_kib


@dataclass
class Phase:
    name: str
    bytes: int
    seconds: float
    before_kib: int
    peak_kib: int

    @property
    def added_mib(self) -> float:
        return (self.peak_kib - self.before_kib) / 1024

    def line(self) -> str:
        rate = self.bytes / MIB / self.seconds if self.seconds > 0 else 0.0
        return (
            f"  {self.name:<12} {self.bytes / 1e6:8.1f} MB in {self.seconds:6.2f} s ({rate:7.1f} MiB/s)   "
            f"RSS before {self.before_kib / 1024:6.1f} MiB, peak {self.peak_kib / 1024:6.1f} MiB, added {self.added_mib:+6.1f} MiB"
        )


def download(url: str, *, headers: dict[str, str], limit_bytes: int | None = None, rate: float | None = None, timeout: float = 120.0) -> tuple[int, int]:
    """GET `url`, reading 1 MiB at a time (at most `rate` bytes/s); hang up after
    `limit_bytes`. Returns (status, bytes read)."""
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    path = "/" + url.split("//", 1)[1].split("/", 1)[1]
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        got, started = 0, time.monotonic()
        deadline = started + timeout
        while chunk := response.read(MIB):
            got += len(chunk)
            if limit_bytes is not None and got >= limit_bytes:
                break
            if rate is not None:
                ahead = got / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            if time.monotonic() > deadline:
                raise BenchError(f"{url}: still downloading after {timeout:g} s ({got} bytes)")
        return response.status, got
    finally:
        conn.close()


def measured(name: str, pid: int, action: Callable[[], T]) -> tuple[Phase, T]:
    before = idle_rss_kib(pid)
    started = time.monotonic()
    with RssPeak(pid, every=0.02) as trace:
        result = action()
    seconds = time.monotonic() - started
    got = result[1] if isinstance(result, tuple) else 0
    return Phase(name, got, seconds, before, trace.peak_kib), result


def api(base: str, method: str, path: str, body: str | None = None) -> dict[str, object]:
    request = urllib.request.Request(
        base + path, data=body.encode() if body else None, method=method, headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def create_and_wait(base: str, timeout: float) -> str:
    video_id = str(api(base, "POST", "/v1/videos", CREATE_BODY)["id"])
    deadline = time.monotonic() + timeout
    while True:
        video = api(base, "GET", f"/v1/videos/{video_id}")
        if video["status"] == "completed":
            return video_id
        if video["status"] == "failed" or time.monotonic() > deadline:
            raise BenchError(f"the job ended {video['status']!r} (or took over {timeout:g} s): {video.get('error')}")
        time.sleep(0.1)


def start_vidgate(procs: Processes, scratch: Path, upstream: str, name: str, *, keep: bool) -> tuple[str, int]:
    data = scratch / name
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = VidgateConfig(upstream=upstream, store_url=f"sqlite:///{data / 'vidgate.db'}", data=data, poll_min=0.2, poll_interval=0.2)
    toml = config.toml(port)
    if not keep:
        toml = toml.replace("[outputs]\n", "[outputs]\nkeep = false\n", 1)
    (data / "vidgate.toml").write_text(toml)
    proc = procs.start(name, vidgate_argv(data / "vidgate.toml"), cwd=data)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/healthz", proc=proc)
    check_loopback_only(port, name)
    return base, proc.pid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1]
    )
    parser.add_argument("--mb", type=int, default=500, help="size of the video in MB (10^6 bytes; default 500)")
    parser.add_argument("--timeout", type=float, default=180.0, help="most seconds for any one phase (default 180)")
    parser.add_argument("--keep-scratch", action="store_true", help="keep the scratch folder's logs (vidgate's copy is removed anyway)")
    parser.add_argument("--upstream", nargs=2, metavar=("PORT", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.upstream:
        run_upstream(int(args.upstream[0]), Path(args.upstream[1]))
        return 0

    size = args.mb * 1_000_000
    scratch = Path(tempfile.mkdtemp(prefix="vidgate-content-memory-"))
    free = shutil.disk_usage(scratch).free
    if free < size * 1.2 + 100 * MIB:
        raise BenchError(f"{scratch}: {free / 1e9:.1f} GB free, need {size * 1.2 / 1e9:.1f} GB for vidgate's copy")
    phases: list[Phase] = []
    print(f"content memory bench: {args.mb} MB, scratch {scratch}, loadavg {loadavg()}", file=sys.stderr, flush=True)
    try:
        source = scratch / "source.mp4"
        with source.open("wb") as fh:
            fh.write(FTYP)
            fh.truncate(size)  # the rest is a hole: no disk used, reads as zeros
        with Processes(scratch / "logs") as procs:
            up_port = free_port()
            up = procs.start("upstream", [sys.executable, __file__, "--upstream", str(up_port), str(source)])
            upstream = f"http://127.0.0.1:{up_port}"
            wait_http(upstream + "/v1/videos/none", proc=up)
            check_loopback_only(up_port, "upstream")
            auth = {"Authorization": f"Bearer {KEY}"}

            base, pid = start_vidgate(procs, scratch, upstream, "vidgate", keep=True)
            phase, video_id = measured("copy", pid, lambda: create_and_wait(base, args.timeout))
            phase.bytes = size
            phases.append(phase)
            url = f"{base}/v1/videos/{video_id}/content"
            for name, headers, limit, rate, expect in (
                ("content", auth, None, None, (200, size)),
                ("range", {**auth, "Range": f"bytes={size // 5}-"}, None, None, (206, size - size // 5)),
                ("slow reader", auth, size // 5, 25e6, (200, size // 5)),  # hangs up after a fifth
            ):
                phase, result = measured(
                    name, pid, lambda h=headers, lim=limit, r=rate: download(url, headers=h, limit_bytes=lim, rate=r, timeout=args.timeout)
                )
                status, got = result
                if status != expect[0] or got < expect[1] or (limit is None and got != expect[1]):
                    raise BenchError(f"{name}: got (status, bytes) {result}, expected {expect}")
                phases.append(phase)
            procs.stop(procs.started[-1])
            shutil.rmtree(scratch / "vidgate" / "outputs", ignore_errors=True)

            base, pid = start_vidgate(procs, scratch, upstream, "vidgate-proxied", keep=False)
            video_id = create_and_wait(base, args.timeout)
            phase, result = measured("proxied", pid, lambda: download(f"{base}/v1/videos/{video_id}/content", headers=auth, timeout=args.timeout))
            if result != (200, size):
                raise BenchError(f"proxied: got (status, bytes) {result}, expected (200, {size})")
            phases.append(phase)
    finally:
        shutil.rmtree(scratch / "vidgate" / "outputs", ignore_errors=True)
        source_file = scratch / "source.mp4"
        source_file.unlink(missing_ok=True)
        if not args.keep_scratch:
            shutil.rmtree(scratch, ignore_errors=True)

    print(f"\n{args.mb} MB through vidgate (`vidgate serve`, default stack); RSS of its process tree, sampled every 20 ms; loadavg {loadavg()}")
    for phase in phases:
        print(phase.line())
    worst = max(p.added_mib for p in phases)
    print(f"\nlargest RSS increase: {worst:+.1f} MiB ({'under' if worst < 20 else 'NOT under'} 20 MiB)")
    if args.keep_scratch:
        print(f"scratch (logs): {scratch}")
    return 0 if worst < 20 else 1


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except BenchError as exc:
        print(f"content memory bench: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
