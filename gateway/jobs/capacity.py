"""Slots per provider account: a job holds one from submit until it ends upstream.

Providers with accounts (useapi `maxJobs`) get one pool entry per account;
others get a single unnamed entry sized by the provider's concurrency. Work over
the limit waits here, in arrival order, instead of failing upstream with 429.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import msgspec


class Slot(msgspec.Struct, frozen=True):
    account: str | None
    region: str | None
    limit: int


class AccountPool:
    def __init__(self, slots: Iterable[Slot]) -> None:
        self.slots = list(slots)
        self.in_use: dict[str | None, int] = {s.account: 0 for s in self.slots}
        self._cond = asyncio.Condition()

    @property
    def capacity(self) -> int:
        return sum(s.limit for s in self.slots)

    @property
    def used(self) -> int:
        return sum(self.in_use.values())

    def regions(self) -> frozenset[str] | None:
        regions = {s.region for s in self.slots if s.region}
        return frozenset(regions) if regions else None

    def _free(self, regions: frozenset[str] | None) -> str | None | bool:
        best: Slot | None = None
        for s in self.slots:
            if regions is not None and s.region is not None and s.region not in regions:
                continue
            if self.in_use[s.account] < s.limit and (best is None or self._load(s) < self._load(best)):
                best = s
        return best.account if best is not None else False

    def _load(self, s: Slot) -> float:
        return self.in_use[s.account] / s.limit

    async def acquire(self, regions: frozenset[str] | None = None) -> str | None:
        """Wait for a free slot on an account in one of `regions` (None = any)."""
        async with self._cond:
            while True:
                account = self._free(regions)
                if account is not False:
                    self.in_use[account] += 1  # type: ignore[index]
                    return account  # type: ignore[return-value]
                await self._cond.wait()

    def claim(self, account: str | None) -> None:
        """Count a job already running upstream (after a restart) against its account."""
        if account in self.in_use:
            self.in_use[account] += 1

    async def release(self, account: str | None) -> None:
        async with self._cond:
            if self.in_use.get(account, 0) > 0:
                self.in_use[account] -= 1
            self._cond.notify_all()
