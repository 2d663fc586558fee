"""Fixtures every test layer may use: a real PostgreSQL (tests/pg_server.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.pg_server import INSTALL_HINT, URL_ENV, find_binaries, fresh_database, postgres_for_tests


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server for the whole session. Fails (never skips) when there is none."""
    if not os.environ.get(URL_ENV) and find_binaries() is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    with postgres_for_tests() as url:
        yield url


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """The URL of an empty database of its own, dropped after the test."""
    with fresh_database(postgres_url) as url:
        yield url
