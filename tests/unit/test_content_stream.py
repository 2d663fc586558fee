"""`/content` streams: the response pulls one chunk from storage per chunk it sends, never
reads ahead, and closes the source when the body ends or the client goes away. (How much
memory a 500 MB download takes through a real server is measured in
bench/content_memory.py, not here.)"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from gateway.api.content import content_response
from gateway.service import Content


class Source:
    def __init__(self, chunks: int) -> None:
        self.total = chunks
        self.pulled = 0
        self.closed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        for _ in range(self.total):
            self.pulled += 1
            yield b"x" * 1024

    @contextlib.asynccontextmanager
    async def opened(self) -> AsyncIterator[Content]:
        try:
            yield Content("video/mp4", self.chunks(), size=self.total * 1024)
        finally:
            self.closed = True


async def test_the_body_pulls_one_chunk_per_chunk_sent() -> None:
    source = Source(1000)
    response = await content_response(source.opened())
    body = response.iterator
    assert source.pulled == 0  # opened, nothing read yet
    seen = []
    async for chunk in body:  # type: ignore[union-attr]
        seen.append(source.pulled)
        assert len(chunk) == 1024
        if len(seen) == 3:
            break
    assert seen == [1, 2, 3]
    await body.aclose()  # type: ignore[union-attr]  # the client went away
    assert source.closed


async def test_the_source_is_closed_when_the_body_ends() -> None:
    source = Source(5)
    response = await content_response(source.opened())
    assert response.headers["Content-Length"] == "5120"
    sent = [chunk async for chunk in response.iterator]  # type: ignore[union-attr]
    assert len(sent) == 5 and source.closed
