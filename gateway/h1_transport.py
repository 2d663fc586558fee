"""An httpx transport speaking HTTP/1.1 on asyncio protocols, parsed by httptools.

Adapters parse `httpx.Response`s and the retry policy speaks httpx's exceptions, so the
upstream clients stay `httpx.AsyncClient`s; this is only what carries their bytes. At
10,000 jobs in flight the polls are most of what vidgate does, and a poll's HTTP round
trip was most of a poll's CPU: ~1 ms on httpcore's pool, ~0.2 ms on aiohttp's, and on
this transport under a tenth of that (bench/poll_cost.py). It does the little an
upstream API call needs: keep-alive connections per origin, at most `max_connections`
in use at once, TLS, bodies by length, chunks or to the end of the connection, read in
chunks with back-pressure (a download never buffers more than `_HIGH_WATER`).

One thing is deliberately strict: whether a request may have left. Only a failure to
connect (`ConnectError`, `ConnectTimeout`) says it did not; a connection dropped or a
read timed out after sending is a `RemoteProtocolError`, `ReadError` or `ReadTimeout`,
so a paid submit that failed that way is treated as an unknown outcome, never resent
(`providers.client`).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import cast

import httptools
import httpx

from providers.client import Exchanged, Origin, origin_of

_HIGH_WATER = 256 * 1024  # buffered body bytes at which reading from the socket pauses
_LOW_WATER = 64 * 1024  # ... and below which it resumes

MAX_ANSWER = 32 * 1024 * 1024  # bytes an API answer read whole (`exchange`) may have


_PoolKey = tuple[Origin, str | None]
"""Where a connection goes, and the TLS server name it was opened for (None: the host's)."""


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection, carrying one request at a time."""

    def __init__(self, key: _PoolKey) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self.lost = False
        self._busy = False
        self._paused = False  # reading from the socket, until the buffered body drains
        self._waiter: asyncio.Future[None] | None = None
        self._new_answer(None, head_only=False)

    def _new_answer(self, request: httpx.Request | None, *, head_only: bool) -> None:
        """Everything about the answer to the next request, as nothing of it has arrived."""
        self._request = request  # for the exceptions' `request`, when httpx sent it
        self._head_only = head_only
        self._parser = httptools.HttpResponseParser(self)
        self._reason = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._headers_done = False
        self._status = 0
        self._keep_alive = False
        self._framed = False  # the body's end is known (length or chunks), not the connection's end
        self._complete = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._error: httpx.TransportError | None = None

    # --- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports don't subclass asyncio's

    def data_received(self, data: bytes) -> None:
        if not self._busy or self._complete:  # bytes nobody asked for: the connection can't be trusted
            self._keep_alive = False
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed HTTP answer: {exc}", request=self._request))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self._busy or self._complete:
            return
        if self._headers_done and not self._framed:  # a body that runs to the connection's end
            self.on_message_complete()
        elif self._headers_done:
            self._fail(httpx.ReadError("the connection closed before the body ended", request=self._request))
        else:
            self._fail(httpx.RemoteProtocolError("the server closed the connection without answering", request=self._request))

    # --- httptools callbacks (a second answer to one request is not read, and ends the connection)

    def on_message_begin(self) -> None:
        if self._complete:
            self._keep_alive = False

    def on_status(self, status: bytes) -> None:
        if not self._complete:
            self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._complete:
            return
        self._headers.append((name, value))
        lowered = name.lower()
        if lowered == b"content-length" or (lowered == b"transfer-encoding" and b"chunked" in value.lower()):
            self._framed = True

    def on_headers_complete(self) -> None:
        if self._complete:
            return
        self._headers_done = True
        # read now: llhttp forgets keep-alive once the message ends, and moves on to any next one
        self._status = self._parser.get_status_code()
        self._keep_alive = self._parser.should_keep_alive()
        if self._head_only or self._status in (204, 304):
            self._framed = True
            self.on_message_complete()
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._complete:
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered >= _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if not self._complete:
            self._complete = True
            self._wake()

    # --- the request's side

    def start(self, request: httpx.Request | None, head: bytes, body: bytes) -> None:
        assert self.transport is not None
        self._new_answer(request, head_only=head.startswith(b"HEAD "))
        self._busy = True
        if self.lost:
            self._error = httpx.RemoteProtocolError("the connection closed before the request was sent", request=request)
        self.transport.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.transport.write(body)

    async def response_head(self, timeout: float | None) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        while not self._headers_done:
            await self._wait(timeout)
        return self._status, self._reason, self._headers

    async def body_chunks(self, timeout: float | None) -> AsyncIterator[bytes]:
        while True:
            while self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._paused and self._buffered < _LOW_WATER and self.transport is not None:
                    self._paused = False
                    self.transport.resume_reading()
                yield chunk
            if self._complete:
                return
            await self._wait(timeout)

    @property
    def complete(self) -> bool:
        return self._complete and self._error is None

    def take_body(self) -> bytes:
        """What is buffered of the body, taken whole (once the answer is complete)."""
        chunks = self._chunks
        body = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._buffered = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return body

    @property
    def reusable(self) -> bool:
        return self._complete and not self.lost and self._error is None and self._keep_alive and not self._chunks

    def finish(self) -> None:
        self._request = None
        self._busy = False

    def close(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.abort()

    async def _wait(self, timeout: float | None) -> None:
        if self._error is not None:
            raise self._error
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        timer = loop.call_later(timeout, self._time_out, waiter) if timeout is not None else None
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
        if self._error is not None:
            raise self._error

    def _time_out(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_exception(httpx.ReadTimeout("no answer within the read timeout", request=self._request))

    def _fail(self, error: httpx.TransportError) -> None:
        if self._error is None:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class _Body(httpx.AsyncByteStream):
    def __init__(self, transport: H1Transport, connection: _Connection, timeout: float | None) -> None:
        self._transport = transport
        self._connection = connection
        self._timeout = timeout
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._connection.body_chunks(self._timeout):
                yield chunk
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if not self._released:
            self._released = True
            self._transport._release(self._connection)


class H1Transport(httpx.AsyncBaseTransport):
    """`httpx.AsyncClient(transport=H1Transport(max_connections=32))`: HTTP/1.1 with
    keep-alive, at most `max_connections` in use at once (a request beyond them waits for
    one), idle ones kept `keepalive_seconds`. The client's connect and read timeouts apply;
    callers bound their own requests in flight, as `providers.client.UpstreamClient` does."""

    # 4 s: under the idle timeouts servers commonly close at (uvicorn 5 s, nginx 75 s), so a
    # kept connection is rarely reused just as its server closes it, which would make a paid
    # submit on it an unknown outcome.
    def __init__(self, *, max_connections: int, keepalive_seconds: float = 4.0) -> None:
        self._limit = asyncio.Semaphore(max_connections)
        self._keepalive = keepalive_seconds
        self._idle: dict[_PoolKey, list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._tls: ssl.SSLContext | None = None
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        body = request.content if isinstance(request.stream, httpx.ByteStream) else await request.aread()
        if request.headers.get("transfer-encoding", "").lower() == "chunked":  # httpx's choice for a body of unknown length
            body = (b"%x\r\n" % len(body) + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
        url = request.url
        # `sni_hostname` (gateway.urlguard pins a request to the address it checked): the
        # name TLS presents and verifies the certificate against, instead of the IP.
        sni = request.extensions.get("sni_hostname")
        key: _PoolKey = (origin_of(url), sni.decode("ascii") if isinstance(sni, bytes) else sni)
        connection, status, reason, headers = await self._start(key, _head(request, body), body, request, timeouts.get("connect"), timeouts.get("read"))
        return httpx.Response(
            status_code=status,
            headers=headers,
            stream=_Body(self, connection, timeouts.get("read")),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
        )

    async def exchange(self, origin: Origin, head: bytes, body: bytes, *, connect_timeout: float | None, read_timeout: float | None) -> Exchanged:
        """One request whose head the caller serialized (request line, headers, blank line),
        answered whole: the upstream clients' API calls take this lane, with no httpx
        request or stream objects on the way (the bulk of a poll's CPU on the other lane).
        An answer over `MAX_ANSWER` bytes is refused as a protocol error."""
        connection, status, reason, headers = await self._start((origin, None), head, body, None, connect_timeout, read_timeout)
        if connection.complete:  # the usual API answer: it came in with its head
            body = connection.take_body()
            if len(body) > MAX_ANSWER:
                self._release(connection, keep=False)
                raise httpx.RemoteProtocolError(f"the answer is larger than {MAX_ANSWER} bytes")
            self._release(connection)
            return Exchanged(status, reason, headers, body)
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in connection.body_chunks(read_timeout):
                size += len(chunk)
                if size > MAX_ANSWER:
                    raise httpx.RemoteProtocolError(f"the answer is larger than {MAX_ANSWER} bytes")
                chunks.append(chunk)
        except BaseException:
            self._release(connection, keep=False)
            raise
        self._release(connection)
        return Exchanged(status, reason, headers, chunks[0] if len(chunks) == 1 else b"".join(chunks))

    async def _start(
        self, key: _PoolKey, head: bytes, body: bytes, request: httpx.Request | None, connect_timeout: float | None, read_timeout: float | None
    ) -> tuple[_Connection, int, bytes, list[tuple[bytes, bytes]]]:
        """Send one request on a pooled connection and read the answer's head; the caller
        reads the body and hands the connection back with `_release`."""
        if self._closed:
            raise RuntimeError("the transport is closed")
        await self._limit.acquire()
        connection: _Connection | None = None
        try:
            connection = await self._connection(key, connect_timeout)
            connection.start(request, head, body)
            status, reason, headers = await connection.response_head(read_timeout)
        except BaseException:
            if connection is not None:
                self._drop(connection)
            self._limit.release()
            raise
        return connection, status, reason.strip(), headers

    async def aclose(self) -> None:
        self._closed = True
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()

    async def _connection(self, key: _PoolKey, connect_timeout: float | None) -> _Connection:
        idle = self._idle.get(key)
        if idle:
            stale_before = time.monotonic() - self._keepalive
            while idle:
                connection = idle.pop()
                if not connection.lost and connection.idle_since > stale_before:
                    return connection
                self._drop(connection)
        return await self._connect(key, connect_timeout)

    async def _connect(self, key: _PoolKey, timeout: float | None) -> _Connection:
        (scheme, host, port), sni = key
        tls = self._client_tls() if scheme == b"https" else None
        loop = asyncio.get_running_loop()
        hostname = host.decode("ascii")
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(key), hostname, port, ssl=tls, server_hostname=(sni or hostname) if tls else None),
                timeout,
            )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"could not connect to {hostname}:{port} in time") from exc
        except OSError as exc:  # refused, unreachable, no such host, a failed TLS handshake
            raise httpx.ConnectError(f"could not connect to {hostname}:{port}: {exc}") from exc
        self._open.add(connection)
        return connection

    def _client_tls(self) -> ssl.SSLContext:
        """The TLS context of every https connection: the system's trust store, hostnames checked."""
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def _release(self, connection: _Connection, *, keep: bool = True) -> None:
        """The response is done with: keep its connection for the next request if it can be."""
        self._limit.release()
        if keep and connection.reusable and not self._closed:
            connection.finish()
            connection.idle_since = time.monotonic()
            self._idle.setdefault(connection.key, []).append(connection)
        else:
            self._drop(connection)

    def _drop(self, connection: _Connection) -> None:
        connection.finish()
        if connection.lost:
            connection.close()
        else:
            connection.abort()  # mid-answer: nothing more of it may be read as the next answer
        self._open.discard(connection)


def _head(request: httpx.Request, body: bytes) -> bytes:
    lines = [request.method.encode("ascii"), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
    for name, value in request.headers.raw:
        lines += (name, b": ", value, b"\r\n")
    if body and not any(name.lower() in (b"content-length", b"transfer-encoding") for name, _ in request.headers.raw):
        lines += (b"content-length: ", str(len(body)).encode("ascii"), b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)
