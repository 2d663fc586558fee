"""Upstream HTTP clients and the one retry policy.

Polling GETs and uploads retry freely on retryable failures. A paid submit is
retried only when the failure is provably not ambiguous (the request never left,
or the upstream answered 429/503-style "not now"): never after a timeout or a
broken answer that may have created a job.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import msgspec
import structlog

from gateway.h1_transport import H1Transport
from providers.base import UpstreamError

T = TypeVar("T")
log = structlog.get_logger("vidgate.http")


def make_client(
    base_url: str,
    *,
    timeout: float,
    connect_timeout: float,
    max_connections: int,
    transport: httpx.AsyncBaseTransport | None = None,
    instance: str | None = None,
) -> httpx.AsyncClient:
    """An upstream client. `instance` (the replica's id) goes into the User-Agent so an
    upstream's logs, and the simulators' request logs, tell replicas apart. Without a
    `transport` (tests pass one) it runs on `gateway.h1_transport`."""
    agent = f"vidgate/0.1 ({instance})" if instance else "vidgate/0.1"
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout, connect=connect_timeout),
        transport=transport or H1Transport(max_connections=max_connections),
        headers={"User-Agent": agent},
    )


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_total: float = 60.0  # never keep one call retrying longer than this
    max_retry_after: float = 60.0


Sleep = Callable[[float], Awaitable[None]]


def backoff(attempt: int, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff for the `attempt`-th retry (1-based)."""
    ceiling = min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    submit: bool,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    what: str = "upstream.call",
) -> T:
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await fn()
        except UpstreamError as exc:
            if not _may_retry(exc, submit) or attempt >= policy.max_attempts:
                raise
            delay = exc.info.retry_after
            delay = min(delay, policy.max_retry_after) if delay is not None else backoff(attempt, policy)
            if clock() - started + delay > policy.max_total:
                raise
            log.info(
                "upstream.retry",
                call=what,
                attempt=attempt,
                delay_s=round(delay, 3),
                error_class=exc.info.error_class.value,
            )
            await sleep(delay)


def _may_retry(exc: UpstreamError, submit: bool) -> bool:
    if not exc.info.retryable or exc.ambiguous:
        return False
    return True if not submit else exc.info.http_status in (429, 503) or exc.info.http_status is None
