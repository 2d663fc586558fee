"""The durable records: a job (one vidgate video), its attempts, and stored files.

A job keeps the caller's request as the strict per-mode structure adapters take,
with each medium a `MediaRef` to a stored file, so it can be re-translated for any
provider after a restart or a failover without deciding its mode again.
Everything an upstream said lives on the attempt that talked to it.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from providers.base import Cost, ErrorInfo, GenerationRequest, JobStatus, MediaKind, VideoResult

# preparing: uploads before the paid call (never stored); submitting: stored before the paid
# call, so a crash during it is an unknown outcome; reconciling: the outcome is unknown and
# the upstream is being asked; unknown: reconciling gave up (the job failed for it).
AttemptStatus = Literal["preparing", "submitting", "submitted", "reconciling", "completed", "failed", "cancelled", "unknown"]


class MediaRef(msgspec.Struct, frozen=True, kw_only=True):
    """One input medium as a job stores it: a stored file with its probed facts, and the
    caller's own https URL when there was one (passed through to URL-taking upstreams)."""

    kind: MediaKind
    file_id: str
    url: str | None = None
    content_type: str | None = None
    bytes: int | None = None
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None

    @property
    def aspect(self) -> float | None:
        if self.width and self.height:
            return self.width / self.height
        return None


StoredRequest = GenerationRequest[MediaRef]


class SlotRef(msgspec.Struct, frozen=True):
    """The provider slot a job holds: one of an account's `max_jobs`, or of the provider's pool."""

    provider: str
    account: str | None = None

    @property
    def key(self) -> str:
        """How the store names the slot (counted across replicas)."""
        return f"{self.provider}/{self.account or ''}"

    @classmethod
    def parse(cls, key: str | None) -> SlotRef | None:
        if not key:
            return None
        provider, _, account = key.partition("/")
        return cls(provider, account or None)


class Candidate(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    provider: str
    model_id: str | None = None
    skipped: str | None = None


class RoutingTrace(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):  # gc=False: see Job
    rule: str | None = None
    arm: str | None = None
    candidates: list[Candidate] = []

    @property
    def usable(self) -> list[Candidate]:
        return [c for c in self.candidates if c.skipped is None]


class Attempt(msgspec.Struct, kw_only=True, gc=False):  # gc=False: see Job
    provider: str
    model_id: str
    started_at: float
    status: AttemptStatus = "submitting"
    upstream_id: str | None = None
    account: str | None = None
    upstream_status: str | None = None
    ended_at: float | None = None
    error: ErrorInfo | None = None
    reconcile_until: float | None = None  # while reconciling: when to stop looking and give up
    cost: Cost | None = None  # what this attempt's upstream job cost, as it reported


class OutputCopy(msgspec.Struct, frozen=True, kw_only=True):
    """A finished output copied into vidgate's own storage (upstream URLs expire)."""

    key: str  # the storage key, e.g. "video_abc/video.mp4"
    content_type: str
    bytes: int
    sha256: str
    stored_at: float


# gc=False on Job and the structs it holds (RoutingTrace, Attempt, GenerationRequest): they
# hold data only and are never part of a reference cycle, and the engine holds thousands
# of them for minutes. Tracked, they were most of what a full collection walked with the
# event loop stopped (in a bare interpreter: 20 ms at 10,000 jobs, 10 ms untracked).
class Job(msgspec.Struct, kw_only=True, gc=False):
    id: str
    tenant: str
    key_name: str
    created_at: float
    updated_at: float
    status: JobStatus
    model: str
    mode: str
    request: StoredRequest
    prompt: str | None = None
    seconds: str | None = None
    ratio: str | None = None
    resolution: str | None = None
    metadata: dict[str, str] = {}
    progress: int = 0
    completed_at: float | None = None
    expires_at: float | None = None
    error: ErrorInfo | None = None
    result: VideoResult | None = None
    cost: Cost | None = None
    routing: RoutingTrace = msgspec.field(default_factory=RoutingTrace)
    attempts: list[Attempt] = []
    webhook_url: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    callback_token: str | None = None
    next_poll_at: float | None = None
    poll_failures: int = 0
    cancel_requested: bool = False
    queued_deadline_seconds: float | None = None  # from the route: cancel upstream and move on if still queued after this
    outputs: dict[str, OutputCopy] = {}  # variant ("video", "thumbnail", "last_frame") -> vidgate's own copy
    slot: SlotRef | None = None  # the provider slot this job holds; the store counts it across replicas
    version: int = 0  # bumped by the store on every update (optimistic concurrency)

    @property
    def attempt(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def provider(self) -> str | None:
        return self.attempts[-1].provider if self.attempts else None


class StatusEvent(msgspec.Struct, kw_only=True):
    job_id: str
    at: float
    status: str
    progress: int = 0
    detail: str | None = None


class FileRecord(msgspec.Struct, kw_only=True):
    id: str
    tenant: str
    created_at: float
    filename: str | None
    content_type: str
    bytes: int
    kind: Literal["image", "video", "audio"]
    purpose: str = "video_input"
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    sha256: str | None = None


class DeliveryAttempt(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One POST to a receiver: when, how it answered, how long it took."""

    at: float
    status_code: int | None = None
    latency_ms: int | None = None
    error: str | None = None


class WebhookDelivery(msgspec.Struct, kw_only=True):
    id: str  # webhook-id, stable across retries and redeliveries of one event
    job_id: str
    tenant: str
    url: str
    event_type: str
    payload: bytes
    created_at: float
    endpoint: str | None = None  # the configured endpoint's name; None = the job's own webhook_url
    key_name: str | None = None  # the key that created the job: picks the secrets for the job's own webhook_url
    attempts: int = 0
    next_attempt_at: float | None = None
    status: Literal["pending", "delivered", "failed"] = "pending"
    last_status_code: int | None = None
    last_error: str | None = None
    log: list[DeliveryAttempt] = []  # every attempt, oldest first


class ComparisonChild(msgspec.Struct, frozen=True, kw_only=True):
    provider: str
    video_id: str


class ComparisonSkip(msgspec.Struct, frozen=True, kw_only=True):
    provider: str
    reason: str


class ComparisonVote(msgspec.Struct, frozen=True, kw_only=True):
    """A person's verdict on a comparison: the provider whose video was better, or a tie."""

    winner: str | None  # a child's provider; None = a tie
    at: float
    key_name: str  # the key that voted (through the API or a console session)


class Comparison(msgspec.Struct, kw_only=True):
    """One request fanned out to several providers: a child job per provider that could serve it.

    A blind comparison is shown with its children labelled A, B, ... in `shown` order (shuffled
    at creation, so "A" says nothing about who made it) until someone votes."""

    id: str
    tenant: str
    created_at: float
    model: str
    children: list[ComparisonChild]
    skipped: list[ComparisonSkip] = []
    idempotency_key: str | None = None
    request_hash: str | None = None
    blind: bool = False
    shown: list[str] = []  # providers in the order they are labelled A, B, ...; empty = `children` order
    vote: ComparisonVote | None = None

    def labelled(self) -> list[tuple[str, ComparisonChild]]:
        """Each child with its label ("A", "B", ...), in the order they are shown."""
        by_provider = {c.provider: c for c in self.children}
        order = [by_provider[p] for p in self.shown if p in by_provider] or self.children
        return [(_label(i), child) for i, child in enumerate(order)]


def _label(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters
