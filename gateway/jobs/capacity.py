"""Slots per provider account: a job holds one from submit until it ends upstream.

Providers with accounts (useapi `maxJobs`) get one pool entry per account;
others get a single unnamed entry sized by the provider's concurrency. Work over
the limit waits here, in arrival order, instead of failing upstream with 429.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable

import msgspec


class Slot(msgspec.Struct, frozen=True):
    account: str | None
    region: str | None
    limit: int


class NoAccount(Exception):
    """No usable account can ever take the job (none in its regions, or all taken out)."""


class _Waiter(msgspec.Struct):
    tenant: str
    regions: frozenset[str] | None
    future: asyncio.Future[str | None]


class AccountPool:
    """Slots per account, handed out in arrival order within a tenant and round-robin
    across tenants, so one tenant's burst can't starve another's jobs."""

    def __init__(self, slots: Iterable[Slot]) -> None:
        self.slots = list(slots)
        self.in_use: dict[str | None, int] = {s.account: 0 for s in self.slots}
        self.disabled: dict[str | None, str] = {}  # account -> why it was taken out
        self._waiting: dict[str, deque[_Waiter]] = {}  # tenant -> its waiters, oldest first
        self._last_tenant: str | None = None

    @property
    def capacity(self) -> int:
        return sum(s.limit for s in self.slots)

    @property
    def used(self) -> int:
        return sum(self.in_use.values())

    @property
    def queued(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    def regions(self) -> frozenset[str] | None:
        regions = {s.region for s in self.slots if s.region}
        return frozenset(regions) if regions else None

    def _eligible(self, regions: frozenset[str] | None) -> list[Slot]:
        return [s for s in self.slots if s.account not in self.disabled and (regions is None or s.region is None or s.region in regions)]

    def _free(self, regions: frozenset[str] | None) -> str | bool | None:
        best: Slot | None = None
        for s in self._eligible(regions):
            if self.in_use[s.account] < s.limit and (best is None or self._load(s) < self._load(best)):
                best = s
        return best.account if best is not None else False

    def _load(self, s: Slot) -> float:
        return self.in_use[s.account] / s.limit

    async def acquire(self, regions: frozenset[str] | None = None, *, tenant: str = "") -> str | None:
        """Wait for a free slot on an account in one of `regions` (None = any).

        Raises `NoAccount` when no account could ever serve those regions."""
        waiter = _Waiter(tenant, regions, asyncio.get_running_loop().create_future())
        self._waiting.setdefault(tenant, deque()).append(waiter)
        self._dispatch()
        try:
            return await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled() and waiter.future.exception() is None:
                self._give_back(waiter.future.result())  # granted as we were cancelled
            else:
                self._forget(waiter)
            raise

    def claim(self, account: str | None) -> None:
        """Count a job already running upstream (after a restart) against its account."""
        if account in self.in_use:
            self.in_use[account] += 1

    async def disable(self, account: str | None, reason: str) -> None:
        """Take an account out (e.g. its session expired) until the config is reloaded."""
        self.disabled[account] = reason
        self._dispatch()  # waiters that have no account left are told so

    async def release(self, account: str | None) -> None:
        self._give_back(account)

    def _give_back(self, account: str | None) -> None:
        if self.in_use.get(account, 0) > 0:
            self.in_use[account] -= 1
        self._dispatch()

    def _forget(self, waiter: _Waiter) -> None:
        queue = self._waiting.get(waiter.tenant)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self._waiting[waiter.tenant]

    def _dispatch(self) -> None:
        """Grant free slots: tenants take turns, each tenant's waiters in arrival order."""
        progress = True
        while progress and self._waiting:
            progress = False
            for tenant in self._turn_order():
                queue = self._waiting[tenant]
                # The oldest waiter this pool can serve now; a waiter for a full region
                # does not hold up one for another region.
                for waiter in queue:
                    if not self._eligible(waiter.regions):
                        why = "; ".join(f"{a}: {r}" for a, r in self.disabled.items()) or "none configured"
                        waiter.future.set_exception(NoAccount(f"no usable account in regions {sorted(waiter.regions or [])} ({why})"))
                        break
                    account = self._free(waiter.regions)
                    if account is not False:
                        self.in_use[account] += 1  # type: ignore[index]
                        waiter.future.set_result(account)  # type: ignore[arg-type]
                        self._last_tenant = tenant
                        break
                else:
                    continue
                queue.remove(waiter)
                if not queue:
                    del self._waiting[tenant]
                progress = True
                break

    def _turn_order(self) -> list[str]:
        tenants = list(self._waiting)
        if self._last_tenant in tenants:
            i = tenants.index(self._last_tenant) + 1
            tenants = tenants[i:] + tenants[:i]
        return tenants
