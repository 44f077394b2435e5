"""The catalogue: ``GET /tracks``, ``GET /stats/<f>``, ``GET /waveform/<f>``, ``POST /reset``."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from taperoom.ephemeral.api.deps import ServiceDep, require_admin
from taperoom.ephemeral.schemas import (
    TrackPublic,
    TrackStatsPublic,
    WaveformPointPublic,
    error_responses,
)

router = APIRouter(tags=["tracks"])


@router.get("/tracks", responses=error_responses())
def tracks(service: ServiceDep) -> list[TrackPublic]:
    """Every readable track in ``AUDIO_DIR``, sorted by file name."""
    return service.tracks()


@router.get("/stats/{filename}", responses=error_responses(404, 503))
def stats(filename: str, service: ServiceDep) -> TrackStatsPublic:
    """Play counts and wear of one track."""
    return service.stats(filename)


@router.get("/waveform/{filename}", responses=error_responses(404, 422, 503))
def waveform(filename: str, service: ServiceDep) -> list[WaveformPointPublic]:
    """``WAVEFORM_POINTS`` peaks of the mono mix, normalised to [-1, 1]."""
    return service.waveform(filename)


@router.post("/reset/{filename}", dependencies=[Depends(require_admin)],
             responses=error_responses(401, 403, 404, 422, 503))
def reset(filename: str, service: ServiceDep) -> TrackStatsPublic:
    """Restore a track from its pristine copy (``KEEP_ORIGINALS``); its new stats."""
    return service.reset(filename)
