"""``GET /``: the contract's service status."""

from __future__ import annotations

from fastapi import APIRouter

from taperoom.ephemeral.api.deps import ServiceDep
from taperoom.ephemeral.schemas import StatusPublic

router = APIRouter(tags=["status"])


# A plain function (run in a worker thread, as before): GET / is the reference request
# that bench/ephemeral.py compares /degrade and /stream with.
@router.get("/")
def status(service: ServiceDep) -> StatusPublic:
    """Service name, folders and ``DEGRADATION_RATE``."""
    return service.status()
