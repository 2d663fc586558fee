"""Outgoing webhooks: Standard Webhooks signing and durable, retried delivery.

A delivery is one event for one URL. Its `webhook-id` (`msg_…`) is fixed when
the event is enqueued and stays the same across retries, so receivers can
deduplicate; each attempt is signed afresh with the current timestamp, exactly
as `openai`'s `client.webhooks.unwrap()` / `verify_signature` expect.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import random
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import httpx
import msgspec
import structlog

from gateway.jobs.model import WebhookDelivery
from gateway.jobs.store import Store
from gateway.urlguard import UrlGuard, UrlNotAllowed

log = structlog.get_logger("vidgate.webhooks")

EventType = Literal["video.completed", "video.failed", "video.cancelled"]
EVENT_TYPES: frozenset[str] = frozenset({"video.completed", "video.failed", "video.cancelled"})
USER_AGENT = "vidgate-webhooks/1"
SECRET_PREFIX = "whsec_"

_ERROR_TEXT_LIMIT = 500


# ---------------------------------------------------------------------------
# Signing
# ---------------------------------------------------------------------------


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _secret_key(secret: str) -> bytes:
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except ValueError:
            raise ValueError("webhook secret after 'whsec_' is not valid base64") from None
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,<base64 HMAC-SHA256>` over `id.timestamp.body`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


# ---------------------------------------------------------------------------
# Event envelope
# ---------------------------------------------------------------------------


class _Event(msgspec.Struct):
    id: str
    object: str
    created_at: int
    type: str
    data: Any


_encoder = msgspec.json.Encoder()


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


def event_payload(
    event_id: str, event_type: str, created_at: float, data: bytes | msgspec.Raw | msgspec.Struct
) -> bytes:
    """`{"id":"evt_…","object":"event","created_at":…,"type":…,"data":<video object>}`.

    `data` is the video object: a Struct, or already-encoded JSON (bytes or `msgspec.Raw`).
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    body = msgspec.Raw(data) if isinstance(data, bytes | bytearray) else data
    return _encoder.encode(_Event(id=event_id, object="event", created_at=int(created_at), type=event_type, data=body))


# ---------------------------------------------------------------------------
# Delivery
# ---------------------------------------------------------------------------


class WebhookDispatcher:
    """Records deliveries in the store and sends the due ones.

    `schedule[n]` is the delay (seconds) after the (n+1)-th failed attempt; the
    last entry repeats if `max_attempts` outruns it. Each delay gets up to
    `jitter` (a fraction) added so that retries of many events spread out.
    """

    def __init__(
        self,
        store: Store,
        http: httpx.AsyncClient,
        *,
        secret: str,
        schedule: Sequence[float],
        max_attempts: int,
        guard: UrlGuard,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
        jitter: float = 0.1,
        rand: Callable[[], float] = random.random,
        concurrency: int = 8,
        id_factory: Callable[[], str] | None = None,
    ) -> None:
        if not secret:
            raise ValueError("a webhook signing secret is required")
        _secret_key(secret)  # fail at start-up, not at the first delivery
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if max_attempts > 1 and not schedule:
            raise ValueError("a retry schedule is required when max_attempts > 1")
        self._store = store
        self._http = http
        self._secret = secret
        self._schedule = [float(s) for s in schedule]
        self._max_attempts = max_attempts
        self._guard = guard
        self._clock = clock
        self._timeout = httpx.Timeout(timeout)
        self._jitter = jitter
        self._rand = rand
        self._limit = asyncio.Semaphore(concurrency)
        self._new_id = id_factory or (lambda: "msg_" + secrets.token_hex(12))
        self._wake = asyncio.Event()

    def __repr__(self) -> str:  # never show the secret
        return f"WebhookDispatcher(max_attempts={self._max_attempts}, schedule={self._schedule})"

    async def enqueue(self, job_id: str, tenant: str, url: str, event_type: str, payload: bytes) -> WebhookDelivery:
        """Record one event for delivery as soon as the loop runs."""
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown webhook event type {event_type!r}")
        now = self._clock()
        delivery = WebhookDelivery(
            id=self._new_id(),
            job_id=job_id,
            tenant=tenant,
            url=url,
            event_type=event_type,
            payload=payload,
            created_at=now,
            next_attempt_at=now,
        )
        await self._store.add_delivery(delivery)
        self._wake.set()
        return delivery

    async def run_due(self) -> int:
        """Attempt every delivery that is due, once each; returns how many were tried."""
        due = await self._store.due_deliveries(self._clock())
        if due:
            await asyncio.gather(*(self._attempt_limited(d) for d in due))
        return len(due)

    async def run(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        """Deliver until `stop` is set; wakes early when something is enqueued."""
        while not stop.is_set():
            try:
                await self.run_due()
            except Exception:  # the loop must outlive any one bad pass
                log.exception("webhook.dispatch_error")
            await self._sleep(stop, interval)

    async def _sleep(self, stop: asyncio.Event, interval: float) -> None:
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        self._wake.clear()

    async def _attempt_limited(self, delivery: WebhookDelivery) -> WebhookDelivery:
        async with self._limit:
            with structlog.contextvars.bound_contextvars(job_id=delivery.job_id, delivery_id=delivery.id):
                return await self.attempt(delivery)

    async def attempt(self, delivery: WebhookDelivery) -> WebhookDelivery:
        """One delivery attempt; records its outcome in the store and returns it."""
        attempt_no = delivery.attempts + 1
        try:
            status = await self._post(delivery)
        except UrlNotAllowed as exc:
            if not exc.transient:
                return await self._failed(delivery, attempt_no, status=None, error=exc.message, final=True)
            return await self._failed(delivery, attempt_no, status=None, error=exc.message)
        except httpx.TimeoutException:
            return await self._failed(delivery, attempt_no, status=None, error="timed out")
        except httpx.HTTPError as exc:
            return await self._failed(delivery, attempt_no, status=None, error=_transport_error(exc))
        if 200 <= status < 300:
            done = msgspec.structs.replace(
                delivery,
                attempts=attempt_no,
                status="delivered",
                next_attempt_at=None,
                last_status_code=status,
                last_error=None,
            )
            await self._store.update_delivery(done)
            log.info(
                "webhook.delivered",
                event_type=delivery.event_type,
                host=_host(delivery.url),
                attempt=attempt_no,
                status_code=status,
            )
            return done
        return await self._failed(delivery, attempt_no, status=status, error=f"HTTP {status}")

    async def _post(self, delivery: WebhookDelivery) -> int:
        timestamp = int(self._clock())
        headers = {
            "webhook-id": delivery.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._secret, delivery.id, timestamp, delivery.payload),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }
        response = await self._guard.open(
            self._http,
            "POST",
            delivery.url,
            field="webhook_url",
            follow_redirects=False,
            content=delivery.payload,
            headers=headers,
            timeout=self._timeout,
        )
        await response.aclose()  # the body is never read: a receiver can't make us buffer it
        return response.status_code

    async def _failed(
        self, delivery: WebhookDelivery, attempt_no: int, *, status: int | None, error: str, final: bool = False
    ) -> WebhookDelivery:
        """Record a failed attempt: schedule the next one, or give up after the last
        (or at once, when `final`: a retry could not succeed)."""
        final = final or attempt_no >= self._max_attempts
        delay = None
        if not final:
            delay = self._schedule[min(attempt_no - 1, len(self._schedule) - 1)]
            delay += delay * self._jitter * self._rand()
        updated = msgspec.structs.replace(
            delivery,
            attempts=attempt_no,
            status="failed" if final else "pending",
            next_attempt_at=None if delay is None else self._clock() + delay,
            last_status_code=status,
            last_error=error,
        )
        await self._store.update_delivery(updated)
        log.warning(
            "webhook.delivery_failed",
            event_type=delivery.event_type,
            host=_host(delivery.url),
            attempt=attempt_no,
            status_code=status,
            error=error,
            final=final,
            **({} if delay is None else {"retry_in": round(delay, 3)}),
        )
        return updated


def _transport_error(exc: httpx.HTTPError) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:_ERROR_TEXT_LIMIT]


def _host(url: str) -> str | None:
    """The host only: a webhook URL's path or query may carry the receiver's token."""
    try:
        return httpx.URL(url).host or None
    except (httpx.InvalidURL, TypeError, ValueError):
        return None
