"""Routes of /api/duplicates (contracts/library.md, "Duplicates").

Fixes of the original: group ids are integers and the routes take integers
(the original validated them as UUIDs, so every ``/:id`` route answered 400);
a path whose id is not a number is no group (404), so ``GET /scan`` is a 405;
``canonicalTrackId`` is a track UUID (the original demanded a number); unknown
groups are 404; the list always carries ``pagination.total``.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, StrictBool

from taperoom.library import duplicates
from taperoom.library.context import LibraryContext
from taperoom.library.schemas import MAX_PAGE, ok, pagination


class ResolveBody(BaseModel):
    """Body of ``POST /:id/resolve`` (every field optional)."""

    model_config = ConfigDict(extra="ignore")

    canonicalTrackId: UUID | None = None
    policy: Literal["quality", "location", "oldest", "newest", "most_played"] = "quality"
    preferredDirectoryId: UUID | None = None
    deleteFiles: StrictBool = False
    keepMetadata: StrictBool = True
    updatePlaylists: StrictBool = True


def build_router(ctx: LibraryContext) -> APIRouter:
    """Router of ``/api/duplicates``: list, stats, scan, one group, resolve."""
    r = APIRouter()

    @r.get("")
    @r.get("/", include_in_schema=False)
    def list_groups(page: int = Query(1, ge=1, le=MAX_PAGE),
                    limit: int = Query(50, ge=1, le=1000)) -> dict[str, Any]:
        groups, total = duplicates.list_groups(ctx, page, limit)
        return ok(groups, pagination=pagination(page, limit, total))

    @r.get("/stats")
    def stats() -> dict[str, Any]:
        return ok(duplicates.stats(ctx))

    @r.post("/scan")
    def scan() -> dict[str, Any]:
        result = duplicates.scan(ctx)
        return ok(result, message=f"Scan complete: {result['totalGroups']} duplicate groups "
                                  "found")

    # ``:int`` keeps "scan" and "stats" from being taken for group ids: ``GET /scan``
    # is then a 405 (POST only), not a 400 for a malformed id
    @r.get("/{group_id:int}")
    def get_group(group_id: int) -> dict[str, Any]:
        return ok(duplicates.get_group(ctx, group_id))

    @r.post("/{group_id:int}/resolve")
    def resolve(group_id: int, body: ResolveBody | None = None) -> dict[str, Any]:
        body = body or ResolveBody()
        options = duplicates.ResolveOptions(
            canonical_track_id=str(body.canonicalTrackId) if body.canonicalTrackId else None,
            policy=body.policy,
            preferred_directory_id=(str(body.preferredDirectoryId)
                                    if body.preferredDirectoryId else None),
            delete_files=body.deleteFiles, keep_metadata=body.keepMetadata,
            update_playlists=body.updatePlaylists)
        result = duplicates.resolve(ctx, group_id, options)
        return ok(result, message=f"Resolved duplicate group, kept track "
                                  f"{result['canonicalTrackId']}")

    return r
