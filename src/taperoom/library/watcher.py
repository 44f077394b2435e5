"""File watching of library folders (placeholder)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from taperoom.library.context import LibraryContext


class LibraryWatcher:
    """Watches library folders for changes and removable drives for (dis)appearance."""

    def __init__(self, ctx: LibraryContext) -> None:
        self.ctx = ctx

    def start_all(self) -> None:
        """Watch every active library folder."""

    def stop(self) -> None:
        """Stop every watch."""
