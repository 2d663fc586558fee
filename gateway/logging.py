"""structlog configuration, secret redaction, the request-id middleware and job context.

    configure_logging()                          # once, from the CLI, before anything logs
    app = install_request_logging(Litestar(...))  # one `http.request` line per request, 404s included
    create_task(work(), context=job_log_context(job.id))  # background work on one job: its lines name it

The request middleware is a plain ASGI app (`RequestLoggingMiddleware(app)`), so it works
in `Litestar(middleware=[request_logging_middleware])` too; there it only sees requests that
matched a route, because Litestar answers 404/405 before route middleware runs. Wrapping the
app's `asgi_handler` (what `install_request_logging` does, as Litestar's own OpenTelemetry
plugin does) sees every HTTP request, after Litestar's exception handler has turned errors
into responses.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import functools
import logging
import re
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

import msgspec
import structlog
from structlog.contextvars import bind_contextvars, get_contextvars, reset_contextvars
from structlog.typing import EventDict, Processor, WrappedLogger

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from gateway.metrics import HttpMetrics

__all__ = [
    "REQUEST_ID_HEADER",
    "RequestLoggingMiddleware",
    "configure_logging",
    "current_request_id",
    "install_request_logging",
    "job_log_context",
    "new_request_id",
    "redact_event",
    "redact_text",
    "request_logging_middleware",
]

REQUEST_ID_HEADER = "X-Request-ID"
MASK = "***"

log = structlog.get_logger("gateway.http")

# ---------------------------------------------------------------------------
# Redaction
# ---------------------------------------------------------------------------

# A key is sensitive when one of its words (split on _ - . space and camelCase) is one of these,
# when it is exactly "key", or when it ends in "api key" / "secret key" / "private key" ...
_SENSITIVE_WORDS = frozenset({"authorization", "secret", "token", "password", "passwd", "cookie", "apikey", "credential", "credentials"})
_KEY_QUALIFIERS = frozenset({"api", "secret", "private", "access", "signing", "session"})
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")

# Secrets that can hide inside any string: bearer tokens, Standard Webhooks secrets,
# OpenAI-style keys, URL passwords and credential-like query parameters.
_TEXT_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.I), rf"\1 {MASK}"),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]+"), f"whsec_{MASK}"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{6,}"), f"sk-{MASK}"),
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@", re.I), rf"\1{MASK}@"),
    (
        re.compile(r"([?&](?:api[_-]?key|key|token|access_token|secret|password|signature|sig)=)[^&\s#\"']+", re.I),
        rf"\1{MASK}",
    ),
)


# Every pattern above needs one of these: "=", "://", "sk-", "whsec_", or b/B followed by
# "earer" / "asic" in any case (only b and B fold to b, even under re.I). A string with none
# is returned as it is, after four substring tests and one scan instead of five substitutions
# (most values logged are paths, ids, words and numbers).
_BEARER_OR_BASIC = re.compile(r"[Bb](?i:earer|asic)")


def _may_hold_secret(text: str) -> bool:
    return "=" in text or "://" in text or "sk-" in text or "whsec_" in text or _BEARER_OR_BASIC.search(text) is not None


@functools.lru_cache(maxsize=4096)  # keys come from a small set: field names, header names
def _is_sensitive_key(key: str) -> bool:
    words = [w.lower() for w in _WORD.findall(key)]
    if not words:
        return False
    if any(w in _SENSITIVE_WORDS for w in words):
        return True
    if words == ["key"]:
        return True
    return words[-1] == "key" and len(words) >= 2 and words[-2] in _KEY_QUALIFIERS


def redact_text(text: str) -> str:
    """`text` with bearer tokens, `whsec_…`, `sk-…`, URL passwords and token query values masked."""
    if not _may_hold_secret(text):
        return text
    for pattern, replacement in _TEXT_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


_PLAIN = (int, float, bool, type(None))
_META_KEYS = frozenset({"_record", "_from_structlog"})  # structlog.stdlib.ProcessorFormatter's, removed before rendering


def _redact(value: Any, depth: int = 0, json: bool = False) -> Any:
    """`value` with secrets masked. With `json`, also made of what JSON holds only (dicts,
    lists, str, int, float, bool, None): any other object becomes its redacted repr, as
    structlog's JSONRenderer showed it, so an encoder never walks into an object's fields
    (a config Struct's repr masks its secrets; its fields do not)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, _PLAIN):
        return value
    if depth > 8:
        return redact_text(repr(value)) if json else value
    if isinstance(value, Mapping):
        return {
            (k if isinstance(k, str) or not json else str(k)): (
                MASK if isinstance(k, str) and v is not None and _is_sensitive_key(k) else _redact(v, depth + 1, json)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        if isinstance(value, tuple) and len(value) == 2 and isinstance(name := value[0], str | bytes):
            # a (name, value) header pair, as httpx and ASGI give them
            text = name.decode("latin-1") if isinstance(name, bytes) else name
            if _is_sensitive_key(text):
                return (name, MASK)
        items = [_redact(v, depth + 1, json) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if json and not isinstance(value, enum.Enum):  # an enum is written as its value, as before
        return redact_text(repr(value))
    return value


def redact_event(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask values of sensitive keys (at any depth) and secrets inside strings.

    `None` stays `None` so "not set" is still visible. Headers may come as a mapping or as
    `(name, value)` tuples; a tuple whose name is sensitive has its value masked.
    """
    return _redact(event_dict)


def _redact_for_json(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """`redact_event`, and everything left JSON-plain for `_JsonLines` (see `_redact`)."""
    out: EventDict = {}
    for k, v in event_dict.items():
        if k in _META_KEYS:
            out[k] = v
        elif isinstance(k, str) and v is not None and _is_sensitive_key(k):
            out[k] = MASK
        else:
            out[k if isinstance(k, str) else str(k)] = _redact(v, 1, json=True)
    return out


class _JsonLines:
    """The JSON renderer: one msgspec encoder, reused (~10x cheaper than `json.dumps` here).
    It sees only what `_redact_for_json` left; anything else falls back to structlog's."""

    def __init__(self) -> None:
        self._encode = msgspec.json.Encoder().encode
        self._fallback = structlog.processors.JSONRenderer()

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> str:
        try:
            return self._encode(event_dict).decode()
        except (TypeError, ValueError, OverflowError):  # not expected after _redact_for_json; a line is never lost
            return str(self._fallback(logger, method_name, event_dict))


class _UtcTimestamp:
    """`timestamp`: ISO 8601 in UTC with microseconds and a Z, as TimeStamper(fmt="iso",
    utc=True) writes it, formatting the date and time once a second instead of per line."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        event_dict["timestamp"] = f"{self._prefix}.{int((now - second) * 1_000_000):06d}Z"
        return event_dict


class _ScrubRendered:
    """Wraps the final renderer: a last pass over the rendered line catches secrets inside
    reprs of arbitrary objects that the key-based pass could not look into."""

    def __init__(self, renderer: Processor) -> None:
        self.renderer = renderer

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> Any:
        rendered = self.renderer(logger, method_name, event_dict)
        return redact_text(rendered) if isinstance(rendered, str) else rendered


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------


def configure_logging(*, json: bool | None = None, level: str = "info", stream: TextIO | None = None, cache_loggers: bool = False) -> None:
    """Configure structlog, and route the standard library's logging (uvicorn, httpx, litestar)
    through the same processors. Call once, from the CLI, before the app starts.

    `json=None` picks JSON lines when `stream` (default stderr) is not a terminal and a
    readable console format when it is. structlog events are written straight to `stream`,
    so a framework that later reconfigures stdlib logging (Litestar's default
    `logging_config` does) can't swallow them; pass `logging_config=None` to Litestar and
    `log_config=None, access_log=False` to uvicorn so their records keep this format too.

    A line below `level` costs a method call and nothing else. With `cache_loggers` (what
    the CLI passes) each logger is bound once, on its first use, instead of on every call;
    without it (the default, for tests) loggers are not cached, so a test may reconfigure
    (`structlog.testing.capture_logs()`) after this ran.
    """
    stream = sys.stderr if stream is None else stream
    tty = hasattr(stream, "isatty") and stream.isatty()
    if json is None:
        json = not tty
    numeric_level = logging.getLevelNamesMapping().get(level.upper())
    if numeric_level is None:
        raise ValueError(f"unknown log level {level!r}")

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _UtcTimestamp(),
        structlog.processors.StackInfoRenderer(),
    ]
    if json:
        # Exceptions become text before redaction so their messages are scrubbed too.
        shared += [structlog.processors.format_exc_info, _redact_for_json]
        renderer: Processor = _ScrubRendered(_JsonLines())
    else:
        shared += [redact_event]
        renderer = _ScrubRendered(structlog.dev.ConsoleRenderer(colors=tty))

    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        context_class=dict,
        cache_logger_on_first_use=cache_loggers,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_vidgate", False):
            root.removeHandler(old)
    handler._vidgate = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(numeric_level)
    # httpx logs every request URL at INFO; our own upstream.* events say what matters.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(numeric_level, logging.WARNING))
    # uvicorn's own handlers (if an earlier uvicorn.run installed them) would bypass ours.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # uvicorn's access line repeats http.request, query string (and any secret in it) included.
    logging.getLogger("uvicorn.access").disabled = True


# ---------------------------------------------------------------------------
# Context
# ---------------------------------------------------------------------------


def job_log_context(job_id: str, *, provider: str | None = None) -> contextvars.Context:
    """A fresh context whose log lines carry `job_id` (and `provider`, when given) and
    nothing else bound, for a task created with `context=` that works on one job. Nothing
    the creator bound (a request id) follows it, and nothing has to be restored: the
    context goes with the task."""
    context = contextvars.Context()
    if provider is None:
        context.run(bind_contextvars, job_id=job_id)
    else:
        context.run(bind_contextvars, job_id=job_id, provider=provider)
    return context


def current_request_id() -> str | None:
    """The id of the request being handled in this context, if any."""
    value = get_contextvars().get("request_id")
    return value if isinstance(value, str) else None


# ---------------------------------------------------------------------------
# Request middleware
# ---------------------------------------------------------------------------

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_HEADER = REQUEST_ID_HEADER.lower().encode()


def new_request_id() -> str:
    return "req_" + secrets.token_hex(8)


class RequestLoggingMiddleware:
    """Pure ASGI middleware: request id in, request id out, one `http.request` line, and
    the request told to `metrics` (one layer for both: each layer costs every request a
    call and a wrapped `send`, ~3 % of a status GET).

    - takes `X-Request-ID` from the request when it is 1-128 of `[A-Za-z0-9._-]`, otherwise
      makes one with `id_factory` (`req_` + 16 hex);
    - binds `request_id` into structlog's contextvars for the request (restored afterwards)
      and stores it in `scope["state"]["request_id"]`;
    - sets `X-Request-ID` on the response (replacing one the app set);
    - logs `http.request` with method, path (never the query string), route, status,
      duration_ms and request_id (plus `error` when the app raised or was cancelled): at
      error level for 5xx or an exception, info otherwise.
      A route whose handler has `opt={"log_path_template": True}` logs its template
      (`/callbacks/{token}`) instead of the path, for paths that carry secrets.

    Non-HTTP scopes pass through untouched.
    """

    def __init__(self, app: ASGIApp, *, id_factory: Callable[[], str] = new_request_id, metrics: HttpMetrics | None = None) -> None:
        self.app = app
        self.id_factory = id_factory
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self._incoming_id(scope) or self.id_factory()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status: int | None = None
        headers_at: float | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status, headers_at
            if message["type"] == "http.response.start":
                status, headers_at = message["status"], time.perf_counter()
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != _HEADER]
                headers.append((_HEADER, request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        start = time.perf_counter()
        error: str | None = None
        tokens = bind_contextvars(request_id=request_id)  # reset on the way out, whatever was bound before
        try:
            await self.app(scope, receive, send_with_id)
        except asyncio.CancelledError:
            error = "cancelled"  # the client went away (e.g. mid event stream) or shutdown
            raise
        except BaseException:
            error = "unhandled exception"
            raise
        finally:
            ended = time.perf_counter()
            self._log(scope, status, error, ended - start, request_id)
            reset_contextvars(**tokens)
            if self.metrics is not None:
                answered = status if status is not None else (499 if error == "cancelled" else 500)
                self.metrics.http_request(str(scope.get("method", "GET")), scope.get("path_template") or "unmatched", answered, (headers_at or ended) - start)

    @staticmethod
    def _incoming_id(scope: Scope) -> str | None:
        for key, value in scope.get("headers", ()):
            if key.lower() == _HEADER:
                candidate = value.decode("latin-1")
                return candidate if _REQUEST_ID.fullmatch(candidate) else None
        return None

    @staticmethod
    def _log(scope: Scope, status: int | None, error: str | None, seconds: float, request_id: str) -> None:
        route = scope.get("path_template")
        handler = scope.get("route_handler")
        opt = getattr(handler, "opt", None) or {}
        path = route if route and opt.get("log_path_template") else scope.get("path", "")
        fields: dict[str, Any] = {
            "method": scope.get("method"),
            "path": path,
            # 499: nginx's "client closed request", when nothing was sent before cancellation
            "status": status if status is not None else (499 if error == "cancelled" else 500),
            "duration_ms": round(seconds * 1000, 3),
            "request_id": request_id,
        }
        if route:
            fields["route"] = route
        if error is not None:
            fields["error"] = error
        if error == "unhandled exception" or fields["status"] >= 500:
            log.error("http.request", **fields)
        else:
            log.info("http.request", **fields)


def request_logging_middleware(app: ASGIApp) -> ASGIApp:
    """Middleware factory for `Litestar(middleware=[request_logging_middleware])` or any ASGI app."""
    return RequestLoggingMiddleware(app)


def install_request_logging(app: Litestar, *, id_factory: Callable[[], str] = new_request_id, metrics: HttpMetrics | None = None) -> Litestar:
    """Wrap a Litestar app's top handler so every HTTP request (404 and 405 included) is
    logged, and told to `metrics`."""
    app.asgi_handler = RequestLoggingMiddleware(app.asgi_handler, id_factory=id_factory, metrics=metrics)
    return app
