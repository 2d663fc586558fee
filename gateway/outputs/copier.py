"""Copying a finished job's outputs into vidgate's own storage.

Upstream result links expire (about 24 h), so when a job completes its video,
thumbnail and last frame are copied once:

    copier = OutputCopier(storage, http, guard, max_bytes=settings.outputs.max_bytes,
                          timeout=settings.outputs.timeout_seconds)
    report = await copier.copy(job.id, {"video": result.video_url, "thumbnail": result.thumbnail_url})
    job.outputs = report.copies          # variant -> OutputCopy; report.failures: variant -> reason

A source is a URL (fetched through the SSRF guard, every redirect re-checked) or a
zero-argument callable returning an async context manager that yields
`(content_type, chunks)`, for a provider's authenticated content endpoint. The bytes
decide the stored type: the video must be an MP4, the others PNG, JPEG or WebP; a
declared Content-Type is only quoted when the bytes disagree.

Each variant is copied on its own task: one failing never stops the others. A transient
failure (transport error, HTTP 5xx or 429, DNS) is retried with a short backoff; a 4xx,
a refused URL, a failed content check or an oversized body is not. Each variant's copy,
retries included, is bounded by `timeout`. Logs carry the host, never the URL: signed
URLs hold credentials in their query strings.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Literal

import httpx
import msgspec
import structlog

from gateway.http import RetryPolicy, backoff
from gateway.jobs.model import OutputCopy
from gateway.metrics import NO_METRICS, CopyMetrics
from gateway.outputs.checks import (
    EXTENSIONS,
    ContentCheckFailed,
    check_image,
    check_mp4,
)
from gateway.outputs.storage import (
    InvalidKey,
    ObjectTooLarge,
    OutputError,
    OutputStorage,
    peek,
    validate_key,
)
from gateway.urlguard import UrlGuard, UrlNotAllowed, host_of
from providers.base import UpstreamError, parse_retry_after

log = structlog.get_logger("vidgate.outputs")

Variant = Literal["video", "thumbnail", "last_frame"]
VARIANTS: tuple[Variant, ...] = ("video", "thumbnail", "last_frame")
Opener = Callable[[], AbstractAsyncContextManager[tuple[str, AsyncIterator[bytes]]]]
Source = str | Opener
Sleep = Callable[[float], Awaitable[None]]

# Three tries in all, about 0.5 s then 1 s apart: a copy that fails after that is
# reported, and the content endpoint keeps proxying the upstream link meanwhile.
COPY_RETRY = RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=4.0, max_retry_after=30.0)

_URL = re.compile(r"([a-z][a-z0-9+.-]*://[^/?#\s'\"]*)[^\s'\"]*", re.IGNORECASE)


class CopyReport(msgspec.Struct, kw_only=True):
    copies: dict[str, OutputCopy] = {}  # variant -> the stored copy
    failures: dict[str, str] = {}  # variant -> why it was not copied (log-safe, no URL)

    @property
    def complete(self) -> bool:
        return not self.failures


class SourceError(OutputError):
    """What a callable source may raise to say how it failed: `transient` ones are retried."""

    def __init__(self, reason: str, *, transient: bool = False, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.retry_after = retry_after


class OutputCopier:
    def __init__(
        self,
        storage: OutputStorage,
        http: httpx.AsyncClient,
        guard: UrlGuard,
        *,
        max_bytes: int,
        timeout: float,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
        retry: RetryPolicy = COPY_RETRY,
        rng: random.Random | None = None,
        metrics: CopyMetrics = NO_METRICS,
    ) -> None:
        self._storage = storage
        self._http = http
        self._guard = guard
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._clock = clock
        self._sleep = sleep
        self._retry = retry
        self._rng = rng
        self._metrics = metrics

    async def copy(self, job_id: str, sources: Mapping[str, Source | None]) -> CopyReport:
        """Copy every given variant ("video", "thumbnail", "last_frame"; a None source
        is skipped) concurrently. Never raises for a failed copy: see the report.

        Raises ValueError for an unknown variant or a job id that is not one key segment."""
        unknown = sorted(set(sources) - set(VARIANTS))
        if unknown:
            raise ValueError(f"unknown output variant(s) {unknown}; expected some of {list(VARIANTS)}")
        if "/" in job_id:
            raise InvalidKey(f"job id {job_id!r} must be a single key segment")
        validate_key(job_id)
        todo = {variant: source for variant, source in sources.items() if source is not None}
        async with asyncio.TaskGroup() as group:
            tasks = {variant: group.create_task(self._copy_variant(job_id, variant, source)) for variant, source in todo.items()}
        report = CopyReport()
        for variant, task in tasks.items():
            outcome = task.result()
            if isinstance(outcome, OutputCopy):
                report.copies[variant] = outcome
            else:
                report.failures[variant] = outcome
        return report

    async def _copy_variant(self, job_id: str, variant: str, source: Source) -> OutputCopy | str:
        where = _where(source)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        attempt = 0
        try:
            async with asyncio.timeout_at(deadline):
                while True:
                    attempt += 1
                    try:
                        copy = await self._attempt(job_id, variant, source)
                    except _Failure as failure:
                        delay = self._delay(failure, attempt)
                        if delay is None or loop.time() + delay >= deadline:
                            raise
                        log.info("outputs.copy_retry", job_id=job_id, variant=variant, attempt=attempt, delay_s=round(delay, 3), reason=failure.reason, **where)
                        await self._sleep(delay)
                        continue
                    log.info("outputs.copied", job_id=job_id, variant=variant, object_key=copy.key, bytes=copy.bytes, attempts=attempt, **where)
                    self._metrics.output_copied(variant, copy.bytes)
                    return copy
        except TimeoutError:
            reason = f"timed out after {self._timeout:g} s"
        except _Failure as failure:
            reason = failure.reason
        log.warning("outputs.copy_failed", job_id=job_id, variant=variant, attempts=attempt, reason=reason, **where)
        self._metrics.output_copy_failed(variant)
        return reason

    def _delay(self, failure: _Failure, attempt: int) -> float | None:
        """Seconds to wait before the next try, or None when there is none."""
        if not failure.transient or attempt >= self._retry.max_attempts:
            return None
        if failure.retry_after is not None:
            return min(failure.retry_after, self._retry.max_retry_after)
        return backoff(attempt, self._retry, self._rng)

    async def _attempt(self, job_id: str, variant: str, source: Source) -> OutputCopy:
        """One try, every failure classified as a `_Failure`."""
        try:
            opener = self._download(source) if isinstance(source, str) else source()
            async with opener as (declared, chunks):
                return await self._store(job_id, variant, declared, chunks)
        except _Failure:
            raise
        except Exception as exc:
            raise _classify(exc) from exc

    @asynccontextmanager
    async def _download(self, url: str) -> AsyncIterator[tuple[str, AsyncIterator[bytes]]]:
        response = await self._guard.open(self._http, "GET", url, field="result")
        try:
            status = response.status_code
            if not 200 <= status < 300:
                transient = status >= 500 or status == 429
                raise _Failure(
                    f"HTTP {status} from {_host_of(response)}",
                    transient=transient,
                    retry_after=parse_retry_after(response.headers) if transient else None,
                )
            declared_size = response.headers.get("content-length", "")
            if declared_size.isdigit() and int(declared_size) > self._max_bytes:
                raise _Failure(f"{declared_size} bytes is over the limit of {self._max_bytes} bytes")
            yield response.headers.get("content-type", ""), response.aiter_bytes()
        finally:
            await response.aclose()

    async def _store(self, job_id: str, variant: str, declared: str, chunks: AsyncIterator[bytes]) -> OutputCopy:
        check = check_mp4 if variant == "video" else check_image
        head, chunks = await peek(chunks)
        try:
            content_type = check(head)
        except ContentCheckFailed as exc:
            said = f" (declared {_short(declared)})" if declared else ""
            raise _Failure(f"{variant}: {exc}{said}") from exc
        key = f"{job_id}/{variant}{EXTENSIONS[content_type]}"
        stored = await self._storage.put(key, chunks, content_type=content_type, max_bytes=self._max_bytes, check=check)
        return OutputCopy(key=stored.key, content_type=stored.content_type, bytes=stored.bytes, sha256=stored.sha256, stored_at=self._clock())


class _Failure(Exception):
    def __init__(self, reason: str, *, transient: bool = False, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.retry_after = retry_after


def _classify(exc: Exception) -> _Failure:
    if isinstance(exc, SourceError):
        return _Failure(_scrub(exc.reason), transient=exc.transient, retry_after=exc.retry_after)
    if isinstance(exc, ObjectTooLarge):
        return _Failure(f"over the limit of {exc.limit} bytes")
    if isinstance(exc, UrlNotAllowed):
        return _Failure(exc.message, transient=exc.transient)
    if isinstance(exc, UpstreamError):
        status = exc.info.http_status
        transient = exc.info.retryable if status is None else status >= 500 or status == 429
        return _Failure(_scrub(exc.info.message), transient=transient, retry_after=exc.info.retry_after)
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return _Failure(f"HTTP {status} from {_host_of(exc.response)}", transient=status >= 500 or status == 429)
    if isinstance(exc, httpx.TransportError):
        return _Failure(_describe(exc), transient=True)
    if isinstance(exc, (ConnectionError, TimeoutError)):  # from a callable source's own I/O
        return _Failure(_describe(exc), transient=True)
    if isinstance(exc, OSError):  # the disk: full, read-only, permissions
        return _Failure(f"storage error: {_describe(exc)}")
    return _Failure(f"unexpected {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    text = _scrub(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _scrub(text: str) -> str:
    """`text` with every URL cut to its scheme and host (query strings may be credentials)."""
    return _URL.sub(r"\1", text)[:300]


def _host_of(response: httpx.Response) -> str:
    # The Host header keeps the name when the guard pinned the connection to an address.
    return response.request.headers.get("host") or response.url.host


def _short(declared: str) -> str:
    return _scrub(declared.split(";", 1)[0].strip())[:60]


def _where(source: Source) -> dict[str, str | None]:
    """Log fields naming a source without its path or query."""
    if not isinstance(source, str):
        return {"source": "provider"}
    return {"source": "url", "host": host_of(source)}
