"""The SSRF guard. No test touches the network: literals need no DNS, and hostnames
go through an injected resolver."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from gateway.errors import InvalidRequest
from gateway.urlguard import UrlGuard, UrlNotAllowed, blocked_reason


def _no_dns(host: str, port: int):
    raise AssertionError(f"unexpected DNS lookup of {host}")


def _resolver(table: dict[str, list[str]]):
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"no such host {host}")
        return table[host]

    return resolve


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/x", "loopback"),
        ("http://127.8.9.10:8080/x", "loopback"),
        ("http://localhost/x", "loopback"),
        ("http://api.localhost./x", "loopback"),
        ("http://10.0.0.1/x", "private"),
        ("http://172.16.5.4/x", "private"),
        ("http://192.168.1.1/x", "private"),
        ("http://169.254.169.254/latest/meta-data", "metadata"),
        ("http://169.254.10.10/", "link-local"),
        ("http://[::1]/x", "loopback"),
        ("http://[::ffff:127.0.0.1]/x", "loopback"),
        ("http://[::ffff:a9fe:a9fe]/", "metadata"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[fd12:3456::1]/", "private"),
        ("http://[2002:7f00:1::]/", "loopback"),  # 6to4 wrapping 127.0.0.1
        ("http://[64:ff9b::a00:1]/", "private"),  # NAT64 wrapping 10.0.0.1
        ("http://100.64.0.1/x", "CGNAT"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://192.0.2.10/", "private"),  # documentation range
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
        ("ftp://93.184.216.34/file", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("gopher://93.184.216.34/", "scheme"),
        ("https://user:pw@93.184.216.34/", "credentials"),
        ("https:///nohost", "host is required"),
        ("not a url", "scheme"),
    ],
)
async def test_refused_with_the_field_named(url: str, reason: str) -> None:
    guard = UrlGuard(resolver=_no_dns)
    with pytest.raises(UrlNotAllowed) as caught:
        await guard.check(url, field="input_reference")
    err = caught.value
    assert isinstance(err, InvalidRequest)
    assert err.status == 422
    assert err.param == "input_reference"
    assert err.message.startswith("input_reference is not an allowed URL: ")
    assert reason in err.message
    assert err.code == "url_not_allowed"
    assert not err.transient


@pytest.mark.parametrize("url", ["https://93.184.216.34/cat.png", "http://8.8.8.8:8080/a", "https://[2606:4700::6810:84e5]/v.mp4"])
async def test_public_literals_pass_without_dns(url: str) -> None:
    checked = await UrlGuard(resolver=_no_dns).check(url, field="image")
    assert checked.url == httpx.URL(url)
    assert len(checked.addresses) == 1


async def test_allow_private_lets_loopback_and_private_through() -> None:
    guard = UrlGuard(allow_private=True, resolver=_no_dns)
    for url in ("http://127.0.0.1:8000/x", "http://[::1]/", "http://10.0.0.1/", "http://100.64.0.1/"):
        await guard.check(url, field="webhook_url")


async def test_metadata_stays_blocked_even_with_allow_private() -> None:
    guard = UrlGuard(allow_private=True, resolver=_resolver({"sneaky.example": ["169.254.169.254"]}))
    for url in ("http://169.254.169.254/", "http://metadata.google.internal/", "http://sneaky.example/"):
        with pytest.raises(UrlNotAllowed, match="metadata"):
            await guard.check(url, field="webhook_url")


async def test_hostnames_are_resolved_and_any_bad_address_refuses() -> None:
    guard = UrlGuard(
        resolver=_resolver(
            {
                "good.example": ["93.184.216.34", "2606:2800:220:1::1"],
                "mixed.example": ["93.184.216.34", "10.0.0.7"],
                "rebind.example": ["127.0.0.1"],
            }
        )
    )
    checked = await guard.check("https://Good.Example./a", field="image")
    assert checked.host == "good.example"
    assert checked.addresses == ("93.184.216.34", "2606:2800:220:1::1")
    with pytest.raises(UrlNotAllowed, match="resolves to a private address"):
        await guard.check("https://mixed.example/a", field="image")
    with pytest.raises(UrlNotAllowed, match="resolves to a loopback address"):
        await guard.check("https://rebind.example/a", field="image")


async def test_resolution_failure_is_transient() -> None:
    guard = UrlGuard(resolver=_resolver({}))
    with pytest.raises(UrlNotAllowed) as caught:
        await guard.check("https://nowhere.example/", field="image")
    assert caught.value.transient
    assert caught.value.code == "url_unresolvable"
    assert "could not be resolved" in caught.value.message


async def test_allowed_schemes_can_be_narrowed() -> None:
    guard = UrlGuard(allowed_schemes=("https",), resolver=_no_dns)
    with pytest.raises(UrlNotAllowed, match="scheme 'http'"):
        await guard.check("http://93.184.216.34/", field="image")


def test_blocked_reason_table() -> None:
    assert blocked_reason(ipaddress.ip_address("93.184.216.34")) is None
    assert blocked_reason(ipaddress.ip_address("64:ff9b::5db8:d822")) is None  # NAT64 of a public v4
    assert blocked_reason(ipaddress.ip_address("::ffff:10.1.1.1")) == "a private address"
    assert blocked_reason(ipaddress.ip_address("100.127.255.255")) == "a shared (CGNAT) address"


# ---------------------------------------------------------------------------
# open(): redirects re-checked per hop
# ---------------------------------------------------------------------------


async def test_open_follows_redirects_rechecking_each_hop() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path == "/a":
            return httpx.Response(302, headers={"location": "/b"})
        if request.url.path == "/b":
            return httpx.Response(301, headers={"location": "http://10.0.0.5/internal"})
        raise AssertionError(f"requested {request.url}")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(UrlNotAllowed) as caught:
            await UrlGuard(resolver=_no_dns).open(client, "GET", "https://93.184.216.34/a", field="image")
    assert seen == ["https://93.184.216.34/a", "https://93.184.216.34/b"]
    assert caught.value.message.startswith("image redirected to a URL that is not allowed: ")
    assert caught.value.param == "image"


async def test_open_limits_redirect_hops() -> None:
    count = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal count
        count += 1
        return httpx.Response(302, headers={"location": f"/hop{count}"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(UrlNotAllowed, match="more than 5 redirects"):
            await UrlGuard(resolver=_no_dns).open(client, "GET", "https://93.184.216.34/", field="image")
    assert count == 6


async def test_open_pins_the_connection_to_the_checked_address() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"ok")

    guard = UrlGuard(resolver=_resolver({"cdn.example": ["2606:2800:220:1::1", "93.184.216.34"]}))
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        response = await guard.open(client, "GET", "https://cdn.example:8443/v.mp4", field="video")
        await response.aread()
    [request] = seen
    assert request.url == "https://93.184.216.34:8443/v.mp4"  # IPv4 first
    assert request.headers["host"] == "cdn.example:8443"
    assert request.extensions["sni_hostname"] == "cdn.example"


# ---------------------------------------------------------------------------
# DNS rebinding: the connection goes to the address that was checked
# ---------------------------------------------------------------------------


def _rebinding_resolver(first: str, later: str, lookups: list[str]):
    """Answers `first` to the first lookup of a name and `later` to every one after."""

    async def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return [first if len(lookups) == 1 else later]

    return resolve


def _connecting_transport(resolve, connected: list[str]) -> httpx.MockTransport:
    """A transport that, like a real one, resolves a hostname when it connects (with the
    same resolver as the guard) and records the address it reached."""

    async def handler(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        address = host if _is_literal(host) else (await resolve(host, request.url.port or 443))[0]
        connected.append(address)
        return httpx.Response(200, content=b"ok")

    return httpx.MockTransport(handler)


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    ("allow_private", "first"),
    [(False, "93.184.216.34"), (True, "93.184.216.34"), (True, "10.0.0.8"), (True, "127.0.0.1")],
)
async def test_a_rebinding_answer_after_the_check_cannot_reach_metadata(allow_private: bool, first: str) -> None:
    lookups: list[str] = []
    connected: list[str] = []
    resolve = _rebinding_resolver(first, "169.254.169.254", lookups)
    guard = UrlGuard(allow_private=allow_private, resolver=resolve)
    async with httpx.AsyncClient(transport=_connecting_transport(resolve, connected)) as client:
        response = await guard.open(client, "GET", "https://rebind.example/media.png", field="image")
        await response.aread()
        request = response.request
    assert connected == [first]  # the checked address, not the second answer
    assert lookups == ["rebind.example"]  # no second lookup happened at all
    assert request.headers["host"] == "rebind.example"
    assert request.extensions["sni_hostname"] == "rebind.example"


async def test_allow_private_pins_each_redirect_hop_too() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/a":
            return httpx.Response(302, headers={"location": "http://internal.example:8080/b"})
        return httpx.Response(200, content=b"ok")

    guard = UrlGuard(allow_private=True, resolver=_resolver({"media.example": ["10.0.0.1"], "internal.example": ["::1", "127.0.0.1"]}))
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        response = await guard.open(client, "GET", "http://media.example/a", field="image")
        await response.aread()
    assert [str(r.url) for r in seen] == ["http://10.0.0.1/a", "http://127.0.0.1:8080/b"]
    assert [r.headers["host"] for r in seen] == ["media.example", "internal.example:8080"]


async def test_cookies_an_answer_sets_are_neither_kept_nor_sent_on() -> None:
    """One receiver's or CDN's cookies must not follow vidgate to the next request."""
    sent: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"set-cookie": "session=tenant-a; Path=/"}, content=b"ok")

    guard = UrlGuard(allow_private=True)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        for _ in range(2):
            response = await guard.open(client, "GET", "http://127.0.0.1:9/hook", field="webhook_url")
            await response.aread()
            await response.aclose()
        assert not client.cookies
    assert sent == [None, None]
