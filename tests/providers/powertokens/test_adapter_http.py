"""The PowerTokens adapter + `UpstreamClient` against the PowerTokens simulator.

In-process (`ASGITransport`, injected clock: nothing sleeps) for the job lifecycle and HTTP
error classes; real loopback (`serve_in_thread`) where only a socket shows the failure: a
dropped connection and a client timeout.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from providers.base import (
    ErrorClass,
    FirstFrameInput,
    FirstLastFrameInput,
    GenerationRequest,
    JobStatus,
    Media,
    ModeInput,
    ReferenceInput,
    SubmitContext,
    TextInput,
    UpstreamError,
    UpstreamJob,
)
from providers.capabilities import check
from providers.client import UpstreamClient
from providers.powertokens.adapter import PowerTokensAdapter
from providers.powertokens.models import CATALOG, MODELS
from providers.powertokens.sim import SimConfig, create_app
from providers.simkit import Faults, sample, serve_in_thread

BASE = "http://pt.test"
TOKEN = "pt-token"
T0 = 1_790_000_000.0
JOB_SECONDS = 60.0
CTX = SubmitContext()

IMAGE = Media(kind="image", data=sample("image.png"), content_type="image/png", width=640, height=360)
IMAGE_URL = Media(kind="image", url="https://cdn.example/frame.png")
VIDEO = Media(kind="video", data=sample("video.mp4"), content_type="video/mp4", duration_ms=2000)
AUDIO = Media(kind="audio", data=sample("audio.wav"), content_type="audio/wav", duration_ms=3000)
AUDIO_URL = Media(kind="audio", url="https://cdn.example/voice.mp3")

INPUTS: dict[str, ModeInput] = {
    "text": TextInput(prompt="a paper boat on a rainy street"),
    "first_frame": FirstFrameInput(first_frame=IMAGE, prompt="the boat drifts away"),
    "first_last_frame": FirstLastFrameInput(first_frame=IMAGE, last_frame=IMAGE_URL, prompt="dusk to night"),
    "reference": ReferenceInput(
        prompt="@image1 dances like @video1 to @audio1",
        images=(IMAGE, IMAGE_URL),
        videos=(VIDEO,),
        audios=(AUDIO, AUDIO_URL),
    ),
}


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Sim:
    """One in-process simulator and an `UpstreamClient` wired to it."""

    def __init__(self, config: SimConfig, secret: str = TOKEN) -> None:
        self.clock = FakeClock()
        self.http = httpx.AsyncClient(base_url=BASE, transport=httpx.ASGITransport(app=create_app(config, clock=self.clock)))
        self.client = UpstreamClient(PowerTokensAdapter(), self.http, secret)

    async def faults(self, **switches: Any) -> None:
        (await self.http.post("/_sim/faults", json=switches)).raise_for_status()

    async def submissions(self) -> list[dict[str, Any]]:
        return (await self.http.get("/_sim/jobs")).json()


@contextlib.asynccontextmanager
async def sim(secret: str = TOKEN, **config: Any) -> AsyncIterator[Sim]:
    s = Sim(SimConfig(job_seconds=JOB_SECONDS, **config), secret)
    async with s.http:
        yield s


def request(mode: str, **kw: Any) -> GenerationRequest:
    return GenerationRequest(model="seedance-2.0", input=INPUTS[mode], **kw)


async def submit(s: Sim, req: GenerationRequest, model_id: str) -> UpstreamJob:
    assert check(req, MODELS[model_id]) == []  # only what the capability table lets through
    return await s.client.submit(req, model_id, await s.client.upload_all(req, CTX), CTX)


async def run_to_end(s: Sim, req: GenerationRequest, model_id: str) -> tuple[UpstreamJob, UpstreamJob, UpstreamJob]:
    created = await submit(s, req, model_id)
    s.clock.advance(JOB_SECONDS / 2)
    running = await s.client.poll(created.upstream_id)
    s.clock.advance(JOB_SECONDS)
    return created, running, await s.client.poll(created.upstream_id)


async def fetch_public(s: Sim, url: str) -> bytes:
    # The result URL stands in for a signed CDN link: fetched without credentials.
    response = await s.http.get(url)
    response.raise_for_status()
    return response.content


async def content_bytes(s: Sim, job: UpstreamJob) -> bytes:
    async with s.client.stream_content(job.upstream_id, job) as response:
        return await response.aread()


# --- every allowed mode on every model ------------------------------------------------------

CASES = [
    (logical, mode)
    for logical, model_id in CATALOG.items()
    for mode in ("text", "first_frame", "first_last_frame", "reference")
    if mode in MODELS[model_id].modes
]


@pytest.mark.parametrize("logical,mode", CASES, ids=[f"{m}-{k}" for m, k in CASES])
async def test_every_allowed_mode_submits_and_completes(logical, mode):
    model_id = CATALOG[logical]
    async with sim() as s:
        created, running, done = await run_to_end(s, request(mode, seconds=5), model_id)
        assert (created.status, running.status, done.status) == (
            JobStatus.QUEUED,
            JobStatus.IN_PROGRESS,
            JobStatus.COMPLETED,
        )
        assert created.model == model_id and done.upstream_id == created.upstream_id
        assert done.result is not None and done.result.video_url is not None
        assert (await fetch_public(s, done.result.video_url))[4:8] == b"ftyp"
        assert done.cost is not None and done.cost.unit == "tokens" and done.cost.amount > 0
        [sent] = await s.submissions()
        assert sent["status_code"] == 200 and sent["body"]["seconds"] == "5"


async def test_submitted_body_is_what_the_adapter_built():
    req = request("reference", seconds="auto", resolution="720p", ratio="adaptive", generate_audio=False, end_user="u-1")
    async with sim() as s:
        await submit(s, req, CATALOG["seedance-2.0"])
        [sent] = await s.submissions()
    built = PowerTokensAdapter().build_submit(req, CATALOG["seedance-2.0"], {}, CTX).json
    assert sent["body"] == built
    assert sent["content_type"] == "application/json"
    assert [m["type"] for m in sent["body"]["media"]] == [
        "text",
        "reference_image",
        "reference_image",
        "reference_video",
        "reference_audio",
        "reference_audio",
    ]


# --- both vocabularies x every result placement -------------------------------------------------


@pytest.mark.parametrize("vocabulary", ["ark", "openai"])
@pytest.mark.parametrize("placement", ["video_url", "metadata.url", "content.video_url", "none"])
async def test_vocabularies_and_result_placements(vocabulary, placement):
    model_id = CATALOG["seedance-2.0-fast"]
    async with sim(status_vocabulary=vocabulary, result_url_field=placement) as s:
        created, running, done = await run_to_end(s, request("first_frame", seconds=5, return_last_frame=True), model_id)
        assert created.upstream_status == ("pending" if vocabulary == "ark" else "queued")
        assert running.upstream_status == ("running" if vocabulary == "ark" else "in_progress")
        assert done.upstream_status == ("succeeded" if vocabulary == "ark" else "completed")
        assert done.status is JobStatus.COMPLETED and done.progress == 100
        result = done.result
        assert result is not None
        if placement == "none":
            assert result.video_url is None
        else:
            assert (await fetch_public(s, result.video_url))[4:8] == b"ftyp"
        assert result.last_frame_url is not None  # top level, or inside `content` beside its video_url
        assert (await fetch_public(s, result.last_frame_url))[:4] == b"\x89PNG"
        # the authenticated fallback works whatever the placement
        assert (await content_bytes(s, done))[4:8] == b"ftyp"
        # 2.0 fast is priced: 720p (upstream default) x 5 s x $0.121
        assert done.cost is not None and done.cost.usd_estimate == pytest.approx(0.605)


async def test_content_before_completion_is_not_found():
    async with sim(result_url_field="none") as s:
        created = await submit(s, request("text"), CATALOG["seedance-2.0"])
        with pytest.raises(UpstreamError) as exc:
            await content_bytes(s, created)
    assert exc.value.info.error_class is ErrorClass.NOT_FOUND


# --- cancel and expiry ------------------------------------------------------------------------


@pytest.mark.parametrize("vocabulary", ["ark", "openai"])
async def test_cancel_a_queued_task(vocabulary):
    async with sim(status_vocabulary=vocabulary) as s:
        created = await submit(s, request("text"), CATALOG["seedance-2.0"])
        assert await s.client.cancel(created.upstream_id) is True
        job = await s.client.poll(created.upstream_id)
    assert job.status is JobStatus.CANCELLED and job.error is None


async def test_cancel_a_finished_task_is_refused():
    async with sim() as s:
        _, _, done = await run_to_end(s, request("text"), CATALOG["seedance-2.0"])
        with pytest.raises(UpstreamError) as exc:
            await s.client.cancel(done.upstream_id)
    assert (exc.value.info.error_class, exc.value.info.http_status) == (ErrorClass.INVALID_REQUEST, 409)


@pytest.mark.parametrize("vocabulary", ["ark", "openai"])
async def test_a_task_that_never_runs_expires_as_timeout(vocabulary):
    async with sim(status_vocabulary=vocabulary, faults=Faults(job_outcome="hang")) as s:
        created = await submit(s, request("text"), CATALOG["seedance-2.0"])
        s.clock.advance(3 * 86400)  # past Ark's execution_expires_after (48 h)
        job = await s.client.poll(created.upstream_id)
    assert job.status is JobStatus.FAILED
    assert job.error is not None and (job.error.error_class, job.error.code) == (ErrorClass.TIMEOUT, "expired")


# --- failed tasks -----------------------------------------------------------------------------


@pytest.mark.parametrize("vocabulary", ["ark", "openai"])
async def test_failed_task_with_moderation_code_is_content_rejected(vocabulary):
    async with sim(status_vocabulary=vocabulary, faults=Faults(job_outcome="fail")) as s:
        *_, done = await run_to_end(s, request("text"), CATALOG["seedance-2.0"])
    assert done.status is JobStatus.FAILED and done.upstream_status == "failed"
    info = done.error
    assert info is not None and info.error_class is ErrorClass.CONTENT_REJECTED and info.retryable is False
    assert info.code == "OutputVideoSensitiveContentDetected"


# --- HTTP error classes via fault switches, in each error envelope --------------------------------

ENVELOPES = ["openai", "newapi", "ark"]


@pytest.mark.parametrize("envelope", ENVELOPES)
async def test_429_with_retry_after_is_rate_limit(envelope):
    async with sim(error_envelope=envelope) as s:
        await s.faults(submit_status=429, submit_status_count=1, retry_after="7")
        with pytest.raises(UpstreamError) as exc:
            await submit(s, request("text"), CATALOG["seedance-2.0"])
        info = exc.value.info
        assert (info.error_class, info.http_status, info.retry_after, info.retryable) == (
            ErrorClass.RATE_LIMIT,
            429,
            7.0,
            True,
        )
        assert exc.value.ambiguous is False
        assert (await submit(s, request("text"), CATALOG["seedance-2.0"])).status is JobStatus.QUEUED  # the burst is over


@pytest.mark.parametrize("envelope", ENVELOPES)
@pytest.mark.parametrize(
    "status,cls",
    [
        (500, ErrorClass.UPSTREAM_UNAVAILABLE),
        (503, ErrorClass.UPSTREAM_UNAVAILABLE),
        (402, ErrorClass.PAYMENT),
        (403, ErrorClass.AUTH),
        (400, ErrorClass.INVALID_REQUEST),
    ],
)
async def test_submit_fault_statuses(envelope, status, cls):
    async with sim(error_envelope=envelope) as s:
        await s.faults(submit_status=status, submit_status_count=1)
        with pytest.raises(UpstreamError) as exc:
            await submit(s, request("text"), CATALOG["seedance-2.0"])
    assert (exc.value.info.error_class, exc.value.info.http_status) == (cls, status)
    assert exc.value.info.code  # the upstream's own code, kept
    assert exc.value.ambiguous is False  # an error status means no job was created


@pytest.mark.parametrize("envelope", ENVELOPES)
async def test_poll_5xx_then_recovers(envelope):
    async with sim(error_envelope=envelope) as s:
        created = await submit(s, request("text"), CATALOG["seedance-2.0"])
        await s.faults(poll_status=502, poll_status_count=1)
        with pytest.raises(UpstreamError) as exc:
            await s.client.poll(created.upstream_id)
        assert exc.value.info.error_class is ErrorClass.UPSTREAM_UNAVAILABLE and exc.value.info.retryable
        assert (await s.client.poll(created.upstream_id)).status is JobStatus.QUEUED


@pytest.mark.parametrize("envelope", ENVELOPES)
async def test_wrong_key_is_auth(envelope):
    async with sim(secret="wrong", error_envelope=envelope, tokens=frozenset({TOKEN})) as s:
        with pytest.raises(UpstreamError) as exc:
            await submit(s, request("text"), CATALOG["seedance-2.0"])
    assert (exc.value.info.error_class, exc.value.info.http_status) == (ErrorClass.AUTH, 401)


@pytest.mark.parametrize("envelope", ENVELOPES)
async def test_unknown_task_is_not_found(envelope):
    async with sim(error_envelope=envelope) as s:
        with pytest.raises(UpstreamError) as exc:
            await s.client.poll("cgt-20260101000000-nope0")
    assert (exc.value.info.error_class, exc.value.info.http_status) == (ErrorClass.NOT_FOUND, 404)


@pytest.mark.parametrize("envelope", ENVELOPES)
async def test_upstream_validation_error_is_invalid_request_with_its_message(envelope):
    # A request the capability table would refuse (1080p on 2.0 fast), sent anyway to see the
    # upstream's own answer come back classified.
    req = request("text", resolution="1080p")
    async with sim(error_envelope=envelope) as s:
        with pytest.raises(UpstreamError) as exc:
            await s.client.submit(req, CATALOG["seedance-2.0-fast"], {}, CTX)
    info = exc.value.info
    assert (info.error_class, info.http_status) == (ErrorClass.INVALID_REQUEST, 400)
    assert "size" in info.message


async def test_malformed_submit_answer_is_ambiguous():
    async with sim() as s:
        await s.faults(malformed_count=1)
        with pytest.raises(UpstreamError) as exc:
            await submit(s, request("text"), CATALOG["seedance-2.0"])
    info = exc.value.info
    assert (info.error_class, info.code, info.http_status) == (
        ErrorClass.UPSTREAM_UNAVAILABLE,
        "malformed_response",
        200,
    )
    assert exc.value.ambiguous is True


async def test_malformed_poll_answer_is_retryable_not_ambiguous():
    async with sim() as s:
        created = await submit(s, request("text"), CATALOG["seedance-2.0"])
        await s.faults(malformed_count=1)
        with pytest.raises(UpstreamError) as exc:
            await s.client.poll(created.upstream_id)
    assert exc.value.info.code == "malformed_response" and exc.value.info.retryable
    assert exc.value.ambiguous is False


# --- real sockets: dropped connections and timeouts ------------------------------------------------


@pytest.fixture(scope="module")
def loopback() -> Iterator[str]:
    with serve_in_thread(create_app(SimConfig(job_seconds=JOB_SECONDS))) as base_url:
        yield base_url


@contextlib.asynccontextmanager
async def over_loopback(base_url: str, timeout: float = 5.0) -> AsyncIterator[UpstreamClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as http:
        (await http.put("/_sim/faults", json={})).raise_for_status()  # every switch back to default
        yield UpstreamClient(PowerTokensAdapter(), http, TOKEN)


async def test_dropped_connection_on_submit_is_ambiguous(loopback):
    async with over_loopback(loopback) as client:
        await client.http.post("/_sim/faults", json={"drop_count": 1})
        with pytest.raises(UpstreamError) as exc:
            await client.submit(request("text"), CATALOG["seedance-2.0"], {}, CTX)
    assert exc.value.info.error_class is ErrorClass.UPSTREAM_UNAVAILABLE
    assert exc.value.ambiguous is True


async def test_slow_submit_past_client_timeout_is_an_ambiguous_timeout(loopback):
    async with over_loopback(loopback, timeout=0.1) as client:
        await client.http.post("/_sim/faults", json={"delay_seconds": 0.4})
        with pytest.raises(UpstreamError) as exc:
            await client.submit(request("text"), CATALOG["seedance-2.0"], {}, CTX)
        await client.http.put("/_sim/faults", json={})
    assert exc.value.info.error_class is ErrorClass.TIMEOUT
    assert exc.value.ambiguous is True


async def test_slow_poll_is_a_plain_timeout(loopback):
    async with over_loopback(loopback) as client:
        created = await client.submit(request("text"), CATALOG["seedance-2.0"], {}, CTX)
        await client.http.post("/_sim/faults", json={"delay_seconds": 0.4})
        client.http.timeout = httpx.Timeout(0.1)
        with pytest.raises(UpstreamError) as exc:
            await client.poll(created.upstream_id)
        client.http.timeout = httpx.Timeout(5.0)
        await client.http.put("/_sim/faults", json={})
    assert exc.value.info.error_class is ErrorClass.TIMEOUT and exc.value.ambiguous is False
