"""`UpstreamClient.stream_content`: the upstream's own content route, redirects followed by the
client itself, with the upstream's credentials sent to its own origin only."""

from __future__ import annotations

import httpx
import pytest

from providers.base import ErrorClass, JobStatus, UpstreamError, UpstreamJob
from providers.client import MAX_REDIRECTS, UpstreamClient
from providers.powertokens.adapter import PowerTokensAdapter

TASK = "task_0123456789abcdef"
JOB = UpstreamJob(upstream_id=TASK, status=JobStatus.COMPLETED, upstream_status="completed")


def client(handler: httpx.MockTransport) -> UpstreamClient:
    return UpstreamClient(PowerTokensAdapter(), httpx.AsyncClient(base_url="https://pt.example", transport=handler), "secret-token")


async def test_redirects_are_followed_and_credentials_stay_with_the_upstreams_origin() -> None:
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        if request.url.host == "pt.example" and request.url.path.endswith("/content"):
            return httpx.Response(302, headers={"location": "/files/v.mp4"})
        if request.url.host == "pt.example":
            return httpx.Response(307, headers={"location": "https://cdn.example/signed/v.mp4?sig=1"})
        return httpx.Response(200, content=b"video bytes", headers={"set-cookie": "cdn=1"})

    upstream = client(httpx.MockTransport(handler))
    async with upstream.stream_content(TASK, JOB) as response:
        assert await response.aread() == b"video bytes"
    assert seen == [
        (f"https://pt.example/v1/videos/{TASK}/content", "Bearer secret-token"),
        ("https://pt.example/files/v.mp4", "Bearer secret-token"),
        ("https://cdn.example/signed/v.mp4?sig=1", None),
    ]
    assert not upstream.http.cookies


async def test_a_redirect_loop_ends_as_an_unavailable_upstream() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(302, headers={"location": f"/again/{calls}"})

    with pytest.raises(UpstreamError) as caught:
        async with client(httpx.MockTransport(handler)).stream_content(TASK, JOB):
            pass
    assert caught.value.info.error_class is ErrorClass.UPSTREAM_UNAVAILABLE
    assert calls == MAX_REDIRECTS
