"""The compare page: one form that creates a comparison, its live result, and the vote.

The form's uploads become stored files and the comparison is created by the same
`ComparisonService.create` as `POST /v1/comparisons`, from the same JSON body. The result
page follows every child over server-sent events, each event an HTML card that htmx swaps
in; a blind comparison shows labels until someone votes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, ServerSentEvent, Template
from litestar.response.sse import ServerSentEventMessage

from gateway.auth import Caller
from gateway.comparisons import ComparisonService
from gateway.console import views
from gateway.console.session import PATH
from gateway.console.signin import NO_STORE
from gateway.errors import GatewayError, InvalidRequest
from gateway.forms import FilePart
from gateway.jobs.model import Comparison, Job
from gateway.service import VideoService

RATIOS = ["21:9", "16:9", "4:3", "1:1", "3:4", "9:16", "adaptive"]
RESOLUTIONS = ["480p", "720p", "1080p", "4k"]
# form field -> where its files go in the request: (path, one file or a list)
UPLOADS: dict[str, tuple[tuple[str, ...], bool]] = {
    "first_frame": (("first_frame",), False),
    "last_frame": (("last_frame",), False),
    "keyframes": (("keyframes",), True),
    "reference_images": (("references", "images"), True),
    "reference_videos": (("references", "videos"), True),
    "reference_audios": (("references", "audios"), True),
}


class CompareController(Controller):
    path = "/"

    @get("/", name="console-home")
    async def home(self, caller: NamedDependency[Caller]) -> Redirect:
        return Redirect(f"{PATH}/compare", status_code=303)

    @get("/compare", name="console-compare")
    async def form(self, caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> Template:
        return _form(caller, service, values={}, error=None)

    @post("/compare", status_code=303)
    async def create(self, request: Request[Any, Any, Any], caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> Response[Any]:
        form = await request.form()
        values = {name: value for name, value in form.items() if isinstance(value, str) and name != "_csrf_token"}
        try:
            body = await _comparison_body(form, caller, service)
            comparison = await ComparisonService(service).create(caller, msgspec.json.encode(body), idempotency_key=None)
        except GatewayError as exc:
            where = f" ({exc.param})" if exc.param else ""
            return _form(caller, service, values=values, error=f"{exc.message}{where}", status=exc.status)
        return Redirect(f"{PATH}/comparisons/{comparison.id}", status_code=303)

    @get("/comparisons/{comparison_id:str}", name="console-comparison")
    async def comparison(self, comparison_id: FromPath[str], caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> Template:
        comparisons = ComparisonService(service)
        comparison = await comparisons.get(caller, comparison_id)
        context = await _comparison_context(comparisons, comparison, caller)
        return Template("comparison.html", context=context, headers=NO_STORE)

    @get("/comparisons/{comparison_id:str}/events", name="console-comparison-events")
    async def events(
        self, request: Request[Any, Any, Any], comparison_id: FromPath[str], caller: NamedDependency[Caller], service: NamedDependency[VideoService]
    ) -> ServerSentEvent:
        comparisons = ComparisonService(service)
        comparison = await comparisons.get(caller, comparison_id)
        render = request.app.template_engine
        assert render is not None
        card_template, ballot_template = render.get_template("_card.html"), render.get_template("_ballot.html")

        async def stream() -> AsyncIterator[ServerSentEventMessage]:
            jobs = await comparisons.jobs(comparison)
            labels = {child.video_id: (label, child) for label, child in comparison.labelled()}
            live = [vid for vid, job in jobs.items() if job is not None]
            async for job in _merged([await service.watch(caller, vid) for vid in live]):
                jobs[job.id] = job
                label, child = labels[job.id]
                card = views.card(comparison, label, child, job)
                yield ServerSentEventMessage(event=card.dom_id, data=card_template.render(card=card, views=views))
            cards = views.cards(comparison, jobs)
            ballot = views.ballot(comparison, cards)
            yield ServerSentEventMessage(event="ballot", data=ballot_template.render(ballot=ballot, comparison=comparison, views=views))
            yield ServerSentEventMessage(event="done", data="done")

        return ServerSentEvent(stream(), headers={"Cache-Control": "no-store"})

    @post("/comparisons/{comparison_id:str}/vote", status_code=200)
    async def vote(
        self, request: HTMXRequest, comparison_id: FromPath[str], caller: NamedDependency[Caller], service: NamedDependency[VideoService]
    ) -> Response[Any]:
        form = await request.form()
        choice = form.get("winner")
        comparisons = ComparisonService(service)
        comparison = await comparisons.get(caller, comparison_id)
        error = None
        if choice == "tie":
            winner = None
        else:
            winner = views.provider_of_label(comparison, str(choice)) if isinstance(choice, str) else None
            if winner is None:
                error = "Pick one of the videos, or a tie."
        if error is None:
            try:
                comparison = await comparisons.cast(caller, comparison_id, winner)
            except GatewayError as exc:
                error = exc.message
        if not request.htmx:  # a plain form post (no script): back to the page
            return Redirect(f"{PATH}/comparisons/{comparison_id}", status_code=303)
        context = await _comparison_context(comparisons, comparison, caller)
        context["vote_error"] = error
        return Template("_comparison.html", context=context, status_code=200 if error is None else 422, headers=NO_STORE)


async def _comparison_context(comparisons: ComparisonService, comparison: Comparison, caller: Caller) -> dict[str, Any]:
    jobs = await comparisons.jobs(comparison)
    cards = views.cards(comparison, jobs)
    sample = _request_of(comparison, jobs)
    return {
        "views": views,
        "caller": caller,
        "nav": "compare",
        "comparison": comparison,
        "sample": sample,
        "cards": cards,
        "live": not all(c.done for c in cards),
        "ballot": views.ballot(comparison, cards),
        "hidden": views.hidden(comparison),
        "vote_error": None,
    }


def _request_of(comparison: Comparison, jobs: dict[str, Job | None]) -> Job | None:
    """Any child: they share the request (prompt, seconds, ratio, resolution, mode)."""
    return next((job for job in jobs.values() if job is not None), None)


def _form(caller: Caller, service: VideoService, *, values: dict[str, str], error: str | None, status: int = 200) -> Template:
    models = [m.name for m in service.models(caller)]
    providers = [p.name for p in service.providers() if p.enabled and caller.may_use(p.name)]
    return Template(
        "compare.html",
        context={
            "views": views,
            "caller": caller,
            "nav": "compare",
            "models": models,
            "default_model": values.get("model") or service.settings.jobs.default_model,
            "providers": providers,
            "ratios": RATIOS,
            "resolutions": RESOLUTIONS,
            "values": values,
            "error": error,
        },
        status_code=status,
        headers=NO_STORE,
    )


async def _comparison_body(form: Any, caller: Caller, service: VideoService) -> dict[str, Any]:
    """The form as the JSON body of `POST /v1/comparisons`, its files uploaded first."""

    def text(name: str) -> str | None:
        value = form.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None

    request: dict[str, Any] = {}
    for name in ("model", "prompt", "ratio", "resolution"):
        if (value := text(name)) is not None:
            request[name] = value
    if (secs := text("seconds")) is not None:
        request["seconds"] = int(secs) if secs.isdigit() and len(secs) < 6 else secs
    for field, (path, many) in UPLOADS.items():
        files = [f for f in form.getall(field, []) if isinstance(f, UploadFile) and f.filename]
        if not files:
            continue
        if not many and len(files) > 1:
            raise InvalidRequest(f"Give one file for {field}", param=field)
        refs: list[Any] = []
        for upload in files:
            data = await upload.read()
            if not data:
                raise InvalidRequest(f"{upload.filename} is empty", param=field)
            record = await service.upload_file(
                caller, FilePart(name=field, filename=upload.filename, content_type=upload.content_type, data=data), purpose="video_input"
            )
            refs.append({"file_id": record.id})
        if field == "keyframes":
            refs = [{"image": ref} for ref in refs]
        target = request
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = refs if many else refs[0]
    wanted = [name for name in form.getall("providers", []) if isinstance(name, str)]
    if not wanted:
        raise InvalidRequest("Pick at least one provider to compare", param="providers")
    return {"request": request, "providers": wanted, "blind": form.get("blind") == "on"}


async def _merged(streams: list[AsyncIterator[Job]]) -> AsyncIterator[Job]:
    """Every item of several async iterators as it comes, until all of them end."""
    queue: asyncio.Queue[Job | None] = asyncio.Queue()

    async def pump(stream: AsyncIterator[Job]) -> None:
        try:
            async for item in stream:
                await queue.put(item)
        finally:
            await queue.put(None)

    tasks = [asyncio.create_task(pump(s)) for s in streams]
    try:
        running = len(tasks)
        while running:
            item = await queue.get()
            if item is None:
                running -= 1
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
