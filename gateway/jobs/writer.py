"""Group commit: many callers' writes, one store transaction.

Each job's steps are sequential (it waits for its own write before it acts on it),
and each create request waits for its job to be stored, but thousands of them write
at once. A writer queues a write and waits; one flush at a time hands everything
queued to the store in one call, so while a transaction is in flight the next batch
gathers behind it: under load a transaction carries hundreds of writes, when idle it
carries one and adds no delay.

`JobWriter`: the engine's job writes (`Store.update_jobs`). `CreateWriter`: new jobs
(`Store.create_jobs`), for `VideoService.create`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar

import structlog

from gateway.errors import StoreUnavailable
from gateway.jobs.model import Job
from gateway.jobs.store import JobWrite, Lease

log = structlog.get_logger("vidgate.writer")

W = TypeVar("W")
R = TypeVar("R")


class _GroupCommit(Generic[W, R]):
    """Queue, flush one batch at a time, hand each waiter its own result or error."""

    def __init__(self, *, max_batch: int, name: str) -> None:
        self._max_batch = max_batch
        self._name = name
        self._queue: list[tuple[W, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # transactions committed, for metrics and tests
        self.writes = 0

    async def _submit(self, write: W) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((write, future))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush(), name=self._name)
        return await future

    async def _commit(self, writes: list[W]) -> Sequence[R | Exception]:
        """Store `writes` (the store call); a result or an error per write, in order."""
        raise NotImplementedError

    async def _abandoned(self, writes: list[tuple[W, R]]) -> None:
        """Stored, but nobody waits for the result any more (the waiter was cancelled)."""

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            try:
                results = await self._commit([w for w, _ in batch])
            except Exception as exc:  # each waiter sees the failure; nothing of the batch was stored
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.batches += 1
            self.writes += len(batch)
            abandoned: list[tuple[W, R]] = []
            for (write, future), result in zip(batch, results, strict=True):
                if isinstance(result, Exception):
                    if not future.done():
                        future.set_exception(result)
                elif future.done():
                    abandoned.append((write, result))
                else:
                    future.set_result(result)
            if abandoned:
                try:
                    await self._abandoned(abandoned)
                except Exception:
                    log.exception("writer.abandoned_failed", writer=self._name, writes=len(abandoned))


class JobWrites(Protocol):
    async def update_jobs(self, writes: Sequence[JobWrite]) -> list[Job | None]: ...


class JobWriter(_GroupCommit[JobWrite, Job | None]):
    def __init__(self, store: JobWrites, *, max_batch: int = 500) -> None:
        super().__init__(max_batch=max_batch, name="job-writer")
        self._store = store

    async def write(self, write: JobWrite) -> Job | None:
        """Store the write with the next group; the written job (version + 1), or None if
        its version had moved on. A store failure raises here, for this write only."""
        return await self._submit(write)

    async def _commit(self, writes: list[JobWrite]) -> Sequence[Job | None]:
        return await self._store.update_jobs(writes)


class JobCreates(Protocol):
    async def create_jobs(self, items: Sequence[tuple[Job, Lease | None]]) -> list[Job]: ...
    async def release_leases(self, owner: str, job_ids: Sequence[str]) -> None: ...


class CreateWriter(_GroupCommit[tuple[Job, Lease | None], Job]):
    def __init__(self, store: JobCreates, *, max_batch: int = 500) -> None:
        super().__init__(max_batch=max_batch, name="create-writer")
        self._store = store

    async def create(self, job: Job, lease: Lease | None) -> Job:
        """Insert `job` with the next group (held by `lease.owner`), or get the tenant's job
        already under its idempotency key: `Store.create_job`'s answer."""
        return await self._submit((job, lease))

    async def _commit(self, items: list[tuple[Job, Lease | None]]) -> Sequence[Job | Exception]:
        try:
            return await self._store.create_jobs(items)
        except StoreUnavailable:
            raise  # nothing can be stored now: every waiter hears it at once
        except Exception:
            if len(items) == 1:
                raise
        # One item clashed (a duplicate id or callback token) and the whole transaction failed
        # with it: store them one by one, so that only the culprit fails.
        out: list[Job | Exception] = []
        for item in items:
            try:
                [created] = await self._store.create_jobs([item])
                out.append(created)
            except Exception as exc:
                out.append(exc)
        return out

    async def _abandoned(self, writes: list[tuple[tuple[Job, Lease | None], Job]]) -> None:
        # A job stored for a request that went away before it could hand the job to the engine:
        # release it, so a claim (this process's, most likely) picks it up and drives it.
        mine: dict[str, list[str]] = {}
        for (job, lease), created in writes:
            if lease is not None and created.id == job.id:
                mine.setdefault(lease.owner, []).append(job.id)
        for owner, job_ids in mine.items():
            log.warning("jobs.created_unadopted", jobs=len(job_ids))
            await self._store.release_leases(owner, job_ids)
