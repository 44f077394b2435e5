"""State of a running scan: strategies, counters, cancel flag and per-folder locks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from taperoom.errors import InvalidInput
from taperoom.fslock import KeyLocks

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

    One key per folder id in a :class:`~taperoom.fslock.KeyLocks` file, so they
    hold across the worker processes (a scan of the ``taperoom library scan``
    command, the leader's scans and its watcher), and a process that dies
    releases its folders.

    Parameters
    ----------
    locks : KeyLocks
        The lock file of the library's folders (``DATA_DIR/locks/folders.lock``).
    """

    def __init__(self, locks: KeyLocks) -> None:
        self._locks = locks

    @staticmethod
    def _key(directory_id: str) -> str:
        return f"folder:{directory_id}"

    def lock(self, directory_id: str) -> AbstractContextManager[None]:
        """The lock of one folder, to hold with ``with`` (waits as long as it takes)."""
        return self._locks.hold(self._key(directory_id))

    def busy(self, directory_id: str) -> bool:
        """Whether a scan or a watcher update holds (or waits for) the folder's lock now."""
        return self._locks.busy(self._key(directory_id))
