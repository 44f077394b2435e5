"""The login form: ``GET /login``, ``POST /login`` and ``POST /logout`` (server-rendered).

The form carries a CSRF token that must match a short-lived cookie set with the
page (the double-submit cookie pattern of the OWASP CSRF cheat sheet: there is
no session yet to hold it); ``POST /logout`` carries the session's own token.
A successful sign-in sets the session cookie ``HttpOnly``, ``SameSite=Strict``,
``Path=/``, and ``Secure`` when the request came over HTTPS (the scheme uvicorn
reports, which honours ``X-Forwarded-Proto`` only from ``FORWARDED_ALLOW_IPS``).
Failed sign-ins are logged with the user name and address, never the password.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from taperoom.errors import RateLimited, TooLarge
from taperoom.web.auth.middleware import (
    CSRF_HEADER,
    client_address,
    current_csrf_token,
    current_user,
    same_secret,
)
from taperoom.web.auth.policy import Access
from taperoom.web.auth.store import AuthStore
from taperoom.web.auth.throttle import LoginThrottle
from taperoom.web.errors import error_headers

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: Largest login form body read, in bytes.
MAX_FORM_BYTES = 16 * 1024


async def read_form(request: Request) -> dict[str, str]:
    """The fields of a URL-encoded sign-in form (the first value of each).

    Raises
    ------
    TooLarge
        The body is longer than :data:`MAX_FORM_BYTES` (413).
    """
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise TooLarge(f"a login form has at most {MAX_FORM_BYTES} bytes")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in fields.items()}
#: Lifetime of the login form's CSRF cookie, in seconds.
FORM_COOKIE_SECONDS = 3600


@dataclass(frozen=True)
class LoginPage:
    """How one app's login page looks and where it leads.

    Attributes
    ----------
    app : str
        The app's name; the cookies are ``taperoom_<app>_session`` and
        ``taperoom_<app>_login`` (apps on one host share cookies across ports,
        so each needs its own names).
    title : str
        Heading and window title (``Taperoom recorder``).
    home : str
        Where a sign-in without ``next`` leads.
    stylesheet : str
        URL of the app's stylesheet; empty for the page's own minimal style.
    lifetime : timedelta
        How long a session lasts (``SESSION_DAYS``).
    """

    app: str
    title: str
    home: str
    stylesheet: str = ""
    lifetime: timedelta = timedelta(days=14)

    @property
    def session_cookie(self) -> str:
        """Name of the session cookie."""
        return f"taperoom_{self.app}_session"

    @property
    def form_cookie(self) -> str:
        """Name of the login form's CSRF cookie."""
        return f"taperoom_{self.app}_login"


def safe_next(value: str | None, default: str) -> str:
    """`value` when it is a path on this server (``/...``, not ``//host``), else `default`."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value \
            or any(ord(c) < 32 for c in value):
        return default
    return value


def build_login_router(page: LoginPage, access: Access, store: AuthStore,
                       throttle: LoginThrottle) -> APIRouter:
    """The login routes of one app.

    Parameters
    ----------
    page : LoginPage
        Title, cookies and destinations.
    access : Access
        Without required credentials, ``/login`` just leads home.
    store : AuthStore
        Users and sessions.
    throttle : LoginThrottle
        Failed sign-ins per address and per user name.
    """
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)),
                      autoescape=select_autoescape(["html"]))
    template = env.get_template("login.html")
    r = APIRouter(include_in_schema=False)

    def secure(request: Request) -> bool:
        return request.url.scheme in ("https", "wss")

    def render(request: Request, *, status: int = 200, error: str = "", username: str = "",
               next_path: str = "", headers: dict[str, str] | None = None) -> HTMLResponse:
        form_token = secrets.token_urlsafe(32)
        html = template.render(title=page.title, stylesheet=page.stylesheet, home=page.home,
                               user=current_user(), csrf_token=current_csrf_token(),
                               form_token=form_token, error=error, username=username,
                               next=next_path, open=not access.required)
        response = HTMLResponse(html, status_code=status, headers=headers)
        response.headers["Cache-Control"] = "no-store"
        response.set_cookie(page.form_cookie, form_token, max_age=FORM_COOKIE_SECONDS,
                            path="/", httponly=True, samesite="strict", secure=secure(request))
        return response

    @r.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request, next: str = "") -> Response:
        target = safe_next(next, page.home)
        if not access.required and target != "/login":
            return RedirectResponse(target, status_code=303)
        return render(request, next_path=safe_next(next, ""))

    @r.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        if not access.required:
            return RedirectResponse("/login", status_code=303)
        form = await read_form(request)
        name = form.get("username", "")
        password = form.get("password", "")
        next_path = safe_next(form.get("next"), "")
        if not same_secret(form.get("csrf_token", ""),
                           request.cookies.get(page.form_cookie, "")):
            return render(request, status=403, username=name, next_path=next_path,
                          error="The form had expired; please sign in again.")
        address = client_address(request.scope)
        try:
            throttle.check(address=address, user=name.lower())
        except RateLimited as exc:
            log.warning("sign-in refused for user %r from %s: %s", name, address, exc)
            return render(request, status=429, username=name, next_path=next_path,
                          error=str(exc), headers=error_headers(exc))
        user_id = await run_in_threadpool(store.authenticate, name, password)
        if user_id is None:
            throttle.failed(address=address, user=name.lower())
            log.warning("failed sign-in for user %r from %s", name, address)
            return render(request, status=401, username=name, next_path=next_path,
                          error="Wrong user name or password.")
        token, _ = await run_in_threadpool(store.open_session, user_id, page.lifetime)
        log.info("user %r signed in from %s", name, address)
        response = RedirectResponse(next_path or page.home, status_code=303)
        response.set_cookie(page.session_cookie, token,
                            max_age=int(page.lifetime.total_seconds()), path="/",
                            httponly=True, samesite="strict", secure=secure(request))
        response.delete_cookie(page.form_cookie, path="/", httponly=True, samesite="strict",
                               secure=secure(request))
        return response

    @r.post("/logout")
    async def logout(request: Request) -> Response:
        token = request.cookies.get(page.session_cookie, "")
        expected = current_csrf_token()
        if expected:
            sent = request.headers.get(CSRF_HEADER) or (await read_form(request)).get(
                "csrf_token", "")
            if not same_secret(sent, expected):
                return render(request, status=403,
                              error="The page had expired; sign out again.")
            await run_in_threadpool(store.close_session, token)
            log.info("user %r signed out", current_user())
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(page.session_cookie, path="/", httponly=True, samesite="strict",
                               secure=secure(request))
        return response

    return r
