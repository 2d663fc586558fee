"""In-memory state of the useapi.net Dreamina simulator: accounts and jobs.

A job's status is derived from the clock and its creation time, so nothing runs in
the background to advance it. Only `replyUrl` callbacks use tasks (`sim.replies`).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

import msgspec

from providers.simkit import Faults, JobOutcome
from providers.useapi.sim.models import MODELS, UseapiError, bad, models_for_region
from providers.useapi.sim.rules import Resolved, VideoPlan, resolve

Region = Literal["CA", "US"]
JobStatus = Literal["created", "completed", "failed"]
SESSION_DAYS = 60
IMAGE_MODELS = ["seedream-4.5", "seedream-4.1", "seedream-4.0", "nano-banana", "seedream-3.0"]
DEFAULT_FAIL_DETAILS = "OutputVideoRisk"
DEFAULT_CREDITS = 100_000


class SimAccount(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One linked Dreamina account: `account` is `"<REGION>:<email>"`."""

    account: str
    region: Region
    max_jobs: int = 10
    session_expired: bool = False
    credits: int = DEFAULT_CREDITS

    def __post_init__(self) -> None:
        if not self.account.startswith(f"{self.region}:") or "@" not in self.account:
            raise ValueError(f"account must look like '{self.region}:user@example.com', got {self.account!r}")
        if not 1 <= self.max_jobs <= 50:
            raise ValueError("max_jobs must be 1-50")


def _default_accounts() -> list[SimAccount]:
    return [
        SimAccount(account="CA:sim@example.com", region="CA"),
        SimAccount(account="US:sim@example.com", region="US"),
    ]


class SimConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    job_seconds: float = 2.0  # how long a job stays `created` before it completes or fails
    tokens: frozenset[str] | None = None  # accepted Bearer tokens; None accepts any non-empty one
    accounts: list[SimAccount] = msgspec.field(default_factory=_default_accounts)
    faults: Faults = msgspec.field(default_factory=Faults)
    user_id: int = 12345  # the useapi user id inside jobids
    seed: int | None = None  # seeds ids and the random account choice


class Job(msgspec.Struct, kw_only=True):
    jobid: str
    account: str
    model: str
    created_at: float
    job_seconds: float
    outcome: JobOutcome
    fail_reason: str | None
    request: dict[str, Any]
    resolved: Resolved
    has_audio: bool
    submit_id: str
    video_id: str
    reply_url: str | None
    base_url: str  # of the submit, for callbacks
    ended_at: float | None = None  # set when cancelled or its account is deleted
    end_error: str | None = None
    terminal_notified: bool = False

    def status(self, now: float) -> JobStatus:
        if self.end_error is not None:
            return "failed"
        if self.outcome == "hang" or now - self.created_at < self.job_seconds:
            return "created"
        return "failed" if self.outcome == "fail" else "completed"

    @property
    def finished_at(self) -> float:
        return self.ended_at if self.ended_at is not None else self.created_at + self.job_seconds


class SubmitRecord(msgspec.Struct, kw_only=True):
    """One `POST /videos` as received, for `/_sim/jobs`: accepted or not."""

    seq: int
    received: str
    content_type: str | None
    body: Any  # the decoded JSON / form fields, or the raw text when undecodable
    status: int = 0  # the HTTP status answered
    jobid: str | None = None
    error: str | None = None


class ReplyAttempt(msgspec.Struct, kw_only=True):
    """One `replyUrl` delivery, for `/_sim/replies`."""

    jobid: str
    url: str
    job_status: str
    sent: str
    http_status: int | None = None
    error: str | None = None


def iso(ts: float) -> str:
    t = datetime.fromtimestamp(ts, UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def file_url(base_url: str, name: str, jobid: str) -> str:
    return f"{base_url}/_sim/files/{name}?job={quote(jobid, safe='')}"


class SimState:
    def __init__(self, config: SimConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        self.rng = random.Random(config.seed)
        self.reset()

    def reset(self) -> None:
        self.accounts: dict[str, SimAccount] = {a.account: msgspec.structs.replace(a) for a in self.config.accounts}
        self.jobs: dict[str, Job] = {}
        self.submits: list[SubmitRecord] = []
        self.replies: list[ReplyAttempt] = []

    # -- accounts ---------------------------------------------------------

    def account(self, account_id: str) -> SimAccount:
        try:
            return self.accounts[account_id]
        except KeyError:
            raise UseapiError(404, f"Unable to find configuration for account {account_id}") from None

    def known_models(self) -> list[str]:
        regions = {a.region for a in self.accounts.values()}
        return [name for name, spec in MODELS.items() if regions & spec.resolutions.keys()]

    def add_account(self, fields: dict[str, Any]) -> SimAccount:
        for name in ("email", "password", "region"):
            if not fields.get(name):
                raise bad(f"Parameter {name} is required")
        email, region = str(fields["email"]), str(fields["region"])
        if "@" not in email:
            raise bad(f"Parameter email ({email}) is not a valid email")
        if region not in ("US", "CA"):
            raise bad(f"Parameter region ({region}) valid values: US, CA")
        raw_max = fields.get("maxJobs", 10)
        max_jobs = int(raw_max) if str(raw_max).strip().isdigit() else 0
        if not 1 <= max_jobs <= 50:
            raise bad(f"Parameter maxJobs ({raw_max}) valid values: 1-50")
        account_id = f"{region}:{email}"
        previous = self.accounts.get(account_id)
        credits = previous.credits if previous else DEFAULT_CREDITS
        account = SimAccount(account=account_id, region=region, max_jobs=max_jobs, credits=credits)  # type: ignore[arg-type]
        self.accounts[account_id] = account
        return account

    def delete_account(self, account_id: str) -> None:
        self.account(account_id)
        now = self.clock()
        for job in self.running(account_id, now):
            job.ended_at, job.end_error = now, "Account deleted"
        del self.accounts[account_id]

    def account_json(self, account: SimAccount) -> dict[str, Any]:
        now = self.clock()
        expires = now - 86_400 if account.session_expired else now + SESSION_DAYS * 86_400
        body: dict[str, Any] = {
            "account": account.account,
            "email": account.account.split(":", 1)[1],
            "region": account.region,
            "maxJobs": account.max_jobs,
            "sessionExpires": iso(expires),
            "session": {
                "expires": iso(expires),
                "lastRefreshed": iso(now),
                "daysUntilExpiry": max(0, int((expires - now) // 86_400)),
            },
            "models": {"video": models_for_region(account.region), "image": IMAGE_MODELS},
            "credits": {
                "total": account.credits,
                "vip": 0,
                "gift": 0,
                "purchase": account.credits,
                "dailyClaimed": True,
            },
        }
        if account.session_expired:
            body["error"] = "Session expired"
        return body

    # -- jobs ---------------------------------------------------------------

    def running(self, account_id: str, now: float) -> list[Job]:
        return [j for j in self.jobs.values() if j.account == account_id and j.status(now) == "created"]

    def _choose(self, plan: VideoPlan, faults: Faults, now: float) -> tuple[SimAccount, Resolved]:
        candidates = [self.account(plan.account)] if plan.account is not None else list(self.accounts.values())
        if not candidates:
            raise UseapiError(404, "No accounts configured")
        if plan.model is not None:
            offering = [a for a in candidates if a.region in MODELS[plan.model].resolutions]
            if not offering:
                valid = [m for m in MODELS if any(m in models_for_region(a.region) for a in candidates)]
                raise bad(f"Parameter model ({plan.model}) valid values: {', '.join(valid)}")
            candidates = offering
        fits: list[tuple[SimAccount, Resolved]] = []
        first_error: UseapiError | None = None
        for account in candidates:
            try:
                fits.append((account, resolve(plan, account.region)))
            except UseapiError as exc:
                first_error = first_error or exc
        if not fits:
            assert first_error is not None
            raise first_error
        if faults.session_expired or all(a.session_expired for a, _ in fits):
            raise UseapiError(596, "Session expired")
        live = [(a, r) for a, r in fits if not a.session_expired]
        free = [(a, r) for a, r in live if len(self.running(a.account, now)) < (plan.max_jobs or a.max_jobs)]
        if not free:
            raise UseapiError(429, "All accounts at capacity")
        funded = [(a, r) for a, r in free if a.credits >= r.forecast_cost]
        if not funded:
            account, resolved = free[0]
            raise UseapiError(402, f"Insufficient credits: forecastCost {resolved.forecast_cost}, available {account.credits}")
        return self.rng.choice(funded)

    def create_job(self, plan: VideoPlan, faults: Faults, base_url: str) -> Job:
        now = self.clock()
        account, resolved = self._choose(plan, faults, now)
        account.credits -= resolved.forecast_cost
        job = Job(
            jobid=self._jobid(account.account, now),
            account=account.account,
            model=resolved.model,
            created_at=now,
            job_seconds=self.config.job_seconds,
            outcome=faults.job_outcome,
            fail_reason=faults.fail_reason,
            request=resolved.request,
            resolved=resolved,
            has_audio=plan.has_audio,
            submit_id=str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            video_id="73" + "".join(self.rng.choices("0123456789", k=17)),
            reply_url=plan.reply_url,
            base_url=base_url,
        )
        self.jobs[job.jobid] = job
        return job

    def _jobid(self, account_id: str, now: float) -> str:
        t = datetime.fromtimestamp(now, UTC)
        stamp = t.strftime("%m%d%H%M%S") + f"{t.microsecond // 1000:03d}"
        while True:
            jobid = f"j{stamp}{self.rng.randrange(10**6):06d}v-u{self.config.user_id}-{account_id}-bot:dreamina"
            if jobid not in self.jobs:
                return jobid

    def job(self, jobid: str) -> Job:
        try:
            return self.jobs[jobid]
        except KeyError:
            raise UseapiError(404, f"Unable to locate jobId {jobid}") from None

    def cancel(self, jobid: str) -> Job:
        now = self.clock()
        job = self.jobs.get(jobid)
        if job is None or job.status(now) != "created":
            raise UseapiError(404, f"Unable to locate running jobId {jobid}", with_code=True)
        job.ended_at, job.end_error = now, "Cancelled by user"
        return job

    def record(self, job: Job, base_url: str, now: float | None = None) -> dict[str, Any]:
        """The job record as `GET /videos/{jobid}` shows it at `now`."""
        now = self.clock() if now is None else now
        status = job.status(now)
        record: dict[str, Any] = {
            "jobid": job.jobid,
            "type": "video",
            "status": status,
            "model": job.model,
            "created": iso(job.created_at),
        }
        if status != "created":
            record["updated"] = iso(job.finished_at)
        record["request"] = job.request
        cost = job.resolved.forecast_cost
        if status == "completed":
            record["response"] = {
                "assetId": f"{job.account}:{job.video_id}",
                "videoUrl": file_url(base_url, "video.mp4", job.jobid),
                "videoId": job.video_id,
                "coverUrl": file_url(base_url, "cover.png", job.jobid),
                "width": job.resolved.width,
                "height": job.resolved.height,
                "durationMs": job.resolved.duration * 1000,
                "hasAudio": job.has_audio,
                "forecastCost": cost,
                "finishTime": int(job.finished_at),
            }
        else:
            record["response"] = {"forecastCost": cost}
        if status == "failed":
            if job.end_error is not None:
                record["error"] = job.end_error
            else:
                record["error"] = "fail_code: 2043"
                record["errorDetails"] = job.fail_reason or DEFAULT_FAIL_DETAILS
        record["code"] = 200
        return record

    def release(self) -> int:
        """Let every hanging job run from now on and succeed after `job_seconds`."""
        now = self.clock()
        hanging = [j for j in self.jobs.values() if j.outcome == "hang" and j.status(now) == "created"]
        for job in hanging:
            job.outcome, job.created_at = "succeed", now
        return len(hanging)

    def scheduler(self) -> dict[str, Any]:
        now = self.clock()
        executing: dict[str, list[dict[str, Any]]] = {}
        for job in self.jobs.values():
            if job.status(now) != "created":
                continue
            entry: dict[str, Any] = {
                "jobid": job.jobid,
                "submitId": job.submit_id,
                "model": job.model,
                "elapsedSeconds": int(now - job.created_at),
            }
            if job.reply_url:
                entry["replyUrl"] = job.reply_url
            executing.setdefault(job.account, []).append(entry)
        return {"executing": executing, "total": sum(len(v) for v in executing.values())}
