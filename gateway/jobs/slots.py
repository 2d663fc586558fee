"""Job slots per provider account, held by jobs and shared by every replica.

A provider's work runs on accounts with a job cap each (an upstream's `maxJobs`), or on the
provider as one pool of `max_concurrency`. A job asks for a slot before it is submitted
and holds it (`Job.slot`) until its attempt ends; work over the cap waits here, in
vidgate's queue, instead of failing upstream with 429.

The board decides locally who is next: waiting jobs are grouped by the account regions
they can use and by tenant, tenants take turns (one tenant's burst can't starve
another's), and within a tenant the oldest goes first. A grant costs O(accounts +
region groups) and never scans the waiting jobs. The store has the last word:
`acquire_slots` counts every process's holders of the account's slot in one serialized
transaction, so N replicas never exceed an account's cap; what the store refuses waits
at the head of its queue until a slot frees here or `poke()` (every lease interval)
tries again.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from gateway.jobs.model import SlotRef
from gateway.runtime import AccountSlots

log = structlog.get_logger("vidgate.slots")

Regions = frozenset[str] | None  # the account regions a job can run in (None: any)


class SlotStore(Protocol):
    async def acquire_slots(self, slot: str, limit: int, job_ids: Sequence[str]) -> list[str]: ...


class SlotListener(Protocol):
    """Who hears how a request ended (the engine: it turns these into lifecycle events)."""

    def slot_granted(self, job_id: str, slot: SlotRef) -> None: ...

    def slot_refused(self, job_id: str, provider: str, reason: str) -> None: ...


@dataclass(eq=False)
class _Waiter:
    job_id: str
    tenant: str
    regions: Regions
    seq: int
    active: bool = True


@dataclass(eq=False)
class _Account:
    slots: AccountSlots
    held: set[str] = field(default_factory=set)
    disabled: str | None = None  # why it was taken out (an expired session), until a reload
    blocked: bool = False  # the store refused: other replicas fill it; wait for a release or poke

    @property
    def free(self) -> int:
        return 0 if self.disabled or self.blocked else max(0, self.slots.limit - len(self.held))

    def fits(self, regions: Regions) -> bool:
        return not self.disabled and (regions is None or self.slots.region is None or self.slots.region in regions)


@dataclass(eq=False)
class _Pool:
    accounts: dict[str | None, _Account] = field(default_factory=dict)
    # region group -> tenant -> that tenant's waiters, oldest first; tenants rotate
    waiting: dict[Regions, OrderedDict[str, deque[_Waiter]]] = field(default_factory=dict)
    queued: int = 0


@dataclass(frozen=True)
class AccountUsage:
    account: str | None
    region: str | None
    limit: int
    in_use: int  # held by jobs this process drives
    disabled: str | None


@dataclass(frozen=True)
class PoolUsage:
    capacity: int
    in_use: int
    queued: int
    accounts: tuple[AccountUsage, ...]


class SlotBoard:
    def __init__(self, store: SlotStore, listener: SlotListener) -> None:
        self._store = store
        self._listener = listener
        self._pools: dict[str, _Pool] = {}
        self._waiters: dict[str, tuple[str, _Waiter]] = {}  # job id -> (provider, its request)
        self._holders: dict[str, tuple[str, str | None]] = {}  # job id -> (provider, account)
        self._seq = itertools.count()
        self._dirty = False
        self._task: asyncio.Task[None] | None = None

    # -- configuration -----------------------------------------------------------

    def configure(self, pools: Mapping[str, Sequence[AccountSlots]]) -> None:
        """The providers' accounts from a (re)loaded config. Jobs keep the slots they hold;
        an account taken out for an expired session is usable again after a reload."""
        for provider, accounts in pools.items():
            pool = self._pools.setdefault(provider, _Pool())
            old = pool.accounts
            pool.accounts = {a.account: _Account(a, held=old[a.account].held if a.account in old else set()) for a in accounts}
        self._kick()

    # -- requests ---------------------------------------------------------------------

    def request(self, job_id: str, provider: str, regions: Regions, tenant: str) -> None:
        """Queue `job_id` for a slot on `provider` in one of `regions`; the listener hears
        `slot_granted` when it gets one, or `slot_refused` when no account ever could."""
        if job_id in self._waiters or job_id in self._holders:
            return
        pool = self._pools.get(provider)
        if pool is None or not any(a.fits(regions) for a in pool.accounts.values()):
            self._refuse_soon(job_id, provider, self._why_none(pool, regions))
            return
        waiter = _Waiter(job_id, tenant, regions, next(self._seq))
        pool.waiting.setdefault(regions, OrderedDict()).setdefault(tenant, deque()).append(waiter)
        pool.queued += 1
        self._waiters[job_id] = (provider, waiter)
        self._kick()

    def withdraw(self, job_id: str) -> None:
        """The job no longer wants the slot it waits for (cancelled, or another process has it)."""
        entry = self._waiters.pop(job_id, None)
        if entry is not None:
            provider, waiter = entry
            waiter.active = False
            self._pools[provider].queued -= 1

    def hold(self, job_id: str, slot: SlotRef) -> None:
        """Count a slot the job already holds (a job claimed from a process that stopped)."""
        pool = self._pools.get(slot.provider)
        account = pool.accounts.get(slot.account) if pool is not None else None
        if account is not None:
            account.held.add(job_id)
        self._holders[job_id] = (slot.provider, slot.account)

    def release(self, job_id: str) -> None:
        """The job no longer holds its slot (its attempt or the job ended; or it is no longer
        driven here). Safe to call for a job that holds nothing; a request it made since
        (for its next attempt) stays queued."""
        holder = self._holders.pop(job_id, None)
        if holder is None:
            return
        provider, account_id = holder
        pool = self._pools.get(provider)
        account = pool.accounts.get(account_id) if pool is not None else None
        if account is not None:
            account.held.discard(job_id)
            account.blocked = False
        self._kick()

    def holds(self, job_id: str) -> bool:
        return job_id in self._holders

    def disable(self, provider: str, account_id: str, reason: str) -> None:
        """Take an account out (its session expired); waiters no account can serve any more are refused."""
        pool = self._pools.get(provider)
        account = pool.accounts.get(account_id) if pool is not None else None
        if pool is None or account is None or account.disabled:
            return
        account.disabled = reason
        for regions, tenants in pool.waiting.items():
            if any(a.fits(regions) for a in pool.accounts.values()):
                continue
            for waiter in (w for q in tenants.values() for w in q if w.active):
                self.withdraw(waiter.job_id)
                self._refuse_soon(waiter.job_id, provider, self._why_none(pool, regions))
        self._kick()

    def poke(self) -> None:
        """Ask the store again for what it refused (other replicas may have freed slots)."""
        for pool in self._pools.values():
            for account in pool.accounts.values():
                account.blocked = False
        self._kick()

    def usage(self) -> dict[str, PoolUsage]:
        out = {}
        for provider, pool in self._pools.items():
            accounts = tuple(AccountUsage(a.slots.account, a.slots.region, a.slots.limit, len(a.held), a.disabled) for a in pool.accounts.values())
            out[provider] = PoolUsage(
                capacity=sum(a.limit for a in accounts if a.disabled is None),
                in_use=sum(a.in_use for a in accounts),
                queued=pool.queued,
                accounts=accounts,
            )
        return out

    async def settle(self) -> None:
        """Wait until every grant that can be made now has been (tests, shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    # -- dispatch ------------------------------------------------------------------------

    def _kick(self) -> None:
        self._dirty = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._dispatch_loop(), name="slots")

    async def _dispatch_loop(self) -> None:
        while self._dirty:
            self._dirty = False
            for provider in list(self._pools):
                try:
                    await self._dispatch(provider)
                except Exception:  # a store hiccup: the waiters stay queued for the next kick or poke
                    log.exception("slots.dispatch_failed", provider=provider)

    async def _dispatch(self, provider: str) -> None:
        pool = self._pools[provider]
        for account, waiters in self._plan(pool).items():
            slot = SlotRef(provider, account.slots.account)
            try:
                granted = set(await self._store.acquire_slots(slot.key, account.slots.limit, [w.job_id for w in waiters]))
            except BaseException:  # the store can't grant now: the waiters keep their place for the next kick or poke
                for waiter in reversed(waiters):
                    if waiter.active:
                        self._requeue(pool, waiter)
                raise
            for waiter in waiters:
                if waiter.job_id in granted:
                    self._grant(provider, account, waiter, slot)
            for waiter in reversed(waiters):
                if waiter.job_id not in granted and waiter.active:
                    self._requeue(pool, waiter)
            if len(granted) < len(waiters):
                account.blocked = True  # full across replicas: wait for a release or a poke

    def _plan(self, pool: _Pool) -> dict[_Account, list[_Waiter]]:
        """Who goes where now: waiters in turn (tenants alternate, oldest first), each to the
        least loaded account that can serve it. O(accounts + region groups) per waiter placed."""
        planned: dict[_Account, list[_Waiter]] = {}

        def room(a: _Account) -> int:
            return a.free - len(planned.get(a, ()))

        while True:
            open_accounts = [a for a in pool.accounts.values() if room(a) > 0]
            waiter = self._next(pool, open_accounts) if open_accounts else None
            if waiter is None:
                return planned
            best = min((a for a in open_accounts if a.fits(waiter.regions)), key=lambda a: (len(a.held) + len(planned.get(a, ()))) / a.slots.limit)
            planned.setdefault(best, []).append(waiter)

    def _next(self, pool: _Pool, accounts: list[_Account]) -> _Waiter | None:
        """The next waiter one of `accounts` can serve: the oldest at the head of its group's
        tenant rotation, across the region groups those accounts fit."""
        best: tuple[int, Regions, str] | None = None
        for group, tenants in pool.waiting.items():
            if not any(a.fits(group) for a in accounts):
                continue
            while tenants:
                tenant, queue = next(iter(tenants.items()))
                while queue and not queue[0].active:
                    queue.popleft()
                if queue:
                    if best is None or queue[0].seq < best[0]:
                        best = (queue[0].seq, group, tenant)
                    break
                del tenants[tenant]
        if best is None:
            return None
        _, group, tenant = best
        tenants = pool.waiting[group]
        waiter = tenants[tenant].popleft()
        tenants.move_to_end(tenant)  # the next pick in this group is another tenant's
        return waiter

    def _grant(self, provider: str, account: _Account, waiter: _Waiter, slot: SlotRef) -> None:
        self._pools[provider].queued -= 1 if waiter.active else 0
        self._waiters.pop(waiter.job_id, None)
        account.held.add(waiter.job_id)
        self._holders[waiter.job_id] = (provider, account.slots.account)
        # granted even if withdrawn meanwhile: the store now counts it, so the job must hear
        # of it and hand it back by writing itself without the slot
        self._listener.slot_granted(waiter.job_id, slot)

    def _requeue(self, pool: _Pool, waiter: _Waiter) -> None:
        tenants = pool.waiting.setdefault(waiter.regions, OrderedDict())
        queue = tenants.setdefault(waiter.tenant, deque())
        queue.appendleft(waiter)
        tenants.move_to_end(waiter.tenant, last=False)

    def _refuse_soon(self, job_id: str, provider: str, reason: str) -> None:
        asyncio.get_running_loop().call_soon(self._listener.slot_refused, job_id, provider, reason)

    @staticmethod
    def _why_none(pool: _Pool | None, regions: Regions) -> str:
        if pool is None:
            return "the provider is not configured"
        disabled = "; ".join(f"{a.slots.account}: {a.disabled}" for a in pool.accounts.values() if a.disabled)
        wanted = f"in regions {sorted(regions)}" if regions else ""
        return f"no usable account {wanted} ({disabled or 'none configured'})".replace("  ", " ")
