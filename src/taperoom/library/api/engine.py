"""Routes of /api/engine: the link to the audio engine (beside the contract).

* ``GET /status`` -> ``{success, data: {enabled, running, url, connected,
  connectedSince, lastError, failedAttempts, reconnectDelay, decks}}`` (see
  :class:`~taperoom.library.schemas.EngineStatusPublic`); 503 when no worker
  process leads (the link runs in the leader).
"""

from __future__ import annotations

from typing import Any

from taperoom.library.api.deps import EngineStatusDep
from taperoom.library.api.wire import library_router
from taperoom.library.schemas import EngineStatusPublic, Envelope, ok

router = library_router("/api/engine", tag="engine")


@router.get("/status", response_model=Envelope[EngineStatusPublic])
def engine_status(engine: EngineStatusDep) -> dict[str, Any]:
    """``{success, data: status}``: whether the audio engine is connected, and its decks."""
    return ok(engine.status())
