"""Signing in with a vidgate key, and out again.

The key arrives once, in a POSTed form body (never a URL), is checked like a bearer key,
and is exchanged for the session cookie (`gateway.console.session`): HttpOnly, SameSite=
Strict, scoped to /console. The page never holds it afterwards, not even on a failed try.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template
from msgspec import Struct

from gateway.auth import digest
from gateway.console import views
from gateway.console.session import COOKIE, PATH, SessionSigner
from gateway.errors import Unauthenticated
from gateway.service import VideoService

NO_STORE = {"Cache-Control": "no-store"}


class SignInRequired(Exception):
    """No valid session: the console answers with the sign-in page."""


class SignInForm(Struct, kw_only=True):
    key: str = ""


class SignInController(Controller):
    path = "/"

    @get("/sign-in", name="console-sign-in")
    async def form(self) -> Template:
        return Template("signin.html", context={"views": views, "error": None}, headers=NO_STORE)

    @post("/sign-in", status_code=303)
    async def sign_in(
        self,
        data: Annotated[SignInForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
        sessions: NamedDependency[SessionSigner],
        service: NamedDependency[VideoService],
        secure_cookies: NamedDependency[bool],
    ) -> Response[Any]:
        key = data.key.strip()
        try:
            caller = service.authenticate({"authorization": f"Bearer {key}"})
        except Unauthenticated:
            # The page comes back empty: the key that was typed is not echoed into it.
            return Template("signin.html", context={"views": views, "error": "That key is not valid here."}, status_code=401, headers=NO_STORE)
        cookie = Cookie(
            key=COOKIE,
            value=sessions.issue(caller.key_name, digest(key), service.clock()),
            path=PATH,
            max_age=int(sessions.lifetime),
            httponly=True,
            samesite="strict",
            secure=secure_cookies,
        )
        return Redirect(f"{PATH}/compare", status_code=303, cookies=[cookie], headers=NO_STORE)

    @post("/sign-out", status_code=303)
    async def sign_out(self, request: Request[Any, Any, Any], secure_cookies: NamedDependency[bool]) -> Response[Any]:
        gone = Cookie(key=COOKIE, value="", path=PATH, max_age=0, httponly=True, samesite="strict", secure=secure_cookies)
        return Redirect(f"{PATH}/sign-in", status_code=303, cookies=[gone], headers=NO_STORE)
