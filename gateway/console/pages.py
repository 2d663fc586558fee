"""The console's reading pages: videos (filterable), one video, stats, providers, and the
video bytes a `<video>` element plays through the session (ranged, so it can seek)."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlencode

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Stream, Template

from gateway.api.content import content_response
from gateway.auth import Caller
from gateway.console import views
from gateway.console.charts import bar_chart
from gateway.console.signin import NO_STORE
from gateway.service import ALL_TENANTS, VideoService
from gateway.stats import GroupBy, GroupStats
from providers.base import JobStatus

WINDOWS = {"1h": 3600, "24h": 24 * 3600, "7d": 7 * 24 * 3600, "30d": 30 * 24 * 3600}
PAGE = 25


class PagesController(Controller):
    path = "/"

    @get("/jobs", name="console-jobs")
    async def jobs(
        self,
        request: HTMXRequest,
        caller: NamedDependency[Caller],
        service: NamedDependency[VideoService],
        status: FromQuery[str | None] = None,
        provider: FromQuery[str | None] = None,
        model: FromQuery[str | None] = None,
        rule: FromQuery[str | None] = None,
        arm: FromQuery[str | None] = None,
        after: FromQuery[str | None] = None,
    ) -> Template:
        filters = {"status": status or None, "provider": provider or None, "model": model or None, "rule": rule or None, "arm": arm or None}
        jobs, more = await service.find_videos(
            caller,
            rule=filters["rule"],
            arm=filters["arm"],
            after=after or None,
            limit=PAGE,
            status=filters["status"],
            provider=filters["provider"],
            model=filters["model"],
        )
        rows = [views.job_row(job) for job in jobs]
        context = {
            "views": views,
            "caller": caller,
            "nav": "jobs",
            "rows": rows,
            "more": more,
            "filters": filters,
            "next_query": _query({**filters, "after": rows[-1].id}) if more and rows else None,
            "statuses": [s.value for s in JobStatus],
            "providers": [p.name for p in service.providers() if caller.may_use(p.name)],
            "models": [m.name for m in service.models(caller)],
        }
        # htmx asks for the table alone when a filter changes; a plain visit gets the page
        return Template("_jobs_table.html" if request.htmx else "jobs.html", context=context, headers=NO_STORE)

    @get("/jobs/{video_id:str}", name="console-job")
    async def job(self, video_id: FromPath[str], caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> Template:
        job = await service.get(caller, video_id)
        deliveries = await service.deliveries(caller, video_id)
        return Template(
            "job.html",
            context={"views": views, "caller": caller, "nav": "jobs", "job": job, "row": views.job_row(job), "deliveries": deliveries},
            headers=NO_STORE,
        )

    @get("/stats", name="console-stats")
    async def stats(
        self,
        caller: NamedDependency[Caller],
        service: NamedDependency[VideoService],
        group_by: FromQuery[GroupBy] = "provider",
        window: FromQuery[Literal["1h", "24h", "7d", "30d"]] = "24h",
        everyone: FromQuery[bool] = False,
    ) -> Template:
        since = service.clock() - WINDOWS[window]
        tenant = ALL_TENANTS if everyone and caller.admin else None
        scope, _, _, groups = await service.stats(caller, since=since, group_by=group_by, tenant=tenant)
        return Template(
            "stats.html",
            context={
                "views": views,
                "caller": caller,
                "nav": "stats",
                "groups": groups,
                "group_by": group_by,
                "window": window,
                "windows": list(WINDOWS),
                "everyone": scope == ALL_TENANTS,
                "charts": _charts(groups),
            },
            headers=NO_STORE,
        )

    @get("/providers", name="console-providers")
    async def providers(self, caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> Template:
        return Template(
            "providers.html",
            context={"views": views, "caller": caller, "nav": "providers", "providers": service.providers(), "now": service.clock()},
            headers=NO_STORE,
        )

    @get("/videos/{video_id:str}/content", name="console-content")
    async def content(
        self,
        request: Request[Any, Any, Any],
        video_id: FromPath[str],
        caller: NamedDependency[Caller],
        service: NamedDependency[VideoService],
        variant: FromQuery[Literal["video", "thumbnail", "last_frame"]] = "video",
    ) -> Stream:
        opened = service.content(caller, video_id, variant, byte_range=request.headers.get("range"))
        return await content_response(opened, headers={"Cache-Control": "private, max-age=3600"})


def _charts(groups: list[GroupStats]) -> list[Any]:
    names = [g.group for g in groups]
    return [
        bar_chart("Success rate", [(n, [g.success_rate]) for n, g in zip(names, groups, strict=True)], series=["success"], fmt=views.percent, max_value=1.0),
        bar_chart(
            "Time to video",
            [(n, [g.p50_time_to_video_seconds, g.p95_time_to_video_seconds]) for n, g in zip(names, groups, strict=True)],
            series=["p50", "p95"],
            fmt=views.seconds,
        ),
        bar_chart(
            "USD per video second",
            [(n, [g.cost_per_video_second_usd]) for n, g in zip(names, groups, strict=True)],
            series=["USD/s"],
            fmt=lambda v: views.usd(v, per="s"),
        ),
        bar_chart("Human win rate", [(n, [g.win_rate]) for n, g in zip(names, groups, strict=True)], series=["win rate"], fmt=views.percent, max_value=1.0),
    ]


def _query(params: dict[str, str | None]) -> str:
    return urlencode({k: v for k, v in params.items() if v})
