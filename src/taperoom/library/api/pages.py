"""``GET /``: the library's page (a small Preact client of this API, its files under
``/static``; see ``src/taperoom/library/web``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from taperoom import __version__
from taperoom.web.auth.middleware import current_csrf_token, current_user

WEB = Path(__file__).resolve().parent.parent / "web"
#: Static files of the page (``/static``), vendored libraries under ``vendor/``.
STATIC = WEB / "static"

_env = Environment(loader=FileSystemLoader(str(WEB / "templates")),
                   autoescape=select_autoescape(["html"]))

router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def library_page() -> HTMLResponse:
    """The library's page, with the session's CSRF token for the API calls it makes."""
    html = _env.get_template("library.html").render(
        version=__version__, csrf_token=current_csrf_token(), user=current_user())
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})
