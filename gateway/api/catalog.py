"""`/v1/models` and `/v1/providers`: what vidgate can serve, and through whom."""

from __future__ import annotations

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency

from gateway.api.docs import errors
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
    queued: int  # jobs waiting in vidgate's queue for a slot
    accounts: list[AccountState]  # admin keys only
    disabled_accounts: dict[str, str]  # admin keys only
    models: list[str]


class ProviderList(msgspec.Struct):
    data: list[ProviderObject]
    object: str = "list"


class CatalogController(Controller):
    path = "/v1"
    tags = ["catalog"]

    @get("/models", operation_id="listModels", summary="Logical models, their capabilities and providers", responses=errors(401))
    async def models(self, caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> ModelList:
        return ModelList(
            data=[
                ModelObject(id=m.name, providers=[ServedBy(provider=p, model_id=model_id, capabilities=caps) for p, model_id, caps in m.providers])
                for m in service.models(caller)
            ]
        )

    @get("/providers", operation_id="listProviders", summary="Configured providers, health and capacity in use", responses=errors(401))
    async def providers(self, caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> ProviderList:
        """Upstream account ids and per-account detail are for admin keys only (empty otherwise)."""
        data = []
        for p in service.providers():
            usage = p.usage
            accounts = usage.accounts if usage is not None and caller.admin else ()
            data.append(
                ProviderObject(
                    id=p.name,
                    type=p.type,
                    enabled=p.enabled,
                    healthy=p.health.healthy,
                    health=p.health,
                    capacity=usage.capacity if usage is not None else 0,
                    in_flight=usage.in_use if usage is not None else 0,
                    queued=usage.queued if usage is not None else 0,
                    accounts=[AccountState(account=a.account, region=a.region, max_jobs=a.limit, in_flight=a.in_use) for a in accounts],
                    models=p.models,
                    disabled_accounts={str(a.account): a.disabled for a in accounts if a.disabled is not None},
                )
            )
        return ProviderList(data=data)
