"""The one retry policy: which failures retry, how long to wait, and when to stop."""

from __future__ import annotations

import random
from typing import Any

import pytest

from gateway.http import RetryPolicy, backoff, call_with_retries
from providers.base import ErrorClass, UpstreamError

POLICY = RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=8.0, max_total=60.0, max_retry_after=30.0)


class FakeTime:
    """A clock that only moves when the code under test sleeps (or a call takes time)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Upstream:
    """A call that raises the given errors in turn, then returns "ok"."""

    def __init__(self, *errors: UpstreamError, time: FakeTime | None = None, takes: float = 0.0) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.time = time
        self.takes = takes

    async def __call__(self) -> str:
        self.calls += 1
        if self.time is not None:
            self.time.now += self.takes
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def err(cls: ErrorClass, http_status: int | None = None, **kw: Any) -> UpstreamError:
    return UpstreamError.of(cls, f"{cls.value} happened", http_status=http_status, **kw)


async def run(fn: Upstream, t: FakeTime, *, submit: bool, policy: RetryPolicy = POLICY) -> str:
    return await call_with_retries(fn, policy=policy, submit=submit, sleep=t.sleep, clock=t.clock)


# ---------------------------------------------------------------------------
# backoff
# ---------------------------------------------------------------------------


class EdgeRng(random.Random):
    """Returns the upper bound and records the bounds it was asked for."""

    def __init__(self) -> None:
        super().__init__(0)
        self.bounds: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.bounds.append((a, b))
        return b


def test_backoff_doubles_up_to_the_cap_with_half_jitter() -> None:
    rng = EdgeRng()
    got = [backoff(n, POLICY, rng) for n in range(1, 8)]
    assert got == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert rng.bounds[0] == (0.25, 0.5)
    assert rng.bounds[4] == (4.0, 8.0)


def test_backoff_stays_within_its_bounds() -> None:
    rng = random.Random(1234)
    for attempt in range(1, 10):
        ceiling = min(8.0, 0.5 * 2 ** (attempt - 1))
        for _ in range(50):
            assert ceiling / 2 <= backoff(attempt, POLICY, rng) <= ceiling


# ---------------------------------------------------------------------------
# which failures retry
# ---------------------------------------------------------------------------


async def test_success_first_time_never_sleeps() -> None:
    t = FakeTime()
    fn = Upstream()
    assert await run(fn, t, submit=True) == "ok"
    assert (fn.calls, t.sleeps) == (1, [])


@pytest.mark.parametrize(
    "error",
    [
        err(ErrorClass.UPSTREAM_UNAVAILABLE, 500),
        err(ErrorClass.UPSTREAM_UNAVAILABLE, 502),
        err(ErrorClass.RATE_LIMIT, 429),
        err(ErrorClass.CAPACITY, 503),
        err(ErrorClass.TIMEOUT, None),
    ],
)
async def test_poll_retries_retryable_errors_then_succeeds(error: UpstreamError) -> None:
    t = FakeTime()
    fn = Upstream(error, error)
    assert await run(fn, t, submit=False) == "ok"
    assert fn.calls == 3
    assert len(t.sleeps) == 2
    assert 0.25 <= t.sleeps[0] <= 0.5
    assert 0.5 <= t.sleeps[1] <= 1.0


async def test_retries_stop_at_max_attempts() -> None:
    t = FakeTime()
    errors = [err(ErrorClass.UPSTREAM_UNAVAILABLE, 502, code=str(i)) for i in range(10)]
    fn = Upstream(*errors)
    with pytest.raises(UpstreamError) as info:
        await run(fn, t, submit=False)
    assert fn.calls == 4
    assert len(t.sleeps) == 3
    assert info.value.info.code == "3"  # the last attempt's error is the one raised


@pytest.mark.parametrize(
    "cls",
    [ErrorClass.INVALID_REQUEST, ErrorClass.AUTH, ErrorClass.PAYMENT, ErrorClass.CONTENT_REJECTED, ErrorClass.NOT_FOUND, ErrorClass.SESSION_EXPIRED],
)
async def test_non_retryable_errors_raise_at_once(cls: ErrorClass) -> None:
    t = FakeTime()
    fn = Upstream(err(cls, 400))
    with pytest.raises(UpstreamError) as info:
        await run(fn, t, submit=False)
    assert info.value.info.error_class is cls
    assert (fn.calls, t.sleeps) == (1, [])


async def test_other_exceptions_are_not_retried() -> None:
    t = FakeTime()
    calls = 0

    async def broken() -> str:
        nonlocal calls
        calls += 1
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await call_with_retries(broken, policy=POLICY, submit=False, sleep=t.sleep, clock=t.clock)
    assert (calls, t.sleeps) == (1, [])


# ---------------------------------------------------------------------------
# a paid submit
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        err(ErrorClass.RATE_LIMIT, 429),
        err(ErrorClass.CAPACITY, 503),
        err(ErrorClass.UPSTREAM_UNAVAILABLE, 503),
        err(ErrorClass.UPSTREAM_UNAVAILABLE, None),  # connect failed: the request never left
    ],
)
async def test_submit_retries_when_nothing_was_created(error: UpstreamError) -> None:
    t = FakeTime()
    fn = Upstream(error)
    assert await run(fn, t, submit=True) == "ok"
    assert fn.calls == 2
    assert len(t.sleeps) == 1


@pytest.mark.parametrize(
    "error",
    [
        err(ErrorClass.UPSTREAM_UNAVAILABLE, 500),
        err(ErrorClass.UPSTREAM_UNAVAILABLE, 502),
        err(ErrorClass.CAPACITY, 200),  # useapi-style "busy" in a 200 body: not 429/503
    ],
)
async def test_submit_is_not_retried_on_other_statuses(error: UpstreamError) -> None:
    t = FakeTime()
    fn = Upstream(error)
    with pytest.raises(UpstreamError):
        await run(fn, t, submit=True)
    assert (fn.calls, t.sleeps) == (1, [])


@pytest.mark.parametrize(
    "error",
    [
        err(ErrorClass.TIMEOUT, None, ambiguous=True),  # read timeout after sending
        err(ErrorClass.UPSTREAM_UNAVAILABLE, 503, ambiguous=True),
        err(ErrorClass.RATE_LIMIT, 429, ambiguous=True),
    ],
)
@pytest.mark.parametrize("submit", [True, False])
async def test_ambiguous_is_never_retried(error: UpstreamError, submit: bool) -> None:
    t = FakeTime()
    fn = Upstream(error)
    with pytest.raises(UpstreamError) as info:
        await run(fn, t, submit=submit)
    assert info.value.ambiguous
    assert (fn.calls, t.sleeps) == (1, [])


# ---------------------------------------------------------------------------
# Retry-After and the total bound
# ---------------------------------------------------------------------------


async def test_retry_after_is_honoured() -> None:
    t = FakeTime()
    fn = Upstream(err(ErrorClass.RATE_LIMIT, 429, retry_after=7.0), err(ErrorClass.RATE_LIMIT, 429, retry_after=0.0))
    assert await run(fn, t, submit=True) == "ok"
    assert t.sleeps == [7.0, 0.0]


async def test_retry_after_is_capped() -> None:
    t = FakeTime()
    fn = Upstream(err(ErrorClass.RATE_LIMIT, 429, retry_after=3600.0))
    assert await run(fn, t, submit=False) == "ok"
    assert t.sleeps == [30.0]


async def test_max_total_bounds_the_whole_call() -> None:
    t = FakeTime()
    policy = RetryPolicy(max_attempts=10, max_total=10.0, max_retry_after=60.0)
    fn = Upstream(*[err(ErrorClass.RATE_LIMIT, 429, retry_after=4.0) for _ in range(10)])
    with pytest.raises(UpstreamError):
        await run(fn, t, submit=False, policy=policy)
    # t=0 fail, wait 4; t=4 fail, wait 4; t=8 fail: 8 + 4 > 10, give up
    assert fn.calls == 3
    assert t.sleeps == [4.0, 4.0]


async def test_max_total_counts_time_spent_in_the_calls() -> None:
    t = FakeTime()
    policy = RetryPolicy(max_attempts=10, max_total=10.0, max_retry_after=60.0)
    fn = Upstream(*[err(ErrorClass.TIMEOUT, None, retry_after=1.0) for _ in range(10)], time=t, takes=4.0)
    with pytest.raises(UpstreamError):
        await run(fn, t, submit=False, policy=policy)
    # call 1 ends at 4 (+1 = 5 ok); call 2 ends at 9 (+1 = 10 ok); call 3 ends at 14: over
    assert fn.calls == 3
    assert t.sleeps == [1.0, 1.0]


async def test_a_retry_after_beyond_max_total_gives_up_without_sleeping() -> None:
    t = FakeTime()
    policy = RetryPolicy(max_attempts=5, max_total=20.0, max_retry_after=60.0)
    fn = Upstream(err(ErrorClass.RATE_LIMIT, 429, retry_after=45.0))
    with pytest.raises(UpstreamError):
        await run(fn, t, submit=True, policy=policy)
    assert (fn.calls, t.sleeps) == (1, [])
