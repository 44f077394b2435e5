"""Routes of /api/... for hot_cues (see contracts/library.md)."""

from __future__ import annotations

from fastapi import APIRouter

from taperoom.library.context import LibraryContext


def build_router(ctx: LibraryContext) -> APIRouter:
    """Router of the hot_cues routes."""
    return APIRouter()
