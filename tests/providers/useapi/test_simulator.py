"""The useapi.net Dreamina simulator against its own docs (UPSTREAMS.md section 1 + the doc page).

Most tests run in process (`ASGITransport`) with a fake clock; the ones that need a
real socket (dropped connections, `replyUrl` callbacks, the doc's polling loop) use
`simkit.serve_in_thread` with `job_seconds` of a fraction of a second.
"""

from __future__ import annotations

import asyncio
import re
import struct
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import httpx
import msgspec
import pytest
from litestar import Litestar, Request, post

from providers.simkit import free_port, sample, serve_in_thread
from providers.useapi.sim import SimAccount, SimConfig, create_app

TOKEN = "user:12345-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CA = "CA:sim@example.com"
US = "US:sim@example.com"
START = 1771855530.123  # 2026-02-23T14:05:30.123Z, the doc example's creation time
JOBID = re.compile(r"^j\d{13}\d{6}v-u12345-(?P<account>(US|CA):[^ ]+@[^ ]+)-bot:dreamina$")
ALL_MODELS = "seedance-2.0, seedance-2.0-fast, seedance-2.0-mini, seedance-1.5-pro, seedance-1.0-pro, seedance-1.0-mini, seedance-1.0-fast, sora2"


# ---------------------------------------------------------------------------
# Harness
# ---------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Sim:
    """An in-process simulator, a fake clock and a client pointed at it."""

    def __init__(self, app: Litestar, client: httpx.AsyncClient, clock: FakeClock) -> None:
        self.app, self.client, self.clock = app, client, clock

    async def video(self, body: dict[str, Any] | None = None, *, auth: bool = True, **kw: Any) -> httpx.Response:
        headers = {**(AUTH if auth else {}), **kw.pop("headers", {})}
        if body is not None:
            kw["json"] = body
        return await self.client.post("/v1/dreamina/videos", headers=headers, **kw)

    async def created(self, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.video(body)
        assert response.status_code == 200, response.text
        return response.json()

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.client.get(path, headers=AUTH, **kw)

    async def poll(self, jobid: str) -> dict[str, Any]:
        response = await self.get(f"/v1/dreamina/videos/{jobid}")
        assert response.status_code == 200, response.text
        return response.json()

    async def upload(self, data: bytes, content_type: str | None, account: str = CA) -> httpx.Response:
        headers = dict(AUTH) | ({"Content-Type": content_type} if content_type else {})
        return await self.client.post(f"/v1/dreamina/assets/{account}", content=data, headers=headers)

    async def ref(self, data: bytes, content_type: str, account: str = CA) -> str:
        response = await self.upload(data, content_type, account)
        assert response.status_code == 200, response.text
        return response.json()["assetRef"]

    async def faults(self, **switches: Any) -> None:
        response = await self.client.post("/_sim/faults", json=switches)
        assert response.status_code == 200, response.text

    async def submits(self) -> list[dict[str, Any]]:
        return (await self.client.get("/_sim/jobs")).json()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_sim(clock: FakeClock) -> AsyncIterator[Callable[..., Sim]]:
    sims: list[Sim] = []
    hooks = httpx.MockTransport(lambda request: httpx.Response(200))  # replyUrl callbacks go nowhere

    def make(**config: Any) -> Sim:
        config.setdefault("job_seconds", 0.2)
        config.setdefault("seed", 7)
        app = create_app(msgspec.convert(config, SimConfig, from_attributes=True), clock=clock, reply_transport=hooks)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim.test")
        sims.append(Sim(app, client, clock))
        return sims[-1]

    yield make
    for sim in sims:
        await sim.client.aclose()
        await sim.app.state.replier.aclose()  # no callback task outlives the test's event loop


@pytest.fixture
def sim(make_sim: Callable[..., Sim]) -> Sim:
    return make_sim()


@pytest.fixture(scope="module")
def shared() -> tuple[Litestar, FakeClock]:
    """One app for the many read-only validation cases (building a Litestar app costs ~60 ms)."""
    clock = FakeClock()
    return create_app(SimConfig(job_seconds=0.2, seed=7), clock=clock), clock


@pytest.fixture
async def shared_sim(shared: tuple[Litestar, FakeClock]) -> AsyncIterator[Sim]:
    app, clock = shared
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim.test") as client:
        assert (await client.post("/_sim/reset")).status_code == 200
        yield Sim(app, client, clock)


def mp4_lasting(ms: int) -> bytes:
    """The sample MP4 with its `mvhd` duration rewritten."""
    data = bytearray(sample("video.mp4"))
    body = data.index(b"mvhd") + 4
    assert data[body] == 0  # version 0
    timescale = struct.unpack(">I", data[body + 12 : body + 16])[0]
    struct.pack_into(">I", data, body + 16, ms * timescale // 1000)
    return bytes(data)


def wav_lasting(ms: int) -> bytes:
    """The sample WAV with its declared `data` size rewritten."""
    data = bytearray(sample("audio.wav"))
    fmt = data.index(b"fmt ") + 8
    byte_rate = struct.unpack("<I", data[fmt + 8 : fmt + 12])[0]
    struct.pack_into("<I", data, data.index(b"data") + 4, byte_rate * ms // 1000)
    return bytes(data)


def image_ref(w: int = 1280, h: int = 720, account: str = CA, n: int = 1) -> str:
    return f"{account}-image:w{w}:h{h}:s1000-uri:tos-alisg-i-wopfjsm1ax-sg/img{n}"


def video_ref(ms: int = 5000, account: str = CA, n: int = 1) -> str:
    return f"{account}-video:w1280:h720:s1000:d{ms}-vid:v10762g50000vid{n}"


def audio_ref(ms: int = 5000, account: str = CA, n: int = 1) -> str:
    return f"{account}-audio:w0:h0:s1000:d{ms}-vid:v10762g50000aud{n}"


# ---------------------------------------------------------------------------
# The doc page's examples, unchanged apart from base URL, token and refs
# ---------------------------------------------------------------------------

DOC_TEXT_TO_VIDEO = {
    "prompt": "A serene mountain landscape at sunset",
    "model": "seedance-2.0",
    "ratio": "16:9",
    "duration": 5,
}


async def test_doc_text_to_video_json_completes_with_a_downloadable_mp4(sim: Sim) -> None:
    job = await sim.created(DOC_TEXT_TO_VIDEO)

    assert JOBID.match(job["jobid"]), job["jobid"]
    assert job["jobid"].startswith("j0223140530123")  # MMDDhhmmssSSS of the clock
    assert {k: job[k] for k in ("type", "status", "model", "created", "code")} == {
        "type": "video",
        "status": "created",
        "model": "seedance-2.0",
        "created": "2026-02-23T14:05:30.123Z",
        "code": 200,
    }
    assert job["request"] == {**DOC_TEXT_TO_VIDEO, "inputMode": "prompt"}
    assert job["response"] == {"forecastCost": 125}
    assert "updated" not in job and "error" not in job

    assert (await sim.poll(job["jobid"]))["status"] == "created"
    sim.clock.advance(0.2)
    done = await sim.poll(job["jobid"])
    assert done["status"] == "completed"
    assert done["updated"] == "2026-02-23T14:05:30.323Z"
    response = done["response"]
    account = JOBID.match(job["jobid"])["account"]  # type: ignore[index]
    assert response["assetId"] == f"{account}:{response['videoId']}"
    assert (response["width"], response["height"], response["durationMs"]) == (1280, 720, 5000)
    assert response["hasAudio"] is False and response["forecastCost"] == 125
    assert response["finishTime"] == int(START + 0.2)

    assert response["videoUrl"].startswith("http://sim.test/_sim/files/video.mp4?job=")
    video = await sim.client.get(response["videoUrl"])
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"
    cover = await sim.client.get(response["coverUrl"])
    assert cover.headers["content-type"] == "image/png" and cover.content.startswith(b"\x89PNG")


async def test_doc_text_to_video_as_multipart_coerces_numeric_strings(sim: Sim) -> None:
    form = {k: (None, str(v)) for k, v in DOC_TEXT_TO_VIDEO.items()}
    response = await sim.video(files=form)
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["request"] == {**DOC_TEXT_TO_VIDEO, "inputMode": "prompt"}  # duration is the integer 5
    sim.clock.advance(1)
    assert (await sim.poll(job["jobid"]))["status"] == "completed"


async def test_doc_first_frame_example_after_uploading_an_image(sim: Sim) -> None:
    ref = await sim.ref(sample("image.png"), "image/png")
    assert re.fullmatch(rf"{re.escape(CA)}-image:w640:h360:s{len(sample('image.png'))}-uri:\S+", ref)
    body = {
        "prompt": "Camera slowly pans across the scene",
        "model": "seedance-2.0",
        "firstFrameRef": ref,
        "duration": 5,
    }
    job = await sim.created(body)
    assert JOBID.match(job["jobid"])["account"] == CA  # type: ignore[index]  # pinned by the ref
    assert job["request"]["inputMode"] == "first_frame"
    assert job["request"]["ratio"] == "16:9"  # detected from 640x360
    assert job["request"]["firstFrameRef"] == ref
    sim.clock.advance(1)
    done = await sim.poll(job["jobid"])
    assert done["status"] == "completed"
    assert (await sim.client.get(done["response"]["videoUrl"])).content[4:8] == b"ftyp"


async def test_doc_omni_image_and_audio_example_after_uploading(sim: Sim) -> None:
    image = await sim.ref(sample("image.png"), "image/png")
    audio_response = await sim.upload(sample("audio.wav"), "audio/wav")
    assert audio_response.status_code == 200
    audio = audio_response.json()
    assert audio["type"] == "audio" and audio["duration"] == 3000 and audio["size"] == len(sample("audio.wav"))
    assert re.fullmatch(rf"{re.escape(CA)}-audio:w0:h0:s\d+:d3000-vid:\S+", audio["assetRef"])
    body = {
        "prompt": "@image1 slowly moving forward while @audio1 plays in background",
        "model": "seedance-2.0",
        "ratio": "16:9",
        "duration": 4,
        "omni_1_imageRef": image,
        "omni_1_audioRef": audio["assetRef"],
    }
    job = await sim.created(body)
    assert job["request"]["inputMode"] == "unified_edit"
    assert job["response"]["forecastCost"] == 100
    sim.clock.advance(1)
    done = await sim.poll(job["jobid"])
    assert done["status"] == "completed" and done["response"]["hasAudio"] is True
    assert (await sim.client.get(done["response"]["videoUrl"])).content[4:8] == b"ftyp"


def test_doc_python_polling_loop_over_real_http() -> None:
    """The doc's Python example, with `requests` swapped for httpx and `time.sleep(10)` shortened."""
    app = create_app(SimConfig(job_seconds=0.2))
    with serve_in_thread(app) as base, httpx.Client() as http:
        token = TOKEN
        api_url = f"{base}/v1/dreamina/videos"
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        data = {
            "prompt": "A serene mountain landscape at sunset",
            "model": "seedance-2.0",
            "ratio": "16:9",
            "duration": 5,
        }
        result = http.post(api_url, headers=headers, json=data).json()
        jobid = result["jobid"]
        deadline = time.monotonic() + 5
        while True:
            job = http.get(f"{base}/v1/dreamina/videos/{jobid}", headers={"Authorization": f"Bearer {token}"}).json()
            if job["status"] == "completed":
                break
            if job["status"] == "failed":
                raise AssertionError(job.get("error"))
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert http.get(job["response"]["videoUrl"]).content[4:8] == b"ftyp"
        # the official script encodes ids with encodeURIComponent; both forms work over a real socket
        encoded = http.get(f"{api_url}/{quote(jobid, safe='')}", headers=headers)
        assert encoded.json()["jobid"] == jobid
        account = http.get(f"{base}/v1/dreamina/accounts/{quote(CA, safe='')}", headers=headers)
        assert account.json()["account"] == CA


async def test_jobid_is_accepted_percent_encoded(sim: Sim) -> None:
    job = await sim.created(DOC_TEXT_TO_VIDEO)
    assert (await sim.poll(quote(job["jobid"], safe="")))["jobid"] == job["jobid"]


async def test_unknown_jobid_is_404(sim: Sim) -> None:
    response = await sim.get("/v1/dreamina/videos/j0223140530123456789v-u12345-CA:nobody@example.com-bot:dreamina")
    assert response.status_code == 404 and "error" in response.json()


# ---------------------------------------------------------------------------
# Accounts
# ---------------------------------------------------------------------------


async def test_accounts_listing_lookup_add_and_delete(sim: Sim) -> None:
    listing = (await sim.get("/v1/dreamina/accounts")).json()
    assert set(listing) == {CA, US}
    ca = listing[CA]
    assert (ca["email"], ca["region"], ca["maxJobs"]) == ("sim@example.com", "CA", 10)
    assert "seedance-2.0" in ca["models"]["video"] and "sora2" not in listing[US]["models"]["video"]
    assert ca["credits"]["total"] == 100_000 and "error" not in ca

    for path in (CA, quote(CA, safe="")):
        assert (await sim.get(f"/v1/dreamina/accounts/{path}")).json()["account"] == CA
    missing = await sim.get("/v1/dreamina/accounts/US:nobody@example.com")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Unable to find configuration for account US:nobody@example.com"}

    added = await sim.client.post(
        "/v1/dreamina/accounts",
        headers=AUTH,
        json={"email": "new@example.com", "password": "x", "region": "US", "maxJobs": 3},
    )
    assert added.status_code == 200 and added.json()["account"] == "US:new@example.com"
    assert added.json()["maxJobs"] == 3
    no_email = await sim.client.post("/v1/dreamina/accounts", headers=AUTH, json={"password": "x", "region": "US"})
    assert no_email.status_code == 400 and no_email.json() == {"error": "Parameter email is required"}
    bad_region = await sim.client.post(
        "/v1/dreamina/accounts",
        headers=AUTH,
        files={"email": (None, "a@b.c"), "password": (None, "x"), "region": (None, "EU")},
    )
    assert bad_region.json() == {"error": "Parameter region (EU) valid values: US, CA"}

    running = await sim.created({**DOC_TEXT_TO_VIDEO, "account": CA})
    deleted = await sim.client.delete(f"/v1/dreamina/accounts/{quote(CA, safe='')}", headers=AUTH)
    assert deleted.status_code == 204 and deleted.content == b""
    assert (await sim.get(f"/v1/dreamina/accounts/{CA}")).status_code == 404
    assert (await sim.poll(running["jobid"]))["status"] == "failed"  # its executing job was cleaned up
    assert (await sim.client.delete(f"/v1/dreamina/accounts/{CA}", headers=AUTH)).status_code == 404


async def test_expired_account_shows_an_error_and_can_be_re_added(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(accounts=[SimAccount(account=CA, region="CA", session_expired=True)])
    assert (await sim.get(f"/v1/dreamina/accounts/{CA}")).json()["error"] == "Session expired"
    assert (await sim.video(DOC_TEXT_TO_VIDEO)).status_code == 596
    readd = {"email": "sim@example.com", "password": "x", "region": "CA"}
    assert (await sim.client.post("/v1/dreamina/accounts", headers=AUTH, json=readd)).status_code == 200
    assert (await sim.video(DOC_TEXT_TO_VIDEO)).status_code == 200


# ---------------------------------------------------------------------------
# Assets
# ---------------------------------------------------------------------------


async def test_video_upload_returns_the_documented_ref(sim: Sim) -> None:
    response = await sim.upload(sample("video.mp4"), "video/mp4", account=quote(CA, safe=""))
    assert response.status_code == 200, response.text
    body = response.json()
    size = len(sample("video.mp4"))
    assert {k: body[k] for k in ("account", "type", "width", "height", "duration", "size")} == {
        "account": CA,
        "type": "video",
        "width": 320,
        "height": 180,
        "duration": 2000,
        "size": size,
    }
    assert re.fullmatch(rf"{re.escape(CA)}-video:w320:h180:s{size}:d2000-vid:v\w+", body["assetRef"])


@pytest.mark.parametrize(
    ("data", "content_type", "error"),
    [
        (
            b"BM...",
            "image/bmp",
            "Content-Type (image/bmp) not supported. Valid values: image/jpeg, image/png, image/webp",
        ),
        (
            b"x",
            "video/avi",
            "Content-Type (video/avi) not supported. Valid values: video/mp4, video/quicktime, video/webm",
        ),
        (
            b"x",
            "audio/ogg",
            "Content-Type (audio/ogg) not supported. Valid values: audio/mpeg, audio/mp3, audio/wav, audio/mp4, audio/aac",
        ),
        (b"", "image/png", "Image is empty"),
        (b"", "video/mp4", "Video is empty"),
        (b"not an image", "image/jpeg", "Unable to read image dimensions"),
        (mp4_lasting(1500), "video/mp4", "Video duration (1.5s) must be between 2 and 15.4 seconds"),
        (mp4_lasting(15_500), "video/mp4", "Video duration (15.5s) must be between 2 and 15.4 seconds"),
        (wav_lasting(16_000), "audio/wav", "Audio duration (16s) must be between 2 and 15 seconds"),
        (wav_lasting(1000), "audio/wav", "Audio duration (1s) must be between 2 and 15 seconds"),
    ],
)
async def test_upload_validation(shared_sim: Sim, data: bytes, content_type: str, error: str) -> None:
    response = await shared_sim.upload(data, content_type)
    assert response.status_code == 400
    assert response.json() == {"error": error}


async def test_upload_without_content_type_and_too_large(sim: Sim) -> None:
    missing = await sim.upload(sample("image.png"), None)
    assert missing.status_code == 400 and missing.json()["error"].startswith("Content-Type (none) not supported")
    big = await sim.upload(sample("image.png") + bytes(10 * 1024 * 1024), "image/png")
    assert big.status_code == 400 and "too large" in big.json()["error"]
    assert (await sim.upload(mp4_lasting(15_400), "video/mp4")).status_code == 200  # the upper bound itself


async def test_upload_unknown_account_and_expired_session(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(accounts=[SimAccount(account=CA, region="CA"), SimAccount(account=US, region="US", session_expired=True)])
    unknown = await sim.upload(sample("image.png"), "image/png", account="CA:nobody@example.com")
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "Unable to find configuration for account CA:nobody@example.com"}
    expired = await sim.upload(sample("image.png"), "image/png", account=US)
    assert expired.status_code == 596 and expired.json() == {"error": "Session expired"}


# ---------------------------------------------------------------------------
# POST /videos validation
# ---------------------------------------------------------------------------

FRAMES_16_9 = {f"frame_{n}_imageRef": image_ref(n=n) for n in (1, 2, 3)}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"prompt": "x", "model": "invalid-model"}, f"Parameter model (invalid-model) valid values: {ALL_MODELS}"),
        (
            {"prompt": "x", "model": "seedance-2.0", "duration": 3},
            "Parameter duration (3) valid values: 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15",
        ),
        (
            {"prompt": "x", "model": "seedance-2.0", "duration": 16},
            "Parameter duration (16) valid values: 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15",
        ),
        ({"prompt": "x", "model": "seedance-1.5-pro", "duration": 7}, "Parameter duration (7) valid values: 5, 10, 12"),
        ({"prompt": "x", "model": "sora2", "duration": 5}, "Parameter duration (5) valid values: 4, 8, 12"),
        ({"prompt": "x", "duration": "abc"}, "Parameter duration (abc) must be an integer"),
        (
            {"prompt": "x", "model": "seedance-2.0-fast", "resolution": "1080p"},
            "Parameter resolution (1080p) valid values for model seedance-2.0-fast on CA accounts: 720p",
        ),
        (
            {"prompt": "x", "model": "seedance-2.0", "resolution": "1080p", "account": US},
            "Parameter resolution (1080p) valid values for model seedance-2.0 on US accounts: 720p",
        ),
        (
            {"prompt": "x", "model": "seedance-1.0-pro", "resolution": "720p"},
            "Parameter resolution (720p) valid values for model seedance-1.0-pro on CA accounts: 1080p",
        ),
        ({"prompt": "x", "resolution": "2k"}, "Parameter resolution (2k) valid values: 720p, 1080p, 4k"),
        (
            {"prompt": "x", "model": "sora2", "account": US},
            "Parameter model (sora2) valid values: seedance-2.0, seedance-2.0-fast, seedance-1.5-pro, seedance-1.0-mini",
        ),
        ({"prompt": "x", "ratio": "5:4"}, "Parameter ratio (5:4) valid values: 21:9, 16:9, 4:3, 1:1, 3:4, 9:16"),
        ({"model": "seedance-2.0"}, "Parameter prompt is required"),
        ({"prompt": "x" * 5001}, "Parameter prompt is too long (5001 characters). Maximum: 5000"),
        ({"prompt": "x", "maxJobs": 0}, "Parameter maxJobs (0) valid values: 1-50"),
        ({"prompt": "x", "maxJobs": 51}, "Parameter maxJobs (51) valid values: 1-50"),
        ({"prompt": "x", "seed": 3}, "Unknown parameter seed"),
        ({"prompt": 5}, "Parameter prompt must be a string"),
        ({"prompt": "x", "replyUrl": "https://e.com/" + "a" * 1024}, "replyUrl is too long"),
        (
            {"prompt": "x", "replyUrl": "ftp://e.com/hook"},
            "Parameter replyUrl (ftp://e.com/hook) must be an http(s) URL",
        ),
        # first / end frame
        (
            {"firstFrameRef": image_ref(), "ratio": "16:9"},
            "Parameter ratio cannot be used with image refs (the image aspect ratio is used)",
        ),
        ({"endFrameRef": image_ref()}, "Parameter endFrameRef requires firstFrameRef"),
        (
            {"firstFrameRef": image_ref(), "endFrameRef": image_ref(720, 720, n=2)},
            "firstFrameRef and endFrameRef must have the same aspect ratio (16:9 vs 1:1)",
        ),
        (
            {
                "firstFrameRef": image_ref(),
                "endFrameRef": image_ref(n=2),
                "model": "seedance-1.0-pro",
                "resolution": "1080p",
            },
            "Model seedance-1.0-pro does not support end_frame mode. Supported input modes: prompt, first_frame",
        ),
        ({"firstFrameRef": "not-a-ref"}, "Parameter firstFrameRef (not-a-ref) is not a valid assetRef"),
        (
            {"firstFrameRef": video_ref()},
            f"Parameter firstFrameRef ({video_ref()}) must be an assetRef of type image, got video",
        ),
        # multi-frame
        (
            {"frame_1_imageRef": image_ref(), "model": "seedance-1.0-mini"},
            "multi_frame mode requires at least 2 frames (frame_1_imageRef and frame_2_imageRef)",
        ),
        (
            {"frame_1_imageRef": image_ref(), "frame_3_imageRef": image_ref(n=3), "model": "seedance-1.0-mini"},
            "frame_N_imageRef must be contiguous from frame_1: frame_2_imageRef is missing",
        ),
        (
            {"frame_11_imageRef": image_ref(), "model": "seedance-1.0-mini"},
            "Parameter frame_11_imageRef: frame number must be 1-10",
        ),
        (
            {**FRAMES_16_9, "model": "seedance-1.0-mini", "prompt": "x"},
            "Parameter prompt cannot be used with multi_frame mode (use frame_N_prompt instead)",
        ),
        (
            {**FRAMES_16_9, "model": "seedance-1.0-mini", "ratio": "16:9"},
            "Parameter ratio cannot be used with image refs (the image aspect ratio is used)",
        ),
        (
            {**FRAMES_16_9, "model": "seedance-1.0-mini", "frame_1_duration": 7},
            "Parameter frame_1_duration (7) valid values: 1-6",
        ),
        (
            {**FRAMES_16_9, "model": "seedance-1.0-mini", "frame_2_duration": 0},
            "Parameter frame_2_duration (0) valid values: 1-6",
        ),
        (
            {**FRAMES_16_9, "model": "seedance-1.0-mini", "frame_1_duration": 4},
            "Total duration of non-last frames (9) must equal a valid duration for model seedance-1.0-mini: 5, 10",
        ),
        (
            {**FRAMES_16_9, "model": "seedance-1.0-mini", "duration": 5},
            "Parameter duration (5) must equal the total duration of non-last frames (10)",
        ),
        (
            {**FRAMES_16_9, "frame_3_imageRef": image_ref(720, 1280, n=3), "model": "seedance-1.0-mini"},
            "All frame images must have the same aspect ratio (16:9, 16:9, 9:16)",
        ),
        (
            {**FRAMES_16_9, "firstFrameRef": image_ref(), "model": "seedance-1.0-mini"},
            "firstFrameRef/endFrameRef cannot be combined with multi_frame mode (frame_N_imageRef)",
        ),
        (
            {**FRAMES_16_9, "frame_4_prompt": "x", "model": "seedance-1.0-mini"},
            "Parameter frame_4_prompt requires frame_4_imageRef",
        ),
        (
            {**FRAMES_16_9, "model": "seedance-2.0"},
            "Model seedance-2.0 does not support multi_frame mode. Supported input modes: prompt, first_frame, end_frame, unified_edit",
        ),
        # omni reference
        (
            {"prompt": "@image1", "omni_1_imageRef": image_ref(), "model": "seedance-1.5-pro"},
            "Omni Reference (omni_N_*Ref) requires model seedance-2.0 or seedance-2.0-fast",
        ),
        (
            {"prompt": "@image1", "omni_1_imageRef": image_ref(), "firstFrameRef": image_ref(n=2)},
            "omni_N_*Ref cannot be combined with firstFrameRef, endFrameRef or frame_N_imageRef",
        ),
        (
            {"prompt": "@image1", "omni_1_imageRef": image_ref(), "frame_1_imageRef": image_ref(n=2)},
            "omni_N_*Ref cannot be combined with firstFrameRef, endFrameRef or frame_N_imageRef",
        ),
        (
            {"prompt": "@image10", "omni_10_imageRef": image_ref()},
            "Parameter omni_10_imageRef: maximum 9 image references (omni_1..9)",
        ),
        (
            {"prompt": "@video4", "omni_4_videoRef": video_ref()},
            "Parameter omni_4_videoRef: maximum 3 video references (omni_1..3)",
        ),
        (
            {"prompt": "@audio4", "omni_4_audioRef": audio_ref()},
            "Parameter omni_4_audioRef: maximum 3 audio references (omni_1..3)",
        ),
        (
            {
                "prompt": " ".join([*(f"@image{n}" for n in range(1, 10)), "@video1", "@video2", "@video3", "@audio1"]),
                **{f"omni_{n}_imageRef": image_ref(n=n) for n in range(1, 10)},
                **{f"omni_{n}_videoRef": video_ref(3000, n=n) for n in (1, 2, 3)},
                "omni_1_audioRef": audio_ref(),
            },
            "Maximum 12 total materials (omni_N_imageRef, omni_N_videoRef, omni_N_audioRef), got 13",
        ),
        (
            {"prompt": "@video1 @video2", "omni_1_videoRef": video_ref(8000), "omni_2_videoRef": video_ref(7500, n=2)},
            "Total video duration (15.5s) exceeds maximum of 15.4s",
        ),
        (
            {
                "prompt": "@audio1 @audio2 @image1",
                "omni_1_imageRef": image_ref(),
                "omni_1_audioRef": audio_ref(8000),
                "omni_2_audioRef": audio_ref(7001, n=2),
            },
            "Total audio duration (15.001s) exceeds maximum of 15s",
        ),
        (
            {"prompt": "@image1 and @image2", "omni_1_imageRef": image_ref()},
            "Prompt references @image2 but omni_2_imageRef is not provided",
        ),
        (
            {"prompt": "@image1", "omni_1_imageRef": image_ref(), "omni_1_audioRef": audio_ref()},
            "omni_1_audioRef is provided but @audio1 is not referenced in the prompt",
        ),
        (
            {"omni_1_imageRef": image_ref()},
            "Parameter prompt is required for Omni Reference (use @imageN, @videoN, @audioN placeholders)",
        ),
        (
            {"prompt": "@video1", "omni_1_videoRef": image_ref()},
            f"Parameter omni_1_videoRef ({image_ref()}) must be an assetRef of type video, got image",
        ),
        # accounts of refs
        (
            {"firstFrameRef": image_ref(), "endFrameRef": image_ref(account=US, n=2)},
            f"All asset refs must belong to the same account ({CA}, {US})",
        ),
        (
            {"firstFrameRef": image_ref(), "account": US},
            f"Parameter account ({US}) does not match the account of the asset refs ({CA})",
        ),
    ],
)
async def test_video_validation_errors(shared_sim: Sim, body: dict[str, Any], error: str) -> None:
    response = await shared_sim.video(body)
    assert response.status_code == 400, response.text
    assert response.json() == {"error": error}
    assert (await shared_sim.get("/v1/dreamina/scheduler")).json()["total"] == 0


async def test_refs_and_account_of_unknown_accounts_are_404(sim: Sim) -> None:
    other = "CA:other@example.com"
    for body in ({"firstFrameRef": image_ref(account=other)}, {"prompt": "x", "account": other}):
        response = await sim.video(body)
        assert response.status_code == 404
        assert response.json() == {"error": f"Unable to find configuration for account {other}"}


async def test_body_must_be_a_json_object_or_form(sim: Sim) -> None:
    not_json = await sim.video(content=b"{nope", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400 and not_json.json() == {"error": "Request body is not valid JSON"}
    array = await sim.video(content=b"[]", headers={"Content-Type": "application/json"})
    assert array.json() == {"error": "Request body must be a JSON object"}
    file_part = await sim.video(files={"prompt": ("p.txt", b"x", "text/plain")})
    assert file_part.json() == {"error": "Parameter prompt must be a text field, not a file"}


async def test_region_table_routes_and_defaults(sim: Sim) -> None:
    # 1080p on seedance-2.0 exists only on CA accounts, so an unpinned request lands there
    for _ in range(4):
        job = await sim.created({"prompt": "x", "model": "seedance-2.0", "resolution": "1080p"})
        assert JOBID.match(job["jobid"])["account"] == CA  # type: ignore[index]
        assert job["request"]["resolution"] == "1080p" and job["response"]["forecastCost"] == 250
    four_k = await sim.created({"prompt": "x", "model": "seedance-2.0", "resolution": "4k", "ratio": "9:16", "duration": 4})
    assert four_k["response"]["forecastCost"] == 25 * 4 * 4
    sim.clock.advance(1)
    assert (await sim.poll(four_k["jobid"]))["response"]["width"] == 2160
    # defaults: model by region, duration 5 (or the model's shortest when 5 is not offered), ratio 16:9
    us = await sim.created({"prompt": "x", "account": US})
    assert us["model"] == "seedance-1.5-pro" and us["request"]["duration"] == 5 and us["request"]["ratio"] == "16:9"
    ca = await sim.created({"prompt": "x", "account": CA})
    assert ca["model"] == "seedance-2.0"
    sora = await sim.created({"prompt": "x", "model": "sora2"})
    assert sora["request"]["duration"] == 4
    pro = await sim.created({"prompt": "x", "model": "seedance-1.0-pro"})
    sim.clock.advance(1)
    assert (await sim.poll(pro["jobid"]))["response"]["height"] == 1080


async def test_multi_frame_and_end_frame_modes(sim: Sim) -> None:
    frames = await sim.created(
        {
            **FRAMES_16_9,
            "frame_1_prompt": "a",
            "frame_2_duration": "5",
            "frame_3_duration": 2,
            "model": "seedance-1.0-mini",
        }
    )
    request = frames["request"]
    assert request["inputMode"] == "multi_frame" and request["duration"] == 10 and request["ratio"] == "16:9"
    assert request["frame_2_duration"] == 5 and request["frame_1_prompt"] == "a"
    end = await sim.created({"firstFrameRef": image_ref(720, 1280), "endFrameRef": image_ref(720, 1280, n=2)})
    assert end["request"]["inputMode"] == "end_frame" and end["request"]["ratio"] == "9:16"
    assert "prompt" not in end["request"]  # optional in frame modes
    sim.clock.advance(1)
    done = await sim.poll(end["jobid"])
    assert (done["response"]["width"], done["response"]["height"]) == (720, 1280)


async def test_omni_limits_at_their_bounds_are_accepted(sim: Sim) -> None:
    body = {
        "prompt": " ".join([*(f"@image{n}" for n in range(1, 10)), "@video1", "@video2", "@audio1"]),
        **{f"omni_{n}_imageRef": image_ref(n=n) for n in range(1, 10)},
        "omni_1_videoRef": video_ref(8000),
        "omni_2_videoRef": video_ref(7400, n=2),
        "omni_1_audioRef": audio_ref(15_000),
        "model": "seedance-2.0-fast",
    }
    job = await sim.created(body)
    assert job["request"]["inputMode"] == "unified_edit" and job["request"]["omni_9_imageRef"] == image_ref(n=9)


# ---------------------------------------------------------------------------
# Auth, capacity, sessions, credits
# ---------------------------------------------------------------------------


async def test_unauthorized_without_a_valid_bearer(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(tokens=frozenset({TOKEN}))
    assert (await sim.video(DOC_TEXT_TO_VIDEO, auth=False)).json() == {"error": "Unauthorized"}
    for header in ("Bearer", "Basic abc", "Bearer wrong", f"Token {TOKEN}"):
        response = await sim.client.post("/v1/dreamina/videos", json=DOC_TEXT_TO_VIDEO, headers={"Authorization": header})
        assert response.status_code == 401 and response.json() == {"error": "Unauthorized"}, header
    for method, path in (
        ("GET", "/v1/dreamina/accounts"),
        ("GET", "/v1/dreamina/scheduler"),
        ("GET", "/v1/dreamina/videos/x"),
    ):
        assert (await sim.client.request(method, path)).status_code == 401
    assert (await sim.client.post(f"/v1/dreamina/assets/{CA}", content=b"x")).status_code == 401
    assert (await sim.video(DOC_TEXT_TO_VIDEO)).status_code == 200
    any_token = make_sim()
    ok = await any_token.client.post("/v1/dreamina/videos", json=DOC_TEXT_TO_VIDEO, headers={"Authorization": "Bearer anything"})
    assert ok.status_code == 200


async def test_capacity_per_request_max_jobs(sim: Sim) -> None:
    first = await sim.video({**DOC_TEXT_TO_VIDEO, "account": CA, "maxJobs": 1})
    assert first.status_code == 200
    second = await sim.video({**DOC_TEXT_TO_VIDEO, "account": CA, "maxJobs": "1"})
    assert second.status_code == 429 and second.json() == {"error": "All accounts at capacity"}
    assert (await sim.video({**DOC_TEXT_TO_VIDEO, "account": CA, "maxJobs": 2})).status_code == 200


async def test_capacity_across_accounts_frees_when_jobs_end(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(accounts=[SimAccount(account=CA, region="CA", max_jobs=1), SimAccount(account=US, region="US", max_jobs=1)])
    accounts = {JOBID.match((await sim.created(DOC_TEXT_TO_VIDEO))["jobid"])["account"] for _ in range(2)}  # type: ignore[index]
    assert accounts == {CA, US}  # random choice among accounts with free capacity
    full = await sim.video(DOC_TEXT_TO_VIDEO)
    assert full.status_code == 429 and full.json() == {"error": "All accounts at capacity"}
    sim.clock.advance(0.2)
    assert (await sim.video(DOC_TEXT_TO_VIDEO)).status_code == 200


async def test_session_expired_596(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(accounts=[SimAccount(account=CA, region="CA", session_expired=True), SimAccount(account=US, region="US")])
    pinned = await sim.video({**DOC_TEXT_TO_VIDEO, "account": CA})
    assert pinned.status_code == 596 and pinned.json() == {"error": "Session expired"}
    unpinned = await sim.created(DOC_TEXT_TO_VIDEO)  # the live US account takes it
    assert JOBID.match(unpinned["jobid"])["account"] == US  # type: ignore[index]
    await sim.faults(session_expired=True)
    assert (await sim.video(DOC_TEXT_TO_VIDEO)).status_code == 596
    assert (await sim.upload(sample("image.png"), "image/png", account=US)).status_code == 596


async def test_insufficient_credits_402_and_credits_are_spent(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(accounts=[SimAccount(account=CA, region="CA", credits=200)])
    assert (await sim.video(DOC_TEXT_TO_VIDEO)).status_code == 200
    assert (await sim.get(f"/v1/dreamina/accounts/{CA}")).json()["credits"]["total"] == 75
    broke = await sim.video(DOC_TEXT_TO_VIDEO)
    assert broke.status_code == 402 and broke.json() == {"error": "Insufficient credits: forecastCost 125, available 75"}


# ---------------------------------------------------------------------------
# Scheduler and cancel
# ---------------------------------------------------------------------------


async def test_scheduler_lists_running_jobs_and_cancel_fails_them(sim: Sim) -> None:
    assert (await sim.get("/v1/dreamina/scheduler")).json() == {"executing": {}, "total": 0}
    job = await sim.created({**DOC_TEXT_TO_VIDEO, "account": CA, "replyUrl": "http://127.0.0.1:9/hook"})
    sim.clock.advance(0.1)
    listing = (await sim.get("/v1/dreamina/scheduler")).json()
    assert listing["total"] == 1
    [entry] = listing["executing"][CA]
    assert entry["jobid"] == job["jobid"] and entry["model"] == "seedance-2.0"
    assert entry["replyUrl"] == "http://127.0.0.1:9/hook" and entry["elapsedSeconds"] == 0
    assert re.fullmatch(r"[0-9a-f-]{36}", entry["submitId"])

    cancelled = await sim.client.delete(f"/v1/dreamina/scheduler/{quote(job['jobid'], safe='')}", headers=AUTH)
    assert cancelled.status_code == 204 and cancelled.content == b""
    record = await sim.poll(job["jobid"])
    assert record["status"] == "failed" and record["error"] == "Cancelled by user" and record["code"] == 200
    assert (await sim.get("/v1/dreamina/scheduler")).json()["total"] == 0
    again = await sim.client.delete(f"/v1/dreamina/scheduler/{job['jobid']}", headers=AUTH)
    assert again.status_code == 404
    assert again.json() == {"error": f"Unable to locate running jobId {job['jobid']}", "code": 404}
    sim.clock.advance(1)
    assert (await sim.poll(job["jobid"]))["status"] == "failed"  # cancellation sticks
    assert (await sim.client.get(f"/_sim/files/video.mp4?job={quote(job['jobid'])}")).status_code == 404


# ---------------------------------------------------------------------------
# Fault switches
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, "All accounts at capacity"),
        (500, "Internal Server Error"),
        (503, "Internal Server Error"),
        (596, "Session expired"),
        (402, "Account has no subscription or subscription expired"),
    ],
)
async def test_submit_status_fault(sim: Sim, status: int, error: str) -> None:
    await sim.faults(submit_status=status, submit_status_count=1, retry_after="7")
    faulted = await sim.video(DOC_TEXT_TO_VIDEO)
    assert faulted.status_code == status and faulted.json() == {"error": error}
    assert faulted.headers.get("retry-after") == ("7" if status in (429, 503) else None)
    assert (await sim.get("/v1/dreamina/scheduler")).json()["total"] == 0  # nothing was created
    assert (await sim.video(DOC_TEXT_TO_VIDEO)).status_code == 200  # the count ran out
    assert [s["status"] for s in await sim.submits()] == [status, 200]


async def test_poll_and_upload_status_faults(sim: Sim) -> None:
    job = await sim.created(DOC_TEXT_TO_VIDEO)
    await sim.faults(poll_status=503, poll_status_count=-1, upload_status=500, upload_status_count=2)
    for _ in range(3):
        response = await sim.get(f"/v1/dreamina/videos/{job['jobid']}")
        assert response.status_code == 503 and response.json() == {"error": "Internal Server Error"}
    for _ in range(2):
        assert (await sim.upload(sample("image.png"), "image/png")).status_code == 500
    assert (await sim.upload(sample("image.png"), "image/png")).status_code == 200
    await sim.faults(poll_status=0)
    assert (await sim.get(f"/v1/dreamina/videos/{job['jobid']}")).status_code == 200


async def test_malformed_answers_keep_the_job(sim: Sim) -> None:
    await sim.faults(malformed_count=2)
    garbled = await sim.video(DOC_TEXT_TO_VIDEO)
    assert garbled.status_code == 200
    with pytest.raises(ValueError):
        garbled.json()
    [entry] = await sim.submits()
    jobid = entry["jobid"]  # the job was created; only the answer was garbled
    assert (await sim.get("/v1/dreamina/scheduler")).json()["executing"]
    garbled_poll = await sim.get(f"/v1/dreamina/videos/{jobid}")
    assert garbled_poll.status_code == 200 and not garbled_poll.text.startswith("{")
    assert (await sim.poll(jobid))["jobid"] == jobid


@pytest.mark.parametrize(("reason", "details"), [(None, "OutputVideoRisk"), ("InputImageRisk", "InputImageRisk")])
async def test_failed_jobs(sim: Sim, reason: str | None, details: str) -> None:
    await sim.faults(job_outcome="fail", fail_reason=reason)
    job = await sim.created(DOC_TEXT_TO_VIDEO)
    assert (await sim.poll(job["jobid"]))["status"] == "created"
    sim.clock.advance(1)
    record = await sim.poll(job["jobid"])
    assert record["status"] == "failed" and record["code"] == 200
    assert record["error"] == "fail_code: 2043" and record["errorDetails"] == details
    assert record["response"] == {"forecastCost": 125} and "updated" in record
    await sim.faults(job_outcome="succeed")
    assert (await sim.poll(job["jobid"]))["status"] == "failed"  # the outcome is fixed at creation


async def test_hanging_jobs_never_finish_and_hold_capacity(sim: Sim) -> None:
    await sim.faults(job_outcome="hang")
    job = await sim.created({**DOC_TEXT_TO_VIDEO, "account": CA, "maxJobs": 1})
    sim.clock.advance(86_400)
    assert (await sim.poll(job["jobid"]))["status"] == "created"
    assert (await sim.video({**DOC_TEXT_TO_VIDEO, "account": CA, "maxJobs": 1})).status_code == 429


async def test_delay_fault_and_control_routes(sim: Sim) -> None:
    await sim.faults(delay_seconds=0.15)
    started = time.monotonic()
    assert (await sim.get("/v1/dreamina/scheduler")).status_code == 200
    assert time.monotonic() - started >= 0.15
    started = time.monotonic()
    assert (await sim.client.get("/_sim/faults")).json()["delay_seconds"] == 0.15  # control routes are never delayed
    assert time.monotonic() - started < 0.15

    replaced = await sim.client.put("/_sim/faults", json={"submit_status": 429, "submit_status_count": -1})
    assert replaced.json()["delay_seconds"] == 0.0
    assert (await sim.video(DOC_TEXT_TO_VIDEO)).status_code == 429
    assert (await sim.client.post("/_sim/faults", json={"nope": 1})).status_code == 400
    assert (await sim.client.post("/_sim/reset")).json() == {"reset": True}
    assert await sim.submits() == []
    assert (await sim.client.get("/_sim/faults")).json()["submit_status"] == 0
    assert (await sim.video(DOC_TEXT_TO_VIDEO)).status_code == 200


async def test_sim_jobs_records_every_submit_with_status_and_body(sim: Sim) -> None:
    await sim.video(DOC_TEXT_TO_VIDEO, auth=False)
    await sim.video({"prompt": "x", "model": "invalid-model"})
    await sim.video(files={"prompt": (None, "x"), "duration": (None, "5")})
    await sim.video(content=b"{nope", headers={"Content-Type": "application/json"})
    submits = await sim.submits()
    assert [s["seq"] for s in submits] == [1, 2, 3, 4]
    assert [s["status"] for s in submits] == [401, 400, 200, 400]
    assert submits[0]["body"] == DOC_TEXT_TO_VIDEO and submits[0]["error"] == "Unauthorized"
    assert submits[1]["error"].startswith("Parameter model (invalid-model)") and submits[1]["jobid"] is None
    assert submits[2]["body"] == {"prompt": "x", "duration": "5"} and JOBID.match(submits[2]["jobid"])
    assert submits[2]["content_type"].startswith("multipart/form-data")
    assert submits[3]["body"] == "{nope"


def test_dropped_connection_over_real_http() -> None:
    app = create_app(SimConfig(job_seconds=0.2))
    with serve_in_thread(app) as base, httpx.Client(base_url=base, headers=AUTH) as http:
        assert http.post("/_sim/faults", json={"drop_count": 1}).status_code == 200
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):  # how the abort surfaces varies
            http.post("/v1/dreamina/videos", json=DOC_TEXT_TO_VIDEO)
        assert http.get("/_sim/jobs").json() == []  # dropped before the simulator saw it
        created = http.post("/v1/dreamina/videos", json=DOC_TEXT_TO_VIDEO)
        assert created.status_code == 200
        expired = http.post("/_sim/faults", json={"session_expired": True})
        assert expired.status_code == 200
        response = http.post("/v1/dreamina/videos", json=DOC_TEXT_TO_VIDEO)
        assert response.status_code == 596 and response.json() == {"error": "Session expired"}


# ---------------------------------------------------------------------------
# replyUrl callbacks
# ---------------------------------------------------------------------------


def _receiver(got: list[dict[str, Any]], headers: list[str]) -> Litestar:
    @post("/hook", status_code=200)
    async def hook(request: Request) -> None:
        headers.append(request.headers.get("content-type", ""))
        got.append(msgspec.json.decode(await request.body()))

    return Litestar([hook])


def _wait_for(predicate: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_reply_url_receives_created_then_completed_records() -> None:
    got: list[dict[str, Any]] = []
    content_types: list[str] = []
    app = create_app(SimConfig(job_seconds=0.2))
    with (
        serve_in_thread(_receiver(got, content_types)) as hooks,
        serve_in_thread(app) as base,
        httpx.Client(base_url=base, headers=AUTH) as http,
    ):
        body = {**DOC_TEXT_TO_VIDEO, "replyUrl": f"{hooks}/hook", "replyRef": "order-42"}
        job = http.post("/v1/dreamina/videos", json=body).json()
        assert job["request"]["replyRef"] == "order-42" and job["request"]["replyUrl"] == f"{hooks}/hook"
        _wait_for(lambda: len(got) >= 2)
        assert [r["status"] for r in got] == ["created", "completed"]
        assert all(r["jobid"] == job["jobid"] and r["request"]["replyRef"] == "order-42" for r in got)
        assert got[1]["response"]["videoUrl"].startswith(f"{base}/_sim/files/video.mp4")
        assert content_types == ["application/json", "application/json"]
        assert http.get(got[1]["response"]["videoUrl"]).content[4:8] == b"ftyp"

        # a cancelled job calls back with its failure; a dead receiver is recorded, not retried
        got.clear()
        job = http.post("/v1/dreamina/videos", json={**body, "replyRef": "c"}).json()
        _wait_for(lambda: len(got) >= 1)
        assert http.delete(f"/v1/dreamina/scheduler/{job['jobid']}").status_code == 204
        _wait_for(lambda: len(got) >= 2)
        assert [r["status"] for r in got] == ["created", "failed"] and got[1]["error"] == "Cancelled by user"

        dead = f"http://127.0.0.1:{free_port()}/hook"
        http.post("/v1/dreamina/videos", json={**DOC_TEXT_TO_VIDEO, "replyUrl": dead})
        _wait_for(lambda: any(r["url"] == dead for r in http.get("/_sim/replies").json()))
        replies = http.get("/_sim/replies").json()
        assert [r["http_status"] for r in replies if r["url"] != dead] == [200, 200, 200, 200]
        failed = [r for r in replies if r["url"] == dead]
        assert failed[0]["http_status"] is None and failed[0]["error"].startswith("ConnectError")


async def test_reply_on_poll_with_fake_clock_via_reply_transport(clock: FakeClock) -> None:
    """With a frozen clock the terminal callback goes out when a poll first sees the end."""
    got: list[dict[str, Any]] = []
    receiver = _receiver(got, [])
    app = create_app(SimConfig(job_seconds=0.05), clock=clock, reply_transport=httpx.ASGITransport(app=receiver))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim.test", headers=AUTH) as c:
        job = (await c.post("/v1/dreamina/videos", json={**DOC_TEXT_TO_VIDEO, "replyUrl": "http://hooks.test/hook"})).json()
        await asyncio.sleep(0.1)  # the timer fires, but the fake clock says the job still runs
        assert [r["status"] for r in got] == ["created"]
        clock.advance(1)
        await c.get(f"/v1/dreamina/videos/{job['jobid']}")
        await c.get(f"/v1/dreamina/videos/{job['jobid']}")
        for _ in range(50):
            if len(got) >= 2:
                break
            await asyncio.sleep(0.01)
        assert [r["status"] for r in got] == ["created", "completed"]  # exactly once
        assert got[1]["response"]["videoUrl"].startswith("http://sim.test/_sim/files/")
