"""Routes of /api/playlists (contracts/library.md "Playlists"; bare JSON, no envelope).

Errors are ``{"error", "message"}`` (:mod:`taperoom.playlists.errors`): 400 for a
malformed body, query or id (``Validation failed``, with ``details``), 404
``Playlist not found`` / ``Track not found`` / ``Track not found in playlist`` /
``Folder not found``, 409 for a read-only (finalized) session, a track already
in a playlist, a reorder list that is not the playlist's, a folder not empty.
Crates (folders of playlists) are beside the contract under ``/folders``. The
export route (``/:id/export``) is in :mod:`taperoom.library.api.exchange`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from taperoom.library.api.deps import (
    CrateServiceDep,
    PlaylistServiceDep,
    SessionServiceDep,
    SmartPlaylistsDep,
    ThinkingPlaylistDep,
)
from taperoom.library.api.wire import WireRoute, json_answer
from taperoom.library.schemas import (
    ERROR_RESPONSES,
    AddTracksBody,
    DuplicatePlaylistBody,
    EntryUpdate,
    FolderCreate,
    FolderDeletedPublic,
    FolderTreePublic,
    FolderUpdate,
    PlaylistCreate,
    PlaylistDeletedPublic,
    PlaylistFolderPublic,
    PlaylistListPublic,
    PlaylistMessagePublic,
    PlaylistPublic,
    PlaylistStatsPublic,
    PlaylistUpdate,
    PromoteBody,
    PromotedPublic,
    ReorderBody,
    SearchText,
    SessionFinalizedPublic,
    SessionListPublic,
    SessionPlayBody,
    SessionStartBody,
    SmartConvertedPublic,
    SmartExplainPublic,
    SmartPreviewBody,
    SmartPreviewPublic,
    SmartRefreshPublic,
    TracksAddedPublic,
)
from taperoom.playlists.errors import PlaylistInvalid
from taperoom.playlists.guards import valid_id
from taperoom.playlists.service import NewPlaylist

Occurrence = Annotated[int | None, Query(ge=0, le=1_000_000, description=(
    "One replay of the track (0: its first entry); all its entries when omitted"))]


class PlaylistRoute(WireRoute):
    """A library route whose request validation errors are answered bare:
    ``{"error": "Validation failed", "message", "details"}`` (400)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                details = []
                for err in exc.errors():
                    loc = [str(p) for p in err.get("loc", ())]
                    if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
                        loc = loc[1:]
                    details.append({"field": ".".join(loc), "message": str(err.get("msg"))})
                raise PlaylistInvalid.from_fields(details) from None

        return guarded


router = APIRouter(prefix="/api/playlists", tags=["playlists"], route_class=PlaylistRoute,
                   responses=dict(ERROR_RESPONSES))


# --------------------------------------------------------------------------- crates


@router.get("/folders", response_model=FolderTreePublic)
def folder_tree(crates: CrateServiceDep) -> dict[str, Any]:
    """The folder tree: top folders (each with ``folders`` and ``playlists``), the
    playlists in no folder, and the number of folders."""
    return crates.tree()


@router.post("/folders", response_model=PlaylistFolderPublic, status_code=201)
def create_folder(body: FolderCreate, crates: CrateServiceDep) -> dict[str, Any]:
    """A new folder (``parent_id``: under that folder); 404 for an unknown parent."""
    return crates.create(body.name, str(body.parent_id) if body.parent_id else None)


@router.get("/folders/{folder_id}", response_model=PlaylistFolderPublic)
def get_folder(folder_id: str, crates: CrateServiceDep) -> dict[str, Any]:
    """A folder with its sub-tree; 404."""
    return crates.get(valid_id(folder_id))


@router.put("/folders/{folder_id}", response_model=PlaylistFolderPublic)
def update_folder(folder_id: str, body: FolderUpdate, crates: CrateServiceDep
                  ) -> dict[str, Any]:
    """Rename (``name``) or move (``parent_id``; null: to the top); 404, 409 for a
    move into its own sub-tree."""
    changes = {name: getattr(body, name) for name in body.model_fields_set
               if name in ("name", "parent_id")}
    if changes.get("parent_id") is not None:
        changes["parent_id"] = str(changes["parent_id"])
    return crates.update(valid_id(folder_id), changes)


@router.delete("/folders/{folder_id}", response_model=FolderDeletedPublic)
def delete_folder(folder_id: str, crates: CrateServiceDep,
                  recursive: bool = Query(False, description=(
                      "Also delete its sub-folders and every playlist in them"))
                  ) -> dict[str, Any]:
    """Delete a folder; 409 when it holds folders or playlists and not ``recursive``."""
    return crates.delete(valid_id(folder_id), recursive=recursive)


# --------------------------------------------------------------------------- lists


@router.post("/smart/preview", response_model=SmartPreviewPublic)
def smart_preview(body: SmartPreviewBody, smart: SmartPlaylistsDep) -> dict[str, Any]:
    """``{count, explanation, tracks}``: the tracks `criteria` match now (the first
    `limit`), without saving a playlist; 400 criteria that do not parse."""
    return smart.preview(body.criteria, limit=body.limit)


@router.get("/search", response_model=PlaylistListPublic)
def search_playlists(playlists: PlaylistServiceDep, q: SearchText) -> dict[str, Any]:
    """``{playlists, count}`` whose name or description holds ``q`` (1-200 chars)."""
    found = playlists.search(q)
    return {"playlists": found, "count": len(found)}


@router.get("/thinking", response_model=PlaylistPublic)
def thinking_playlist(thinking: ThinkingPlaylistDep) -> dict[str, Any]:
    """The thinking playlist with its tracks (created when absent)."""
    return thinking.get()


@router.post("/thinking/promote", response_model=PromotedPublic)
def promote_thinking(body: PromoteBody, thinking: ThinkingPlaylistDep) -> dict[str, Any]:
    """Copy the thinking playlist into a new static playlist ``name`` and empty it."""
    return thinking.promote(body.name)


@router.post("/sessions/start", response_model=PlaylistPublic, status_code=201)
def start_session(sessions: SessionServiceDep, body: SessionStartBody | None = None
                  ) -> dict[str, Any]:
    """A new session playlist ``Session - YYYY-MM-DD[ - venue]``."""
    body = body or SessionStartBody()
    return sessions.start(body.venue or None, body.date)


@router.get("/sessions/active", response_model=SessionListPublic)
def active_sessions(sessions: SessionServiceDep) -> dict[str, Any]:
    """``{sessions, count}``: the sessions not finalized."""
    found = sessions.active()
    return {"sessions": found, "count": len(found)}


@router.post("/sessions/{playlist_id}/track", response_model=PlaylistMessagePublic)
def log_play(playlist_id: str, body: SessionPlayBody, sessions: SessionServiceDep
             ) -> dict[str, Any]:
    """Log a play (a replay when the track was played before); 404, 400 not a session,
    409 finalized."""
    sessions.log_play(valid_id(playlist_id), str(body.track_id), played_at=body.played_at,
                      duration=body.duration, notes=body.notes)
    return {"message": "Track play logged successfully"}


@router.post("/sessions/{playlist_id}/finalize", response_model=SessionFinalizedPublic)
def finalize_session(playlist_id: str, sessions: SessionServiceDep) -> dict[str, Any]:
    """Make the session read-only; ``session_duration`` in s. 409 when already final."""
    duration = sessions.finalize(valid_id(playlist_id))
    return {"message": "Session finalized", "session_duration": duration}


@router.get("", response_model=PlaylistListPublic)
@router.get("/", response_model=PlaylistListPublic, include_in_schema=False)
def list_playlists(playlists: PlaylistServiceDep,
                   type: str | None = Query(None, max_length=16),
                   is_favorite: bool | None = None, is_temporary: bool | None = None,
                   search: str | None = Query(None, max_length=200),
                   folder_id: str | None = Query(None, description=(
                       "Only the playlists of this folder (beside the contract)"))
                   ) -> dict[str, Any]:
    """``{playlists, count}``, favourites first, then the most recently updated."""
    found = playlists.list_playlists(
        type_=type, is_favorite=is_favorite, is_temporary=is_temporary,
        search=search.strip() if search and search.strip() else None,
        folder_id=valid_id(folder_id, "folder_id") if folder_id else None)
    return {"playlists": found, "count": len(found)}


@router.post("", response_model=PlaylistPublic, status_code=201)
@router.post("/", response_model=PlaylistPublic, status_code=201, include_in_schema=False)
def create_playlist(body: PlaylistCreate, playlists: PlaylistServiceDep) -> dict[str, Any]:
    """**201** the new playlist (without tracks)."""
    return playlists.create(NewPlaylist(
        name=body.name, type=body.type, description=body.description, color=body.color,
        icon=body.icon, criteria=body.criteria, session_venue=body.session_venue,
        session_date=body.session_date, is_favorite=body.is_favorite,
        folder_id=str(body.folder_id) if body.folder_id else None))


# --------------------------------------------------------------------------- one playlist


@router.get("/{playlist_id}", response_model=PlaylistPublic)
def get_playlist(playlist_id: str, playlists: PlaylistServiceDep,
                 include_tracks: bool = True) -> Response:
    """The playlist with its ``tracks`` (unless ``include_tracks=false``); 404."""
    return json_answer(playlists.get(valid_id(playlist_id), include_tracks=include_tracks))


@router.put("/{playlist_id}", response_model=PlaylistPublic)
def update_playlist(playlist_id: str, body: PlaylistUpdate, playlists: PlaylistServiceDep
                    ) -> dict[str, Any]:
    """Set the fields given; 404, 409 read-only (``is_favorite`` and ``folder_id``
    excepted)."""
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    if changes.get("folder_id") is not None:
        changes["folder_id"] = str(changes["folder_id"])
    return playlists.update(valid_id(playlist_id), changes)


@router.delete("/{playlist_id}", response_model=PlaylistDeletedPublic)
def delete_playlist(playlist_id: str, playlists: PlaylistServiceDep) -> dict[str, Any]:
    """``{message: "Playlist deleted successfully", id}``; 404."""
    deleted = playlists.delete(valid_id(playlist_id))
    return {"message": "Playlist deleted successfully", "id": deleted}


@router.get("/{playlist_id}/stats", response_model=PlaylistStatsPublic)
def playlist_stats(playlist_id: str, playlists: PlaylistServiceDep) -> dict[str, Any]:
    """Figures of the playlist's tracks; 404."""
    return playlists.stats(valid_id(playlist_id))


@router.post("/{playlist_id}/tracks", response_model=TracksAddedPublic)
def add_tracks(playlist_id: str, body: AddTracksBody, playlists: PlaylistServiceDep
               ) -> dict[str, Any]:
    """Insert tracks at ``position`` (default: the end); 404 unknown track, 409 already
    in the playlist (not a session), smart or read-only."""
    count = playlists.add_tracks(valid_id(playlist_id), [str(t) for t in body.track_ids],
                                 position=body.position, notes=body.notes)
    return {"message": "Tracks added successfully", "added_count": count}


@router.put("/{playlist_id}/tracks/reorder", response_model=PlaylistMessagePublic)
def reorder_tracks(playlist_id: str, body: ReorderBody, playlists: PlaylistServiceDep
                   ) -> dict[str, Any]:
    """New order of every entry; 409 when the list is not the playlist's tracks."""
    playlists.reorder(valid_id(playlist_id), [str(t) for t in body.track_ids])
    return {"message": "Tracks reordered successfully"}


@router.delete("/{playlist_id}/tracks/{track_id}", response_model=PlaylistMessagePublic)
def remove_track(playlist_id: str, track_id: str, playlists: PlaylistServiceDep,
                 occurrence: Occurrence = None) -> dict[str, Any]:
    """Remove the track (every entry, or one replay); 404 ``Track not found in playlist``."""
    playlists.remove_track(valid_id(playlist_id), valid_id(track_id, "trackId"), occurrence)
    return {"message": "Track removed successfully"}


@router.put("/{playlist_id}/tracks/{track_id}", response_model=PlaylistMessagePublic)
def update_entry(playlist_id: str, track_id: str, body: EntryUpdate,
                 playlists: PlaylistServiceDep, occurrence: Occurrence = None
                 ) -> dict[str, Any]:
    """Set ``notes``, ``cue_in``, ``cue_out``, ``rating_in_context`` of the entry; 404."""
    values = {name: getattr(body, name) for name in body.model_fields_set}
    playlists.update_entry(valid_id(playlist_id), valid_id(track_id, "trackId"), values,
                           occurrence)
    return {"message": "Track metadata updated successfully"}


@router.post("/{playlist_id}/refresh", response_model=SmartRefreshPublic)
def refresh_smart(playlist_id: str, smart: SmartPlaylistsDep) -> dict[str, Any]:
    """Evaluate a smart playlist's criteria now: ``{added, removed, total, addedCount,
    removedCount}``; 404, 400 ``Not a smart playlist`` (the original answered 500)."""
    return smart.refresh(valid_id(playlist_id)).answer()


@router.post("/{playlist_id}/convert", response_model=SmartConvertedPublic)
def convert_smart(playlist_id: str, smart: SmartPlaylistsDep) -> dict[str, Any]:
    """Make a smart playlist static with its current tracks; 404, 400 not smart."""
    count = smart.convert(valid_id(playlist_id))
    return {"message": "Smart playlist converted to static", "track_count": count}


@router.get("/{playlist_id}/explain", response_model=SmartExplainPublic)
def explain_smart(playlist_id: str, smart: SmartPlaylistsDep) -> dict[str, Any]:
    """``{explanation, criteria}``: the parsed criteria in words (the original always
    said "All tracks"), ``criteria`` the raw JSON string; 404, 400 not smart."""
    return smart.explain(valid_id(playlist_id))


@router.post("/{playlist_id}/duplicate", response_model=PlaylistPublic, status_code=201)
def duplicate_playlist(playlist_id: str, playlists: PlaylistServiceDep,
                       body: DuplicatePlaylistBody | None = None) -> dict[str, Any]:
    """**201** a copy with the entries (a session's copy is static); 404."""
    return playlists.duplicate(valid_id(playlist_id), body.name if body else None)

