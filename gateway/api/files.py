"""`/v1/files`: upload media once, reference it as `{"file_id": …}`."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from gateway.api.docs import UploadFileOperation, errors
from gateway.auth import Caller
from gateway.errors import BadRequest, PayloadTooLarge
from gateway.forms import MAX_PURPOSE, FilePart, files_form_limits, read_form
from gateway.jobs.model import FileRecord
from gateway.service import VideoService


class FileObject(msgspec.Struct, kw_only=True):
    id: str
    object: str = "file"
    bytes: int
    created_at: int
    filename: str | None
    purpose: str
    content_type: str
    kind: str
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None


def file_object(record: FileRecord) -> FileObject:
    return FileObject(
        id=record.id,
        bytes=record.bytes,
        created_at=int(record.created_at),
        filename=record.filename,
        purpose=record.purpose,
        content_type=record.content_type,
        kind=record.kind,
        width=record.width,
        height=record.height,
        duration_ms=record.duration_ms,
    )


class FilesController(Controller):
    path = "/v1/files"
    tags = ["files"]

    @post(
        "/",
        operation_id="uploadFile",
        summary="Upload an image, video or audio file",
        status_code=200,
        operation_class=UploadFileOperation,
        responses=errors(400, 401, 413, 422),
    )
    async def upload(self, request: Request[Any, Any, Any], caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> FileObject:
        limits = files_form_limits(service.settings.security)
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > service.settings.security.max_request_bytes:
            raise PayloadTooLarge(f"Request body is {declared} bytes; the limit is {service.settings.security.max_request_bytes}")
        form = dict(reversed(await read_form(request.stream(), request.headers.get("content-type", ""), limits)))  # the first of a repeated field wins
        upload = form.get("file")
        if not isinstance(upload, FilePart):
            raise BadRequest("Send the media as a multipart file part named 'file'", param="file")
        purpose = form.get("purpose") or "video_input"
        if not isinstance(purpose, str) or len(purpose) > MAX_PURPOSE or not purpose.isprintable():
            raise BadRequest(f"purpose must be printable text of at most {MAX_PURPOSE} characters", param="purpose")
        return file_object(await service.upload_file(caller, upload, purpose=purpose))

    @get("/{file_id:str}", operation_id="retrieveFile", summary="Retrieve a file's metadata", responses=errors(401, 404))
    async def retrieve(self, file_id: FromPath[str], caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> FileObject:
        return file_object(await service.get_file(caller, file_id))
