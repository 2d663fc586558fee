"""The official `openai` SDK at the edges of what vidgate offers (issue 12): operations no
provider has, the delete shape, content variants, and the size of a finished video."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from gateway.app import create_app
from gateway.cli import demo_settings
from gateway.demo import running_simulators
from providers.simkit import free_port, sample, serve_in_thread
from tests.integration.conftest import Stack


def sdk(stack: Stack, key: str = "sk-demo") -> OpenAI:
    return OpenAI(base_url=f"{stack.base}/v1", api_key=key, max_retries=0)


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose simulated jobs run long enough to be deleted while running."""
    with running_simulators(job_seconds=60) as sims:
        port = free_port()
        settings = demo_settings(port=port, urls=sims, data_dir=str(tmp_path_factory.mktemp("slow")), job_seconds=1)
        with serve_in_thread(create_app(settings), port=port) as base:
            yield Stack(base=base, sims=sims)


def unsupported(err: pytest.ExceptionInfo[openai.APIStatusError], what: str) -> None:
    assert not isinstance(err.value, openai.NotFoundError)
    body: Any = err.value.body
    assert body["code"] == "unsupported_operation", body
    assert body["type"] == "invalid_request_error"
    assert what in body["message"] and "No configured provider (useapi, powertokens, modelark) offers" in body["message"]


def test_remix_edit_extend_and_characters_are_a_clear_unsupported_operation(fresh: Stack) -> None:
    client = sdk(fresh)
    with pytest.raises((openai.BadRequestError, openai.UnprocessableEntityError)) as err:
        client.videos.remix("video_123", prompt="make it blue")
    unsupported(err, "remixing an existing video")
    with pytest.raises(openai.BadRequestError) as err:
        client.videos.edit(prompt="make it blue", video=("in.mp4", sample("video.mp4"), "video/mp4"))
    unsupported(err, "editing a video")
    with pytest.raises(openai.BadRequestError) as err:
        client.videos.extend(prompt="go on", seconds="4", video=("in.mp4", sample("video.mp4"), "video/mp4"))
    unsupported(err, "extending a video")
    with pytest.raises(openai.BadRequestError) as err:
        client.videos.create_character(name="Ada", video=("ada.mp4", sample("video.mp4"), "video/mp4"))
    unsupported(err, "characters")
    with pytest.raises(openai.BadRequestError) as err:
        client.videos.get_character("char_123")
    unsupported(err, "characters")
    with pytest.raises(openai.AuthenticationError):  # the key is checked first
        sdk(fresh, "sk-wrong").videos.remix("video_123", prompt="x")


def test_an_unknown_content_variant_is_a_400_listing_the_valid_ones(fresh: Stack) -> None:
    client = sdk(fresh)
    video = client.videos.create_and_poll(model="seedance-2.0", prompt="a lighthouse", poll_interval_ms=100, extra_body={"provider": "useapi"})
    assert video.status == "completed"
    with pytest.raises(openai.BadRequestError) as err:
        client.videos.download_content(video.id, variant="spritesheet")
    assert "video, thumbnail, last_frame" in err.value.message
    assert err.value.body["param"] == "variant"  # type: ignore[index]
    assert client.videos.download_content(video.id, variant="thumbnail").read()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_finished_video_has_its_size_from_the_results_width_and_height(fresh: Stack) -> None:
    client = sdk(fresh)
    video = client.videos.create_and_poll(model="seedance-2.0", prompt="a lighthouse", poll_interval_ms=100, extra_body={"provider": "useapi"})
    result = (video.model_extra or {})["result"]
    assert result["width"] and result["height"]
    assert video.size == f"{result['width']}x{result['height']}"


def wait_running(client: OpenAI, video_id: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while client.videos.retrieve(video_id).status != "in_progress":
        assert time.monotonic() < deadline, "the job never started upstream"
        time.sleep(0.05)


def upstream_cancels(stack: Stack) -> list[str]:
    """The paths of the cancels the useapi simulator received (`DELETE /scheduler/{jobid}`)."""
    requests = httpx.get(f"{stack.sims['useapi']}/_sim/requests").json()
    return [r["path"] for r in requests if r["method"] == "DELETE"]


def test_deleting_a_running_job_cancels_it_upstream_and_answers_the_sdks_delete_shape(slow: Stack) -> None:
    client = sdk(slow)
    video = client.videos.create(model="seedance-2.0", prompt="a slow sunset", extra_body={"provider": "useapi"})
    wait_running(client, video.id)
    upstream_id = (client.videos.retrieve(video.id).model_extra or {})["upstream"]["id"]
    assert not any(upstream_id in path for path in upstream_cancels(slow))

    deleted = client.videos.delete(video.id)

    assert deleted.deleted is True and deleted.id == video.id and deleted.object == "video.deleted"
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)
    assert [path for path in upstream_cancels(slow) if upstream_id in path.replace("%3A", ":").replace("%40", "@")]


def test_cancel_keeps_the_record_and_a_later_delete_removes_it(slow: Stack) -> None:
    client = sdk(slow)
    video = client.videos.create(model="seedance-2.0", prompt="a slow sunrise", extra_body={"provider": "useapi"})
    wait_running(client, video.id)
    cancelled = client.post(f"/videos/{video.id}/cancel", cast_to=httpx.Response).json()
    assert cancelled["status"] == "cancelled" and cancelled["id"] == video.id
    assert client.videos.retrieve(video.id).status == "cancelled"
    assert client.videos.delete(video.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.videos.delete(video.id)


def test_deleting_a_job_whose_submit_is_in_flight_waits_for_the_answer_then_cancels_that_upstream_job(fresh: Stack) -> None:
    fresh.set_faults("useapi", delay_seconds=1.0)  # the paid submit takes a second to answer
    client = sdk(fresh)
    video = client.videos.create(model="seedance-2.0", prompt="a slow start", extra_body={"provider": "useapi"})
    deadline = time.monotonic() + 20
    while [a["status"] for a in (client.videos.retrieve(video.id).model_extra or {})["attempts"]] != ["submitting"]:
        assert time.monotonic() < deadline, "the submit never started"
        time.sleep(0.02)

    deleted = client.videos.delete(video.id)  # lands while the submit is in flight

    assert deleted.deleted is True
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)
    assert upstream_cancels(fresh), "the upstream job the submit created was not cancelled"
