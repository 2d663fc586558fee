"""Telling the world a job changed: server-sent-event subscribers in this process, and
the webhook deliveries that announce a job's end (stored in the same write as it)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable

import msgspec

from gateway.jobs.model import Job, WebhookDelivery
from gateway.views import encode_video
from gateway.webhooks import WebhookDispatcher, event_id_for, event_payload
from providers.base import JobStatus

EVENT_TYPES = {JobStatus.COMPLETED: "video.completed", JobStatus.FAILED: "video.failed", JobStatus.CANCELLED: "video.cancelled"}


class EventHub:
    """In-process fan-out of job changes to server-sent-event subscribers."""

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


class JobNotifier:
    """The engine's `Notifier`: deliveries for a job's end, and who to tell after a write."""

    def __init__(self, hub: EventHub, webhooks: WebhookDispatcher, clock: Callable[[], float]) -> None:
        self._hub = hub
        self._webhooks = webhooks
        self._clock = clock

    def deliveries(self, job: Job) -> list[WebhookDelivery]:
        event_type = EVENT_TYPES[job.status]
        now = self._clock()
        payload = event_payload(event_id_for(job.id, event_type), event_type, now, msgspec.Raw(encode_video(job)))
        return self._webhooks.deliveries_for(job, event_type, payload, now)

    def published(self, job: Job, detail: str) -> None:
        self._hub.publish(job)
        if job.status.terminal:  # send now rather than at the dispatcher's next look
            self._webhooks.wake(self._webhooks.urls_for(job, EVENT_TYPES[job.status]))
