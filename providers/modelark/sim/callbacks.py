"""`callback_url` deliveries of the simulator (MODELARK.md §7).

A POST of the task object on every status change to `queued`, `running`, `succeeded`,
`failed` or `expired` (none on cancel, the [UNKNOWN] rule). `Content-Type:
application/json` only: no signature. A `succeeded`/`failed` callback that gets no 2xx
within `timeout` is sent again, 3 more times, after 5, 10 and 20 s of the simulator clock
([UNKNOWN] spacing rule); the others are sent once. Deliveries for one task go out in
order. Retries fall due on the simulator clock and leave when `pump(now)` next runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable

import httpx
import msgspec

RETRIED = frozenset({"succeeded", "failed"})


class Delivery(msgspec.Struct, kw_only=True):
    task_id: str
    url: str
    status: str
    body: bytes
    attempt: int = 1
    due: float = 0.0


class CallbackRecord(msgspec.Struct, kw_only=True):
    """One delivery attempt, for `/_sim/callbacks`."""

    task_id: str
    url: str
    status: str
    attempt: int
    sent_at: float
    http_status: int | None = None
    error: str | None = None


class Callbacks:
    def __init__(
        self,
        clock: Callable[[], float],
        transport: httpx.AsyncBaseTransport | None,
        *,
        timeout: float,
        retry_after: tuple[float, ...],
    ) -> None:
        self.clock = clock
        self.transport = transport
        self.timeout = timeout
        self.retry_after = retry_after
        self.records: list[CallbackRecord] = []
        self._pending: list[Delivery] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._last: dict[str, asyncio.Task[None]] = {}
        self._client: httpx.AsyncClient | None = None

    def enqueue(self, task_id: str, url: str, status: str, body: bytes, now: float) -> None:
        self._pending.append(Delivery(task_id=task_id, url=url, status=status, body=body, due=now))

    def pump(self, now: float) -> None:
        """Start every delivery that is due, each after the previous one of its task."""
        due = [d for d in self._pending if d.due <= now]
        if not due:
            return
        self._pending = [d for d in self._pending if d.due > now]
        for delivery in due:
            previous = self._last.get(delivery.task_id)
            task = asyncio.get_running_loop().create_task(self._send(previous, delivery))
            self._last[delivery.task_id] = task
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._forget, delivery.task_id))

    def _forget(self, task_id: str, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._last.get(task_id) is task:
            del self._last[task_id]

    async def _send(self, previous: asyncio.Task[None] | None, delivery: Delivery) -> None:
        if previous is not None:
            with contextlib.suppress(Exception):
                await previous
        sent_at = self.clock()
        record = CallbackRecord(task_id=delivery.task_id, url=delivery.url, status=delivery.status, attempt=delivery.attempt, sent_at=sent_at)
        try:
            response = await self._http().post(delivery.url, content=delivery.body, headers={"Content-Type": "application/json"})
            record.http_status = response.status_code
            acknowledged = response.is_success
        except httpx.HTTPError as exc:  # includes the acknowledgement timeout
            record.error = f"{type(exc).__name__}: {exc}"
            acknowledged = False
        self.records.append(record)
        retries_done = delivery.attempt - 1
        if not acknowledged and delivery.status in RETRIED and retries_done < len(self.retry_after):
            again = msgspec.structs.replace(delivery, attempt=delivery.attempt + 1, due=sent_at + self.retry_after[retries_done])
            self._pending.append(again)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(transport=self.transport, timeout=self.timeout)
        return self._client

    async def drain(self) -> None:
        """Wait until every started delivery finished (tests; retries wait for `pump`)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def reset(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self._pending.clear()
        self._last.clear()
        self.records.clear()

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        self.reset()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
