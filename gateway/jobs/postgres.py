"""`Store` on PostgreSQL, for several vidgate replicas sharing one database.

Concurrency model:

- One asyncpg pool per process. Each call borrows a connection for one statement
  or one short transaction and gives it back; nothing holds a connection across
  an `await` on anything but the database (a download streams chunk by chunk,
  each chunk its own query).
- Transactions run at READ COMMITTED, PostgreSQL's default. Job writes are
  optimistic (`version`), so a lost race raises `StaleJob` rather than
  overwriting; idempotent inserts use `ON CONFLICT DO NOTHING`, which waits for
  a racing insert of the same key to commit and then finds its row.
- Claims (`claim_jobs`, `claim_deliveries`) take rows with `FOR UPDATE SKIP
  LOCKED` and stamp them in the same statement. Rows another process is claiming
  at that moment are skipped, not waited for, and a row claimed and committed
  meanwhile is re-checked against the claim's condition and dropped; so two
  processes claiming at once get disjoint sets.
- Every write that locks several rows of a table locks them in one global order
  (`SELECT ... ORDER BY id FOR UPDATE` before the write), so two transactions never
  wait for each other in a cycle: group commits, slot grants, lease releases and
  delivery deferrals from any number of replicas queue behind one another instead
  of deadlocking. A transaction that touches both heartbeats (`owners`) and jobs
  locks the `owners` rows first (see `claim_jobs`). A deadlock or serialization
  failure that still happens (a statement outside vidgate, a lock order this store
  does not control) rolls back the whole transaction, and `_transaction` runs it
  again, a bounded number of times.
- Migrations run at `open()` inside one transaction holding
  `pg_advisory_xact_lock` (see `postgres_schema`), so replicas started
  together never apply one twice.

File bytes live in the database (`file_bytes`), not on local disk: the replicas
run on different hosts, and a file uploaded through one must be readable by
whichever replica later submits the job or serves the download. They are stored
uncompressed out of line, so `stream_file` reads one `substring()` slice at a
time and never loads a large file whole.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Literal, TypeVar

import asyncpg
import msgspec
import structlog

from gateway.jobs.model import Comparison, ComparisonVote, DeliveryAttempt, FileRecord, Job, SlotRef, StatusEvent, WebhookDelivery
from gateway.jobs.postgres_schema import migrate
from gateway.jobs.store import DeliveryInFlight, DeliveryOutcome, JobWrite, Lease, StaleJob, outages_raise_store_unavailable
from providers.base import JobStatus

log = structlog.get_logger("vidgate.store")
T = TypeVar("T")

PING_TIMEOUT_SECONDS = 5.0
TX_ATTEMPTS = 5  # tries of a transaction that deadlocked or failed to serialize
TX_RETRY_PAUSE = 0.02  # seconds, times the attempt number, jittered: the winner finishes meanwhile
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
_ACTIVE = [s.value for s in JobStatus if not s.terminal]
_JOB_COLUMNS = "doc, version, slot"
# An owner about to hold a job: its heartbeat lasts at least until the lease's end. A row
# made here is marked `lost`: the owner may be one whose row was cleaned up after it lapsed
# and lost its jobs, so its next heartbeat must not say that all it holds is still its own.
_KEEP_OWNER = """INSERT INTO owners (owner, until, lost) VALUES ($1, $2, true)
    ON CONFLICT (owner) DO UPDATE SET until = greatest(owners.until, excluded.until)"""
_UNCAPPED = 2**31 - 1  # a per-tenant / per-URL cap that caps nothing (a PostgreSQL integer)

_INSERT_DELIVERY = """INSERT INTO deliveries (id, job_id, tenant, status, next_attempt_at, url, doc)
    VALUES ($1, $2, $3, $4, $5, $6, $7)"""


def _nul(*values: object) -> bool:
    """Whether a caller's text holds a NUL, which PostgreSQL's text refuses outright. No
    stored id, key or name holds one, so a lookup by such a value finds nothing."""
    return any(isinstance(v, str) and "\x00" in v for v in values)


def _value(v: Any) -> Any:
    return v.value if isinstance(v, enum.Enum) else v


# Conditions under which a later try may succeed: no connection, a standby or read-only
# database, a full disk, too many clients, a lock or statement timeout, an operator's shutdown.
_OUTAGES: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.ReadOnlySQLTransactionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.OperatorInterventionError,
    asyncpg.LockNotAvailableError,
    asyncpg.QueryCanceledError,
    asyncpg.CannotConnectNowError,
    *_RETRYABLE,  # still failing after TX_ATTEMPTS tries: contention, which passes
    OSError,
    TimeoutError,
)


def _outage(exc: BaseException) -> str | None:
    if isinstance(exc, FileExistsError):  # put_file's duplicate id, not an outage
        return None
    return f"{type(exc).__name__}: {exc}"[:200] if isinstance(exc, _OUTAGES) else None


@outages_raise_store_unavailable(_outage)
class PostgresStore:
    """`Store` on a PostgreSQL database named by `url` (`postgresql://user@host:port/db`).

    Call `open()` before use (creates the pool, applies migrations) and
    `close()` after.
    """

    def __init__(self, url: str, *, min_connections: int = 1, max_connections: int = 10) -> None:
        if not 0 <= min_connections <= max_connections or max_connections < 1:
            raise ValueError("need 0 <= min_connections <= max_connections and max_connections >= 1")
        self.url = url
        self.min_connections = min_connections
        self.max_connections = max_connections
        self._pool: asyncpg.Pool | None = None
        self._enc = msgspec.json.Encoder()
        self._job = msgspec.json.Decoder(Job)
        self._file = msgspec.json.Decoder(FileRecord)
        self._delivery = msgspec.json.Decoder(WebhookDelivery)
        self._comparison = msgspec.json.Decoder(Comparison)

    # lifecycle ------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        pool = await asyncpg.create_pool(
            self.url,
            min_size=self.min_connections,
            max_size=self.max_connections,
            server_settings={"application_name": "vidgate"},
        )
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def ping(self) -> bool:
        if self._pool is None:
            return False
        try:
            async with asyncio.timeout(PING_TIMEOUT_SECONDS), self._pool.acquire() as conn:
                # A write that is rolled back: fails on a standby, a read-only database, a held lock.
                tx = conn.transaction()
                await tx.start()
                try:
                    await conn.execute("SET LOCAL lock_timeout = '1s'")
                    await conn.execute("UPDATE schema_version SET version = version")
                finally:
                    await tx.rollback()
                return True
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
            return False

    # plumbing -------------------------------------------------------------

    @property
    def _db(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("PostgresStore is not open")
        return self._pool

    async def _transaction(self, what: str, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """`fn(connection)` inside one transaction. A deadlock or serialization failure rolls
        the whole transaction back, so it is run again from the start (re-reading what it
        read), up to TX_ATTEMPTS times in all; `fn` must not change anything outside the
        database that a second run would repeat."""
        attempt = 1
        while True:
            try:
                async with self._db.acquire() as conn, conn.transaction():
                    return await fn(conn)
            except _RETRYABLE as exc:
                if attempt >= TX_ATTEMPTS:
                    raise
                log.info("store.transaction_retried", method=what, attempt=attempt, error=type(exc).__name__)
                await asyncio.sleep(random.uniform(0.5, 1.5) * TX_RETRY_PAUSE * attempt)
                attempt += 1

    def _decode_job(self, row: asyncpg.Record | None) -> Job | None:
        if row is None:
            return None
        job = self._job.decode(row["doc"])
        job.version = row["version"]  # the columns are authoritative
        job.slot = SlotRef.parse(row["slot"])
        return job

    def _decode_jobs(self, rows: list[asyncpg.Record]) -> list[Job]:
        return [self._decode_job(r) for r in rows]  # type: ignore[misc]

    def _delivery_row(self, d: WebhookDelivery) -> tuple[Any, ...]:
        # A pending delivery with no time set is due from its creation.
        due = d.next_attempt_at if d.next_attempt_at is not None else d.created_at
        return (d.id, d.job_id, d.tenant, d.status, due, d.url, self._enc.encode(d))

    # jobs -----------------------------------------------------------------

    async def create_job(self, job: Job, *, lease: Lease | None = None) -> Job:
        """Insert `job` (held by `lease.owner` when a lease is given), or return the tenant's
        existing job with the same idempotency key.

        The caller tells the two apart by comparing ids. Any other clash
        (duplicate id or callback token) raises `asyncpg.UniqueViolationError`.
        """
        [created] = await self.create_jobs([(job, lease)])
        return created

    async def create_jobs(self, items: Sequence[tuple[Job, Lease | None]]) -> list[Job]:
        """`create_job` for each item, in order, in one transaction and one `INSERT` (rows in
        the items' order, so `created_seq` follows it). `ON CONFLICT DO NOTHING` on the
        idempotency key skips a row whose key is taken, by a stored job, by a racing insert
        (once it commits) or by an earlier row of this batch; those items get the job that
        holds the key. The holders' heartbeat rows are written first (see `claim_jobs`)."""
        results: list[Job | None] = [None] * len(items)
        pending = list(range(len(items)))
        while pending:
            batch = [items[i] for i in pending]
            inserted = await self._insert_jobs(batch)
            taken = [(i, job) for i, (job, _) in zip(pending, batch, strict=True) if job.id not in inserted]
            for i, (job, _) in zip(pending, batch, strict=True):
                if job.id in inserted:
                    results[i] = job
            holders: dict[tuple[str, str], Job] = {}
            if taken:
                rows = await self._db.fetch(
                    f"""SELECT tenant, idempotency_key, {_JOB_COLUMNS} FROM jobs
                        WHERE (tenant, idempotency_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))""",
                    [job.tenant for _, job in taken],
                    [job.idempotency_key for _, job in taken],
                )
                holders = {(r["tenant"], r["idempotency_key"]): self._decode_job(r) for r in rows}  # type: ignore[misc]
            pending = []
            for i, job in taken:
                holder = holders.get((job.tenant, job.idempotency_key or ""))
                if holder is not None:
                    results[i] = holder
                else:  # the key's job was deleted since: the key is free again
                    pending.append(i)
        return [r for r in results if r is not None]

    async def _insert_jobs(self, items: Sequence[tuple[Job, Lease | None]]) -> set[str]:
        """Insert what does not clash on an idempotency key; the ids inserted."""
        columns: list[list[Any]] = [[] for _ in range(13)]
        owners: dict[str, float] = {}
        for job, lease in items:
            values = (
                job.id,
                job.tenant,
                _value(job.status),
                job.provider,
                job.model,
                job.created_at,
                job.idempotency_key,
                job.request_hash,
                job.callback_token,
                job.version,
                self._enc.encode(job),
                lease.owner if lease else None,
                job.slot.key if job.slot else None,
            )
            for column, value in zip(columns, values, strict=True):
                column.append(value)
            if lease is not None:
                owners[lease.owner] = max(lease.until, owners.get(lease.owner, lease.until))

        async def insert(conn: asyncpg.Connection) -> set[str]:
            for owner in sorted(owners):  # `owners` rows before job rows, in order
                await conn.execute(_KEEP_OWNER, owner, owners[owner])
            rows = await conn.fetch(
                """INSERT INTO jobs (id, tenant, status, provider, model, created_at, idempotency_key,
                       request_hash, callback_token, version, doc, lease_owner, slot)
                   SELECT id, tenant, status, provider, model, created_at, idempotency_key,
                       request_hash, callback_token, version, doc, lease_owner, slot
                   FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::text[],
                       $8::text[], $9::text[], $10::bigint[], $11::bytea[], $12::text[], $13::text[])
                       WITH ORDINALITY AS u(id, tenant, status, provider, model, created_at, idempotency_key,
                           request_hash, callback_token, version, doc, lease_owner, slot, n)
                   ORDER BY n
                   ON CONFLICT (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
                   RETURNING id""",
                *columns,
            )
            return {r["id"] for r in rows}

        return await self._transaction("create_jobs", insert)

    async def find_recent_duplicate(self, tenant: str, request_hash: str, since: float) -> Job | None:
        """The tenant's newest job with this request hash created at or after `since`."""
        return self._decode_job(
            await self._db.fetchrow(
                f"""SELECT {_JOB_COLUMNS} FROM jobs WHERE tenant = $1 AND request_hash = $2 AND created_at >= $3
                    ORDER BY created_at DESC, created_seq DESC LIMIT 1""",
                tenant,
                request_hash,
                since,
            )
        )

    async def find_idempotent(self, tenant: str, idempotency_key: str) -> Job | None:
        """The tenant's job created with this idempotency key, if any."""
        if _nul(tenant, idempotency_key):
            return None
        return self._decode_job(await self._db.fetchrow(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE tenant = $1 AND idempotency_key = $2", tenant, idempotency_key))

    async def get_job(self, job_id: str, tenant: str | None = None) -> Job | None:
        """The job, or None if it does not exist or belongs to another tenant."""
        if _nul(job_id, tenant):
            return None
        return self._decode_job(await self._db.fetchrow(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = $1 AND ($2::text IS NULL OR tenant = $2)", job_id, tenant))

    async def get_by_callback_token(self, token: str) -> Job | None:
        if _nul(token):
            return None
        return self._decode_job(await self._db.fetchrow(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE callback_token = $1", token))

    async def update_job(self, job: Job, *, deliveries: Sequence[WebhookDelivery] = ()) -> Job:
        """Write `job` if nobody wrote it since it was read; returns a copy with `version + 1`.

        `deliveries` are inserted in the same transaction (an already stored id is
        skipped). The argument is not modified: keep the returned job for the next
        update. Raises `StaleJob` (and inserts nothing) if the version moved on or
        the job no longer exists.
        """
        [written] = await self.update_jobs([JobWrite(job, deliveries=deliveries)])
        if written is None:
            raise StaleJob(job.id)
        return written

    async def update_jobs(self, writes: Sequence[JobWrite]) -> list[Job | None]:
        """Write many jobs in one transaction and one statement (a group commit), each
        version-checked on its own: the written job (version + 1), or None where the version
        had moved on or the job is gone, in which case its deliveries and event are not stored."""
        if not writes:
            return []
        updated = [msgspec.structs.replace(w.job, version=w.job.version + 1) for w in writes]
        columns: list[list[Any]] = [[] for _ in range(9)]
        for w, u in zip(writes, updated, strict=True):
            for column, value in zip(
                columns,
                (u.id, w.job.version, _value(u.status), u.provider, u.model, u.callback_token, u.version, u.slot.key if u.slot else None, self._enc.encode(u)),
                strict=True,
            ):
                column.append(value)

        async def update(conn: asyncpg.Connection) -> set[str]:
            await conn.execute("SELECT FROM jobs WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE", columns[0])  # the global lock order
            rows = await conn.fetch(
                """UPDATE jobs AS j SET status = u.status, provider = u.provider, model = u.model, callback_token = u.callback_token,
                       version = u.version, slot = u.slot, doc = u.doc
                   FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::bytea[])
                       AS u(id, expected, status, provider, model, callback_token, version, slot, doc)
                   WHERE j.id = u.id AND j.version = u.expected
                   RETURNING j.id""",
                *columns,
            )
            written = {r["id"] for r in rows}
            outbox = [self._delivery_row(d) for w in writes if w.job.id in written for d in w.deliveries]
            if outbox:
                await conn.executemany(f"{_INSERT_DELIVERY} ON CONFLICT (id) DO NOTHING", outbox)
            events = [(e.job_id, e.at, _value(e.status), e.progress, e.detail) for w in writes if w.job.id in written and (e := w.event) is not None]
            if events:
                await conn.executemany("INSERT INTO events (job_id, at, status, progress, detail) VALUES ($1, $2, $3, $4, $5)", events)
            return written

        written = await self._transaction("update_jobs", update)
        return [u if u.id in written else None for u in updated]

    async def acquire_slots(self, slot: str, limit: int, job_ids: Sequence[str]) -> list[str]:
        """Let up to `limit` active jobs hold `slot` in all; grants it to as many of `job_ids`
        (in order) as there is room for. A job that already holds this slot is granted again
        without taking room. An advisory lock per slot serializes the count and the grant
        across replicas, so N processes never exceed one account's `max_jobs`."""
        if not job_ids:
            return []

        async def acquire(conn: asyncpg.Connection) -> list[str]:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('vidgate-slot:' || $1))", slot)
            held = await conn.fetchval("SELECT count(*) FROM jobs WHERE slot = $1 AND status = ANY($2::text[])", slot, _ACTIVE)
            rows = await conn.fetch(
                "SELECT id, slot FROM jobs WHERE id = ANY($1::text[]) AND status = ANY($2::text[]) ORDER BY id FOR UPDATE", list(job_ids), _ACTIVE
            )
            current = {r["id"]: r["slot"] for r in rows}
            granted: list[str] = []
            fresh: list[str] = []
            for job_id in job_ids:
                if job_id not in current or current[job_id] not in (None, slot):
                    continue
                if current[job_id] is None:
                    if held >= limit:
                        continue
                    fresh.append(job_id)
                    held += 1
                granted.append(job_id)
            if fresh:
                await conn.execute("UPDATE jobs SET slot = $1 WHERE id = ANY($2::text[])", slot, fresh)
            return granted

        return await self._transaction("acquire_slots", acquire)

    async def slot_usage(self) -> dict[str, int]:
        """How many active jobs hold each slot, across every replica."""
        rows = await self._db.fetch("SELECT slot, count(*) AS n FROM jobs WHERE slot IS NOT NULL AND status = ANY($1::text[]) GROUP BY slot", _ACTIVE)
        return {r["slot"]: r["n"] for r in rows}

    async def delete_job(self, job_id: str, tenant: str) -> bool:
        """Remove the job and its events (its webhook deliveries stay as a record)."""
        if _nul(job_id, tenant):
            return False
        deleted = await self._db.fetchval("DELETE FROM jobs WHERE id = $1 AND tenant = $2 RETURNING id", job_id, tenant)
        return deleted is not None

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
        """One page of the tenant's jobs in creation order, and whether more follow.

        `after` is the id of the last job of the previous page; the page holds the
        jobs that come after it in `order`. An `after` that does not name one of
        this tenant's jobs raises `KeyError`.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if order not in ("asc", "desc"):
            raise ValueError("order must be 'asc' or 'desc'")
        if _nul(after):
            raise KeyError(after)
        if _nul(tenant, status, provider, model):  # no stored value holds one
            return [], False
        direction, compare = ("ASC", ">") if order == "asc" else ("DESC", "<")
        where: list[str] = ["tenant = $1"]
        args: list[object] = [tenant]
        for column, wanted in (("status", status), ("provider", provider), ("model", model)):
            if wanted is not None:
                args.append(_value(wanted))
                where.append(f"{column} = ${len(args)}")
        # One snapshot for the cursor lookup and the page.
        async with self._db.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            if after is not None:
                seq = await conn.fetchval("SELECT created_seq FROM jobs WHERE id = $1 AND tenant = $2", after, tenant)
                if seq is None:
                    raise KeyError(after)
                args.append(seq)
                where.append(f"created_seq {compare} ${len(args)}")
            args.append(limit + 1)
            rows = await conn.fetch(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE {' AND '.join(where)} ORDER BY created_seq {direction} LIMIT ${len(args)}",
                *args,
            )
        return self._decode_jobs(rows[:limit]), len(rows) > limit

    async def active_jobs(self) -> list[Job]:
        """Every job not completed, failed or cancelled, oldest first."""
        rows = await self._db.fetch(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE status = ANY($1::text[]) ORDER BY created_seq", _ACTIVE)
        return self._decode_jobs(rows)

    async def claim_jobs(self, lease: Lease, now: float, limit: int) -> list[Job]:
        """Hand up to `limit` unheld active jobs to `lease.owner`, oldest first: jobs with no
        holder, and jobs of owners whose heartbeat lapsed before `now` (the claimer's own
        included, after a stall). Owners that lose jobs are marked robbed; lapsed owners
        left holding no active job are forgotten.

        Lock order, the same in every transaction that touches both tables: `owners` rows
        first, sorted by owner, then job rows. The lapsed owners' rows (and the claimer's)
        are locked `FOR UPDATE`, so a heartbeat racing this claim either lands first (the
        owner is no longer lapsed when its row is re-checked) or waits and then finds itself
        robbed. A job row is taken `FOR UPDATE SKIP LOCKED`, so concurrent claimers get
        disjoint sets. A create takes its owner's row before inserting the job, and a row is
        deleted only while locked, after a fresh look finds no active job naming it: so every
        active job's holder has a row, and claims never need to look for jobs without one.
        The two lookups go through `jobs_lease_owner`: when every owner is alive and every
        job held, a claim reads no job row.
        """
        if limit < 1:
            return []

        async def claim(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            owners = await conn.fetch("SELECT owner, until FROM owners WHERE until < $1 OR owner = $2 ORDER BY owner FOR UPDATE", now, lease.owner)
            lapsed = [r["owner"] for r in owners if r["until"] < now]
            # Each lookup locks what it takes and skips what another claimer is taking, so
            # claimers racing for the same jobs each fill their `limit` from the rest.
            unheld = "lease_owner IS NULL AND status = ANY($1::text[])"
            found = await conn.fetch(
                f"SELECT id, lease_owner, created_seq FROM jobs WHERE {unheld} ORDER BY created_seq LIMIT $2 FOR UPDATE SKIP LOCKED", _ACTIVE, limit
            )
            if lapsed:
                found += await conn.fetch(
                    """SELECT id, lease_owner, created_seq FROM jobs WHERE lease_owner = ANY($1::text[]) AND status = ANY($2::text[])
                       ORDER BY created_seq LIMIT $3 FOR UPDATE SKIP LOCKED""",
                    lapsed,
                    _ACTIVE,
                    limit,
                )
            picked = sorted(found, key=lambda r: r["created_seq"])[:limit]
            rows: list[asyncpg.Record] = []
            if picked:
                rows = await conn.fetch(
                    f"UPDATE jobs SET lease_owner = $1 WHERE id = ANY($2::text[]) RETURNING created_seq, {_JOB_COLUMNS}", lease.owner, [r["id"] for r in picked]
                )
            robbed = {r["lease_owner"] for r in picked} - {None, lease.owner}
            if robbed:
                await conn.execute("UPDATE owners SET lost = true WHERE owner = ANY($1::text[])", list(robbed))
            if rows:
                await conn.execute(_KEEP_OWNER, lease.owner, lease.until)
            others = [owner for owner in lapsed if owner != lease.owner]
            if others:
                await conn.execute(
                    """DELETE FROM owners WHERE owner = ANY($1::text[])
                       AND NOT EXISTS (SELECT 1 FROM jobs WHERE lease_owner = owners.owner AND status = ANY($2::text[]))""",
                    others,
                    _ACTIVE,
                )
            return rows

        rows = await self._transaction("claim_jobs", claim)
        return self._decode_jobs(sorted(rows, key=lambda r: r["created_seq"]))

    async def heartbeat(self, lease: Lease) -> bool:
        """Extend `lease.owner`'s heartbeat to `lease.until` (one row of `owners`, whatever it
        holds); whether nothing was taken from it since the last one. The row is locked
        first, so a claim robbing this owner at the same moment finishes before it is read."""

        async def beat(conn: asyncpg.Connection) -> bool:
            lost = await conn.fetchval("SELECT lost FROM owners WHERE owner = $1 FOR UPDATE", lease.owner)
            await conn.execute(
                """INSERT INTO owners (owner, until, lost) VALUES ($1, $2, false)
                   ON CONFLICT (owner) DO UPDATE SET until = greatest(owners.until, excluded.until), lost = false""",
                lease.owner,
                lease.until,
            )
            return lost is False  # None: no row

        return await self._transaction("heartbeat", beat)

    async def held_by(self, owner: str, job_ids: Sequence[str]) -> set[str]:
        """Which of `job_ids` `owner` holds. A plain read: a claim that took one of them had
        the owner's row locked, so it committed before the heartbeat that sent the caller here."""
        if not job_ids or _nul(owner):
            return set()
        rows = await self._db.fetch("SELECT id FROM jobs WHERE lease_owner = $1 AND id = ANY($2::text[])", owner, list(job_ids))
        return {r["id"] for r in rows}

    async def release_leases(self, owner: str, job_ids: Sequence[str]) -> None:
        """Drop `owner`'s hold on these jobs, and its heartbeat once it holds no active job.
        The owner's row is locked first (the order of `claim_jobs`), so no create of this
        owner's can slip a job in between the check and the delete."""

        async def release(conn: asyncpg.Connection) -> None:
            await conn.execute("SELECT FROM owners WHERE owner = $1 FOR UPDATE", owner)
            if job_ids:
                await conn.execute("SELECT FROM jobs WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE", list(job_ids))
                await conn.execute("UPDATE jobs SET lease_owner = NULL WHERE lease_owner = $1 AND id = ANY($2::text[])", owner, list(job_ids))
            await conn.execute(
                "DELETE FROM owners WHERE owner = $1 AND NOT EXISTS (SELECT 1 FROM jobs WHERE lease_owner = $1 AND status = ANY($2::text[]))",
                owner,
                _ACTIVE,
            )

        await self._transaction("release_leases", release)

    async def jobs_since(self, tenant: str | None, since: float) -> list[Job]:
        """Every job created at or after `since` (all tenants when `tenant` is None), oldest first."""
        if _nul(tenant):
            return []
        rows = await self._db.fetch(
            f"""SELECT {_JOB_COLUMNS} FROM jobs WHERE created_at >= $1 AND ($2::text IS NULL OR tenant = $2)
                ORDER BY created_at, created_seq""",
            since,
            tenant,
        )
        return self._decode_jobs(rows)

    async def add_event(self, event: StatusEvent) -> None:
        """Append a status event; `KeyError` if the job does not exist."""
        try:
            await self._db.execute(
                "INSERT INTO events (job_id, at, status, progress, detail) VALUES ($1, $2, $3, $4, $5)",
                event.job_id,
                event.at,
                _value(event.status),
                event.progress,
                event.detail,
            )
        except asyncpg.ForeignKeyViolationError as exc:
            raise KeyError(event.job_id) from exc

    async def events(self, job_id: str) -> list[StatusEvent]:
        """The job's events by time, ties in insertion order."""
        if _nul(job_id):
            return []
        rows = await self._db.fetch("SELECT job_id, at, status, progress, detail FROM events WHERE job_id = $1 ORDER BY at, seq", job_id)
        return [StatusEvent(**dict(r)) for r in rows]

    # files ----------------------------------------------------------------

    async def put_file(self, record: FileRecord, data: bytes | bytearray) -> FileRecord:
        """Store the record and its bytes in one transaction; returns it with `sha256`
        filled in. `record.bytes` must equal `len(data)`; a duplicate id raises
        `FileExistsError` and leaves the stored file untouched."""
        if record.bytes != len(data):
            raise ValueError(f"record says {record.bytes} bytes, got {len(data)}")
        if record.sha256 is None:
            digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
            record = msgspec.structs.replace(record, sha256=digest)
        async with self._db.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                """INSERT INTO files (id, tenant, created_at, doc) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (id) DO NOTHING RETURNING id""",
                record.id,
                record.tenant,
                record.created_at,
                self._enc.encode(record),
            )
            if inserted is None:
                raise FileExistsError(record.id)
            await conn.execute("INSERT INTO file_bytes (id, data) VALUES ($1, $2)", record.id, data)
        return record

    async def get_file(self, file_id: str, tenant: str | None = None) -> FileRecord | None:
        if _nul(file_id, tenant):
            return None
        doc = await self._db.fetchval("SELECT doc FROM files WHERE id = $1 AND ($2::text IS NULL OR tenant = $2)", file_id, tenant)
        return self._file.decode(doc) if doc is not None else None

    async def read_file(self, file_id: str) -> bytes:
        """The whole file; `KeyError` if there are no bytes under this id. No tenant check:
        call `get_file(id, tenant)` first."""
        if _nul(file_id):
            raise KeyError(file_id)
        data = await self._db.fetchval("SELECT data FROM file_bytes WHERE id = $1", file_id)
        if data is None:
            raise KeyError(file_id)
        return data

    async def delete_file(self, file_id: str) -> bool:
        """Remove the record and (by the foreign key's cascade) its bytes."""
        if _nul(file_id):
            return False
        return await self._db.fetchval("DELETE FROM files WHERE id = $1 RETURNING id", file_id) is not None

    async def stream_file(self, file_id: str, chunk_size: int = 65536) -> AsyncIterator[bytes]:
        """The file in chunks of at most `chunk_size`, one query per chunk, so a slow
        reader holds no connection between chunks.

        `KeyError` (on first iteration) if there are no bytes under this id.
        """
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        if _nul(file_id):
            raise KeyError(file_id)
        size = await self._db.fetchval("SELECT octet_length(data) FROM file_bytes WHERE id = $1", file_id)
        if size is None:
            raise KeyError(file_id)
        for offset in range(0, size, chunk_size):
            chunk = await self._db.fetchval("SELECT substring(data FROM $2 FOR $3) FROM file_bytes WHERE id = $1", file_id, offset + 1, chunk_size)
            if chunk is None:
                raise KeyError(file_id)
            yield chunk

    # webhooks -------------------------------------------------------------

    async def add_delivery(self, delivery: WebhookDelivery) -> None:
        """Record a new delivery. `next_attempt_at=None` means due at `created_at`."""
        await self._db.execute(_INSERT_DELIVERY, *self._delivery_row(delivery))

    async def update_delivery(self, delivery: WebhookDelivery) -> None:
        """Overwrite a delivery by id (ending any claim on it); `KeyError` if it does not exist."""
        id_, _job, _tenant, status, due, _url, doc = self._delivery_row(delivery)
        updated = await self._db.fetchval(
            "UPDATE deliveries SET status = $2, next_attempt_at = $3, claimed_until = NULL, doc = $4 WHERE id = $1 RETURNING id",
            id_,
            status,
            due,
            doc,
        )
        if updated is None:
            raise KeyError(id_)

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
        """Pending deliveries due at `now`, earliest first (ties in insertion order), each
        pushed to `lease_until` and marked claimed by the same statement; `FOR UPDATE SKIP
        LOCKED` makes concurrent claimers take disjoint sets. Deliveries of `skip_tenants`
        or to `skip_urls` are left, and at most `per_tenant` / `per_url` of one tenant / URL
        taken (ranked first: PostgreSQL locks no rows in a query with window functions).
        Uncapped, the rank passes everything, so a claim passes over rows another claim has
        locked instead of finding its tenant's first `limit` all taken. The stored doc is not
        changed."""
        if limit < 1:
            return []
        rows = await self._db.fetch(
            """WITH ranked AS (
                   SELECT seq,
                       ROW_NUMBER() OVER (PARTITION BY tenant ORDER BY next_attempt_at, seq) AS nth_of_tenant,
                       ROW_NUMBER() OVER (PARTITION BY url ORDER BY next_attempt_at, seq) AS nth_of_url
                   FROM deliveries
                   WHERE status = 'pending' AND next_attempt_at <= $1
                       AND tenant <> ALL($4::text[]) AND url <> ALL($5::text[])),
               due AS (
                   SELECT d.seq, d.next_attempt_at FROM deliveries d JOIN ranked r ON r.seq = d.seq
                   WHERE r.nth_of_tenant <= $6 AND r.nth_of_url <= $7 AND d.status = 'pending' AND d.next_attempt_at <= $1
                   ORDER BY d.next_attempt_at, d.seq LIMIT $3
                   FOR UPDATE OF d SKIP LOCKED)
               UPDATE deliveries SET next_attempt_at = $2, claimed_until = $2 FROM due WHERE deliveries.seq = due.seq
               RETURNING due.next_attempt_at AS was_due, due.seq, deliveries.doc""",
            now,
            lease_until,
            limit,
            list(skip_tenants),
            list(skip_urls),
            per_tenant or _UNCAPPED,
            per_url or _UNCAPPED,
        )
        rows = sorted(rows, key=lambda r: (r["was_due"], r["seq"]))
        return [self._delivery.decode(r["doc"]) for r in rows]

    async def record_attempt(self, delivery_id: str, attempt: DeliveryAttempt | None, outcome: DeliveryOutcome) -> WebhookDelivery:
        """Append `attempt` (None: nothing was sent) to the stored log, count it, set
        `outcome` and end the claim, on the row locked for the transaction: every request
        sent is one entry, whatever else wrote the delivery meanwhile."""
        if _nul(delivery_id):
            raise KeyError(delivery_id)
        async with self._db.acquire() as conn, conn.transaction():
            doc = await conn.fetchval("SELECT doc FROM deliveries WHERE id = $1 FOR UPDATE", delivery_id)
            if doc is None:
                raise KeyError(delivery_id)
            updated = outcome.applied(self._delivery.decode(doc), attempt)
            _, _, _, status, due, _, new_doc = self._delivery_row(updated)
            await conn.execute(
                "UPDATE deliveries SET status = $2, next_attempt_at = $3, claimed_until = NULL, doc = $4 WHERE id = $1", delivery_id, status, due, new_doc
            )
        return updated

    async def defer_deliveries(self, delivery_ids: Sequence[str], until: float) -> None:
        """Give claimed deliveries back unattempted, due again at `until`."""
        if not delivery_ids:
            return

        async def defer(conn: asyncpg.Connection) -> None:
            await conn.execute("SELECT FROM deliveries WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE", list(delivery_ids))
            await conn.execute(
                "UPDATE deliveries SET next_attempt_at = $2, claimed_until = NULL WHERE id = ANY($1::text[]) AND status = 'pending'",
                list(delivery_ids),
                until,
            )

        await self._transaction("defer_deliveries", defer)

    async def requeue_delivery(self, delivery_id: str, tenant: str, now: float) -> WebhookDelivery:
        """Make the tenant's delivery pending and due at `now`; `DeliveryInFlight` while an
        attempt at it is under way (claimed, the claim not lapsed); `KeyError` if none."""
        if _nul(delivery_id, tenant):
            raise KeyError(delivery_id)
        async with self._db.acquire() as conn, conn.transaction():
            row = await conn.fetchrow("SELECT doc, claimed_until FROM deliveries WHERE id = $1 AND tenant = $2 FOR UPDATE", delivery_id, tenant)
            if row is None:
                raise KeyError(delivery_id)
            if row["claimed_until"] is not None and row["claimed_until"] > now:
                raise DeliveryInFlight(delivery_id)
            updated = msgspec.structs.replace(self._delivery.decode(row["doc"]), status="pending", next_attempt_at=now)
            await conn.execute(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = $2, doc = $3 WHERE id = $1", delivery_id, now, self._enc.encode(updated)
            )
        return updated

    async def get_delivery(self, delivery_id: str, tenant: str | None = None) -> WebhookDelivery | None:
        if _nul(delivery_id, tenant):
            return None
        doc = await self._db.fetchval("SELECT doc FROM deliveries WHERE id = $1 AND ($2::text IS NULL OR tenant = $2)", delivery_id, tenant)
        return self._delivery.decode(doc) if doc is not None else None

    async def deliveries(self, job_id: str) -> list[WebhookDelivery]:
        """Every delivery for the job, in insertion order."""
        if _nul(job_id):
            return []
        rows = await self._db.fetch("SELECT doc FROM deliveries WHERE job_id = $1 ORDER BY seq", job_id)
        return [self._delivery.decode(r["doc"]) for r in rows]

    async def disable_endpoint(self, tenant: str, url: str, reason: str, at: float) -> None:
        """Stop delivering to this tenant's URL; disabling it again records the new reason."""
        await self._db.execute(
            """INSERT INTO disabled_endpoints (tenant, url, reason, at) VALUES ($1, $2, $3, $4)
               ON CONFLICT (tenant, url) DO UPDATE SET reason = excluded.reason, at = excluded.at""",
            tenant,
            url,
            reason,
            at,
        )

    async def endpoint_disabled(self, tenant: str, url: str) -> str | None:
        return await self._db.fetchval("SELECT reason FROM disabled_endpoints WHERE tenant = $1 AND url = $2", tenant, url)

    async def enable_endpoint(self, tenant: str, url: str) -> bool:
        lifted = await self._db.fetchval("DELETE FROM disabled_endpoints WHERE tenant = $1 AND url = $2 RETURNING url", tenant, url)
        return lifted is not None

    # comparisons ------------------------------------------------------------

    async def put_comparison(self, comparison: Comparison) -> Comparison:
        """Insert `comparison`, or return the stored one with the same id or the same
        (tenant, idempotency key): the first write wins, so a replay gets the original."""
        c = comparison
        inserted = await self._db.fetchval(
            """INSERT INTO comparisons (id, tenant, created_at, idempotency_key, doc) VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT DO NOTHING RETURNING id""",
            c.id,
            c.tenant,
            c.created_at,
            c.idempotency_key,
            self._enc.encode(c),
        )
        if inserted is not None:
            return comparison
        stored = await self._db.fetchval(
            """SELECT doc FROM comparisons WHERE id = $1 OR (tenant = $2 AND idempotency_key = $3)
               ORDER BY id = $1 DESC LIMIT 1""",
            c.id,
            c.tenant,
            c.idempotency_key,
        )
        if stored is None:  # comparisons are never deleted, so the clash is still there
            raise RuntimeError(f"comparison {c.id} clashed with a row that is gone")
        return self._comparison.decode(stored)

    async def get_comparison(self, comparison_id: str, tenant: str) -> Comparison | None:
        """The comparison, or None if it does not exist or belongs to another tenant."""
        if _nul(comparison_id, tenant):
            return None
        doc = await self._db.fetchval("SELECT doc FROM comparisons WHERE id = $1 AND tenant = $2", comparison_id, tenant)
        return self._comparison.decode(doc) if doc is not None else None

    async def find_comparison(self, tenant: str, idempotency_key: str) -> Comparison | None:
        if _nul(tenant, idempotency_key):
            return None
        doc = await self._db.fetchval("SELECT doc FROM comparisons WHERE tenant = $1 AND idempotency_key = $2", tenant, idempotency_key)
        return self._comparison.decode(doc) if doc is not None else None

    async def vote_comparison(self, comparison_id: str, tenant: str, vote: ComparisonVote) -> Comparison | None:
        """Set the vote if there is none yet (the row locked between read and write); the stored comparison."""
        async with self._db.acquire() as conn, conn.transaction():
            doc = await conn.fetchval("SELECT doc FROM comparisons WHERE id = $1 AND tenant = $2 FOR UPDATE", comparison_id, tenant)
            if doc is None:
                return None
            stored = self._comparison.decode(doc)
            if stored.vote is None:
                stored.vote = vote
                await conn.execute("UPDATE comparisons SET doc = $2 WHERE id = $1", comparison_id, self._enc.encode(stored))
            return stored

    async def comparisons_since(self, tenant: str | None, since: float) -> list[Comparison]:
        rows = await self._db.fetch(
            "SELECT doc FROM comparisons WHERE ($1::text IS NULL OR tenant = $1) AND created_at >= $2 ORDER BY created_at, id", tenant, since
        )
        return [self._comparison.decode(r["doc"]) for r in rows]
