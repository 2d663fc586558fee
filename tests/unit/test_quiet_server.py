"""`QuietServer`: uvicorn's server woken once a tick instead of ten times a second, and at
once when asked to stop."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from gateway.serving import QuietServer

STOP_WAIT = 30.0  # generous: the server must stop long before its next tick (an hour away)


async def ok_app(scope: dict[str, object], receive: object, send: object) -> None:  # a minimal ASGI app
    if scope["type"] != "http":
        return
    assert callable(send)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@contextmanager
def serving(tick: float) -> Iterator[tuple[QuietServer, str, list[int]]]:
    """A QuietServer on a loopback socket in a thread, with the counters its `on_tick` saw."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    server = QuietServer(uvicorn.Config(ok_app, log_config=None, log_level="warning", lifespan="off"), tick=tick)
    ticks: list[int] = []
    on_tick = server.on_tick

    async def recording(counter: int) -> bool:
        ticks.append(counter)
        return await on_tick(counter)

    server.on_tick = recording  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        for _ in range(3000):  # until the main loop has looked once (it is ready to be woken)
            if ticks:
                break
            threading.Event().wait(0.01)
        assert ticks[:1] == [0]
        yield server, url, ticks
    finally:
        server.should_exit = True
        thread.join(STOP_WAIT)
        sock.close()
    assert not thread.is_alive(), "the server did not stop when should_exit was set"


def test_setting_should_exit_from_another_thread_stops_the_server_without_waiting_for_its_tick() -> None:
    with serving(tick=3600.0) as (server, url, ticks):
        assert httpx.get(url).text == "ok"
    # stopped (checked on leaving `serving`) after one look at start and one when woken:
    # the hour-long tick never ran out
    assert ticks == [0, 10]
    assert server.should_exit


def test_every_tick_refreshes_the_date_header() -> None:
    """uvicorn's `on_tick` refreshes the `date` header when its counter is a multiple of ten;
    a tick here is a second, so every one of them must be such a multiple."""
    with serving(tick=0.01) as (_, url, ticks):
        while len(ticks) < 5:
            threading.Event().wait(0.01)
        assert "date" in httpx.get(url).headers
    assert len(ticks) >= 5
    assert all(counter % 10 == 0 for counter in ticks), ticks
