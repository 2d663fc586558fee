"""Resolving caller media into stored, sniffed, probed files."""

from __future__ import annotations

import base64
import hashlib
import threading
from types import SimpleNamespace

import httpx
import pytest
from litestar import Litestar, get

import gateway.media
from gateway.errors import InvalidRequest, PayloadTooLarge
from gateway.forms import FilePart
from gateway.jobs.model import FileRecord, MediaRef
from gateway.media import MediaLoader, SignedMediaUrls
from gateway.urlguard import UrlGuard, UrlNotAllowed
from providers.media_probe import Probe, probe
from providers.simkit import sample, serve_in_thread

PNG = sample("image.png")  # 640x360
MP4 = sample("video.mp4")  # 320x180, 2.0 s
WAV = sample("audio.wav")  # 3.0 s


class FakeStore:
    """Just the file half of the Store protocol, in memory."""

    def __init__(self) -> None:
        self.records: dict[str, FileRecord] = {}
        self.blobs: dict[str, bytes] = {}

    async def put_file(self, record: FileRecord, data: bytes) -> FileRecord:
        self.records[record.id] = record
        self.blobs[record.id] = data
        return record

    async def get_file(self, file_id: str, tenant: str | None = None) -> FileRecord | None:
        record = self.records.get(file_id)
        if record is None or (tenant is not None and record.tenant != tenant):
            return None
        return record

    async def read_file(self, file_id: str) -> bytes:
        return self.blobs[file_id]


def _no_dns(host: str, port: int):
    raise AssertionError(f"unexpected DNS lookup of {host}")


def _loader(
    store: FakeStore | None = None,
    handler=None,
    *,
    allow_private: bool = False,
    max_bytes: int = 1_000_000,
    http: httpx.AsyncClient | None = None,
) -> MediaLoader:
    if http is None:
        transport = httpx.MockTransport(handler or (lambda r: pytest.fail(f"unexpected request {r.url}")))
        http = httpx.AsyncClient(transport=transport)
    guard = UrlGuard(allow_private=allow_private, resolver=_no_dns)
    return MediaLoader(store or FakeStore(), http, guard, max_bytes=max_bytes, clock=lambda: 1234.5)


def _data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


# ---------------------------------------------------------------------------
# data: URLs
# ---------------------------------------------------------------------------


async def test_data_url_image_is_stored_and_probed() -> None:
    store = FakeStore()
    spec = await _loader(store).load(_data_url(PNG), "image", "input_reference", "t1")

    assert spec == MediaRef(kind="image", file_id=spec.file_id, url=None, content_type="image/png", bytes=len(PNG), width=640, height=360)
    assert spec.file_id.startswith("file_") and len(spec.file_id) == 5 + 24
    record = store.records[spec.file_id]
    assert (record.tenant, record.kind, record.bytes, record.created_at) == ("t1", "image", len(PNG), 1234.5)
    assert record.sha256 == hashlib.sha256(PNG).hexdigest()
    assert store.blobs[spec.file_id] == PNG


async def test_declared_type_is_not_trusted() -> None:
    # A video wearing an image/png label is still a video.
    with pytest.raises(InvalidRequest) as caught:
        await _loader().load(_data_url(MP4, "image/png"), "image", "input_reference", "t1")
    assert caught.value.message == "input_reference: expected an image, got video/mp4"
    assert caught.value.param == "input_reference"

    spec = await _loader().load(_data_url(WAV, "application/octet-stream"), "audio", "references.audios[0]", "t1")
    assert (spec.content_type, spec.duration_ms) == ("audio/wav", 3000)


async def test_unknown_bytes_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="unsupported media type unknown") as caught:
        await _loader().load(_data_url(b"%PDF-1.7 not media"), "image", "image", "t1")
    assert caught.value.code == "unsupported_media_type"


async def test_data_url_over_the_cap_is_payload_too_large() -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        await _loader(max_bytes=1000).load(_data_url(PNG), "image", "input_reference", "t1")
    assert caught.value.param == "input_reference"
    assert "input_reference" in caught.value.message
    assert caught.value.status == 413


@pytest.mark.parametrize("value", ["data:image/png,rawbytes", "data:image/png;base64,@@@@", "data:image/png;base64"])
async def test_malformed_data_urls(value: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await _loader().load(value, "image", "image", "t1")
    assert caught.value.param == "image"


# ---------------------------------------------------------------------------
# remote URLs
# ---------------------------------------------------------------------------


async def test_http_url_on_loopback_downloads_and_probes() -> None:
    @get("/media/clip.mp4", media_type="video/mp4")
    async def clip() -> bytes:
        return MP4

    store = FakeStore()
    with serve_in_thread(Litestar([clip])) as base:
        async with httpx.AsyncClient() as http:
            loader = _loader(store, allow_private=True, http=http)
            spec = await loader.load(f"{base}/media/clip.mp4", "video", "references.videos[0]", "t1")

    assert (spec.kind, spec.content_type, spec.width, spec.height, spec.duration_ms) == (
        "video",
        "video/mp4",
        320,
        180,
        2000,
    )
    assert spec.url is None  # plain http is never passed on to an upstream
    assert store.blobs[spec.file_id] == MP4
    assert store.records[spec.file_id].filename == "clip.mp4"


async def test_loopback_refused_without_allow_private() -> None:
    with pytest.raises(UrlNotAllowed, match="loopback") as caught:
        await _loader().load("http://127.0.0.1:9/x.png", "image", "input_reference", "t1")
    assert caught.value.param == "input_reference"


async def test_https_url_is_kept_for_upstreams_that_fetch_themselves() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "GET"
        return httpx.Response(200, content=PNG, headers={"content-type": "application/octet-stream"})

    store = FakeStore()
    loader = _loader(store, handler)
    url = "https://93.184.216.34/cats/cat.png?sig=abc"
    spec = await loader.load({"image_url": url}, "image", "input_reference", "t1")
    assert spec.url == url and spec.content_type == "image/png"

    as_url = await loader.media_for(spec, delivery="url", inline={"image": None})
    assert (as_url.url, as_url.data, as_url.width, as_url.height) == (url, None, 640, 360)
    as_bytes = await loader.media_for(spec, delivery="bytes", inline={})
    assert (as_bytes.url, as_bytes.data, as_bytes.content_type, as_bytes.kind) == (None, PNG, "image/png", "image")


async def test_redirect_to_a_private_address_is_blocked() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"location": "http://192.168.0.10/secret.png"})

    with pytest.raises(UrlNotAllowed) as caught:
        await _loader(handler=handler).load("https://93.184.216.34/a.png", "image", "input_reference", "t1")
    assert seen == ["https://93.184.216.34/a.png"]
    assert "redirected" in caught.value.message and "private" in caught.value.message
    assert caught.value.param == "input_reference"


async def test_redirect_to_a_public_address_is_followed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "93.184.216.34":
            return httpx.Response(302, headers={"location": "https://93.184.216.35/real.png"})
        return httpx.Response(200, content=PNG)

    spec = await _loader(handler=handler).load("https://93.184.216.34/a.png", "image", "image", "t1")
    assert spec.width == 640
    assert spec.url == "https://93.184.216.34/a.png"  # the caller's URL, not the hop


async def test_non_2xx_names_the_status() -> None:
    with pytest.raises(InvalidRequest) as caught:
        await _loader(handler=lambda r: httpx.Response(404)).load("https://93.184.216.34/gone.png", "image", "image", "t1")
    assert caught.value.message == "could not fetch image: the server answered HTTP 404"
    assert caught.value.code == "media_fetch_failed"


async def test_timeout_and_transport_errors_are_could_not_fetch() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(InvalidRequest, match="could not fetch image: timed out"):
        await _loader(handler=slow).load("https://93.184.216.34/a.png", "image", "image", "t1")
    with pytest.raises(InvalidRequest, match="could not fetch image: ConnectError"):
        await _loader(handler=refused).load("https://93.184.216.34/a.png", "image", "image", "t1")


async def test_download_cap_holds_with_and_without_content_length() -> None:
    big = PNG + b"\0" * 5000

    async def chunks():
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000]

    def declared(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=big)

    def streamed(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=chunks())  # chunked: no content-length

    for handler in (declared, streamed):
        with pytest.raises(PayloadTooLarge) as caught:
            await _loader(handler=handler, max_bytes=4000).load("https://93.184.216.34/a.png", "image", "image", "t1")
        assert caught.value.param == "image"


async def test_unsupported_scheme_string() -> None:
    with pytest.raises(InvalidRequest, match="must be an https URL") as caught:
        await _loader().load("ftp://93.184.216.34/a.png", "image", "image", "t1")
    assert caught.value.param == "image"


# ---------------------------------------------------------------------------
# file ids and media objects
# ---------------------------------------------------------------------------


async def test_file_id_must_exist_for_the_tenant_and_be_the_right_kind() -> None:
    store = FakeStore()
    loader = _loader(store)
    record = await loader.save_upload("t1", FilePart(name="file", filename="cat.png", content_type="image/png", data=PNG), purpose="video_input")

    spec = await loader.load({"file_id": record.id}, "image", "input_reference", "t1")
    assert (spec.file_id, spec.url, spec.width) == (record.id, None, 640)
    spec = await loader.load(SimpleNamespace(file_id=record.id, url=None, image_url=None), "image", "input_reference", "t1")
    assert spec.file_id == record.id

    with pytest.raises(InvalidRequest) as caught:
        await loader.load({"file_id": record.id}, "image", "input_reference", "t2")
    assert caught.value.message == f"input_reference: file {record.id!r} not found"
    assert caught.value.param == "input_reference"

    with pytest.raises(InvalidRequest, match="expected a video, got image/png"):
        await loader.load({"file_id": record.id}, "video", "references.videos[0]", "t1")

    media = await loader.media_for(spec, delivery="url", inline={"image": None})  # no remote URL: inline bytes where allowed
    assert media.data == PNG and media.url is None


async def test_media_objects_with_url_attributes() -> None:
    loader = _loader()
    spec = await loader.load({"url": _data_url(PNG)}, "image", "image", "t1")
    assert spec.content_type == "image/png"
    spec = await loader.load(SimpleNamespace(url=None, file_id=None, image_url=_data_url(PNG)), "image", "image", "t1")
    assert spec.width == 640


@pytest.mark.parametrize(
    "value",
    [{}, {"file_id": "file_1", "url": "https://93.184.216.34/a.png"}, {"url": ""}, {"file_id": 7}, 42, None],
)
async def test_ambiguous_or_empty_media_objects(value: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await _loader().load(value, "image", "input_reference", "t1")
    assert caught.value.param == "input_reference"


# ---------------------------------------------------------------------------
# uploads
# ---------------------------------------------------------------------------


async def test_save_upload_infers_kind_from_the_bytes() -> None:
    store = FakeStore()
    loader = _loader(store)
    record = await loader.save_upload("t1", FilePart(name="file", filename="../../etc/clip.png", content_type="image/png", data=MP4), purpose="video_input")
    assert (record.kind, record.content_type, record.filename) == ("video", "video/mp4", "clip.png")
    assert (record.width, record.height, record.duration_ms, record.purpose) == (320, 180, 2000, "video_input")
    assert store.blobs[record.id] == MP4

    audio = await loader.save_upload("t1", FilePart(name="file", filename=None, content_type=None, data=WAV), purpose="video_input")
    assert (audio.kind, audio.duration_ms, audio.filename) == ("audio", 3000, None)


async def test_save_upload_limits() -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        await _loader(max_bytes=100).save_upload("t1", FilePart(name="file", filename="cat.png", content_type="image/png", data=PNG), purpose="video_input")
    assert caught.value.param == "file"
    with pytest.raises(InvalidRequest, match="unsupported media type") as caught:
        await _loader().save_upload("t1", FilePart(name="file", filename="doc.pdf", content_type="image/png", data=b"%PDF-1.7"), purpose="video_input")
    assert caught.value.param == "file"
    with pytest.raises(InvalidRequest, match="empty"):
        await _loader().save_upload("t1", FilePart(name="file", filename="x.png", content_type="image/png", data=b""), purpose="video_input")


async def test_declared_response_type_does_not_matter_for_kind() -> None:
    # Served as image/png, the bytes are audio: asking for audio works, asking for image does not.
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=WAV, headers={"content-type": "image/png"})

    spec = await _loader(handler=handler).load("https://93.184.216.34/a.wav", "audio", "audio", "t1")
    assert spec.kind == "audio"
    with pytest.raises(InvalidRequest, match="expected an image, got audio/wav"):
        await _loader(handler=handler).load("https://93.184.216.34/a.wav", "image", "image", "t1")


# ---------------------------------------------------------------------------
# URL-taking upstreams: inline limits and signed vidgate URLs
# ---------------------------------------------------------------------------


async def test_an_upload_too_big_to_go_inline_reaches_a_url_upstream_as_a_signed_expiring_url() -> None:
    store = FakeStore()
    urls = SignedMediaUrls("https://vidgate.example", "secret", ttl=60)
    loader = MediaLoader(store, httpx.AsyncClient(), UrlGuard(), max_bytes=10**6, clock=lambda: 1000.0, urls=urls)
    spec = await loader.load(_data_url(PNG), "image", "first_frame", "t1")

    small_enough = await loader.media_for(spec, delivery="url", inline={"image": len(PNG)})
    assert small_enough.data == PNG
    signed = await loader.media_for(spec, delivery="url", inline={"image": len(PNG) - 1})
    assert signed.data is None and signed.url is not None and signed.url.startswith("https://vidgate.example/v1/media/")
    token = signed.url.rsplit("/", 1)[1]
    assert urls.file_of(token, 1000.0) == spec.file_id
    assert urls.file_of(token, 1061.0) is None  # expired
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert urls.file_of(forged, 1000.0) is None
    assert urls.file_of(token.replace(spec.file_id, "file_other"), 1000.0) is None
    assert SignedMediaUrls("https://vidgate.example", "another secret", ttl=60).file_of(token, 1000.0) is None


async def test_without_a_public_url_an_upload_that_cannot_go_inline_is_refused() -> None:
    store = FakeStore()
    loader = _loader(store)
    spec = await loader.load(_data_url(PNG), "image", "first_frame", "t1")
    with pytest.raises(ValueError, match="no public_url"):
        await loader.media_for(spec, delivery="url", inline={})


async def test_probing_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    # Probing is pure CPU over up to max_bytes; on the loop it would stall every other request.
    threads: list[int] = []

    def recording_probe(data: bytes) -> Probe:
        threads.append(threading.get_ident())
        return probe(data)

    monkeypatch.setattr(gateway.media, "probe", recording_probe)
    loader = _loader()
    await loader.save_upload("t1", FilePart(name="file", filename="cat.png", content_type="image/png", data=PNG), purpose="video_input")
    await loader.load(_data_url(WAV), "audio", "audio", "t1")
    assert len(threads) == 2
    assert threading.get_ident() not in threads
