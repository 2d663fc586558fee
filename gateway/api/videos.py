"""`/v1/videos`: create, retrieve, list, delete, content and events."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal, NamedTuple

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from litestar.response import ServerSentEvent, Stream
from litestar.response.sse import ServerSentEventMessage

from gateway.api.content import content_response
from gateway.api.docs import ContentOperation, CreateVideoOperation, EventsOperation, VideoId, errors
from gateway.auth import Caller
from gateway.errors import BadRequest, PayloadTooLarge
from gateway.forms import JSON, MULTIPART, URL_ENCODED, FilePart, create_form_limits, media_type, read_form, sha256_of
from gateway.jobs.model import Job
from gateway.schema import CreateVideoBody, Video, VideoDeleted, VideoList, decode_json, from_form
from gateway.service import VideoService, fingerprint_of
from gateway.views import video_of
from providers.base import JobStatus


class VideosController(Controller):
    path = "/v1/videos"
    tags = ["videos"]

    @post(
        "/",
        operation_id="createVideo",
        summary="Create a video job (JSON or multipart)",
        status_code=200,
        operation_class=CreateVideoOperation,
        responses=errors(400, 401, 403, 404, 409, 413, 422),
    )
    async def create(self, request: Request[Any, Any, Any], caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> Response[Video]:
        read = await _read_create(request, caller, service)
        key = service.idempotency_key(request.headers)
        job, created = await service.create(caller, read.body, fingerprint=read.fingerprint, idempotency_key=key, headers=request.headers, uploads=read.uploads)
        return Response(video_of(job), status_code=200, headers=_poll_headers(job.status) | ({"Idempotent-Replayed": "true"} if not created else {}))

    @get("/", operation_id="listVideos", summary="List videos, newest first", responses=errors(400, 401, 404))
    async def list_videos(
        self,
        caller: NamedDependency[Caller],
        service: NamedDependency[VideoService],
        after: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
        order: FromQuery[Literal["asc", "desc"]] = "desc",
        status: FromQuery[Literal["queued", "in_progress", "completed", "failed", "cancelled"] | None] = None,
        provider: FromQuery[str | None] = None,
        model: FromQuery[str | None] = None,
    ) -> VideoList:
        jobs, more = await service.list_videos(caller, after=after, limit=limit, order=order, status=status, provider=provider, model=model)
        data = [video_of(j) for j in jobs]
        return VideoList(data=data, first_id=data[0].id if data else None, last_id=data[-1].id if data else None, has_more=more)

    @get("/{video_id:str}", operation_id="retrieveVideo", summary="Retrieve a video", responses=errors(401, 404))
    async def retrieve(self, video_id: VideoId, caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> Response[Video]:
        job = await service.get(caller, video_id)
        return Response(video_of(job), headers=_poll_headers(job.status))

    @delete(
        "/{video_id:str}",
        operation_id="deleteVideo",
        summary="Delete a video (an unfinished one is cancelled first, upstream too)",
        status_code=200,
        responses=errors(401, 404, 409),
    )
    async def remove(self, video_id: VideoId, caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> VideoDeleted:
        job = await service.delete(caller, video_id)
        return VideoDeleted(id=job.id)

    @get(
        "/{video_id:str}/content",
        operation_id="downloadVideoContent",
        summary="Stream the video, thumbnail or last frame",
        operation_class=ContentOperation,
        responses=errors(400, 401, 404),
    )
    async def content(
        self,
        request: Request[Any, Any, Any],
        video_id: VideoId,
        caller: NamedDependency[Caller],
        service: NamedDependency[VideoService],
        variant: FromQuery[Literal["video", "thumbnail", "last_frame"]] = "video",
    ) -> Stream:
        return await content_response(service.content(caller, video_id, variant, byte_range=request.headers.get("range")))

    @post(
        "/{video_id:str}/cancel",
        operation_id="cancelVideo",
        summary="Cancel an unfinished video and keep its record",
        status_code=200,
        responses=errors(401, 404),
    )
    async def cancel(self, video_id: VideoId, caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> Video:
        return video_of(await service.cancel(caller, video_id))

    @get(
        "/{video_id:str}/events",
        operation_id="videoEvents",
        summary="Server-sent events for each status change",
        operation_class=EventsOperation,
        responses=errors(401, 404),
    )
    async def events(self, video_id: VideoId, caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> ServerSentEvent:
        changes = await service.watch(caller, video_id)

        async def stream() -> AsyncIterator[ServerSentEventMessage]:
            async for job in changes:
                yield _event(job)

        return ServerSentEvent(stream())


_encoder = msgspec.json.Encoder()


def _event(job: Job) -> ServerSentEventMessage:
    return ServerSentEventMessage(data=_encoder.encode(video_of(job)).decode(), event=f"video.{job.status.value}", id=f"{job.id}:{job.version}")


def _poll_headers(status: JobStatus) -> dict[str, str]:
    return {} if status.terminal else {"openai-poll-after-ms": "1000"}


async def _read_create(request: Request[Any, Any, Any], caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> CreateRead:
    """The body as JSON or as the SDK's form. File parts are read (within `[security]
    max_upload_bytes` each) but not stored: the service stores them only once the request
    is known to be valid, so a rejected create leaves nothing behind."""
    content_type = request.headers.get("content-type", "")
    security = service.settings.security
    limit = security.max_request_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body is {declared} bytes; the limit is {limit}")
    kind, _ = media_type(content_type)
    if kind == JSON or not kind:
        raw = await request.body()
        body = decode_json(raw)
        return CreateRead(body, fingerprint_of([("json", msgspec.json.decode(raw))]), {})
    if kind in (MULTIPART, URL_ENCODED):
        form = await read_form(request.stream(), content_type, create_form_limits(security))
        items: list[tuple[str, Any]] = []
        prints: list[tuple[str, Any]] = []
        uploads: dict[str, FilePart] = {}
        token = secrets.token_hex(8)
        for name, value in form:
            if isinstance(value, FilePart):
                prints.append((name, "sha256:" + await sha256_of(value)))
                placeholder = f"upload_{token}_{len(uploads)}"  # stands for the part until it is stored
                uploads[placeholder] = value
                items.append((_file_key(name), placeholder))
            else:
                items.append((name, value))
                prints.append((name, value))
        return CreateRead(from_form(items), fingerprint_of(sorted(prints)), uploads)
    raise BadRequest(f"Unsupported Content-Type {content_type[:80]!r}: send application/json or multipart/form-data", param="Content-Type")


class CreateRead(NamedTuple):
    body: CreateVideoBody
    fingerprint: str
    uploads: dict[str, FilePart]  # placeholder file id -> the file part it stands for


def _file_key(name: str) -> str:
    """A file part named `input_reference` becomes `input_reference[file_id]`."""
    return f"{name}[file_id]"
