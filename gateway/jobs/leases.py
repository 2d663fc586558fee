"""Which jobs this process may drive, and until when.

Several vidgate processes on one store divide the active jobs by leases
(`gateway.jobs.store`): a job names the process that holds it, and one heartbeat
per process keeps all of them. `LeaseBook` is this process's side of it: its
instance id, the jobs it holds, and until when its last heartbeat keeps them (one
number, however many jobs). The engine asks `holds(job_id)` before every paid or
upstream-visible step, so a process that stalled past its heartbeat (a long GC
pause, a frozen VM, a store held up) does not act on a job another process may
have claimed meanwhile; it waits for its next heartbeat, which either says all is
still its own or leads to the list of what it still holds.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable

from gateway.jobs.store import Lease


def new_instance_id() -> str:
    """`host-pid-random`: unique per process start, readable in logs and lease columns."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class LeaseBook:
    """The jobs one process holds and until when its heartbeat keeps them. A job counts
    as held only while more than `margin` of the heartbeat remains, so a heartbeat that
    comes late stops work before the lease lapses rather than after. Until the first
    heartbeat is on the books, nothing is held."""

    def __init__(self, owner: str, seconds: float, *, clock: Callable[[], float] = time.time, margin: float | None = None) -> None:
        if seconds <= 0:
            raise ValueError("lease seconds must be positive")
        self.owner = owner
        self.seconds = seconds
        self.margin = seconds / 5 if margin is None else margin
        self._clock = clock
        self._until = float("-inf")
        self._held: set[str] = set()

    def new(self) -> Lease:
        """A lease from now, as the store should record it."""
        return Lease(self.owner, self._clock() + self.seconds)

    def renewed(self, until: float) -> None:
        """A heartbeat was stored: every job on the books is held until `until`."""
        self._until = until

    @property
    def until(self) -> float:
        return self._until

    def hold(self, job_ids: Iterable[str]) -> None:
        self._held.update(job_ids)

    def drop(self, job_id: str) -> None:
        self._held.discard(job_id)

    def has(self, job_id: str) -> bool:
        """Whether the job is on the books, its lease fresh or not."""
        return job_id in self._held

    def holds(self, job_id: str) -> bool:
        return job_id in self._held and self._until - self._clock() > self.margin

    def held(self) -> list[str]:
        return list(self._held)

    def __len__(self) -> int:
        return len(self._held)
