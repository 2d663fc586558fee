"""OpenAI Videos operations no configured provider offers: a clear 400, never a bare 404.

The official SDK calls these paths (`client.videos.remix`, `edit`, `extend`,
`create_character`, `get_character`); each answers `unsupported_operation` in the
OpenAI error envelope, after authentication, without reading the body.
"""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from gateway.api.docs import VideoId, errors
from gateway.auth import Caller
from gateway.errors import ErrorEnvelope
from gateway.service import VideoService

_UNSUPPORTED = errors(400, 401)


class UnsupportedController(Controller):
    path = "/v1/videos"
    tags = ["videos"]

    @post(
        "/{video_id:str}/remix",
        operation_id="remixVideo",
        summary="Remix a video (not offered: answers 400 unsupported_operation)",
        status_code=400,
        responses=_UNSUPPORTED,
    )
    async def remix(self, video_id: VideoId, caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> ErrorEnvelope:
        service.unsupported(caller, "remix")

    @post("/edits", operation_id="editVideo", summary="Edit a video (not offered: answers 400 unsupported_operation)", status_code=400, responses=_UNSUPPORTED)
    async def edits(self, caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> ErrorEnvelope:
        service.unsupported(caller, "edits")

    @post(
        "/extensions",
        operation_id="extendVideo",
        summary="Extend a video (not offered: answers 400 unsupported_operation)",
        status_code=400,
        responses=_UNSUPPORTED,
    )
    async def extensions(self, caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> ErrorEnvelope:
        service.unsupported(caller, "extensions")

    @post(
        "/characters",
        operation_id="createCharacter",
        summary="Create a character (not offered: answers 400 unsupported_operation)",
        status_code=400,
        responses=_UNSUPPORTED,
    )
    async def create_character(self, caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> ErrorEnvelope:
        service.unsupported(caller, "characters")

    @get(
        "/characters/{character_id:str}",
        operation_id="retrieveCharacter",
        summary="Retrieve a character (not offered: answers 400 unsupported_operation)",
        status_code=400,
        responses=_UNSUPPORTED,
    )
    async def get_character(self, character_id: FromPath[str], caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> ErrorEnvelope:
        service.unsupported(caller, "characters")
