"""Records the store contract tests write: small, valid, and numbered so order is easy to read."""

from __future__ import annotations

import msgspec

from gateway.jobs.model import Attempt, Comparison, ComparisonChild, ComparisonSkip, FileRecord, Job, WebhookDelivery
from gateway.jobs.store import Lease, Store
from providers.base import GenerationRequest, JobStatus, TextInput


def make_job(n: int, *, tenant: str = "t1", **kw) -> Job:
    """`video_{n:04d}`, created at `1000 + n`, queued."""
    job = Job(
        id=f"video_{n:04d}",
        tenant=tenant,
        key_name="default",
        created_at=1000.0 + n,
        updated_at=1000.0 + n,
        status=JobStatus.QUEUED,
        model="seedance-2.0",
        mode="text",
        request=GenerationRequest(model="seedance-2.0", input=TextInput(prompt=f"job {n}")),
        prompt=f"job {n}",
    )
    return msgspec.structs.replace(job, **kw)


def attempt(provider: str, **kw) -> Attempt:
    return Attempt(provider=provider, model_id=f"{provider}-model", started_at=1.0, **kw)


def make_file(file_id: str, data: bytes, *, tenant: str = "t1") -> FileRecord:
    return FileRecord(
        id=file_id,
        tenant=tenant,
        created_at=5.0,
        filename="frame.png",
        content_type="image/png",
        bytes=len(data),
        kind="image",
        width=640,
        height=360,
    )


def make_delivery(n: int, *, job_id: str = "video_0001", due: float | None, **kw) -> WebhookDelivery:
    """`msg_{n}`, created at `n`, due at `due` (None: due from creation)."""
    delivery = WebhookDelivery(
        id=f"msg_{n}",
        job_id=job_id,
        tenant="t1",
        url="https://hooks.example/v",
        event_type="video.completed",
        payload=b'{"id": "evt"}',
        created_at=float(n),
        next_attempt_at=due,
    )
    return msgspec.structs.replace(delivery, **kw)


def comparison(cid: str = "cmp_1", tenant: str = "t1", video: str = "video_0001") -> Comparison:
    return Comparison(
        id=cid,
        tenant=tenant,
        created_at=5.0,
        model="seedance-2.0",
        children=[ComparisonChild(provider="useapi", video_id=video)],
        skipped=[ComparisonSkip(provider="powertokens", reason="model: not served")],
    )


# Per-job leases as the schema before heartbeat leases stored them, (n, owner, lease_until,
# status): "old" holds two active jobs (leases till 400 and 500); "gone" held one that has
# since finished.
PER_JOB_LEASES = [(1, "old", 400.0, "queued"), (2, "old", 500.0, "in_progress"), (3, "gone", 90.0, "completed")]


async def assert_per_job_leases_became_a_heartbeat(store: Store) -> None:
    """After the migration: "old" holds both its active jobs until its latest lease ended,
    then they are anyone's, and "old" has no heartbeat to renew."""
    assert await store.claim_jobs(Lease("new", 1000.0), now=450.0, limit=10) == []  # "old" holds both till 500
    assert [j.id for j in await store.claim_jobs(Lease("new", 1000.0), now=501.0, limit=10)] == ["video_0001", "video_0002"]
    assert not await store.heartbeat(Lease("old", 600.0))
