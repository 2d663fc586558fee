"""The BytePlus ModelArk simulator: test and demo equipment, never loaded in production."""

from __future__ import annotations

from litestar import Litestar

from providers.modelark.sim.app import ErrorSwitch, SimConfig, create_app, with_capacity

__all__ = ["ErrorSwitch", "SimConfig", "create_app", "simulator", "with_capacity"]


def simulator(*, job_seconds: float = 5.0, capacity: int | None = None) -> Litestar:
    """The descriptor's `SimulatorFactory`: a fifth of `job_seconds` queued, the rest running
    (the contract's 2 s / 8 s split, §5.3); `capacity` raises the queued cap and running limits."""
    config = SimConfig(queue_seconds=job_seconds * 0.2, run_seconds=job_seconds * 0.8)
    return create_app(config if capacity is None else with_capacity(config, capacity))
