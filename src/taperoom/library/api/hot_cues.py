"""Routes of /api/tracks/:id/hot-cues (contracts/library.md §2 Hot cues).

Mounted before the tracks router on the same ``/api/tracks`` prefix. An unknown
track is the contract's 404 ``{"success": false, "error": "Track not found",
"message": "Track with ID <id> does not exist"}``
(:class:`~taperoom.library.tracks.TrackNotFound`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path as PathParam
from fastapi import Query

from taperoom.library.api.deps import TrackServiceDep
from taperoom.library.api.wire import library_router
from taperoom.library.schemas import (
    Envelope,
    HotCueBody,
    HotCuePublic,
    HotCueSource,
    HotCueUpdate,
    ok,
)

CueIndex = Annotated[int, PathParam(ge=0, le=7)]

router = library_router("/api/tracks", tag="hot cues")


@router.get("/{track_id}/hot-cues", response_model=Envelope[list[HotCuePublic]])
def list_cues(track_id: str, tracks: TrackServiceDep,
              source: HotCueSource | Literal["preferred"] | None = None) -> dict[str, Any]:
    """``{success, data: [cue]}`` by source then index; ``source=preferred`` (an
    addition) lists one cue per index, preferring user > rekordbox > serato >
    mixedInKey > virtual dj."""
    return ok(tracks.hot_cues(track_id, source))


@router.get("/{track_id}/hot-cues/{index}", response_model=Envelope[HotCuePublic])
def get_cue(track_id: str, index: CueIndex, tracks: TrackServiceDep,
            source: HotCueSource = "user") -> dict[str, Any]:
    """``{success, data: cue}``; 404 ``Hot cue not found``."""
    return ok(tracks.hot_cue(track_id, index, source))


@router.post("/{track_id}/hot-cues/{index}", response_model=Envelope[HotCuePublic])
def save_cue(track_id: str, index: CueIndex, body: HotCueBody,
             tracks: TrackServiceDep) -> dict[str, Any]:
    """``{success, data: cue, message}`` (create or replace)."""
    return ok(tracks.save_hot_cue(track_id, index, body), message="Hot cue saved successfully")


@router.put("/{track_id}/hot-cues/{index}", response_model=Envelope[HotCuePublic])
def update_cue(track_id: str, index: CueIndex, body: HotCueUpdate, tracks: TrackServiceDep,
               source: HotCueSource = "user") -> dict[str, Any]:
    """``{success, data: cue, message}``; 404."""
    return ok(tracks.update_hot_cue(track_id, index, body, source),
              message="Hot cue updated successfully")


@router.delete("/{track_id}/hot-cues/{index}", response_model=Envelope[None])
def delete_cue(track_id: str, index: CueIndex, tracks: TrackServiceDep,
               source: HotCueSource = "user") -> dict[str, Any]:
    """``{success, message}``; 404."""
    tracks.delete_hot_cue(track_id, index, source)
    return {"success": True, "message": "Hot cue deleted successfully"}


@router.delete("/{track_id}/hot-cues", response_model=Envelope[None])
def delete_all(track_id: str, tracks: TrackServiceDep,
               source: Annotated[HotCueSource | None, Query()] = None) -> dict[str, Any]:
    """``{success, message: "Removed N hot cue(s)", count}``."""
    count = tracks.clear_hot_cues(track_id, source)
    return {"success": True, "message": f"Removed {count} hot cue(s)", "count": count}
