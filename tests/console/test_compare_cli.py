"""`vidgate compare` as a person runs it: a real process against a running vidgate, its
output read line by line as it streams."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.console.conftest import DEMO_KEY, IMAGE, Stack

REPO = Path(__file__).resolve().parents[2]
PROVIDERS = {"useapi", "powertokens", "modelark"}


class Streamed:
    """A process whose stdout lines arrive with the time they arrived (seconds after start)."""

    def __init__(self, args: list[str]) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", *args],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "VIDGATE_API_KEY": ""},
        )
        self.lines: queue.Queue[tuple[float, str] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put((time.monotonic() - self.started, line.rstrip("\n")))
        self.lines.put(None)

    def all(self, timeout: float = 60.0) -> list[tuple[float, str]]:
        out: list[tuple[float, str]] = []
        deadline = time.monotonic() + timeout
        while (item := self.lines.get(timeout=max(0.1, deadline - time.monotonic()))) is not None:
            out.append(item)
        self.proc.wait(timeout=10)
        return out


def test_compare_prints_the_id_at_once_then_a_line_per_provider_while_they_run(stack: Stack, tmp_path: Path) -> None:
    frame = tmp_path / "frame.png"
    frame.write_bytes(IMAGE.read_bytes())
    run = Streamed(["compare", "--url", stack.base, "--key", DEMO_KEY, "--prompt", "a kite", "--seconds", "5", "--first-frame", str(frame)])
    lines = run.all()
    assert run.proc.returncode == 0, (lines, run.proc.stderr.read() if run.proc.stderr else "")
    (first_at, first), (_, second) = lines[0], lines[1]
    print(f"\nthe id came {first_at:.2f}s after the start")
    assert first.startswith("comparison cmp_") and first_at < 1.0, lines[:2]
    comparison_id = first.split()[1]
    assert second == f"console    {stack.base}/console/comparisons/{comparison_id}"

    table = next(i for i, (_, line) in enumerate(lines) if line.startswith(f"comparison {comparison_id}  model"))
    progress = [line.split() for _, line in lines[2:table]]
    running = {p[0] for p in progress if p[1] in ("queued", "in_progress")}
    assert running == PROVIDERS, progress  # each provider had a line while it was still running
    assert {p[0] for p in progress if p[1] == "completed"} == PROVIDERS
    assert lines[table][0] > first_at  # the table came after the progress, not instead of it
    rows = {line.split()[0]: line.split() for _, line in lines[table + 2 : table + 5]}
    assert set(rows) == PROVIDERS and all(row[1] == "completed" and row[3].startswith("$") for row in rows.values())

    with stack.api() as api:
        results = api.get(f"/v1/comparisons/{comparison_id}").json()["results"]
        assert {api.get(f"/v1/videos/{r['video_id']}").json()["mode"] for r in results} == {"first_frame"}


def test_compare_blind_shows_labels_and_sends_reference_media(stack: Stack) -> None:
    image = "data:image/png;base64," + __import__("base64").b64encode(IMAGE.read_bytes()).decode()
    run = Streamed(
        [
            "compare",
            "--url",
            stack.base,
            "--key",
            DEMO_KEY,
            "--prompt",
            "@image1 waves",
            "--seconds",
            "5",
            "--providers",
            "powertokens,modelark",
            "--reference-image",
            image,
            "--blind",
        ]
    )
    lines = [line for _, line in run.all()]
    assert run.proc.returncode == 0, lines
    text = "\n".join(lines[1:])  # the first line is the id
    assert "powertokens" not in text and "modelark" not in text  # blind: labels only
    assert {line.split()[0] for line in lines[2:] if line.startswith("  ")} == {"A", "B"}
    assert "hidden" in text and "blind: who made which stays hidden until you vote at" in text
    comparison_id = lines[0].split()[1]
    with stack.api() as api:
        comparison = api.get(f"/v1/comparisons/{comparison_id}").json()
        assert comparison["blind"] is True
        assert {api.get(f"/v1/videos/{r['video_id']}").json()["mode"] for r in comparison["results"]} == {"reference"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--first-frame", "/nonexistent/frame.png"], "no such file"), (["--providers", "nope"], "refused (HTTP 422)")],
)
def test_compare_says_what_went_wrong(stack: Stack, extra: list[str], message: str) -> None:
    run = Streamed(["compare", "--url", stack.base, "--key", DEMO_KEY, "--prompt", "x", *extra])
    assert run.all() == []
    assert run.proc.returncode == 2
    assert run.proc.stderr is not None and message in run.proc.stderr.read()
