"""An httpx transport on aiohttp's connection pool, for the upstream clients.

Adapters parse `httpx.Response`s, and the retry policy and error classes speak httpx's
exceptions, so the upstream clients stay `httpx.AsyncClient`s. Underneath, httpcore's
pool costs about 1 ms of CPU per request on this kind of machine (its bookkeeping
walks every connection for every request); aiohttp's costs about 0.3 ms (measured in
bench/poll_cost.py), and at 10,000 jobs in flight the polls are most of vidgate's work.

The exception mapping is deliberately strict about one thing: whether a request may
have left. Only a failure to connect (`ConnectError`, `ConnectTimeout`) says it did
not; a connection dropped or a read timed out after sending is a `RemoteProtocolError`,
`ReadError` or `ReadTimeout`, so a paid submit that failed that way is treated as an
unknown outcome, never resent (`providers.client`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import aiohttp
import httpx

CHUNK = 65536

# Most specific first: the first class that matches decides.
_MAPPING: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),  # before anything was sent
    (aiohttp.ClientConnectorError, httpx.ConnectError),  # before anything was sent
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.ClientOSError, httpx.ReadError),
    (aiohttp.ClientConnectionError, httpx.RemoteProtocolError),
    (asyncio.TimeoutError, httpx.ReadTimeout),
)


@contextmanager
def _as_httpx_errors(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except httpx.HTTPError:
        raise
    except (TimeoutError, aiohttp.ClientError) as exc:
        for source, target in _MAPPING:
            if isinstance(exc, source):
                raise target(f"{type(exc).__name__}: {exc}", request=request) from exc
        raise httpx.RemoteProtocolError(f"{type(exc).__name__}: {exc}", request=request) from exc


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors(self._request):
            async for chunk in self._response.content.iter_chunked(CHUNK):
                yield chunk

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """`httpx.AsyncClient(transport=AiohttpTransport(max_connections=32))`: HTTP/1.1 with
    keep-alive, at most `max_connections` open at once; the client's timeouts apply
    (connect and read; httpx's pool timeout has no counterpart: callers bound their own
    requests in flight, as `providers.client.UpstreamClient` does)."""

    def __init__(self, *, max_connections: int, keepalive_seconds: float = 15.0) -> None:
        self._limit = max_connections
        self._keepalive = keepalive_seconds
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._limit, keepalive_timeout=self._keepalive)
            # no cookie jar (an upstream's cookies must not follow us around), no automatic headers:
            # httpx built the request, Host, User-Agent and Accept-Encoding included
            self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False, skip_auto_headers=("User-Agent", "Accept-Encoding")
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeouts.get("connect"), sock_read=timeouts.get("read"))
        body = request.content if isinstance(request.stream, httpx.ByteStream) else await request.aread()
        with _as_httpx_errors(request):
            response = await self._client().request(
                request.method,
                str(request.url),
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                timeout=timeout,
                compress=None,
            )
        return httpx.Response(
            status_code=response.status,
            headers=list(response.raw_headers),
            stream=_Body(response, request),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode()},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
