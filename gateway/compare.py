"""`vidgate compare`: one prompt through several providers, results side by side.

Talks to a running vidgate (`--url`, `--key`), or starts one in this process:
from a config file (`--config`, with a key it lists) or on the demo defaults
with both upstream simulators (`--demo`). Creates a comparison, polls it until
every child job has finished (or `--timeout` passes), and prints one row per
provider. Exit status: 0 if every child completed, 1 otherwise, 2 if the
comparison was refused or the setup is wrong.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

import httpx

KEY_ENV = "VIDGATE_API_KEY"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a running vidgate, e.g. http://127.0.0.1:8000")
    where.add_argument("--config", help="start an embedded vidgate from this TOML config")
    where.add_argument("--demo", action="store_true", help="start an embedded vidgate with both upstream simulators")
    parser.add_argument("--key", help=f"vidgate API key (default ${KEY_ENV}; the demo key with --demo)")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--providers", default="all", help="comma-separated provider names, or 'all' (default)")
    parser.add_argument("--model", help="logical model (default: the gateway's default model)")
    parser.add_argument("--seconds", help="video length, as POST /v1/videos takes it")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up waiting after this many seconds")
    parser.add_argument("--job-seconds", type=float, default=1.0, help="with --demo: how long simulated jobs take")


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    key = args.key or os.environ.get(KEY_ENV)
    if not key and not args.demo:
        print(f"vidgate compare: give --key or set ${KEY_ENV}", file=sys.stderr)
        return 2
    try:
        with _gateway(args) as (base, demo_key):
            return compare(base, key or demo_key, _body(args), timeout=args.timeout, out=out, local_urls=args.url is not None)
    except _SetupError as exc:
        print(f"vidgate compare: {exc}", file=sys.stderr)
        return 2


def compare(base: str, key: str, body: dict[str, Any], *, timeout: float, out: TextIO, local_urls: bool = True, interval: float = 0.25) -> int:
    """Create the comparison, wait for it, print the table; returns the exit status."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        try:
            response = client.post("/v1/comparisons", json=body)
            if response.status_code != 200:
                print(f"vidgate compare: refused (HTTP {response.status_code}): {_message(response)}", file=sys.stderr)
                return 2
            comparison = response.json()
            deadline = time.monotonic() + timeout
            while comparison["status"] != "completed" and time.monotonic() < deadline:
                time.sleep(interval)
                response = client.get(f"/v1/comparisons/{comparison['id']}")
                if response.status_code != 200:
                    print(f"vidgate compare: polling failed (HTTP {response.status_code}): {_message(response)}", file=sys.stderr)
                    return 2
                comparison = response.json()
        except httpx.HTTPError as exc:
            print(f"vidgate compare: can't talk to {base}: {exc}", file=sys.stderr)
            return 2
    print(render(comparison, base=base if local_urls else None), file=out)
    if comparison["status"] != "completed":
        print(f"\ntimed out after {timeout:g}s; follow it with GET {base}/v1/comparisons/{comparison['id']}", file=out)
        return 1
    return 0 if all(r["status"] == "completed" for r in comparison["results"]) else 1


def render(comparison: dict[str, Any], *, base: str | None) -> str:
    """The comparison as a table. With `base`, URLs are the gateway's own; otherwise the upstream's
    (an embedded gateway stops when the command ends, so its URLs would not outlive the table)."""
    header = ("provider", "status", "time to video", "cost", "url")
    rows = [header]
    for r in comparison["results"]:
        ttv = f"{r['time_to_video_seconds']:.1f}s" if r["time_to_video_seconds"] is not None else "-"
        if r["status"] == "completed":
            url = (base + r["video_url"]) if base and r["video_url"] else (r["upstream_video_url"] or "-")
        else:
            url = (r.get("error") or {}).get("message", "-")
        rows.append((r["provider"], r["status"], ttv, _cost(r.get("cost")), url))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=False)) + "  " + row[-1] for row in rows]
    lines.insert(0, f"comparison {comparison['id']}  model {comparison.get('model', '?')}")
    for s in comparison.get("skipped", []):
        lines.append(f"skipped {s['provider']}: {s['reason']}")
    done = sum(r["status"] == "completed" for r in comparison["results"])
    lines.append(f"\n{done}/{len(comparison['results'])} providers completed")
    return "\n".join(lines)


def _cost(cost: dict[str, Any] | None) -> str:
    if not cost:
        return "-"
    parts = []
    if cost.get("amount") is not None:
        parts.append(f"{cost['amount']:g} {cost.get('unit') or ''}".strip())
    if cost.get("usd_estimate") is not None and cost.get("unit") != "usd":
        parts.append(f"(~${cost['usd_estimate']:.2f})")
    return " ".join(parts) or "-"


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


def _body(args: argparse.Namespace) -> dict[str, Any]:
    request: dict[str, Any] = {"prompt": args.prompt}
    if args.model:
        request["model"] = args.model
    if args.seconds:
        request["seconds"] = args.seconds
    names = [p.strip() for p in args.providers.split(",") if p.strip()]
    return {"request": request, "providers": "all" if names in ([], ["all"]) else names}


class _SetupError(Exception):
    pass


@contextlib.contextmanager
def _gateway(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    """The gateway's base URL, and the key to use when none was given (the demo's)."""
    if args.url:
        yield args.url.rstrip("/"), ""
        return

    from gateway.app import create_app
    from gateway.cli import DEMO_KEY, demo_settings, temp_dir
    from gateway.logging import configure_logging
    from gateway.settings import ConfigError, load_settings
    from providers.simkit import free_port, serve_in_thread

    configure_logging(level="warning")
    if args.demo:
        from gateway.demo import running_simulators

        with running_simulators(args.job_seconds) as urls, temp_dir() as data_dir:
            port = free_port()
            settings = demo_settings(port=port, urls=urls, data_dir=data_dir, job_seconds=args.job_seconds)
            with serve_in_thread(create_app(settings), port=port) as base:
                yield base, DEMO_KEY
        return
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        raise _SetupError(str(exc)) from exc
    # Upstream callbacks need the configured public URL; without one, bind a free port and poll.
    port = settings.server.port if settings.server.public_url else free_port()
    if not settings.server.public_url:
        settings.server.port = port
    with serve_in_thread(create_app(settings), host=settings.server.host, port=port) as base:
        yield base, ""
