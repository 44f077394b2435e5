"""Scan orchestration: start, progress, cancel, concurrency limit (placeholder)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taperoom.library.context import LibraryContext


class ScanManager:
    """Runs scans of library folders in background threads."""

    def __init__(self, ctx: LibraryContext) -> None:
        self.ctx = ctx

    def start(self, directory_id: str, strategy: str = "hybrid") -> dict[str, Any]:
        """Start a scan of one library folder."""
        raise NotImplementedError

    def start_all_available(self) -> None:
        """Start a hybrid scan of every active, available library folder."""

    def shutdown(self) -> None:
        """Cancel running scans and wait for their threads."""
