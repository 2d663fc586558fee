"""Comparisons: first write wins, by id or by the tenant's idempotency key."""

from __future__ import annotations

import msgspec

from gateway.jobs.store import Store
from tests.store.records import comparison


async def test_comparison_round_trip_is_tenant_isolated_and_first_write_wins(store: Store) -> None:
    original = comparison()
    assert await store.put_comparison(original) == original
    assert await store.get_comparison("cmp_1", "t1") == original
    assert await store.get_comparison("cmp_1", "t2") is None
    assert await store.get_comparison("cmp_nope", "t1") is None
    assert await store.put_comparison(comparison(video="video_0002")) == original  # a replay keeps the stored one


async def test_an_idempotency_key_names_one_comparison_per_tenant(store: Store) -> None:
    keyed = msgspec.structs.replace(comparison(), idempotency_key="k", request_hash="h")
    assert await store.put_comparison(keyed) == keyed
    assert await store.find_comparison("t1", "k") == keyed
    assert await store.find_comparison("t2", "k") is None
    assert await store.find_comparison("t1", "other") is None
    racer = msgspec.structs.replace(keyed, id="cmp_2", request_hash="h2")
    assert await store.put_comparison(racer) == keyed  # the first write wins
    assert await store.get_comparison("cmp_2", "t1") is None
    other_tenant = msgspec.structs.replace(keyed, id="cmp_3", tenant="t2")
    assert await store.put_comparison(other_tenant) == other_tenant
    unkeyed = [comparison(cid=f"cmp_{n}") for n in (4, 5)]
    assert [await store.put_comparison(c) for c in unkeyed] == unkeyed  # no key, no clash
