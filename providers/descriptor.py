"""One object per provider: everything generic code may know about an upstream.

Each provider package exports a `DESCRIPTOR` built from its own modules;
`providers.registry` lists them. The gateway (config validation, routing, the
job engine, `/v1/models`, the CLI and the demo) asks the descriptor and never
compares provider names, so a new upstream is a new package plus one registry
line.

The simulator is named by its import path only: production never imports it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Protocol

from providers.base import Adapter
from providers.capabilities import ModelCaps

if TYPE_CHECKING:
    from litestar.types import ASGIApp


@dataclass(frozen=True, kw_only=True)
class AccountRules:
    """Providers whose work runs on named upstream accounts (each with a job cap and a region).

    `id_pattern` must match an account id whole and capture its region as `region`."""

    id_pattern: str
    max_jobs: int  # the most concurrent jobs the upstream lets one account run
    example: str

    def problem(self, account_id: str, region: str) -> str | None:
        """Why this account entry is unusable, or None."""
        match = re.fullmatch(self.id_pattern, account_id)
        if match is None:
            return f"account id must look like {self.example}, got {account_id!r}"
        if match["region"] != region:
            return f"account {account_id!r}: region {region!r} differs from the id's {match['region']!r}"
        return None


class SimulatorFactory(Protocol):
    def __call__(self, *, job_seconds: float = 5.0, capacity: int | None = None) -> ASGIApp: ...


@dataclass(frozen=True, kw_only=True)
class ProviderDescriptor:
    type: str  # the config's `[providers.<name>] type`
    title: str  # a human name for listings ("useapi.net Dreamina v1")
    adapter: Callable[[], Adapter]
    models: Mapping[str, ModelCaps]  # the upstream's own model id -> capabilities
    catalog: Mapping[str, str]  # logical model name -> the upstream's model id
    accounts: AccountRules | None = None  # None: one pool sized by the provider's concurrency
    simulator: str  # "package.module:function", a SimulatorFactory; imported only by demo, tests and the CLI
    max_age_seconds: float = 1800.0  # a job still unfinished upstream after this is cancelled and moved on
    # jobs in flight at once (its slots) unless `max_concurrency` says otherwise; for providers without accounts
    default_max_concurrency: int = 20
    # Reconciling a submit whose answer was lost: the adapter can look the job up in a
    # listing (`build_find`), and/or the upstream calls back with the job's id.
    finds_lost_submits: bool = False
    calls_back: bool = False
    # What one of the upstream's own credits costs in USD, for providers that report a job's cost
    # in credits; None where no price is published (then `[providers.x] usd_per_credit` sets it).
    # USD-per-second and per-token prices live in the adapter's own table (`estimate_cost`).
    usd_per_credit: float | None = None
    docs: Mapping[str, str] = field(default_factory=dict)  # where the contract came from, for check-config

    def load_simulator(self) -> SimulatorFactory:
        module, _, name = self.simulator.partition(":")
        factory: SimulatorFactory = getattr(import_module(module), name)
        return factory
