"""`vidgate serve | demo | simulate | check-config | compare`."""

from __future__ import annotations

import argparse
import contextlib
import errno
import gc
import os
import socket
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uvicorn

    from gateway.settings import ServerSettings, Settings

# Nothing heavier than the standard library is imported at module level: `vidgate compare`
# must print its comparison id within a second of starting, on a busy machine too.

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
HTTP_PARSERS = ("httptools", "h11")
EVENT_LOOPS = ("uvloop", "asyncio")
DEMO_KEY = "sk-demo"
DEMO_CONFIG = Path(__file__).resolve().parent.parent / "config" / "demo.toml"


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compare"]:  # the fast path: only what talking to a running vidgate needs
        from gateway import compare

        only = argparse.ArgumentParser(prog="vidgate compare", description="run one prompt through several providers and compare the results")
        compare.add_arguments(only)
        raise SystemExit(compare.run(only.parse_args(argv[1:])))

    from providers.registry import provider_types

    parser = argparse.ArgumentParser(prog="vidgate", description="A gateway for asynchronous AI video generation")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", required=True, help="path to a TOML config")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--json-logs", action="store_true", default=None)
    serve.add_argument("--log-level", choices=LOG_LEVELS, help="drop lines below this level (default: [logging] level, which defaults to info)")
    serve.add_argument("--http", choices=HTTP_PARSERS, default="httptools", help="HTTP/1.1 parser (default httptools; h11 is the pure-Python fallback)")
    serve.add_argument("--loop", choices=EVENT_LOOPS, default="uvloop", help="event loop (default uvloop; asyncio is the standard library's)")

    demo = sub.add_parser("demo", help="run vidgate with both upstream simulators, on embedded defaults")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--once", action="store_true", help="run one job per provider and mode, print a table, exit")
    demo.add_argument("--job-seconds", type=float, default=None, help="how long simulated jobs take")

    sim = sub.add_parser("simulate", help="run an upstream simulator")
    sim.add_argument("provider", choices=provider_types())
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=9101)
    sim.add_argument("--job-seconds", type=float, default=5.0)
    sim.add_argument("--capacity", type=int, default=None, help="unfinished jobs the upstream accepts (per account, for upstreams with accounts)")

    check = sub.add_parser("check-config", help="validate a config file and print what it would serve")
    check.add_argument("path")

    from gateway import compare

    compare.add_arguments(sub.add_parser("compare", help="run one prompt through several providers and compare the results"))

    args = parser.parse_args(argv)
    if args.command == "serve":
        raise SystemExit(_serve(args))
    if args.command == "demo":
        from gateway.demo import run_demo

        raise SystemExit(run_demo(port=args.port, once=args.once, job_seconds=args.job_seconds))
    if args.command == "simulate":
        raise SystemExit(_simulate(args))
    if args.command == "check-config":
        raise SystemExit(_check_config(args.path))
    if args.command == "compare":
        raise SystemExit(compare.run(args))


def _serve(args: argparse.Namespace) -> int:
    from gateway.app import create_app
    from gateway.logging import configure_logging
    from gateway.settings import ConfigError, load_settings

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(json=args.json_logs, level=args.log_level or settings.logging.level, cache_loggers=True)
    host = args.host or settings.server.host
    port = settings.server.port if args.port is None else args.port
    sock = listen_or_say_why("vidgate serve", host, port, hint="choose another with --port (or [server] port)")
    if sock is None:
        return 1
    import structlog

    structlog.get_logger("vidgate.cli").info("server.listening", url=f"http://{_url_host(host)}:{sock.getsockname()[1]}")
    app = create_app(settings, config_path=args.config)
    settle_garbage_collector()
    run_server(app, sock, settings.server, http=args.http, loop=args.loop)
    return 0


# The young generation's size, in net allocations: 14x Python's default of 700. Each young
# collection then runs 14x less often and walks at most this many objects (~5 ms here).
GC_YOUNG = 10_000


def settle_garbage_collector() -> None:
    """For a long-running server: what exists at startup (modules, the app, its routes) is
    moved out of the collector's sight, and the collector runs less often.

    With 10,000 jobs in flight every job write replaces a few objects that outlive the
    young generations, so Python's defaults ran a full collection every ~2 s, each 67-92 ms
    with the event loop stopped (bench/scale.py, gc.callbacks), and finding nothing: the
    jobs' objects are acyclic and freed by their reference counts. Those pauses were the
    status GETs' p99. Cycles still die young, in the first two generations."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG, 50, 100)


def listen_or_say_why(who: str, host: str, port: int, *, hint: str) -> socket.socket | None:
    """A listening socket on host:port, or None after one line on stderr saying why not."""
    try:
        return listen(host, port)
    except OSError as exc:
        reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"can't be used ({exc.strerror or exc})"
        print(f"{who}: {host}:{port} {reason}; {hint}", file=sys.stderr)
        return None


def run_server(app: Any, sock: socket.socket, server: ServerSettings, *, http: str = "httptools", loop: str = "uvloop") -> None:
    """Serve `app` on the listening `sock` until SIGINT or SIGTERM stops it, then return."""
    with _stopping_signals_return():
        http_server(app, server, http=http, loop=loop).run(sockets=[sock])


@contextlib.contextmanager
def _stopping_signals_return() -> Iterator[None]:
    """uvicorn shuts down gracefully on SIGINT / SIGTERM, then raises the signal again for the
    handler it found. Python's would turn that into a KeyboardInterrupt (SIGINT) or kill the
    process on the spot (SIGTERM), skipping the callers' cleanup (the demo's data directory)
    and exiting by a signal. The handlers found here instead note nothing: the server has
    stopped and `run` returns normally."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():  # uvicorn handles no signals there either
        yield
        return
    stopping = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in stopping}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def http_server(app: Any, server: ServerSettings, *, http: str = "httptools", loop: str = "uvloop") -> uvicorn.Server:
    """The one place that picks the HTTP server: uvicorn with the `http` parser on the `loop`
    event loop, behind vidgate's slow-client guard (gateway.serving), with uvicorn's keep-alive
    timeout and connection cap. `.run(sockets=[sock])` serves until a signal (or
    `should_exit`) stops it.

    httptools + uvloop by default: 1.56x the status requests of h11 + asyncio at 0.63x the
    CPU per request, and 0.87x the CPU per created job (bench/stacks.py, bench/README.md
    "Server stack"). granian measured within the noise of this (+8% status req/s) without
    a body-pause timeout or a connection cap that answers 503, so uvicorn stays."""
    import uvicorn

    from gateway.serving import QuietServer, guarded_protocol

    config = uvicorn.Config(
        app,
        http=guarded_protocol(
            "httptools" if http == "httptools" else "h11", header_timeout=server.header_timeout_seconds, body_timeout=server.body_timeout_seconds
        ),
        loop=loop,
        timeout_keep_alive=server.keep_alive_seconds,
        limit_concurrency=server.max_connections,
        log_level="warning",
        access_log=False,
        log_config=None,
        proxy_headers=False,  # X-Forwarded-*: vidgate reads neither the client's address nor the scheme
    )
    return QuietServer(config)


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (raises OSError, e.g. EADDRINUSE, instead of exiting)."""
    family, kind, proto, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _simulate(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.logging import configure_logging
    from providers.registry import descriptor

    configure_logging()
    app = descriptor(args.provider).load_simulator()(job_seconds=args.job_seconds, capacity=args.capacity)
    print(f"{args.provider} simulator on http://{args.host}:{args.port} (control: /_sim/faults, /_sim/jobs)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", log_config=None)
    return 0


def _check_config(path: str) -> int:
    from gateway.settings import ConfigError, describe, load_settings

    try:
        settings = load_settings(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(describe(settings))
    return 0


def demo_settings(*, port: int, urls: dict[str, str], data_dir: str, job_seconds: float) -> Settings:
    """The embedded demo configuration (config/demo.toml) bound to this run's ports."""
    from gateway.settings import parse_settings

    env = {
        **os.environ,
        "VIDGATE_DEMO_PORT": str(port),
        "VIDGATE_DEMO_DB": str(Path(data_dir) / "vidgate.db"),
        "VIDGATE_DEMO_OUTPUTS": str(Path(data_dir) / "outputs"),
        **{f"VIDGATE_DEMO_{name.upper()}_URL": url for name, url in urls.items()},
        "VIDGATE_DEMO_POLL": str(max(0.1, job_seconds / 4)),
    }
    return parse_settings(DEMO_CONFIG.read_text(), env=env, source=str(DEMO_CONFIG))


@contextlib.contextmanager
def temp_dir() -> Iterator[str]:
    """A directory for one demo run's database and output copies, removed when the run ends."""
    with tempfile.TemporaryDirectory(prefix="vidgate-demo-", ignore_cleanup_errors=True) as path:
        yield path


if __name__ == "__main__":  # pragma: no cover
    main()
