"""One store contract, two stores: every test here taking `store` or `backend` runs on SQLite and on PostgreSQL.

A `Backend` opens any number of stores on one database: two of them stand for
two vidgate processes sharing it (SQLite: two `SqliteStore`s on one file;
PostgreSQL: two `PostgresStore`s, two pools, on one fresh database).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest

from gateway.jobs.postgres import PostgresStore
from gateway.jobs.sqlite import SqliteStore
from gateway.jobs.store import Store


class Backend:
    def __init__(self, name: str, new: Callable[[], Store], clash: type[Exception]) -> None:
        self.name = name
        self.new = new  # an unopened store on the shared database
        self.clash = clash  # what a duplicate id (not an idempotent replay) raises
        self._opened: list[Store] = []

    async def open(self) -> Store:
        store = self.new()
        await store.open()
        self._opened.append(store)
        return store

    async def close_all(self) -> None:
        for store in reversed(self._opened):
            await store.close()
        self._opened.clear()


@pytest.fixture(params=["sqlite", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        b = Backend("sqlite", lambda: SqliteStore(tmp_path / "vidgate.db"), sqlite3.IntegrityError)
    else:
        url = request.getfixturevalue("postgres_database")
        b = Backend("postgres", lambda: PostgresStore(url), asyncpg.UniqueViolationError)
    yield b
    await b.close_all()


@pytest.fixture
async def store(backend: Backend) -> Store:
    return await backend.open()
