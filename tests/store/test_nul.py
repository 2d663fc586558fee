"""A NUL in a caller's id, key or filter. PostgreSQL's text can't hold one and refuses the
query outright, so each lookup must answer as for any id nobody has: not found, empty."""

from __future__ import annotations

import pytest

from gateway.jobs.store import Store
from tests.store.records import comparison, make_delivery, make_file, make_job

NUL = "\x00"


@pytest.fixture
async def filled(store: Store) -> Store:
    await store.create_job(make_job(1, idempotency_key="k1", callback_token="tok1"))
    await store.put_file(make_file("file_a", b"abc"), b"abc")
    await store.add_delivery(make_delivery(1, due=None))
    await store.put_comparison(comparison())
    return store


@pytest.mark.parametrize("value", [NUL, "video_0001" + NUL, NUL + "video_0001"])
async def test_lookups_by_an_id_with_a_nul_find_nothing(filled: Store, value: str) -> None:
    store = filled
    assert await store.get_job(value) is None
    assert await store.get_job(value, "t1") is None
    assert await store.get_job("video_0001", "t1" + NUL) is None
    assert await store.get_by_callback_token(value) is None
    assert await store.find_idempotent("t1", value) is None
    assert await store.delete_job(value, "t1") is False
    assert await store.events(value) == []
    assert await store.get_file(value, "t1") is None
    assert await store.delete_file(value) is False
    with pytest.raises(KeyError):
        await store.read_file(value)
    with pytest.raises(KeyError):
        async for _ in store.stream_file(value):
            pass
    assert await store.get_delivery(value, "t1") is None
    assert await store.deliveries(value) == []
    assert await store.get_comparison(value, "t1") is None
    assert await store.find_comparison("t1", value) is None
    assert await store.jobs_since("t1" + NUL, 0) == []
    assert await store.get_job("video_0001", "t1") is not None  # nothing else was touched


@pytest.mark.parametrize("field", ["status", "provider", "model"])
async def test_a_list_filter_with_a_nul_matches_nothing(filled: Store, field: str) -> None:
    assert await filled.list_jobs("t1", **{field: "queued" + NUL}) == ([], False)  # type: ignore[arg-type]
    assert await filled.list_jobs("t1" + NUL) == ([], False)


async def test_paging_after_an_id_with_a_nul_is_an_unknown_cursor(filled: Store) -> None:
    with pytest.raises(KeyError):
        await filled.list_jobs("t1", after="video_0001" + NUL)
