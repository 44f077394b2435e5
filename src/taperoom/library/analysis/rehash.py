"""Queued jobs that follow their track to new audio.

A job analyses a recording, named by its audio hash. When a rescan finds that a
file's audio changed (``track:updated`` with a new ``file_hash`` and the analysis
cleared), a job still waiting for the old hash would analyse nothing (no track has
that audio any more) and fail; it moves to the new hash instead, with its
priority, options and origin. When other tracks still have the old audio, its job
stays for them and the changed track gets a job of its own at the same priority.
A job already running is left to end as it does.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.errors import NotFound
from taperoom.events import Event, EventBus
from taperoom.library.analysis.naming import KIND
from taperoom.library.analysis.queueing import AnalysisQueueing
from taperoom.library.jobqueue import JobQueue
from taperoom.library.repository import analysis as repo
from taperoom.library.schemas import AnalysisOptions

__all__ = ["JobMover"]

log = logging.getLogger(__name__)


class JobMover:
    """Moves the waiting jobs of a track whose audio changed to its new audio hash.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    bus : EventBus
        Carries ``track:updated``.
    jobs : JobQueue
        The job layer.
    queueing : AnalysisQueueing
        Queues the moved jobs.
    reacts : callable() -> bool
        Whether this process reacts to scan events (the leader, or a command that
        never leads).
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus, jobs: JobQueue,
                 queueing: AnalysisQueueing, *, reacts: Callable[[], bool]) -> None:
        self.db = db
        self.bus = bus
        self.jobs = jobs
        self.queueing = queueing
        self.reacts = reacts

    def subscribe(self) -> Callable[[], None]:
        """Listen for ``track:updated``; returns the function that stops it."""
        return self.bus.on(Event.TRACK_UPDATED, self._on_track_updated)

    def _on_track_updated(self, data: dict[str, Any]) -> None:
        changes = data.get("changes") or {}
        if not isinstance(changes, dict):
            return  # the names of the fields a logged play changed
        new_hash = changes.get("file_hash")
        if not (new_hash and "date_analyzed" in changes and changes["date_analyzed"] is None
                and self.reacts()):
            return  # not a new audio (a scan clears the analysis of new audio only)
        try:
            self.follow(str(data.get("trackId")), str(new_hash))
        except Exception:
            log.exception("could not move the analysis of track %s to its new audio",
                          data.get("trackId"))

    def follow(self, track_id: str, new_hash: str) -> int:
        """Move the waiting jobs that `track_id` asked for to `new_hash`, its audio now.

        Returns
        -------
        int
            Jobs moved (or copied, when other tracks keep the old audio).
        """
        with self.db() as s:
            rows = [(r.job_id, dict(r.options or {}), r.callback_metadata)
                    for r in repo.active_rows(s, track_id=track_id) if r.job_id != new_hash]
            kept = {h: bool(repo.tracks_with_hash(s, h)) for h, _, _ in rows}
        moved = 0
        for old_hash, options, metadata in rows:
            job = self.jobs.active(KIND, old_hash)
            if job is None or job.state != "queued":
                continue
            if not kept[old_hash]:
                with contextlib.suppress(NotFound):  # started or ended in between
                    self.jobs.cancel(KIND, old_hash)
                with transaction(self.db) as s:
                    repo.end_active_rows(s, old_hash, "cancelled", error=(
                        f"The file's audio changed: the analysis moved to {new_hash}"))
            self.queueing.queue(track_id, new_hash, job.priority,
                                AnalysisOptions.model_validate(options),
                                source=str(job.params.get("source") or "request"),
                                force=bool(job.params.get("force")),
                                quick=bool(job.params.get("quick")), metadata=metadata)
            log.info("analysis of track %s moved from %s to its new audio %s", track_id,
                     old_hash, new_hash)
            moved += 1
        return moved
