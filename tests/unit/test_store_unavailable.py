"""A store that can't write: creates answer 503 + Retry-After with `store_unavailable`,
/readyz is not ready, nothing is half-written, and all is well again once it can."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.errors import StoreUnavailable
from gateway.jobs.sqlite import SqliteStore
from tests.harness import Harness, settings_for
from tests.store.records import make_file, make_job


async def read_only(store: SqliteStore, on: bool) -> None:
    await store._run(lambda conn: conn.execute(f"PRAGMA query_only = {'ON' if on else 'OFF'}"))


async def test_a_read_only_store_makes_creates_503_and_readyz_not_ready(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "vidgate.db")
    async with Harness.start(settings_for(tmp_path), store=store) as h:
        assert (await h.client.get("/readyz")).status_code == 200
        await read_only(store, True)

        response = await h.client.post("/v1/videos", json={"prompt": "a cat", "provider": "powertokens"})
        assert response.status_code == 503
        assert response.headers["retry-after"].isdigit()
        assert response.json()["error"]["code"] == "store_unavailable"
        upload = await h.client.post("/v1/files", files={"file": ("cat.png", _png(), "image/png")})
        assert upload.status_code == 503 and upload.json()["error"]["code"] == "store_unavailable"
        ready = await h.client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["store"] is False
        assert (await h.client.get("/healthz")).status_code == 200  # the process itself is fine
        assert (await h.client.get("/v1/videos")).json()["data"] == []  # reads still work; nothing half-written

        await read_only(store, False)
        assert (await h.client.get("/readyz")).status_code == 200
        response = await h.client.post("/v1/videos", json={"prompt": "a cat", "provider": "powertokens"})
        assert response.status_code == 200
    with sqlite3.connect(tmp_path / "vidgate.db") as db:
        assert db.execute("SELECT count(*) FROM files").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM jobs").fetchone() == (1,)


async def test_a_lock_held_by_another_process_is_store_unavailable_and_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.jobs.sqlite.BUSY_TIMEOUT_MS", 50)
    store = SqliteStore(tmp_path / "vidgate.db")
    await store.open()
    try:
        other = sqlite3.connect(tmp_path / "vidgate.db", isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        assert await store.ping() is False
        with pytest.raises(StoreUnavailable):
            await store.create_job(make_job(1))
        with pytest.raises(StoreUnavailable):
            await store.put_file(make_file("file_a", b"abc"), b"abc")
        other.execute("ROLLBACK")
        other.close()
        assert await store.ping() is True
        await store.create_job(make_job(1))  # the connection was left without a transaction open
        assert await store.get_file("file_a") is None
        assert not [p for p in store.files_dir.iterdir()]  # no bytes without their record
    finally:
        await store.close()


def _png() -> bytes:
    from providers.simkit import sample

    return sample("image.png")
