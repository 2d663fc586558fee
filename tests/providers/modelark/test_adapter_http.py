"""The ModelArk adapter + `UpstreamClient` against the simulator, in process (no sockets,
injected clock): every mode x model the table allows, submit -> poll and callbacks ->
normalized result; cancel, expiry, the queued cap and garbled answers."""

from __future__ import annotations

import msgspec
import pytest

from providers.base import ErrorClass, GenerationRequest, JobStatus, ReferenceInput, SubmitContext, TextInput
from providers.capabilities import check
from providers.modelark.adapter import ModelArkAdapter
from providers.modelark.models import CATALOG, MODELS
from providers.modelark.sim import SimConfig

from .harness import AUDIO_DATA, CALLBACK, IMAGE_DATA, QUEUE_SECONDS, RUN_SECONDS, TOKEN, VIDEO_URL, Sim, input_for, open_sim, raised

ADAPTER = ModelArkAdapter()
V20, V10 = CATALOG["seedance-2.0"], CATALOG["seedance-1.0-pro"]
CTX = SubmitContext(callback_url=CALLBACK)
CASES = [
    (logical, mode)
    for logical, model_id in CATALOG.items()
    for mode in ("text", "first_frame", "first_last_frame", "reference")
    if mode in MODELS[model_id].modes
]


def text(**kw: object) -> GenerationRequest:
    return GenerationRequest(model="seedance-2.0", input=TextInput(prompt="a fox in the snow"), **kw)  # type: ignore[arg-type]


async def fetch(s: Sim, url: str) -> bytes:
    # the result URLs are signed storage links: fetched without the API key
    response = await s.control.get(url)
    response.raise_for_status()
    return response.content


@pytest.mark.parametrize("logical,mode", CASES, ids=[f"{m}-{k}" for m, k in CASES])
async def test_every_allowed_mode_runs_to_a_video(logical: str, mode: str) -> None:
    model_id = CATALOG[logical]
    request = GenerationRequest(model=logical, input=input_for(mode, MODELS[model_id]), seconds=5, return_last_frame=True, end_user="user-1")
    assert check(request, MODELS[model_id]) == []
    async with open_sim() as s:
        created = await s.submit(request, model_id, CTX)
        assert (created.status, created.upstream_status) == (JobStatus.QUEUED, "queued")
        s.clock.advance(QUEUE_SECONDS + 1)
        running = await s.client.poll(created.upstream_id)
        assert running.status is JobStatus.IN_PROGRESS and running.model == model_id
        s.clock.advance(RUN_SECONDS)
        done = await s.client.poll(created.upstream_id)
        await s.settle()

        assert (done.status, done.upstream_status, done.upstream_id) == (JobStatus.COMPLETED, "succeeded", created.upstream_id)
        result = done.result
        assert result is not None and result.video_url and result.last_frame_url
        assert (await fetch(s, result.video_url))[4:8] == b"ftyp"
        assert (await fetch(s, result.last_frame_url))[:4] == b"\x89PNG"
        assert result.duration == 5 and result.width and result.height
        assert done.cost is not None and done.cost.unit == "tokens" and done.cost.amount > 0
        # the body the simulator received is the one the adapter built
        [sent] = await s.submissions()
        assert sent["status_code"] == 200 and sent["body"] == msgspec.json.decode(ADAPTER.build_submit(request, model_id, {}, CTX).content or b"")
        # callbacks: one per status change, each naming the task; the gateway only re-fetches
        assert s.receiver.statuses == ["queued", "running", "succeeded"]
        assert {ADAPTER.parse_callback(b) for b in s.receiver.bodies} == {created.upstream_id}


async def test_priced_models_get_a_usd_estimate_from_the_simulated_tokens() -> None:
    async with open_sim() as s:
        created = await s.submit(text(seconds=5, resolution="720p", ratio="16:9"), V20)
        s.clock.advance(QUEUE_SECONDS + RUN_SECONDS)
        done = await s.client.poll(created.upstream_id)
    assert done.cost is not None and (done.cost.amount, done.cost.usd_estimate) == (108_900, pytest.approx(0.7623))  # §11: $7.0 / 1M
    assert done.result is not None and (done.result.width, done.result.height, done.result.has_audio) == (1280, 720, True)


async def test_a_reference_video_is_priced_at_the_with_video_rate() -> None:
    request = GenerationRequest(model="seedance-2.0", input=ReferenceInput(prompt="Video 1", videos=(VIDEO_URL,)), seconds=5, resolution="720p", ratio="16:9")
    async with open_sim() as s:
        created = await s.submit(request, V20)
        s.clock.advance(QUEUE_SECONDS + RUN_SECONDS)
        done = await s.client.poll(created.upstream_id)
    assert done.cost is not None and done.cost.amount == 1280 * 720 * (24 * 9 + 1) // 1024  # (4 s input + 5 s) at 24 fps
    assert done.cost.usd_estimate == pytest.approx(done.cost.amount * 4.3 / 1e6)


async def test_inline_image_and_audio_are_accepted_by_the_simulator() -> None:
    request = GenerationRequest(model="seedance-2.0", input=ReferenceInput(prompt="Image 1 to Audio 1", images=(IMAGE_DATA,), audios=(AUDIO_DATA,)))
    async with open_sim() as s:
        created = await s.submit(request, V20)
        [sent] = await s.submissions()
    assert created.status is JobStatus.QUEUED
    assert sent["body"]["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")


async def test_auto_duration_comes_back_resolved() -> None:
    async with open_sim() as s:
        created = await s.submit(text(seconds="auto"), V20)
        s.clock.advance(QUEUE_SECONDS + RUN_SECONDS)
        done = await s.client.poll(created.upstream_id)
    assert done.result is not None and done.result.duration is not None and 4 <= done.result.duration <= 15


# --- cancel -----------------------------------------------------------------------------------


async def test_cancel_a_queued_task() -> None:
    async with open_sim() as s:
        created = await s.submit(text(), V20, CTX)
        assert await s.client.cancel(created.upstream_id) is True
        job = await s.client.poll(created.upstream_id)
        s.clock.advance(QUEUE_SECONDS + RUN_SECONDS)
        assert (await s.client.poll(created.upstream_id)).status is JobStatus.CANCELLED  # it never runs
        await s.settle()
    assert (job.status, job.upstream_status, job.error) == (JobStatus.CANCELLED, "cancelled", None)
    assert s.receiver.statuses == ["queued"]  # no callback on cancel


async def test_cancel_a_running_task_is_refused_clearly() -> None:
    async with open_sim() as s:
        created = await s.submit(text(), V20)
        s.clock.advance(QUEUE_SECONDS + 1)
        exc = await raised(s.client.cancel(created.upstream_id))
        assert (await s.client.poll(created.upstream_id)).status is JobStatus.IN_PROGRESS  # still running
    assert (exc.info.error_class, exc.info.code, exc.info.http_status, exc.info.retryable) == (
        ErrorClass.INVALID_REQUEST,
        "OperationDenied.InvalidState",
        403,
        False,
    )
    assert "only queued" in exc.info.message


async def test_cancel_twice_and_unknown_tasks() -> None:
    async with open_sim() as s:
        created = await s.submit(text(), V20)
        await s.client.cancel(created.upstream_id)
        again = await raised(s.client.cancel(created.upstream_id))
        unknown = await raised(s.client.cancel("cgt-20260101000000-nope0"))
        polled = await raised(s.client.poll("cgt-20260101000000-nope0"))
    assert again.info.error_class is ErrorClass.INVALID_REQUEST
    assert (unknown.info.error_class, polled.info.error_class, polled.info.http_status) == (ErrorClass.NOT_FOUND, ErrorClass.NOT_FOUND, 404)


# --- expiry -------------------------------------------------------------------------------------


async def test_a_task_that_never_finishes_expires_as_a_timeout() -> None:
    async with open_sim() as s:
        await s.faults(job_outcome="hang")
        created = await s.submit(text(), V20, CTX)
        s.clock.advance(172_800)  # execution_expires_after's default (§2)
        job = await s.client.poll(created.upstream_id)
        await s.settle()
    assert (job.status, job.upstream_status) == (JobStatus.FAILED, "expired")
    assert job.error is not None and (job.error.error_class, job.error.code, job.error.retryable) == (ErrorClass.TIMEOUT, "expired", True)
    assert s.receiver.statuses == ["queued", "running", "expired"]


async def test_a_task_stuck_in_the_queue_expires_too() -> None:
    config = SimConfig(queue_seconds=QUEUE_SECONDS, run_seconds=RUN_SECONDS, max_running=0)
    async with open_sim(config) as s:
        created = await s.submit(text(), V20)
        s.clock.advance(172_799)
        assert (await s.client.poll(created.upstream_id)).status is JobStatus.QUEUED
        s.clock.advance(1)
        job = await s.client.poll(created.upstream_id)
    assert job.upstream_status == "expired" and job.error is not None and job.error.error_class is ErrorClass.TIMEOUT


# --- failed tasks -------------------------------------------------------------------------------


async def test_a_moderated_output_is_content_rejected_and_not_retryable() -> None:
    async with open_sim() as s:
        await s.faults(job_outcome="fail")
        created = await s.submit(text(), V20, CTX)
        s.clock.advance(QUEUE_SECONDS + RUN_SECONDS)
        done = await s.client.poll(created.upstream_id)
        await s.settle()
    assert (done.status, done.upstream_status, done.cost) == (JobStatus.FAILED, "failed", None)
    assert done.error is not None and (done.error.error_class, done.error.code, done.error.retryable) == (
        ErrorClass.CONTENT_REJECTED,
        "OutputVideoSensitiveContentDetected",
        False,
    )
    assert s.receiver.statuses == ["queued", "running", "failed"]


# --- the 120-queued cap is capacity --------------------------------------------------------------------


async def test_a_burst_of_131_gives_10_running_120_queued_and_capacity_on_the_rest() -> None:
    config = SimConfig(queue_seconds=0, run_seconds=RUN_SECONDS, tokens=frozenset({TOKEN}))
    async with open_sim(config) as s:
        accepted = [await s.submit(text(), V20) for _ in range(130)]
        refused = await raised(s.submit(text(), V20))
        statuses = [(await s.client.poll(job.upstream_id)).status for job in accepted]
        s.clock.advance(RUN_SECONDS)  # the first ten finish, ten more start
        after = await s.submit(text(), V20)
    assert statuses.count(JobStatus.IN_PROGRESS) == 10 and statuses.count(JobStatus.QUEUED) == 120
    info = refused.info
    assert (info.error_class, info.code, info.http_status, info.retryable, refused.ambiguous) == (ErrorClass.CAPACITY, "QuotaExceeded", 429, True, False)
    assert after.status is JobStatus.QUEUED


# --- lost and garbled answers -------------------------------------------------------------------------


async def test_a_garbled_create_answer_is_ambiguous_and_the_task_exists() -> None:
    async with open_sim() as s:
        await s.faults(malformed_count=1)
        exc = await raised(s.submit(text(), V20))
        [sent] = await s.submissions()
    assert (exc.info.error_class, exc.info.code, exc.ambiguous) == (ErrorClass.UPSTREAM_UNAVAILABLE, "malformed_response", True)
    assert sent["task_id"] is not None  # what reconciliation would have to find; ModelArk's list can't (build_find is None)


async def test_a_garbled_poll_is_retryable_and_not_ambiguous() -> None:
    async with open_sim() as s:
        created = await s.submit(text(), V20)
        await s.faults(malformed_count=1)
        exc = await raised(s.client.poll(created.upstream_id))
        assert (await s.client.poll(created.upstream_id)).status is JobStatus.QUEUED
    assert exc.info.code == "malformed_response" and exc.info.retryable and not exc.ambiguous


async def test_a_wrong_key_is_auth() -> None:
    async with open_sim(secret="not-the-key") as s:
        exc = await raised(s.submit(text(), V20))
    assert (exc.info.error_class, exc.info.code, exc.info.http_status) == (ErrorClass.AUTH, "AuthenticationError", 401)
