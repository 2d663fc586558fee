from __future__ import annotations

import asyncio
import datetime
import io
import json
import logging
import re
from collections.abc import Iterator

import msgspec
import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar import Litestar, get
from litestar.params import FromPath
from litestar.testing import AsyncTestClient
from structlog.contextvars import bind_contextvars, clear_contextvars, get_contextvars
from structlog.testing import capture_logs

from gateway.logging import (
    _TEXT_PATTERNS,
    configure_logging,
    current_request_id,
    install_request_logging,
    job_log_context,
    redact_event,
    redact_text,
    request_logging_middleware,
)
from providers.base import JobStatus

# --- redaction --------------------------------------------------------------


def redacted(**event: object) -> dict:
    return redact_event(None, "info", dict(event))


def test_redaction_masks_sensitive_keys() -> None:
    out = redacted(
        event="upstream.request",
        authorization="Bearer abc",
        api_key="k-1",
        key="k-2",
        secret="s",
        token="t",
        password="p",
        webhook_secret="whsec_x",
        headers={"X-Api-Key": "k-3", "Content-Type": "application/json"},
    )
    for name in ("authorization", "api_key", "key", "secret", "token", "password", "webhook_secret"):
        assert out[name] == "***", name
    assert out["headers"] == {"X-Api-Key": "***", "Content-Type": "application/json"}
    assert out["event"] == "upstream.request"


def test_redaction_leaves_harmless_keys_and_none() -> None:
    out = redacted(event="x", max_tokens=5, idempotency_key="abc", model="seedance-2.0", api_key=None)
    assert out == {"event": "x", "max_tokens": 5, "idempotency_key": "abc", "model": "seedance-2.0", "api_key": None}


def test_redaction_masks_secrets_inside_strings() -> None:
    out = redacted(
        event="calling with Bearer abc",
        detail="sig whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw and sk-proj-abcdef123456",
        url="https://user:hunter2@api.example.com/v1/x?api_key=zzz&model=m",
        nested={"list": ["Bearer abc"], "pair": ("authorization", "Basic dXNlcg==")},
    )
    assert out["event"] == "calling with Bearer ***"
    assert out["detail"] == "sig whsec_*** and sk-***"
    assert out["url"] == "https://user:***@api.example.com/v1/x?api_key=***&model=m"
    assert out["nested"] == {"list": ["Bearer ***"], "pair": ("authorization", "***")}


def test_redact_text_keeps_ordinary_words() -> None:
    assert redact_text("desk-top bearer-less tokens sk-1") == "desk-top bearer-less tokens sk-1"


_PIECES = st.sampled_from(
    [
        "Bearer ",
        "bearer\t",
        "BASIC ",
        "Baſic ",
        "basıc ",
        "whsec_",
        "sk-",
        "sk-proj-abcdef12",
        "://",
        "https://u:p@h/",
        "?",
        "&",
        "=",
        "key",
        "token",
        "api_key",
        "sig",
        "?key=",
        "&token=x",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.text(max_size=8)), max_size=10).map("".join))
def test_the_quick_check_never_skips_a_string_a_pattern_would_change(text: str) -> None:
    """redact_text returns a string untouched when none of the patterns can match: it must
    give exactly what applying every pattern gives."""
    full = text
    for pattern, replacement in _TEXT_PATTERNS:
        full = pattern.sub(replacement, full)
    assert redact_text(text) == full


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state; put all of it back."""
    names = ["", "httpx", "httpcore", "uvicorn", "uvicorn.error", "uvicorn.access"]
    saved = [(lg, list(lg.handlers), lg.level, lg.propagate, lg.disabled) for lg in map(logging.getLogger, names)]
    yield
    for lg, handlers, level, propagate, disabled in saved:
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate, lg.disabled = propagate, disabled
    structlog.reset_defaults()


def test_configured_json_output_is_redacted_and_has_context(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging(json=True, level="debug", stream=stream)
    with structlog.contextvars.bound_contextvars(job_id="video_1", provider="useapi"):
        structlog.get_logger("t").info("upstream.request", authorization="Bearer abc", note="whsec_abcdef")
        logging.getLogger("vidgate.stdlib").warning("retrying with Bearer xyz")
    try:
        raise RuntimeError("upstream said sk-abcdefghijkl")
    except RuntimeError:
        structlog.get_logger("t").exception("job.crashed")

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 3
    first, second, third = lines
    assert first["event"] == "upstream.request"
    assert first["authorization"] == "***"
    assert first["note"] == "whsec_***"
    assert first["level"] == "info"
    assert first["job_id"] == "video_1" and first["provider"] == "useapi"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", first["timestamp"])
    assert second["event"] == "retrying with Bearer ***"  # stdlib logging goes through the same chain
    assert second["job_id"] == "video_1"
    assert "sk-abcdefghijkl" not in third["exception"]
    assert "job_id" not in third


class _Settingsish(msgspec.Struct):
    name: str
    secret: str

    def __repr__(self) -> str:  # as gateway.settings' structs mask their secrets
        return f"_Settingsish(name={self.name!r}, secret='***')"


def test_json_lines_show_objects_as_their_redacted_repr_never_their_fields(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    structlog.get_logger().info(
        "objects",
        provider=_Settingsish(name="p", secret="s3cr3t-value"),
        body=b"Authorization: Bearer abcdef",
        nested={"deep": [{"x": _Settingsish(name="q", secret="other-s3cr3t")}]},
        when=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
        status=JobStatus.COMPLETED,
        count=3,
    )
    text = stream.getvalue()
    assert "s3cr3t" not in text and "abcdef" not in text, text
    [line] = [json.loads(t) for t in text.splitlines()]
    assert line["provider"] == "_Settingsish(name='p', secret='***')"
    assert line["body"] == "b'Authorization: Bearer ***'"
    assert line["nested"] == {"deep": [{"x": "_Settingsish(name='q', secret='***')"}]}
    assert line["when"].startswith("datetime.datetime(2026, 1, 1")  # a repr, as json.dumps' fallback gave
    assert line["status"] == "completed" and line["count"] == 3


def test_structlog_events_survive_a_framework_replacing_root_handlers(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    logging.getLogger().handlers[:] = [logging.NullHandler()]  # what dictConfig-based setups do
    structlog.get_logger().info("still.here", secret="s3cr3t")
    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["event"] == "still.here" and line["secret"] == "***"


def test_level_filters_and_console_renderer(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging(json=False, level="warning", stream=stream)
    log = structlog.get_logger("t")
    log.info("quiet")
    log.warning("loud", token="abc")
    text = stream.getvalue()
    assert "quiet" not in text
    assert "loud" in text and "token=***" in text and "abc" not in text
    with pytest.raises(ValueError):
        configure_logging(level="chatty")


# --- job context ------------------------------------------------------------


async def test_a_task_in_a_job_log_context_logs_its_job_and_nothing_its_creator_bound() -> None:
    clear_contextvars()
    bind_contextvars(request_id="req_1")
    try:

        async def work() -> dict[str, object]:
            bind_contextvars(status="queued")  # stays in the task's own context
            return get_contextvars()

        seen = await asyncio.get_running_loop().create_task(work(), context=job_log_context("video_9"))
        assert seen == {"job_id": "video_9", "status": "queued"}
        assert get_contextvars() == {"request_id": "req_1"}
    finally:
        clear_contextvars()


# --- request middleware -----------------------------------------------------


@get("/ping")
async def ping() -> dict[str, str | None]:
    return {"request_id": current_request_id()}


@get("/boom")
async def boom() -> None:
    raise RuntimeError("boom")


@get("/callbacks/{token:str}", opt={"log_path_template": True})
async def callback(token: FromPath[str]) -> None:
    return None


def make_app(*, outer: bool) -> Litestar:
    handlers = [ping, boom, callback]
    if outer:
        return install_request_logging(Litestar(handlers, logging_config=None))
    return Litestar(handlers, middleware=[request_logging_middleware], logging_config=None)


def http_events(logs: list[dict]) -> list[dict]:
    return [e for e in logs if e["event"] == "http.request"]


@pytest.mark.parametrize("outer", [False, True])
async def test_generates_request_id_and_logs_one_line(outer: bool) -> None:
    async with AsyncTestClient(make_app(outer=outer)) as client:
        with capture_logs() as logs:
            response = await client.get("/ping?api_key=secret123&x=1")
    request_id = response.headers["x-request-id"]
    assert re.fullmatch(r"req_[0-9a-f]{16}", request_id)
    assert response.json() == {"request_id": request_id}  # bound for the handler
    [line] = http_events(logs)
    assert line["method"] == "GET"
    assert line["path"] == "/ping"
    assert line["status"] == 200
    assert line["request_id"] == request_id
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["log_level"] == "info"
    assert "secret123" not in repr(logs)
    assert get_contextvars().get("request_id") is None  # nothing leaks past the request


@pytest.mark.parametrize("outer", [False, True])
async def test_honours_a_sane_incoming_request_id(outer: bool) -> None:
    async with AsyncTestClient(make_app(outer=outer)) as client:
        with capture_logs() as logs:
            response = await client.get("/ping", headers={"X-Request-ID": "client-abc_1.2"})
    assert response.headers["x-request-id"] == "client-abc_1.2"
    assert response.json() == {"request_id": "client-abc_1.2"}
    assert http_events(logs)[0]["request_id"] == "client-abc_1.2"


@pytest.mark.parametrize(
    "bad",
    ["a" * 129, "abc\r\nSet-Cookie: x=1", "has space", "semi;colon", "", "ünïcode"],
)
async def test_replaces_a_malicious_incoming_request_id(bad: str) -> None:
    app = make_app(outer=True)
    async with AsyncTestClient(app):  # runs the app's lifespan
        with capture_logs() as logs:
            # raw ASGI headers, so even values httpx refuses to send reach the middleware
            scope_headers = [(b"x-request-id", bad.encode("utf-8"))]
            response = await _raw_get(app, "/ping", scope_headers)
    assert response["status"] == 200
    request_id = response["headers"][b"x-request-id"].decode()
    assert request_id != bad
    assert re.fullmatch(r"req_[0-9a-f]{16}", request_id)
    assert http_events(logs)[0]["request_id"] == request_id


async def test_incoming_id_of_exactly_128_chars_is_kept() -> None:
    app = make_app(outer=True)
    async with AsyncTestClient(app) as client:
        response = await client.get("/ping", headers={"X-Request-ID": "a" * 128})
    assert response.headers["x-request-id"] == "a" * 128


async def test_outer_install_logs_not_found_and_errors() -> None:
    async with AsyncTestClient(make_app(outer=True)) as client:
        with capture_logs() as logs:
            missing = await client.get("/nope")
            failed = await client.get("/boom")
    assert missing.status_code == 404 and "x-request-id" in missing.headers
    assert failed.status_code == 500 and "x-request-id" in failed.headers
    lines = http_events(logs)
    assert [(e["path"], e["status"], e["log_level"]) for e in lines] == [("/nope", 404, "info"), ("/boom", 500, "error")]
    assert lines[1]["route"] == "/boom"


async def test_route_can_log_its_template_instead_of_a_secret_path() -> None:
    async with AsyncTestClient(make_app(outer=True)) as client:
        with capture_logs() as logs:
            await client.get("/callbacks/tok_very_secret")
    [line] = http_events(logs)
    assert line["path"] == "/callbacks/{token}"
    assert "tok_very_secret" not in repr(logs)


async def test_unhandled_exception_in_inner_app_is_logged_and_reraised() -> None:
    async def crashing_app(scope, receive, send):  # type: ignore[no-untyped-def]
        raise RuntimeError("crash")

    app = request_logging_middleware(crashing_app)
    with capture_logs() as logs, pytest.raises(RuntimeError):
        await app({"type": "http", "method": "POST", "path": "/v1/videos", "headers": []}, _receive, _discard)
    [line] = http_events(logs)
    assert line["status"] == 500 and line["log_level"] == "error" and line["error"] == "unhandled exception"


async def test_cancelled_request_is_logged_without_blaming_the_server() -> None:
    async def streaming_app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise asyncio.CancelledError

    app = request_logging_middleware(streaming_app)
    with capture_logs() as logs, pytest.raises(asyncio.CancelledError):
        await app({"type": "http", "method": "GET", "path": "/v1/videos/x/events", "headers": []}, _receive, _discard)
    [line] = http_events(logs)
    assert (line["status"], line["error"], line["log_level"]) == (200, "cancelled", "info")


async def test_non_http_scopes_pass_through() -> None:
    seen = []

    async def inner(scope, receive, send):  # type: ignore[no-untyped-def]
        seen.append(scope["type"])

    with capture_logs() as logs:
        await request_logging_middleware(inner)({"type": "lifespan"}, _receive, _discard)
    assert seen == ["lifespan"] and logs == []


# --- helpers ----------------------------------------------------------------


async def _receive() -> dict:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(message: dict) -> None:
    return None


async def _raw_get(app: Litestar, path: str, headers: list[tuple[bytes, bytes]]) -> dict:
    """Call the ASGI app directly so header values a real client would refuse still arrive."""
    response: dict = {"headers": {}}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            response["status"] = message["status"]
            response["headers"] = dict(message["headers"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    await app(scope, _receive, send)
    return response
