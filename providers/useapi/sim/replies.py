"""`replyUrl` callbacks of the useapi.net Dreamina simulator.

The doc: "Receives POST requests with the job record on submission and on
completion/failure". One POST of the `created` record at submit, one of the
terminal record when the job ends; no retries, no signature (both undocumented).
Deliveries for one job are chained so they arrive in order. A job's end is noticed
by a timer (real clock), by a poll that sees it, or by a cancel.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

import httpx
import msgspec

from providers.useapi.sim.state import Job, ReplyAttempt, SimState, iso

_encode = msgspec.json.Encoder().encode


class Replier:
    def __init__(self, state: SimState, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.state = state
        self.transport = transport
        self._tasks: set[asyncio.Task[None]] = set()
        self._last: dict[str, asyncio.Task[None]] = {}
        self._client: httpx.AsyncClient | None = None  # one for the replier's life: a client per
        # callback cost ~20 ms of CPU each (TLS context, pool) and showed up in benchmarks

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(transport=self.transport, timeout=10.0)
        return self._client

    def submitted(self, job: Job) -> None:
        if not job.reply_url:
            return
        self._enqueue(job)
        if job.outcome != "hang":
            self._spawn(self._timer(job))

    def observe(self, job: Job) -> None:
        """Send the terminal callback once, the first time the job is seen ended."""
        if job.reply_url and not job.terminal_notified and job.status(self.state.clock()) != "created":
            job.terminal_notified = True
            self._enqueue(job)

    async def _timer(self, job: Job) -> None:
        await asyncio.sleep(max(0.0, job.created_at + job.job_seconds - self.state.clock()) + 0.01)
        self.observe(job)

    def _enqueue(self, job: Job) -> None:
        record = self.state.record(job, job.base_url)
        previous = self._last.get(job.jobid)
        self._last[job.jobid] = self._spawn(self._deliver(previous, job, record))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _deliver(self, previous: asyncio.Task[None] | None, job: Job, record: dict[str, object]) -> None:
        if previous is not None:
            with contextlib.suppress(Exception):
                await previous
        assert job.reply_url is not None
        attempt = ReplyAttempt(jobid=job.jobid, url=job.reply_url, job_status=str(record["status"]), sent=iso(self.state.clock()))
        try:
            response = await self._http().post(job.reply_url, content=_encode(record), headers={"Content-Type": "application/json"})
            attempt.http_status = response.status_code
        except httpx.HTTPError as exc:  # delivery failures are recorded, never retried
            attempt.error = f"{type(exc).__name__}: {exc}"
        self.state.replies.append(attempt)

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self._last.clear()

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        self.cancel_all()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
