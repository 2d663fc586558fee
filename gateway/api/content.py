"""Streaming a video's content as an HTTP response: whole (200) or one byte range (206)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

from litestar.response import Stream

from gateway.service import Content


async def content_response(opened: AbstractAsyncContextManager[Content], *, headers: dict[str, str] | None = None) -> Stream:
    """Open the content now (so a 404 or 416 is still an error response), stream it after.

    The context is left when the body has been sent, or the client went away."""
    content = await opened.__aenter__()

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in content.chunks:
                yield chunk
        finally:
            await opened.__aexit__(None, None, None)

    out = dict(headers or {})
    status = 200
    if content.size is not None:
        out["Accept-Ranges"] = "bytes"
        out["Content-Length"] = str(content.size)
    if content.range is not None:
        status = 206
        out["Content-Range"] = content.range.content_range
        out["Content-Length"] = str(content.range.length)
    return Stream(body(), media_type=content.content_type, status_code=status, headers=out)
