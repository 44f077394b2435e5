"""The automatic analysis of new tracks (``ANALYZE_ON_SCAN``): queued at ``low`` priority
after a scan of their folder, when the watcher or ``POST /api/tracks`` adds them, when a
scan finds their audio changed, and for the whole library at start-up."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from taperoom.errors import TaperoomError
from taperoom.events import Event, EventBus
from taperoom.jobs import Priority
from taperoom.library.analysis.queueing import AnalysisQueueing
from taperoom.library.repository import analysis as repo
from taperoom.library.schemas import AnalysisOptions

__all__ = ["AutoQueue"]

log = logging.getLogger(__name__)


class AutoQueue:
    """Queues the analysis of the tracks that lack one, reacting to the library's events.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    bus : EventBus
        Carries ``library:directory:scan:*``, ``track:added`` and ``track:updated``.
    queueing : AnalysisQueueing
        Puts the jobs in the queue.
    analyze_on_scan : bool
        ``ANALYZE_ON_SCAN``: whether to queue new tracks at all.
    reacts : callable() -> bool
        Whether this process reacts to scan events (the leader, or a command that
        never leads), so that the workers of one server do not all queue the
        same tracks.
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus, queueing: AnalysisQueueing,
                 *, analyze_on_scan: bool, reacts: Callable[[], bool]) -> None:
        self.db = db
        self.bus = bus
        self.queueing = queueing
        self.analyze_on_scan = analyze_on_scan
        self.reacts = reacts
        self._scanning: set[str] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analysis-auto")

    def subscribe(self) -> list[Callable[[], None]]:
        """Listen for the events; returns the functions that stop it."""
        return [self.bus.on(Event.SCAN_STARTED, self._on_scan_started),
                self.bus.on(Event.SCAN_COMPLETE, self._on_scan_complete),
                self.bus.on(Event.TRACK_ADDED, self._on_track_added),
                self.bus.on(Event.TRACK_UPDATED, self._on_track_updated)]

    def _wanted(self) -> bool:
        return self.analyze_on_scan and self.reacts()

    def _on_scan_started(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._scanning.add(str(data.get("directoryId")))

    def _on_scan_complete(self, data: dict[str, Any]) -> None:
        directory_id = str(data.get("directoryId"))
        with self._lock:
            self._scanning.discard(directory_id)
        if self._wanted():
            self._pool.submit(self._queue_quietly, directory_id)

    def _on_track_added(self, data: dict[str, Any]) -> None:
        """A track the watcher or ``POST /api/tracks`` added (a scan's own are queued
        together when it completes)."""
        if not self._wanted():
            return
        track = data.get("track") or {}
        with self._lock:
            if str(track.get("library_directory_id")) in self._scanning:
                return
        self._pool.submit(self._queue_quietly, None, [str(data.get("trackId"))])

    def _on_track_updated(self, data: dict[str, Any]) -> None:
        """A track whose analysis a scan cleared (``track:updated`` with ``date_analyzed``
        null: its file has new audio) is analysed again, like a new track: at once when
        the watcher found it, with the rest of its folder when a scan of the folder
        completes."""
        changes = data.get("changes") or {}
        if not ("date_analyzed" in changes and changes["date_analyzed"] is None
                and self._wanted()):
            return
        self._pool.submit(self._requeue_quietly, str(data.get("trackId")))

    def _requeue_quietly(self, track_id: str) -> None:
        try:
            with self.db() as s:
                track = repo.get_track(s, track_id)
                directory_id = track.library_directory_id if track is not None else None
        except Exception:
            log.exception("could not read track %s", track_id)
            return
        with self._lock:
            if directory_id is not None and str(directory_id) in self._scanning:
                return
        self._queue_quietly(None, [track_id])

    def _queue_quietly(self, directory_id: str | None,
                       track_ids: list[str] | None = None) -> None:
        try:
            self.queue_unanalysed(directory_id=directory_id, track_ids=track_ids)
        except Exception:
            log.exception("could not queue the analysis of new tracks")

    def queue_unanalysed(self, *, directory_id: str | None = None,
                         track_ids: Iterable[str] | None = None) -> int:
        """Queue at ``low`` priority every present track lacking an analysis
        (``date_analyzed``, ``bpm`` or ``musical_key`` unknown), of one folder or
        all (contract §0: the original did so 5 s after start-up).

        Returns
        -------
        int
            Jobs queued now (a hash already queued or running counts not).
        """
        with self.db() as s:
            chosen = repo.track_hashes(s, directory_id=directory_id, unanalysed=True,
                                       track_ids=list(track_ids) if track_ids else None)
        queued = 0
        seen: set[str] = set()
        for track_id, file_hash in chosen:
            if not file_hash or file_hash in seen:
                continue
            seen.add(file_hash)
            try:
                _, new = self.queueing.queue(track_id, file_hash, Priority.LOW,
                                             AnalysisOptions(), source="auto")
            except TaperoomError as exc:
                log.warning("could not queue the analysis of track %s: %s", track_id, exc)
                continue
            queued += new
        if queued:
            log.info("queued the analysis of %d new track(s)", queued)
        return queued

    def queue_unanalysed_in_background(self) -> None:
        """:meth:`queue_unanalysed` of the whole library in a thread (a leader duty at
        start-up when ``ANALYZE_ON_SCAN`` is on)."""
        if self.analyze_on_scan:
            self._pool.submit(self._queue_quietly, None)

    def close(self) -> None:
        """Finish queueing (what waits is dropped)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
