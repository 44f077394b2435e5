"""``GET /wear-models``: the wear models a track can be given."""

from __future__ import annotations

from fastapi import APIRouter

from taperoom.ephemeral.api.deps import ServiceDep
from taperoom.ephemeral.schemas import WearModelPublic, error_responses

router = APIRouter(tags=["wear"])


@router.get("/wear-models", responses=error_responses())
def wear_models(service: ServiceDep) -> list[WearModelPublic]:
    """Every wear model, in registry order; ``default`` marks ``WEAR_MODEL``'s."""
    return service.wear_models()
