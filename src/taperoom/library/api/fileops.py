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

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from taperoom.library.context import LibraryContext
from taperoom.library.schemas import ok


class MoveBody(BaseModel):
    """Body of ``POST /:id/move``."""

    model_config = ConfigDict(extra="ignore")

    destination_path: str = Field(min_length=1, max_length=4096)
    library_directory_id: UUID | None = None


class RenameBody(BaseModel):
    """Body of ``POST /:id/rename``."""

    model_config = ConfigDict(extra="ignore")

    new_name: str = Field(min_length=1, max_length=1024)


class DeleteFileBody(BaseModel):
    """Body of ``DELETE /:id/file``: ``{"confirm": true}``."""

    model_config = ConfigDict(extra="ignore")

    confirm: StrictBool


def build_router(ctx: LibraryContext) -> APIRouter:
    """Router of ``POST /:id/move``, ``POST /:id/rename`` and ``DELETE /:id/file``."""
    r = APIRouter()

    @r.post("/{track_id}/move")
    def move(track_id: UUID, body: MoveBody) -> dict[str, Any]:
        result = ctx.fileops.move(
            str(track_id), body.destination_path,
            str(body.library_directory_id) if body.library_directory_id else None)
        message = ("Track moved successfully" if result["operation"]
                   else "Track is already at this location")
        return ok(result["track"], message=message, operation=result["operation"],
                  warning=result["warning"])

    @r.post("/{track_id}/rename")
    def rename(track_id: UUID, body: RenameBody) -> dict[str, Any]:
        result = ctx.fileops.rename(str(track_id), body.new_name)
        message = ("Track renamed successfully" if result["operation"]
                   else "Track already has this name")
        return ok(result["track"], message=message, operation=result["operation"],
                  warning=result["warning"])

    @r.delete("/{track_id}/file")
    def delete_file(track_id: UUID, body: DeleteFileBody) -> dict[str, Any]:
        result = ctx.fileops.delete(str(track_id), confirm=body.confirm)
        return ok(result, message="Track deleted successfully")

    return r
