"""Smaller leaks: upstream account detail for admin keys only; a result URL the guard refuses
is the upstream's fault (502), not the caller's."""

from __future__ import annotations

from pathlib import Path

import httpx
import msgspec

from tests.harness import KEY, Harness, settings_for

ADMIN_KEY = "sk-admin"
ADMIN = f"""
[[keys]]
name = "ops"
tenant = "test"
key = "{ADMIN_KEY}"
admin = true
"""


async def test_account_ids_and_detail_are_for_admin_keys_only(tmp_path: Path) -> None:
    async with Harness.start(settings_for(tmp_path, extra=ADMIN)) as h:
        tenant = {p["id"]: p for p in (await h.client.get("/v1/providers")).json()["data"]}
        admin = {p["id"]: p for p in (await h.client.get("/v1/providers", headers={"Authorization": f"Bearer {ADMIN_KEY}"})).json()["data"]}
    assert tenant["useapi"]["accounts"] == [] and tenant["useapi"]["disabled_accounts"] == {}
    assert "CA:sim@example.com" not in str(tenant)
    assert [a["account"] for a in admin["useapi"]["accounts"]] == ["CA:sim@example.com"]
    assert tenant["useapi"]["healthy"] == admin["useapi"]["healthy"]  # the rest is the same for both


async def test_a_result_url_the_guard_refuses_is_a_502(tmp_path: Path) -> None:
    async with Harness.start(settings_for(tmp_path)) as h:
        video = await h.create({"prompt": "a cat", "provider": "powertokens"})
        await h.advance(15)
        store = h.service.store
        job = await store.get_job(video["id"])
        assert job is not None and job.status.value == "completed" and job.result is not None
        # the upstream named the cloud metadata address, which the guard refuses even with private URLs allowed
        job.result = msgspec.structs.replace(job.result, video_url="http://169.254.169.254/latest/meta-data/")
        await store.update_job(job)
        response = await h.client.get(f"/v1/videos/{video['id']}/content")
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["type"] == "upstream_error" and error["param"] is None


async def test_a_result_url_that_cannot_be_reached_is_a_502(tmp_path: Path) -> None:
    async with Harness.start(settings_for(tmp_path)) as h:
        video = await h.create({"prompt": "a cat", "provider": "powertokens"})
        await h.advance(15)
        job = await h.service.store.get_job(video["id"])
        assert job is not None and job.result is not None
        job.result = msgspec.structs.replace(job.result, video_url="http://127.0.0.1:9/gone.mp4")  # nothing listens on port 9
        await h.service.store.update_job(job)
        h.service.content_http = httpx.AsyncClient()  # real sockets for this one fetch
        try:
            response = await h.client.get(f"/v1/videos/{video['id']}/content")
        finally:
            await h.service.content_http.aclose()
    assert response.status_code == 502, response.text
    assert KEY not in response.text
