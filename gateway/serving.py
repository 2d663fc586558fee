"""How `vidgate serve` runs uvicorn: slow clients are closed, and an idle server sleeps.

uvicorn closes a connection that idles after a response (`timeout_keep_alive`), but not one
that never finishes its request: a client that opens a connection and sends nothing, or a
header line a byte at a time, or a body that stalls, holds its socket for ever (300 such
connections were still open after 65 s). `guarded_protocol` subclasses one of uvicorn's two
HTTP/1.1 protocols and watches the parser's own view of the request:

- from the moment a connection opens, or the first byte of its next request arrives, the
  request's headers must be complete within `header_timeout`;
- while a body is being received, no pause may last longer than `body_timeout` (time during
  which the server itself stopped reading, because the app has not taken what arrived, does
  not count);

and closes the connection when either is broken. The number of connections is capped by
uvicorn's `limit_concurrency` (requests past it get a 503), set from the same settings.

Both protocols get the same guard: `httptools` (the C parser `vidgate serve` runs by
default: it measured faster) learns where a request is from the parser's callbacks, `h11`
(pure Python, kept as a fallback: `vidgate serve --http h11`) from h11's connection state.
A request that arrives whole in one read arms no timer at all; the common case costs an
attribute write per callback.

`QuietServer` is uvicorn's server with its main loop woken once a second instead of ten
times (see its docstring).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Literal

import h11
import structlog
import uvicorn
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = structlog.get_logger("vidgate.server")

HttpParser = Literal["httptools", "h11"]
_Waiting = Literal["headers", "body"]


class _Deadline:
    """The one timer a guarded connection runs: for its request's headers, or a body pause."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0

    # provided by the uvicorn protocol this is mixed into
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    flow: FlowControl
    client: tuple[str, int] | None

    _deadline: asyncio.TimerHandle | None = None
    _waiting_for: _Waiting | None = None  # while a timer runs

    def _still_waiting_for_headers(self) -> bool:
        raise NotImplementedError

    def _check(self) -> None:
        """Arm, move or stop the timer after the parser has seen more bytes or a response ended."""
        raise NotImplementedError

    # uvicorn's hooks, on both protocols: each new chunk or finished response re-checks the timer.

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        self._check()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop()
        super().connection_lost(exc)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._check()  # a pipelined request may already be half in

    def _watch(self, what: _Waiting, seconds: float) -> None:
        self._stop()
        self._waiting_for = what
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _stop(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._waiting_for = None

    def _expired(self) -> None:
        what = self._waiting_for
        self._deadline = None
        if self.transport.is_closing() or what is None:
            return
        if what == "body" and self.flow.read_paused:  # we stopped reading, not the client
            self._watch("body", self.body_timeout)
            return
        if what == "headers" and not self._still_waiting_for_headers():
            return
        log.info("http.slow_client_closed", waiting_for=what, client=self.client[0] if self.client else None)
        self._waiting_for = None
        self.transport.close()


class _GuardedH11Protocol(_Deadline, H11Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._watch("headers", self.header_timeout)

    def _still_waiting_for_headers(self) -> bool:
        return self.conn.their_state is h11.IDLE

    def _check(self) -> None:
        """Arm, move or stop the timer after h11 has seen more bytes or a response ended."""
        if self.transport.is_closing():
            self._stop()
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            if self.conn.trailing_data[0]:  # a request head has begun: it has header_timeout in all
                if self._waiting_for != "headers":
                    self._watch("headers", self.header_timeout)
            elif self._waiting_for == "body":
                self._stop()  # between requests uvicorn's keep-alive timeout applies
        elif state is h11.SEND_BODY:
            self._watch("body", self.body_timeout)  # every chunk restarts the pause
        else:  # the request is complete (or the connection is ending): the app's turn
            self._stop()


class _GuardedHttpToolsProtocol(_Deadline, HttpToolsProtocol):
    """httptools parses a request as bytes arrive and calls back at each boundary; `_reading`
    follows those calls: "headers" from the connection's start or a request's first byte,
    "body" from the end of the headers, None once the request is complete."""

    _reading: _Waiting | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._reading = "headers"
        self._watch("headers", self.header_timeout)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading = "headers"

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._reading = "body"

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading = None

    def _busy(self) -> bool:
        """A response is still being produced for an earlier request on this connection."""
        cycle = self.cycle
        return cycle is not None and not cycle.response_complete

    def _still_waiting_for_headers(self) -> bool:
        return self._reading == "headers" and not self._busy()

    def _check(self) -> None:
        """Arm, move or stop the timer after the parser has seen more bytes or a response ended."""
        if self.transport.is_closing():
            self._stop()
            return
        reading = self._reading
        if reading == "headers":
            # A pipelined head waits for the response before it (as h11 leaves it unparsed).
            if self._busy():
                self._stop()
            elif self._waiting_for != "headers":
                self._watch("headers", self.header_timeout)
        elif reading == "body":
            self._watch("body", self.body_timeout)  # every chunk restarts the pause
        elif self._waiting_for is not None:
            self._stop()  # the request is complete: the app's turn, then keep-alive's


def guarded_protocol(parser: HttpParser, *, header_timeout: float, body_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's `parser` protocol with these read timeouts (pass it as uvicorn's `http`)."""
    base: type[Any] = _GuardedHttpToolsProtocol if parser == "httptools" else _GuardedH11Protocol
    return type(f"Guarded{base.__name__.removeprefix('_Guarded')}", (base,), {"header_timeout": header_timeout, "body_timeout": body_timeout})


class QuietServer(uvicorn.Server):
    """uvicorn's server, with its main loop woken once every `tick` seconds (default 1)
    instead of every 0.1 s, and at once when `should_exit` is set (by uvicorn's signal
    handler, or by a caller on any thread).

    uvicorn's loop sleeps 0.1 s between looks at `should_exit`: ten wake-ups a second in an
    idle process. Each does next to nothing, but on the 2-core VMs this runs on a wake-up
    of an idle vCPU is dear: an asyncio loop doing nothing but sleep 0.1 s measured 19 ms
    of CPU a second there (bench/README.md, "Fourth pass"). Once a second is the `date`
    header's resolution, which `on_tick` refreshes when its counter is a multiple of ten."""

    def __init__(self, config: uvicorn.Config, *, tick: float = 1.0) -> None:
        self._tick = tick
        self._exit_requested = False
        self._wake: Callable[[], object] | None = None
        super().__init__(config)

    @property  # uvicorn's is a plain attribute; this one also wakes the main loop
    def should_exit(self) -> bool:
        return self._exit_requested

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._exit_requested = value
        wake = self._wake
        if value and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: it has stopped anyway
                wake()

    async def main_loop(self) -> None:
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()
        self._wake = lambda: loop.call_soon_threadsafe(woken.set)
        try:
            counter = 0
            should_exit = await self.on_tick(counter)
            while not should_exit:
                counter = (counter + 10) % 864_000  # every tick is one of on_tick's once-a-second ones
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), timeout=self._tick)
                should_exit = await self.on_tick(counter)
        finally:
            self._wake = None
