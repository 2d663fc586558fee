"""SlotBoard: slots held by jobs, handed out fairly, confirmed by a store that other replicas share."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from gateway.jobs.model import SlotRef
from gateway.jobs.slots import SlotBoard
from gateway.runtime import AccountSlots


class SharedStore:
    """The store's side of slots: holders per slot key, as every replica sees them."""

    def __init__(self) -> None:
        self.holders: dict[str, set[str]] = {}
        self.calls: list[tuple[str, int, list[str]]] = []
        self.elsewhere: dict[str, int] = {}  # slots other replicas hold

    async def acquire_slots(self, slot: str, limit: int, job_ids: Sequence[str]) -> list[str]:
        self.calls.append((slot, limit, list(job_ids)))
        held = self.holders.setdefault(slot, set())
        granted = []
        for job_id in job_ids:
            if job_id in held:
                granted.append(job_id)
            elif len(held) + self.elsewhere.get(slot, 0) < limit:
                held.add(job_id)
                granted.append(job_id)
        return granted

    def free(self, slot: str, job_id: str) -> None:
        self.holders.get(slot, set()).discard(job_id)


class Listener:
    def __init__(self) -> None:
        self.granted: list[tuple[str, SlotRef]] = []
        self.refused: list[tuple[str, str]] = []

    def slot_granted(self, job_id: str, slot: SlotRef) -> None:
        self.granted.append((job_id, slot))

    def slot_refused(self, job_id: str, provider: str, reason: str) -> None:
        self.refused.append((job_id, reason))

    @property
    def order(self) -> list[str]:
        return [j for j, _ in self.granted]


def board(*accounts: AccountSlots, provider: str = "p") -> tuple[SlotBoard, SharedStore, Listener]:
    store, listener = SharedStore(), Listener()
    slots = SlotBoard(store, listener)
    slots.configure({provider: accounts})
    return slots, store, listener


def account(name: str | None, region: str | None, limit: int) -> AccountSlots:
    return AccountSlots(account=name, region=region, limit=limit)


async def settled(slots: SlotBoard) -> None:
    await slots.settle()
    await asyncio.sleep(0)  # refusals are delivered with call_soon


async def test_jobs_over_the_limit_wait_in_arrival_order_and_a_release_lets_the_next_in() -> None:
    slots, store, listener = board(account(None, None, 2))
    for n in range(5):
        slots.request(f"j{n}", "p", None, "t")
    await settled(slots)
    assert listener.order == ["j0", "j1"]
    assert slots.usage()["p"].in_use == 2 and slots.usage()["p"].queued == 3

    store.free("p/", "j0")
    slots.release("j0")
    await settled(slots)
    assert listener.order == ["j0", "j1", "j2"]


async def test_releasing_twice_or_a_job_holding_nothing_frees_nothing_more() -> None:
    slots, store, listener = board(account(None, None, 1))
    for n in range(3):
        slots.request(f"j{n}", "p", None, "t")
    await settled(slots)
    store.free("p/", "j0")
    slots.release("j0")
    slots.release("j0")
    slots.release("never-held")
    await settled(slots)
    assert listener.order == ["j0", "j1"]  # one slot: exactly one more job got in
    assert slots.usage()["p"].in_use == 1


async def test_tenants_take_turns_so_one_burst_cannot_starve_another() -> None:
    slots, store, listener = board(account(None, None, 1))
    for n in range(4):
        slots.request(f"a{n}", "p", None, "tenant-a")
    slots.request("b0", "p", None, "tenant-b")
    await settled(slots)
    for _ in range(3):
        job_id = listener.order[-1]
        store.free("p/", job_id)
        slots.release(job_id)
        await settled(slots)
    assert listener.order == ["a0", "b0", "a1", "a2"]


async def test_a_job_gets_an_account_in_a_region_its_model_runs_in() -> None:
    slots, _, listener = board(account("us-1", "US", 2), account("ca-1", "CA", 1))
    slots.request("ca-job", "p", frozenset({"CA"}), "t")
    slots.request("any-job", "p", None, "t")
    await settled(slots)
    assert dict(listener.granted)["ca-job"] == SlotRef("p", "ca-1")
    assert dict(listener.granted)["any-job"].account in ("us-1", "ca-1")


async def test_a_waiter_for_a_full_region_does_not_hold_up_one_for_another() -> None:
    slots, _, listener = board(account("us-1", "US", 1), account("ca-1", "CA", 1))
    slots.request("ca-1st", "p", frozenset({"CA"}), "t")
    slots.request("ca-2nd", "p", frozenset({"CA"}), "t")
    slots.request("us-1st", "p", frozenset({"US"}), "t")
    await settled(slots)
    assert sorted(listener.order) == ["ca-1st", "us-1st"]


async def test_work_spreads_to_the_least_loaded_account() -> None:
    slots, _, listener = board(account("a", None, 2), account("b", None, 4))
    for n in range(3):
        slots.request(f"j{n}", "p", None, "t")
    await settled(slots)
    accounts = [slot.account for _, slot in listener.granted]
    assert accounts.count("b") == 2 and accounts.count("a") == 1


async def test_a_job_no_account_could_ever_serve_is_refused_at_once() -> None:
    slots, _, listener = board(account("us-1", "US", 2))
    slots.request("ca-job", "p", frozenset({"CA"}), "t")
    await settled(slots)
    assert listener.granted == [] and listener.refused and "CA" in listener.refused[0][1]


async def test_an_account_taken_out_refuses_the_waiters_only_it_could_serve() -> None:
    slots, _, listener = board(account("us-1", "US", 1), account("ca-1", "CA", 1))
    slots.request("ca-running", "p", frozenset({"CA"}), "t")
    slots.request("ca-waiting", "p", frozenset({"CA"}), "t")
    slots.request("us-running", "p", frozenset({"US"}), "t")
    slots.request("us-waiting", "p", frozenset({"US"}), "t")
    await settled(slots)
    slots.disable("p", "ca-1", "session expired")
    await settled(slots)
    assert [j for j, _ in listener.refused] == ["ca-waiting"]
    assert "session expired" in listener.refused[0][1]
    assert slots.usage()["p"].capacity == 1


async def test_a_withdrawn_request_is_never_granted() -> None:
    slots, store, listener = board(account(None, None, 1))
    slots.request("first", "p", None, "t")
    slots.request("cancelled", "p", None, "t")
    slots.request("third", "p", None, "t")
    await settled(slots)
    slots.withdraw("cancelled")
    assert slots.usage()["p"].queued == 1
    store.free("p/", "first")
    slots.release("first")
    await settled(slots)
    assert listener.order == ["first", "third"]


async def test_a_slot_held_by_a_claimed_job_counts_and_holding_it_again_is_a_no_op() -> None:
    slots, _, listener = board(account("a", None, 1))
    slots.hold("claimed", SlotRef("p", "a"))
    slots.hold("claimed", SlotRef("p", "a"))  # claimed again after a late renewal: still one
    slots.request("waiting", "p", None, "t")
    await settled(slots)
    assert listener.order == [] and slots.usage()["p"].in_use == 1
    slots.release("claimed")
    await settled(slots)
    assert listener.order == ["waiting"]


async def test_what_other_replicas_hold_is_respected_and_a_poke_asks_again() -> None:
    slots, store, listener = board(account("a", None, 2))
    store.elsewhere["p/a"] = 2  # another replica fills the account
    slots.request("mine", "p", None, "t")
    await settled(slots)
    assert listener.order == [] and slots.usage()["p"].queued == 1
    calls = len(store.calls)
    await settled(slots)
    assert len(store.calls) == calls  # refused: no busy loop against the store
    store.elsewhere["p/a"] = 1
    slots.poke()
    await settled(slots)
    assert listener.order == ["mine"]


async def test_a_reload_keeps_the_slots_jobs_hold_and_lifts_a_disable() -> None:
    slots, _, listener = board(account("a", None, 1), account("b", None, 1))
    slots.request("j0", "p", None, "t")
    await settled(slots)
    held = listener.granted[0][1].account
    slots.disable("p", "b" if held == "a" else "a", "expired")
    slots.configure({"p": (account("a", None, 1), account("b", None, 1))})
    usage = slots.usage()["p"]
    assert usage.in_use == 1 and usage.capacity == 2 and all(a.disabled is None for a in usage.accounts)


@pytest.mark.parametrize("waiting", [100, 5000])
async def test_a_grant_asks_the_store_about_the_few_it_can_grant_never_the_whole_queue(waiting: int) -> None:
    slots, store, listener = board(account(None, None, 3))
    for n in range(waiting):
        slots.request(f"j{n}", "p", None, f"t{n % 7}")
    await settled(slots)
    assert len(listener.order) == 3
    assert sum(len(ids) for _, _, ids in store.calls) == 3
