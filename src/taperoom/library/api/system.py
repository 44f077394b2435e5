"""GET /health and the frontend WebSocket /ws."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, WebSocket

from taperoom.library.context import LibraryContext
from taperoom.library.models import utcnow
from taperoom.library.schemas import iso
from taperoom.web.ws import WebSocketHub

STARTED = time.monotonic()


def build_router(ctx: LibraryContext, hub: WebSocketHub) -> APIRouter:
    """``GET /health`` (contract shape) and ``/ws`` (live events, see taperoom.web.ws)."""
    r = APIRouter()

    @r.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "timestamp": iso(utcnow()),
                "uptime": time.monotonic() - STARTED, "environment": "production"}

    @r.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await hub.serve(websocket)

    return r
