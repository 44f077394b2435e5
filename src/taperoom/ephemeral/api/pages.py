"""``GET /player``: the bundled player page."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from taperoom import __version__

router = APIRouter(tags=["pages"])

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@router.get("/player", response_class=HTMLResponse)
def player() -> HTMLResponse:
    """The player (static files under ``/static``)."""
    html = (TEMPLATES / "player.html").read_text(encoding="utf-8")
    return HTMLResponse(html.replace("{{version}}", __version__))
