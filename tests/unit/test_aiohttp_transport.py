"""The upstream clients' aiohttp transport, against raw sockets on loopback: requests go out as
httpx built them, answers come back as httpx responses, and every failure says truthfully
whether the request may have left (a paid submit is never resent when it may have)."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from gateway.aiohttp_transport import AiohttpTransport
from gateway.http import make_client
from providers.base import ErrorClass, HttpCall, UpstreamError
from providers.client import UpstreamClient
from providers.powertokens.adapter import PowerTokensAdapter
from providers.simkit import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[str]:
    srv = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.close()
        await srv.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0)
    return head, await reader.readexactly(length)


def client(base: str, timeout: float = 5.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(timeout, connect=2.0), transport=AiohttpTransport(max_connections=4))


async def test_a_request_goes_out_as_httpx_built_it_and_the_answer_comes_back_whole() -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        body = gzip.compress(b'{"ok": true}')
        writer.write(
            b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    async with server(handler) as base, client(base) as http:
        response = await http.post("/v1/videos?x=1", json={"prompt": "p"}, headers={"Authorization": "Bearer k", "User-Agent": "vidgate/test"})
    assert response.status_code == 201 and response.json() == {"ok": True}
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    head, body = seen[0]
    assert head.startswith(b"POST /v1/videos?x=1 HTTP/1.1\r\n")
    lowered = head.lower()
    assert b"authorization: bearer k" in lowered and b"user-agent: vidgate/test" in lowered and b"content-type: application/json" in lowered
    assert body == b'{"prompt":"p"}'


async def test_a_refused_connection_is_a_connect_error_so_a_submit_was_never_sent() -> None:
    async with client(f"http://127.0.0.1:{free_port()}") as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/")
        upstream = UpstreamClient(PowerTokensAdapter(), http, "k")
        with pytest.raises(UpstreamError) as caught:
            await upstream.send(HttpCall(method="POST", path="/v1/videos", json={}), idempotent=False)
    assert not caught.value.ambiguous and caught.value.info.error_class is ErrorClass.UPSTREAM_UNAVAILABLE


async def test_a_connection_dropped_after_the_request_left_is_an_unknown_outcome_for_a_submit() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.close()  # the upstream got it, then the connection went

    async with server(handler) as base, client(base) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post("/v1/videos", json={})
        upstream = UpstreamClient(PowerTokensAdapter(), http, "k")
        with pytest.raises(UpstreamError) as caught:
            await upstream.send(HttpCall(method="POST", path="/v1/videos", json={}), idempotent=False)
    assert caught.value.ambiguous


async def test_an_answer_that_never_comes_is_a_read_timeout_and_an_unknown_outcome_for_a_submit() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with server(handler) as base, client(base, timeout=0.2) as http:
        upstream = UpstreamClient(PowerTokensAdapter(), http, "k")
        with pytest.raises(UpstreamError) as caught:
            await upstream.send(HttpCall(method="POST", path="/v1/videos", json={}), idempotent=False)
    assert caught.value.ambiguous and caught.value.info.error_class is ErrorClass.TIMEOUT


async def test_a_body_cut_short_fails_while_it_is_read() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + b"x" * 1000)
        await writer.drain()
        writer.close()

    async with server(handler) as base, client(base) as http:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await http.get("/content")


async def test_a_large_body_streams_in_chunks_and_the_connection_is_reused() -> None:
    size = 3 * 2**20
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        for _ in range(2):
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: " + str(size).encode() + b"\r\n\r\n" + b"v" * size)
            await writer.drain()
        writer.close()

    async with server(handler) as base, client(base) as http:
        for _ in range(2):
            async with http.stream("GET", "/v") as response:
                chunks = [len(c) async for c in response.aiter_raw()]
            assert sum(chunks) == size and max(chunks) <= 65536
    assert connections == 1


async def test_make_client_uses_it_unless_a_test_hands_in_a_transport() -> None:
    async with make_client("http://127.0.0.1:1", timeout=1, connect_timeout=1, max_connections=2) as http:
        assert isinstance(http._transport, AiohttpTransport)
    mock = httpx.MockTransport(lambda request: httpx.Response(200))
    async with make_client("http://x", timeout=1, connect_timeout=1, max_connections=2, transport=mock) as http:
        assert http._transport is mock
