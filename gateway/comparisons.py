"""Comparisons: one request fanned out to several providers, results side by side.

A comparison is a set of ordinary video jobs, one per provider, each created
through `VideoService.create` with `provider` pinned and tagged with metadata
`comparison_id`. Everything about a child (routing, retries, webhooks, content,
deletion) is the video job's; the comparison only remembers which jobs it made
and which providers it skipped, and reads the jobs back to report.

Blind comparisons and votes: `blind` shuffles the order in which the children are labelled
A, B, ... (`Comparison.shown`); the console shows labels instead of providers until a
person votes. The API always names the providers (each child is an ordinary video the key
can read anyway). A vote names the better provider, or a tie, among the completed videos;
the first vote stays, and `/v1/stats` turns votes into win rates.

Idempotency-Key: the comparison keeps the key and a fingerprint of its body, so a
replay returns the stored comparison and a different body under the same key is
a 409. Each child is also created with a key derived from the caller's key and
the provider: a retry after a request that died half-way returns the children
already made (never a second paid upstream job) under their original comparison id.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any, Literal

import msgspec

from gateway.auth import Caller
from gateway.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unserviceable
from gateway.jobs.model import Comparison, ComparisonChild, ComparisonSkip, ComparisonVote, Job
from gateway.schema import CostInfo, CreateVideoBody, VideoError, check_json_shape, decode_json, not_utf8
from gateway.service import VideoService, check_idempotency_key, fingerprint_of
from gateway.views import video_of
from providers.base import JobStatus

COMPARISON_KEY = "comparison_id"
MAX_METADATA_KEYS = 16  # gateway.schema.MetadataMap


def new_comparison_id() -> str:
    return "cmp_" + secrets.token_hex(24)


# -- the public objects ---------------------------------------------------------


class ComparisonRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`POST /v1/comparisons`. `request` is the body of `POST /v1/videos`, without `provider`."""

    request: msgspec.Raw
    providers: list[str] | Literal["all"] = "all"
    blind: bool = False  # label the videos A, B, ... in a shuffled order until someone votes (the console)


class VoteRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`POST /v1/comparisons/{id}/vote`: the provider whose video was better, or `tie: true`."""

    winner: str | None = None
    tie: bool = False


class ComparisonResult(msgspec.Struct, kw_only=True):
    label: str  # "A", "B", ...: how a blind comparison shows this result
    provider: str
    video_id: str
    status: str  # a video status, or "deleted" once the caller deleted the child
    progress: int  # 0-100, as the video's own
    time_to_video_seconds: float | None
    cost: CostInfo | None
    video_url: str | None  # vidgate's own content URL path
    upstream_video_url: str | None
    error: VideoError | None


class SkippedProvider(msgspec.Struct, kw_only=True):
    provider: str
    reason: str


class VoteObject(msgspec.Struct, kw_only=True):
    winner: str | None  # the better video's provider; None for a tie
    winner_label: str | None
    tie: bool
    voted_at: int


class ComparisonObject(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["comparison"] = "comparison"
    created_at: int
    model: str
    status: Literal["in_progress", "completed"]
    blind: bool
    results: list[ComparisonResult]  # in the order they are labelled A, B, ...
    skipped: list[SkippedProvider]
    vote: VoteObject | None


_request_decoder = msgspec.json.Decoder(ComparisonRequest)


def decode_comparison(raw: bytes) -> tuple[ComparisonRequest, CreateVideoBody]:
    """The outer body and the video request inside it; errors name the field (`request.seconds`)."""
    check_json_shape(raw)  # skipping `request` as Raw recurses too
    try:
        outer = _request_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        text = str(exc)
        param = text.rsplit("at `$.", 1)[1].rstrip("`") if "at `$." in text else _unknown_field(text)
        raise InvalidRequest(f"Invalid comparison request: {text}", param=param) from exc
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"Request body is not valid JSON: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise not_utf8() from exc
    try:
        body = decode_json(bytes(outer.request))
    except InvalidRequest as exc:
        message = exc.message.replace(" at $", " at $.request", 1) if " at $" in exc.message else f"Invalid request at $.request: {exc.message}"
        raise InvalidRequest(message, param=f"request.{exc.param}" if exc.param else "request") from exc
    if body.provider is not None:
        raise InvalidRequest("A comparison picks the providers itself: list them in `providers`, not `request.provider`", param="request.provider")
    if body.routing is not None:
        raise InvalidRequest("`request.routing` has no effect in a comparison (each child is pinned to one provider)", param="request.routing")
    if isinstance(outer.providers, list):
        if not outer.providers:
            raise InvalidRequest('`providers` must name at least one provider, or be "all"', param="providers")
        if len(set(outer.providers)) != len(outer.providers):
            raise InvalidRequest("`providers` names a provider more than once", param="providers")
    metadata = body.metadata or {}
    if COMPARISON_KEY in metadata:
        raise InvalidRequest(f"metadata key {COMPARISON_KEY!r} is set by vidgate on comparison jobs", param=f"request.metadata.{COMPARISON_KEY}")
    if len(metadata) >= MAX_METADATA_KEYS:
        raise InvalidRequest(
            f"A comparison adds metadata {COMPARISON_KEY!r}, so request.metadata may hold at most {MAX_METADATA_KEYS - 1} keys",
            param="request.metadata",
        )
    return outer, body


def _unknown_field(text: str) -> str | None:
    for marker in ("unknown field `", "required field `"):
        if marker in text:
            return text.split(marker, 1)[1].split("`", 1)[0]
    return None


# -- the service ---------------------------------------------------------------------


class ComparisonService:
    def __init__(self, videos: VideoService) -> None:
        self.videos = videos
        self.store = videos.store

    async def create(self, caller: Caller, raw: bytes, *, idempotency_key: str | None) -> Comparison:
        outer, body = decode_comparison(raw)
        providers = self._providers(caller, outer.providers)
        fingerprint = fingerprint_of([("comparison", msgspec.json.decode(raw))])
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key)
            existing = await self.store.find_comparison(caller.tenant, idempotency_key)
            if existing is not None:
                return _same_request(existing, fingerprint)
        plans = {name: _ChildPlan(name, idempotency_key, fingerprint) for name in providers}
        created_at = self.videos.clock()
        comparison_id = await self._replayed_id(caller, plans) or new_comparison_id()

        metadata = {**(body.metadata or {}), COMPARISON_KEY: comparison_id}
        children: list[ComparisonChild] = []
        skipped: list[ComparisonSkip] = []
        reasons: dict[str, Any] = {}
        model: str | None = None
        for name, plan in plans.items():
            child = msgspec.structs.replace(body, provider=name, metadata=metadata)
            try:
                job, _ = await self.videos.create(caller, child, fingerprint=plan.fingerprint, idempotency_key=plan.key)
            except Unserviceable as exc:
                why = (exc.details or {}).get(name) or []
                reasons[name] = why
                skipped.append(ComparisonSkip(provider=name, reason="; ".join(f"{r['field']}: {r['message']}" for r in why) or exc.message))
                continue
            model = job.model
            children.append(ComparisonChild(provider=name, video_id=job.id))
        if not children:
            raise _none_can_serve(skipped, reasons)
        shown = [c.provider for c in children]
        if outer.blind:
            _shuffle(shown)
        comparison = Comparison(
            id=comparison_id,
            tenant=caller.tenant,
            created_at=created_at,
            model=model or "",
            children=children,
            skipped=skipped,
            idempotency_key=idempotency_key,
            request_hash=fingerprint,
            blind=outer.blind,
            shown=shown,
        )
        return await self.store.put_comparison(comparison)

    def _providers(self, caller: Caller, wanted: list[str] | str) -> list[str]:
        configured = list(self.videos.settings.providers)
        if wanted == "all":
            usable = [name for name in configured if caller.may_use(name)]
            if not usable:
                raise Forbidden("This key may not use any configured provider", param="providers")
            return usable
        unknown = [name for name in wanted if name not in configured]
        if unknown:
            raise InvalidRequest(f"Unknown provider(s) {', '.join(map(repr, unknown))}; configured: {', '.join(configured)}", param="providers")
        forbidden = [name for name in wanted if not caller.may_use(name)]
        if forbidden:
            raise Forbidden(f"This key may not use provider(s) {', '.join(map(repr, forbidden))}", param="providers")
        return list(wanted)

    async def _replayed_id(self, caller: Caller, plans: dict[str, _ChildPlan]) -> str | None:
        """The comparison id that an earlier, interrupted request with this Idempotency-Key gave
        the children it managed to create; a child made from a different body is a 409 before
        anything new is created."""
        found: str | None = None
        for plan in plans.values():
            if plan.key is None:
                continue
            job = await self.store.find_idempotent(caller.tenant, plan.key)
            if job is None:
                continue
            if job.request_hash != plan.fingerprint:
                raise _reused_key()
            found = found or job.metadata.get(COMPARISON_KEY)
        return found

    async def get(self, caller: Caller, comparison_id: str) -> Comparison:
        comparison = await self.store.get_comparison(comparison_id, caller.tenant)
        if comparison is None:
            raise NotFound(f"No comparison with id {comparison_id!r}", param="comparison_id")
        return comparison

    async def jobs(self, comparison: Comparison) -> dict[str, Job | None]:
        """Each child's job by video id (None where the caller deleted it)."""
        return {child.video_id: await self.store.get_job(child.video_id, comparison.tenant) for child in comparison.children}

    async def view(self, comparison: Comparison) -> ComparisonObject:
        jobs = await self.jobs(comparison)
        results = [result_of(child, jobs[child.video_id], label) for label, child in comparison.labelled()]
        done = all(r.status not in (JobStatus.QUEUED.value, JobStatus.IN_PROGRESS.value) for r in results)
        return ComparisonObject(
            id=comparison.id,
            created_at=int(comparison.created_at),
            model=comparison.model,
            status="completed" if done else "in_progress",
            blind=comparison.blind,
            results=results,
            skipped=[SkippedProvider(provider=s.provider, reason=s.reason) for s in comparison.skipped],
            vote=vote_of(comparison),
        )

    async def vote(self, caller: Caller, comparison_id: str, raw: bytes) -> Comparison:
        """Record a person's verdict; the first one stays (the same verdict again is a no-op)."""
        try:
            body = _vote_decoder.decode(raw)
        except msgspec.ValidationError as exc:
            raise InvalidRequest(f"Invalid vote: {exc}", param=_unknown_field(str(exc)) or "winner") from exc
        except msgspec.DecodeError as exc:
            raise InvalidRequest(f"Request body is not valid JSON: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise not_utf8() from exc
        if (body.winner is None) != body.tie:
            raise InvalidRequest('Give the better video\'s provider as `winner`, or `"tie": true`', param="winner")
        return await self.cast(caller, comparison_id, body.winner)

    async def cast(self, caller: Caller, comparison_id: str, winner: str | None) -> Comparison:
        """The vote itself: `winner` is a provider of this comparison, None for a tie."""
        comparison = await self.get(caller, comparison_id)
        jobs = await self.jobs(comparison)
        completed = [c.provider for c in comparison.children if (job := jobs[c.video_id]) is not None and job.status is JobStatus.COMPLETED]
        if winner is not None and winner not in {c.provider for c in comparison.children}:
            raise InvalidRequest(f"{winner!r} is not a provider of this comparison", param="winner")
        if winner is not None and winner not in completed:
            raise InvalidRequest(f"{winner!r} has no completed video to vote for", param="winner", code="video_not_completed")
        if len(completed) < 2:
            raise InvalidRequest("A vote compares at least two completed videos", param="winner", code="not_enough_videos")
        vote = ComparisonVote(winner=winner, at=self.videos.clock(), key_name=caller.key_name)
        stored = await self.store.vote_comparison(comparison.id, caller.tenant, vote)
        if stored is None:
            raise NotFound(f"No comparison with id {comparison_id!r}", param="comparison_id")
        if stored.vote is not None and stored.vote.winner != winner:
            raise Conflict("This comparison already has a different vote", param="winner", code="already_voted")
        return stored


class _ChildPlan:
    """How one provider's child job is created: its derived Idempotency-Key and fingerprint."""

    def __init__(self, provider: str, idempotency_key: str | None, fingerprint: str) -> None:
        # derived from a digest of the caller's key, so it stays within the key length bound whatever that key is
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:40] if idempotency_key is not None else None
        self.key = f"comparison:{digest}:{provider}" if digest is not None else None
        self.fingerprint = fingerprint_of([("comparison", fingerprint), ("provider", provider)])


def _same_request(comparison: Comparison, fingerprint: str) -> Comparison:
    if comparison.request_hash != fingerprint:
        raise _reused_key()
    return comparison


def _reused_key() -> Conflict:
    return Conflict("Idempotency-Key was already used with a different request body", param="Idempotency-Key", code="idempotency_key_reused")


_vote_decoder = msgspec.json.Decoder(VoteRequest)


def _shuffle(providers: list[str]) -> None:
    """An unpredictable order, so a blind "A" says nothing about who made it."""
    secrets.SystemRandom().shuffle(providers)


def vote_of(comparison: Comparison) -> VoteObject | None:
    vote = comparison.vote
    if vote is None:
        return None
    label = next((label for label, child in comparison.labelled() if child.provider == vote.winner), None)
    return VoteObject(winner=vote.winner, winner_label=label, tie=vote.winner is None, voted_at=int(vote.at))


def result_of(child: ComparisonChild, job: Job | None, label: str) -> ComparisonResult:
    if job is None:  # the caller deleted this finished child
        return ComparisonResult(
            label=label,
            provider=child.provider,
            video_id=child.video_id,
            status="deleted",
            progress=0,
            time_to_video_seconds=None,
            cost=None,
            video_url=None,
            upstream_video_url=None,
            error=None,
        )
    video = video_of(job)
    completed = job.status is JobStatus.COMPLETED
    return ComparisonResult(
        label=label,
        provider=child.provider,
        video_id=job.id,
        status=video.status,
        progress=video.progress,
        time_to_video_seconds=round(job.completed_at - job.created_at, 3) if completed and job.completed_at else None,
        cost=video.cost,
        video_url=f"/v1/videos/{job.id}/content" if completed else None,
        upstream_video_url=job.result.video_url if job.result else None,
        error=video.error,
    )


def _none_can_serve(skipped: list[ComparisonSkip], reasons: dict[str, Any]) -> Unserviceable:
    first = next((why[0]["field"] for why in reasons.values() if why), None)
    return Unserviceable(
        "None of the requested providers can serve this request. " + " | ".join(f"{s.provider}: {s.reason}" for s in skipped),
        param=f"request.{first}" if first and first != "provider" else "providers",
        details=reasons,
    )
