"""The job model as the engine holds it: thousands of jobs in memory, for minutes each."""

from __future__ import annotations

import gc

import msgspec

from gateway.jobs.model import Candidate, Job, RoutingTrace
from tests.store.records import attempt, make_job

JOBS = 1_000


def test_jobs_in_memory_add_few_objects_for_the_cyclic_collector_to_walk() -> None:
    """A full collection walks every tracked object, with the event loop stopped: with
    10,000 jobs in flight their objects were most of what it walked (a 44 ms pause in a
    create burst). The job's structs hold data only, never a cycle, so they are not
    tracked; what is left is each job's lists."""
    job = make_job(1, attempts=[attempt("a", upstream_id="up-1")], routing=RoutingTrace(rule="r", candidates=[Candidate(provider="a")]))
    doc = msgspec.json.encode(job)
    decode = msgspec.json.Decoder(Job).decode  # as the stores read a job
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        jobs = [decode(doc) for _ in range(JOBS)]
        added = len(gc.get_objects()) - before
    finally:
        gc.enable()
    assert jobs[0] == job
    assert not gc.is_tracked(jobs[0]) and not gc.is_tracked(jobs[0].attempts[0]) and not gc.is_tracked(jobs[0].routing)
    assert added <= 2 * JOBS + 10, added / JOBS  # its attempts and candidates lists, and the list above
