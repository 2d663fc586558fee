"""The official `openai` SDK, unchanged, against vidgate (SPEC 3: base_url + api_key only)."""

from __future__ import annotations

import openai
import pytest
from openai import OpenAI

from providers.simkit import sample
from tests.integration.conftest import Stack


def sdk(stack: Stack, key: str = "sk-demo") -> OpenAI:
    return OpenAI(base_url=f"{stack.base}/v1", api_key=key, max_retries=0)


def test_text_and_first_frame_jobs_complete_download_list_delete(fresh: Stack) -> None:
    client = sdk(fresh)
    text = client.videos.create_and_poll(
        model="seedance-2.0",
        prompt="A paper boat drifting down a rainy street",
        seconds="5",
        poll_interval_ms=100,
        extra_body={"ratio": "16:9", "provider": "useapi", "metadata": {"user": "u1"}},
    )
    assert text.status == "completed", text
    assert text.model == "seedance-2.0"
    extra = text.model_extra or {}
    assert extra["provider"] == "useapi" and extra["mode"] == "text" and extra["metadata"] == {"user": "u1"}

    first = client.videos.create_and_poll(
        model="seedance-2.0",
        prompt="The camera pushes in",
        input_reference=("frame.png", sample("image.png"), "image/png"),
        poll_interval_ms=100,
        extra_body={"provider": "powertokens"},
    )
    assert first.status == "completed", first
    assert (first.model_extra or {})["mode"] == "first_frame"

    mp4 = client.videos.download_content(first.id).read()
    assert mp4[4:8] == b"ftyp" and len(mp4) == len(sample("video.mp4"))

    listed = [v.id for v in client.videos.list(limit=10)]
    assert first.id in listed and text.id in listed
    assert listed.index(first.id) < listed.index(text.id)  # newest first

    other = sdk(fresh, "sk-demo-other")
    with pytest.raises(openai.NotFoundError):
        other.videos.retrieve(text.id)
    assert text.id not in [v.id for v in other.videos.list()]

    deleted = client.videos.delete(text.id)
    assert deleted.deleted is True and deleted.id == text.id
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(text.id)


def test_invalid_request_surfaces_as_sdk_error_with_param(fresh: Stack) -> None:
    client = sdk(fresh)
    with pytest.raises(openai.UnprocessableEntityError) as err:
        client.videos.create(model="seedance-2.0", prompt="x", seconds="3", extra_body={"provider": "useapi"})  # type: ignore[arg-type]
    assert err.value.body["param"] == "seconds"  # type: ignore[index]
    assert fresh.sim_jobs("useapi") == []


def test_wrong_key_is_401(fresh: Stack) -> None:
    with pytest.raises(openai.AuthenticationError):
        sdk(fresh, "sk-wrong").videos.list()
