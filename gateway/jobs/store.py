"""The store protocol: what the service needs from durable storage.

Two implementations: `gateway.jobs.sqlite.SqliteStore` (one file, the default)
and `gateway.jobs.postgres.PostgresStore` (several vidgate replicas on one
database). `tests/store/` runs one contract suite against both. Every read that
names a tenant returns `None` for another tenant's object, so the API can answer
404 without a second check.

Replicas divide the work with leases. A process drives (submits, polls) only
the active jobs it holds: a job row names its holder (`lease_owner`), set when the
process creates or claims the job. What keeps them held is one heartbeat per
process (`owners`: owner -> until), which the process extends well before it lapses,
in one statement however many jobs it holds. A process that dies stops beating, so
once its `until` passes the others claim its jobs; a claim that takes a job from a
lapsed owner marks that owner as robbed in the same transaction, and the owner's
next heartbeat says so (False), so it asks which jobs it still holds (`held_by`)
before acting on any. Webhook deliveries are claimed by pushing their due time past
a lease, so each attempt is made by one process.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Literal, Protocol, TypeVar

import msgspec
import structlog

from gateway.errors import StoreUnavailable
from gateway.jobs.model import Comparison, ComparisonVote, DeliveryAttempt, FileRecord, Job, StatusEvent, WebhookDelivery

log = structlog.get_logger("vidgate.store")
S = TypeVar("S")


class StaleJob(Exception):
    """An update lost a race: the job changed since it was read."""


class DeliveryInFlight(Exception):
    """An attempt at this webhook delivery is under way (claimed, the claim not lapsed)."""


class DeliveryOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What an attempt (or a decision not to send) leaves on a delivery."""

    status: Literal["pending", "delivered", "failed"]
    next_attempt_at: float | None
    last_status_code: int | None
    last_error: str | None

    def applied(self, delivery: WebhookDelivery, attempt: DeliveryAttempt | None) -> WebhookDelivery:
        """`delivery` with this outcome, and `attempt` appended to its log and counted."""
        return msgspec.structs.replace(
            delivery,
            status=self.status,
            next_attempt_at=self.next_attempt_at,
            last_status_code=self.last_status_code,
            last_error=self.last_error,
            attempts=delivery.attempts + (attempt is not None),
            log=[*delivery.log, attempt] if attempt is not None else delivery.log,
        )


class JobWrite(msgspec.Struct, frozen=True):
    """One job's write in a group commit: the job (version-checked), the webhook deliveries
    that announce it (a transactional outbox) and the status event it records, if any."""

    job: Job
    deliveries: Sequence[WebhookDelivery] = ()
    event: StatusEvent | None = None


class Lease(msgspec.Struct, frozen=True):
    """A process (its instance id) and until when its heartbeat keeps the jobs it holds
    (epoch seconds)."""

    owner: str
    until: float


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> bool: ...

    # jobs ---------------------------------------------------------------
    async def create_job(self, job: Job, *, lease: Lease | None = None) -> Job:
        """Insert a new job, held by `lease.owner` when given (whose heartbeat is extended to
        at least `lease.until`). If `job.idempotency_key` is already used by the tenant,
        nothing is inserted and the existing job is returned instead (also when two
        inserts race, in one process or several)."""
        ...

    async def create_jobs(self, items: Sequence[tuple[Job, Lease | None]]) -> list[Job]:
        """Many `create_job`s in one transaction (a group commit), in order: for each, the job
        as inserted, or the tenant's job already under its idempotency key (stored before, or
        earlier in this batch). Any other clash (a duplicate id or callback token) fails the
        whole batch and stores nothing of it."""
        ...

    async def find_recent_duplicate(self, tenant: str, request_hash: str, since: float) -> Job | None:
        """The tenant's newest job created at or after `since` with this `request_hash`
        (used to recognise an SDK's automatic retry that carries no Idempotency-Key)."""
        ...

    async def find_idempotent(self, tenant: str, idempotency_key: str) -> Job | None:
        """The tenant's job created with this idempotency key, if any."""
        ...

    async def get_job(self, job_id: str, tenant: str | None = None) -> Job | None: ...

    async def get_by_callback_token(self, token: str) -> Job | None: ...

    async def update_job(self, job: Job, *, deliveries: Sequence[WebhookDelivery] = ()) -> Job:
        """Write `job` if its `version` is still current (raises `StaleJob` otherwise);
        returns it with the version bumped.

        `deliveries` are inserted in the same transaction (a transactional outbox:
        the terminal status and its webhooks are stored together or not at all).
        A delivery whose id is already stored is skipped, not an error."""
        ...

    async def update_jobs(self, writes: Sequence[JobWrite]) -> list[Job | None]:
        """Many `update_job`s in one transaction, each version-checked on its own: the
        written job, or None where it lost (then nothing of that write is stored)."""
        ...

    async def acquire_slots(self, slot: str, limit: int, job_ids: Sequence[str]) -> list[str]:
        """Grant `slot` (`SlotRef.key`) to as many of `job_ids`, in order, as keeps the active
        jobs holding it at most `limit`, serialized across every process on the store;
        returns the ids granted. The slot is released by writing the job without it."""
        ...

    async def slot_usage(self) -> dict[str, int]:
        """How many active jobs hold each slot, across every process on the store."""
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
        """Every job not yet in a terminal status, oldest first."""
        ...

    async def claim_jobs(self, lease: Lease, now: float, limit: int) -> list[Job]:
        """Hand to `lease.owner` up to `limit` active jobs that nobody holds (no holder, or
        one whose heartbeat lapsed before `now`), oldest first, and return them; its
        heartbeat is extended to at least `lease.until`. An owner other than the claimer
        that loses a job this way is marked robbed (its next `heartbeat` is False). Two
        callers never get the same job from one round of claims."""
        ...

    async def heartbeat(self, lease: Lease) -> bool:
        """Extend `lease.owner`'s heartbeat to `lease.until`, which keeps every job it holds.
        True when every job it held at its last heartbeat is still its own. False when
        another owner claimed some of its jobs since, or no heartbeat vouches for its record:
        it has none (a new process, or one released or cleaned up after it lapsed) or only
        one that a create or claim made. Then `held_by` says which jobs it still holds.
        One row's worth of work, however many jobs it holds."""
        ...

    async def held_by(self, owner: str, job_ids: Sequence[str]) -> set[str]:
        """Which of `job_ids` `owner` holds (the rest were claimed by another owner,
        released, or deleted)."""
        ...

    async def release_leases(self, owner: str, job_ids: Sequence[str]) -> None:
        """Give up `owner`'s hold on these jobs (so others may claim them at once). Once it
        holds no active job, its heartbeat goes too (a clean stop)."""
        ...

    async def jobs_since(self, tenant: str | None, since: float) -> list[Job]:
        """Every job created at or after `since`, oldest first; `tenant=None` means all tenants."""
        ...

    async def add_event(self, event: StatusEvent) -> None: ...

    async def events(self, job_id: str) -> list[StatusEvent]: ...

    # files --------------------------------------------------------------
    async def put_file(self, record: FileRecord, data: bytes | bytearray) -> FileRecord: ...

    async def get_file(self, file_id: str, tenant: str | None = None) -> FileRecord | None: ...

    async def read_file(self, file_id: str) -> bytes: ...

    async def delete_file(self, file_id: str) -> bool:
        """Remove a file's record and bytes; whether there was one. Used when the request
        that stored it fails (no job refers to it)."""
        ...

    def stream_file(self, file_id: str, chunk_size: int = 65536) -> AsyncIterator[bytes]: ...

    # webhooks -----------------------------------------------------------
    async def add_delivery(self, delivery: WebhookDelivery) -> None:
        """Record a new delivery (`next_attempt_at=None` means due at `created_at`)."""
        ...

    async def update_delivery(self, delivery: WebhookDelivery) -> None:
        """Overwrite a delivery by id, ending any claim on it; `KeyError` if it does not exist."""
        ...

    async def claim_deliveries(
        self,
        now: float,
        lease_until: float,
        limit: int = 50,
        *,
        skip_tenants: Sequence[str] = (),
        skip_urls: Sequence[str] = (),
        per_tenant: int | None = None,
        per_url: int | None = None,
    ) -> list[WebhookDelivery]:
        """Take up to `limit` pending deliveries due at `now`, earliest first, and push
        their due time to `lease_until` (marking them claimed until then) so no other
        process takes them meanwhile; deliveries of `skip_tenants` or to `skip_urls` are
        left, and at most `per_tenant` of one tenant's and `per_url` to one URL are taken.
        Returned as they were before the claim. The caller records the outcome with
        `record_attempt`; if it dies first, the delivery is due again at `lease_until`."""
        ...

    async def record_attempt(self, delivery_id: str, attempt: DeliveryAttempt | None, outcome: DeliveryOutcome) -> WebhookDelivery:
        """Atomically append `attempt` (None: nothing was sent) to the stored log and count
        it, set `outcome`, end the claim; returns the delivery. `KeyError` if missing."""
        ...

    async def defer_deliveries(self, delivery_ids: Sequence[str], until: float) -> None:
        """Hand claimed, unattempted deliveries back, due again at `until`."""
        ...

    async def requeue_delivery(self, delivery_id: str, tenant: str, now: float) -> WebhookDelivery:
        """Make the tenant's delivery pending and due at `now` (a redelivery). Raises
        `DeliveryInFlight` while an attempt at it is under way, `KeyError` if there is none."""
        ...

    async def get_delivery(self, delivery_id: str, tenant: str | None = None) -> WebhookDelivery | None: ...

    async def deliveries(self, job_id: str) -> list[WebhookDelivery]:
        """Every delivery for the job, in insertion order."""
        ...

    async def disable_endpoint(self, tenant: str, url: str, reason: str, at: float) -> None:
        """Stop delivering to this tenant's URL (a receiver answered 410 Gone)."""
        ...

    async def endpoint_disabled(self, tenant: str, url: str) -> str | None:
        """Why this tenant's URL is disabled, or None if it is not."""
        ...

    async def enable_endpoint(self, tenant: str, url: str) -> bool:
        """Lift a disable; returns whether one was lifted."""
        ...

    # comparisons --------------------------------------------------------
    async def put_comparison(self, comparison: Comparison) -> Comparison:
        """Insert a comparison. If its id, or the tenant's `idempotency_key`, is already
        stored, nothing is inserted and the stored comparison is returned instead."""
        ...

    async def get_comparison(self, comparison_id: str, tenant: str) -> Comparison | None: ...

    async def find_comparison(self, tenant: str, idempotency_key: str) -> Comparison | None:
        """The tenant's comparison created with this idempotency key, if any."""
        ...

    async def vote_comparison(self, comparison_id: str, tenant: str, vote: ComparisonVote) -> Comparison | None:
        """Record `vote` on the tenant's comparison unless it already has one (the first vote
        stays); returns the comparison as stored, or None if the tenant has no such comparison."""
        ...

    async def comparisons_since(self, tenant: str | None, since: float) -> list[Comparison]:
        """Every comparison created at or after `since`, oldest first; `tenant=None` means all tenants."""
        ...


def outages_raise_store_unavailable(why: Callable[[BaseException], str | None]) -> Callable[[type[S]], type[S]]:
    """A class decorator for a store: every public method (but `open`, `close`, `ping`)
    raises `StoreUnavailable` instead of an error `why` names (a lock, a read-only or full
    database, a lost connection), so the app maps one error to 503 + Retry-After and the
    engine knows a write may succeed later. `why(exc)` says what happened, or None."""

    def translate(exc: Exception, method: str) -> None:
        reason = why(exc)
        if reason is not None:
            log.warning("store.unavailable", method=method, reason=reason, error=type(exc).__name__)
            raise StoreUnavailable() from exc

    def coroutine(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                translate(exc, fn.__name__)
                raise

        return wrapper

    def generator(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                async for item in fn(*args, **kwargs):
                    yield item
            except Exception as exc:
                translate(exc, fn.__name__)
                raise

        return wrapper

    def decorate(cls: type[S]) -> type[S]:
        for name, fn in list(vars(cls).items()):
            if name.startswith("_") or name in ("open", "close", "ping"):
                continue
            if inspect.iscoroutinefunction(fn):
                setattr(cls, name, coroutine(fn))
            elif inspect.isasyncgenfunction(fn):
                setattr(cls, name, generator(fn))
        return cls

    return decorate
