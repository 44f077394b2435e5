"""Routes of /api/tracks (contracts/library.md §2 Tracks).

``/:id/move``, ``/:id/rename`` and ``DELETE /:id/file`` live in ``api/fileops.py``;
hot cues in ``api/hot_cues.py`` (mounted first on the same prefix).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from taperoom.library.context import LibraryContext
from taperoom.library.schemas import ok, pagination
from taperoom.library.tracks import (
    FirstBeatOffsetBody,
    TrackCreate,
    TrackListQuery,
    TrackNotFound,
    TrackSearchQuery,
    TrackService,
    TrackUpdate,
)


class TrackRoute(APIRoute):
    """Route class that renders :class:`TrackNotFound` with the contract's ``message``.

    ``404 {"success": false, "error": "Track not found",
    "message": "Track with ID <id> does not exist"}``; every other error goes to
    the app's handlers.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the default handler to catch :class:`TrackNotFound`."""
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except TrackNotFound as exc:
                return JSONResponse({"success": False, "error": exc.message,
                                     "message": exc.detail}, status_code=exc.status)

        return route


def build_router(ctx: LibraryContext) -> APIRouter:
    """Router of the tracks routes (list, search, stats, CRUD, verify, analysis reads)."""
    svc = TrackService(ctx)
    r = APIRouter(route_class=TrackRoute)

    @r.get("")
    def list_tracks(query: Annotated[TrackListQuery, Query()]) -> dict[str, Any]:
        rows, total = svc.list_tracks(query)
        return ok(rows, pagination=pagination(query.page, query.limit, total))

    @r.get("/search")
    def search_tracks(query: Annotated[TrackSearchQuery, Query()]) -> dict[str, Any]:
        rows, total = svc.list_tracks(query)
        return ok(rows, pagination=pagination(query.page, query.limit, total))

    @r.get("/stats")
    def stats() -> dict[str, Any]:
        return ok(svc.stats())

    @r.get("/{track_id}")
    def get_track(track_id: str) -> dict[str, Any]:
        return ok(svc.get(track_id))

    @r.post("", status_code=201)
    def create_track(body: TrackCreate) -> dict[str, Any]:
        return ok(svc.create(body), message="Track created successfully")

    @r.put("/{track_id}")
    def update_track(track_id: str, body: TrackUpdate) -> dict[str, Any]:
        return ok(svc.update(track_id, body), message="Track updated successfully")

    @r.delete("/{track_id}")
    def delete_track(track_id: str) -> dict[str, Any]:
        svc.delete(track_id)
        return {"success": True, "message": "Track deleted from database"}

    @r.get("/{track_id}/verify")
    def verify(track_id: str) -> dict[str, Any]:
        return ok(svc.verify(track_id))

    @r.post("/{track_id}/mark-missing")
    def mark_missing(track_id: str) -> dict[str, Any]:
        return ok(svc.set_missing(track_id, True), message="Track marked as missing")

    @r.post("/{track_id}/mark-found")
    def mark_found(track_id: str) -> dict[str, Any]:
        return ok(svc.set_missing(track_id, False), message="Track marked as found")

    @r.get("/{track_id}/waveform")
    def waveform(track_id: str,
                 zoom: Annotated[int | None, Query(ge=0, le=2)] = None) -> dict[str, Any]:
        return ok(svc.waveforms(track_id, zoom))

    @r.get("/{track_id}/stems/waveform")
    def stems_waveform(track_id: str,
                       zoom: Annotated[int | None, Query(ge=0, le=2)] = None
                       ) -> dict[str, Any]:
        return ok(svc.waveforms(track_id, zoom, stems=True))

    @r.get("/{track_id}/beats")
    def beats(track_id: str) -> dict[str, Any]:
        return ok(svc.beats(track_id, "beats"))

    @r.get("/{track_id}/downbeats")
    def downbeats(track_id: str) -> dict[str, Any]:
        return ok(svc.beats(track_id, "downbeats"))

    @r.post("/{track_id}/first-beat-offset")
    def first_beat_offset(track_id: str, body: FirstBeatOffsetBody) -> dict[str, Any]:
        return ok(svc.set_first_beat_offset(track_id, body.first_beat_offset),
                  message="First beat offset updated")

    return r
