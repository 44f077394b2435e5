"""File routes of /api/tracks: move, rename and delete a track's file.

Mounted under the ``/api/tracks`` prefix beside the track routes. Each request
is answered when its operation has finished (see :mod:`taperoom.library.fileops`
for the order of steps, the locking and the decisions on destinations and
names). Fixes of the original: ``library_directory_id`` is a UUID (it demanded
an integer); unknown tracks are 404, bad bodies 400, conflicts 409 (the original
answered 500 to every failure).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from taperoom.library.api.deps import FileOperationsDep
from taperoom.library.api.wire import library_router
from taperoom.library.schemas import (
    DeleteFileBody,
    Envelope,
    FileDeletedPublic,
    FileOperationEnvelope,
    MoveBody,
    RenameBody,
    TrackPublic,
    ok,
)

router = library_router("/api/tracks", tag="file operations")


@router.post("/{track_id}/move", response_model=FileOperationEnvelope[TrackPublic])
def move(track_id: UUID, body: MoveBody, fileops: FileOperationsDep) -> dict[str, Any]:
    """``{success, data: track, message, operation, warning}``; 400, 404, 409."""
    result = fileops.move(
        str(track_id), body.destination_path,
        str(body.library_directory_id) if body.library_directory_id else None)
    message = ("Track moved successfully" if result["operation"]
               else "Track is already at this location")
    return ok(result["track"], message=message, operation=result["operation"],
              warning=result["warning"])


@router.post("/{track_id}/rename", response_model=FileOperationEnvelope[TrackPublic])
def rename(track_id: UUID, body: RenameBody, fileops: FileOperationsDep) -> dict[str, Any]:
    """``{success, data: track, message, operation, warning}``; 400, 404, 409."""
    result = fileops.rename(str(track_id), body.new_name)
    message = ("Track renamed successfully" if result["operation"]
               else "Track already has this name")
    return ok(result["track"], message=message, operation=result["operation"],
              warning=result["warning"])


@router.delete("/{track_id}/file", response_model=Envelope[FileDeletedPublic])
def delete_file(track_id: UUID, body: DeleteFileBody, fileops: FileOperationsDep
                ) -> dict[str, Any]:
    """``{success, data: {trackId, filePath, fileDeleted, ...}, message}``; 400, 404, 409."""
    result = fileops.delete(str(track_id), confirm=body.confirm)
    return ok(result, message="Track deleted successfully")
