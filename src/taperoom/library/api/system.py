"""GET /health and the frontend WebSocket /ws."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, WebSocket

from taperoom.library.api.deps import WebSocketHubDep
from taperoom.library.models import utcnow
from taperoom.library.schemas import HealthPublic, iso

STARTED = time.monotonic()

router = APIRouter(tags=["system"])


@router.get("/health", response_model=HealthPublic)
def health() -> dict[str, Any]:
    """``{status, timestamp, uptime (s), environment}`` (contract shape)."""
    return {"status": "ok", "timestamp": iso(utcnow()),
            "uptime": time.monotonic() - STARTED, "environment": "production"}


@router.websocket("/ws")
async def ws(websocket: WebSocket, hub: WebSocketHubDep) -> None:
    """Live events (see :mod:`taperoom.web.ws`)."""
    await hub.serve(websocket)
