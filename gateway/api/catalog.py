"""`/v1/models` and `/v1/providers`: what vidgate can serve, and through whom."""

from __future__ import annotations

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency

from gateway.auth import Caller
from gateway.health import HealthState
from gateway.service import VideoService
from providers.capabilities import ModelCaps


class ServedBy(msgspec.Struct, kw_only=True):
    provider: str
    model_id: str
    capabilities: ModelCaps


class ModelObject(msgspec.Struct, kw_only=True):
    id: str
    object: str = "model"
    owned_by: str = "vidgate"
    providers: list[ServedBy]


class ModelList(msgspec.Struct):
    data: list[ModelObject]
    object: str = "list"


class AccountState(msgspec.Struct, kw_only=True):
    account: str | None
    region: str | None
    max_jobs: int
    in_flight: int


class ProviderObject(msgspec.Struct, kw_only=True):
    id: str
    object: str = "provider"
    type: str
    enabled: bool
    healthy: bool
    health: HealthState
    capacity: int
    in_flight: int
    accounts: list[AccountState]
    disabled_accounts: dict[str, str]
    models: list[str]


class ProviderList(msgspec.Struct):
    data: list[ProviderObject]
    object: str = "list"


class CatalogController(Controller):
    path = "/v1"
    tags = ["catalog"]

    @get("/models", operation_id="listModels", summary="Logical models, their capabilities and providers")
    async def models(self, caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> ModelList:
        routes = service.model_routes()
        names: dict[str, list[ServedBy]] = {}
        for facts in service.provider_facts():
            served = {logical: mid for logical, mid in facts.catalog.items()}
            for logical, route in routes.items():
                if facts.name in route.providers:
                    served[logical] = route.providers[facts.name]
            for logical, model_id in served.items():
                caps = facts.models.get(model_id)
                if caps is not None and caller.may_use(facts.name):
                    names.setdefault(logical, []).append(ServedBy(provider=facts.name, model_id=model_id, capabilities=caps))
        return ModelList(data=[ModelObject(id=name, providers=served) for name, served in sorted(names.items())])

    @get("/providers", operation_id="listProviders", summary="Configured providers, health and capacity in use")
    async def providers(self, caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> ProviderList:
        data = []
        for name, rt in service.providers.items():
            cfg = service.settings.providers[name]
            health = rt.health.state(service.clock())
            data.append(
                ProviderObject(
                    id=name,
                    type=rt.kind.type,
                    enabled=cfg.enabled,
                    healthy=health.healthy,
                    health=health,
                    capacity=rt.pool.capacity,
                    in_flight=rt.pool.used,
                    accounts=[AccountState(account=s.account, region=s.region, max_jobs=s.limit, in_flight=rt.pool.in_use[s.account]) for s in rt.pool.slots],
                    models=sorted(rt.kind.models),
                    disabled_accounts={str(a): why for a, why in rt.pool.disabled.items()},
                )
            )
        return ProviderList(data=data)
