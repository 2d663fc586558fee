"""The I/O around a pure adapter: one attempt per call, every failure classified.

Retries, backoff and routing decisions live in the gateway; this module only
sends what the adapter describes and turns transport failures into
`UpstreamError`s with the right class and ambiguity.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import NamedTuple, Protocol, runtime_checkable
from urllib.parse import urlencode

import httpx
import msgspec

from providers.base import (
    Adapter,
    ErrorClass,
    GenerationRequest,
    HttpCall,
    SubmitContext,
    UpstreamError,
    UpstreamJob,
)

_json = msgspec.json.Encoder()

# What the fast lane puts on the wire as it is; anything else (spaces, CR/LF, non-ASCII)
# takes httpx's lane, which encodes or refuses it.
_PLAIN_TARGET = re.compile(r"[!-~]+")
_PLAIN_HEADER_VALUE = re.compile(r"[\t -~]*")
_PLAIN_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

Origin = tuple[bytes, bytes, int]
"""scheme, host, port"""


def origin_of(url: httpx.URL) -> Origin:
    return (url.raw_scheme, url.raw_host, url.port or (443 if url.raw_scheme == b"https" else 80))


async def send_unwrapped(http: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """`request` straight to the client's transport, its answer streaming: none of
    `AsyncClient.send`'s cookie jar (one answer's cookies must not follow vidgate to the next
    request; the jar also builds a urllib request per answer), auth or redirect flows (the
    callers follow redirects themselves). httpx is pinned <0.29 for `_transport`."""
    response = await http._transport.handle_async_request(request)
    response.request = request
    return response


MAX_REDIRECTS = 5  # a content download's hops (httpx's own default is 20)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class Exchanged(NamedTuple):
    """An answer read whole."""

    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes


@runtime_checkable
class AnswersWhole(Protocol):
    """A transport that can send a request whose head is already serialized and return the
    answer read whole (`gateway.h1_transport.H1Transport`). API calls take this lane when
    the client's transport offers it: it skips building httpx requests and streams, which
    were most of a poll's CPU. It raises httpx's transport errors, as the other lane does."""

    async def exchange(self, origin: Origin, head: bytes, body: bytes, *, connect_timeout: float | None, read_timeout: float | None) -> Exchanged: ...


class _Observed:
    """`async with`: one call's outcome and duration for the observer. A plain class, not
    `asynccontextmanager`: it wraps every poll, and a generator per call costs several times more."""

    __slots__ = ("_observer", "_operation", "_started")

    def __init__(self, observer: CallObserver | None, operation: str) -> None:
        self._observer = observer
        self._operation = operation
        self._started = 0.0

    async def __aenter__(self) -> None:
        self._started = time.perf_counter()

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if self._observer is None or (kind is not None and not issubclass(kind, Exception)):
            return  # no observer, or cancelled: nothing to tell
        error = None if exc is None else exc.info.error_class.value if isinstance(exc, UpstreamError) else "unexpected"
        self._observer.upstream_call(self._operation, error, time.perf_counter() - self._started)


class _Answer(httpx.Response):
    """An answer from the fast lane. Its `request` is built only if a parser asks for it."""

    def __init__(self, exchanged: Exchanged, make_request: Callable[[], httpx.Request]) -> None:
        encoded = any(name.lower() == b"content-encoding" for name, _ in exchanged.headers)
        super().__init__(
            status_code=exchanged.status,
            headers=exchanged.headers,
            content=exchanged.body if encoded else None,
            stream=None if encoded else httpx.ByteStream(exchanged.body),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": exchanged.reason},
        )
        if not encoded:
            # The body as sent is the body as read: set what `read()` would (httpx is pinned
            # <0.29), skipping its decoder and chunker on every poll.
            self._content = exchanged.body
        self._make_request = make_request

    @property
    def request(self) -> httpx.Request:
        if self._request is None:
            self._request = self._make_request()
        return self._request

    @request.setter
    def request(self, value: httpx.Request) -> None:
        self._request = value


class CallObserver(Protocol):
    """Told about every upstream call this client makes (the gateway's metrics)."""

    def upstream_call(self, operation: str, error_class: str | None, seconds: float) -> None:
        """`operation`: upload, submit, poll, cancel, find or content; `error_class`: the
        `ErrorClass` value the call ended in (None: it succeeded); `seconds`: until the
        answer was read (headers only, for content)."""
        ...


class UpstreamClient:
    """Talks to one configured upstream through its adapter.

    `http` is a long-lived `httpx.AsyncClient` whose `base_url` is the upstream's;
    tests pass one built on `ASGITransport(app=simulator)` or `MockTransport`.
    """

    def __init__(
        self, adapter: Adapter, http: httpx.AsyncClient, secret: str, *, max_in_flight: int | None = None, observer: CallObserver | None = None
    ) -> None:
        self.adapter = adapter
        self.http = http
        self._observer = observer
        self._auth = adapter.auth_headers(secret)
        # API calls skip httpx.AsyncClient.send's per-request machinery (cookie jar, auth and
        # redirect flows, URL merging: about half of a poll's CPU) and go straight to the
        # client's transport with the client's own headers, base URL and timeouts.
        self._base = str(http.base_url).rstrip("/")
        self._headers = {**dict(http.headers), **self._auth}
        self._lane = http._transport if isinstance(http._transport, AnswersWhole) else None
        base = http.base_url
        self._origin = origin_of(base)
        self._prefix = base.raw_path.rstrip(b"/")
        self._host = base.netloc
        self._timeouts = (http.timeout.connect, http.timeout.read)
        # on the fast lane answers come back as sent (no Accept-Encoding): API answers are small
        self._lane_headers = {k: v for k, v in self._headers.items() if k.lower() not in ("accept-encoding", "host")}
        self._fixed_head = _header_lines(self._lane_headers)
        self._get_tail = None if self._fixed_head is None else b" HTTP/1.1\r\nHost: " + self._host + b"\r\n" + self._fixed_head + b"\r\n"
        # Calls in flight are bounded to the connection pool's size: a transport with the
        # whole-answer lane bounds its own connections; any other (httpcore's pool, whose
        # bookkeeping grows with connections x queued requests) is bounded here.
        self._slots = asyncio.Semaphore(max_in_flight) if max_in_flight and self._lane is None else None

    async def upload_all(self, request: GenerationRequest, ctx: SubmitContext) -> dict[str, str]:
        """Upload every medium the adapter needs; returns the references by key."""
        refs: dict[str, str] = {}
        for key, call in self.adapter.uploads(request, ctx):
            async with self._observed("upload"):
                response = await self.send(call, idempotent=True)
                refs[key] = self.adapter.parse_upload(response)
        return refs

    async def submit(self, request: GenerationRequest, model_id: str, refs: Mapping[str, str], ctx: SubmitContext) -> UpstreamJob:
        """One paid submit. A failure after the request may have left is marked ambiguous."""
        call = self.adapter.build_submit(request, model_id, refs, ctx)
        async with self._observed("submit"):
            response = await self.send(call, idempotent=False)
            try:
                return self.adapter.parse_submit(response)
            except UpstreamError as exc:
                if response.is_success:  # a 2xx we could not read: a job may exist
                    exc.ambiguous = True
                raise

    async def poll(self, upstream_id: str) -> UpstreamJob:
        async with self._observed("poll"):
            return self.adapter.parse_poll(await self.send(self.adapter.build_poll(upstream_id), idempotent=True))

    async def cancel(self, upstream_id: str) -> bool:
        """Ask the upstream to cancel; False when the upstream has no cancel."""
        call = self.adapter.build_cancel(upstream_id)
        if call is None:
            return False
        async with self._observed("cancel"):
            self.adapter.parse_cancel(await self.send(call, idempotent=True))
        return True

    async def find(self, ctx: SubmitContext) -> UpstreamJob | None:
        """Look for the job a submit with `ctx` created (its answer was lost); None if the
        upstream can't be asked or doesn't list it."""
        call = self.adapter.build_find(ctx)
        if call is None:
            return None
        async with self._observed("find"):
            return self.adapter.parse_find(await self.send(call, idempotent=True), ctx)

    @asynccontextmanager
    async def stream_content(self, upstream_id: str, job: UpstreamJob) -> AsyncIterator[httpx.Response]:
        """Stream the video bytes from the upstream's own content endpoint (authenticated)."""
        call = self.adapter.content_call(upstream_id, job)
        if call is None:
            raise UpstreamError.of(ErrorClass.NOT_FOUND, "the upstream has no content endpoint")
        async with self._observed("content"):
            try:
                response = await self._follow(self._request(call))
            except httpx.TransportError as exc:
                raise _transport_error(exc, idempotent=True) from exc
            if not response.is_success:
                await response.aread()
                await response.aclose()
                raise UpstreamError.of(
                    ErrorClass.NOT_FOUND if response.status_code == 404 else ErrorClass.UPSTREAM_UNAVAILABLE,
                    f"content download answered HTTP {response.status_code}",
                    http_status=response.status_code,
                )
        try:
            yield response
        finally:
            await response.aclose()

    async def _follow(self, request: httpx.Request) -> httpx.Response:
        """Send a GET straight to the transport and follow its redirects (a content route may
        answer with a CDN's address), the answer streaming. The upstream's credentials go
        only to its own origin, as httpx's redirect handling has it; no cookie jar."""
        for _ in range(MAX_REDIRECTS):
            response = await send_unwrapped(self.http, request)
            location = response.headers.get("location")
            if response.status_code not in _REDIRECTS or location is None:
                return response
            await response.aclose()
            try:
                target = request.url.join(location)
            except httpx.InvalidURL as exc:
                raise httpx.RemoteProtocolError(f"a redirect to an invalid address: {exc}", request=request) from exc
            if target.scheme not in ("http", "https"):
                raise httpx.RemoteProtocolError(f"a redirect to a {target.scheme!r} address", request=request)
            headers = httpx.Headers(request.headers)
            headers.pop("host", None)
            if (target.scheme, target.host, target.port) != (request.url.scheme, request.url.host, request.url.port):
                for name in self._auth:
                    headers.pop(name, None)
            request = httpx.Request("GET", target, headers=headers, extensions=request.extensions)
        raise httpx.RemoteProtocolError(f"more than {MAX_REDIRECTS} redirects", request=request)

    async def send(self, call: HttpCall, *, idempotent: bool) -> httpx.Response:
        """Send one call; transport failures become classified `UpstreamError`s.

        The response is returned whatever its status: the adapter's parser owns
        the mapping of upstream status codes and bodies.
        """
        try:
            if self._slots is None:
                return await self._send(call)
            async with self._slots:
                return await self._send(call)
        except httpx.TransportError as exc:
            raise _transport_error(exc, idempotent=idempotent) from exc

    async def _send(self, call: HttpCall) -> httpx.Response:
        if self._lane is not None:
            body = _json.encode(call.json) if call.json is not None else (call.content or b"")
            head = self._head(call, body)
            if head is not None:
                exchanged = await self._lane.exchange(self._origin, head, body, connect_timeout=self._timeouts[0], read_timeout=self._timeouts[1])
                return _Answer(exchanged, lambda: self._request(call))
        return await self._send_request(self._request(call))

    def _head(self, call: HttpCall, body: bytes) -> bytes | None:
        """The request line and headers for the fast lane; None when something in them needs
        httpx's encoding or checks."""
        if call.method == "GET" and not body and not call.params and not call.headers:  # a poll: the client's head as it is
            if not _PLAIN_TARGET.fullmatch(call.path) or not call.path.startswith("/") or self._get_tail is None:
                return None
            return b"".join((b"GET ", self._prefix, call.path.encode("ascii"), self._get_tail))
        target = call.path
        if call.params:
            target += "?" + urlencode(dict(call.params))
        if not _PLAIN_TARGET.fullmatch(target) or not target.startswith("/"):
            return None
        extra = dict(call.headers)
        if call.json is not None and not any(k.lower() == "content-type" for k in extra):
            extra["Content-Type"] = "application/json"
        if body or call.method in ("POST", "PUT", "PATCH"):
            extra["Content-Length"] = str(len(body))
        fixed = self._fixed_head
        if call.headers:  # a call's header replaces the client's of the same name
            overridden = {k.lower() for k in call.headers}
            fixed = _header_lines({k: v for k, v in self._lane_headers.items() if k.lower() not in overridden})
        lines = _header_lines(extra) if extra else b""
        if fixed is None or lines is None:
            return None
        return b"".join(
            (call.method.encode("ascii"), b" ", self._prefix, target.encode("ascii"), b" HTTP/1.1\r\nHost: ", self._host, b"\r\n", fixed, lines, b"\r\n")
        )

    async def _send_request(self, request: httpx.Request) -> httpx.Response:
        response = await send_unwrapped(self.http, request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    def _observed(self, operation: str) -> _Observed:
        """Tell the observer how one call ended and how long it took (a cancelled call: nothing)."""
        return _Observed(self._observer, operation)

    def _request(self, call: HttpCall) -> httpx.Request:
        headers = {**self._headers, **call.headers} if call.headers else dict(self._headers)
        content = call.content
        if call.json is not None:
            content = _json.encode(call.json)
            headers.setdefault("Content-Type", "application/json")
        url = self._base + call.path
        if call.params:
            url += "?" + urlencode(dict(call.params))
        return httpx.Request(call.method, url, content=content, headers=headers, extensions={"timeout": self.http.timeout.as_dict()})


def _header_lines(headers: Mapping[str, str]) -> bytes | None:
    """`Name: value\\r\\n` lines; None if a name or value can't go on the wire unencoded."""
    lines = []
    for name, value in headers.items():
        if not _PLAIN_HEADER_NAME.fullmatch(name) or not _PLAIN_HEADER_VALUE.fullmatch(value):
            return None
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("ascii")


def _transport_error(exc: httpx.TransportError, *, idempotent: bool) -> UpstreamError:
    # A connect failure or pool timeout means the request never left: safe to resend.
    never_left = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
    ambiguous = not idempotent and not never_left
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamError.of(ErrorClass.TIMEOUT, f"upstream timed out ({type(exc).__name__})", ambiguous=ambiguous)
    return UpstreamError.of(ErrorClass.UPSTREAM_UNAVAILABLE, f"upstream unreachable ({type(exc).__name__})", ambiguous=ambiguous)
