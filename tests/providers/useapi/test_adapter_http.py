"""The useapi adapter driven by the generic `UpstreamClient` against the useapi simulator:
every mode the capability table allows, normalized results, callbacks, cancel, and the
combinations the table forbids (which the simulator must refuse too).

The simulator was written from the docs alone, so agreement here is agreement of two
independent readings of the docs. Error classes from fault switches and real-socket
failures are in `test_adapter_http_faults.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest

from providers.base import (
    Cost,
    ErrorClass,
    FirstFrameInput,
    FirstLastFrameInput,
    GenerationRequest,
    JobStatus,
    Keyframe,
    KeyframesInput,
    ModeInput,
    ReferenceInput,
    SubmitContext,
    TextInput,
    UpstreamError,
)
from providers.capabilities import ModelCaps, check
from providers.useapi.adapter import UseapiAdapter
from providers.useapi.models import MODELS

from .sim_harness import AUDIO, CA, CTX, IMAGE, JOB_SECONDS, LAST, US, VIDEO, Sim, open_sim, raised, submit_text


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    async with open_sim() as s:
        yield s


def request_for(caps: ModelCaps, mode: str) -> tuple[GenerationRequest, int]:
    """A request in `mode` that `caps` accepts, and the duration it should come out at."""
    seconds = min(caps.durations)
    inp: ModeInput
    if mode == "text":
        text = TextInput(prompt="a lighthouse in a storm")
        return GenerationRequest(model="x", input=text, seconds=seconds, ratio="9:16"), seconds
    if mode == "first_frame":
        inp = FirstFrameInput(first_frame=IMAGE, prompt="the camera pulls back")
    elif mode == "first_last_frame":
        inp = FirstLastFrameInput(first_frame=IMAGE, last_frame=LAST, prompt="day turns to night")
    elif mode == "keyframes":
        # Non-last frames add up to the model's shortest duration; the last frame takes the default.
        first = min(seconds - 1, 6)
        frames = (Keyframe(image=IMAGE, prompt="a seed", seconds=first), Keyframe(image=IMAGE, seconds=seconds - first))
        inp = KeyframesInput(frames=(*frames, Keyframe(image=LAST, prompt="a tree")))
        return GenerationRequest(model="x", input=inp), seconds
    else:
        inp = ReferenceInput(
            prompt="@image1 and @image2 dance like @video1 while @audio1 plays",
            images=(IMAGE, LAST),
            videos=(VIDEO,),
            audios=(AUDIO,),
        )
    return GenerationRequest(model="x", input=inp, seconds=seconds), seconds


MODE_CASES = [(model_id, mode) for model_id, caps in MODELS.items() for mode in sorted(caps.modes)]


# ---------------------------------------------------------------------------
# Every mode the table allows, on every model that allows it
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("model_id", "mode"), MODE_CASES)
async def test_every_allowed_mode_completes(sim: Sim, model_id: str, mode: str) -> None:
    caps = MODELS[model_id]
    request, seconds = request_for(caps, mode)
    assert request.mode == mode
    assert check(request, caps, regions=["CA"]) == []

    job = await sim.run(request, model_id, CTX)

    assert job.status is JobStatus.COMPLETED, job.error
    assert job.upstream_status == "completed"
    assert job.model == model_id
    assert job.account == CA
    assert job.cost is not None and job.cost.unit == "credits" and job.cost.amount > 0
    result = job.result
    assert result is not None and result.video_url and result.thumbnail_url
    assert result.duration == seconds
    assert result.width and result.height
    assert result.has_audio is (mode == "reference")
    video = await sim.control.get(result.video_url)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"  # a real MP4

    # What reached the upstream: pinned to the account, no ratio beside images.
    body = (await sim.submits())[-1]["body"]
    assert body["account"] == CA and body["model"] == model_id
    assert ("ratio" in body) is (mode == "text")


async def test_text_result_is_fully_normalized(sim: Sim) -> None:
    request = GenerationRequest(model="seedance-2.0", input=TextInput(prompt="a fox"), seconds=5, ratio="16:9")
    job = await sim.run(request, "seedance-2.0", CTX)
    assert job.cost == Cost(amount=125, unit="credits")  # the doc's example cost for 2.0, 5 s, 720p
    assert job.result is not None
    assert (job.result.width, job.result.height, job.result.duration, job.result.has_audio) == (1280, 720, 5.0, False)


async def test_1080p_and_4k_on_ca(sim: Sim) -> None:
    for resolution, size in (("1080p", (1920, 1080)), ("4k", (3840, 2160))):
        request = GenerationRequest(model="seedance-2.0", input=TextInput(prompt="x"), seconds=4, resolution=resolution)
        assert check(request, MODELS["seedance-2.0"], regions=["CA"]) == []
        job = await sim.run(request, "seedance-2.0", CTX)
        assert job.result is not None and (job.result.width, job.result.height) == size


async def test_us_account_runs_seedance_2_at_720p(sim: Sim) -> None:
    request = GenerationRequest(model="seedance-2.0", input=ReferenceInput(prompt="@image1 waves", images=(IMAGE,)))
    assert check(request, MODELS["seedance-2.0"], regions=["US"]) == []
    job = await sim.run(request, "seedance-2.0", SubmitContext(account=US))
    assert job.status is JobStatus.COMPLETED and job.account == US


async def test_callbacks_are_job_records_the_adapter_reads() -> None:
    got: list[bytes] = []

    async def receive(request: httpx.Request) -> httpx.Response:
        got.append(await request.aread())
        return httpx.Response(204)

    async with open_sim(reply_transport=httpx.MockTransport(receive)) as s:
        ctx = SubmitContext(account=CA, callback_url="https://vidgate.test/cb/useapi/tok_1", callback_ref="video_1")
        request = GenerationRequest(model="seedance-2.0", input=TextInput(prompt="x"), seconds=4)
        job = await s.client.submit(request, "seedance-2.0", {}, ctx)
        s.clock.now += JOB_SECONDS
        assert (await s.client.poll(job.upstream_id)).status is JobStatus.COMPLETED
        for _ in range(50):
            if len(got) == 2:
                break
            await asyncio.sleep(0.01)
    adapter = UseapiAdapter()
    assert [adapter.parse_record(b).status for b in got] == [JobStatus.IN_PROGRESS, JobStatus.COMPLETED]
    assert all(msgspec.json.decode(b)["request"]["replyRef"] == "video_1" for b in got)


# ---------------------------------------------------------------------------
# What the table forbids, the simulator refuses too (400 -> INVALID_REQUEST)
# ---------------------------------------------------------------------------

FORBIDDEN = [
    ("seedance-2.0", GenerationRequest(model="x", input=TextInput(prompt="x"), resolution="4k"), US),
    ("seedance-2.0", GenerationRequest(model="x", input=TextInput(prompt="x"), resolution="1080p"), US),
    ("seedance-1.5-pro", GenerationRequest(model="x", input=TextInput(prompt="x"), seconds=3), CA),
    ("sora2", GenerationRequest(model="x", input=TextInput(prompt="x"), seconds=5), CA),
    ("seedance-1.0-pro", GenerationRequest(model="x", input=TextInput(prompt="x"), resolution="720p"), CA),
    ("seedance-2.0-fast", GenerationRequest(model="x", input=TextInput(prompt="x"), resolution="1080p"), CA),
    ("sora2", GenerationRequest(model="x", input=TextInput(prompt="x"), seconds=4), US),
    (
        "seedance-2.0",
        GenerationRequest(model="x", input=KeyframesInput(frames=(Keyframe(image=IMAGE), Keyframe(image=IMAGE)))),
        CA,
    ),
    (
        "seedance-1.0-mini",
        GenerationRequest(model="x", input=KeyframesInput(frames=(Keyframe(image=IMAGE, seconds=3), Keyframe(image=IMAGE)))),
        CA,
    ),
    ("seedance-1.5-pro", GenerationRequest(model="x", input=ReferenceInput(prompt="@image1", images=(IMAGE,))), CA),
    (
        "seedance-2.0",
        GenerationRequest(model="x", input=ReferenceInput(prompt="@image1 only", images=(IMAGE, IMAGE))),
        CA,
    ),
    (
        "seedance-2.0",
        GenerationRequest(
            model="x",
            input=ReferenceInput(
                prompt="@video1 @video2 @video3",
                videos=tuple(msgspec.structs.replace(VIDEO, duration_ms=6000) for _ in range(3)),
            ),
        ),
        CA,
    ),
]


@pytest.mark.parametrize(("model_id", "request_", "account"), FORBIDDEN)
async def test_forbidden_by_table_and_by_simulator(sim: Sim, model_id: str, request_: GenerationRequest, account: str) -> None:
    region = account.split(":")[0]
    assert check(request_, MODELS[model_id], regions=[region]) != []
    if request_.mode == "reference" and request_.input.videos:  # type: ignore[union-attr]
        # The sample clip is 2 s; claim 6 s per video through the ref the simulator parses.
        refs = {f"videos.{i}": f"{account}-video:w320:h180:s1:d6000-vid:v{i}" for i in range(3)}
    else:
        refs = await sim.client.upload_all(request_, SubmitContext(account=account))
    with pytest.raises(UpstreamError) as caught:
        await sim.client.submit(request_, model_id, refs, SubmitContext(account=account))
    assert caught.value.info.error_class is ErrorClass.INVALID_REQUEST, caught.value.info
    assert caught.value.info.http_status == 400 and not caught.value.ambiguous


async def test_cancel_then_cancel_again(sim: Sim) -> None:
    await sim.faults(job_outcome="hang")
    job = await submit_text(sim)
    assert await sim.client.cancel(job.upstream_id) is True
    polled = await sim.client.poll(job.upstream_id)
    assert (polled.status, polled.upstream_status, polled.error) == (JobStatus.CANCELLED, "failed", None)
    exc = await raised(sim.client.cancel(job.upstream_id))
    assert exc.info.error_class is ErrorClass.NOT_FOUND and exc.info.code == "404"
