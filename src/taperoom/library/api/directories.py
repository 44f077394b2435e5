"""Routes of /api/library/directories (contracts/library.md §2 "Library directories").

Thin: each route parses its input (pydantic bodies, real booleans in query
strings) and wraps what :class:`~taperoom.library.directories.DirectoryService`
returns in the contract's ``{"success": true, ...}`` envelopes. Errors are raised
as :class:`~taperoom.errors.TaperoomError` and mapped to HTTP in one place.
Besides the contract: ``GET /:id/stats`` (directory statistics) and
``GET /server-folders`` (the server's folders, for the page's folder picker).
"""

from __future__ import annotations

from typing import Any

from fastapi import Query

from taperoom.library.api.deps import DirectoryServiceDep
from taperoom.library.api.wire import library_router
from taperoom.library.directories import parse_bool
from taperoom.library.schemas import (
    MAX_PAGE,
    BrowsePublic,
    CleanupPublic,
    CleanupRequest,
    DirectoryCreate,
    DirectoryDeletedPublic,
    DirectoryPublic,
    DirectoryStatsPublic,
    DirectoryUpdate,
    Envelope,
    MissingStatsPublic,
    RestorePublic,
    ServerFoldersPublic,
    TrackPublic,
    directory_dict,
    ok,
    pagination,
    track_dict,
)

router = library_router("/api/library/directories", tag="library directories")


@router.get("", response_model=Envelope[list[DirectoryPublic]])
@router.get("/", response_model=Envelope[list[DirectoryPublic]], include_in_schema=False)
def list_directories(directories: DirectoryServiceDep, is_active: str | None = None,
                     is_available: str | None = None) -> dict[str, Any]:
    """``{success, count, data: [directory]}``; flags filter when given."""
    dirs = directories.list_directories(
        is_active=parse_bool("is_active", is_active),
        is_available=parse_bool("is_available", is_available))
    return ok([directory_dict(d) for d in dirs], count=len(dirs))


@router.post("", status_code=201, response_model=Envelope[DirectoryPublic])
@router.post("/", status_code=201, response_model=Envelope[DirectoryPublic],
             include_in_schema=False)
def create_directory(body: DirectoryCreate, directories: DirectoryServiceDep
                     ) -> dict[str, Any]:
    """201 ``{success, data: directory, message}``; 400 bad path, 409 duplicate/nested."""
    directory = directories.create_directory(body)
    return ok(directory_dict(directory), message="Library directory created successfully")


@router.post("/check-all-availability", response_model=Envelope[list[DirectoryPublic]])
def check_all_availability(directories: DirectoryServiceDep) -> dict[str, Any]:
    """``{success, count, data: [directory]}`` after re-checking every folder."""
    dirs = directories.check_all_availability()
    return ok([directory_dict(d) for d in dirs], count=len(dirs))


@router.get("/server-folders", response_model=Envelope[ServerFoldersPublic])
def server_folders(directories: DirectoryServiceDep,
                   path: str | None = Query(None, max_length=4096)) -> dict[str, Any]:
    """``{success, data: {path, parent, refused, folders, truncated}}``: one level of the
    server's folders (home when `path` is omitted), to choose a new library folder;
    400 a relative path, 404 no such folder."""
    return ok(directories.server_folders(path))


@router.get("/{directory_id}", response_model=Envelope[DirectoryPublic])
def get_directory(directory_id: str, directories: DirectoryServiceDep) -> dict[str, Any]:
    """``{success, data: directory}``; 404 ``Library directory not found``."""
    return ok(directory_dict(directories.get_directory(directory_id)))


@router.put("/{directory_id}", response_model=Envelope[DirectoryPublic])
def update_directory(directory_id: str, body: DirectoryUpdate,
                     directories: DirectoryServiceDep) -> dict[str, Any]:
    """``{success, data: directory, message}``; 400/404/409."""
    directory = directories.update_directory(directory_id, body)
    return ok(directory_dict(directory), message="Library directory updated successfully")


@router.delete("/{directory_id}", response_model=Envelope[DirectoryDeletedPublic])
def delete_directory(directory_id: str, directories: DirectoryServiceDep,
                     delete_tracks: str | None = None) -> dict[str, Any]:
    """``{success, message, data: {id, path, tracks_deleted, tracks_kept}}``; 404."""
    result = directories.delete_directory(
        directory_id,
        delete_tracks=bool(parse_bool("delete_tracks", delete_tracks, default=False)))
    return ok(result, message="Library directory deleted successfully")


@router.post("/{directory_id}/check-availability", response_model=Envelope[DirectoryPublic])
def check_availability(directory_id: str, directories: DirectoryServiceDep) -> dict[str, Any]:
    """``{success, data: directory}``; 404."""
    return ok(directory_dict(directories.check_availability(directory_id)))


@router.get("/{directory_id}/browse", response_model=Envelope[BrowsePublic])
def browse(directory_id: str, directories: DirectoryServiceDep,
           path: str | None = None) -> dict[str, Any]:
    """``{success, data: listing}``; 400 ``Invalid path``; 404 unknown folder."""
    return ok(directories.browse(directory_id, path))


@router.post("/{directory_id}/cleanup", response_model=Envelope[CleanupPublic])
def cleanup(directory_id: str, directories: DirectoryServiceDep,
            body: CleanupRequest | None = None) -> dict[str, Any]:
    """``{success, data: {removed, kept_in_playlists, backup_path, ...}}``; 404."""
    return ok(directories.cleanup(directory_id, body))


@router.post("/{directory_id}/restore", response_model=Envelope[RestorePublic])
def restore(directory_id: str, directories: DirectoryServiceDep) -> dict[str, Any]:
    """``{success, data: {restored, still_missing, ...}}``; 404."""
    return ok(directories.restore_missing(directory_id))


@router.get("/{directory_id}/missing", response_model=Envelope[list[TrackPublic]])
def missing(directory_id: str, directories: DirectoryServiceDep,
            page: int = Query(1, ge=1, le=MAX_PAGE),
            limit: int = Query(50, ge=1, le=1000)) -> dict[str, Any]:
    """``{success, data: [track], pagination: {page, limit, total, totalPages}}``."""
    tracks, total = directories.missing_tracks(directory_id, page=page, limit=limit)
    return ok([track_dict(t) for t in tracks], pagination=pagination(page, limit, total))


@router.get("/{directory_id}/missing/stats", response_model=Envelope[MissingStatsPublic])
def missing_stats(directory_id: str, directories: DirectoryServiceDep) -> dict[str, Any]:
    """``{success, data: {total_missing, oldest_missing_since, ...}}``; 404."""
    return ok(directories.missing_stats(directory_id))


@router.get("/{directory_id}/stats", response_model=Envelope[DirectoryStatsPublic])
def stats(directory_id: str, directories: DirectoryServiceDep) -> dict[str, Any]:
    """``{success, data: statistics}`` (see ``DirectoryService.directory_stats``); 404."""
    return ok(directories.directory_stats(directory_id))
