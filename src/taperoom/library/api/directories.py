"""Routes of /api/library/directories (contracts/library.md §2 "Library directories").

Thin: each route parses its input (pydantic bodies, real booleans in query
strings) and wraps what :mod:`taperoom.library.directories` returns in the
contract's ``{"success": true, ...}`` envelopes. Errors are raised as
:class:`~taperoom.errors.TaperoomError` and mapped to HTTP in one place.
Besides the contract: ``GET /:id/stats`` (directory statistics).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from taperoom.library import directories as service
from taperoom.library.context import LibraryContext
from taperoom.library.directories import CleanupRequest, DirectoryCreate, DirectoryUpdate
from taperoom.library.schemas import MAX_PAGE, directory_dict, ok, pagination, track_dict


def build_router(ctx: LibraryContext) -> APIRouter:
    """Router of the library-directory routes (mounted at ``/api/library/directories``)."""
    r = APIRouter(tags=["library directories"])

    @r.get("")
    @r.get("/", include_in_schema=False)
    def list_directories(is_active: str | None = None,
                         is_available: str | None = None) -> dict[str, Any]:
        """``{success, count, data: [directory]}``; flags filter when given."""
        dirs = service.list_directories(
            ctx, is_active=service.parse_bool("is_active", is_active),
            is_available=service.parse_bool("is_available", is_available))
        return ok([directory_dict(d) for d in dirs], count=len(dirs))

    @r.post("", status_code=201)
    @r.post("/", status_code=201, include_in_schema=False)
    def create_directory(body: DirectoryCreate) -> dict[str, Any]:
        """201 ``{success, data: directory, message}``; 400 bad path, 409 duplicate/nested."""
        directory = service.create_directory(ctx, body)
        return ok(directory_dict(directory), message="Library directory created successfully")

    @r.post("/check-all-availability")
    def check_all_availability() -> dict[str, Any]:
        """``{success, count, data: [directory]}`` after re-checking every folder."""
        dirs = service.check_all_availability(ctx)
        return ok([directory_dict(d) for d in dirs], count=len(dirs))

    @r.get("/{directory_id}")
    def get_directory(directory_id: str) -> dict[str, Any]:
        """``{success, data: directory}``; 404 ``Library directory not found``."""
        return ok(directory_dict(service.get_directory(ctx, directory_id)))

    @r.put("/{directory_id}")
    def update_directory(directory_id: str, body: DirectoryUpdate) -> dict[str, Any]:
        """``{success, data: directory, message}``; 400/404/409."""
        directory = service.update_directory(ctx, directory_id, body)
        return ok(directory_dict(directory), message="Library directory updated successfully")

    @r.delete("/{directory_id}")
    def delete_directory(directory_id: str, delete_tracks: str | None = None) -> dict[str, Any]:
        """``{success, message, data: {id, path, tracks_deleted, tracks_kept}}``; 404."""
        result = service.delete_directory(
            ctx, directory_id,
            delete_tracks=bool(service.parse_bool("delete_tracks", delete_tracks,
                                                  default=False)))
        return ok(result, message="Library directory deleted successfully")

    @r.post("/{directory_id}/check-availability")
    def check_availability(directory_id: str) -> dict[str, Any]:
        """``{success, data: directory}``; 404."""
        return ok(directory_dict(service.check_availability(ctx, directory_id)))

    @r.get("/{directory_id}/browse")
    def browse(directory_id: str, path: str | None = None) -> dict[str, Any]:
        """``{success, data: listing}``; 400 ``Invalid path``; 404 unknown folder."""
        return ok(service.browse(ctx, directory_id, path))

    @r.post("/{directory_id}/cleanup")
    def cleanup(directory_id: str, body: CleanupRequest | None = None) -> dict[str, Any]:
        """``{success, data: {removed, kept_in_playlists, backup_path, ...}}``; 404."""
        return ok(service.cleanup(ctx, directory_id, body))

    @r.post("/{directory_id}/restore")
    def restore(directory_id: str) -> dict[str, Any]:
        """``{success, data: {restored, still_missing, ...}}``; 404."""
        return ok(service.restore_missing(ctx, directory_id))

    @r.get("/{directory_id}/missing")
    def missing(directory_id: str, page: int = Query(1, ge=1, le=MAX_PAGE),
                limit: int = Query(50, ge=1, le=1000)) -> dict[str, Any]:
        """``{success, data: [track], pagination: {page, limit, total, totalPages}}``."""
        tracks, total = service.missing_tracks(ctx, directory_id, page=page, limit=limit)
        return ok([track_dict(t) for t in tracks], pagination=pagination(page, limit, total))

    @r.get("/{directory_id}/missing/stats")
    def missing_stats(directory_id: str) -> dict[str, Any]:
        """``{success, data: {total_missing, oldest_missing_since, ...}}``; 404."""
        return ok(service.missing_stats(ctx, directory_id))

    @r.get("/{directory_id}/stats")
    def stats(directory_id: str) -> dict[str, Any]:
        """``{success, data: statistics}`` (see ``directories.directory_stats``); 404."""
        return ok(service.directory_stats(ctx, directory_id))

    return r
