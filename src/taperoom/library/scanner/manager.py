"""The scan manager: folder scans as jobs of the job layer, with priority, progress, cancel.

A scan request becomes a ``scan`` job of :class:`~taperoom.library.jobqueue.JobQueue`
(a Huey task plus a row of ``library_jobs``), so every worker process can
queue, list and cancel scans, and the leader process runs them. At most
``max_concurrent_scans`` scans run at once (the consumer threads of the scan
queue). Further requests wait in the queue (``high`` before ``normal`` before
``low``, first come first served within a priority), as rekordbox and Mixxx
users expect when they add several folders at once; only a second scan of a
folder that is already queued or scanning is refused (HTTP 409), whichever
process each request reached. A queued scan shows in ``status`` and ``active``
with ``state: "queued"``.

Cancellation is cooperative: the scanner checks its flag between batches and
once per folder during the walk, so a cancelled scan stops within one batch,
with every finished batch saved; the folder's ``scan_status`` goes back to
``idle`` and the result has ``cancelled: true``. A scan running in another
process sees the request within one poll of the job layer.

Progress: the running scan sends its ``library:directory:scan:*`` events and
writes its counters to its job row, from which every process answers
``GET /api/scan/...``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.errors import Conflict, InvalidInput, NotFound
from taperoom.events import Event, EventBus, MediaPayload
from taperoom.jobs import Priority
from taperoom.library.jobqueue import JobExists, JobInfo, JobQueue, JobRun
from taperoom.library.repository import scan as repo
from taperoom.library.scanner.runner import Scanner
from taperoom.library.scanner.state import ScanState, validate_strategy
from taperoom.library.scanner.walk import root_available
from taperoom.library.schemas import directory_dict

log = logging.getLogger(__name__)

#: The ``priority`` values of a scan request and their job priorities.
PRIORITIES = {"low": Priority.LOW, "normal": Priority.NORMAL, "high": Priority.HIGH}
#: Job kind of folder scans in the job layer.
KIND = "scan"


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


def _priority_name(value: int) -> str:
    try:
        return Priority(value).name.lower()
    except ValueError:
        return str(value)


def _ms(when: datetime) -> int:
    return int(when.replace(tzinfo=UTC).timestamp() * 1000)


def _snapshot(state: ScanState) -> dict[str, Any]:
    """What a running scan writes to its job row (read back by :func:`scan_info`)."""
    return {**state.counters(), "errors": list(state.errors), "phase": state.phase,
            "percent": state.percent, "startTime": state.start_time_ms}


def scan_info(job: JobInfo) -> dict[str, Any]:
    """The contract's scan status of a queued or running scan job.

    Returns
    -------
    dict
        ``{scanning: true, libraryDirectoryId, directory, strategy, startTime (ms
        since the epoch: when it started, or was queued), filesFound,
        filesProcessed, tracksAdded, tracksUpdated, errors, state (queued |
        running | cancelling), priority, phase, percent, tracksMissing,
        tracksMoved, tracksRestored}``.
    """
    p = job.progress or {}
    running = job.state == "running"
    state = "cancelling" if job.cancel_requested else "running" if running else "queued"
    start = p.get("startTime") if running else None
    if start is None:
        start = _ms(job.started_at if running and job.started_at else job.created_at)
    return {
        "scanning": True, "libraryDirectoryId": job.subject,
        "directory": job.params.get("directory"), "strategy": job.params.get("strategy"),
        "startTime": int(start),
        "filesFound": p.get("filesFound", 0), "filesProcessed": p.get("filesProcessed", 0),
        "tracksAdded": p.get("tracksAdded", 0), "tracksUpdated": p.get("tracksUpdated", 0),
        "errors": list(p.get("errors", [])),
        "state": state, "priority": _priority_name(job.priority),
        "phase": p.get("phase", "queued" if not running else "walk"),
        "percent": p.get("percent", 0.0), "tracksMissing": p.get("tracksMissing", 0),
        "tracksMoved": p.get("tracksMoved", 0), "tracksRestored": p.get("tracksRestored", 0),
    }


def _cancelled_result(job: JobInfo) -> dict[str, Any]:
    """The result of a scan cancelled before it started."""
    return ScanState(job.subject, str(job.params.get("strategy", "hybrid"))).result(
        cancelled=True) | {"durationMs": 0}


class ScanManager:
    """Queues scans of library folders on the job layer and runs them (in the leader).

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
    jobs : JobQueue
        The job layer; the manager registers the ``scan`` kind on it.
    refusal : callable(Path) -> str or None
        The folder policy (:meth:`~taperoom.library.folderpolicy.FolderPolicy.refusal`):
        a refused folder (a row an older version accepted) is not scanned.
    max_concurrent : int
        Scans running at once (``MAX_CONCURRENT_SCANS``).
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus, scanner: Scanner,
                 jobs: JobQueue, *, refusal: Callable[[Path], str | None],
                 max_concurrent: int) -> None:
        self.db = db
        self.scanner = scanner
        self.jobs = jobs
        self.refusal = refusal
        self.max_concurrent = max_concurrent
        jobs.register(KIND, self._run_job, concurrency=max_concurrent,
                      cancelled_result=_cancelled_result)
        self._unsubscribe = bus.on(Event.MEDIA_DISCONNECTED, self._on_disconnected)

    def _on_disconnected(self, data: MediaPayload) -> None:
        """A folder's drive is gone: drop or stop its scan."""
        if self.is_scanning(data["directoryId"]):
            log.info("cancelling the scan of %s: its drive is gone", data["path"])
            with contextlib.suppress(NotFound):  # it may have ended meanwhile
                self.cancel(data["directoryId"])

    def reset_stale_status(self) -> None:
        """Set ``scan_status`` back to ``idle`` on folders that no live process scans
        (a process died mid-scan); the leader calls it when it takes over."""
        try:
            scanning = {j.subject for j in self.jobs.active_jobs(KIND) if j.state == "running"}
            with transaction(self.db) as session:
                repo.reset_stale_scan_status(session, keep=scanning)
        except Exception:
            log.exception("could not reset stale scan states")

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
            The folder is already queued or scanning (by any process).
        """
        directory = self._check(directory_id, strategy, priority)
        try:
            self.jobs.submit(KIND, directory_id, priority=PRIORITIES[priority],
                             params={"strategy": strategy, "directory": directory})
        except JobExists as exc:
            raise ScanInProgress(scan_info(exc.job)) from None
        return {"libraryDirectoryId": directory_id, "strategy": strategy}

    def scan_sync(self, directory_id: str, strategy: str = "hybrid",
                  progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Scan a folder in the calling thread (CLI, benchmarks, tests).

        The scan is visible in :meth:`status`/:meth:`active` of every process and
        can be cancelled like a queued one; it does not count against the
        concurrency limit.

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

        def handler(run: JobRun) -> dict[str, Any]:
            return self._scan(run, directory_id, strategy, progress)

        try:
            return self.jobs.run_here(KIND, directory_id, handler=handler,
                                      params={"strategy": strategy, "directory": directory})
        except JobExists as exc:
            raise ScanInProgress(scan_info(exc.job)) from None

    # ---------------------------------------------------------------- running

    def _scan(self, run: JobRun, directory_id: str, strategy: str,
              progress: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
        def report(payload: dict[str, Any]) -> None:
            run.report(_snapshot(state))
            if progress is not None:
                progress(payload)

        state = ScanState(directory_id, strategy, report)
        state.cancel = run.cancelled
        run.report(_snapshot(state))
        return self.scanner.scan(directory_id, strategy, state=state)

    def _run_job(self, run: JobRun) -> dict[str, Any]:
        """Handler of ``scan`` jobs (a consumer thread of the leader)."""
        strategy = str(run.info.params.get("strategy", "hybrid"))
        try:
            return self._scan(run, run.info.subject, strategy, None)
        except Exception as exc:  # a failed scan is logged and reported, never fatal
            log.warning("scan of library directory %s failed: %s", run.info.subject, exc)
            latest = run.latest() or {}
            return ({k: latest.get(k, 0) for k in (
                "filesFound", "filesProcessed", "tracksAdded", "tracksUpdated",
                "tracksMissing", "tracksMoved", "tracksRestored")}
                | {"strategy": strategy, "errors": list(latest.get("errors", [])),
                   "durationMs": 0, "cancelled": False, "error": str(exc)})

    # ---------------------------------------------------------------- queries

    def status(self, directory_id: str) -> dict[str, Any]:
        """Scan status of a folder, as ``GET /api/scan/library/:id/status`` answers it.

        Returns
        -------
        dict
            ``{"scanning": false}`` (plus ``lastResult`` when the folder has been
            scanned) or the status of its queued or running scan (:func:`scan_info`).
        """
        job = self.jobs.active(KIND, directory_id)
        if job is not None:
            return scan_info(job)
        out: dict[str, Any] = {"scanning": False}
        last = self.jobs.last_finished(KIND, directory_id)
        if last is not None and last.result is not None:
            out["lastResult"] = last.result
        return out

    def active(self) -> list[dict[str, Any]]:
        """Status of every queued or running scan (running first, then queue order)."""
        return [scan_info(j) for j in self.jobs.active_jobs(KIND)]

    def is_scanning(self, directory_id: str) -> bool:
        """Whether a scan of the folder is queued or running."""
        return self.jobs.active(KIND, directory_id) is not None

    def wait(self, directory_id: str, timeout: float | None = None) -> dict[str, Any] | None:
        """Wait until the folder's current scan ends; returns its result (None if none ran
        or the wait timed out).

        Parameters
        ----------
        timeout : float, optional
            Seconds; None waits without limit.
        """
        if not self.jobs.wait(KIND, directory_id, timeout):
            return None
        last = self.jobs.last_finished(KIND, directory_id)
        return last.result if last is not None else None

    # ---------------------------------------------------------------- control

    def cancel(self, directory_id: str) -> None:
        """Cancel the folder's scan: a queued one is dropped, a running one stops soon.

        Raises
        ------
        NotFound
            ``No active scan found``.
        """
        try:
            self.jobs.cancel(KIND, directory_id)
        except NotFound:
            raise NotFound("No active scan found") from None

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
        """Stop reacting to events (the job layer stops the running scans)."""
        self._unsubscribe()
