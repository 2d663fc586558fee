"""The useapi.net Dreamina simulator: test and demo equipment, never loaded in production."""

from __future__ import annotations

from litestar import Litestar

from providers.useapi.sim.app import SimAccount, SimConfig, create_app, with_capacity

__all__ = ["SimAccount", "SimConfig", "create_app", "simulator", "with_capacity"]


def simulator(*, job_seconds: float = 5.0, capacity: int | None = None) -> Litestar:
    """The descriptor's `SimulatorFactory`: the default accounts, jobs of `job_seconds`."""
    config = SimConfig(job_seconds=job_seconds)
    return create_app(config if capacity is None else with_capacity(config, capacity))
