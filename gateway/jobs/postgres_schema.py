"""PostgreSQL schema for `gateway.jobs.postgres.PostgresStore`, and how it is brought up to date.

Every record is stored whole as msgspec JSON in a `doc BYTEA` column (as in the
SQLite store); the other columns are copies of the fields that queries filter,
order or lock on. `version` and `lease_owner` live only in their columns; heartbeats
are rows of `owners`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import msgspec

from gateway.jobs.legacy import is_legacy, upgrade_job_doc


async def _upgrade_requests(conn: asyncpg.Connection) -> None:
    for row in await conn.fetch("SELECT id, doc FROM jobs"):
        doc = msgspec.json.decode(row["doc"])
        if is_legacy(doc):
            await conn.execute("UPDATE jobs SET doc = $2 WHERE id = $1", row["id"], msgspec.json.encode(upgrade_job_doc(doc)))


# Each entry moves the schema from version N-1 to N: SQL, or a function of the
# connection for a data migration. Append, never edit.
MIGRATIONS: tuple[tuple[str | Callable[[asyncpg.Connection], Awaitable[None]], ...], ...] = (
    (
        """CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            status TEXT NOT NULL,
            provider TEXT,
            model TEXT NOT NULL,
            created_seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
            created_at DOUBLE PRECISION NOT NULL,
            idempotency_key TEXT,
            request_hash TEXT,
            callback_token TEXT UNIQUE,
            version BIGINT NOT NULL,
            lease_owner TEXT,
            lease_until DOUBLE PRECISION,
            doc BYTEA NOT NULL
        )""",
        "CREATE INDEX jobs_tenant_seq ON jobs (tenant, created_seq)",
        "CREATE INDEX jobs_status_seq ON jobs (status, created_seq)",
        """CREATE UNIQUE INDEX jobs_idempotency ON jobs (tenant, idempotency_key)
            WHERE idempotency_key IS NOT NULL""",
        "CREATE INDEX jobs_request_hash ON jobs (tenant, request_hash, created_at) WHERE request_hash IS NOT NULL",
        # /v1/stats reads a time window, per tenant or (admin) across all of them.
        "CREATE INDEX jobs_tenant_created ON jobs (tenant, created_at)",
        "CREATE INDEX jobs_created ON jobs (created_at)",
        """CREATE TABLE events (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            at DOUBLE PRECISION NOT NULL,
            status TEXT NOT NULL,
            progress INTEGER NOT NULL,
            detail TEXT
        )""",
        "CREATE INDEX events_job ON events (job_id, at, seq)",
        """CREATE TABLE files (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            doc BYTEA NOT NULL
        )""",
        "CREATE INDEX files_tenant ON files (tenant, created_at)",
        """CREATE TABLE file_bytes (
            id TEXT PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
            data BYTEA NOT NULL
        )""",
        # Media is compressed already; stored uncompressed out of line, `substring()`
        # fetches only the TOAST chunks a slice needs instead of the whole value.
        "ALTER TABLE file_bytes ALTER COLUMN data SET STORAGE EXTERNAL",
        """CREATE TABLE deliveries (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            job_id TEXT NOT NULL,
            tenant TEXT NOT NULL,
            status TEXT NOT NULL,
            next_attempt_at DOUBLE PRECISION NOT NULL,
            doc BYTEA NOT NULL
        )""",
        "CREATE INDEX deliveries_due ON deliveries (next_attempt_at, seq) WHERE status = 'pending'",
        "CREATE INDEX deliveries_job ON deliveries (job_id, seq)",
        """CREATE TABLE disabled_endpoints (
            tenant TEXT NOT NULL,
            url TEXT NOT NULL,
            reason TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (tenant, url)
        )""",
        """CREATE TABLE comparisons (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            idempotency_key TEXT,
            doc BYTEA NOT NULL
        )""",
        """CREATE UNIQUE INDEX comparisons_idempotency ON comparisons (tenant, idempotency_key)
            WHERE idempotency_key IS NOT NULL""",
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
        "ALTER TABLE deliveries ADD COLUMN claimed_until DOUBLE PRECISION",
        "ALTER TABLE deliveries ADD COLUMN url TEXT NOT NULL DEFAULT ''",
        "UPDATE deliveries SET url = COALESCE(convert_from(doc, 'UTF8')::jsonb ->> 'url', '')",
    ),
    (
        # Leases by heartbeat: a job names its holder, one row per process says until when
        # it holds them (gateway.jobs.store), so renewing costs one row, not one per job.
        # `lost`: another owner claimed some of its jobs since its last heartbeat.
        """CREATE TABLE owners (
            owner TEXT PRIMARY KEY,
            until DOUBLE PRECISION NOT NULL,
            lost BOOLEAN NOT NULL DEFAULT false
        )""",
        # Every holder of an active job gets a heartbeat as long as its latest lease.
        """INSERT INTO owners (owner, until)
            SELECT lease_owner, COALESCE(max(lease_until), 0) FROM jobs
            WHERE lease_owner IS NOT NULL AND status IN ('queued', 'in_progress') GROUP BY lease_owner""",
        "ALTER TABLE jobs DROP COLUMN lease_until",
        # Claims look up unheld jobs and lapsed owners' jobs, never scanning every active job.
        "CREATE INDEX jobs_lease_owner ON jobs (lease_owner, status, created_seq)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

# The key of the transaction-scoped advisory lock that serializes migrations
# across processes: the bytes of "vidgate" read as an integer.
MIGRATION_LOCK = int.from_bytes(b"vidgate", "big")


async def migrate(conn: asyncpg.Connection) -> int:
    """Bring the database up to `SCHEMA_VERSION`; returns the version found.

    Runs in one transaction under `pg_advisory_xact_lock`, so processes starting
    together apply each migration once: the others wait, then find it done. A
    database newer than this code raises `RuntimeError` and is left untouched.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        found = await conn.fetchval("SELECT version FROM schema_version")
        current = found or 0
        if current > SCHEMA_VERSION:
            raise RuntimeError(f"database schema v{current} is newer than this vidgate (v{SCHEMA_VERSION})")
        for statements in MIGRATIONS[current:]:
            for step in statements:
                if callable(step):
                    await step(conn)
                else:
                    await conn.execute(step)
        if found is None:
            await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", SCHEMA_VERSION)
        elif current < SCHEMA_VERSION:
            await conn.execute("UPDATE schema_version SET version = $1", SCHEMA_VERSION)
    return current
