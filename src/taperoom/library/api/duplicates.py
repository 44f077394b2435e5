"""Routes of /api/duplicates (contracts/library.md, "Duplicates").

Fixes of the original: group ids are integers and the routes take integers
(the original validated them as UUIDs, so every ``/:id`` route answered 400);
a path whose id is not a number is no group (404), so ``GET /scan`` is a 405;
``canonicalTrackId`` is a track UUID (the original demanded a number); unknown
groups are 404; the list always carries ``pagination.total``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Query

from taperoom.library.api.deps import DuplicateServiceDep
from taperoom.library.api.wire import library_router
from taperoom.library.duplicates import ResolveOptions
from taperoom.library.schemas import (
    MAX_PAGE,
    DuplicateGroupPublic,
    DuplicateScanPublic,
    DuplicateStatsPublic,
    Envelope,
    ResolveBody,
    ResolvePublic,
    ok,
    pagination,
)

router = library_router("/api/duplicates", tag="duplicates")


@router.get("", response_model=Envelope[list[DuplicateGroupPublic]])
@router.get("/", response_model=Envelope[list[DuplicateGroupPublic]], include_in_schema=False)
def list_groups(duplicates: DuplicateServiceDep, page: int = Query(1, ge=1, le=MAX_PAGE),
                limit: int = Query(50, ge=1, le=1000)) -> dict[str, Any]:
    """``{success, data: [group], pagination}``, largest groups first."""
    groups, total = duplicates.list_groups(page, limit)
    return ok(groups, pagination=pagination(page, limit, total))


@router.get("/stats", response_model=Envelope[DuplicateStatsPublic])
def stats(duplicates: DuplicateServiceDep) -> dict[str, Any]:
    """``{success, data: statistics}``."""
    return ok(duplicates.stats())


@router.post("/scan", response_model=Envelope[DuplicateScanPublic])
def scan(duplicates: DuplicateServiceDep) -> dict[str, Any]:
    """``{success, data, message: "Scan complete: N duplicate groups found"}``."""
    result = duplicates.scan()
    return ok(result, message=f"Scan complete: {result['totalGroups']} duplicate groups found")


# ``:int`` keeps "scan" and "stats" from being taken for group ids: ``GET /scan``
# is then a 405 (POST only), not a 400 for a malformed id
@router.get("/{group_id:int}", response_model=Envelope[DuplicateGroupPublic])
def get_group(group_id: int, duplicates: DuplicateServiceDep) -> dict[str, Any]:
    """``{success, data: group}``; 404."""
    return ok(duplicates.get_group(group_id))


@router.post("/{group_id:int}/resolve", response_model=Envelope[ResolvePublic])
def resolve(group_id: int, duplicates: DuplicateServiceDep,
            body: ResolveBody | None = None) -> dict[str, Any]:
    """``{success, data: resolution, message}``; 400, 404."""
    body = body or ResolveBody()
    options = ResolveOptions(
        canonical_track_id=str(body.canonicalTrackId) if body.canonicalTrackId else None,
        policy=body.policy,
        preferred_directory_id=(str(body.preferredDirectoryId)
                                if body.preferredDirectoryId else None),
        delete_files=body.deleteFiles, keep_metadata=body.keepMetadata,
        update_playlists=body.updatePlaylists)
    result = duplicates.resolve(group_id, options)
    return ok(result, message=f"Resolved duplicate group, kept track "
                              f"{result['canonicalTrackId']}")
