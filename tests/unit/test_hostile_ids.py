"""A `%00` in an id or a list filter, through the whole app on PostgreSQL (whose text type
refuses a NUL outright): an id is simply not found, a filter matches nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.harness import Harness, settings_for

NUL = "%00"


@pytest.fixture(params=["sqlite", "postgres"])
async def h(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    url = request.getfixturevalue("postgres_database") if request.param == "postgres" else None
    async with Harness.start(settings_for(tmp_path, store_url=url)) as harness:
        yield harness


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/videos/{id}"),
        ("DELETE", "/v1/videos/{id}"),
        ("POST", "/v1/videos/{id}/cancel"),
        ("GET", "/v1/videos/{id}/content"),
        ("GET", "/v1/videos/{id}/events"),
        ("GET", "/v1/videos/{id}/deliveries"),
        ("GET", "/v1/files/{id}"),
        ("GET", "/v1/comparisons/{id}"),
        ("POST", "/v1/webhooks/{id}/redeliver"),
        ("GET", "/v1/media/{id}"),
    ],
)
@pytest.mark.parametrize("ident", [NUL, "video_x" + NUL, NUL + "abc"])
async def test_an_id_with_a_nul_is_not_found(h: Harness, method: str, path: str, ident: str) -> None:
    response = await h.client.request(method, path.format(id=ident))
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("query", ["provider=" + NUL, "model=seedance" + NUL, "provider=x" + NUL + "&model=" + NUL])
async def test_a_free_text_list_filter_with_a_nul_matches_nothing(h: Harness, query: str) -> None:
    await h.create({"prompt": "a cat", "provider": "powertokens"})
    response = await h.client.get(f"/v1/videos?{query}")
    assert response.status_code == 200, response.text
    assert response.json()["data"] == []


@pytest.mark.parametrize("query", ["status=queued" + NUL, "status=" + NUL + "&model=" + NUL])
async def test_a_status_filter_with_a_nul_is_not_a_status(h: Harness, query: str) -> None:
    response = await h.client.get(f"/v1/videos?{query}")
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "status" and "queued, in_progress" in error["message"]


async def test_paging_after_an_id_with_a_nul_is_a_404_naming_after(h: Harness) -> None:
    response = await h.client.get(f"/v1/videos?after=video_x{NUL}")
    assert response.status_code == 404
    assert response.json()["error"]["param"] == "after"


async def test_stats_for_a_tenant_with_a_nul_is_refused_or_empty(h: Harness) -> None:
    response = await h.client.get(f"/v1/stats?tenant=t{NUL}")
    assert response.status_code in (200, 403), response.text
