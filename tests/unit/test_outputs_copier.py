"""Copying finished outputs into vidgate's storage: real HTTP (loopback and MockTransport),
a real UrlGuard, a real directory."""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from litestar import Litestar, Response, get
from litestar.params import FromPath
from structlog.testing import capture_logs

from gateway.jobs.model import OutputCopy
from gateway.logging import redact_event
from gateway.outputs import LocalDiskStorage, OutputCopier, SourceError
from gateway.urlguard import UrlGuard
from providers.base import ErrorClass, UpstreamError
from providers.simkit import sample, serve_in_thread

MP4 = sample("video.mp4")
COVER = sample("cover.png")
LAST = sample("last_frame.png")
HTML = b"<!DOCTYPE html><html><body>Request has expired</body></html>"
SIGNED = "?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=deadbeefsecret"
CDN = "https://cdn.example.com"
PUBLIC_IP = "93.184.216.34"
NOW = 1_700_000_000.0


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def public_dns(host: str, port: int) -> list[str]:
    return [PUBLIC_IP]


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


class Harness:
    """A copier on a temp dir whose http client answers through `handler` (MockTransport)."""

    def __init__(
        self,
        root: Path,
        handler: Callable[[httpx.Request], httpx.Response] | None = None,
        *,
        max_bytes: int = 10**6,
        timeout: float = 30.0,
        guard: UrlGuard | None = None,
    ) -> None:
        self.requests: list[httpx.Request] = []
        self.sleeps = Sleeps()
        self.storage = LocalDiskStorage(root)

        async def record(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            if handler is None:
                pytest.fail(f"unexpected request to {request.url}")
            result = handler(request)
            return await result if asyncio.iscoroutine(result) else result

        self.http = httpx.AsyncClient(transport=httpx.MockTransport(record))
        self.copier = OutputCopier(
            self.storage,
            self.http,
            guard or UrlGuard(resolver=public_dns),  # real guard, private addresses refused
            max_bytes=max_bytes,
            timeout=timeout,
            clock=lambda: NOW,
            sleep=self.sleeps,
        )

    def paths(self) -> list[str]:
        return [f"{r.headers['host']}{r.url.path}" for r in self.requests]


def serve(files: dict[str, tuple[bytes, str]]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path not in files:
            return httpx.Response(404, text="no such object")
        body, ctype = files[request.url.path]
        return httpx.Response(200, content=body, headers={"content-type": ctype})

    return handler


def sequence(*responses: httpx.Response | Exception) -> Callable[[httpx.Request], httpx.Response]:
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return handler


def video_ok() -> httpx.Response:
    return httpx.Response(200, content=MP4, headers={"content-type": "video/mp4"})


# ---------------------------------------------------------------------------
# the happy path, over real loopback HTTP
# ---------------------------------------------------------------------------


@get("/media/{name:str}", sync_to_thread=False)
def media(name: FromPath[str]) -> Response[bytes]:
    files = {"video.mp4": (MP4, "video/mp4"), "cover.png": (COVER, "image/png"), "last.png": (LAST, "application/octet-stream")}
    body, ctype = files[name]
    return Response(body, media_type=ctype)


@get("/go/{name:str}", sync_to_thread=False)
def redirect(name: FromPath[str]) -> Response[None]:
    return Response(None, status_code=302, headers={"location": f"/media/{name}{SIGNED}"})


@pytest.fixture(scope="module")
def media_server() -> Iterator[str]:
    with serve_in_thread(Litestar([media, redirect])) as base:
        yield base


async def test_copies_all_three_variants_from_a_loopback_server(tmp_path: Path, media_server: str) -> None:
    storage = LocalDiskStorage(tmp_path / "outputs")
    async with httpx.AsyncClient() as http:
        copier = OutputCopier(storage, http, UrlGuard(allow_private=True), max_bytes=10**6, timeout=10, clock=lambda: NOW)
        with capture_logs() as logs:
            report = await copier.copy(
                "video_abc",
                {
                    "video": f"{media_server}/go/video.mp4{SIGNED}",  # followed through a redirect
                    "thumbnail": f"{media_server}/media/cover.png{SIGNED}",
                    "last_frame": f"{media_server}/media/last.png",  # served as octet-stream: the bytes decide
                },
            )

    assert report.failures == {}
    assert report.complete
    assert report.copies == {
        "video": OutputCopy(key="video_abc/video.mp4", content_type="video/mp4", bytes=len(MP4), sha256=sha(MP4), stored_at=NOW),
        "thumbnail": OutputCopy(key="video_abc/thumbnail.png", content_type="image/png", bytes=len(COVER), sha256=sha(COVER), stored_at=NOW),
        "last_frame": OutputCopy(key="video_abc/last_frame.png", content_type="image/png", bytes=len(LAST), sha256=sha(LAST), stored_at=NOW),
    }
    for variant, data in (("video", MP4), ("thumbnail", COVER), ("last_frame", LAST)):
        body = await storage.open(report.copies[variant].key)
        assert b"".join([c async for c in body]) == data
    assert files_under(storage.root) == ["video_abc", "video_abc/last_frame.png", "video_abc/thumbnail.png", "video_abc/video.mp4"]
    copied = [e for e in logs if e["event"] == "outputs.copied"]
    assert sorted(e["variant"] for e in copied) == ["last_frame", "thumbnail", "video"]
    assert {e["host"] for e in copied} == {"127.0.0.1"}
    # where the copy is stored is no secret: a field named `key` alone would be masked in the log
    assert {redact_event(None, "info", dict(e))["object_key"] for e in copied} == {c.key for c in report.copies.values()}
    assert "Signature" not in repr(logs) and "media/" not in repr(logs)


# ---------------------------------------------------------------------------
# what is refused, and what is retried
# ---------------------------------------------------------------------------


async def test_a_404_is_a_failure_and_is_not_retried(tmp_path: Path) -> None:
    h = Harness(tmp_path, serve({"/v.mp4": (MP4, "video/mp4")}))
    with capture_logs() as logs:
        report = await h.copier.copy("job1", {"video": f"{CDN}/gone.mp4{SIGNED}"})

    assert report.copies == {}
    assert report.failures == {"video": "HTTP 404 from cdn.example.com"}
    assert len(h.requests) == 1 and h.sleeps == []
    [failed] = [e for e in logs if e["event"] == "outputs.copy_failed"]
    assert (failed["log_level"], failed["host"], failed["variant"], failed["attempts"]) == ("warning", "cdn.example.com", "video", 1)
    assert "Signature" not in repr(logs) and "gone.mp4" not in repr(logs)


async def test_the_guard_pins_the_connection_to_the_checked_address(tmp_path: Path) -> None:
    h = Harness(tmp_path, serve({"/v.mp4": (MP4, "video/mp4")}))
    report = await h.copier.copy("job1", {"video": f"{CDN}/v.mp4{SIGNED}"})

    assert report.copies["video"].sha256 == sha(MP4)
    [request] = h.requests
    assert (request.url.host, request.headers["host"]) == (PUBLIC_IP, "cdn.example.com")


async def test_a_503_then_a_200_is_retried(tmp_path: Path) -> None:
    h = Harness(tmp_path, sequence(httpx.Response(503), video_ok()))
    with capture_logs() as logs:
        report = await h.copier.copy("job1", {"video": f"{CDN}/v.mp4{SIGNED}"})

    assert report.failures == {}
    assert report.copies["video"].bytes == len(MP4)
    assert len(h.requests) == 2
    assert len(h.sleeps) == 1 and 0.25 <= h.sleeps[0] <= 0.5  # full-jitter backoff, first step
    [retry] = [e for e in logs if e["event"] == "outputs.copy_retry"]
    assert (retry["reason"], retry["attempt"]) == ("HTTP 503 from cdn.example.com", 1)


async def test_a_429_waits_as_retry_after_says(tmp_path: Path) -> None:
    h = Harness(tmp_path, sequence(httpx.Response(429, headers={"retry-after": "2"}), video_ok()))
    report = await h.copier.copy("job1", {"video": f"{CDN}/v.mp4"})
    assert "video" in report.copies
    assert h.sleeps == [2.0]


async def test_a_persistent_5xx_gives_up_after_three_tries(tmp_path: Path) -> None:
    h = Harness(tmp_path, lambda r: httpx.Response(502))
    report = await h.copier.copy("job1", {"video": f"{CDN}/v.mp4"})
    assert report.failures == {"video": "HTTP 502 from cdn.example.com"}
    assert len(h.requests) == 3 and len(h.sleeps) == 2


async def test_a_transport_error_is_retried(tmp_path: Path) -> None:
    h = Harness(tmp_path, sequence(httpx.ConnectError("[Errno 111] Connection refused"), video_ok()))
    report = await h.copier.copy("job1", {"video": f"{CDN}/v.mp4"})
    assert report.copies["video"].sha256 == sha(MP4)
    assert len(h.requests) == 2


async def test_a_body_broken_mid_stream_is_retried_and_leaves_no_temp_file(tmp_path: Path) -> None:
    async def broken_body() -> AsyncIterator[bytes]:
        yield MP4[:5000]
        raise httpx.ReadError("connection reset by peer")

    h = Harness(tmp_path, sequence(httpx.Response(200, content=broken_body()), video_ok()))
    report = await h.copier.copy("job1", {"video": f"{CDN}/v.mp4"})

    assert report.copies["video"].bytes == len(MP4)
    assert files_under(h.storage.root) == ["job1", "job1/video.mp4"]


async def test_a_non_mp4_is_refused_not_retried_and_not_stored(tmp_path: Path) -> None:
    h = Harness(tmp_path, serve({"/v.mp4": (HTML, "text/html; charset=utf-8")}))
    report = await h.copier.copy("job1", {"video": f"{CDN}/v.mp4"})

    assert report.failures == {
        "video": "video: expected an MP4 video (ISO BMFF: a box size, then 'ftyp' at bytes 4..8), "
        "got text starting '<!DOCTYPE html><html><bo' (declared text/html)"
    }
    assert len(h.requests) == 1
    assert files_under(h.storage.root) == []


async def test_an_image_that_is_not_an_image_is_refused(tmp_path: Path) -> None:
    h = Harness(tmp_path, serve({"/t.png": (MP4, "image/png")}))
    report = await h.copier.copy("job1", {"thumbnail": f"{CDN}/t.png"})
    assert report.failures["thumbnail"].startswith("thumbnail: expected a PNG, JPEG or WebP image, got video/mp4 data")


async def test_a_body_over_the_limit_is_cut_off_mid_stream(tmp_path: Path) -> None:
    pulled = 0

    async def huge() -> AsyncIterator[bytes]:  # no content-length: only counting can stop it
        nonlocal pulled
        yield MP4
        while True:
            pulled += 1
            yield b"\0" * 50_000

    h = Harness(tmp_path, lambda r: httpx.Response(200, content=huge()), max_bytes=200_000)
    report = await h.copier.copy("job1", {"video": f"{CDN}/v.mp4"})

    assert report.failures == {"video": "over the limit of 200000 bytes"}
    assert pulled <= 5
    assert len(h.requests) == 1  # not retried
    assert files_under(h.storage.root) == []  # cut off before its first write: no temp file, no folder, nothing at the key
    assert not await h.storage.exists("job1/video.mp4")


async def test_a_body_over_the_limit_after_its_first_writes_leaves_no_temp_file(tmp_path: Path) -> None:
    async def huge() -> AsyncIterator[bytes]:
        yield MP4
        while True:
            yield b"\0" * 512 * 1024

    h = Harness(tmp_path, lambda r: httpx.Response(200, content=huge()), max_bytes=3 * 1024 * 1024)
    report = await h.copier.copy("job1", {"video": f"{CDN}/v.mp4"})

    assert report.failures == {"video": f"over the limit of {3 * 1024 * 1024} bytes"}
    assert files_under(h.storage.root) == ["job1"]  # two batches were written to a temp file: it is gone
    assert not await h.storage.exists("job1/video.mp4")


async def test_a_declared_size_over_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    h = Harness(tmp_path, lambda r: httpx.Response(200, content=MP4), max_bytes=1000)
    report = await h.copier.copy("job1", {"video": f"{CDN}/v.mp4"})
    assert report.failures == {"video": f"{len(MP4)} bytes is over the limit of 1000 bytes"}
    assert files_under(h.storage.root) == []


async def test_the_guard_refuses_a_private_url(tmp_path: Path, media_server: str) -> None:
    h = Harness(tmp_path)  # any request would fail the test
    report = await h.copier.copy("job1", {"video": f"{media_server}/media/video.mp4", "thumbnail": "http://10.0.0.8/t.png"})

    assert report.failures == {
        "video": "result is not an allowed URL: the host is a loopback address",
        "thumbnail": "result is not an allowed URL: the host is a private address",
    }
    assert h.requests == [] and h.sleeps == []


async def test_a_failed_dns_lookup_is_retried(tmp_path: Path) -> None:
    lookups: list[str] = []

    async def flaky_dns(host: str, port: int) -> list[str]:
        lookups.append(host)
        if len(lookups) == 1:
            raise OSError("temporary failure in name resolution")
        return [PUBLIC_IP]

    h = Harness(tmp_path, serve({"/v.mp4": (MP4, "video/mp4")}), guard=UrlGuard(resolver=flaky_dns))
    report = await h.copier.copy("job1", {"video": f"{CDN}/v.mp4"})
    assert "video" in report.copies
    assert lookups == ["cdn.example.com", "cdn.example.com"] and len(h.sleeps) == 1


async def test_a_redirect_to_a_private_address_is_refused(tmp_path: Path) -> None:
    h = Harness(tmp_path, lambda r: httpx.Response(302, headers={"location": "http://169.254.169.254/latest/meta-data"}))
    report = await h.copier.copy("job1", {"video": f"{CDN}/v.mp4"})
    assert report.failures == {"video": "result redirected to a URL that is not allowed: the host is a cloud metadata address"}
    assert len(h.requests) == 1


async def test_one_failing_variant_does_not_stop_the_others(tmp_path: Path) -> None:
    h = Harness(tmp_path, serve({"/v.mp4": (MP4, "video/mp4"), "/last.webp": (HTML, "image/webp")}))
    report = await h.copier.copy(
        "job1",
        {"video": f"{CDN}/v.mp4", "thumbnail": f"{CDN}/missing.png", "last_frame": f"{CDN}/last.webp"},
    )
    assert set(report.copies) == {"video"}
    assert set(report.failures) == {"thumbnail", "last_frame"}
    assert not report.complete


async def test_the_whole_download_is_bounded_by_the_timeout(tmp_path: Path) -> None:
    async def stalls() -> AsyncIterator[bytes]:
        yield MP4[:64]
        yield b"\0" * 100_000
        await asyncio.Event().wait()
        yield b""  # pragma: no cover

    h = Harness(tmp_path, lambda r: httpx.Response(200, content=stalls()), timeout=0.2)
    async with asyncio.timeout(10):  # a copier that ignores its timeout fails here, not hangs
        report = await h.copier.copy("job1", {"video": f"{CDN}/v.mp4", "thumbnail": None})

    assert report.failures == {"video": "timed out after 0.2 s"}
    assert files_under(h.storage.root) == []  # timed out before its first write: nothing on disk


# ---------------------------------------------------------------------------
# callable sources (a provider's authenticated content endpoint)
# ---------------------------------------------------------------------------


def provider_source(*outcomes: bytes | Exception, declared: str = "video/mp4") -> tuple[Callable[[], object], list[int]]:
    calls: list[int] = []
    queue = list(outcomes)

    @asynccontextmanager
    async def open_stream() -> AsyncIterator[tuple[str, AsyncIterator[bytes]]]:
        calls.append(1)
        outcome = queue.pop(0)
        if isinstance(outcome, Exception):
            raise outcome

        async def body() -> AsyncIterator[bytes]:
            for i in range(0, len(outcome), 4096):
                yield outcome[i : i + 4096]

        yield declared, body()

    return open_stream, calls


async def test_a_callable_source_is_copied(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    source, calls = provider_source(MP4)
    with capture_logs() as logs:
        report = await h.copier.copy("job1", {"video": source})

    assert report.copies == {"video": OutputCopy(key="job1/video.mp4", content_type="video/mp4", bytes=len(MP4), sha256=sha(MP4), stored_at=NOW)}
    assert calls == [1] and h.requests == []
    assert [e["source"] for e in logs if e["event"] == "outputs.copied"] == ["provider"]


async def test_a_callable_source_retries_a_retryable_upstream_error_only(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    flaky, flaky_calls = provider_source(UpstreamError.of(ErrorClass.UPSTREAM_UNAVAILABLE, "content download answered HTTP 503", http_status=503), MP4)
    gone, gone_calls = provider_source(UpstreamError.of(ErrorClass.NOT_FOUND, "content download answered HTTP 404", http_status=404))
    report = await h.copier.copy("job1", {"video": flaky})
    assert report.copies["video"].bytes == len(MP4) and len(flaky_calls) == 2

    report = await h.copier.copy("job2", {"video": gone})
    assert report.failures == {"video": "content download answered HTTP 404"}
    assert len(gone_calls) == 1


async def test_a_callable_source_can_say_how_it_failed(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    flaky, flaky_calls = provider_source(ConnectionResetError("reset by peer"), MP4)
    report = await h.copier.copy("job0", {"video": flaky})
    assert report.copies["video"].bytes == len(MP4) and len(flaky_calls) == 2

    h = Harness(tmp_path)
    source, calls = provider_source(SourceError("busy", transient=True, retry_after=1.5), SourceError("forbidden"))
    report = await h.copier.copy("job1", {"video": source})
    assert report.failures == {"video": "forbidden"}
    assert len(calls) == 2 and h.sleeps == [1.5]


async def test_an_unexpected_error_in_a_source_is_reported_not_raised(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    source, _ = provider_source(RuntimeError(f"boom at {CDN}/v.mp4{SIGNED}"))
    report = await h.copier.copy("job1", {"video": source, "thumbnail": None})
    assert report.failures == {"video": f"unexpected RuntimeError: boom at {CDN}"}  # URL cut to its host


# ---------------------------------------------------------------------------
# arguments, and memory
# ---------------------------------------------------------------------------


async def test_unknown_variants_and_unsafe_job_ids_are_programming_errors(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    with pytest.raises(ValueError, match="unknown output variant"):
        await h.copier.copy("job1", {"poster": f"{CDN}/p.png"})
    for job_id in ("../x", "a/b", ""):
        with pytest.raises(ValueError):
            await h.copier.copy(job_id, {"video": f"{CDN}/v.mp4"})
    assert h.requests == []


async def test_a_50_mb_download_is_streamed_to_disk_not_held(tmp_path: Path) -> None:
    size = 50 * 1024 * 1024
    expected = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        header = MP4[:64]
        expected.update(header)
        yield header
        sent, n = len(header), 0
        while sent < size:
            part = bytes([n % 251]) * min(64 * 1024, size - sent)
            expected.update(part)
            sent, n = sent + len(part), n + 1
            yield part

    h = Harness(tmp_path, lambda r: httpx.Response(200, content=body()), max_bytes=size)
    tracemalloc.start()
    try:
        report = await h.copier.copy("big", {"video": f"{CDN}/v.mp4"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert report.failures == {}
    assert (report.copies["video"].bytes, report.copies["video"].sha256) == (size, expected.hexdigest())
    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB for a 50 MiB download"
