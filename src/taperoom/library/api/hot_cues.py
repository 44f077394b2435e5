"""Routes of /api/tracks/:id/hot-cues (contracts/library.md §2 Hot cues).

Mounted before the tracks router on the same ``/api/tracks`` prefix.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi import Path as PathParam

from taperoom.library.api.tracks import TrackRoute
from taperoom.library.context import LibraryContext
from taperoom.library.schemas import ok
from taperoom.library.tracks import HotCueBody, HotCueSource, HotCueUpdate, TrackService

CueIndex = Annotated[int, PathParam(ge=0, le=7)]


def build_router(ctx: LibraryContext) -> APIRouter:
    """Router of the hot-cue routes: list, get, upsert, update, delete one, delete all.

    ``GET /:id/hot-cues?source=preferred`` (an addition) lists one cue per index,
    preferring user > rekordbox > serato > mixedInKey > virtual dj.
    """
    svc = TrackService(ctx)
    r = APIRouter(route_class=TrackRoute)

    @r.get("/{track_id}/hot-cues")
    def list_cues(track_id: str,
                  source: HotCueSource | Literal["preferred"] | None = None
                  ) -> dict[str, Any]:
        return ok(svc.hot_cues(track_id, source))

    @r.get("/{track_id}/hot-cues/{index}")
    def get_cue(track_id: str, index: CueIndex,
                source: HotCueSource = "user") -> dict[str, Any]:
        return ok(svc.hot_cue(track_id, index, source))

    @r.post("/{track_id}/hot-cues/{index}")
    def save_cue(track_id: str, index: CueIndex, body: HotCueBody) -> dict[str, Any]:
        return ok(svc.save_hot_cue(track_id, index, body), message="Hot cue saved successfully")

    @r.put("/{track_id}/hot-cues/{index}")
    def update_cue(track_id: str, index: CueIndex, body: HotCueUpdate,
                   source: HotCueSource = "user") -> dict[str, Any]:
        return ok(svc.update_hot_cue(track_id, index, body, source),
                  message="Hot cue updated successfully")

    @r.delete("/{track_id}/hot-cues/{index}")
    def delete_cue(track_id: str, index: CueIndex,
                   source: HotCueSource = "user") -> dict[str, Any]:
        svc.delete_hot_cue(track_id, index, source)
        return {"success": True, "message": "Hot cue deleted successfully"}

    @r.delete("/{track_id}/hot-cues")
    def delete_all(track_id: str,
                   source: Annotated[HotCueSource | None, Query()] = None) -> dict[str, Any]:
        count = svc.clear_hot_cues(track_id, source)
        return {"success": True, "message": f"Removed {count} hot cue(s)", "count": count}

    return r
