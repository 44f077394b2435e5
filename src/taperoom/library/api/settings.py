"""Routes of /api/... for settings (see contracts/library.md)."""

from __future__ import annotations

from fastapi import APIRouter

from taperoom.library.context import LibraryContext


def build_router(ctx: LibraryContext) -> APIRouter:
    """Router of the settings routes."""
    return APIRouter()
