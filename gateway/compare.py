"""`vidgate compare`: one prompt through several providers, results side by side.

Talks to a running vidgate (`--url`, `--key`), or starts one in this process:
from a config file (`--config`, with a key it lists) or on the demo defaults
with every upstream simulator (`--demo`). Uploads local media (`--first-frame`,
`--last-frame`, `--reference-*`), creates a comparison, prints its id and console
URL at once, then one live line per provider until every child job has finished
(or `--timeout` passes), then the table. Exit status: 0 if every child completed,
1 otherwise, 2 if the comparison was refused or the setup is wrong.

The comparison id must be out within a second of starting, so talking to a running
vidgate needs only the standard library (urllib): httpx's import alone (it loads its
own CLI's click, rich and pygments) takes most of that second on a busy machine. rich,
for the live lines, is imported once the id is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import mimetypes
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

KEY_ENV = "VIDGATE_API_KEY"
MEDIA_PREFIXES = ("http://", "https://", "data:")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a running vidgate, e.g. http://127.0.0.1:8000")
    where.add_argument("--config", help="start an embedded vidgate from this TOML config")
    where.add_argument("--demo", action="store_true", help="start an embedded vidgate with every upstream simulator")
    parser.add_argument("--key", help=f"vidgate API key (default ${KEY_ENV}; the demo key with --demo)")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--providers", default="all", help="comma-separated provider names, or 'all' (default)")
    parser.add_argument("--model", help="logical model (default: the gateway's default model)")
    parser.add_argument("--seconds", help="video length, as POST /v1/videos takes it")
    parser.add_argument("--ratio", help="aspect ratio, e.g. 16:9")
    parser.add_argument("--resolution", help="e.g. 720p")
    media = "a local file (uploaded to /v1/files first) or an https:// or data: URL"
    parser.add_argument("--first-frame", metavar="FILE_OR_URL", help=f"the first frame: {media}")
    parser.add_argument("--last-frame", metavar="FILE_OR_URL", help=f"the last frame: {media}")
    parser.add_argument("--reference-image", metavar="FILE_OR_URL", action="append", default=[], help=f"a reference image (repeatable): {media}")
    parser.add_argument("--reference-video", metavar="FILE_OR_URL", action="append", default=[], help=f"a reference video (repeatable): {media}")
    parser.add_argument("--reference-audio", metavar="FILE_OR_URL", action="append", default=[], help=f"a reference audio (repeatable): {media}")
    parser.add_argument("--blind", action="store_true", help="label the videos A, B, ... and keep who made which hidden until you vote in the console")
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
            return compare(base, key or demo_key, args, timeout=args.timeout, out=out, local_urls=args.url is not None)
    except _SetupError as exc:
        print(f"vidgate compare: {exc}", file=sys.stderr)
        return 2


def compare(base: str, key: str, args: argparse.Namespace, *, timeout: float, out: TextIO, local_urls: bool = True, interval: float = 0.25) -> int:
    """Upload, create, follow and print the comparison; returns the exit status."""
    api = Api(base, key)
    try:
        body = request_body(args, api.upload)
        status, comparison = api.call("POST", "/v1/comparisons", body)
        if status != 200:
            print(f"vidgate compare: refused (HTTP {status}): {_message(comparison)}", file=sys.stderr)
            return 2
        print(f"comparison {comparison['id']}", file=out, flush=True)
        print(f"console    {base}/console/comparisons/{comparison['id']}", file=out, flush=True)
        with _progress(out, blind=bool(comparison.get("blind"))) as show:
            show(comparison)
            deadline = time.monotonic() + timeout
            while comparison["status"] != "completed" and time.monotonic() < deadline:
                time.sleep(interval)
                status, comparison = api.call("GET", f"/v1/comparisons/{comparison['id']}")
                if status != 200:
                    print(f"vidgate compare: polling failed (HTTP {status}): {_message(comparison)}", file=sys.stderr)
                    return 2
                show(comparison)
    except Unreachable as exc:
        print(f"vidgate compare: can't talk to {base}: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:  # a media file that can't be read
        print(f"vidgate compare: {exc}", file=sys.stderr)
        return 2
    print(render(comparison, base=base if local_urls else None), file=out)
    if comparison.get("blind") and comparison.get("vote") is None:
        if local_urls:
            print(f"\nblind: who made which stays hidden until you vote at {base}/console/comparisons/{comparison['id']}", file=out)
        else:
            print("\nblind: this embedded gateway stops with the command; to vote, compare with --url against a running vidgate", file=out)
    if comparison["status"] != "completed":
        print(f"\ntimed out after {timeout:g}s; follow it with GET {base}/v1/comparisons/{comparison['id']}", file=out)
        return 1
    return 0 if all(r["status"] == "completed" for r in comparison["results"]) else 1


# -- talking to vidgate ------------------------------------------------------------------


class Unreachable(Exception):
    pass


class Api:
    """JSON over HTTP to one vidgate with a bearer key (the standard library's urllib)."""

    def __init__(self, base: str, key: str, *, timeout: float = 30.0) -> None:
        self.base = base.rstrip("/")
        self.key = key
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        return self._send(method, path, data, "application/json" if data is not None else None)

    def upload(self, path: Path) -> str:
        """Upload a local file to `/v1/files`; returns its file id."""
        data = path.read_bytes()
        boundary = "vidgate-" + secrets.token_hex(12)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        name = path.name.replace('"', "_").replace("\r", "_").replace("\n", "_")
        payload = b"".join(
            [
                f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nvideo_input\r\n'.encode(),
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\nContent-Type: {content_type}\r\n\r\n'.encode(),
                data,
                f"\r\n--{boundary}--\r\n".encode(),
            ]
        )
        status, body = self._send("POST", "/v1/files", payload, f"multipart/form-data; boundary={boundary}")
        if status != 200:
            raise ValueError(f"uploading {path} was refused (HTTP {status}): {_message(body)}")
        return str(body["id"])

    def _send(self, method: str, path: str, data: bytes | None, content_type: str | None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.key}", "Accept": "application/json"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, _decode(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _decode(exc.read())
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise Unreachable(str(getattr(exc, "reason", exc))) from exc


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")[:200]


def _message(body: Any) -> str:
    try:
        return str(body["error"]["message"])
    except (KeyError, TypeError):
        return str(body)[:200]


def request_body(args: argparse.Namespace, upload: Callable[[Path], str]) -> dict[str, Any]:
    """The `POST /v1/comparisons` body; local media files are uploaded on the way."""

    def medium(value: str) -> Any:
        if value.startswith(MEDIA_PREFIXES):
            return value
        path = Path(value).expanduser()
        if not path.is_file():
            raise ValueError(f"{value}: no such file (give a local file, or an https:// or data: URL)")
        return {"file_id": upload(path)}

    request: dict[str, Any] = {"prompt": args.prompt}
    for name in ("model", "seconds", "ratio", "resolution"):
        if getattr(args, name, None):
            request[name] = getattr(args, name)
    if getattr(args, "first_frame", None):
        request["first_frame"] = medium(args.first_frame)
    if getattr(args, "last_frame", None):
        request["last_frame"] = medium(args.last_frame)
    references = {
        kind: [medium(v) for v in getattr(args, f"reference_{kind[:-1]}", None) or []]
        for kind in ("images", "videos", "audios")
        if getattr(args, f"reference_{kind[:-1]}", None)
    }
    if references:
        request["references"] = references
    names = [p.strip() for p in args.providers.split(",") if p.strip()]
    body: dict[str, Any] = {"request": request, "providers": "all" if names in ([], ["all"]) else names}
    if getattr(args, "blind", False):
        body["blind"] = True
    return body


# -- showing it ----------------------------------------------------------------------------


def _name(result: dict[str, Any], blind: bool) -> str:
    return str(result["label"]) if blind else str(result["provider"])


@contextlib.contextmanager
def _progress(out: TextIO, *, blind: bool) -> Iterator[Callable[[dict[str, Any]], None]]:
    """A live line per provider: redrawn in place on a terminal (rich), else printed as a
    new line whenever a provider's status or progress changes (logs, pipes, tests)."""
    if not (hasattr(out, "isatty") and out.isatty()):
        last: dict[str, tuple[str, int]] = {}

        def line(comparison: dict[str, Any]) -> None:
            for r in comparison["results"]:
                name, now = _name(r, blind), (r["status"], int(r.get("progress") or 0))
                if last.get(name) != now:
                    last[name] = now
                    print(f"  {name:<14} {now[0]:<12} {now[1]:>3}%", file=out, flush=True)

        yield line
        return

    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    started = time.monotonic()

    def table(comparison: dict[str, Any]) -> Table:
        grid = Table.grid(padding=(0, 2))
        for r in comparison["results"]:
            progress = int(r.get("progress") or 0)
            bar = "█" * (progress // 5) + "·" * (20 - progress // 5)
            grid.add_row(_name(r, blind), r["status"], f"{bar} {progress:>3}%", f"{time.monotonic() - started:5.1f}s")
        return grid

    with Live(console=Console(file=out), auto_refresh=False, transient=False) as live:
        yield lambda comparison: live.update(table(comparison), refresh=True)


def render(comparison: dict[str, Any], *, base: str | None) -> str:
    """The comparison as a table. With `base`, URLs are the gateway's own; otherwise the upstream's
    (an embedded gateway stops when the command ends, so its URLs would not outlive the table).
    A blind comparison nobody voted on shows labels, and no cost (its unit names the provider)."""
    blind = bool(comparison.get("blind")) and comparison.get("vote") is None
    header = ("video" if blind else "provider", "status", "time to video", "cost", "url")
    rows = [header]
    for r in comparison["results"]:
        ttv = f"{r['time_to_video_seconds']:.1f}s" if r["time_to_video_seconds"] is not None else "-"
        if r["status"] == "completed":
            url = (base + r["video_url"]) if base and r["video_url"] else (r["upstream_video_url"] or "-")
            if blind and not base:
                url = "hidden"  # an upstream's own link names it
        else:
            url = (r.get("error") or {}).get("message", "-")
        rows.append((_name(r, blind), r["status"], ttv, "hidden" if blind else _cost(r.get("cost")), url))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=False)) + "  " + row[-1] for row in rows]
    lines.insert(0, f"comparison {comparison['id']}  model {comparison.get('model', '?')}")
    for s in comparison.get("skipped", []):
        lines.append(f"skipped {s['provider']}: {s['reason']}")
    done = sum(r["status"] == "completed" for r in comparison["results"])
    lines.append(f"\n{done}/{len(comparison['results'])} providers completed")
    return "\n".join(lines)


def _cost(cost: dict[str, Any] | None) -> str:
    """USD first (one currency across providers), then the amount as the upstream reported it."""
    if not cost:
        return "-"
    usd = cost.get("usd_estimate")
    native = f"{cost['amount']:g} {cost.get('unit') or ''}".strip() if cost.get("amount") is not None else ""
    if usd is None:
        return native or "-"
    if cost.get("unit") == "usd" or not native:
        return f"${usd:.2f}"
    return f"${usd:.2f} ({native})"


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
