"""The scan manager: a priority queue of folder scans, progress, cancellation.

At most ``max_concurrent_scans`` scans run at once, each in a background
thread. Further requests wait in a queue (``high`` before ``normal`` before
``low``, first come first served within a priority), as rekordbox and Mixxx
users expect when they add several folders at once; only a second scan of a
folder that is already queued or scanning is refused (HTTP 409). A queued scan
shows in ``status`` and ``active`` with ``state: "queued"``.

Cancellation is cooperative: the scanner checks its flag between batches and
once per folder during the walk, so a cancelled scan stops within one batch,
with every finished batch saved; the folder's ``scan_status`` goes back to
``idle`` and the result has ``cancelled: true``.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.errors import Conflict, InvalidInput, NotFound
from taperoom.events import Event, EventBus, MediaPayload
from taperoom.library.repository import scan as repo
from taperoom.library.scanner.runner import Scanner
from taperoom.library.scanner.state import ScanState, validate_strategy
from taperoom.library.scanner.walk import root_available
from taperoom.library.schemas import directory_dict

log = logging.getLogger(__name__)

#: Queue order of the ``priority`` values.
PRIORITIES = {"high": 0, "normal": 1, "low": 2}


class ScanInProgress(Conflict):
    """A scan of this folder is already queued or running (HTTP 409).

    Attributes
    ----------
    scan_status : dict
        The running scan's status, sent as ``data`` of the 409 answer
        (``{"success": false, "error": "Scan already in progress", "data": ...}``).
    """

    def __init__(self, scan_status: dict[str, Any]) -> None:
        super().__init__("Scan already in progress")
        self.scan_status = scan_status

    def extra(self) -> dict[str, Any]:
        """``{"data": <the running scan's status>}`` beside the error message."""
        return {"data": self.scan_status}


class ScanQueue(Protocol):
    """What the routes, the CLI, the directory service and the watcher use of the scan
    manager (:class:`ScanManager` implements it)."""

    def start(self, directory_id: str, strategy: str = "hybrid",
              priority: str = "normal") -> dict[str, Any]: ...

    def scan_sync(self, directory_id: str, strategy: str = "hybrid",
                  progress: Callable[[dict[str, Any]], None] | None = None
                  ) -> dict[str, Any]: ...

    def status(self, directory_id: str) -> dict[str, Any]: ...

    def active(self) -> list[dict[str, Any]]: ...

    def is_scanning(self, directory_id: str) -> bool: ...

    def wait(self, directory_id: str, timeout: float | None = None
             ) -> dict[str, Any] | None: ...

    def cancel(self, directory_id: str) -> None: ...

    def start_all_available(self) -> None: ...

    def shutdown(self, timeout: float = 10.0) -> None: ...


@dataclass
class _Job:
    directory_id: str
    strategy: str
    priority: str
    directory: dict[str, Any]
    state: ScanState
    seq: int
    queued_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    running: bool = False
    done: threading.Event = field(default_factory=threading.Event)

    def info(self) -> dict[str, Any]:
        st = self.state
        c = st.counters()
        state = ("cancelling" if st.cancel.is_set()
                 else "running" if self.running else "queued")
        return {
            "scanning": True, "libraryDirectoryId": self.directory_id,
            "directory": self.directory, "strategy": self.strategy,
            "startTime": st.start_time_ms if self.running else self.queued_ms,
            "filesFound": c["filesFound"], "filesProcessed": c["filesProcessed"],
            "tracksAdded": c["tracksAdded"], "tracksUpdated": c["tracksUpdated"],
            "errors": list(st.errors),
            "state": state, "priority": self.priority, "phase": st.phase,
            "percent": st.percent, "tracksMissing": c["tracksMissing"],
            "tracksMoved": c["tracksMoved"], "tracksRestored": c["tracksRestored"],
        }


class ScanManager:
    """Runs scans of library folders in background threads.

    A folder whose drive disappears (``library:media:disconnected``) has its scan
    cancelled.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    bus : EventBus
        The manager listens for ``library:media:disconnected``.
    scanner : Scanner
        Runs each scan.
    refusal : callable(Path) -> str or None
        The folder policy (:meth:`~taperoom.library.folderpolicy.FolderPolicy.refusal`):
        a refused folder (a row an older version accepted) is not scanned.
    max_concurrent : int
        Scans running at once (``MAX_CONCURRENT_SCANS``).
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus, scanner: Scanner, *,
                 refusal: Callable[[Path], str | None], max_concurrent: int) -> None:
        self.db = db
        self.scanner = scanner
        self.refusal = refusal
        self.max_concurrent = max_concurrent
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._queue: list[tuple[int, int, str]] = []
        self._seq = itertools.count()
        self._running = 0
        self._threads: list[threading.Thread] = []
        self._last: dict[str, dict[str, Any]] = {}
        self._closed = False
        try:
            with transaction(db) as session:
                repo.reset_stale_scan_status(session)
        except Exception:
            log.exception("could not reset stale scan states")
        self._unsubscribe = bus.on(Event.MEDIA_DISCONNECTED, self._on_disconnected)

    def _on_disconnected(self, data: MediaPayload) -> None:
        """A folder's drive is gone: drop or stop its scan."""
        if self.is_scanning(data["directoryId"]):
            log.info("cancelling the scan of %s: its drive is gone", data["path"])
            with contextlib.suppress(NotFound):  # it may have ended meanwhile
                self.cancel(data["directoryId"])

    # ---------------------------------------------------------------- requests

    def _check(self, directory_id: str, strategy: str, priority: str) -> dict[str, Any]:
        validate_strategy(strategy)
        if priority not in PRIORITIES:
            raise InvalidInput("priority must be one of low, normal, high")
        with self.db() as session:
            directory = repo.get_directory(session, directory_id)
            if directory is None:
                raise NotFound("Library directory not found")
            if not directory.is_active:
                raise Conflict("Library directory is not active")
            refused = self.refusal(Path(directory.path))
            if refused is not None:  # a row from before the folder policy
                raise Conflict(refused)
            if not directory.is_available or not root_available(directory.path):
                raise Conflict("Library directory is not available")
            return directory_dict(directory)

    def _register(self, directory_id: str, strategy: str, priority: str,
                  directory: dict[str, Any],
                  progress: Callable[[dict[str, Any]], None] | None) -> _Job:
        """Add a job for the folder (caller holds the lock)."""
        if self._closed:
            raise Conflict("The scan manager is shut down")
        existing = self._jobs.get(directory_id)
        if existing is not None:
            raise ScanInProgress(existing.info())
        job = _Job(directory_id, strategy, priority, directory,
                   ScanState(directory_id, strategy, progress), next(self._seq))
        self._jobs[directory_id] = job
        return job

    def start(self, directory_id: str, strategy: str = "hybrid",
              priority: str = "normal") -> dict[str, Any]:
        """Queue a scan of one library folder; it starts as soon as a slot is free.

        Parameters
        ----------
        directory_id : str
        strategy : {"hybrid", "fast", "full"}
        priority : {"low", "normal", "high"}
            Queue order when more scans are requested than may run at once.

        Returns
        -------
        dict
            ``{"libraryDirectoryId", "strategy"}``.

        Raises
        ------
        InvalidInput
            Unknown strategy or priority.
        NotFound
            No such folder.
        Conflict
            The folder is inactive, unavailable, or refused by the folder policy
            (:mod:`taperoom.library.folderpolicy`; a row an older version accepted).
        ScanInProgress
            The folder is already queued or scanning.
        """
        directory = self._check(directory_id, strategy, priority)
        with self._lock:
            job = self._register(directory_id, strategy, priority, directory, None)
            heapq.heappush(self._queue, (PRIORITIES[priority], job.seq, directory_id))
            if self._running < self.max_concurrent:
                self._running += 1
                thread = threading.Thread(target=self._worker, name="library-scan", daemon=True)
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
                thread.start()
        return {"libraryDirectoryId": directory_id, "strategy": strategy}

    def scan_sync(self, directory_id: str, strategy: str = "hybrid",
                  progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Scan a folder in the calling thread (CLI, benchmarks, tests).

        The scan is visible in :meth:`status`/:meth:`active` and can be cancelled
        like a background one; it does not count against the concurrency limit.

        Parameters
        ----------
        directory_id : str
        strategy : {"hybrid", "fast", "full"}
        progress : callable(dict), optional
            Receives each progress payload ``{directoryId, phase, filesFound,
            filesProcessed, tracksAdded, tracksUpdated, ..., percent}``.

        Returns
        -------
        dict
            The scan result (see :meth:`taperoom.library.scanner.runner.Scanner.scan`).

        Raises
        ------
        As :meth:`start`, plus Conflict when the folder is not reachable.
        """
        directory = self._check(directory_id, strategy, "normal")
        with self._lock:
            job = self._register(directory_id, strategy, "normal", directory, progress)
            job.running = True
        try:
            result = self.scanner.scan(directory_id, strategy, state=job.state)
        finally:
            with self._lock:
                self._jobs.pop(directory_id, None)
            job.done.set()
        with self._lock:
            self._last[directory_id] = result
        return result

    # ---------------------------------------------------------------- worker

    def _worker(self) -> None:
        while True:
            with self._lock:
                job = None
                while self._queue and not self._closed:
                    _prio, seq, directory_id = heapq.heappop(self._queue)
                    candidate = self._jobs.get(directory_id)
                    if candidate is not None and candidate.seq == seq and not candidate.running:
                        job = candidate
                        break
                if job is None:
                    self._running -= 1
                    return
                job.running = True
            self._run(job)

    def _run(self, job: _Job) -> None:
        result: dict[str, Any]
        try:
            if job.state.cancel.is_set():
                result = job.state.result(cancelled=True)
            else:
                result = self.scanner.scan(job.directory_id, job.strategy, state=job.state)
        except Exception as exc:  # a failed scan is logged and reported, never fatal
            log.warning("scan of library directory %s failed: %s", job.directory_id, exc)
            result = job.state.result() | {"error": str(exc)}
        with self._lock:
            self._jobs.pop(job.directory_id, None)
            self._last[job.directory_id] = result
        job.done.set()

    # ---------------------------------------------------------------- queries

    def status(self, directory_id: str) -> dict[str, Any]:
        """Scan status of a folder, as ``GET /api/scan/library/:id/status`` answers it.

        Returns
        -------
        dict
            ``{"scanning": false}`` (plus ``lastResult`` when this process has
            scanned the folder) or ``{"scanning": true, "libraryDirectoryId",
            "directory", "strategy", "startTime" (ms since the epoch),
            "filesFound", "filesProcessed", "tracksAdded", "tracksUpdated",
            "errors", "state" (queued | running | cancelling), "priority",
            "phase", "percent", ...}``.
        """
        with self._lock:
            job = self._jobs.get(directory_id)
            if job is not None:
                return job.info()
            last = self._last.get(directory_id)
        out: dict[str, Any] = {"scanning": False}
        if last is not None:
            out["lastResult"] = last
        return out

    def active(self) -> list[dict[str, Any]]:
        """Status of every queued or running scan (running first, then queue order)."""
        with self._lock:
            jobs = sorted(self._jobs.values(),
                          key=lambda j: (not j.running, PRIORITIES[j.priority], j.seq))
            return [j.info() for j in jobs]

    def is_scanning(self, directory_id: str) -> bool:
        """Whether a scan of the folder is queued or running."""
        with self._lock:
            return directory_id in self._jobs

    def wait(self, directory_id: str, timeout: float | None = None) -> dict[str, Any] | None:
        """Wait until the folder's current scan ends; returns its result (None if none ran).

        Parameters
        ----------
        timeout : float, optional
            Seconds; None waits without limit.
        """
        with self._lock:
            job = self._jobs.get(directory_id)
        if job is not None and not job.done.wait(timeout):
            return None
        with self._lock:
            return self._last.get(directory_id)

    # ---------------------------------------------------------------- control

    def cancel(self, directory_id: str) -> None:
        """Cancel the folder's scan: a queued one is dropped, a running one stops soon.

        Raises
        ------
        NotFound
            ``No active scan found``.
        """
        with self._lock:
            job = self._jobs.get(directory_id)
            if job is None:
                raise NotFound("No active scan found")
            job.state.cancel.set()
            if not job.running:
                self._jobs.pop(directory_id, None)
                self._last[directory_id] = job.state.result(cancelled=True)
                job.done.set()

    def start_all_available(self) -> None:
        """Queue a ``hybrid`` scan (priority low) of every active, available folder.

        Folders already scanning are skipped; a folder whose path is gone is not
        scanned (the watcher's availability check marks it unavailable).
        """
        with self.db() as session:
            ids = [(d.id, d.path) for d in repo.active_directories(session, available=True)]
        for directory_id, path in ids:
            if not root_available(path):
                continue
            try:
                self.start(directory_id, "hybrid", "low")
            except Conflict:
                continue

    def shutdown(self, timeout: float = 10.0) -> None:
        """Drop queued scans, cancel running ones and wait for their threads."""
        self._unsubscribe()
        with self._lock:
            self._closed = True
            for job in self._jobs.values():
                job.state.cancel.set()
            self._queue.clear()
            for directory_id in [d for d, j in self._jobs.items() if not j.running]:
                self._jobs.pop(directory_id)
            threads = list(self._threads)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
