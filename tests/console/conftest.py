"""The console's tests run the demo stack on loopback (vidgate + every upstream simulator,
real sockets) and keep every log line it writes, raw (before any redaction), so a test can
show the key never reached one."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from gateway.app import create_app
from gateway.cli import demo_settings
from gateway.demo import running_simulators
from gateway.settings import KeySettings
from providers.simkit import free_port, serve_in_thread

DEMO_KEY = "sk-demo"  # tenant "demo" (config/demo.toml)
OTHER_KEY = "sk-demo-other"  # tenant "other-team"
ADMIN_KEY = "sk-console-admin-0123"  # added here: tenant "ops", admin
BROWSER_KEY = "sk-console-browser-4567"  # added here: tenant "browser", the browser test's own numbers
KEYS = (DEMO_KEY, OTHER_KEY, ADMIN_KEY, BROWSER_KEY)
JOB_SECONDS = 1.5  # long enough that a comparison page always loads while its jobs still run
IMAGE = Path(__file__).resolve().parents[2] / "providers" / "sim_media" / "image.png"


class _Lines(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()} {record.args!r}")


@dataclass
class Stack:
    base: str
    sims: dict[str, str]
    events: list[dict[str, Any]] = field(default_factory=list)  # every structlog event, raw
    lines: list[str] = field(default_factory=list)  # every stdlib log record (uvicorn, httpx, litestar)

    def api(self, key: str = DEMO_KEY) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {key}"}, timeout=30)

    def log_text(self) -> str:
        return "\n".join([*(repr(e) for e in self.events), *self.lines])


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("console")
    lines: list[str] = []
    handler = _Lines(lines)
    root = logging.getLogger()
    with structlog.testing.capture_logs() as events, running_simulators(job_seconds=JOB_SECONDS) as sims:
        port = free_port()
        settings = demo_settings(port=port, urls=sims, data_dir=str(data_dir), job_seconds=JOB_SECONDS)
        settings.keys.append(KeySettings(name="ops", tenant="ops", key=ADMIN_KEY, admin=True))
        settings.keys.append(KeySettings(name="browser", tenant="browser", key=BROWSER_KEY))
        with serve_in_thread(create_app(settings), port=port) as base:
            # Attached once everything started: the simulators' Litestar apps configure the
            # root logger as they are built, which would drop a handler added earlier.
            saved_level = root.level
            root.addHandler(handler)
            root.setLevel(logging.DEBUG)
            try:
                yield Stack(base=base, sims=sims, events=events, lines=lines)
            finally:
                root.removeHandler(handler)
                root.setLevel(saved_level)


class Session:
    """A signed-in console session driven over plain HTTP (what a browser without scripts does)."""

    def __init__(self, stack: Stack, key: str) -> None:
        self.http = httpx.Client(base_url=stack.base, timeout=30, follow_redirects=False)
        page = self.http.get("/console/sign-in")
        assert page.status_code == 200, page.text
        self.csrf = csrf_of(page.text)
        signed_in = self.http.post("/console/sign-in", data={"key": key, "_csrf_token": self.csrf})
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/console/compare", signed_in.text

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, data: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
        return self.http.post(path, data={**(data or {}), "_csrf_token": self.csrf}, **kw)

    def compare(self, providers: list[str], *, blind: bool = False, prompt: str = "a lighthouse") -> str:
        form: dict[str, Any] = {"prompt": prompt, "seconds": "5", "providers": providers}
        if blind:
            form["blind"] = "on"
        created = self.post("/console/compare", form, files={"first_frame": ("first.png", IMAGE.read_bytes(), "image/png")})
        assert created.status_code == 303, created.text
        location = created.headers["location"]
        assert location.startswith("/console/comparisons/cmp_")
        return location.rsplit("/", 1)[1]

    def close(self) -> None:
        self.http.close()


def csrf_of(html: str) -> str:
    match = re.search(r'name="_csrf_token" value="([0-9a-f]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def wait_comparison(stack: Stack, comparison_id: str, key: str = DEMO_KEY, timeout: float = 30.0) -> dict[str, Any]:
    with stack.api(key) as api:
        deadline = time.monotonic() + timeout
        while True:
            body: dict[str, Any] = api.get(f"/v1/comparisons/{comparison_id}").json()
            if body["status"] == "completed" or time.monotonic() > deadline:
                return body
            time.sleep(0.1)


@pytest.fixture
def session(stack: Stack) -> Iterator[Session]:
    s = Session(stack, DEMO_KEY)
    yield s
    s.close()
