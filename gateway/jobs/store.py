"""The store protocol: what the service needs from durable storage.

`gateway.jobs.sqlite.SqliteStore` implements it; tests use the same store on a
temporary file. Every read that names a tenant returns `None` for another
tenant's object, so the API can answer 404 without a second check.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal, Protocol

from gateway.jobs.model import Comparison, FileRecord, Job, StatusEvent, WebhookDelivery


class StaleJob(Exception):
    """An update lost a race: the job changed since it was read."""


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> bool: ...

    # jobs ---------------------------------------------------------------
    async def create_job(self, job: Job) -> Job:
        """Insert a new job. If `job.idempotency_key` is already used by the tenant,
        nothing is inserted and the existing job is returned instead."""
        ...

    async def find_idempotent(self, tenant: str, idempotency_key: str) -> Job | None:
        """The tenant's job created with this idempotency key, if any."""
        ...

    async def get_job(self, job_id: str, tenant: str | None = None) -> Job | None: ...

    async def get_by_callback_token(self, token: str) -> Job | None: ...

    async def update_job(self, job: Job) -> Job:
        """Write `job` if its `version` is still current (raises `StaleJob` otherwise);
        returns it with the version bumped."""
        ...

    async def delete_job(self, job_id: str, tenant: str) -> bool: ...

    async def list_jobs(
        self,
        tenant: str,
        *,
        after: str | None = None,
        limit: int = 20,
        order: Literal["asc", "desc"] = "desc",
        status: str | None = None,
        provider: str | None = None,
        model: str | None = None,
    ) -> tuple[list[Job], bool]:
        """One page in creation order and whether more follow."""
        ...

    async def active_jobs(self) -> list[Job]:
        """Every job not yet in a terminal status (what a restart must resume)."""
        ...

    async def jobs_since(self, tenant: str | None, since: float) -> list[Job]:
        """Every job created at or after `since`, oldest first; `tenant=None` means all tenants."""
        ...

    async def add_event(self, event: StatusEvent) -> None: ...

    async def events(self, job_id: str) -> list[StatusEvent]: ...

    # files --------------------------------------------------------------
    async def put_file(self, record: FileRecord, data: bytes) -> FileRecord: ...

    async def get_file(self, file_id: str, tenant: str | None = None) -> FileRecord | None: ...

    async def read_file(self, file_id: str) -> bytes: ...

    def stream_file(self, file_id: str, chunk_size: int = 65536) -> AsyncIterator[bytes]: ...

    # webhooks -----------------------------------------------------------
    async def add_delivery(self, delivery: WebhookDelivery) -> None: ...

    async def update_delivery(self, delivery: WebhookDelivery) -> None: ...

    async def due_deliveries(self, now: float, limit: int = 50) -> list[WebhookDelivery]: ...

    async def deliveries(self, job_id: str) -> list[WebhookDelivery]: ...

    # comparisons --------------------------------------------------------
    async def put_comparison(self, comparison: Comparison) -> Comparison:
        """Insert a comparison. If its id, or the tenant's `idempotency_key`, is already
        stored, nothing is inserted and the stored comparison is returned instead."""
        ...

    async def get_comparison(self, comparison_id: str, tenant: str) -> Comparison | None: ...

    async def find_comparison(self, tenant: str, idempotency_key: str) -> Comparison | None:
        """The tenant's comparison created with this idempotency key, if any."""
        ...
