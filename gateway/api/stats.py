"""`/v1/stats`: success rate, time to video and cost per provider / model / rule / arm."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter

from gateway.api.docs import errors
from gateway.auth import Caller
from gateway.service import VideoService
from gateway.stats import GroupBy, GroupStats

DEFAULT_WINDOW_SECONDS = 24 * 3600
ALL_TENANTS = "*"


class StatsObject(msgspec.Struct, kw_only=True):
    object: Literal["stats"] = "stats"
    tenant: str  # "*" for every tenant
    since: float
    until: float
    group_by: str
    data: list[GroupStats]


class StatsController(Controller):
    path = "/v1/stats"
    tags = ["stats"]

    @get("/", operation_id="getStats", summary="Job outcomes, time to video and cost, grouped", responses=errors(400, 401, 403))
    async def stats(
        self,
        caller: NamedDependency[Caller],
        service: NamedDependency[VideoService],
        since: Annotated[float, QueryParameter(ge=0, description="a unix time in seconds; default: 24 hours ago")] | None = None,
        group_by: FromQuery[GroupBy] = "provider",
        tenant: Annotated[str | None, QueryParameter(description='a tenant, or "*" for all (admin keys only); default: the key\'s own')] = None,
    ) -> StatsObject:
        scope, since_at, until, data = await service.stats(caller, since=since, group_by=group_by, tenant=tenant)
        return StatsObject(tenant=scope, since=since_at, until=until, group_by=group_by, data=data)
