"""`/v1/stats`: success rate, time to video and cost per provider / model / rule / arm."""

from __future__ import annotations

from typing import Literal

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery

from gateway.auth import Caller
from gateway.errors import Forbidden, InvalidRequest
from gateway.service import VideoService
from gateway.stats import GroupBy, GroupStats, compute

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

    @get("/", operation_id="getStats", summary="Job outcomes, time to video and cost, grouped")
    async def stats(
        self,
        caller: NamedDependency[Caller],
        service: NamedDependency[VideoService],
        since: FromQuery[float | None] = None,
        group_by: FromQuery[GroupBy] = "provider",
        tenant: FromQuery[str | None] = None,
    ) -> StatsObject:
        now = service.clock()
        if since is None:
            since = now - DEFAULT_WINDOW_SECONDS
        elif since < 0:
            raise InvalidRequest("since must be a unix time in seconds", param="since")
        scope = tenant or caller.tenant
        if scope != caller.tenant and not caller.admin:
            raise Forbidden("Only an admin key may read another tenant's stats", param="tenant")
        jobs = await service.store.jobs_since(None if scope == ALL_TENANTS else scope, since)
        return StatsObject(tenant=scope, since=since, until=now, group_by=group_by, data=compute(jobs, group_by))
