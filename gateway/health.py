"""Provider health judged by how jobs end, not by single HTTP codes.

A provider cools down after `consecutive` failed attempts in a row, or when more
than `max_failure_rate` of its last `window` attempts failed. Only failures that
say something about the provider count (unavailable, timeout, generation failed,
capacity, auth, payment); a content rejection or an invalid request is the
caller's, and a completed job resets the streak. When the cooldown ends the
provider is tried again, and a single further failure sends it back.
"""

from __future__ import annotations

from collections import deque

import msgspec

from providers.base import ErrorClass

PROVIDER_FAULTS = frozenset(
    {
        ErrorClass.UPSTREAM_UNAVAILABLE,
        ErrorClass.TIMEOUT,
        ErrorClass.GENERATION_FAILED,
        ErrorClass.CAPACITY,
        ErrorClass.RATE_LIMIT,
        ErrorClass.AUTH,
        ErrorClass.PAYMENT,
        ErrorClass.SESSION_EXPIRED,
        ErrorClass.NOT_FOUND,
    }
)


class HealthPolicy(msgspec.Struct, frozen=True, kw_only=True):
    consecutive: int = 5
    window: int = 20
    min_samples: int = 10
    max_failure_rate: float = 0.5
    cooldown_seconds: float = 60.0


class HealthState(msgspec.Struct, kw_only=True):
    healthy: bool
    consecutive_failures: int
    recent_failure_rate: float | None
    cooling_down_until: float | None
    reason: str | None


class ProviderHealth:
    def __init__(self, policy: HealthPolicy | None = None) -> None:
        self.policy = policy or HealthPolicy()
        self.consecutive = 0
        self.outcomes: deque[bool] = deque(maxlen=self.policy.window)  # True = failure
        self.cooling_until: float | None = None
        self.reason: str | None = None

    def success(self) -> None:
        self.consecutive = 0
        self.outcomes.append(False)

    def failure(self, error_class: ErrorClass, now: float) -> bool:
        """Record a failed attempt; True when it counted against the provider."""
        if error_class not in PROVIDER_FAULTS:
            return False
        self.consecutive += 1
        self.outcomes.append(True)
        rate = self._rate()
        if self.consecutive >= self.policy.consecutive:
            self._trip(now, f"{self.consecutive} failed jobs in a row (last: {error_class.value})")
        elif rate is not None and rate > self.policy.max_failure_rate:
            self._trip(now, f"{rate:.0%} of the last {len(self.outcomes)} jobs failed (last: {error_class.value})")
        return True

    def unavailable(self, now: float) -> str | None:
        """Why the provider should be skipped now, or None."""
        if self.cooling_until is None:
            return None
        if now >= self.cooling_until:
            # Half-open: let traffic through again; one more failure re-trips.
            self.cooling_until = None
            self.consecutive = max(0, self.policy.consecutive - 1)
            self.outcomes.clear()
            return None
        return f"cooling down until {self.cooling_until:.0f}: {self.reason}"

    def state(self, now: float) -> HealthState:
        reason = self.unavailable(now)
        return HealthState(
            healthy=reason is None,
            consecutive_failures=self.consecutive,
            recent_failure_rate=self._rate(),
            cooling_down_until=self.cooling_until,
            reason=reason,
        )

    def _rate(self) -> float | None:
        if len(self.outcomes) < self.policy.min_samples:
            return None
        return sum(self.outcomes) / len(self.outcomes)

    def _trip(self, now: float, reason: str) -> None:
        self.cooling_until = now + self.policy.cooldown_seconds
        self.reason = reason


class HealthBoard:
    """Every provider's health, by name; it outlives config reloads (gateway.runtime)."""

    def __init__(self, policy: HealthPolicy | None = None) -> None:
        self._policy = policy
        self._by_name: dict[str, ProviderHealth] = {}

    def __getitem__(self, provider: str) -> ProviderHealth:
        health = self._by_name.get(provider)
        if health is None:
            health = self._by_name[provider] = ProviderHealth(self._policy)
        return health

    def unavailable(self, now: float) -> dict[str, str]:
        """Providers cooling down, with why: routing skips them while others can serve."""
        reasons = {name: h.unavailable(now) for name, h in self._by_name.items()}
        return {name: why for name, why in reasons.items() if why is not None}
