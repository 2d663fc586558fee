"""In-process fan-out of job changes to server-sent-event subscribers."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from gateway.jobs.model import Job


class EventHub:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[Job]]] = defaultdict(set)

    def subscribe(self, job_id: str) -> asyncio.Queue[Job]:
        queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=100)
        self._subscribers[job_id].add(queue)
        return queue

    def unsubscribe(self, job_id: str, queue: asyncio.Queue[Job]) -> None:
        subs = self._subscribers.get(job_id)
        if subs is not None:
            subs.discard(queue)
            if not subs:
                del self._subscribers[job_id]

    def publish(self, job: Job) -> None:
        for queue in list(self._subscribers.get(job.id, ())):
            if queue.full():  # a slow reader only needs the latest state
                queue.get_nowait()
            queue.put_nowait(job)
