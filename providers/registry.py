"""The one place that maps a provider type to its adapter and capability table.

Generic code asks the registry; it never branches on a provider's name.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

import msgspec

from providers.base import Adapter
from providers.capabilities import ModelCaps


class ProviderKind(msgspec.Struct, frozen=True):
    type: str
    adapter: Adapter
    models: dict[str, ModelCaps]  # keyed by the upstream's own model id
    catalog: dict[str, str]  # logical model name -> upstream model id
    # builds the upstream simulator app: (job_seconds) -> ASGI app
    simulator: Callable[..., Any]


_MODULES = {"useapi": "providers.useapi", "powertokens": "providers.powertokens"}
_ADAPTER_CLASS = {"useapi": "UseapiAdapter", "powertokens": "PowerTokensAdapter"}
_cache: dict[str, ProviderKind] = {}


def provider_types() -> list[str]:
    return list(_MODULES)


def kind(provider_type: str) -> ProviderKind:
    """The adapter, models and catalog of a provider type (`KeyError` if unknown)."""
    if provider_type not in _cache:
        base = _MODULES[provider_type]
        adapter_cls = getattr(import_module(f"{base}.adapter"), _ADAPTER_CLASS[provider_type])
        models = import_module(f"{base}.models")
        sim = import_module(f"{base}.simulator")
        _cache[provider_type] = ProviderKind(
            type=provider_type,
            adapter=adapter_cls(),
            models=dict(models.MODELS),
            catalog=dict(models.CATALOG),
            simulator=sim.create_app,
        )
    return _cache[provider_type]
