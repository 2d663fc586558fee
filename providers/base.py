"""The adapter protocol and the types every upstream adapter shares.

An adapter is pure translation: it turns a normalized `GenerationRequest` into
`HttpCall`s and turns upstream `httpx.Response`s back into `UpstreamJob`s or
`UpstreamError`s. It never performs I/O, reads the environment or keeps globals;
`providers.client.UpstreamClient` does the I/O around it.
"""

from __future__ import annotations

import email.utils
import enum
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Generic, Literal, Protocol, Union

import httpx
import msgspec
from typing_extensions import TypeVar

MediaKind = Literal["image", "video", "audio"]
Mode = Literal["text", "first_frame", "first_last_frame", "keyframes", "reference"]
MODES: tuple[Mode, ...] = ("text", "first_frame", "first_last_frame", "keyframes", "reference")


# ---------------------------------------------------------------------------
# Normalized request: one strict type per input mode
# ---------------------------------------------------------------------------


class MediaFacts(Protocol):
    """What the capability check needs of a medium, whichever form it is in: bytes or a
    URL for an adapter (`Media`), or a stored file on a job (the gateway's own record)."""

    @property
    def kind(self) -> MediaKind: ...
    @property
    def width(self) -> int | None: ...
    @property
    def height(self) -> int | None: ...
    @property
    def duration_ms(self) -> int | None: ...
    @property
    def aspect(self) -> float | None: ...


class Media(msgspec.Struct, frozen=True, kw_only=True):
    """One input medium as the gateway hands it to an adapter.

    Exactly one of `url` (a remote URL the upstream may fetch itself) or `data`
    (bytes the gateway holds) is set. Probed facts (`width`, `height`,
    `duration_ms`) are filled in when the gateway could read them.
    """

    kind: MediaKind
    url: str | None = None
    data: bytes | None = None
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None

    def __post_init__(self) -> None:
        if (self.url is None) == (self.data is None):
            raise ValueError("Media needs exactly one of url or data")

    @property
    def aspect(self) -> float | None:
        if self.width and self.height:
            return self.width / self.height
        return None


# The request's media: `Media` for an adapter; the gateway stores and routes the same
# structure over its own file records, so the mode is decided once, at create.
M = TypeVar("M", default=Media)
N = TypeVar("N")


class TextInput(msgspec.Struct, frozen=True, tag="text"):
    prompt: str


class FirstFrameInput(msgspec.Struct, Generic[M], frozen=True, tag="first_frame"):
    first_frame: M
    prompt: str | None = None


class FirstLastFrameInput(msgspec.Struct, Generic[M], frozen=True, tag="first_last_frame"):
    first_frame: M
    last_frame: M
    prompt: str | None = None


class Keyframe(msgspec.Struct, Generic[M], frozen=True):
    image: M
    prompt: str | None = None
    seconds: int | None = None


class KeyframesInput(msgspec.Struct, Generic[M], frozen=True, tag="keyframes"):
    frames: tuple[Keyframe[M], ...]


class ReferenceInput(msgspec.Struct, Generic[M], frozen=True, tag="reference"):
    """Omni reference: the prompt names `@imageN`, `@videoN`, `@audioN` (1-based)."""

    prompt: str
    images: tuple[M, ...] = ()
    videos: tuple[M, ...] = ()
    audios: tuple[M, ...] = ()

    @property
    def total(self) -> int:
        return len(self.images) + len(self.videos) + len(self.audios)


ModeInput = Union[TextInput, FirstFrameInput[M], FirstLastFrameInput[M], KeyframesInput[M], ReferenceInput[M]]  # noqa: UP007 - a generic alias


# gc=False: data only, never in a cycle, and held by every job in flight (gateway.jobs.model.Job).
class GenerationRequest(msgspec.Struct, Generic[M], frozen=True, kw_only=True, gc=False):
    """What the caller asked for, validated structurally, mode already decided.

    `model` is the logical model name (`seedance-2.0`); the provider's own model
    id is passed to the adapter separately. `seconds` is `"auto"` when the caller
    let the upstream choose, `None` when the caller said nothing.
    """

    model: str
    input: ModeInput[M]
    seconds: int | Literal["auto"] | None = None
    ratio: str | None = None
    resolution: str | None = None
    seed: int | None = None
    generate_audio: bool | None = None
    watermark: bool | None = None
    return_last_frame: bool | None = None
    end_user: str | None = None

    @property
    def mode(self) -> Mode:
        return type(self.input).__struct_config__.tag  # type: ignore[return-value]

    @property
    def prompt(self) -> str | None:
        return getattr(self.input, "prompt", None)


def media_items(request: GenerationRequest[M]) -> list[tuple[str, MediaKind, M]]:
    """Every medium of a request with its public field path and kind, in request order.

    The one walk over a request's media: loading, storage, routing, capability
    checks and adapters all go through it (or through `map_media`, built on it)."""
    inp = request.input
    if isinstance(inp, FirstFrameInput):
        return [("first_frame", "image", inp.first_frame)]
    if isinstance(inp, FirstLastFrameInput):
        return [("first_frame", "image", inp.first_frame), ("last_frame", "image", inp.last_frame)]
    if isinstance(inp, KeyframesInput):
        return [(f"keyframes[{i}].image", "image", f.image) for i, f in enumerate(inp.frames)]
    if isinstance(inp, ReferenceInput):
        return [
            *((f"references.images[{i}]", "image", m) for i, m in enumerate(inp.images)),
            *((f"references.videos[{i}]", "video", m) for i, m in enumerate(inp.videos)),
            *((f"references.audios[{i}]", "audio", m) for i, m in enumerate(inp.audios)),
        ]
    return []


def map_media(request: GenerationRequest[M], replacements: Sequence[N]) -> GenerationRequest[N]:
    """`request` with its media replaced, in `media_items` order, by `replacements`."""
    items = iter(replacements)
    inp = request.input
    new: ModeInput[N]
    if isinstance(inp, TextInput):
        new = inp
    elif isinstance(inp, FirstFrameInput):
        new = FirstFrameInput(first_frame=next(items), prompt=inp.prompt)
    elif isinstance(inp, FirstLastFrameInput):
        new = FirstLastFrameInput(first_frame=next(items), last_frame=next(items), prompt=inp.prompt)
    elif isinstance(inp, KeyframesInput):
        new = KeyframesInput(frames=tuple(Keyframe(image=next(items), prompt=f.prompt, seconds=f.seconds) for f in inp.frames))
    else:
        new = ReferenceInput(
            prompt=inp.prompt,
            images=tuple(next(items) for _ in inp.images),
            videos=tuple(next(items) for _ in inp.videos),
            audios=tuple(next(items) for _ in inp.audios),
        )
    if next(items, None) is not None:
        raise ValueError("more replacements than media in the request")
    return msgspec.structs.replace(request, input=new)  # type: ignore[arg-type]  # the media type changes with `input`


# ---------------------------------------------------------------------------
# Normalized job state
# ---------------------------------------------------------------------------


class JobStatus(str, enum.Enum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


class ErrorClass(str, enum.Enum):
    """The one failure taxonomy every adapter maps into (SPEC section 4)."""

    INVALID_REQUEST = "invalid_request"
    AUTH = "auth"
    PAYMENT = "payment"
    CAPACITY = "capacity"
    RATE_LIMIT = "rate_limit"
    SESSION_EXPIRED = "session_expired"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    CONTENT_REJECTED = "content_rejected"
    TIMEOUT = "timeout"
    NOT_FOUND = "not_found"
    GENERATION_FAILED = "generation_failed"

    @property
    def retryable(self) -> bool:
        return self in _RETRYABLE


_RETRYABLE = frozenset(
    {
        ErrorClass.CAPACITY,
        ErrorClass.RATE_LIMIT,
        ErrorClass.UPSTREAM_UNAVAILABLE,
        ErrorClass.TIMEOUT,
        ErrorClass.GENERATION_FAILED,
    }
)


class ErrorInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A classified upstream failure, storable as data."""

    error_class: ErrorClass
    message: str
    code: str | None = None  # the upstream's own code or status word, verbatim
    http_status: int | None = None
    retryable: bool = False
    retry_after: float | None = None  # seconds, when the upstream said so
    # vidgate's own reason, when the gateway decided (submit_outcome_unknown, upstream_timeout,
    # queued_deadline, cancelled, no_account); shown to callers as the error code
    reason: str | None = None

    @classmethod
    def of(cls, error_class: ErrorClass, message: str, **kw: Any) -> ErrorInfo:
        kw.setdefault("retryable", error_class.retryable)
        return cls(error_class=error_class, message=message, **kw)


class UpstreamError(Exception):
    """A call to an upstream failed; `info` says how.

    `ambiguous` is True when a submit may have created a job upstream even though
    we got no usable answer: such a submit must be reconciled, never resent blindly.
    """

    def __init__(self, info: ErrorInfo, *, ambiguous: bool = False) -> None:
        super().__init__(f"{info.error_class.value}: {info.message}")
        self.info = info
        self.ambiguous = ambiguous

    @classmethod
    def of(cls, error_class: ErrorClass, message: str, *, ambiguous: bool = False, **kw: Any) -> UpstreamError:
        return cls(ErrorInfo.of(error_class, message, **kw), ambiguous=ambiguous)


class VideoResult(msgspec.Struct, frozen=True, kw_only=True):
    video_url: str | None = None
    last_frame_url: str | None = None
    thumbnail_url: str | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None  # seconds
    has_audio: bool | None = None


class Cost(msgspec.Struct, frozen=True, kw_only=True):
    amount: float
    unit: str  # as the upstream reports it: "credits", "usd", "tokens"
    usd_estimate: float | None = None


class UpstreamJob(msgspec.Struct, frozen=True, kw_only=True):
    """One upstream job as an adapter understood a response about it."""

    upstream_id: str
    status: JobStatus
    upstream_status: str  # the upstream's word, verbatim
    model: str | None = None
    progress: int | None = None
    result: VideoResult | None = None
    error: ErrorInfo | None = None
    cost: Cost | None = None
    account: str | None = None
    # what the upstream echoes back of `SubmitContext.callback_ref` (useapi `request.replyRef`),
    # when it does: proof that this upstream job is the one a given submit created
    callback_ref: str | None = None


# ---------------------------------------------------------------------------
# Pure HTTP description
# ---------------------------------------------------------------------------


class HttpCall(msgspec.Struct, frozen=True, kw_only=True):
    """One HTTP request an adapter wants made, relative to the provider's base URL.

    `path` is already percent-encoded where needed. `json` is encoded by the client;
    `content` is sent raw (binary uploads).
    """

    method: str
    path: str
    json: Any = None
    content: bytes | None = None
    headers: Mapping[str, str] = msgspec.field(default_factory=dict)
    params: Mapping[str, str] = msgspec.field(default_factory=dict)


class SubmitContext(msgspec.Struct, frozen=True, kw_only=True):
    """Per-submit facts chosen by the gateway, not by the caller."""

    account: str | None = None  # upstream account to pin the job to, if the upstream has accounts
    callback_url: str | None = None  # where the upstream should POST status changes
    callback_ref: str | None = None
    # how long vidgate will wait for the job before giving up on it (the provider's max job
    # age): an upstream that can expire a job itself may be told to stop billing after it
    max_age_seconds: float | None = None


class Adapter(Protocol):
    """Pure translation between the normalized request and one upstream's wire format.

    Submission may take several calls (uploads first): `uploads()` lists them keyed
    by an opaque key, `parse_upload()` turns each answer into a reference, and
    `build_submit()` receives every reference by key.

    Reconciliation: a submit whose answer was lost may still have created a paid job.
    `build_find()` / `parse_find()` look for it in the upstream's own listing (matched by
    the callback URL or reference the submit carried); `parse_callback()` reads the job id
    an upstream callback names, which the gateway then re-fetches (a callback body is
    never trusted). An upstream with neither returns None from all three.
    """

    provider_type: ClassVar[str]
    # "bytes": every Media carries data (the adapter uploads it);
    # "url": Media carries a URL the upstream fetches itself, or data for the kinds in
    # `inline_media` (sent inline, e.g. as a data: URL) up to that many bytes (None: any size).
    media_delivery: ClassVar[Literal["bytes", "url"]]
    inline_media: ClassVar[Mapping[MediaKind, int | None]]

    def auth_headers(self, secret: str) -> dict[str, str]: ...

    def uploads(self, request: GenerationRequest, ctx: SubmitContext) -> list[tuple[str, HttpCall]]: ...

    def parse_upload(self, response: httpx.Response) -> str: ...

    def build_submit(self, request: GenerationRequest, model_id: str, refs: Mapping[str, str], ctx: SubmitContext) -> HttpCall: ...

    def parse_submit(self, response: httpx.Response) -> UpstreamJob: ...

    def build_poll(self, upstream_id: str) -> HttpCall: ...

    def parse_poll(self, response: httpx.Response) -> UpstreamJob: ...

    def build_cancel(self, upstream_id: str) -> HttpCall | None: ...

    def parse_cancel(self, response: httpx.Response) -> None: ...

    def content_call(self, upstream_id: str, job: UpstreamJob) -> HttpCall | None:
        """A call on the provider's own base URL that returns the video bytes, if any."""
        ...

    def estimate_cost(self, model_id: str, resolution: str | None, seconds: float | None) -> Cost | None:
        """A USD estimate from the provider's price table, where one exists."""
        ...

    def build_find(self, ctx: SubmitContext) -> HttpCall | None:
        """A listing call that can reveal the job a submit with `ctx` created, or None."""
        ...

    def parse_find(self, response: httpx.Response, ctx: SubmitContext) -> UpstreamJob | None:
        """The job in the listing that the submit with `ctx` created, or None if it is not there."""
        ...

    def parse_callback(self, body: bytes) -> str | None:
        """The upstream job id a callback body names (None if it names none)."""
        ...


class AdapterDefaults:
    """The optional parts of `Adapter` for upstreams that lack them: no cancel, no
    content endpoint, no price table, no way to find a lost submit, no callbacks."""

    inline_media: ClassVar[Mapping[MediaKind, int | None]] = {}

    def build_cancel(self, upstream_id: str) -> HttpCall | None:
        return None

    def parse_cancel(self, response: httpx.Response) -> None:
        return None

    def content_call(self, upstream_id: str, job: UpstreamJob) -> HttpCall | None:
        return None

    def estimate_cost(self, model_id: str, resolution: str | None, seconds: float | None) -> Cost | None:
        return None

    def build_find(self, ctx: SubmitContext) -> HttpCall | None:
        return None

    def parse_find(self, response: httpx.Response, ctx: SubmitContext) -> UpstreamJob | None:
        return None

    def parse_callback(self, body: bytes) -> str | None:
        return None


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None, cap: float = 600.0) -> float | None:
    """Seconds to wait as the upstream asked: `retry-after-ms`, or `Retry-After` in
    seconds or as an HTTP date. Capped at `cap`; `None` when absent or unreadable."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return min(max(float(ms) / 1000, 0.0), cap)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return min(max(float(value), 0.0), cap)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = time.time() if now is None else now
    return min(max(when.timestamp() - now, 0.0), cap)
