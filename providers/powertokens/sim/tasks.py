"""Task state of the PowerTokens simulator: an in-memory store and the clock-derived lifecycle.

A task keeps only its creation time and how it will end; its status at any moment is computed
from `clock()`, so tests move time forward instead of sleeping. The task object is rendered in
either status vocabulary of UPSTREAMS 2.5 and with the video URL in any of its three places.
"""

from __future__ import annotations

import secrets
import string
import time
from typing import Any, Literal, NamedTuple

import msgspec

from providers.simkit import JobOutcome

ArkStatus = Literal["pending", "queued", "running", "succeeded", "failed", "cancelled", "expired"]
Vocabulary = Literal["ark", "openai"]
ResultUrlField = Literal["video_url", "metadata.url", "content.video_url", "none"]

RETENTION_SECONDS = 7 * 86400  # "only tasks created in the last 7 days can be queried" (UPSTREAMS 2.5)
URL_TTL_SECONDS = 86400  # video_url / last_frame_url are valid 24 h (UPSTREAMS 2.5)
EXECUTION_EXPIRES_AFTER = 172800  # Ark default: an unfinished task becomes `expired` (UPSTREAMS 3.2)
FPS = 24

TERMINAL: frozenset[ArkStatus] = frozenset({"succeeded", "failed", "cancelled", "expired"})
CANCELLABLE: frozenset[ArkStatus] = frozenset({"pending", "queued"})

# Lifecycle split of job_seconds: pending for the first 10 %, queued until 25 %, then running.
_PENDING_UNTIL, _QUEUED_UNTIL = 0.10, 0.25

DEFAULT_FAIL_CODE = "OutputVideoSensitiveContentDetected"
DEFAULT_FAIL_MESSAGE = "The request failed because the output video may contain sensitive information."

_OPENAI_WORDS: dict[ArkStatus, str] = {
    "pending": "queued",
    "queued": "queued",
    "running": "in_progress",
    "succeeded": "completed",
    "failed": "failed",
    "cancelled": "failed",  # error.code "cancelled"
    "expired": "failed",  # error.code "expired"
}


class Task(msgspec.Struct, kw_only=True):
    id: str
    model: str
    created: float  # clock() at creation
    duration: int
    size: str
    width: int
    height: int
    return_last_frame: bool
    outcome: JobOutcome
    fail_reason: str | None = None
    cancelled_at: float | None = None


class Phase(NamedTuple):
    status: ArkStatus
    since: float  # when this status began
    progress: int


def phase(task: Task, now: float, job_seconds: float) -> Phase:
    """The task's status at `now` (Ark words; the openai vocabulary is a rendering)."""
    if task.cancelled_at is not None:
        return Phase("cancelled", task.cancelled_at, 0)
    elapsed = now - task.created
    span = max(job_seconds, 0.0)
    if task.outcome != "hang" and elapsed >= span:
        return Phase("succeeded" if task.outcome == "succeed" else "failed", task.created + span, 100)
    if task.outcome == "hang" and elapsed >= EXECUTION_EXPIRES_AFTER:
        return Phase("expired", task.created + EXECUTION_EXPIRES_AFTER, 99)
    if elapsed < _PENDING_UNTIL * span:
        return Phase("pending", task.created, 0)
    if elapsed < _QUEUED_UNTIL * span:
        return Phase("queued", task.created + _PENDING_UNTIL * span, 0)
    run = (1 - _QUEUED_UNTIL) * span
    progress = int((elapsed - _QUEUED_UNTIL * span) / run * 100) if run > 0 else 99
    return Phase("running", task.created + _QUEUED_UNTIL * span, min(max(progress, 1), 99))


def completion_tokens(task: Task) -> int:
    """Ark's token count W·H·(fps·duration+1)/1024 (UPSTREAMS 3.4)."""
    return task.width * task.height * (FPS * task.duration + 1) // 1024


def public_status(status: ArkStatus, vocabulary: Vocabulary) -> str:
    return status if vocabulary == "ark" else _OPENAI_WORDS[status]


def render(
    task: Task,
    now: float,
    *,
    job_seconds: float,
    vocabulary: Vocabulary,
    result_url_field: ResultUrlField,
    base_url: str,
) -> dict[str, Any]:
    """The `GET /v1/videos/{id}` task object (UPSTREAMS 2.5 fields, NEWAPI OpenAIVideo shape)."""
    ph = phase(task, now, job_seconds)
    out: dict[str, Any] = {
        "id": task.id,
        "task_id": task.id,
        "object": "video",
        "model": task.model,
        "status": public_status(ph.status, vocabulary),
        "progress": ph.progress,
        "created_at": int(task.created),
        "updated_at": int(ph.since),
        "seconds": str(task.duration),
        "size": task.size,
    }
    if ph.status in TERMINAL:
        out["completed_at"] = int(ph.since)
    if ph.status == "failed":
        out["error"] = {"code": DEFAULT_FAIL_CODE, "message": task.fail_reason or DEFAULT_FAIL_MESSAGE}
    elif ph.status == "cancelled" and vocabulary == "openai":
        out["error"] = {"code": "cancelled", "message": "The task was cancelled by the user."}
    elif ph.status == "expired" and vocabulary == "openai":
        out["error"] = {"code": "expired", "message": "The task did not finish before its execution deadline."}
    if ph.status != "succeeded":
        return out
    out["expires_at"] = int(ph.since) + URL_TTL_SECONDS
    tokens = completion_tokens(task)
    out["usage"] = {"completion_tokens": tokens, "total_tokens": tokens}
    video_url = f"{base_url}/_sim/files/video.mp4?task={task.id}"
    last_frame_url = f"{base_url}/_sim/files/last_frame.png?task={task.id}" if task.return_last_frame else None
    if result_url_field == "content.video_url":
        out["content"] = {"video_url": video_url}
        if last_frame_url:
            out["content"]["last_frame_url"] = last_frame_url
        return out
    if result_url_field == "video_url":
        out["video_url"] = video_url
    elif result_url_field == "metadata.url":
        out["metadata"] = {"url": video_url}
    if last_frame_url:
        out["last_frame_url"] = last_frame_url
    return out


class TaskStore:
    """Every task and every submit the simulator has seen, in memory."""

    def __init__(self) -> None:
        self.tasks: dict[str, Task] = {}
        self.submissions: list[dict[str, Any]] = []

    def new_id(self, now: float) -> str:
        alphabet = string.ascii_lowercase + string.digits
        while True:
            stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(now))
            task_id = f"cgt-{stamp}-{''.join(secrets.choice(alphabet) for _ in range(5))}"
            if task_id not in self.tasks:
                return task_id

    def add(self, task: Task) -> None:
        self.tasks[task.id] = task

    def find(self, task_id: str, now: float) -> Task | None:
        """The task, unless unknown or past the 7-day query window."""
        task = self.tasks.get(task_id)
        if task is None or now - task.created > RETENTION_SECONDS:
            return None
        return task

    def release(self, now: float) -> int:
        """Let every hanging task run from now on and succeed after the simulator's job time."""
        hanging = [t for t in self.tasks.values() if t.outcome == "hang" and t.cancelled_at is None]
        for task in hanging:
            task.outcome, task.created = "succeed", now
        return len(hanging)

    def active(self, now: float, job_seconds: float) -> int:
        return sum(1 for t in self.tasks.values() if phase(t, now, job_seconds).status not in TERMINAL)

    def record(self, entry: dict[str, Any]) -> None:
        self.submissions.append(entry)

    def list_jobs(self) -> list[dict[str, Any]]:
        return list(self.submissions)

    def reset(self) -> None:
        self.tasks.clear()
        self.submissions.clear()
