"""The default durable store: one SQLite file in WAL mode, plus a directory of file bytes.

Threading model. Four connections: the writer's, a reader's, the event loop's own read
connection, and the checkpointer's.

- Small writes run on the event loop, in the caller's turn. A small write declares at most
  INLINE_WRITE_ROWS rows: a job's step, a group commit of a few jobs, a webhook attempt.
- Every other write runs on the writer's dedicated thread, in submission order:
  - a write that declares no size, or more rows;
  - any write asked for while others are queued there;
  - any write from a thread other than the one that opened the store.
- One lock (`_conn_lock`) keeps the loop and the thread from ever touching the writer's
  connection at once.
- A store call always yields to the loop once before it returns, as it did when every call
  went to a thread, so a loop of store calls cannot starve other tasks.
- Why small writes stay on the loop: a statement holds the GIL for its Python side either
  way. On a thread, every step would also release the GIL and take it back from a busy loop.
  Measured end to end, that handoff cost more CPU than the statements themselves
  (bench/README.md).
- A write on the loop never waits. Its connection's busy timeout is 0, so a write lock held
  by another process makes the transaction fail at once. It is then rolled back and run
  again on the thread, which waits up to BUSY_TIMEOUT_MS for the lock. This is why a
  write's function touches nothing but the database.

Reads that stand alone run on a snapshot of everything committed so far and never wait for
the writer (WAL lets a reader run beside it). A caller reads its own writes, since a write
returns once committed.

- Point reads (a job by id, a file record, a delivery) run on the loop's connection.
- Everything else (a page of jobs, a job's events, stats) runs on the reader's thread, so a
  big read never holds the loop.

Reads that decide a write (an idempotent insert finding the existing job, a lease claim)
run inside the write's transaction. A webhook claim chooses on a read snapshot and then
takes only what is still due (`claim_deliveries` says why).

Checkpoints (and their fsyncs) run on the checkpointer's thread, never in a commit.

Several processes may share the file:
- WAL lets readers run beside the writer;
- every write transaction is `BEGIN IMMEDIATE` (it takes the write lock up front instead of
  failing on a late upgrade);
- `update_job` is optimistic (`version`), so a lost race raises `StaleJob` rather than
  overwriting.

File bytes never pass through the database's connections. They are written, read and
streamed on the default executor (`asyncio.to_thread`), one call per chunk, so a large
upload or download does not stall job bookkeeping.

A caller cancelled while its call runs on the writer's thread does not undo it: the
statement finishes (and commits) regardless.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import hashlib
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec
import structlog

from gateway.jobs.legacy import is_legacy, upgrade_job_doc
from gateway.jobs.model import Comparison, ComparisonVote, DeliveryAttempt, FileRecord, Job, SlotRef, StatusEvent, WebhookDelivery
from gateway.jobs.store import DeliveryInFlight, DeliveryOutcome, JobWrite, Lease, StaleJob, outages_raise_store_unavailable
from providers.base import JobStatus

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5000
# A write of at most this many rows runs on the event loop when it need not wait (`_write`):
# its statements hold the GIL for a few tens of microseconds a row either way, and on the
# writer's thread every statement's step would also hand the GIL over and back.
INLINE_WRITE_ROWS = 32
# A WAL checkpoint is asked for at most every CHECKPOINT_SECONDS, once CHECKPOINT_COMMITS
# commits wait in the WAL; fewer (an idle process's heartbeats, one every 2 s) wait up to
# CHECKPOINT_IDLE_SECONDS, so an idle store does not fsync after every heartbeat.
CHECKPOINT_SECONDS = 1.0
CHECKPOINT_COMMITS = 64
CHECKPOINT_IDLE_SECONDS = 60.0
PROBE_BUSY_TIMEOUT_MS = 200  # the readiness probe's write waits this long for the lock
PING_TIMEOUT_SECONDS = 2.0  # the whole probe, queued behind other statements on the thread
_ACTIVE = tuple(s.value for s in JobStatus if not s.terminal)
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")


def _upgrade_requests(conn: sqlite3.Connection) -> None:
    rows = conn.execute("SELECT id, doc FROM jobs").fetchall()
    for job_id, doc in rows:
        decoded = msgspec.json.decode(doc)
        if is_legacy(decoded):
            conn.execute("UPDATE jobs SET doc = ? WHERE id = ?", (msgspec.json.encode(upgrade_job_doc(decoded)), job_id))


# Each entry moves the schema from version N-1 to N: SQL, or a function of the
# connection for a data migration. Append, never edit.
MIGRATIONS: tuple[tuple[str | Callable[[sqlite3.Connection], None], ...], ...] = (
    (
        """CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            status TEXT NOT NULL,
            provider TEXT,
            model TEXT NOT NULL,
            created_seq INTEGER NOT NULL UNIQUE,
            created_at REAL NOT NULL,
            idempotency_key TEXT,
            callback_token TEXT UNIQUE,
            version INTEGER NOT NULL,
            doc BLOB NOT NULL
        )""",
        "CREATE INDEX jobs_tenant_seq ON jobs (tenant, created_seq)",
        "CREATE INDEX jobs_status ON jobs (status)",
        """CREATE UNIQUE INDEX jobs_idempotency ON jobs (tenant, idempotency_key)
            WHERE idempotency_key IS NOT NULL""",
        """CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            at REAL NOT NULL,
            status TEXT NOT NULL,
            progress INTEGER NOT NULL,
            detail TEXT
        )""",
        "CREATE INDEX events_job ON events (job_id, at, seq)",
        """CREATE TABLE files (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            created_at REAL NOT NULL,
            doc BLOB NOT NULL
        )""",
        "CREATE INDEX files_tenant ON files (tenant, created_at)",
        """CREATE TABLE deliveries (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            job_id TEXT NOT NULL,
            tenant TEXT NOT NULL,
            status TEXT NOT NULL,
            next_attempt_at REAL NOT NULL,
            doc BLOB NOT NULL
        )""",
        "CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at, seq)",
        "CREATE INDEX deliveries_job ON deliveries (job_id, seq)",
    ),
    (
        """CREATE TABLE comparisons (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            created_at REAL NOT NULL,
            idempotency_key TEXT,
            doc BLOB NOT NULL
        )""",
        """CREATE UNIQUE INDEX comparisons_idempotency ON comparisons (tenant, idempotency_key)
            WHERE idempotency_key IS NOT NULL""",
        # /v1/stats reads a time window, per tenant or (admin) across all of them.
        "CREATE INDEX jobs_tenant_created ON jobs (tenant, created_at)",
        "CREATE INDEX jobs_created ON jobs (created_at)",
    ),
    (
        # Replicas divide active jobs by leases (gateway.jobs.store).
        "ALTER TABLE jobs ADD COLUMN lease_owner TEXT",
        "ALTER TABLE jobs ADD COLUMN lease_until REAL",
        "ALTER TABLE jobs ADD COLUMN request_hash TEXT",
        "CREATE INDEX jobs_request_hash ON jobs (tenant, request_hash, created_at)",
        """CREATE TABLE disabled_endpoints (
            tenant TEXT NOT NULL,
            url TEXT NOT NULL,
            reason TEXT NOT NULL,
            at REAL NOT NULL,
            PRIMARY KEY (tenant, url)
        )""",
    ),
    (
        # A job holds its provider slot (`SlotRef.key`); replicas count them here.
        "ALTER TABLE jobs ADD COLUMN slot TEXT",
        "CREATE INDEX jobs_slot ON jobs (slot) WHERE slot IS NOT NULL",
        _upgrade_requests,  # the typed stored request (gateway.jobs.legacy)
    ),
    (
        # Webhook delivery: who is attempting one and until when (so a redelivery can't start a
        # second attempt beside it), and its target, so claims can pass over busy receivers.
        "ALTER TABLE deliveries ADD COLUMN claimed_until REAL",
        "ALTER TABLE deliveries ADD COLUMN url TEXT NOT NULL DEFAULT ''",
        "UPDATE deliveries SET url = COALESCE(json_extract(CAST(doc AS TEXT), '$.url'), '')",
    ),
    (
        # Leases by heartbeat: a job names its holder, one row per process says until when
        # it holds them (gateway.jobs.store), so renewing costs one row, not one per job.
        # `lost`: another owner claimed some of its jobs since its last heartbeat.
        """CREATE TABLE owners (
            owner TEXT PRIMARY KEY,
            until REAL NOT NULL,
            lost INTEGER NOT NULL DEFAULT 0
        )""",
        # Every holder of an active job gets a heartbeat as long as its latest lease.
        """INSERT INTO owners (owner, until)
            SELECT lease_owner, COALESCE(MAX(lease_until), 0) FROM jobs
            WHERE lease_owner IS NOT NULL AND status IN ('queued', 'in_progress') GROUP BY lease_owner""",
        "ALTER TABLE jobs DROP COLUMN lease_until",
        # Claims look up unheld jobs and lapsed owners' jobs, never scanning every active job.
        "CREATE INDEX jobs_lease_owner ON jobs (lease_owner, status, created_seq)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_JOB_COLUMNS = "doc, version, slot"


def _value(v: Any) -> Any:
    return v.value if isinstance(v, enum.Enum) else v


_OUTAGES = ("locked", "readonly", "read-only", "disk i/o", "disk is full", "unable to open", "busy")
_OUTAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.EIO})


def _outage(exc: BaseException) -> str | None:
    """What keeps the store from writing, if `exc` is such a condition (see `StoreUnavailable`)."""
    if isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError) and not isinstance(exc, sqlite3.IntegrityError):
        message = str(exc).lower()
        return message if any(word in message for word in _OUTAGES) else None
    if isinstance(exc, OSError) and exc.errno in _OUTAGE_ERRNOS:
        return exc.strerror or str(exc)
    return None


log = structlog.get_logger("vidgate.store")


@outages_raise_store_unavailable(_outage)
class SqliteStore:
    """`Store` on one SQLite file.

    `files_dir` holds uploaded bytes, one file per id; it defaults to
    `<db dir>/<db stem>-files/`. Call `open()` before use and `close()` after.
    """

    def __init__(self, path: str | Path, *, files_dir: str | Path | None = None) -> None:
        self.path = Path(path)
        self.files_dir = Path(files_dir) if files_dir is not None else self.path.with_name(f"{self.path.stem}-files")
        self._executor: ThreadPoolExecutor | None = None  # the writer's thread
        self._conn: sqlite3.Connection | None = None
        self._reader: ThreadPoolExecutor | None = None  # the reader's thread
        self._read_conn: sqlite3.Connection | None = None
        # The thread that opened the store (its event loop's) may read and write small things
        # itself (`_read`, `_write`); the writer's connection is used under `_conn_lock`.
        self._loop_thread: int | None = None
        self._loop_read_conn: sqlite3.Connection | None = None
        self._conn_lock = threading.Lock()
        self._queued = 0  # calls queued or running on the writer's thread
        self._queued_lock = threading.Lock()
        # WAL checkpoints (their fsyncs) run on a thread of their own, not in the writer's
        # commits: a checkpoint there held every queued write (a create's answer among them)
        # for milliseconds. The writer asks for one at most every CHECKPOINT_SECONDS.
        self._checkpointer: ThreadPoolExecutor | None = None
        self._checkpoint_conn: sqlite3.Connection | None = None
        self._checkpoint_asked = 0.0  # time.monotonic() of the last ask (by whoever holds the writer's connection)
        self._commits_unasked = 0  # commits since then
        self.checkpoints = 0  # completed, for tests
        self._enc = msgspec.json.Encoder()
        self._job = msgspec.json.Decoder(Job)
        self._file = msgspec.json.Decoder(FileRecord)
        self._delivery = msgspec.json.Decoder(WebhookDelivery)
        self._comparison = msgspec.json.Decoder(Comparison)

    # lifecycle ------------------------------------------------------------

    async def open(self) -> None:
        if self._executor is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidgate-sqlite")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidgate-sqlite-read")
        self._checkpointer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidgate-sqlite-checkpoint")
        try:
            await self._submit(self._connect)  # creates and migrates the schema before anything reads it
            self._read_conn = await self._on_reader(self._connect_reader)
            self._loop_read_conn = self._connect_reader(busy_timeout_ms=0)  # a point read that would wait goes to the thread
            self._loop_thread = threading.get_ident()
            await asyncio.get_running_loop().run_in_executor(self._checkpointer, self._connect_checkpointer)
        except BaseException:
            await self._shut_down()
            raise

    async def close(self) -> None:
        if self._executor is None:
            return
        await self._shut_down()

    async def _shut_down(self) -> None:
        loop = asyncio.get_running_loop()
        reader, writer, checkpointer = self._reader, self._executor, self._checkpointer
        self._loop_thread = None  # nothing runs on the loop's connections from here on
        try:
            if checkpointer is not None:
                await loop.run_in_executor(checkpointer, self._disconnect_checkpointer)  # after any checkpoint queued there
            if reader is not None:
                await loop.run_in_executor(reader, self._disconnect_reader)
        finally:
            try:
                if self._loop_read_conn is not None:
                    self._loop_read_conn.close()
                    self._loop_read_conn = None
                if writer is not None:
                    await self._submit(self._disconnect)  # the last connection out checkpoints the rest
            finally:
                for pool in (checkpointer, reader, writer):
                    if pool is not None:
                        pool.shutdown(wait=True)
                self._executor = self._reader = self._checkpointer = None

    async def ping(self) -> bool:
        """Whether the store can write now: takes the write lock (waiting at most
        PROBE_BUSY_TIMEOUT_MS), writes a row in place and rolls back; False after
        PING_TIMEOUT_SECONDS in all. It runs on the writer's thread, behind the writes
        queued there: that is what it measures."""

        def probe(conn: sqlite3.Connection) -> bool:
            conn.execute(f"PRAGMA busy_timeout = {PROBE_BUSY_TIMEOUT_MS}")
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute("UPDATE schema_version SET version = version")
                finally:
                    conn.execute("ROLLBACK")
            finally:
                conn.execute("PRAGMA busy_timeout = 0")  # as `_write` expects it
            return True

        try:
            async with asyncio.timeout(PING_TIMEOUT_SECONDS):
                return await self._run(probe)
        except (sqlite3.Error, RuntimeError, TimeoutError):
            return False

    def _connect(self) -> None:
        # Opened on the writer's thread, used there and, for small writes, on the event loop:
        # never by both at once (whoever uses it holds `_conn_lock`).
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            _enable_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpointer's thread does them (_ask_checkpoint)
            conn.execute("PRAGMA foreign_keys = ON")
            self._migrate(conn)
            conn.execute("PRAGMA busy_timeout = 0")  # only the thread waits for the lock (`_write`)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _connect_reader(self, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
        # Used by one thread only (its opener's, or the loop's: `_read` checks), closed by any.
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=busy_timeout_ms / 1000, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
            conn.execute("PRAGMA query_only = ON")  # a write here would bypass the writer's order
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect_checkpointer(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._checkpoint_conn = conn

    def _disconnect_checkpointer(self) -> None:
        conn, self._checkpoint_conn = self._checkpoint_conn, None
        if conn is not None:
            conn.close()

    def _ask_checkpoint(self) -> None:
        """After a commit, holding the writer's connection: queue a checkpoint if none was asked for
        in the last CHECKPOINT_SECONDS and CHECKPOINT_COMMITS were made since (the WAL then holds
        about that long of writes), or CHECKPOINT_IDLE_SECONDS passed with fewer."""
        self._commits_unasked += 1
        now = time.monotonic()
        since = now - self._checkpoint_asked
        if self._checkpointer is None or since < CHECKPOINT_SECONDS or (self._commits_unasked < CHECKPOINT_COMMITS and since < CHECKPOINT_IDLE_SECONDS):
            return
        self._checkpoint_asked = now
        self._commits_unasked = 0
        with contextlib.suppress(RuntimeError):  # shutting down: the last connection out checkpoints
            self._checkpointer.submit(self._checkpoint)

    def _checkpoint(self) -> None:
        """PASSIVE: copies what it can without waiting for, or blocking, the writer or readers."""
        conn = self._checkpoint_conn
        if conn is None:
            return
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self.checkpoints += 1
        except sqlite3.Error as exc:  # the next ask tries again
            log.warning("store.checkpoint_failed", error=str(exc))

    def _disconnect_reader(self) -> None:
        conn, self._read_conn = self._read_conn, None
        if conn is not None:
            conn.close()

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute("PRAGMA optimize")
        finally:
            conn.close()

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            current = row[0] if row else 0
            if current > SCHEMA_VERSION:
                raise RuntimeError(f"database schema v{current} is newer than this vidgate (v{SCHEMA_VERSION})")
            for statements in MIGRATIONS[current:]:
                for step in statements:
                    if callable(step):
                        step(conn)
                    else:
                        conn.execute(step)
            if row is None:
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            else:
                conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # plumbing -------------------------------------------------------------

    async def _submit(self, fn: Callable[[], T]) -> T:
        """Run `fn()` on the writer's thread, after everything queued there."""
        if self._executor is None:
            raise RuntimeError("SqliteStore is not open")

        def run() -> T:
            with self._conn_lock:
                return fn()

        with self._queued_lock:
            self._queued += 1
        try:
            job = self._executor.submit(run)
        except BaseException:  # not queued (the executor is shutting down)
            self._dequeued()
            raise
        # Counted off when it has run, or when a cancelled caller took it off the queue unrun.
        job.add_done_callback(self._dequeued)
        return await asyncio.wrap_future(job)

    def _dequeued(self, _: object = None) -> None:
        with self._queued_lock:
            self._queued -= 1

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` on the writer's thread."""
        return await self._submit(lambda: fn(self._connection()))

    async def _on_reader(self, fn: Callable[[], T]) -> T:
        if self._reader is None:
            raise RuntimeError("SqliteStore is not open")
        return await asyncio.get_running_loop().run_in_executor(self._reader, fn)

    async def _read(self, fn: Callable[[sqlite3.Connection], T], *, point: bool = False) -> T:
        """`fn(connection)` on a snapshot of everything committed so far, never waiting for
        the writer. A `point` read (a lookup by a key: one row, or a handful) runs here on
        the event loop unless SQLite would make it wait; any other read, on the reader's thread."""
        conn = self._loop_read_conn
        if point and conn is not None and threading.get_ident() == self._loop_thread:
            try:
                result = fn(conn)
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
                # a lock held elsewhere (a recovery, an exclusive lock): wait for it on the thread
            else:
                await asyncio.sleep(0)  # a store call stays a point where other tasks run
                return result

        def run() -> T:
            if self._read_conn is None:
                raise RuntimeError("SqliteStore is not open")
            return fn(self._read_conn)

        return await self._on_reader(run)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("SqliteStore is not open")
        return self._conn

    async def _write(self, fn: Callable[[sqlite3.Connection], T], *, rows: int | None = None) -> T:
        """Run `fn(connection)` inside one write transaction. `fn` touches nothing but the
        database: a transaction that found the write lock held is rolled back and run again.

        A write of at most INLINE_WRITE_ROWS `rows` runs here on the event loop when nothing
        is queued on the writer's thread (writes keep their order) and the write lock is free
        at once; any other write, and one that would wait for the lock, runs on the thread."""
        if (
            rows is not None
            and rows <= INLINE_WRITE_ROWS
            and self._queued == 0
            and threading.get_ident() == self._loop_thread
            and self._conn_lock.acquire(blocking=False)
        ):
            held_elsewhere = False
            try:
                result = self._transaction(self._connection(), fn)  # busy_timeout is 0 here: no waiting
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
                held_elsewhere = True  # nothing was written
            finally:
                self._conn_lock.release()
            if not held_elsewhere:
                await asyncio.sleep(0)  # a store call stays a point where other tasks run
                return result

        def waiting_for_the_lock(conn: sqlite3.Connection) -> T:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            try:
                return self._transaction(conn, fn)
            finally:
                conn.execute("PRAGMA busy_timeout = 0")

        return await self._run(waiting_for_the_lock)

    def _transaction(self, conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
        """BEGIN IMMEDIATE, `fn(conn)`, COMMIT; ROLLBACK if anything fails on the way."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            result = fn(conn)
            conn.execute("COMMIT")  # may fail too (read-only, full): then nothing was written
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._ask_checkpoint()
        return result

    def _decode_job(self, row: tuple[bytes, int, str | None] | None) -> Job | None:
        if row is None:
            return None
        job = self._job.decode(row[0])
        job.version = row[1]  # the columns are authoritative
        job.slot = SlotRef.parse(row[2])
        return job

    def _job_row(self, job: Job) -> dict[str, Any]:
        return {
            "id": job.id,
            "tenant": job.tenant,
            "status": _value(job.status),
            "provider": job.provider,
            "model": job.model,
            "created_at": job.created_at,
            "idempotency_key": job.idempotency_key,
            "request_hash": job.request_hash,
            "callback_token": job.callback_token,
            "version": job.version,
            "slot": job.slot.key if job.slot else None,
            "doc": self._enc.encode(job),
        }

    # jobs -----------------------------------------------------------------

    async def create_job(self, job: Job, *, lease: Lease | None = None) -> Job:
        """Insert `job` (held by `lease.owner` when a lease is given), or return the tenant's
        existing job with the same idempotency key.

        The caller tells the two apart by comparing ids, and compares
        `request_hash` itself to decide whether a replay is a conflict.
        Any other clash (duplicate id or callback token) raises
        `sqlite3.IntegrityError`.
        """
        [created] = await self.create_jobs([(job, lease)])
        return created

    async def create_jobs(self, items: Sequence[tuple[Job, Lease | None]]) -> list[Job]:
        """`create_job` for each item, in order, in one write transaction: one commit (and
        one fsync of the WAL) for a whole burst of creates."""
        rows = [self._job_row(job) | {"lease_owner": lease.owner if lease else None} for job, lease in items]

        def insert(conn: sqlite3.Connection) -> list[Job]:
            out: list[Job] = []
            owners: dict[str, float] = {}
            for (job, lease), row in zip(items, rows, strict=True):
                try:
                    conn.execute(
                        """INSERT INTO jobs (id, tenant, status, provider, model, created_seq, created_at,
                               idempotency_key, request_hash, callback_token, version, slot, doc, lease_owner)
                           VALUES (:id, :tenant, :status, :provider, :model,
                               (SELECT COALESCE(MAX(created_seq), 0) + 1 FROM jobs), :created_at,
                               :idempotency_key, :request_hash, :callback_token, :version, :slot, :doc, :lease_owner)""",
                        row,
                    )
                except sqlite3.IntegrityError:
                    existing = self._find_idempotent(conn, job.tenant, job.idempotency_key) if job.idempotency_key is not None else None
                    if existing is None:
                        raise
                    out.append(existing)
                    continue
                if lease is not None:
                    owners[lease.owner] = max(lease.until, owners.get(lease.owner, lease.until))
                out.append(job)
            for owner, until in owners.items():
                _keep_owner(conn, Lease(owner, until))
            return out

        return await self._write(insert, rows=len(items)) if items else []

    async def find_recent_duplicate(self, tenant: str, request_hash: str, since: float) -> Job | None:
        """The tenant's newest job with this request hash created at or after `since`."""
        return await self._read(
            lambda conn: self._decode_job(
                conn.execute(
                    f"""SELECT {_JOB_COLUMNS} FROM jobs WHERE tenant = ? AND request_hash = ? AND created_at >= ?
                        ORDER BY created_at DESC, created_seq DESC LIMIT 1""",
                    (tenant, request_hash, since),
                ).fetchone()
            )
        )

    async def find_idempotent(self, tenant: str, idempotency_key: str) -> Job | None:
        """The tenant's job created with this idempotency key, if any."""
        return await self._read(lambda conn: self._find_idempotent(conn, tenant, idempotency_key), point=True)

    def _find_idempotent(self, conn: sqlite3.Connection, tenant: str, key: str) -> Job | None:
        return self._decode_job(conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE tenant = ? AND idempotency_key = ?", (tenant, key)).fetchone())

    async def get_job(self, job_id: str, tenant: str | None = None) -> Job | None:
        """The job, or None if it does not exist or belongs to another tenant."""
        return await self._read(
            lambda conn: self._decode_job(
                conn.execute(
                    f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ? AND (? IS NULL OR tenant = ?)",
                    (job_id, tenant, tenant),
                ).fetchone()
            ),
            point=True,
        )

    async def get_by_callback_token(self, token: str) -> Job | None:
        return await self._read(
            lambda conn: self._decode_job(conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE callback_token = ?", (token,)).fetchone()), point=True
        )

    async def update_job(self, job: Job, *, deliveries: Sequence[WebhookDelivery] = ()) -> Job:
        """Write `job` if nobody wrote it since it was read; returns a copy with `version + 1`.

        `deliveries` are inserted in the same transaction (an already stored id is
        skipped). The argument is not modified: keep the returned job for the next
        update. Raises `StaleJob` if the version moved on or the job no longer exists.
        """
        [written] = await self.update_jobs([JobWrite(job, deliveries=deliveries)])
        if written is None:
            raise StaleJob(job.id)
        return written

    async def update_jobs(self, writes: Sequence[JobWrite]) -> list[Job | None]:
        """Write many jobs in one transaction (a group commit), each version-checked on its
        own: the result holds the written job (version + 1), or None where the version had
        moved on or the job is gone, in which case its deliveries and event are not stored."""
        prepared = []
        for w in writes:
            updated = msgspec.structs.replace(w.job, version=w.job.version + 1)
            row = self._job_row(updated)
            row["expected"] = w.job.version
            prepared.append((updated, row, [self._delivery_row(d) for d in w.deliveries], w.event))

        def update(conn: sqlite3.Connection) -> list[Job | None]:
            out: list[Job | None] = []
            for updated, row, outbox, event in prepared:
                cur = conn.execute(
                    """UPDATE jobs SET status = :status, provider = :provider, model = :model,
                           callback_token = :callback_token, version = :version, slot = :slot, doc = :doc
                       WHERE id = :id AND version = :expected""",
                    row,
                )
                if cur.rowcount == 0:
                    out.append(None)
                    continue
                conn.executemany(
                    """INSERT INTO deliveries (id, job_id, tenant, status, next_attempt_at, url, doc)
                       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING""",
                    outbox,
                )
                if event is not None:
                    conn.execute(
                        "INSERT INTO events (job_id, at, status, progress, detail) VALUES (?, ?, ?, ?, ?)",
                        (event.job_id, event.at, _value(event.status), event.progress, event.detail),
                    )
                out.append(updated)
            return out

        return await self._write(update, rows=sum(1 + len(outbox) + (event is not None) for _, _, outbox, event in prepared))

    async def acquire_slots(self, slot: str, limit: int, job_ids: Sequence[str]) -> list[str]:
        """Let up to `limit` active jobs hold `slot` in all: grant it to as many of `job_ids`
        (in order) as there is room for, in one write transaction (which serializes every
        process on this file). Returns the ids granted. A job that already holds this slot is
        granted again without taking room; one that is no longer active or holds another
        slot is not granted."""
        marks = ", ".join("?" * len(_ACTIVE))

        def acquire(conn: sqlite3.Connection) -> list[str]:
            (held,) = conn.execute(f"SELECT count(*) FROM jobs WHERE slot = ? AND status IN ({marks})", (slot, *_ACTIVE)).fetchone()
            granted: list[str] = []
            for job_id in job_ids:
                row = conn.execute(f"SELECT slot FROM jobs WHERE id = ? AND status IN ({marks})", (job_id, *_ACTIVE)).fetchone()
                if row is None or (row[0] is not None and row[0] != slot):
                    continue
                if row[0] is None:
                    if held >= limit:
                        continue
                    conn.execute("UPDATE jobs SET slot = ? WHERE id = ?", (slot, job_id))
                    held += 1
                granted.append(job_id)
            return granted

        return await self._write(acquire, rows=len(job_ids))

    async def slot_usage(self) -> dict[str, int]:
        """How many active jobs hold each slot, across every process on this store."""
        marks = ", ".join("?" * len(_ACTIVE))
        rows = await self._read(
            lambda conn: conn.execute(f"SELECT slot, count(*) FROM jobs WHERE slot IS NOT NULL AND status IN ({marks}) GROUP BY slot", _ACTIVE).fetchall()
        )
        return {slot: n for slot, n in rows}

    async def delete_job(self, job_id: str, tenant: str) -> bool:
        """Remove the job and its events (its webhook deliveries stay as a record)."""

        def delete(conn: sqlite3.Connection) -> bool:
            return conn.execute("DELETE FROM jobs WHERE id = ? AND tenant = ?", (job_id, tenant)).rowcount > 0

        return await self._write(delete)  # on the thread: the job's events go with it

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
        this tenant's jobs (unknown, deleted, or another tenant's) raises
        `KeyError`, which the API answers as it would any unknown id.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if order not in ("asc", "desc"):
            raise ValueError("order must be 'asc' or 'desc'")
        wanted = {"status": status, "provider": provider, "model": model}
        filters = [(column, _value(v)) for column, v in wanted.items() if v is not None]
        direction, compare = ("ASC", ">") if order == "asc" else ("DESC", "<")

        def page(conn: sqlite3.Connection) -> tuple[list[Job], bool]:
            where = ["tenant = ?", *(f"{column} = ?" for column, _ in filters)]
            args: list[Any] = [tenant, *(v for _, v in filters)]
            conn.execute("BEGIN")  # one snapshot for the cursor lookup and the page
            try:
                if after is not None:
                    row = conn.execute("SELECT created_seq FROM jobs WHERE id = ? AND tenant = ?", (after, tenant)).fetchone()
                    if row is None:
                        raise KeyError(after)
                    where.append(f"created_seq {compare} ?")
                    args.append(row[0])
                rows = conn.execute(
                    f"SELECT {_JOB_COLUMNS} FROM jobs WHERE {' AND '.join(where)} ORDER BY created_seq {direction} LIMIT ?",
                    (*args, limit + 1),
                ).fetchall()
            finally:
                conn.execute("COMMIT")
            jobs = [self._decode_job(r) for r in rows[:limit]]
            return jobs, len(rows) > limit  # type: ignore[return-value]

        return await self._read(page)

    async def active_jobs(self) -> list[Job]:
        """Every job not completed, failed or cancelled, oldest first."""
        marks = ", ".join("?" * len(_ACTIVE))
        return await self._read(
            lambda conn: [
                self._decode_job(r)  # type: ignore[misc]
                for r in conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE status IN ({marks}) ORDER BY created_seq", _ACTIVE)
            ]
        )

    async def claim_jobs(self, lease: Lease, now: float, limit: int) -> list[Job]:
        """Hand up to `limit` unheld active jobs to `lease.owner`, oldest first: jobs with no
        holder, and jobs of owners whose heartbeat lapsed before `now` (the claimer's own
        included, after a stall). Owners that lose jobs are marked robbed; lapsed owners
        left holding no active job are forgotten.

        One `BEGIN IMMEDIATE` transaction holds the database's write lock throughout,
        so two processes never claim the same job, and a heartbeat runs wholly before
        or after a claim. Both lookups go through `jobs_lease_owner`: when every owner
        is alive and every job held, a claim reads no job row.
        """
        if limit < 1:
            return []
        marks = ", ".join("?" * len(_ACTIVE))

        def claim(conn: sqlite3.Connection) -> list[Job]:
            lapsed = [r[0] for r in conn.execute("SELECT owner FROM owners WHERE until < ?", (now,))]
            columns = f"created_seq, id, lease_owner, {_JOB_COLUMNS}"
            found = conn.execute(
                f"SELECT {columns} FROM jobs WHERE lease_owner IS NULL AND status IN ({marks}) ORDER BY created_seq LIMIT ?", (*_ACTIVE, limit)
            ).fetchall()
            for chunk in _chunks(lapsed, 400):
                owners = ", ".join("?" * len(chunk))
                found += conn.execute(
                    f"SELECT {columns} FROM jobs WHERE lease_owner IN ({owners}) AND status IN ({marks}) ORDER BY created_seq LIMIT ?",
                    (*chunk, *_ACTIVE, limit),
                ).fetchall()
            picked = sorted(found)[:limit]
            conn.executemany("UPDATE jobs SET lease_owner = ? WHERE id = ?", [(lease.owner, r[1]) for r in picked])
            robbed = {r[2] for r in picked} - {None, lease.owner}
            conn.executemany("UPDATE owners SET lost = 1 WHERE owner = ?", [(owner,) for owner in robbed])
            if picked:
                _keep_owner(conn, lease)
            conn.executemany(
                f"""DELETE FROM owners WHERE owner = ? AND owner <> ?
                    AND NOT EXISTS (SELECT 1 FROM jobs WHERE lease_owner = owners.owner AND status IN ({marks}))""",
                [(owner, lease.owner, *_ACTIVE) for owner in lapsed],
            )
            return [self._decode_job(r[3:]) for r in picked]  # type: ignore[misc]

        return await self._write(claim)

    async def heartbeat(self, lease: Lease) -> bool:
        """Extend `lease.owner`'s heartbeat to `lease.until` (a row of `owners`, whatever it
        holds); whether nothing was taken from it since the last one."""

        def beat(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT lost FROM owners WHERE owner = ?", (lease.owner,)).fetchone()
            conn.execute(
                """INSERT INTO owners (owner, until, lost) VALUES (?, ?, 0)
                   ON CONFLICT (owner) DO UPDATE SET until = max(until, excluded.until), lost = 0""",
                (lease.owner, lease.until),
            )
            return row is not None and not row[0]

        return await self._write(beat, rows=1)

    async def held_by(self, owner: str, job_ids: Sequence[str]) -> set[str]:
        """Which of `job_ids` `owner` holds. Read from the last commit: a claim that took one
        committed before the heartbeat that sent the caller here."""

        def held(conn: sqlite3.Connection) -> set[str]:
            out: set[str] = set()
            for chunk in _chunks(list(job_ids), 500):
                ids = ", ".join("?" * len(chunk))
                out.update(r[0] for r in conn.execute(f"SELECT id FROM jobs WHERE lease_owner = ? AND id IN ({ids})", (owner, *chunk)))
            return out

        return await self._read(held) if job_ids else set()

    async def release_leases(self, owner: str, job_ids: Sequence[str]) -> None:
        """Drop `owner`'s hold on these jobs, and its heartbeat once it holds no active job."""
        marks = ", ".join("?" * len(_ACTIVE))

        def release(conn: sqlite3.Connection) -> None:
            for chunk in _chunks(list(job_ids), 500):
                ids = ", ".join("?" * len(chunk))
                conn.execute(f"UPDATE jobs SET lease_owner = NULL WHERE lease_owner = ? AND id IN ({ids})", (owner, *chunk))
            conn.execute(
                f"DELETE FROM owners WHERE owner = ? AND NOT EXISTS (SELECT 1 FROM jobs WHERE lease_owner = ? AND status IN ({marks}))",
                (owner, owner, *_ACTIVE),
            )

        await self._write(release, rows=len(job_ids))

    async def jobs_since(self, tenant: str | None, since: float) -> list[Job]:
        """Every job created at or after `since` (all tenants when `tenant` is None), oldest first."""
        where, args = ("created_at >= ?", (since,)) if tenant is None else ("tenant = ? AND created_at >= ?", (tenant, since))
        return await self._read(
            lambda conn: [
                self._decode_job(r)  # type: ignore[misc]
                for r in conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE {where} ORDER BY created_at, created_seq", args)
            ]
        )

    async def add_event(self, event: StatusEvent) -> None:
        """Append a status event; `KeyError` if the job does not exist."""

        def insert(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO events (job_id, at, status, progress, detail) VALUES (?, ?, ?, ?, ?)",
                    (event.job_id, event.at, _value(event.status), event.progress, event.detail),
                )
            except sqlite3.IntegrityError as exc:
                raise KeyError(event.job_id) from exc

        await self._write(insert, rows=1)

    async def events(self, job_id: str) -> list[StatusEvent]:
        """The job's events by time, ties in insertion order."""
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT job_id, at, status, progress, detail FROM events WHERE job_id = ? ORDER BY at, seq",
                (job_id,),
            ).fetchall()
        )
        return [StatusEvent(job_id=j, at=at, status=s, progress=p, detail=d) for j, at, s, p, d in rows]

    # files ----------------------------------------------------------------

    def _file_path(self, file_id: str) -> Path:
        if not _SAFE_ID.match(file_id) or file_id.startswith("."):
            raise ValueError(f"unsafe file id {file_id!r}")
        return self.files_dir / file_id

    def _stored_path(self, file_id: str) -> Path:
        """Where a stored file's bytes are; `KeyError` for an id no file can have."""
        try:
            return self._file_path(file_id)
        except ValueError:
            raise KeyError(file_id) from None

    async def put_file(self, record: FileRecord, data: bytes | bytearray) -> FileRecord:
        """Store the bytes, then the record; returns it with `sha256` filled in.

        The bytes go to a temporary file (fsynced) and are renamed into place
        inside the transaction that inserts the row, so a visible row always
        has its bytes. `record.bytes` must equal `len(data)`; a duplicate id
        raises `FileExistsError` and leaves the existing file untouched.
        """
        if record.bytes != len(data):
            raise ValueError(f"record says {record.bytes} bytes, got {len(data)}")
        final = self._file_path(record.id)
        tmp = self.files_dir / f".tmp-{record.id}-{uuid.uuid4().hex}"
        digest = await asyncio.to_thread(_write_temp, tmp, data)
        if record.sha256 is None:
            record = msgspec.structs.replace(record, sha256=digest)
        doc = self._enc.encode(record)

        def insert(conn: sqlite3.Connection) -> FileRecord:
            try:
                conn.execute(
                    "INSERT INTO files (id, tenant, created_at, doc) VALUES (?, ?, ?, ?)",
                    (record.id, record.tenant, record.created_at, doc),
                )
            except sqlite3.IntegrityError as exc:
                raise FileExistsError(record.id) from exc
            os.replace(tmp, final)
            moved.append(final)
            return record

        moved: list[Path] = []
        try:
            return await self._write(insert)  # on the thread: it renames the bytes into place
        except BaseException:
            for path in moved:  # the commit failed after the bytes went into place: no record, no bytes
                path.unlink(missing_ok=True)
            raise
        finally:
            tmp.unlink(missing_ok=True)

    async def get_file(self, file_id: str, tenant: str | None = None) -> FileRecord | None:
        row = await self._read(
            lambda conn: conn.execute("SELECT doc FROM files WHERE id = ? AND (? IS NULL OR tenant = ?)", (file_id, tenant, tenant)).fetchone(), point=True
        )
        return self._file.decode(row[0]) if row else None

    async def read_file(self, file_id: str) -> bytes:
        """The whole file; `KeyError` if there are no bytes under this id. No tenant check:
        call `get_file(id, tenant)` first."""
        try:
            return await asyncio.to_thread(self._stored_path(file_id).read_bytes)
        except FileNotFoundError as exc:
            raise KeyError(file_id) from exc

    async def delete_file(self, file_id: str) -> bool:
        """Remove the record, then the bytes (a record never points at missing bytes for
        longer than this call)."""
        try:
            path = self._stored_path(file_id)
        except KeyError:
            return False
        found = await self._write(lambda conn: conn.execute("DELETE FROM files WHERE id = ?", (file_id,)).rowcount > 0, rows=1)
        await asyncio.to_thread(path.unlink, missing_ok=True)
        return found

    async def stream_file(self, file_id: str, chunk_size: int = 65536) -> AsyncIterator[bytes]:
        """The file in chunks of at most `chunk_size`, each read on a worker thread.

        `KeyError` (on first iteration) if there are no bytes under this id.
        """
        path = self._stored_path(file_id)
        try:
            f = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError as exc:
            raise KeyError(file_id) from exc
        try:
            while chunk := await asyncio.to_thread(f.read, chunk_size):
                yield chunk
        finally:
            f.close()

    # webhooks -------------------------------------------------------------

    def _delivery_row(self, d: WebhookDelivery) -> tuple[Any, ...]:
        # A pending delivery with no time set is due from its creation.
        due = d.next_attempt_at if d.next_attempt_at is not None else d.created_at
        return (d.id, d.job_id, d.tenant, d.status, due, d.url, self._enc.encode(d))

    async def add_delivery(self, delivery: WebhookDelivery) -> None:
        """Record a new delivery. `next_attempt_at=None` means due at `created_at`."""
        row = self._delivery_row(delivery)
        await self._write(
            lambda conn: conn.execute(
                "INSERT INTO deliveries (id, job_id, tenant, status, next_attempt_at, url, doc) VALUES (?, ?, ?, ?, ?, ?, ?)",
                row,
            ),
            rows=1,
        )

    async def update_delivery(self, delivery: WebhookDelivery) -> None:
        """Overwrite a delivery by id (ending any claim on it); `KeyError` if it does not exist."""
        id_, _job, _tenant, status, due, _url, doc = self._delivery_row(delivery)

        def update(conn: sqlite3.Connection) -> None:
            cur = conn.execute("UPDATE deliveries SET status = ?, next_attempt_at = ?, claimed_until = NULL, doc = ? WHERE id = ?", (status, due, doc, id_))
            if cur.rowcount == 0:
                raise KeyError(id_)

        await self._write(update, rows=1)

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
        pushed to `lease_until` and marked claimed until then in a write transaction that
        takes only what is still due, so no other process takes it. Deliveries of
        `skip_tenants` or to `skip_urls` are passed over (left due), and at most
        `per_tenant` / `per_url` of one tenant / URL taken.

        The choice is first made on a read snapshot, outside the write transaction: its
        window functions read every due delivery (a backlog for one slow receiver can be
        thousands), and the write lock, which every job write waits for, is then held only
        for the updates. If another process claimed some of the chosen ones in between, the
        rest is chosen again inside the write transaction, passing over the tenants and URLs
        this claim already took from (so it stays within its bounds); those follow the
        first ones in the answer."""
        if limit < 1:
            return []
        skipped_tenants, skipped_urls = list(skip_tenants), list(skip_urls)

        def choose(conn: sqlite3.Connection, limit: int, tenants: list[str], urls: list[str]) -> list[int]:
            rows = conn.execute(
                f"""SELECT seq FROM (
                       SELECT seq, next_attempt_at,
                           ROW_NUMBER() OVER (PARTITION BY tenant ORDER BY next_attempt_at, seq) AS nth_of_tenant,
                           ROW_NUMBER() OVER (PARTITION BY url ORDER BY next_attempt_at, seq) AS nth_of_url
                       FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ?
                           AND tenant NOT IN ({", ".join("?" * len(tenants))}) AND url NOT IN ({", ".join("?" * len(urls))}))
                   WHERE nth_of_tenant <= ? AND nth_of_url <= ?
                   ORDER BY next_attempt_at, seq LIMIT ?""",
                (now, *tenants, *urls, per_tenant or limit, per_url or limit, limit),
            ).fetchall()
            return [seq for (seq,) in rows]

        def claim(conn: sqlite3.Connection, chosen: list[int]) -> list[WebhookDelivery]:
            claimed = []
            for seq in chosen:
                row = conn.execute(
                    """UPDATE deliveries SET next_attempt_at = ?, claimed_until = ?
                       WHERE seq = ? AND status = 'pending' AND next_attempt_at <= ? RETURNING doc""",
                    (lease_until, lease_until, seq, now),
                ).fetchone()
                if row is not None:
                    claimed.append(self._delivery.decode(row[0]))
            return claimed

        # Only a choice among a few due deliveries is small enough to make on the event loop
        # (a count that stops early says which); the claim itself writes at most `limit` rows.
        due = await self._read(
            lambda conn: conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ? LIMIT ?)", (now, INLINE_WRITE_ROWS + 1)
            ).fetchone()[0],
            point=True,
        )
        if due == 0:
            return []
        chosen = await self._read(lambda conn: choose(conn, limit, skipped_tenants, skipped_urls), point=due <= INLINE_WRITE_ROWS)
        claimed = await self._write(lambda conn: claim(conn, chosen), rows=len(chosen)) if chosen else []
        if len(claimed) == len(chosen):
            return claimed
        rest = limit - len(claimed)
        tenants = skipped_tenants + sorted({d.tenant for d in claimed})
        urls = skipped_urls + sorted({d.url for d in claimed})
        return claimed + await self._write(lambda conn: claim(conn, choose(conn, rest, tenants, urls)))

    async def record_attempt(self, delivery_id: str, attempt: DeliveryAttempt | None, outcome: DeliveryOutcome) -> WebhookDelivery:
        """Append `attempt` (None: nothing was sent) to the stored delivery's log, count it,
        set `outcome` and end the claim, in one transaction: every request sent is one entry,
        whatever else wrote the delivery meanwhile. `KeyError` if it does not exist."""

        def record(conn: sqlite3.Connection) -> WebhookDelivery:
            row = conn.execute("SELECT doc FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
            if row is None:
                raise KeyError(delivery_id)
            updated = outcome.applied(self._delivery.decode(row[0]), attempt)
            _, _, _, status, due, _, doc = self._delivery_row(updated)
            conn.execute("UPDATE deliveries SET status = ?, next_attempt_at = ?, claimed_until = NULL, doc = ? WHERE id = ?", (status, due, doc, delivery_id))
            return updated

        return await self._write(record, rows=1)

    async def defer_deliveries(self, delivery_ids: Sequence[str], until: float) -> None:
        """Give claimed deliveries back unattempted, due again at `until`."""
        if delivery_ids:
            await self._write(
                lambda conn: conn.executemany(
                    "UPDATE deliveries SET next_attempt_at = ?, claimed_until = NULL WHERE id = ? AND status = 'pending'", [(until, i) for i in delivery_ids]
                ),
                rows=len(delivery_ids),
            )

    async def requeue_delivery(self, delivery_id: str, tenant: str, now: float) -> WebhookDelivery:
        """Make the tenant's delivery pending and due at `now`. `DeliveryInFlight` while an
        attempt at it is under way (claimed, the claim not lapsed); `KeyError` if none."""

        def requeue(conn: sqlite3.Connection) -> WebhookDelivery:
            row = conn.execute("SELECT doc, claimed_until FROM deliveries WHERE id = ? AND tenant = ?", (delivery_id, tenant)).fetchone()
            if row is None:
                raise KeyError(delivery_id)
            if row[1] is not None and row[1] > now:
                raise DeliveryInFlight(delivery_id)
            updated = msgspec.structs.replace(self._delivery.decode(row[0]), status="pending", next_attempt_at=now)
            conn.execute("UPDATE deliveries SET status = 'pending', next_attempt_at = ?, doc = ? WHERE id = ?", (now, self._enc.encode(updated), delivery_id))
            return updated

        return await self._write(requeue, rows=1)

    async def get_delivery(self, delivery_id: str, tenant: str | None = None) -> WebhookDelivery | None:
        row = await self._read(
            lambda conn: conn.execute("SELECT doc FROM deliveries WHERE id = ? AND (? IS NULL OR tenant = ?)", (delivery_id, tenant, tenant)).fetchone(),
            point=True,
        )
        return self._delivery.decode(row[0]) if row else None

    async def disable_endpoint(self, tenant: str, url: str, reason: str, at: float) -> None:
        await self._write(
            lambda conn: conn.execute(
                """INSERT INTO disabled_endpoints (tenant, url, reason, at) VALUES (?, ?, ?, ?)
                   ON CONFLICT (tenant, url) DO UPDATE SET reason = excluded.reason, at = excluded.at""",
                (tenant, url, reason, at),
            ),
            rows=1,
        )

    async def endpoint_disabled(self, tenant: str, url: str) -> str | None:
        row = await self._read(
            lambda conn: conn.execute("SELECT reason FROM disabled_endpoints WHERE tenant = ? AND url = ?", (tenant, url)).fetchone(), point=True
        )
        return row[0] if row else None

    async def enable_endpoint(self, tenant: str, url: str) -> bool:
        return await self._write(lambda conn: conn.execute("DELETE FROM disabled_endpoints WHERE tenant = ? AND url = ?", (tenant, url)).rowcount > 0, rows=1)

    async def deliveries(self, job_id: str) -> list[WebhookDelivery]:
        """Every delivery for the job, in insertion order."""
        rows = await self._read(lambda conn: conn.execute("SELECT doc FROM deliveries WHERE job_id = ? ORDER BY seq", (job_id,)).fetchall())
        return [self._delivery.decode(r[0]) for r in rows]

    # comparisons ------------------------------------------------------------

    async def put_comparison(self, comparison: Comparison) -> Comparison:
        """Insert `comparison`, or return the stored one with the same id or the same
        (tenant, idempotency key): the first write wins, so a replay gets the original."""
        row = (comparison.id, comparison.tenant, comparison.created_at, comparison.idempotency_key, self._enc.encode(comparison))

        def insert(conn: sqlite3.Connection) -> Comparison:
            try:
                conn.execute("INSERT INTO comparisons (id, tenant, created_at, idempotency_key, doc) VALUES (?, ?, ?, ?, ?)", row)
            except sqlite3.IntegrityError:
                stored = conn.execute(
                    "SELECT doc FROM comparisons WHERE id = ? OR (tenant = ? AND idempotency_key = ?)",
                    (comparison.id, comparison.tenant, comparison.idempotency_key),
                ).fetchone()
                if stored is None:
                    raise
                return self._comparison.decode(stored[0])
            return comparison

        return await self._write(insert, rows=1)

    async def get_comparison(self, comparison_id: str, tenant: str) -> Comparison | None:
        """The comparison, or None if it does not exist or belongs to another tenant."""
        row = await self._read(
            lambda conn: conn.execute("SELECT doc FROM comparisons WHERE id = ? AND tenant = ?", (comparison_id, tenant)).fetchone(), point=True
        )
        return self._comparison.decode(row[0]) if row else None

    async def find_comparison(self, tenant: str, idempotency_key: str) -> Comparison | None:
        row = await self._read(
            lambda conn: conn.execute("SELECT doc FROM comparisons WHERE tenant = ? AND idempotency_key = ?", (tenant, idempotency_key)).fetchone(), point=True
        )
        return self._comparison.decode(row[0]) if row else None

    async def vote_comparison(self, comparison_id: str, tenant: str, vote: ComparisonVote) -> Comparison | None:
        """Set the vote if there is none yet (read and write in one transaction); the stored comparison."""

        def set_vote(conn: sqlite3.Connection) -> Comparison | None:
            row = conn.execute("SELECT doc FROM comparisons WHERE id = ? AND tenant = ?", (comparison_id, tenant)).fetchone()
            if row is None:
                return None
            stored = self._comparison.decode(row[0])
            if stored.vote is None:
                stored.vote = vote
                conn.execute("UPDATE comparisons SET doc = ? WHERE id = ?", (self._enc.encode(stored), comparison_id))
            return stored

        return await self._write(set_vote, rows=1)

    async def comparisons_since(self, tenant: str | None, since: float) -> list[Comparison]:
        where, args = ("created_at >= ?", (since,)) if tenant is None else ("tenant = ? AND created_at >= ?", (tenant, since))
        rows = await self._read(lambda conn: conn.execute(f"SELECT doc FROM comparisons WHERE {where} ORDER BY created_at, id", args).fetchall())
        return [self._comparison.decode(r[0]) for r in rows]


def _busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused for a lock held elsewhere (SQLITE_BUSY and its extended codes)."""
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL. Two processes opening a new file at once can race here, and
    SQLite answers the loser "database is locked" without using the busy handler;
    retry for up to the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _keep_owner(conn: sqlite3.Connection, lease: Lease) -> None:
    """Make sure `lease.owner` has a heartbeat lasting at least until `lease.until` (it now
    holds a job). A row made here is marked `lost`: the owner may be one whose row was
    cleaned up after it lapsed and lost its jobs, so its next heartbeat must not say
    that everything it holds is still its own."""
    conn.execute(
        """INSERT INTO owners (owner, until, lost) VALUES (?, ?, 1)
           ON CONFLICT (owner) DO UPDATE SET until = max(until, excluded.until)""",
        (lease.owner, lease.until),
    )


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    """`items` in slices of at most `size` (SQLite caps the number of bound parameters)."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _write_temp(path: Path, data: bytes | bytearray) -> str:
    """Write `data` to `path` durably; returns its sha256 hex digest."""
    with path.open("xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return hashlib.sha256(data).hexdigest()
