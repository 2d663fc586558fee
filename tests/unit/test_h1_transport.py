"""The upstream clients' HTTP/1.1 transport, against raw sockets on loopback: requests go out as
httpx (or, on the whole-answer lane, `UpstreamClient`) built them, answers come back as httpx
responses, connections are kept and reused, and every failure says truthfully whether the
request may have left (a paid submit is never resent when it may have)."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from gateway.h1_transport import H1Transport
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
    return httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(timeout, connect=2.0), transport=H1Transport(max_connections=4))


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
            assert sum(chunks) == size and max(chunks) <= 2**18  # one socket read at most
    assert connections == 1


async def test_make_client_uses_it_unless_a_test_hands_in_a_transport() -> None:
    async with make_client("http://127.0.0.1:1", timeout=1, connect_timeout=1, max_connections=2) as http:
        assert isinstance(http._transport, H1Transport)
    mock = httpx.MockTransport(lambda request: httpx.Response(200))
    async with make_client("http://x", timeout=1, connect_timeout=1, max_connections=2, transport=mock) as http:
        assert http._transport is mock


def upstream_client(http: httpx.AsyncClient) -> UpstreamClient:
    return UpstreamClient(PowerTokensAdapter(), http, "k")


async def test_api_calls_go_out_as_the_client_built_them_on_one_kept_connection() -> None:
    heads: list[bytes] = []
    bodies: list[bytes] = []
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while not reader.at_eof():
            try:
                head, body = await read_request(reader)
            except asyncio.IncompleteReadError:
                break
            heads.append(head)
            bodies.append(body)
            writer.write(b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}')
            await writer.drain()

    async with server(handler) as base, make_client(base + "/api", timeout=5, connect_timeout=2, max_connections=4, instance="r1") as http:
        upstream = upstream_client(http)
        for _ in range(3):
            answer = await upstream.send(HttpCall(method="POST", path="/v1/videos", json={"prompt": "p"}, params={"a": "b c"}), idempotent=False)
            assert answer.status_code == 200 and answer.json() == {"ok": True}
            assert answer.request.url.path == "/api/v1/videos"  # built when asked for
        await upstream.send(HttpCall(method="GET", path="/v1/videos/t1"), idempotent=True)
    assert connections == 1
    first = heads[0].decode().split("\r\n")
    assert first[0] == "POST /api/v1/videos?a=b+c HTTP/1.1"
    fields = {line.split(": ", 1)[0].lower(): line.split(": ", 1)[1] for line in first[1:] if line}
    assert fields["host"] == base.removeprefix("http://")
    assert fields["authorization"] == "Bearer k" and fields["user-agent"] == "vidgate/0.1 (r1)"
    assert fields["content-type"] == "application/json" and fields["content-length"] == str(len(bodies[0]))
    assert "accept-encoding" not in fields  # answers come back as sent
    assert bodies[0] == b'{"prompt":"p"}'
    assert heads[3].startswith(b"GET /api/v1/videos/t1 HTTP/1.1\r\n") and b"content-length" not in heads[3].lower()


async def test_a_call_whose_path_needs_encoding_takes_httpx_lane() -> None:
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append((await read_request(reader))[0])
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        writer.close()

    async with server(handler) as base, client(base) as http:
        answer = await upstream_client(http).send(HttpCall(method="GET", path="/v1/videos/a b/é"), idempotent=True)
    assert answer.status_code == 204
    assert heads[0].startswith(b"GET /v1/videos/a%20b/%C3%A9 HTTP/1.1\r\n")


async def test_connection_close_chunks_and_bodies_to_the_end_of_the_connection() -> None:
    answers = [
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nto the end",
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
    ]
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while answers:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                break
            answer = answers.pop(0)
            writer.write(answer)
            await writer.drain()
            if b"connection: close" in answer:
                break
        writer.close()

    async with server(handler) as base, client(base) as http:
        upstream = upstream_client(http)
        bodies = [(await upstream.send(HttpCall(method="GET", path=f"/{i}"), idempotent=True)).content for i in range(3)]
    assert bodies == [b"abcdefg", b"to the end", b"ok"]
    assert connections == 2  # the chunked answer's connection was kept; each close was honoured


async def test_an_idle_connection_the_server_closed_is_not_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")  # says keep-alive, then closes
        await writer.drain()
        writer.close()

    async with server(handler) as base, client(base) as http:
        upstream = upstream_client(http)
        assert (await upstream.send(HttpCall(method="GET", path="/"), idempotent=True)).content == b"ok"
        await asyncio.sleep(0.05)  # the close reaches the client
        assert (await upstream.send(HttpCall(method="GET", path="/"), idempotent=False)).content == b"ok"


async def test_a_malformed_or_oversized_answer_is_a_protocol_error_and_an_unknown_outcome_for_a_submit(monkeypatch: pytest.MonkeyPatch) -> None:
    import gateway.h1_transport as h1

    monkeypatch.setattr(h1, "MAX_ANSWER", 1000)
    answers = [b"NOT HTTP AT ALL\r\n\r\n", b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n" + b"x" * 5000]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answers.pop(0))
        await writer.drain()
        await asyncio.sleep(0.5)
        writer.close()

    async with server(handler) as base, client(base) as http:
        upstream = upstream_client(http)
        for _ in range(2):
            with pytest.raises(UpstreamError) as caught:
                await upstream.send(HttpCall(method="POST", path="/v1/videos", json={}), idempotent=False)
            assert caught.value.ambiguous and caught.value.info.error_class is ErrorClass.UPSTREAM_UNAVAILABLE
        assert not http._transport._open  # type: ignore[attr-defined]  # neither connection was kept


async def test_a_cancelled_call_frees_its_connection_slot() -> None:
    hung = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await read_request(reader)
        if b"/hang" in head:
            hung.set()
            await asyncio.sleep(5)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    base_ctx = server(handler)
    async with base_ctx as base, httpx.AsyncClient(base_url=base, timeout=5, transport=H1Transport(max_connections=1)) as http:
        upstream = upstream_client(http)
        call = asyncio.ensure_future(upstream.send(HttpCall(method="GET", path="/hang"), idempotent=True))
        await hung.wait()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        answer = await asyncio.wait_for(upstream.send(HttpCall(method="GET", path="/"), idempotent=True), 2)
    assert answer.content == b"ok"


async def test_a_slow_reader_pauses_the_socket_instead_of_buffering_the_download() -> None:
    import gateway.h1_transport as h1

    size = 16 * 2**20

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: " + str(size).encode() + b"\r\n\r\n")
        block = b"v" * 2**20
        for _ in range(16):
            writer.write(block)
            await writer.drain()
        writer.close()

    async with server(handler) as base, client(base) as http:
        transport = http._transport
        assert isinstance(transport, H1Transport)
        received = 0
        most_buffered = 0
        async with http.stream("GET", "/v") as response:
            async for chunk in response.aiter_raw():
                received += len(chunk)
                (connection,) = transport._open
                most_buffered = max(most_buffered, connection._buffered)
                await asyncio.sleep(0.002)
    assert received == size
    assert most_buffered <= h1._HIGH_WATER + 2**18  # paused at the high-water mark, give or take one socket read


async def test_a_request_pinned_to_an_address_presents_and_verifies_the_name_it_was_checked_for() -> None:
    """gateway.urlguard connects to the address it checked and keeps the name for TLS
    (`sni_hostname`): the server sees that name and the certificate is verified against it."""
    import ssl

    import trustme

    from gateway.urlguard import UrlGuard

    authority = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("media.example").configure_cert(server_ctx)
    names: list[str | None] = []
    server_ctx.sni_callback = lambda sock, name, ctx: names.append(name)  # type: ignore[assignment,misc,return-value]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()

    srv = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=server_ctx)
    port = srv.sockets[0].getsockname()[1]

    async def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    transport = H1Transport(max_connections=4)
    authority.configure_trust(transport._client_tls())
    guard = UrlGuard(allow_private=True, resolver=resolve)
    try:
        async with httpx.AsyncClient(transport=transport, timeout=5) as http:
            for _ in range(2):
                response = await guard.open(http, "GET", f"https://media.example:{port}/v.mp4", field="image")
                assert (await response.aread()) == b"ok"
                await response.aclose()
            assert names == ["media.example"]  # one TLS connection, kept for the second request
            other = UrlGuard(allow_private=True, resolver=resolve)
            with pytest.raises(httpx.ConnectError):  # the certificate names media.example only
                await other.open(http, "GET", f"https://other.example:{port}/v.mp4", field="image")
    finally:
        srv.close()
        await srv.wait_closed()


async def test_a_second_answer_to_one_request_is_not_read_and_its_connection_is_not_kept() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\none" + b"HTTP/1.1 500 Oops\r\ncontent-length: 3\r\nx-extra: 1\r\n\r\ntwo")
            await writer.drain()

    async with server(handler) as base, client(base) as http:
        upstream = upstream_client(http)
        for _ in range(2):
            answer = await upstream.send(HttpCall(method="GET", path="/"), idempotent=True)
            assert (answer.status_code, answer.content, answer.headers.get("x-extra")) == (200, b"one", None)
    assert connections == 2
