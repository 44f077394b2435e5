"""``GET /health`` and ``GET /api/health``: the contract's liveness answer.

The original's Docker health check called ``/health``, which it did not serve;
both paths answer here, without credentials.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from taperoom import __version__
from taperoom.recorder.schemas import HealthPublic

#: ``service`` of the answer (contract).
SERVICE = "audio-stream-recorder"

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthPublic)
@router.get("/api/health", response_model=HealthPublic)
def health() -> dict[str, Any]:
    """``{"status": "healthy", "service": "audio-stream-recorder", "version"}``."""
    return {"status": "healthy", "service": SERVICE, "version": __version__}
