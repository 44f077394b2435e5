"""The curator's page: ``GET /admin``, ``POST /admin/login``, ``POST /admin/logout``.

Only with ``ADMIN_TOKEN``. ``GET /admin`` shows the sign-in form, or, to a
signed-in curator, the page (server-rendered with Jinja2; ``/static/admin.js``
calls ``/admin/api/...`` with the session's CSRF token). The sign-in form
carries a CSRF token matched against a short-lived cookie set with the form (the
double-submit cookie pattern of the OWASP CSRF cheat sheet: there is no session
yet to hold one); ``POST /admin/logout`` carries the session's own token.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from taperoom import __version__
from taperoom.ephemeral.admin.session import (
    COOKIE_PATH,
    CSRF_HEADER,
    FORM_COOKIE,
    SESSION_COOKIE,
    AdminSessions,
    same_secret,
)
from taperoom.ephemeral.api.admin import SessionsDep, client_address
from taperoom.errors import RateLimited
from taperoom.web.auth.routes import read_form
from taperoom.web.errors import error_headers

log = logging.getLogger(__name__)

router = APIRouter(tags=["pages"])

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
_ENV = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))
#: Largest sign-in or sign-out form read, in bytes.
#: Lifetime of the sign-in form's CSRF cookie, in seconds.
FORM_COOKIE_SECONDS = 3600
_NO_STORE = {"Cache-Control": "no-store"}


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _login_page(request: Request, *, status: int = 200, error: str = "",
                headers: dict[str, str] | None = None) -> HTMLResponse:
    form_token = secrets.token_urlsafe(32)
    html = _ENV.get_template("admin_login.html").render(
        version=__version__, form_token=form_token, error=error)
    response = HTMLResponse(html, status_code=status, headers={**_NO_STORE, **(headers or {})})
    response.set_cookie(FORM_COOKIE, form_token, max_age=FORM_COOKIE_SECONDS, path=COOKIE_PATH,
                        httponly=True, samesite="strict", secure=_secure(request))
    return response


@router.get("/admin", response_class=HTMLResponse,
            responses={200: {"description": "The curator's page, or its sign-in form"}})
def admin_page(request: Request, sessions: SessionsDep) -> HTMLResponse:
    """The curator's page (tracks, upload, wear models, reset, backup, restore), or the
    sign-in form to a visitor without a session."""
    session = sessions.read(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return _login_page(request)
    html = _ENV.get_template("admin.html").render(version=__version__, csrf_token=session.csrf)
    return HTMLResponse(html, headers=_NO_STORE)


@router.post("/admin/login", include_in_schema=False)
async def login(request: Request, sessions: SessionsDep) -> Response:
    """Sign in with ``ADMIN_TOKEN``: 303 to ``/admin`` with the session cookie."""
    form = await read_form(request)
    if not same_secret(form.get("csrf_token", ""), request.cookies.get(FORM_COOKIE, "")):
        return _login_page(request, status=403, error="The form had expired; please try again.")
    address = client_address(request)
    try:
        sessions.check_throttle(address)
    except RateLimited as exc:
        log.warning("curator sign-in refused from %s: %s", address, exc)
        return _login_page(request, status=429, error=str(exc), headers=error_headers(exc))
    if not sessions.token_matches(form.get("token")):
        sessions.failed(address)
        log.warning("failed curator sign-in from %s", address)
        return _login_page(request, status=401, error="Wrong token.")
    value, _ = sessions.open()
    log.info("curator signed in from %s", address)
    response = RedirectResponse("/admin", status_code=303, headers=_NO_STORE)
    response.set_cookie(SESSION_COOKIE, value, max_age=int(sessions.lifetime_seconds),
                        path=COOKIE_PATH, httponly=True, samesite="strict",
                        secure=_secure(request))
    response.delete_cookie(FORM_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict",
                           secure=_secure(request))
    return response


@router.post("/admin/logout", include_in_schema=False)
async def logout(request: Request, sessions: SessionsDep) -> Response:
    """Sign out: the session is revoked in every worker process; 303 to ``/admin``."""
    session = sessions.read(request.cookies.get(SESSION_COOKIE))
    if session is not None:
        sent = request.headers.get(CSRF_HEADER) or (await read_form(request)).get(
            "csrf_token", "")
        if not AdminSessions.csrf_matches(session, sent):
            return _login_page(request, status=403,
                               error="The page had expired; sign out again.")
        sessions.revoke(session)
        log.info("curator signed out from %s", client_address(request))
    response = RedirectResponse("/admin", status_code=303, headers=_NO_STORE)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict",
                           secure=_secure(request))
    return response
