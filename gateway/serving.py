"""The HTTP/1.1 connection guard `vidgate serve` runs under uvicorn: slow clients are closed.

uvicorn closes a connection that idles after a response (`timeout_keep_alive`), but not one
that never finishes its request: a client that opens a connection and sends nothing, or a
header line a byte at a time, or a body that stalls, holds its socket for ever (300 such
connections were still open after 65 s). `guarded_h11` subclasses uvicorn's h11 protocol and
watches h11's own view of the request:

- from the moment a connection opens, or the first byte of its next request arrives, the
  request's headers must be complete within `header_timeout`;
- while a body is being received, no pause may last longer than `body_timeout` (time during
  which the server itself stopped reading, because the app has not taken what arrived, does
  not count);

and closes the connection when either is broken. The number of connections is capped by
uvicorn's `limit_concurrency` (requests past it get a 503), set from the same settings.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import structlog
from uvicorn.protocols.http.h11_impl import H11Protocol

log = structlog.get_logger("vidgate.server")


class _GuardedH11Protocol(H11Protocol):
    header_timeout: float = 10.0
    body_timeout: float = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_for: str | None = None  # "headers" | "body" while a timer runs

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._watch("headers", self.header_timeout)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._check()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._check()  # a pipelined request may already be half in

    # -- the timers ----------------------------------------------------------------------

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

    def _watch(self, what: str, seconds: float) -> None:
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
        if what == "headers" and self.conn.their_state is not h11.IDLE:
            return
        log.info("http.slow_client_closed", waiting_for=what, client=self.client[0] if self.client else None)
        self._waiting_for = None
        self.transport.close()


def guarded_h11(*, header_timeout: float, body_timeout: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with these read timeouts (pass it as uvicorn's `http`)."""
    return type("GuardedH11Protocol", (_GuardedH11Protocol,), {"header_timeout": header_timeout, "body_timeout": body_timeout})
