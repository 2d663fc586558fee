"""Which jobs this process may drive, and until when.

Several vidgate processes on one store divide the active jobs by leases
(`gateway.jobs.store`). `LeaseBook` is this process's side of it: its instance
id, the leases it holds and how long each is good for. The runner asks
`holds(job_id)` before every paid or upstream-visible step, so a process that
stalled past its lease (a long GC pause, a frozen VM) does not act on a job
another process may have claimed meanwhile; it waits for its next renewal,
which either extends the lease or reports it lost.
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
    """The leases one process holds. A lease counts as held only while more than
    `margin` of it remains, so a renewal that comes late stops work before the
    lease lapses rather than after."""

    def __init__(self, owner: str, seconds: float, *, clock: Callable[[], float] = time.time, margin: float | None = None) -> None:
        if seconds <= 0:
            raise ValueError("lease seconds must be positive")
        self.owner = owner
        self.seconds = seconds
        self.margin = seconds / 5 if margin is None else margin
        self._clock = clock
        self._until: dict[str, float] = {}

    def new(self) -> Lease:
        """A lease from now, as the store should record it."""
        return Lease(self.owner, self._clock() + self.seconds)

    def hold(self, job_ids: Iterable[str], until: float) -> None:
        for job_id in job_ids:
            self._until[job_id] = until

    def drop(self, job_id: str) -> None:
        self._until.pop(job_id, None)

    def has(self, job_id: str) -> bool:
        """Whether a lease on the job is on the books, fresh or not."""
        return job_id in self._until

    def holds(self, job_id: str) -> bool:
        until = self._until.get(job_id)
        return until is not None and until - self._clock() > self.margin

    def held(self) -> list[str]:
        return list(self._until)

    def __len__(self) -> int:
        return len(self._until)
