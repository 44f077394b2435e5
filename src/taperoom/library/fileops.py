"""Safe file operations on tracks (placeholder)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from taperoom.library.context import LibraryContext


class FileOperations:
    """Move, rename and delete track files one at a time per file."""

    def __init__(self, ctx: LibraryContext) -> None:
        self.ctx = ctx

    def shutdown(self) -> None:
        """Finish queued operations."""
