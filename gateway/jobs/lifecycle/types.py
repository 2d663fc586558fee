"""The lifecycle's vocabulary: what it is told (`Facts`), what happens to a job (events),
what it asks the driver to do (actions), and a decision (`Step`). Data only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec

from gateway.jobs.model import Job, OutputCopy
from providers.base import ErrorClass, ErrorInfo, UpstreamJob

# ---------------------------------------------------------------------------
# What the lifecycle is told about the world
# ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ProviderView:
    """One provider as the lifecycle needs to know it at this moment."""

    routable: bool = True  # may take new attempts (configured, enabled, not retired by a reload)
    cooling: bool = False  # health says: prefer others while they can serve
    poll_interval: float = 5.0
    max_age: float = 1800.0  # an attempt unfinished upstream after this is given up
    finds: bool = False  # the upstream can list jobs, to find a submit whose answer was lost
    calls_back: bool = False  # the upstream calls back with the job's id


class Facts(msgspec.Struct, frozen=True, kw_only=True):
    """What the lifecycle is told about the world for one decision. A msgspec struct, not
    a dataclass: the engine builds one per step (twice a poll), and a frozen dataclass's
    constructor costs several times more."""

    now: float
    providers: Mapping[str, ProviderView]  # a provider absent here can't be driven at all
    poll_min: float = 1.0
    poll_max: float = 30.0
    keep_outputs: bool = True
    output_retention: float = 7 * 24 * 3600.0  # how long our own copy serves /content
    output_ttl: float = 24 * 3600.0  # how long an upstream's result link lives
    max_poll_failures: int = 12
    find_interval: float = 5.0  # the first lookup for a lost submit; doubles up to poll_max


# ---------------------------------------------------------------------------
# Events: what just happened
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    """The engine took the job: created here, claimed from a lapsed lease, or resumed."""


@dataclass(frozen=True)
class Tick:
    """A timer the job asked for (`WakeAt`) fired; the lifecycle decides what is due."""


@dataclass(frozen=True)
class SlotGranted:
    provider: str
    model_id: str
    account: str | None


@dataclass(frozen=True)
class SlotRefused:
    provider: str
    model_id: str
    reason: str  # no account can ever serve it (none in its regions, or all taken out)


@dataclass(frozen=True)
class Prepared:
    """Uploads done; the paid submit may follow."""


@dataclass(frozen=True)
class PrepareFailed:
    error: ErrorInfo


@dataclass(frozen=True)
class Submitted:
    upstream: UpstreamJob


@dataclass(frozen=True)
class SubmitFailed:
    error: ErrorInfo
    ambiguous: bool  # the upstream may have created a job anyway


@dataclass(frozen=True)
class Polled:
    upstream: UpstreamJob
    provider: str


@dataclass(frozen=True)
class PollFailed:
    error: ErrorInfo


@dataclass(frozen=True)
class Found:
    upstream: UpstreamJob | None  # None: not (yet) in the upstream's listing


@dataclass(frozen=True)
class CalledBack:
    upstream_id: str | None  # the job id the callback named, if it named one


@dataclass(frozen=True)
class Copied:
    outputs: Mapping[str, OutputCopy]


@dataclass(frozen=True)
class CancelRequested:
    pass


@dataclass(frozen=True)
class LeaseLost:
    pass


@dataclass(frozen=True)
class Refreshed:
    """A write lost its version race; this is the job as the store has it now."""

    stored: Job


Event = (
    Started
    | Tick
    | SlotGranted
    | SlotRefused
    | Prepared
    | PrepareFailed
    | Submitted
    | SubmitFailed
    | Polled
    | PollFailed
    | Found
    | CalledBack
    | Copied
    | CancelRequested
    | LeaseLost
    | Refreshed
)


# ---------------------------------------------------------------------------
# Actions: what the driver must do
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Save:
    """Write the job (version-checked). `detail` also records a status event and tells
    watchers; a terminal save carries the job's webhook deliveries in the same write.
    `routine`: the status did not change (progress alone moved, or a submit left the job
    queued, which the engine's `job.submitted` line tells), so the write is logged at debug,
    not info: a job polled for minutes would otherwise log every ten points."""

    detail: str | None = None
    routine: bool = False


@dataclass(frozen=True)
class WakeAt:
    at: float


@dataclass(frozen=True)
class AcquireSlot:
    provider: str
    model_id: str


@dataclass(frozen=True)
class Prepare:
    provider: str
    model_id: str
    account: str | None


@dataclass(frozen=True)
class Submit:
    provider: str
    model_id: str


@dataclass(frozen=True)
class Poll:
    provider: str
    upstream_id: str


@dataclass(frozen=True)
class Find:
    provider: str


@dataclass(frozen=True)
class CancelUpstream:
    provider: str
    upstream_id: str


@dataclass(frozen=True)
class CopyOutputs:
    provider: str
    upstream: UpstreamJob


@dataclass(frozen=True)
class RecordOutcome:
    """Tell the provider's health how an attempt ended (None: it succeeded)."""

    provider: str
    error_class: ErrorClass | None


@dataclass(frozen=True)
class DisableAccount:
    provider: str
    account: str
    reason: str


@dataclass(frozen=True)
class Forget:
    """Stop driving the job: it ended, or another process holds it now."""


LifecycleAction = Save | WakeAt | AcquireSlot | Prepare | Submit | Poll | Find | CancelUpstream | CopyOutputs | RecordOutcome | DisableAccount | Forget


@dataclass(frozen=True)
class Step:
    job: Job
    actions: list[LifecycleAction] = field(default_factory=list)
