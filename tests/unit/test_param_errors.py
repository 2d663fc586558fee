"""Query and path parameter errors name the parameter and list what is valid, in the
OpenAI envelope, never a Python repr (issue 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import Harness, settings_for


@pytest.mark.parametrize(
    ("path", "param", "expected"),
    [
        (
            "/v1/videos/video_x/content?variant=spritesheet",
            "variant",
            "Invalid query parameter 'variant': 'spritesheet' (expected one of: video, thumbnail, last_frame)",
        ),
        ("/v1/stats?group_by=mode", "group_by", "Invalid query parameter 'group_by': 'mode' (expected one of: provider, model, rule, arm)"),
        (
            "/v1/stats?since=2026-11-01",
            "since",
            "Invalid query parameter 'since': '2026-11-01' (expected a number of at least 0: a unix time in seconds; default: 24 hours ago)",
        ),
        ("/v1/stats?since=-5", "since", "Invalid query parameter 'since': '-5' (expected a number of at least 0: a unix time in seconds)"),
        ("/v1/videos?limit=0", "limit", "Invalid query parameter 'limit': '0' (expected an integer from 1 to 100)"),
        ("/v1/videos?limit=ten", "limit", "Invalid query parameter 'limit': 'ten' (expected an integer from 1 to 100)"),
        ("/v1/videos?order=up", "order", "Invalid query parameter 'order': 'up' (expected one of: asc, desc)"),
        ("/v1/videos?status=done", "status", "Invalid query parameter 'status': 'done' (expected one of: queued, in_progress, completed, failed, cancelled)"),
    ],
)
async def test_a_bad_query_parameter_is_named_with_its_valid_values(tmp_path: Path, path: str, param: str, expected: str) -> None:
    async with Harness.start(settings_for(tmp_path)) as h:
        response = await h.client.get(path)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error == {"message": expected, "type": "invalid_request_error", "param": param, "code": "invalid_parameter"}


async def test_every_bad_parameter_is_named_and_a_long_value_is_cut(tmp_path: Path) -> None:
    async with Harness.start(settings_for(tmp_path)) as h:
        response = await h.client.get("/v1/videos", params={"order": "x" * 500, "limit": "-3"})
    error = response.json()["error"]
    assert response.status_code == 400
    assert "'order'" in error["message"] and "'limit'" in error["message"]
    assert "x" * 81 not in error["message"] and "x" * 80 + "…" in error["message"]
    for repr_leak in ("ParamType", "<", "Expected `"):
        assert repr_leak not in error["message"]
