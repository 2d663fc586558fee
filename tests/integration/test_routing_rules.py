"""Routing rules through the running gateway: a sticky split, and a config edit taking effect live."""

from __future__ import annotations

import collections
import time
from pathlib import Path

import httpx

from gateway.app import create_app
from gateway.cli import DEMO_CONFIG
from gateway.settings import load_settings
from providers.simkit import free_port, serve_in_thread
from tests.integration.conftest import Stack

SPLIT = """
[[routes]]
name = "seedance-2-ab"
when = {{ model = "seedance-2.0" }}
split = {{ useapi = {ua}, powertokens = {pt} }}
sticky = "metadata.user"
fallback = ["useapi", "powertokens"]
"""


def write_config(path: Path, stack: Stack, port: int, data: Path, ua: int, pt: int) -> None:
    text = DEMO_CONFIG.read_text()
    for name, value in {
        "${VIDGATE_DEMO_PORT}": str(port),
        "${VIDGATE_DEMO_DB}": str(data / "vidgate.db"),
        **{f"${{VIDGATE_DEMO_{name.upper()}_URL}}": url for name, url in stack.sims.items()},
        "${VIDGATE_DEMO_POLL}": "0.2",
    }.items():
        text = text.replace(name, value)
    path.write_text(text + SPLIT.format(ua=ua, pt=pt))


def arms(client: httpx.Client, users: list[str]) -> dict[str, str]:
    out = {}
    for user in users:
        video = client.post("/v1/videos", json={"model": "seedance-2.0", "prompt": "ab", "metadata": {"user": user}}).json()
        assert video["routing"]["rule"] == "seedance-2-ab", video
        out[user] = video["routing"]["arm"]
    return out


def test_sticky_split_holds_across_restart_and_a_live_config_edit_changes_it(stack: Stack, tmp_path: Path) -> None:
    stack.reset()
    stack.set_faults("useapi", job_outcome="hang")  # keep jobs in flight: none may be lost by the reload
    stack.set_faults("powertokens", job_outcome="hang")
    config = tmp_path / "vidgate.toml"
    port = free_port()
    write_config(config, stack, port, tmp_path, 70, 30)
    users = [f"user-{i}" for i in range(200)]
    with (
        serve_in_thread(create_app(load_settings(config), config_path=str(config)), port=port) as base,
        httpx.Client(base_url=base, headers={"Authorization": "Bearer sk-demo"}, timeout=30) as client,
    ):
        first = arms(client, users)
    share = collections.Counter(first.values())["useapi"] / len(users)
    assert 0.6 <= share <= 0.8, share

    # A restart (new app, same database and config) puts every user on the same arm.
    with (
        serve_in_thread(create_app(load_settings(config), config_path=str(config)), port=port) as base,
        httpx.Client(base_url=base, headers={"Authorization": "Bearer sk-demo"}, timeout=30) as client,
    ):
        assert arms(client, users[:50]) == {u: first[u] for u in users[:50]}
        inflight = client.post("/v1/videos", json={"model": "seedance-2.0", "prompt": "keep me", "metadata": {"user": "u-x"}}).json()["id"]

        write_config(config, stack, port, tmp_path, 0, 100)  # edit the split to 0/100
        was_useapi = next(u for u in users if first[u] == "useapi")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            probe = client.post("/v1/videos", json={"model": "seedance-2.0", "prompt": "probe", "metadata": {"user": was_useapi}}).json()
            if probe["routing"]["arm"] == "powertokens":
                break
            time.sleep(0.2)
        after = arms(client, users[:50])
        assert set(after.values()) == {"powertokens"}

        # No job was lost or failed by the reload: every one is still waiting or running.
        statuses = collections.Counter()
        after_id = None
        while True:
            page = client.get("/v1/videos", params={"limit": 100, **({"after": after_id} if after_id else {})}).json()
            statuses.update(v["status"] for v in page["data"])
            if not page["has_more"]:
                break
            after_id = page["last_id"]
        assert set(statuses) <= {"queued", "in_progress"}, statuses
        assert client.get(f"/v1/videos/{inflight}").json()["status"] in ("queued", "in_progress")

        (config).write_text("this is [not toml")  # an invalid edit is rejected, the old config kept
        time.sleep(1.2)
        assert client.post("/v1/videos", json={"model": "seedance-2.0", "prompt": "x", "metadata": {"user": "u-y"}}).json()["routing"]["arm"] == "powertokens"
    stack.reset()
