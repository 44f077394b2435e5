"""State of a running scan: strategies, counters, cancel flag and per-folder locks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from taperoom.errors import InvalidInput

#: Scan strategies, cheapest first.
STRATEGIES = ("fast", "hybrid", "full")


class ScanCancelled(Exception):
    """Raised inside a scan when its cancel flag is set (caught by the runner)."""


def validate_strategy(strategy: str) -> str:
    """Return `strategy` if it is one of :data:`STRATEGIES`, else raise InvalidInput."""
    if strategy not in STRATEGIES:
        raise InvalidInput(f"strategy must be one of {', '.join(STRATEGIES)}")
    return strategy


class ScanState:
    """Counters, phase and cancel flag of one running scan (read by the scan manager).

    Parameters
    ----------
    directory_id : str
    strategy : str
    progress : callable(dict), optional
        Called with every progress payload (the CLI draws its bar from it).
    """

    def __init__(self, directory_id: str, strategy: str,
                 progress: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.directory_id = directory_id
        self.strategy = strategy
        self.progress = progress
        self.cancel = threading.Event()
        self.phase = "queued"
        self.files_found = 0
        self.files_processed = 0
        self.tracks_added = 0
        self.tracks_updated = 0
        self.tracks_missing = 0
        self.tracks_moved = 0
        self.tracks_restored = 0
        self.errors: list[dict[str, str]] = []
        self.percent = 0.0
        self.started = time.monotonic()
        self.start_time_ms = int(time.time() * 1000)
        self._last_emit = 0.0

    def counters(self) -> dict[str, Any]:
        """Counters in the contract's camelCase names."""
        return {"filesFound": self.files_found, "filesProcessed": self.files_processed,
                "tracksAdded": self.tracks_added, "tracksUpdated": self.tracks_updated,
                "tracksMissing": self.tracks_missing, "tracksMoved": self.tracks_moved,
                "tracksRestored": self.tracks_restored}

    def result(self, *, cancelled: bool = False) -> dict[str, Any]:
        """The scan result object ``{strategy, filesFound, ..., errors, durationMs}``."""
        return {"strategy": self.strategy, **self.counters(), "errors": list(self.errors),
                "durationMs": int((time.monotonic() - self.started) * 1000),
                "cancelled": cancelled}


# --------------------------------------------------------------------------- locks


class FolderLocks:
    """The locks serialising scans and watcher updates of each library folder.

    One lock per folder id, made on first use. They hold within one process only;
    the scan runner owns one set, and everything that scans a folder goes
    through that runner.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def lock(self, directory_id: str) -> threading.Lock:
        """The lock of one folder."""
        with self._guard:
            lock = self._locks.get(directory_id)
            if lock is None:
                lock = self._locks[directory_id] = threading.Lock()
            return lock

    def busy(self, directory_id: str) -> bool:
        """Whether a scan or a watcher update holds the folder's lock now."""
        with self._guard:
            lock = self._locks.get(directory_id)
        return lock is not None and lock.locked()
