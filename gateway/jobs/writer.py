"""Group commit: the engine's job writes, many jobs to one store transaction.

Each job's steps are sequential (it waits for its own write before it acts on it),
but thousands of jobs write at once. `JobWriter.write` queues a write and waits; one
flush at a time hands everything queued to `store.update_jobs`, so while a
transaction is in flight the next batch gathers behind it: under load a
transaction carries hundreds of writes, when idle it carries one and adds no delay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

import structlog

from gateway.jobs.model import Job
from gateway.jobs.store import JobWrite

log = structlog.get_logger("vidgate.writer")


class JobWrites(Protocol):
    async def update_jobs(self, writes: Sequence[JobWrite]) -> list[Job | None]: ...


class JobWriter:
    def __init__(self, store: JobWrites, *, max_batch: int = 500) -> None:
        self._store = store
        self._max_batch = max_batch
        self._queue: list[tuple[JobWrite, asyncio.Future[Job | None]]] = []
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # transactions committed, for metrics and tests
        self.writes = 0

    async def write(self, write: JobWrite) -> Job | None:
        """Store the write with the next group; the written job (version + 1), or None if
        its version had moved on. A store failure raises here, for this write only."""
        future: asyncio.Future[Job | None] = asyncio.get_running_loop().create_future()
        self._queue.append((write, future))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush(), name="job-writer")
        return await future

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            try:
                results = await self._store.update_jobs([w for w, _ in batch])
            except Exception as exc:  # each waiter sees the failure; nothing of the batch was stored
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.batches += 1
            self.writes += len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
