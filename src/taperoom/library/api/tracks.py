"""Routes of /api/tracks (contracts/library.md §2 Tracks).

``/:id/move``, ``/:id/rename`` and ``DELETE /:id/file`` live in ``api/fileops.py``;
hot cues in ``api/hot_cues.py`` (mounted first on the same prefix). An unknown
track is the contract's 404 ``{"success": false, "error": "Track not found",
"message": "Track with ID <id> does not exist"}``
(:class:`~taperoom.library.tracks.TrackNotFound`, rendered by the shared mapping).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request, Response
from starlette.concurrency import run_in_threadpool

from taperoom.library.api.deps import SuggestionServiceDep, TrackServiceDep
from taperoom.library.api.wire import json_answer, library_router
from taperoom.library.schemas import (
    BeatsPublic,
    Envelope,
    ErrorPublic,
    FirstBeatOffsetBody,
    SuggestionPublic,
    SuggestionQuery,
    TrackCreate,
    TrackDetailPublic,
    TrackListQuery,
    TrackPublic,
    TrackSearchQuery,
    TrackStatsPublic,
    TrackUpdate,
    VerifyPublic,
    WaveformListPublic,
    WaveformPublic,
    ok,
    pagination,
)
from taperoom.web.filestream import AudioFileResponse

#: The audio route's answers beside the JSON errors.
AUDIO_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The whole file",
          "content": {"audio/*": {"schema": {"type": "string", "format": "binary"}}}},
    206: {"description": "The ranges asked for (``Range: bytes=...``)",
          "content": {"audio/*": {"schema": {"type": "string", "format": "binary"}}}},
    416: {"model": ErrorPublic, "description": "No range of ``Range`` overlaps the file"},
}
Zoom = Annotated[int | None, Query(ge=0, le=2)]

router = library_router("/api/tracks", tag="tracks")


@router.get("", response_model=Envelope[list[TrackPublic]])
def list_tracks(query: Annotated[TrackListQuery, Query()], tracks: TrackServiceDep
                ) -> Response:
    """``{success, data: [track], pagination}``: filtered, sorted, paged."""
    rows, total = tracks.list_tracks(query)
    return json_answer(ok(rows, pagination=pagination(query.page, query.limit, total)))


@router.get("/search", response_model=Envelope[list[TrackPublic]])
def search_tracks(query: Annotated[TrackSearchQuery, Query()], tracks: TrackServiceDep
                  ) -> Response:
    """``{success, data: [track], pagination}``: full-text search for `q`."""
    rows, total = tracks.list_tracks(query)
    return json_answer(ok(rows, pagination=pagination(query.page, query.limit, total)))


@router.get("/stats", response_model=Envelope[TrackStatsPublic])
def stats(tracks: TrackServiceDep) -> dict[str, Any]:
    """``{success, data: {total, missing, analyzed, duplicates, total_size, avg_duration}}``."""
    return ok(tracks.stats())


@router.get("/{track_id}", response_model=Envelope[TrackDetailPublic])
def get_track(track_id: str, tracks: TrackServiceDep) -> dict[str, Any]:
    """``{success, data: {...track, hotCues}}``; 404."""
    return ok(tracks.get(track_id))


@router.post("", status_code=201, response_model=Envelope[TrackPublic])
def create_track(body: TrackCreate, tracks: TrackServiceDep) -> dict[str, Any]:
    """201 ``{success, data: track, message}``; 400, 404, 409, 422."""
    return ok(tracks.create(body), message="Track created successfully")


@router.put("/{track_id}", response_model=Envelope[TrackPublic])
def update_track(track_id: str, body: TrackUpdate, tracks: TrackServiceDep) -> dict[str, Any]:
    """``{success, data: track, message}``; 404."""
    return ok(tracks.update(track_id, body), message="Track updated successfully")


@router.delete("/{track_id}", response_model=Envelope[None])
def delete_track(track_id: str, tracks: TrackServiceDep) -> dict[str, Any]:
    """``{success, message: "Track deleted from database"}``; 404."""
    tracks.delete(track_id)
    return {"success": True, "message": "Track deleted from database"}


@router.get("/{track_id}/verify", response_model=Envelope[VerifyPublic])
def verify(track_id: str, tracks: TrackServiceDep) -> dict[str, Any]:
    """``{success, data: check}``; 404."""
    return ok(tracks.verify(track_id))


@router.post("/{track_id}/mark-missing", response_model=Envelope[TrackPublic])
def mark_missing(track_id: str, tracks: TrackServiceDep) -> dict[str, Any]:
    """``{success, data: track, message}``; 404."""
    return ok(tracks.set_missing(track_id, True), message="Track marked as missing")


@router.post("/{track_id}/mark-found", response_model=Envelope[TrackPublic])
def mark_found(track_id: str, tracks: TrackServiceDep) -> dict[str, Any]:
    """``{success, data: track, message}``; 404."""
    return ok(tracks.set_missing(track_id, False), message="Track marked as found")


@router.get("/{track_id}/suggestions", response_model=Envelope[list[SuggestionPublic]])
def suggestions(track_id: str, query: Annotated[SuggestionQuery, Query()],
                suggest: SuggestionServiceDep) -> dict[str, Any]:
    """``{success, data: [{track, score, key_move, reasons}], count}``: tracks that mix
    well after this one, best first; 404 for an unknown track or playlist."""
    rows = suggest.suggest(track_id, energy=query.energy, limit=query.limit,
                           playlist_id=str(query.playlist_id) if query.playlist_id else None)
    return ok(rows, count=len(rows))


async def audio(request: Request, track_id: str, tracks: TrackServiceDep) -> Response:
    """The track's file, for playing (``Range`` answered with 206, 416 when no range
    overlaps the file); 404 for an unknown track or ``Track file missing``."""
    path, kind = await run_in_threadpool(tracks.audio_file, track_id)
    return AudioFileResponse(path, media_type=kind, headers={"Cache-Control": "no-cache"})


router.add_api_route("/{track_id}/audio", audio, methods=["GET"], response_class=Response,
                     responses=AUDIO_RESPONSES, summary="Audio")
router.add_api_route("/{track_id}/audio", audio, methods=["HEAD"], response_class=Response,
                     include_in_schema=False)


@router.get("/{track_id}/waveform",
            response_model=Envelope[WaveformPublic | WaveformListPublic])
def waveform(track_id: str, tracks: TrackServiceDep, zoom: Zoom = None) -> dict[str, Any]:
    """``{success, data: waveform}`` (zoom given) or ``{success, data: {file_hash,
    waveforms}}``; 404 ``Waveform not found``."""
    return ok(tracks.waveforms(track_id, zoom))


@router.get("/{track_id}/stems/waveform",
            response_model=Envelope[WaveformPublic | WaveformListPublic])
def stems_waveform(track_id: str, tracks: TrackServiceDep, zoom: Zoom = None
                   ) -> dict[str, Any]:
    """``{success, data: stemWaveform}`` or ``{success, data: {waveforms}}``; 404."""
    return ok(tracks.waveforms(track_id, zoom, stems=True))


@router.get("/{track_id}/beats", response_model=Envelope[BeatsPublic])
def beats(track_id: str, tracks: TrackServiceDep) -> dict[str, Any]:
    """``{success, data: {track_id, beats, count}}``; 404 ``Beats data not found``."""
    return ok(tracks.beats(track_id, "beats"))


@router.get("/{track_id}/downbeats", response_model=Envelope[BeatsPublic])
def downbeats(track_id: str, tracks: TrackServiceDep) -> dict[str, Any]:
    """``{success, data: {track_id, downbeats, count}}``; 404."""
    return ok(tracks.beats(track_id, "downbeats"))


@router.post("/{track_id}/first-beat-offset", response_model=Envelope[TrackPublic])
def first_beat_offset(track_id: str, body: FirstBeatOffsetBody, tracks: TrackServiceDep
                      ) -> dict[str, Any]:
    """``{success, data: track, message: "First beat offset updated"}``; 404."""
    return ok(tracks.set_first_beat_offset(track_id, body.first_beat_offset),
              message="First beat offset updated")
