"""The runtime: an immutable snapshot of what the config says, live.

Every request and every engine step reads `RuntimeHolder.current`; a reload builds a
new `Runtime` and swaps it in one assignment (`gateway.reload`). What must outlive a
reload is not in here: provider health (`gateway.health.HealthBoard`) and job slots
(`gateway.jobs.slots.SlotBoard`) are keyed by provider name and kept by the app.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Protocol

import httpx

from gateway.auth import KeyRing
from gateway.catalog import ModelCatalog
from gateway.http import make_client
from gateway.pricing import Pricer
from gateway.routing import ProviderFacts
from gateway.settings import ProviderSettings, Settings
from providers.base import Adapter
from providers.client import CallObserver, UpstreamClient
from providers.descriptor import ProviderDescriptor
from providers.registry import descriptor


@dataclass(frozen=True, kw_only=True)
class AccountSlots:
    """One pool of job slots: an upstream account (`account` set) or the provider as a whole."""

    account: str | None
    region: str | None
    limit: int


@dataclass(frozen=True, kw_only=True)
class ProviderRuntime:
    """One configured provider, live: its descriptor, settings and upstream client."""

    name: str
    settings: ProviderSettings
    descriptor: ProviderDescriptor
    client: UpstreamClient

    @property
    def adapter(self) -> Adapter:
        return self.client.adapter

    @property
    def accounts(self) -> tuple[AccountSlots, ...]:
        if self.settings.accounts:
            return tuple(AccountSlots(account=a.id, region=a.region, limit=a.max_jobs) for a in self.settings.accounts)
        return (AccountSlots(account=None, region=None, limit=self.settings.max_concurrency or self.descriptor.default_max_concurrency),)

    @cached_property
    def pricer(self) -> Pricer:
        return Pricer.of(self.settings, self.descriptor, self.adapter)

    @property
    def max_age(self) -> float:
        return self.settings.max_job_age_seconds or self.descriptor.max_age_seconds

    def routing_facts(self) -> ProviderFacts:
        regions = frozenset(a.region for a in self.accounts if a.region)
        return ProviderFacts(
            name=self.name,
            models=self.descriptor.models,
            catalog=self.descriptor.catalog,
            regions=regions or None,
            enabled=self.settings.enabled,
            media_delivery=self.adapter.media_delivery,
            inline_media=self.adapter.inline_media,
        )


class CallObservers(Protocol):
    def upstream(self, provider: str) -> CallObserver:
        """The observer of one provider's upstream calls (`gateway.metrics`)."""
        ...


class UpstreamClients:
    """Builds each provider's upstream client and closes them all at shutdown.

    `transports` maps a provider name to an httpx transport (tests reach simulators
    without sockets); `instance` goes into the User-Agent so upstream logs tell replicas apart;
    `observers` hands each client the observer of its calls (metrics)."""

    def __init__(
        self, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None, *, instance: str | None = None, observers: CallObservers | None = None
    ) -> None:
        self._transports = dict(transports or {})
        self._instance = instance
        self._observers = observers
        self._open: list[httpx.AsyncClient] = []

    def build(self, name: str, cfg: ProviderSettings, desc: ProviderDescriptor) -> UpstreamClient:
        http = make_client(
            cfg.base_url,
            timeout=cfg.timeout_seconds,
            connect_timeout=cfg.connect_timeout_seconds,
            max_connections=cfg.max_connections,
            transport=self._transports.get(name),
            instance=self._instance,
        )
        self._open.append(http)
        observer = self._observers.upstream(name) if self._observers is not None else None
        return UpstreamClient(desc.adapter(), http, cfg.secret, max_in_flight=cfg.max_connections, observer=observer)

    async def aclose(self) -> None:
        clients, self._open = self._open, []
        for http in clients:
            await http.aclose()


@dataclass(frozen=True, kw_only=True)
class Runtime:
    settings: Settings
    keys: KeyRing
    providers: Mapping[str, ProviderRuntime]  # configured now, in config order
    retired: Mapping[str, ProviderRuntime] = field(default_factory=dict)  # removed by a reload, still driving their jobs
    catalog: ModelCatalog
    routing: tuple[ProviderFacts, ...]

    def provider(self, name: str) -> ProviderRuntime | None:
        """A provider that can drive a job: configured, or retired with jobs still on it."""
        return self.providers.get(name) or self.retired.get(name)


def build_runtime(settings: Settings, clients: UpstreamClients, previous: Runtime | None = None) -> Runtime:
    """A runtime for `settings`. A provider whose config is unchanged keeps its runtime (and
    its client's connections); one that a reload removed stays as `retired`."""
    providers: dict[str, ProviderRuntime] = {}
    for name, cfg in settings.providers.items():
        old = previous.provider(name) if previous is not None else None
        if old is not None and old.settings == cfg:
            providers[name] = old
            continue
        desc = descriptor(cfg.type)
        providers[name] = ProviderRuntime(name=name, settings=cfg, descriptor=desc, client=clients.build(name, cfg, desc))
    earlier = {**previous.retired, **previous.providers} if previous is not None else {}
    retired = {name: old for name, old in earlier.items() if name not in providers}
    return Runtime(
        settings=settings,
        keys=KeyRing(settings.keys),
        providers=MappingProxyType(providers),
        retired=MappingProxyType(retired),
        catalog=ModelCatalog(settings.models, {name: rt.descriptor for name, rt in providers.items()}),
        routing=tuple(rt.routing_facts() for rt in providers.values()),
    )


class RuntimeHolder:
    """The current runtime; `swap` replaces it whole (a reload), readers never see a mix."""

    def __init__(self, runtime: Runtime) -> None:
        self._current = runtime

    @property
    def current(self) -> Runtime:
        return self._current

    def swap(self, runtime: Runtime) -> None:
        self._current = runtime
