"""Account slots: limits, regions, least-loaded choice, waiting in order, restart claims."""

from __future__ import annotations

import asyncio

import pytest

from gateway.jobs.capacity import AccountPool, Slot


async def settle() -> None:
    """Let every runnable task take its next steps (no real time passes)."""
    for _ in range(20):
        await asyncio.sleep(0)


class Taker:
    """Tasks that each acquire one slot and record, in order, which account they got."""

    def __init__(self, pool: AccountPool) -> None:
        self.pool = pool
        self.got: list[tuple[str, str | None]] = []
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, name: str, regions: frozenset[str] | None = None) -> None:
        async def take() -> None:
            self.got.append((name, await self.pool.acquire(regions)))

        self.tasks.append(asyncio.create_task(take()))

    def cancel(self) -> None:
        for t in self.tasks:
            t.cancel()


@pytest.fixture
def two_accounts() -> AccountPool:
    return AccountPool([Slot("us-1", "US", 2), Slot("ca-1", "CA", 1)])


def test_capacity_and_regions(two_accounts: AccountPool) -> None:
    assert two_accounts.capacity == 3
    assert two_accounts.used == 0
    assert two_accounts.regions() == frozenset({"US", "CA"})
    assert AccountPool([Slot(None, None, 4)]).regions() is None


async def test_unnamed_pool_counts_up_to_its_limit() -> None:
    pool = AccountPool([Slot(None, None, 2)])
    assert await pool.acquire() is None
    assert await pool.acquire() is None
    assert pool.used == 2
    taker = Taker(pool)
    taker.start("third")
    await settle()
    assert taker.got == []  # waits instead of exceeding the limit
    await pool.release(None)
    await settle()
    assert taker.got == [("third", None)]
    assert pool.used == 2


async def test_acquire_respects_regions(two_accounts: AccountPool) -> None:
    assert await two_accounts.acquire(frozenset({"CA"})) == "ca-1"
    taker = Taker(two_accounts)
    taker.start("ca-waiter", frozenset({"CA"}))
    await settle()
    assert taker.got == []  # the US account has room but is in the wrong region
    assert two_accounts.in_use == {"us-1": 0, "ca-1": 1}
    await two_accounts.release("ca-1")
    await settle()
    assert taker.got == [("ca-waiter", "ca-1")]


async def test_region_none_means_any_account(two_accounts: AccountPool) -> None:
    got = {await two_accounts.acquire() for _ in range(3)}
    assert got == {"us-1", "ca-1"}
    assert two_accounts.in_use == {"us-1": 2, "ca-1": 1}


async def test_slot_without_region_serves_any_region() -> None:
    pool = AccountPool([Slot("anywhere", None, 1)])
    assert await pool.acquire(frozenset({"CA"})) == "anywhere"


async def test_least_loaded_account_is_chosen() -> None:
    pool = AccountPool([Slot("a", "US", 2), Slot("b", "US", 4)])
    assert await pool.acquire() == "a"  # tie at 0: the first
    assert await pool.acquire() == "b"  # a 1/2 vs b 0/4
    assert await pool.acquire() == "b"  # a 1/2 vs b 1/4
    assert await pool.acquire() == "a"  # a 1/2 vs b 2/4: tie, the first
    assert await pool.acquire() == "b"  # a full
    assert pool.in_use == {"a": 2, "b": 3}


async def test_waiters_get_freed_slots_in_arrival_order() -> None:
    pool = AccountPool([Slot("a", None, 1)])
    await pool.acquire()
    taker = Taker(pool)
    for name in ("first", "second", "third"):
        taker.start(name)
        await settle()
    assert taker.got == []
    await pool.release("a")
    await settle()
    assert taker.got == [("first", "a")]
    await pool.release("a")
    await settle()
    assert [n for n, _ in taker.got] == ["first", "second"]
    await pool.release("a")
    await settle()
    assert [n for n, _ in taker.got] == ["first", "second", "third"]
    assert pool.used == 1


async def test_a_waiter_is_not_overtaken_by_a_later_arrival() -> None:
    # BUG: release() wakes the waiter, but a task that calls acquire() before the waiter
    # runs again finds the lock free and takes the slot; the waiter goes back to sleep.
    pool = AccountPool([Slot("a", None, 1)])
    await pool.acquire()
    taker = Taker(pool)
    taker.start("waiting")
    await settle()
    taker.start("newcomer")  # created before the release, runs right after it
    await pool.release("a")
    await settle()
    try:
        assert [n for n, _ in taker.got] == ["waiting"]
    finally:
        taker.cancel()


async def test_waiter_for_one_region_does_not_block_another() -> None:
    pool = AccountPool([Slot("us-1", "US", 1), Slot("ca-1", "CA", 1)])
    await pool.acquire(frozenset({"CA"}))
    taker = Taker(pool)
    taker.start("ca", frozenset({"CA"}))
    await settle()
    taker.start("us", frozenset({"US"}))
    await settle()
    assert taker.got == [("us", "us-1")]
    await pool.release("ca-1")
    await settle()
    assert taker.got == [("us", "us-1"), ("ca", "ca-1")]


async def test_claim_after_restart_counts_against_the_account() -> None:
    pool = AccountPool([Slot("a", None, 2), Slot("b", None, 2)])
    pool.claim("a")
    pool.claim("a")
    assert pool.in_use == {"a": 2, "b": 0}
    assert pool.used == 2
    assert await pool.acquire() == "b"
    assert await pool.acquire() == "b"
    taker = Taker(pool)
    taker.start("fifth")
    await settle()
    assert taker.got == []
    await pool.release("a")  # one of the claimed jobs ends
    await settle()
    assert taker.got == [("fifth", "a")]


def test_claim_of_an_unknown_account_is_ignored() -> None:
    pool = AccountPool([Slot("a", None, 1)])
    pool.claim("gone")
    assert pool.in_use == {"a": 0}


async def test_release_never_goes_below_zero() -> None:
    pool = AccountPool([Slot("a", None, 1)])
    await pool.release("a")
    await pool.release("unknown")
    assert pool.in_use == {"a": 0}
    assert await pool.acquire() == "a"
    assert pool.used == 1
