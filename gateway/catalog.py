"""Which providers serve a logical model, under which upstream model id, in which order.

One function answers it (`ModelCatalog.resolve`) for routing and for `/v1/models`, so
what `/v1/models` advertises is exactly what a create can get:

- a model named in `[models.<name>]` is served by the providers listed there (in
  `order`), under the model ids given there, and by nobody else;
- any other logical model is served by every configured provider whose descriptor's
  catalog has it, in config order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from providers.capabilities import ModelCaps


class ModelChoice(Protocol):
    """A configured logical model (`[models.<name>]`): provider -> model id, and an order."""

    @property
    def providers(self) -> Mapping[str, str]: ...
    @property
    def order(self) -> Sequence[str] | None: ...


class ProviderModels(Protocol):
    """What a provider offers: its capability table and its logical catalog (a descriptor)."""

    @property
    def models(self) -> Mapping[str, ModelCaps]: ...
    @property
    def catalog(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Served:
    provider: str
    model_id: str
    caps: ModelCaps | None  # None: the provider's table has no such model id (routing says so)


@dataclass(frozen=True)
class Resolution:
    rule: str  # "models.<name>" or "catalog": where the order came from, for the routing trace
    order: tuple[str, ...]  # provider names, in order
    model_ids: Mapping[str, str]  # provider -> its model id


class ModelCatalog:
    def __init__(self, models: Mapping[str, ModelChoice], providers: Mapping[str, ProviderModels]) -> None:
        """`providers`: each configured provider's name and what it offers, in config order."""
        self._models = dict(models)
        self._providers = dict(providers)

    def resolve(self, model: str) -> Resolution:
        configured = self._models.get(model)
        if configured is not None:
            return Resolution(f"models.{model}", tuple(configured.order or configured.providers), dict(configured.providers))
        ids = {name: desc.catalog[model] for name, desc in self._providers.items() if model in desc.catalog}
        return Resolution("catalog", tuple(ids), ids)

    def serving(self, model: str) -> list[Served]:
        """The providers that serve `model`, in routing order, with their capabilities."""
        found = self.resolve(model)
        out = []
        for name in found.order:
            desc = self._providers.get(name)
            model_id = found.model_ids.get(name)
            if desc is not None and model_id is not None:
                out.append(Served(name, model_id, desc.models.get(model_id)))
        return out

    def model_names(self) -> list[str]:
        """Every logical model some configured provider can serve, sorted."""
        names = set(self._models)
        for desc in self._providers.values():
            names.update(desc.catalog)
        return sorted(n for n in names if any(s.caps is not None for s in self.serving(n)))
