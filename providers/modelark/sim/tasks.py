"""The simulator's tasks: the queue with per-model concurrency, and the task object.

Lifecycle (MODELARK.md §5.1, §9.2, §13.4): a task is `queued` for at least `queue_seconds`,
then starts as soon as its model has a free running slot, highest `priority` first, FIFO
among equals; it runs `run_seconds`, then ends `succeeded` or `failed` (or never, for a
"hang" task). A task still queued or running at `created_at + execution_expires_after`
ends `expired`. Nothing runs in the background: `Board.advance(now)` replays every event
up to `now` in time order, so tests move an injected clock instead of sleeping.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

import msgspec

from providers.modelark.sim.catalog import FOUR_K_CONCURRENCY, MODELS
from providers.modelark.sim.validate import Accepted
from providers.simkit import JobOutcome

Status = Literal["queued", "running", "succeeded", "failed", "cancelled", "expired"]
TERMINAL: frozenset[Status] = frozenset({"succeeded", "failed", "cancelled", "expired"})

RETENTION_SECONDS = 7 * 86400  # a task id is kept 7 days from created_at (§5.2)
CANCELLED_RETENTION_SECONDS = 86400  # a cancelled task goes after 24 h (§5.2)
MEDIA_TTL_SECONDS = 86400  # video_url / last_frame_url live 24 h (§5)
FPS = 24


class Task(msgspec.Struct, kw_only=True):
    seq: int
    id: str
    request: Accepted
    pool: str  # concurrency pool: the model, or "<model>@4k" (§9.2)
    created: float
    ready_at: float  # created + queue_seconds
    run_seconds: float
    base_url: str  # of the create request: where the media URLs point
    ratio: str  # resolved: never "adaptive" (§5)
    duration: int  # resolved: never -1 (§4.2)
    seed: int  # resolved: never -1
    width: int
    height: int
    tokens: int
    outcome: JobOutcome
    fail_code: str | None = None
    fail_message: str | None = None
    status: Status = "queued"
    started: float | None = None
    updated: float = 0.0
    ended: float | None = None


class Transition(NamedTuple):
    task: Task
    status: Status
    at: float


def pool_of(request: Accepted) -> str:
    return f"{request.model}@4k" if request.resolution == "4k" else request.model


def billed_tokens(request: Accepted, width: int, height: int, duration: int) -> int:
    """§11.1: W·H·(24·d+1)/1024 floored; an input video counts at least 4 s more (its real
    length can't be measured offline); draft tokens × 0.6 with audio, × 0.7 silent (§11.1)."""
    frames = request.frames if request.frames is not None else FPS * duration
    if request.video_input:
        frames += FPS * 4
    tokens = width * height * (frames + 1) // 1024
    if request.draft:
        tokens = math.floor(tokens * (0.6 if request.generate_audio else 0.7))
    return tokens


class Board:
    """Every task the simulator knows, and the event replay that moves them."""

    def __init__(self, max_running: int | None) -> None:
        self.max_running = max_running
        self.reset()

    def reset(self) -> None:
        self.tasks: dict[str, Task] = {}
        self.active: dict[str, Task] = {}  # queued or running
        self.cursor = -math.inf  # the time of the last event replayed
        self.seq = 0

    def limit(self, pool: str) -> int:
        if self.max_running is not None:
            return self.max_running
        return FOUR_K_CONCURRENCY if pool.endswith("@4k") else MODELS[pool].concurrency

    def add(self, task: Task) -> None:
        self.tasks[task.id] = task
        self.active[task.id] = task

    def queued(self) -> int:
        return sum(1 for t in self.active.values() if t.status == "queued")

    def find(self, task_id: str, now: float) -> Task | None:
        """The task, unless unknown, deleted, or past its retention (§5.2)."""
        task = self.tasks.get(task_id)
        if task is None or now - task.created >= RETENTION_SECONDS:
            return None
        if task.status == "cancelled" and task.ended is not None and now - task.ended >= CANCELLED_RETENTION_SECONDS:
            return None
        return task

    def cancel(self, task: Task, now: float) -> None:
        task.status, task.ended, task.updated = "cancelled", now, now
        self.active.pop(task.id, None)

    def delete(self, task: Task) -> None:
        self.tasks.pop(task.id, None)
        self.active.pop(task.id, None)

    def advance(self, now: float) -> list[Transition]:
        """Replay every event up to `now`; the status changes, in the order they happened."""
        changes: list[Transition] = []
        while (event := self._next_event()) is not None and event[0] <= now:
            at, _, _, task, status = event
            self.cursor = max(self.cursor, at)
            task.status, task.updated = status, at
            if status == "running":
                task.started = at
            else:
                task.ended = at
                self.active.pop(task.id, None)
            changes.append(Transition(task, status, at))
        return changes

    def _next_event(self) -> tuple[float, int, int, Task, Status] | None:
        """The earliest (time, kind order, seq, task, new status): ends before expiries
        before starts at the same instant, so a slot freed at t is reusable at t."""
        best: tuple[float, int, int, Task, Status] | None = None

        def offer(event: tuple[float, int, int, Task, Status]) -> None:
            nonlocal best
            if best is None or event[:3] < best[:3]:
                best = event

        running: dict[str, int] = {}
        waiting: dict[str, list[Task]] = {}
        for task in self.active.values():
            if task.status == "running":
                running[task.pool] = running.get(task.pool, 0) + 1
                if task.outcome != "hang" and task.started is not None:
                    offer((task.started + task.run_seconds, 0, task.seq, task, "succeeded" if task.outcome == "succeed" else "failed"))
            else:
                waiting.setdefault(task.pool, []).append(task)
            offer((task.created + task.request.execution_expires_after, 1, task.seq, task, "expired"))
        for pool, tasks in waiting.items():
            if running.get(pool, 0) >= self.limit(pool):
                continue
            at = max(self.cursor, min(t.ready_at for t in tasks))
            pick = min((t for t in tasks if t.ready_at <= at), key=lambda t: (-t.request.priority, t.created, t.seq))
            offer((at, 2, pick.seq, pick, "running"))
        return best


def render(task: Task, status: Status | None = None, at: float | None = None) -> dict[str, Any]:
    """The task object (§5) as it was in `status` (default: now), per the §5 rules of which
    fields appear in which state."""
    status = status or task.status
    req = task.request
    out: dict[str, Any] = {
        "id": task.id,
        "model": req.model,
        "status": status,
        "created_at": int(task.created),
        "updated_at": int(task.updated if at is None else at),
    }
    if status in ("succeeded", "failed", "expired", "cancelled"):
        out["error"] = {"code": task.fail_code, "message": task.fail_message} if status == "failed" else None
    if status in ("succeeded", "failed"):
        out["seed"] = task.seed
        out["resolution"] = req.resolution
        out["ratio"] = task.ratio
        if req.frames is not None:
            out["frames"] = req.frames
        else:
            out["duration"] = task.duration
        out["framespersecond"] = FPS
    if status == "succeeded":
        query = f"?X-Tos-Expires={MEDIA_TTL_SECONDS}"
        out["content"] = {"video_url": f"{task.base_url}/tos/{task.id}.mp4{query}"}
        if req.return_last_frame:
            out["content"]["last_frame_url"] = f"{task.base_url}/tos/{task.id}-last-frame.png{query}"
        out["usage"] = {"completion_tokens": task.tokens, "total_tokens": task.tokens}
    if req.generate_audio is not None:
        out["generate_audio"] = req.generate_audio
    if req.safety_identifier is not None:
        out["safety_identifier"] = req.safety_identifier
    out["priority"] = req.priority
    if req.draft is not None:
        out["draft"] = req.draft
    if req.draft_task_id is not None:
        out["draft_task_id"] = req.draft_task_id
    out["service_tier"] = req.service_tier
    out["execution_expires_after"] = req.execution_expires_after
    return out
