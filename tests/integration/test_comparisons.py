"""Comparisons, stats and `vidgate compare` end to end: vidgate + both simulators over loopback."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import httpx
import pytest
import structlog

from gateway.cli import main
from providers.simkit import free_port
from tests.integration.conftest import Stack


def wait_comparison(client: httpx.Client, comparison_id: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/v1/comparisons/{comparison_id}")
        assert response.status_code == 200, response.text
        comparison = response.json()
        if comparison["status"] == "completed" or time.monotonic() > deadline:
            return comparison
        time.sleep(0.1)


def accepted(sim: list[dict]) -> list[dict]:
    return [j for j in sim if j.get("status_code", 200) == 200]


def test_a_comparison_runs_both_providers_side_by_side(fresh: Stack) -> None:
    with fresh.client() as client:
        created = client.post(
            "/v1/comparisons",
            json={
                "request": {"model": "seedance-2.0", "prompt": "a lighthouse", "seconds": 5, "metadata": {"team": "a"}},
                "providers": ["useapi", "powertokens"],
            },
        )
        assert created.status_code == 200, created.text
        body = created.json()
        assert body["object"] == "comparison" and body["id"].startswith("cmp_")
        assert body["status"] == "in_progress" and body["skipped"] == []
        assert [r["provider"] for r in body["results"]] == ["useapi", "powertokens"]
        assert all(r["time_to_video_seconds"] is None for r in body["results"])

        done = wait_comparison(client, body["id"])
        assert done["status"] == "completed", done
        for result in done["results"]:
            assert result["status"] == "completed", result
            assert result["time_to_video_seconds"] > 0
            assert result["video_url"] == f"/v1/videos/{result['video_id']}/content"
            assert result["upstream_video_url"].startswith(fresh.sims[result["provider"]])
            assert result["cost"]["amount"] > 0 and result["error"] is None
            content = client.get(result["video_url"])
            assert content.status_code == 200 and content.content[4:8] == b"ftyp"
            video = client.get(f"/v1/videos/{result['video_id']}").json()
            assert video["provider"] == result["provider"]
            assert video["metadata"] == {"team": "a", "comparison_id": body["id"]}
            assert video["routing"]["rule"] == "pin"

    with fresh.client("sk-demo-other") as other:
        missing = other.get(f"/v1/comparisons/{body['id']}")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert len(accepted(fresh.sim_jobs("useapi"))) == 1 and len(accepted(fresh.sim_jobs("powertokens"))) == 1


def test_every_demo_provider_prices_its_videos_in_usd(fresh: Stack) -> None:
    """Credits (useapi), a configured per-second price (PowerTokens' 2.0 standard) and a
    published per-token price (ModelArk) all end up as one USD figure, in the job and in stats."""
    since = time.time()
    with fresh.client() as client:
        created = client.post("/v1/comparisons", json={"request": {"prompt": "prices", "seconds": 5}})
        assert created.status_code == 200, created.text
        done = wait_comparison(client, created.json()["id"])
        costs = {r["provider"]: r["cost"] for r in done["results"]}
        assert set(costs) == {"useapi", "powertokens", "modelark"}
        assert costs["useapi"] == {"amount": 125.0, "unit": "credits", "usd_estimate": 0.1875}  # 125 x the demo's $0.0015
        assert costs["powertokens"]["usd_estimate"] == 0.75  # 5 s x the demo's $0.15/s
        assert costs["modelark"] == {"amount": 108900.0, "unit": "tokens", "usd_estimate": 0.7623}  # at $7 per 1M tokens
        groups = {g["group"]: g for g in client.get("/v1/stats", params={"since": since}).json()["data"]}
        per_second = {name: groups[name]["cost_per_video_second_usd"] for name in costs}
        assert per_second == pytest.approx({"useapi": 0.0375, "powertokens": 0.15, "modelark": 0.15246})


def test_a_blind_comparison_takes_one_vote_which_stats_count_as_win_rates(fresh: Stack) -> None:
    since = time.time()
    with fresh.client() as client:
        created = client.post("/v1/comparisons", json={"request": {"prompt": "blind", "seconds": 5}, "providers": ["useapi", "powertokens"], "blind": True})
        assert created.status_code == 200, created.text
        body = created.json()
        assert body["blind"] is True and body["vote"] is None
        assert [r["label"] for r in body["results"]] == ["A", "B"]
        assert sorted(r["provider"] for r in body["results"]) == ["powertokens", "useapi"]
        done = wait_comparison(client, body["id"])
        assert [r["label"] for r in done["results"]] == ["A", "B"] and [r["provider"] for r in done["results"]] == [r["provider"] for r in body["results"]]

        vote_url = f"/v1/comparisons/{body['id']}/vote"
        for bad, param in (({"winner": "modelark"}, "winner"), ({}, "winner"), ({"winner": "useapi", "tie": True}, "winner"), ({"colour": "red"}, "colour")):
            refused = client.post(vote_url, json=bad)
            assert refused.status_code == 422 and refused.json()["error"]["param"] == param, refused.text
        voted = client.post(vote_url, json={"winner": "useapi"})
        assert voted.status_code == 200, voted.text
        label = next(r["label"] for r in done["results"] if r["provider"] == "useapi")
        assert voted.json()["vote"] | {"voted_at": 0} == {"winner": "useapi", "winner_label": label, "tie": False, "voted_at": 0}
        assert client.post(vote_url, json={"winner": "useapi"}).status_code == 200  # the same verdict again changes nothing
        changed = client.post(vote_url, json={"tie": True})
        assert changed.status_code == 409 and changed.json()["error"]["code"] == "already_voted"
        assert client.get(f"/v1/comparisons/{body['id']}").json()["vote"]["winner"] == "useapi"

        groups = {g["group"]: g for g in client.get("/v1/stats", params={"since": since}).json()["data"]}
        assert (groups["useapi"]["votes"], groups["useapi"]["wins"], groups["useapi"]["win_rate"]) == (1, 1, 1.0)
        assert (groups["powertokens"]["votes"], groups["powertokens"]["win_rate"]) == (1, 0.0)
    with fresh.client("sk-demo-other") as other:
        assert other.post(vote_url, json={"tie": True}).status_code == 404


def test_a_provider_that_cannot_serve_is_skipped_with_its_reason(fresh: Stack) -> None:
    with fresh.client() as client:
        created = client.post("/v1/comparisons", json={"request": {"model": "seedance-1.0-mini", "prompt": "waves"}, "providers": "all"})
        assert created.status_code == 200, created.text
        body = created.json()
        assert [r["provider"] for r in body["results"]] == ["useapi"]
        skipped = {s["provider"]: s["reason"] for s in body["skipped"]}
        assert set(skipped) == {"powertokens", "modelark"} and all("seedance-1.0-mini" in why for why in skipped.values())
        assert wait_comparison(client, body["id"])["results"][0]["status"] == "completed"

        refused = client.post("/v1/comparisons", json={"request": {"model": "seedance-1.0-mini", "prompt": "waves"}, "providers": ["powertokens"]})
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "no_provider_can_serve"
    assert accepted(fresh.sim_jobs("powertokens")) == []


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"request": {"prompt": "x", "provider": "useapi"}}, 422, "request.provider"),
        ({"request": {"prompt": "x", "seconds": 3}, "providers": ["useapi"]}, 422, "request.seconds"),
        ({"request": {"prompt": "x", "bogus": 1}}, 422, "request.bogus"),
        ({"request": {"prompt": "x"}, "providers": ["useapi", "nope"]}, 422, "providers"),
        ({"request": {"prompt": "x"}, "providers": []}, 422, "providers"),
        ({"request": {"prompt": "x"}, "providers": ["useapi", "useapi"]}, 422, "providers"),
        ({"request": {"prompt": "x", "metadata": {f"k{i}": "v" for i in range(16)}}}, 422, "request.metadata"),
        ({"request": {"prompt": "x", "metadata": {"comparison_id": "mine"}}}, 422, "request.metadata.comparison_id"),
        ({"providers": "all"}, 422, "request"),
    ],
)
def test_invalid_comparisons_name_the_field_and_create_nothing(fresh: Stack, body: dict, status: int, param: str) -> None:
    with fresh.client() as client:
        response = client.post("/v1/comparisons", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param
    assert fresh.sim_jobs("useapi") == [] and fresh.sim_jobs("powertokens") == []


def test_idempotency_key_replays_the_comparison_without_new_upstream_jobs(fresh: Stack) -> None:
    body = {"request": {"prompt": "once"}, "providers": ["useapi"]}
    with fresh.client() as client:
        first = client.post("/v1/comparisons", json=body, headers={"Idempotency-Key": "cmp-1"})
        again = client.post("/v1/comparisons", json=body, headers={"Idempotency-Key": "cmp-1"})
        assert first.status_code == again.status_code == 200, again.text
        assert first.json()["id"] == again.json()["id"]
        assert [r["video_id"] for r in first.json()["results"]] == [r["video_id"] for r in again.json()["results"]]
        for changed in ({**body, "providers": ["powertokens"]}, {**body, "providers": "all"}, {**body, "request": {"prompt": "twice"}}):
            other = client.post("/v1/comparisons", json=changed, headers={"Idempotency-Key": "cmp-1"})
            assert other.status_code == 409 and other.json()["error"]["param"] == "Idempotency-Key", other.text
        wait_comparison(client, first.json()["id"])
    assert len(accepted(fresh.sim_jobs("useapi"))) == 1 and fresh.sim_jobs("powertokens") == []


def test_stats_group_outcomes_by_provider(fresh: Stack) -> None:
    since = time.time()
    fresh.set_faults("powertokens", job_outcome="fail")
    with fresh.client() as client:
        created = client.post("/v1/comparisons", json={"request": {"prompt": "stats", "seconds": 5}})
        assert created.status_code == 200, created.text
        done = wait_comparison(client, created.json()["id"])
        by_provider = {r["provider"]: r for r in done["results"]}
        assert by_provider["useapi"]["status"] == "completed"
        assert by_provider["powertokens"]["status"] == "failed"
        assert by_provider["powertokens"]["error"]["code"] == "content_rejected"
        assert by_provider["powertokens"]["video_url"] is None

        stats = client.get("/v1/stats", params={"since": since, "group_by": "provider"})
        assert stats.status_code == 200, stats.text
        groups = {g["group"]: g for g in stats.json()["data"]}
        assert set(groups) == {"useapi", "powertokens", "modelark"}
        assert groups["useapi"]["jobs"] == groups["useapi"]["completed"] == 1
        assert groups["useapi"]["success_rate"] == 1.0
        assert groups["useapi"]["p50_time_to_video_seconds"] > 0
        assert groups["powertokens"]["failed"] == 1 and groups["powertokens"]["success_rate"] == 0.0
        assert groups["powertokens"]["failed_by_class"] == {"content_rejected": 1}
        assert groups["powertokens"]["p95_time_to_video_seconds"] is None

        by_rule = client.get("/v1/stats", params={"since": since, "group_by": "rule"}).json()["data"]
        assert [(g["group"], g["jobs"]) for g in by_rule] == [("pin", 3)]
        assert client.get("/v1/stats", params={"tenant": "*"}).status_code == 403
        assert client.get("/v1/stats", params={"group_by": "colour"}).status_code == 400

    with fresh.client("sk-demo-other") as other:
        assert other.get("/v1/stats", params={"since": since}).json()["data"] == []


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The CLI configures logging process-wide (onto capsys' stderr); put all of it back."""
    names = ["", "httpx", "httpcore", "uvicorn", "uvicorn.error", "uvicorn.access"]
    saved = [(lg, list(lg.handlers), lg.level, lg.propagate, lg.disabled) for lg in map(logging.getLogger, names)]
    config = structlog.get_config()
    yield
    for lg, handlers, level, propagate, disabled in saved:
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate, lg.disabled = propagate, disabled
    structlog.configure(**config)


def test_vidgate_compare_demo_prints_the_table(capsys: pytest.CaptureFixture[str], restore_logging: None) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["compare", "--demo", "--prompt", "x", "--job-seconds", "0.3", "--timeout", "60"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("comparison cmp_") and lines[1].startswith("console    http://127.0.0.1:")
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["provider", "status"])
    assert lines[header].split() == ["provider", "status", "time", "to", "video", "cost", "url"]
    rows = {line.split()[0]: line.split() for line in lines[header + 1 : header + 4]}
    assert set(rows) == {"useapi", "powertokens", "modelark"}
    assert all(row[1] == "completed" and row[2].endswith("s") for row in rows.values())
    assert rows["useapi"][3:5] == ["$0.19", "(125"]  # USD first, then the upstream's own unit
    assert "3/3 providers completed" in out


def test_an_admin_key_reads_stats_across_tenants(fresh: Stack, tmp_path) -> None:
    from gateway.app import create_app
    from gateway.cli import demo_settings
    from gateway.settings import KeySettings
    from providers.simkit import free_port, serve_in_thread

    port = free_port()
    settings = demo_settings(port=port, urls=fresh.sims, data_dir=str(tmp_path), job_seconds=0.3)
    settings.keys.append(KeySettings(name="ops", tenant="ops", key="sk-admin", admin=True))
    with serve_in_thread(create_app(settings), port=port) as base:
        for key in ("sk-demo", "sk-demo-other"):
            response = httpx.post(f"{base}/v1/videos", headers={"Authorization": f"Bearer {key}"}, json={"prompt": "x", "provider": "useapi"})
            assert response.status_code == 200, response.text
        admin = {"Authorization": "Bearer sk-admin"}
        everyone = httpx.get(f"{base}/v1/stats", headers=admin, params={"tenant": "*", "group_by": "model"}).json()
        assert everyone["tenant"] == "*" and [(g["group"], g["jobs"]) for g in everyone["data"]] == [("seedance-2.0", 2)]
        one = httpx.get(f"{base}/v1/stats", headers=admin, params={"tenant": "other-team"}).json()
        assert [g["jobs"] for g in one["data"]] == [1]
        assert httpx.get(f"{base}/v1/stats", headers=admin).json()["data"] == []


def test_a_retry_after_a_half_finished_comparison_reuses_its_children(fresh: Stack, tmp_path) -> None:
    from litestar.testing import TestClient

    from gateway.app import create_app
    from gateway.cli import demo_settings
    from gateway.jobs.sqlite import SqliteStore

    class LosesTheFirstComparison(SqliteStore):
        lost = False

        async def put_comparison(self, comparison):  # the process "dies" after creating the children
            if not self.lost:
                self.lost = True
                raise RuntimeError("crash")
            return await super().put_comparison(comparison)

    settings = demo_settings(port=free_port(), urls=fresh.sims, data_dir=str(tmp_path), job_seconds=0.3)
    store = LosesTheFirstComparison(tmp_path / "vidgate.db")
    body = {"request": {"prompt": "retry"}, "providers": "all"}
    headers = {"Authorization": "Bearer sk-demo", "Idempotency-Key": "retry-1"}
    with TestClient(create_app(settings, store=store)) as client:
        assert client.post("/v1/comparisons", json=body, headers=headers).status_code == 500
        retried = client.post("/v1/comparisons", json=body, headers=headers)
        assert retried.status_code == 200, retried.text
        comparison = retried.json()
        for result in comparison["results"]:
            video = client.get(f"/v1/videos/{result['video_id']}", headers=headers).json()
            assert video["metadata"]["comparison_id"] == comparison["id"]
        assert client.get("/v1/videos", headers=headers).json()["data"].__len__() == 3  # one child per provider, made once
    assert len(accepted(fresh.sim_jobs("useapi"))) <= 1 and len(accepted(fresh.sim_jobs("powertokens"))) <= 1


def test_the_longest_idempotency_key_makes_a_comparison_and_replays_it(fresh: Stack) -> None:
    # each child's key is derived from the caller's; it must stay within the key bound too
    key = "k" * 255
    body = {"request": {"model": "seedance-2.0", "prompt": "long key"}, "providers": ["useapi", "powertokens"]}
    with fresh.client() as client:
        first = client.post("/v1/comparisons", json=body, headers={"Idempotency-Key": key})
        again = client.post("/v1/comparisons", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 200, first.text
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert len(accepted(fresh.sim_jobs("useapi"))) == 1 and len(accepted(fresh.sim_jobs("powertokens"))) == 1
