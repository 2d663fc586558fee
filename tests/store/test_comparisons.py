"""Comparisons: first write wins, by id or by the tenant's idempotency key."""

from __future__ import annotations

import msgspec

from gateway.jobs.model import ComparisonVote
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


async def test_the_first_vote_stays_and_only_the_tenant_can_cast_it(store: Store) -> None:
    blind = msgspec.structs.replace(comparison(), blind=True, shown=["useapi"])
    await store.put_comparison(blind)
    first = ComparisonVote(winner="useapi", at=6.0, key_name="k")
    assert await store.vote_comparison("cmp_1", "t2", first) is None
    assert (await store.get_comparison("cmp_1", "t1")).vote is None  # type: ignore[union-attr]
    voted = await store.vote_comparison("cmp_1", "t1", first)
    assert voted == msgspec.structs.replace(blind, vote=first)
    again = await store.vote_comparison("cmp_1", "t1", ComparisonVote(winner=None, at=7.0, key_name="k2"))
    assert again is not None and again.vote == first
    assert await store.get_comparison("cmp_1", "t1") == voted
    assert await store.vote_comparison("cmp_nope", "t1", first) is None


async def test_comparisons_since_reads_a_window_per_tenant_or_for_all(store: Store) -> None:
    made = [
        msgspec.structs.replace(comparison(cid=f"cmp_{n}", tenant=tenant), created_at=at) for n, tenant, at in ((1, "t1", 5.0), (2, "t2", 6.0), (3, "t1", 9.0))
    ]
    for c in made:
        await store.put_comparison(c)
    assert [c.id for c in await store.comparisons_since("t1", 0)] == ["cmp_1", "cmp_3"]
    assert [c.id for c in await store.comparisons_since("t1", 6)] == ["cmp_3"]
    assert [c.id for c in await store.comparisons_since(None, 5.5)] == ["cmp_2", "cmp_3"]
