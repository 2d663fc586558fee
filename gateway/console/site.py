"""The console's wiring: its router (session auth, CSRF, security headers, HTML errors),
its static files and its templates. `gateway.app` mounts what `build` returns.

Every console page reads the caller from the session cookie (`caller` below overrides the
API's bearer dependency for this router only), so a page shows exactly what its key sees
through the API, through the same `VideoService` methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from litestar import Request, Response, Router
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import CacheControlHeader, ResponseHeader
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.plugins.htmx import HTMXRequest
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from gateway.auth import Caller
from gateway.console import views
from gateway.console.compare import CompareController
from gateway.console.pages import PagesController
from gateway.console.session import COOKIE, CSRF_COOKIE, PATH, SessionSigner
from gateway.console.signin import SignInController, SignInRequired
from gateway.errors import GatewayError
from gateway.service import VideoService
from gateway.settings import Settings

log = structlog.get_logger("vidgate.console")

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

# Scripts and styles come only from the package's own files: no inline script, no CDN.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
    "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = [
    ResponseHeader(name="Content-Security-Policy", value=CSP),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="no-referrer"),
    ResponseHeader(name="X-Frame-Options", value="DENY"),
]


@dataclass(frozen=True)
class Console:
    router: Router
    static: Router
    templates: TemplateConfig[JinjaTemplateEngine]


def build(settings: Settings) -> Console:
    secure = settings.server.base_url.startswith("https://")
    sessions = SessionSigner(settings.console.session_secret, lifetime=settings.console.session_hours * 3600)
    csrf = CSRFConfig(
        secret=sessions.csrf_secret,
        cookie_name=CSRF_COOKIE,
        cookie_path=PATH,
        cookie_httponly=True,  # pages carry the token themselves; scripts never read the cookie
        cookie_samesite="strict",
        cookie_secure=secure,
        header_name="x-csrftoken",
    )
    router = Router(
        path=PATH,
        route_handlers=[SignInController, CompareController, PagesController],
        dependencies={
            "sessions": Provide(lambda: sessions, use_cache=True, sync_to_thread=False),
            "secure_cookies": Provide(lambda: secure, use_cache=True, sync_to_thread=False),
            "caller": Provide(_session_caller, sync_to_thread=False),
        },
        middleware=[DefineMiddleware(CSRFMiddleware, config=csrf)],
        request_class=HTMXRequest,
        response_headers=SECURITY_HEADERS,
        exception_handlers={SignInRequired: _to_sign_in, GatewayError: _error_page, HTTPException: _error_page, Exception: _crash_page},
        include_in_schema=False,
    )
    static = create_static_files_router(
        path=f"{PATH}/static",
        directories=[STATIC],
        name="console-static",
        cache_control=CacheControlHeader(max_age=3600),
        include_in_schema=False,
    )
    return Console(router=router, static=static, templates=TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine))


def _session_caller(request: Request[Any, Any, Any], sessions: NamedDependency[SessionSigner], service: NamedDependency[VideoService]) -> Caller:
    caller = sessions.caller(request.cookies.get(COOKIE), service.keys, service.clock())
    if caller is None:
        raise SignInRequired()
    return caller


def _to_sign_in(request: Request[Any, Any, Any], exc: SignInRequired) -> Response[Any]:
    target = f"{PATH}/sign-in"
    if request.headers.get("hx-request"):
        return Response(content="", status_code=204, headers={"HX-Redirect": target})
    return Redirect(target, status_code=303)


def _error_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, GatewayError):
        status, message, headers = exc.status, exc.message, exc.headers
    else:
        assert isinstance(exc, HTTPException)
        status, message, headers = exc.status_code, str(exc.detail), exc.headers or {}
    if status == 403 and "CSRF" in message:
        message = "This form has expired or did not come from this console (CSRF check failed). Reload the page and try again."
    return Template("error.html", context={"status": status, "message": message, "views": views}, status_code=status, headers=headers)


def _crash_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("console.unhandled_error", path=request.url.path)
    return Template("error.html", context={"status": 500, "message": "Something went wrong on our side.", "views": views}, status_code=500)
