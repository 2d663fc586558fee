"""Outgoing webhooks: Standard Webhooks signing and durable, retried delivery.

A delivery is one event for one target: a configured endpoint (`[[webhooks.endpoints]]`,
scoped to a caller key or a tenant) or the job's own `webhook_url`. Deliveries are
built by `WebhookDispatcher.deliveries_for` when a job ends and stored in the same
transaction as the job's terminal status (`Store.update_job(job, deliveries=...)`);
their ids are derived from (job, event, target), so building them twice stores one.

The id is the `webhook-id`: it never changes across retries and redeliveries, so a
receiver can deduplicate. Each attempt is signed afresh (`webhook-timestamp` is the
attempt's time) with every current secret of the target, one `v1,<base64>` each,
which `openai`'s `client.webhooks.unwrap()` accepts if any one matches. Secrets are
looked up when sending, so a rotation in the config applies to pending retries too.

Several processes may share a store: each attempt is made by whoever claimed the
delivery (`Store.claim_deliveries`), and a process that dies mid-attempt leaves it
to be claimed again when the claim's lease lapses (at-least-once).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import random
import secrets
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from typing import Any, Literal

import httpx
import msgspec
import structlog

from gateway.errors import Conflict, NotFound
from gateway.jobs.model import DeliveryAttempt, Job, WebhookDelivery
from gateway.jobs.store import DeliveryInFlight, DeliveryOutcome, Store
from gateway.metrics import NO_METRICS, DeliveryMetrics
from gateway.settings import WebhookEndpointSettings, WebhookSettings
from gateway.urlguard import UrlGuard, UrlNotAllowed, host_of

log = structlog.get_logger("vidgate.webhooks")

EventType = Literal["video.completed", "video.failed", "video.cancelled"]
EVENT_TYPES: frozenset[str] = frozenset({"video.completed", "video.failed", "video.cancelled"})
USER_AGENT = "vidgate-webhooks/1"
SECRET_PREFIX = "whsec_"

_ERROR_TEXT_LIMIT = 500
_KEEP_ANSWER_BYTES = 16 * 1024
_KEEP_ANSWER_SECONDS = 1.0
DEFER_SECONDS = 1.0  # a delivery handed back because its tenant (with `run_due`, or its URL) is at its bound is due again this much later
CLAIM_AHEAD = 8  # `run`: a claim takes up to this many times a receiver's bound (see `run`)
BACKOFF_AFTER = 3  # failures to answer in a row before a receiver backs off
BACKOFF_BASE = 10.0  # its first backoff, doubling with each further failure
BACKOFF_MAX = 600.0


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
    """One signature: `v1,<base64 HMAC-SHA256>` over `id.timestamp.body`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(secrets_: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: one signature per secret, space-separated."""
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets_)


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


def event_id_for(job_id: str, event_type: str) -> str:
    """A deterministic event id: the same job's same event always gets the same `evt_…`."""
    return "evt_" + _digest(job_id, event_type)[:24]


def event_payload(event_id: str, event_type: str, created_at: float, data: bytes | msgspec.Raw | msgspec.Struct) -> bytes:
    """`{"id":"evt_…","object":"event","created_at":…,"type":…,"data":<video object>}`.

    `data` is the video object: a Struct, or already-encoded JSON (bytes or `msgspec.Raw`).
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    body = msgspec.Raw(data) if isinstance(data, bytes | bytearray) else data
    return _encoder.encode(_Event(id=event_id, object="event", created_at=int(created_at), type=event_type, data=body))


def delivery_id_for(job_id: str, event_type: str, target: str) -> str:
    """`msg_` + a hash of (job, event, target): building a job's deliveries twice yields
    the same ids, and the store keeps the first, so a double fire sends once."""
    return "msg_" + _digest(job_id, event_type, target)[:32]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


# ---------------------------------------------------------------------------
# The config, as the dispatcher reads it
# ---------------------------------------------------------------------------


class _Plan:
    """One immutable view of `[webhooks]`; `reconfigure` swaps in a new one whole."""

    def __init__(self, settings: WebhookSettings) -> None:
        if settings.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not settings.schedule_seconds:
            raise ValueError("a retry schedule is required")
        for secret in [*([settings.secret] if settings.secret else []), *(s for e in settings.endpoints for s in e.secrets)]:
            _secret_key(secret)  # fail at start-up / reload, not at the first delivery
        self.default_secret = settings.secret or None
        self.schedule = [float(s) for s in settings.schedule_seconds]
        self.max_attempts = settings.max_attempts
        self.max_age = float(settings.max_age_seconds)
        self.endpoints: dict[str, WebhookEndpointSettings] = {}
        for e in settings.endpoints:
            if e.name in self.endpoints:
                raise ValueError(f"duplicate webhook endpoint name {e.name!r}")
            self.endpoints[e.name] = e

    def matching(self, key_name: str, tenant: str) -> Iterable[WebhookEndpointSettings]:
        """Endpoints that receive this caller's events, in config order."""
        return (e for e in self.endpoints.values() if e.key == key_name or e.tenant == tenant)

    def job_url_secrets(self, key_name: str | None, tenant: str) -> list[str]:
        """What signs a job's own `webhook_url`: the caller key's endpoint, else the
        tenant's, else `[webhooks] secret` (whether the endpoint is enabled or not: its
        secrets are the receiver's, `enabled` only concerns its URL)."""
        scoped = [e for e in self.endpoints.values() if key_name is not None and e.key == key_name]
        scoped = scoped or [e for e in self.endpoints.values() if e.tenant == tenant]
        if scoped:
            return list(scoped[0].secrets)
        return [self.default_secret] if self.default_secret else []


# ---------------------------------------------------------------------------
# Delivery
# ---------------------------------------------------------------------------


class WebhookDispatcher:
    """Builds deliveries for finished jobs and sends the due ones.

    Retries: `schedule_seconds[n]` is the delay after the (n+1)-th failed attempt (the
    last entry repeats), plus up to `jitter` of itself so that many retries spread out.
    A delivery gives up after `max_attempts`, or when its next try would fall later
    than `created_at + max_age_seconds`. A receiver that answers 410 Gone has its URL
    disabled for the tenant until an operator redelivers to it.

    Scheduling is fair: at most `concurrency` attempts are in flight per process, at most
    `per_tenant` of them for one tenant and `per_endpoint` for one receiver URL; a claim
    passes over tenants and URLs at their bound, and a delivery claimed past one is handed
    back for a moment. A receiver that fails to answer (timeout, connection error)
    BACKOFF_AFTER times in a row backs off: its deliveries are not claimed until the backoff
    ends, so it holds no slot meanwhile. An attempt is bounded by `timeout`, so it always
    ends well inside the claim's `lease`. At most one attempt per delivery is ever in
    flight: a redelivery during one is refused (409), and each attempt is appended to the
    stored log atomically (`Store.record_attempt`).
    """

    def __init__(
        self,
        store: Store,
        http: httpx.AsyncClient,
        settings: WebhookSettings,
        *,
        guard: UrlGuard,
        clock: Callable[[], float] = time.time,
        timeout: float | None = None,
        lease: float = 60.0,
        jitter: float = 0.1,
        rand: Callable[[], float] = random.random,
        concurrency: int | None = None,
        per_tenant: int | None = None,
        per_endpoint: int | None = None,
        metrics: DeliveryMetrics = NO_METRICS,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        timeout = settings.timeout_seconds if timeout is None else timeout
        concurrency = settings.concurrency if concurrency is None else concurrency
        if lease < 2 * timeout:
            raise ValueError("the claim lease must be at least twice the attempt timeout")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._plan = _Plan(settings)
        self._store = store
        self._http = http
        self._guard = guard
        self._clock = clock  # due times and claims
        self._monotonic = monotonic  # the `run` loop's interval between looks, with `sleep`
        self._sleep = sleep
        self._timeout = timeout
        self._lease = lease
        self._jitter = jitter
        self._rand = rand
        self._concurrency = concurrency
        self._metrics = metrics
        self._per_tenant = min(concurrency, per_tenant or settings.per_tenant_concurrency)
        self._per_endpoint = min(self._per_tenant, per_endpoint or settings.per_endpoint_concurrency)
        self._by_tenant: Counter[str] = Counter()  # attempts in flight here
        self._by_url: Counter[str] = Counter()
        self._unanswered: dict[str, tuple[int, float]] = {}  # url -> (failures to answer in a row, backing off until)
        # Claimed past a receiver's bound (or `concurrency`), waiting here for a slot: url -> (delivery, claim lapses at).
        self._waiting: dict[str, deque[tuple[WebhookDelivery, float]]] = {}
        self._look = True  # whether the next pass of `run` claims
        self._ended = False  # an attempt ended since the pass of `run` began
        self._wake = asyncio.Event()

    def __repr__(self) -> str:  # never show a secret
        plan = self._plan
        return f"WebhookDispatcher(endpoints={list(plan.endpoints)}, max_attempts={plan.max_attempts}, schedule={plan.schedule})"

    # -- config ------------------------------------------------------------------

    def reconfigure(self, settings: WebhookSettings) -> None:
        """Use new endpoints, secrets and retry rules from now on (config reload).
        Pending deliveries keep their targets and are signed with the new secrets;
        one whose endpoint was removed fails at its next attempt."""
        self._plan = _Plan(settings)  # raises before swapping if anything is unusable
        log.info("webhook.reconfigured", endpoints=list(self._plan.endpoints))
        self.wake()

    def can_sign(self, key_name: str, tenant: str) -> bool:
        """Whether a job created with this key may carry its own `webhook_url`."""
        return bool(self._plan.job_url_secrets(key_name, tenant))

    # -- building ------------------------------------------------------------------

    def deliveries_for(self, job: Job, event_type: str, payload: bytes, now: float) -> list[WebhookDelivery]:
        """One pending delivery per target of this event: each configured endpoint for
        the job's key or tenant that subscribes to `event_type`, then the job's own
        `webhook_url`. Pure; store them with `store.update_job(job, deliveries=...)`
        and call `wake()` after."""
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown webhook event type {event_type!r}")

        return [
            WebhookDelivery(
                id=delivery_id_for(job.id, event_type, target),
                job_id=job.id,
                tenant=job.tenant,
                url=url,
                event_type=event_type,
                payload=payload,
                created_at=now,
                endpoint=endpoint,
                key_name=job.key_name,
                next_attempt_at=now,
            )
            for target, url, endpoint in self._targets(job, event_type)
        ]

    def urls_for(self, job: Job, event_type: str) -> list[str]:
        """The receivers' URLs of the deliveries `deliveries_for` builds, for `wake`."""
        return [url for _, url, _ in self._targets(job, event_type)]

    def _targets(self, job: Job, event_type: str) -> list[tuple[str, str, str | None]]:
        """(target, url, endpoint name) of each delivery of this event."""
        out: list[tuple[str, str, str | None]] = [
            (f"endpoint:{e.name}", e.url, e.name) for e in self._plan.matching(job.key_name, job.tenant) if event_type in e.events
        ]
        if job.webhook_url:
            out.append((f"url:{job.webhook_url}", job.webhook_url, None))
        return out

    # -- redelivery ------------------------------------------------------------------

    async def redeliver(self, delivery_id: str, tenant: str) -> WebhookDelivery:
        """Send a delivery again, now, under the same id (its attempt log is kept).

        An explicit operator action, so a 410 disable on its URL is lifted. The new try
        is one more attempt; further retries follow only while the original budget
        (`max_attempts`, `max_age_seconds`) allows."""
        delivery = await self._store.get_delivery(delivery_id, tenant)
        if delivery is None:
            raise NotFound(f"No webhook delivery found with id {delivery_id!r}", param="delivery_id")
        if delivery.endpoint is not None:
            endpoint = self._plan.endpoints.get(delivery.endpoint)
            if endpoint is None:
                raise Conflict(f"Webhook endpoint {delivery.endpoint!r} is no longer configured", param="delivery_id", code="endpoint_not_configured")
            if not endpoint.enabled:
                raise Conflict(f"Webhook endpoint {delivery.endpoint!r} is disabled in the gateway's config", param="delivery_id", code="endpoint_disabled")
        if not self._secrets_for(delivery):
            raise Conflict("No webhook signing secret is configured for this delivery", param="delivery_id", code="webhook_not_signable")
        try:
            updated = await self._store.requeue_delivery(delivery.id, tenant, self._clock())
        except DeliveryInFlight:
            raise Conflict("An attempt at this delivery is in flight; redeliver once it has ended", param="delivery_id", code="delivery_in_flight") from None
        except KeyError:
            raise NotFound(f"No webhook delivery found with id {delivery_id!r}", param="delivery_id") from None
        self._unanswered.pop(delivery.url, None)  # an operator asked for it: no backoff
        if await self._store.enable_endpoint(delivery.tenant, delivery.url):
            log.info("webhook.endpoint_enabled", host=host_of(delivery.url), endpoint=delivery.endpoint, delivery_id=delivery.id)
        log.info("webhook.redelivery", delivery_id=delivery.id, job_id=delivery.job_id, endpoint=delivery.endpoint)
        self.wake()
        return updated

    # -- the loop ------------------------------------------------------------------

    def wake(self, urls: Collection[str] | None = None) -> None:
        """Look for due deliveries now instead of at the next interval. Given the `urls` of
        the deliveries just stored, only if a claim could take one of them now: a receiver
        with deliveries waiting here, at its bound here, or backing off is passed over by a
        claim, and the end of its attempts here (or the interval) brings a look anyway."""
        if urls is not None and all(self._passed_over(url, self._clock()) for url in urls):
            return
        self._wake.set()

    def _passed_over(self, url: str, now: float) -> bool:
        """Whether a claim now skips this receiver: deliveries for it wait here, it is at its
        bound here, or it is backing off."""
        return url in self._waiting or self._by_url[url] >= self._per_endpoint or self._backing_off(url, now)

    def _backing_off(self, url: str, now: float) -> bool:
        return self._unanswered.get(url, (0, 0.0))[1] > now

    async def run_due(self, limit: int | None = None) -> int:
        """Claim up to `limit` (default `concurrency`) due deliveries, attempt each once
        and wait for them; returns how many were claimed."""
        claimed, _ = await self._claim_startable(limit or self._concurrency, ahead=1)
        if claimed:
            await asyncio.gather(*(self._attempt_logged(d) for d in claimed))
        return len(claimed)

    async def run(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        """Deliver until `stop` is set. Claims as many due deliveries as there are free
        slots, starts each at once, and looks again on `wake()`, when an attempt ends whose
        receiver has nothing waiting here, and at least every `interval` seconds (retries
        coming due, deliveries stored by other processes).

        A claim takes up to CLAIM_AHEAD times a receiver's bound (a tenant's bound is
        unchanged); those past the receiver's bound, or past `concurrency`, wait here in
        due order and start as slots free, without another claim. A backlog for one
        receiver then costs a claim per `per_tenant` deliveries (at most CLAIM_AHEAD x
        `per_endpoint`), not one per `per_endpoint` (each claim reads the whole due
        backlog). Those past their tenant's bound are handed back for a moment, as before,
        so they never hold up another tenant's delivery to the same URL.
        A waiting delivery whose claim would lapse before its attempt could end is handed
        back due at once, and so is everything waiting when the loop stops; one whose claim
        is about to lapse anyway is let lapse (another process may hold it by the time a
        hand-back was written). Attempts still running at the end are cancelled; their
        deliveries are due again when the claim lapses."""
        inflight: set[asyncio.Task[None]] = set()
        self._look = True
        looked = self._monotonic()
        try:
            while not stop.is_set():
                self._ended = False
                try:
                    await self._start_waiting(inflight)
                    free = self._concurrency - len(inflight)
                    if free > 0 and (self._look or self._monotonic() - looked >= interval):
                        self._look, looked = False, self._monotonic()
                        self._wake.clear()  # this claim sees every delivery stored so far
                        start, later = await self._claim_startable(free, ahead=CLAIM_AHEAD)
                        for delivery in start:
                            self._start(delivery, inflight)
                        for delivery, claimed_until in later:
                            self._waiting.setdefault(delivery.url, deque()).append((delivery, claimed_until))
                except Exception:  # the loop must outlive any one bad pass
                    log.exception("webhook.dispatch_error")
                await self._idle(stop, inflight, next_look=looked + interval, interval=interval)
        finally:
            handing_back = self._take_waiting()
            for task in list(inflight):
                task.cancel()
            # The hand-back runs apart, so a cancel of this task while it waits for its
            # attempts to end does not keep the waiting deliveries claimed until the lease.
            hand_back = asyncio.ensure_future(self._hand_back(handing_back)) if handing_back else None
            await asyncio.gather(*inflight, return_exceptions=True)
            if hand_back is not None:
                await asyncio.shield(hand_back)

    def _start(self, delivery: WebhookDelivery, inflight: set[asyncio.Task[None]]) -> None:
        """Start an attempt already counted in flight (by `_place`)."""
        task = asyncio.create_task(self._attempt_logged(delivery))
        inflight.add(task)
        task.add_done_callback(inflight.discard)

    def _safe_to_hand_back(self, claimed_until: float, now: float) -> bool:
        """Whether a hand-back written now surely lands before the claim lapses: after it
        lapsed another process may have claimed the delivery, and the hand-back would end
        that claim (the store does not check whose claim it ends)."""
        return claimed_until - now > self._timeout

    def _take_waiting(self) -> list[str]:
        """Empty the waiting deliveries; the ids of those safe to hand back."""
        now = self._clock()
        ids = [d.id for queue in self._waiting.values() for d, until in queue if self._safe_to_hand_back(until, now)]
        self._waiting.clear()
        return ids

    async def _hand_back(self, ids: list[str]) -> None:
        try:
            await self._store.defer_deliveries(ids, self._clock())
        except Exception:  # their claims lapse instead, as when a process dies
            log.exception("webhook.hand_back_failed", deliveries=len(ids))

    async def _start_waiting(self, inflight: set[asyncio.Task[None]]) -> None:
        """Start what waits here for a receiver's slot (or a free one), first come first, as
        far as the bounds allow. Hand back those whose receiver has a slot but whose tenant
        is at its bound (for a moment, so the receiver is not held for other tenants), those
        whose claim would lapse before their attempt could end, and those of a receiver that
        started backing off (due at once)."""
        if not self._waiting:
            return
        now = self._clock()
        due_now: list[str] = []
        due_soon: list[str] = []
        for url in list(self._waiting):
            queue = self._waiting[url]
            backing_off = self._backing_off(url, now)
            kept: deque[tuple[WebhookDelivery, float]] = deque()
            for delivery, claimed_until in queue:
                if backing_off or now + 2 * self._timeout > claimed_until:
                    if self._safe_to_hand_back(claimed_until, now):
                        due_now.append(delivery.id)
                    continue  # else: let the claim lapse; the delivery is due again then
                match self._place(delivery, slot_free=len(inflight) < self._concurrency):
                    case "wait":
                        kept.append((delivery, claimed_until))
                    case "hand back":
                        due_soon.append(delivery.id)
                    case "start":
                        self._start(delivery, inflight)
            if kept:
                self._waiting[url] = kept
            else:
                del self._waiting[url]
        for ids, until in ((due_now, now), (due_soon, now + DEFER_SECONDS)):
            if ids:
                await self._store.defer_deliveries(ids, until)
                self._look = True

    async def _idle(self, stop: asyncio.Event, inflight: set[asyncio.Task[None]], *, next_look: float, interval: float) -> None:
        """Until `stop`, an attempt's end, a wake (with a slot free), or the interval's look is
        due at `next_look`: counted from the last look, not from now, or passes that end
        without a look (an attempt ended, its receiver's next delivery started) would put the
        look off again and again. With no slot free a look could do nothing: an attempt's end
        comes first, and the loop looks in again after `interval`."""
        full = len(inflight) >= self._concurrency
        if self._ended or (self._look and not full):
            return  # something to do already: an attempt ended, or a look was asked for, during this pass
        waiters = [asyncio.ensure_future(stop.wait())]
        if not full:  # a wake can only be acted on with a free slot
            waiters.append(asyncio.ensure_future(self._wake.wait()))
        sleeper = asyncio.ensure_future(self._sleep(interval if full else max(0.0, next_look - self._monotonic())))
        try:
            await asyncio.wait([*waiters, sleeper, *inflight], return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            for waiter in waiters:
                waiter.cancel()
        if self._wake.is_set() and not full:
            self._look = True  # new deliveries were stored
            self._wake.clear()

    async def _claim_startable(self, limit: int, *, ahead: int) -> tuple[list[WebhookDelivery], list[tuple[WebhookDelivery, float]]]:
        """Claim up to `limit` due deliveries to start now, counted as in flight, and with
        `ahead` > 1 up to `ahead` times a URL's bound more: those past a URL's
        bound or past `limit` are returned apart, each with the time its claim lapses (with
        `ahead` = 1 they are handed back for a moment); those whose URL has a slot but whose
        tenant is at its bound are handed back for a moment. Tenants and URLs at their bound,
        receivers backing off, and receivers with deliveries waiting here are passed over."""
        now = self._clock()
        busy_tenants = [t for t, n in self._by_tenant.items() if n >= self._per_tenant]
        busy_urls = sorted(url for url in {*self._by_url, *self._unanswered, *self._waiting} if self._passed_over(url, now))
        claimed_until = now + self._lease
        claimed = await self._store.claim_deliveries(
            now,
            claimed_until,
            limit * ahead,
            skip_tenants=busy_tenants,
            skip_urls=busy_urls,
            per_tenant=self._per_tenant,  # never ahead: past a tenant's bound a delivery could only be handed back
            per_url=self._per_endpoint * ahead,
        )
        start: list[WebhookDelivery] = []
        later: list[tuple[WebhookDelivery, float]] = []
        handing_back: list[str] = []
        for delivery in claimed:
            match self._place(delivery, slot_free=len(start) < limit):
                case "wait":
                    later.append((delivery, claimed_until))
                case "hand back":
                    handing_back.append(delivery.id)
                case "start":
                    start.append(delivery)
        if ahead == 1:  # `run_due`: nothing waits
            handing_back += [d.id for d, _ in later]
            later = []
        if handing_back:
            await self._store.defer_deliveries(handing_back, now + DEFER_SECONDS)
            self._look = True  # what was handed back made room in the claim for others
        return start, later

    def _place(self, delivery: WebhookDelivery, *, slot_free: bool) -> Literal["start", "wait", "hand back"]:
        """Where a claimed delivery goes now. "start": counted in flight here (its receiver
        and its tenant below their bounds, and `slot_free`); "wait": for its receiver's slot
        or a free one; "hand back" (for a moment): its receiver has a slot but its tenant is
        at its bound, and the receiver is not held for other tenants."""
        if not slot_free or self._by_url[delivery.url] >= self._per_endpoint:
            return "wait"
        if self._by_tenant[delivery.tenant] >= self._per_tenant:
            return "hand back"
        self._by_tenant[delivery.tenant] += 1
        self._by_url[delivery.url] += 1
        return "start"

    async def _attempt_logged(self, delivery: WebhookDelivery) -> None:
        with structlog.contextvars.bound_contextvars(job_id=delivery.job_id, delivery_id=delivery.id):
            try:
                await self._attempt(delivery)
            except Exception:  # e.g. the store failed: the claim lapses and it is tried again
                log.exception("webhook.attempt_error")
            finally:
                for counter, key in ((self._by_tenant, delivery.tenant), (self._by_url, delivery.url)):
                    counter[key] -= 1
                    if counter[key] <= 0:
                        del counter[key]
                self._ended = True  # a slot is free: `run` makes a pass now
                if delivery.url not in self._waiting:
                    self._look = True  # its receiver has a free slot and nothing waiting here: more may be due

    def _answered(self, url: str, answered: bool) -> None:
        """Track receivers that fail to answer; BACKOFF_AFTER failures in a row start a backoff."""
        if answered:
            self._unanswered.pop(url, None)
            return
        failures = self._unanswered.get(url, (0, 0.0))[0] + 1
        until = 0.0
        if failures >= BACKOFF_AFTER:
            until = self._clock() + min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (failures - BACKOFF_AFTER))
            log.warning("webhook.endpoint_backing_off", host=host_of(url), failures=failures, until=until)
        self._unanswered[url] = (failures, until)

    # -- one attempt -----------------------------------------------------------------

    async def _attempt(self, delivery: WebhookDelivery) -> WebhookDelivery:
        """One attempt, or a skip if the target may not be sent to; records the outcome."""
        skip = await self._skip_reason(delivery)
        if skip is not None:
            return await self._skipped(delivery, skip)
        signing = self._secrets_for(delivery)
        if not signing:
            return await self._skipped(delivery, "no webhook signing secret is configured for this target")

        at = self._clock()
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        final = False
        try:
            async with asyncio.timeout(self._timeout):
                status = await self._post(delivery, signing, int(at))
        except UrlNotAllowed as exc:
            error, final = exc.message, not exc.transient
        except (TimeoutError, httpx.TimeoutException):
            error = "timed out"
        except httpx.HTTPError as exc:
            error = _transport_error(exc)
        latency_ms = round((time.perf_counter() - started) * 1000)
        if status is not None and not 200 <= status < 300:
            error = "HTTP 410 Gone: the receiver asked to stop" if status == 410 else f"HTTP {status}"
        entry = DeliveryAttempt(at=at, status_code=status, latency_ms=latency_ms, error=error)
        attempt_no = delivery.attempts + 1
        self._answered(delivery.url, status is not None)

        if error is None:
            done = await self._store.record_attempt(
                delivery.id, entry, DeliveryOutcome(status="delivered", next_attempt_at=None, last_status_code=status, last_error=None)
            )
            self._metrics.webhook_delivery("delivered")
            log.info(
                "webhook.delivered",
                event_type=delivery.event_type,
                endpoint=delivery.endpoint,
                host=host_of(delivery.url),
                attempt=attempt_no,
                status_code=status,
                latency_ms=latency_ms,
            )
            return done

        if status == 410:
            await self._store.disable_endpoint(delivery.tenant, delivery.url, "the receiver answered 410 Gone", at)
            log.warning("webhook.endpoint_disabled", endpoint=delivery.endpoint, host=host_of(delivery.url), tenant=delivery.tenant)
            final = True
        next_at = None if final else self._next_attempt_at(delivery, attempt_no)
        outcome = DeliveryOutcome(status="failed" if next_at is None else "pending", next_attempt_at=next_at, last_status_code=status, last_error=error)
        updated = await self._store.record_attempt(delivery.id, entry, outcome)
        self._metrics.webhook_delivery("failed" if next_at is None else "retrying")
        log.warning(
            "webhook.delivery_failed",
            event_type=delivery.event_type,
            endpoint=delivery.endpoint,
            host=host_of(delivery.url),
            attempt=attempt_no,
            status_code=status,
            latency_ms=latency_ms,
            error=error,
            final=next_at is None,
            **({} if next_at is None else {"retry_in": round(next_at - self._clock(), 3)}),
        )
        return updated

    def _next_attempt_at(self, delivery: WebhookDelivery, attempt_no: int) -> float | None:
        """When to try again after failed attempt `attempt_no`, or None to give up."""
        plan = self._plan
        if attempt_no >= plan.max_attempts:
            return None
        delay = plan.schedule[min(attempt_no - 1, len(plan.schedule) - 1)]
        delay += delay * self._jitter * self._rand()
        next_at = self._clock() + delay
        return None if next_at > delivery.created_at + plan.max_age else next_at

    async def _skip_reason(self, delivery: WebhookDelivery) -> str | None:
        if delivery.endpoint is not None:
            endpoint = self._plan.endpoints.get(delivery.endpoint)
            if endpoint is None:
                return f"endpoint {delivery.endpoint!r} is no longer configured"
            if not endpoint.enabled:
                return f"endpoint {delivery.endpoint!r} is disabled in the config"
        reason = await self._store.endpoint_disabled(delivery.tenant, delivery.url)
        return None if reason is None else f"endpoint disabled: {reason}"

    async def _skipped(self, delivery: WebhookDelivery, reason: str) -> WebhookDelivery:
        """Fail without a request (nothing is added to the attempt log: nothing was sent)."""
        updated = await self._store.record_attempt(
            delivery.id, None, DeliveryOutcome(status="failed", next_attempt_at=None, last_status_code=None, last_error=reason)
        )
        self._metrics.webhook_delivery("skipped")
        log.warning("webhook.delivery_skipped", event_type=delivery.event_type, endpoint=delivery.endpoint, host=host_of(delivery.url), reason=reason)
        return updated

    def _secrets_for(self, delivery: WebhookDelivery) -> list[str]:
        """The current secrets for this delivery's target (empty: it can't be signed)."""
        plan = self._plan
        if delivery.endpoint is not None:
            endpoint = plan.endpoints.get(delivery.endpoint)
            return list(endpoint.secrets) if endpoint is not None else []
        # A job's own URL is signed for the key that created the job, recorded on the
        # delivery so no attempt has to read the job (which may be deleted by then).
        return plan.job_url_secrets(delivery.key_name, delivery.tenant)

    async def _post(self, delivery: WebhookDelivery, signing: Sequence[str], timestamp: int) -> int:
        headers = {
            "webhook-id": delivery.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(signing, delivery.id, timestamp, delivery.payload),
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
            timeout=httpx.Timeout(self._timeout),
        )
        try:
            await _read_short_answer(response)
        finally:
            await response.aclose()
        return response.status_code


async def _read_short_answer(response: httpx.Response) -> None:
    """Read a receiver's answer when it is short and quick (a declared length up to
    `_KEEP_ANSWER_BYTES`, within `_KEEP_ANSWER_SECONDS`), so its connection is kept for
    the next delivery; anything else is not read and the connection closes: a receiver
    can't make us buffer or wait."""
    declared = response.headers.get("content-length", "")
    if not declared.isdigit() or int(declared) > _KEEP_ANSWER_BYTES:
        return
    with contextlib.suppress(TimeoutError, httpx.HTTPError):
        async with asyncio.timeout(_KEEP_ANSWER_SECONDS):
            async for _ in response.aiter_raw():
                pass


def _transport_error(exc: httpx.HTTPError) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:_ERROR_TEXT_LIMIT]
