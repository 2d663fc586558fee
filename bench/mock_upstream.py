"""A fast mock upstream for the benchmarks: PowerTokens' `/v1/videos` on raw asyncio.

    python bench/mock_upstream.py --port 18080 [--job-seconds 0] [--progress]

It must never be the bottleneck, so there is no framework: one asyncio server reading
HTTP/1.1 with keep-alive, about 0.05 ms of CPU a request. It speaks the subset of
PowerTokens' (and OpenAI's) video API that vidgate's powertokens adapter, LiteLLM's
`openai/` video route and Portkey's passthrough all use:

  POST /v1/videos               a new job `video_<n>`, status `queued`
  GET  /v1/videos/{id}          `in_progress` until the job is --job-seconds old, then `completed`
                                (404 for an id it never issued)
  GET  /v1/videos/{id}/content  a tiny MP4 (an `ftyp` box), which passes vidgate's content check
  POST /hooks                   a webhook receiver: 200, counted
  GET  /__stats                 counters: submit, poll, content, webhook, not_found, other; jobs
  POST /__window                start recording the time of every poll, per job (clears the last window)
  GET  /__polls                 {"start": t0, "now": t, "polls": {id: [t, ...]}} for the current window

Anything before `/v1/` in the path is ignored (Portkey and LiteLLM may add a prefix).
Times are this process's monotonic clock. Binds to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable

MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 1000  # a 24-byte ftyp box, then padding


class Upstream:
    """The mock's whole state: jobs by id, counters, and the current poll window."""

    def __init__(self, job_seconds: float, progress: bool) -> None:
        self.job_seconds = job_seconds
        self.progress = progress  # report progress growing with the job's age (else 0 until completed)
        self.ids = itertools.count(1)
        self.jobs: dict[str, float] = {}  # id -> created at
        self.counts: dict[str, int] = dict.fromkeys(("submit", "poll", "content", "webhook", "not_found", "other"), 0)
        self.window_start: float | None = None
        self.polls: dict[str, list[float]] = {}

    def route(self, method: str, path: str) -> tuple[int, str, bytes]:
        path = path.split("?", 1)[0]
        at = path.find("/v1/")
        sub = path[at + 3 :] if at >= 0 else path
        if sub == "/videos" and method == "POST":
            return self.submit()
        if sub.startswith("/videos/") and method == "GET":
            job_id, _, rest = sub[len("/videos/") :].partition("/")
            return self.content(job_id) if rest == "content" else self.poll(job_id)
        if path == "/hooks" and method == "POST":
            self.counts["webhook"] += 1
            return 200, "application/json", b"{}"
        if path == "/__stats":
            return 200, "application/json", json.dumps({"counts": self.counts, "jobs": len(self.jobs)}).encode()
        if path == "/__window" and method == "POST":
            self.window_start, self.polls = time.monotonic(), {}
            return 200, "application/json", b"{}"
        if path == "/__polls":
            body = {"start": self.window_start, "now": time.monotonic(), "polls": self.polls}
            return 200, "application/json", json.dumps(body).encode()
        self.counts["other"] += 1
        return 404, "application/json", b'{"error":{"message":"mock: no such route","code":"not_found"}}'

    def submit(self) -> tuple[int, str, bytes]:
        self.counts["submit"] += 1
        job_id = f"video_{next(self.ids)}"
        now = time.monotonic()
        self.jobs[job_id] = now
        return 200, "application/json", self.video(job_id, "queued", 0, now)

    def poll(self, job_id: str) -> tuple[int, str, bytes]:
        created = self.jobs.get(job_id)
        if created is None:
            self.counts["not_found"] += 1
            return 404, "application/json", b'{"error":{"message":"no such video","code":"not_found"}}'
        self.counts["poll"] += 1
        now = time.monotonic()
        if self.window_start is not None:
            self.polls.setdefault(job_id, []).append(now)
        age = now - created
        if age >= self.job_seconds:
            return 200, "application/json", self.video(job_id, "completed", 100, created)
        progress = int(100 * age / self.job_seconds) if self.progress else 0
        return 200, "application/json", self.video(job_id, "in_progress", progress, created)

    def content(self, job_id: str) -> tuple[int, str, bytes]:
        if job_id not in self.jobs:
            self.counts["not_found"] += 1
            return 404, "application/json", b'{"error":{"message":"no such video","code":"not_found"}}'
        self.counts["content"] += 1
        return 200, "video/mp4", MP4

    @staticmethod
    def video(job_id: str, status: str, progress: int, created: float) -> bytes:
        # A PowerTokens task object that is also an OpenAI video object (what LiteLLM parses).
        created_at = int(time.time() - (time.monotonic() - created))
        completed = f',"completed_at":{int(time.time())}' if status == "completed" else ""
        return (
            f'{{"id":"{job_id}","task_id":"{job_id}","object":"video","model":"sora-2","status":"{status}",'
            f'"progress":{progress},"created_at":{created_at}{completed},"seconds":"4","size":"720x1280"}}'
        ).encode()


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    length = headers.get("content-length")
    if length is not None:
        return await reader.readexactly(int(length)) if int(length) else b""
    if headers.get("transfer-encoding", "").lower() != "chunked":
        return b""
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def serve_connection(upstream: Upstream) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    reasons = {200: "OK", 404: "Not Found"}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                await read_body(reader, headers)
                status, content_type, payload = upstream.route(method, path)
                close = headers.get("connection", "").lower() == "close"
                writer.write(
                    f"HTTP/1.1 {status} {reasons.get(status, 'OK')}\r\nContent-Type: {content_type}\r\n"
                    f"Content-Length: {len(payload)}\r\nConnection: {'close' if close else 'keep-alive'}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
                if close:
                    return
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    return handle


async def serve(port: int, upstream: Upstream) -> None:
    server = await asyncio.start_server(serve_connection(upstream), "127.0.0.1", port, backlog=4096)
    print(f"mock upstream on http://127.0.0.1:{port} (jobs last {upstream.job_seconds:g} s)", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--job-seconds", type=float, default=0.0, help="a job is completed once this old (0: at its first poll; default 0)")
    parser.add_argument("--progress", action="store_true", help="report progress growing with a job's age (each poll then changes the job)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.port, Upstream(args.job_seconds, args.progress)))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
