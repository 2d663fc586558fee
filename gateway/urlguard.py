"""The SSRF guard: every URL vidgate fetches or calls passes through here.

`UrlGuard.check` parses a URL, resolves its host and refuses it when any
resolved address is not a public unicast address (loopback, private, link-local,
cloud metadata, CGNAT, multicast, reserved ...), unless the guard was built with
`allow_private=True` (the demo and tests, which talk to loopback servers).

`UrlGuard.open` is the only way the gateway should send a request to a
caller-supplied URL: it checks the URL, pins the connection to the address it
checked (so a second DNS answer cannot swap in a private address between check
and connect), and follows redirects itself, re-checking every hop.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
import msgspec

from gateway.errors import InvalidRequest
from providers.client import send_unwrapped

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

MAX_URL_LENGTH = 8192
MAX_REDIRECTS = 5

# Cloud metadata endpoints stay blocked even with allow_private: nothing vidgate
# does legitimately needs them, and they hand out credentials.
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean ...
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
)
_METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.com",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPAT = ipaddress.ip_network("::/96")

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class UrlNotAllowed(InvalidRequest):
    """A URL the guard refuses. `transient` is True when only resolution failed
    (DNS may answer later); a blocked address or a malformed URL is permanent."""

    code = "url_not_allowed"

    def __init__(self, message: str, *, param: str | None = None, transient: bool = False) -> None:
        super().__init__(message, param=param, code="url_unresolvable" if transient else None)
        self.transient = transient


class CheckedUrl(msgspec.Struct, frozen=True):
    """A URL that passed the guard and the addresses it was checked against."""

    url: httpx.URL
    host: str  # ASCII (IDNA) host as resolved, no brackets
    addresses: tuple[str, ...]


def blocked_reason(ip: IPAddress) -> str | None:
    """Why `ip` is not a public unicast address, or None if it is one."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return blocked_reason(embedded)
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip in _METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "a shared (CGNAT) address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "a non-public address"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address merely wraps (mapped, NAT64, 6to4, compat)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (ip in _IPV4_COMPAT and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


class UrlGuard:
    def __init__(
        self,
        allow_private: bool = False,
        allowed_schemes: Sequence[str] = ("https", "http"),
        *,
        resolver: Resolver | None = None,
        resolve_timeout: float = 5.0,
    ) -> None:
        self.allow_private = allow_private
        self.allowed_schemes = tuple(s.lower() for s in allowed_schemes)
        self._resolve = resolver or system_resolver
        self._resolve_timeout = resolve_timeout

    async def check(self, url: str, *, field: str, redirected: bool = False) -> CheckedUrl:
        """Validate `url` for a request; raises `UrlNotAllowed` (an `InvalidRequest`
        naming `field`) with the reason. Returns the parsed URL and its addresses."""
        prefix = f"{field} redirected to a URL that is not allowed" if redirected else f"{field} is not an allowed URL"

        def refuse(reason: str, *, transient: bool = False) -> UrlNotAllowed:
            return UrlNotAllowed(f"{prefix}: {reason}", param=field, transient=transient)

        if len(url) > MAX_URL_LENGTH:
            raise refuse(f"longer than {MAX_URL_LENGTH} characters")
        try:
            parsed = _parse_url(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise refuse("it could not be parsed") from None
        if parsed.scheme not in self.allowed_schemes:
            shown = parsed.scheme or "none"
            raise refuse(f"scheme {shown!r} is not one of {', '.join(self.allowed_schemes)}")
        if parsed.userinfo:
            raise refuse("credentials in the URL are not accepted")
        try:
            host = parsed.raw_host.decode("ascii").lower().rstrip(".")
        except UnicodeDecodeError:
            raise refuse("the host is not valid") from None
        if not host:
            raise refuse("a host is required")
        if host in _METADATA_HOSTS:
            raise refuse("the host is a cloud metadata service")
        if not self.allow_private and (host == "localhost" or host.endswith(".localhost")):
            raise refuse("the host is a loopback address")

        literal = _ip_literal(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            addresses = await self._lookup(host, parsed.port or _default_port(parsed.scheme), refuse)
        for ip in addresses:
            if _is_metadata(ip):
                raise refuse("the host is a cloud metadata address")
            if self.allow_private:
                continue
            reason = blocked_reason(ip)
            if reason is not None:
                what = "the host is" if literal is not None else "the host resolves to"
                raise refuse(f"{what} {reason}")
        return CheckedUrl(url=parsed, host=host, addresses=tuple(str(ip) for ip in addresses))

    async def _lookup(self, host: str, port: int, refuse: Callable[..., UrlNotAllowed]) -> list[IPAddress]:
        try:
            async with asyncio.timeout(self._resolve_timeout):
                raw = await self._resolve(host, port)
        except (OSError, TimeoutError, UnicodeError):
            raise refuse(f"the host {host!r} could not be resolved", transient=True) from None
        addresses: list[IPAddress] = []
        for text in raw:
            try:
                addresses.append(ipaddress.ip_address(text.split("%", 1)[0]))
            except ValueError:
                continue
        if not addresses:
            raise refuse(f"the host {host!r} could not be resolved", transient=True)
        # IPv4 first: the pinned connection uses the first address.
        addresses.sort(key=lambda ip: ip.version)
        return addresses

    def build_request(
        self,
        client: httpx.AsyncClient,
        method: str,
        checked: CheckedUrl,
        **kwargs: Any,
    ) -> httpx.Request:
        """A request for `checked`, its connection pinned to the checked address (Host
        header and TLS SNI keep the name), so a DNS answer that changes after the check
        cannot redirect it. This holds with `allow_private` too: the metadata addresses
        are refused in that mode as well, and only the pin keeps a rebinding answer from
        reaching one."""
        if _ip_literal(checked.host) is not None:
            return client.build_request(method, checked.url, **kwargs)
        netloc = checked.url.netloc.decode("ascii")
        headers = httpx.Headers(kwargs.pop("headers", None))
        headers["host"] = netloc
        extensions = dict(kwargs.pop("extensions", None) or {})
        if checked.url.scheme == "https":
            extensions["sni_hostname"] = checked.host
        pinned = checked.url.copy_with(host=checked.addresses[0])
        return client.build_request(method, pinned, headers=headers, extensions=extensions, **kwargs)

    async def open(
        self,
        client: httpx.AsyncClient,
        method: str,
        url: str,
        *,
        field: str,
        follow_redirects: bool = True,
        max_redirects: int = MAX_REDIRECTS,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a guarded request and return the *streaming* response (the caller
        closes it). Redirects of a GET are followed here, each hop re-checked; any
        other method, or `follow_redirects=False`, gets the 3xx back as is."""
        checked = await self.check(url, field=field)
        hops = 0
        while True:
            request = self.build_request(client, method, checked, **kwargs)
            response = await send_unwrapped(client, request)  # no cookie jar: see providers.client
            redirect = response.status_code in _REDIRECT_STATUSES and "location" in response.headers
            if not (follow_redirects and method == "GET" and redirect):
                return response
            location = response.headers["location"]
            await response.aclose()
            hops += 1
            if hops > max_redirects:
                raise UrlNotAllowed(f"{field}: more than {max_redirects} redirects", param=field)
            try:
                target = checked.url.join(location)
            except (httpx.InvalidURL, ValueError):
                raise UrlNotAllowed(f"{field} redirected to an invalid URL", param=field) from None
            checked = await self.check(str(target), field=field, redirected=True)


def _is_metadata(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            ip = embedded
    return ip in _METADATA_ADDRESSES


@functools.lru_cache(maxsize=1024)
def _parse_url(url: str) -> httpx.URL:
    """`httpx.URL(url)`, remembered: a receiver's or a result host's URLs come back again and
    again, and parsing one costs more than the rest of its check. (A URL is immutable.)"""
    return httpx.URL(url)


def host_of(url: str) -> str | None:
    """The host only, for a log line: a URL's path or query may carry a token."""
    try:
        return _parse_url(url).host or None
    except (httpx.InvalidURL, TypeError, ValueError):
        return None


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80
