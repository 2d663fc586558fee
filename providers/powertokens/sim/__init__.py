"""The PowerTokens `/v1/videos` simulator: test and demo equipment, never loaded in production."""

from __future__ import annotations

from litestar import Litestar

from providers.powertokens.sim.app import SimConfig, create_app, with_capacity

__all__ = ["SimConfig", "create_app", "simulator", "with_capacity"]


def simulator(*, job_seconds: float = 5.0, capacity: int | None = None) -> Litestar:
    """The descriptor's `SimulatorFactory`: jobs of `job_seconds`, `capacity` unfinished tasks."""
    config = SimConfig(job_seconds=job_seconds)
    return create_app(config if capacity is None else with_capacity(config, capacity))
