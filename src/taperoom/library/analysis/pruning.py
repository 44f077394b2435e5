"""Upkeep of the ``analysis_jobs`` rows by the leader: rows that a dead process left
``processing`` set right, and old ended rows deleted (``ANALYSIS_JOBS_KEEP_DAYS``)."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.library.analysis.naming import KIND
from taperoom.library.jobqueue import JobQueue
from taperoom.library.models import utcnow
from taperoom.library.repository import analysis as repo

__all__ = ["JobRowUpkeep"]

log = logging.getLogger(__name__)


class JobRowUpkeep:
    """Keeps the ``analysis_jobs`` rows true and few.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    jobs : JobQueue
        The job layer, whose state the rows must say.
    keep_days : float
        ``ANALYSIS_JOBS_KEEP_DAYS``: days an ended row is kept.
    prune_interval : float
        Seconds between two prunes by the leader.
    """

    def __init__(self, db: sessionmaker[Session], jobs: JobQueue, *, keep_days: float,
                 prune_interval: float) -> None:
        self.db = db
        self.jobs = jobs
        self.keep_days = keep_days
        self.prune_interval = prune_interval
        self._pruner: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def reset_stale_rows(self) -> int:
        """Make the contract rows say what the job layer knows, after a process died (a
        leader duty, after the job consumers queued its jobs again): a row
        ``processing`` whose job waits in the queue is ``queued`` again, and a row
        whose job is gone fails with ``last_error`` saying so.

        Returns
        -------
        int
            Rows changed.
        """
        states = {j.subject: j.state for j in self.jobs.active_jobs(KIND)}
        settled = utcnow() - timedelta(seconds=60)  # a request may be queueing it now
        changed = 0
        with transaction(self.db) as s:
            for row in repo.active_rows(s):
                state = states.get(row.job_id)
                if state is None and row.created_at < settled:
                    repo.update_job(s, row.id, status="failed", completed_at=utcnow(),
                                    last_error="The analysis was interrupted and its job "
                                    "is gone; request it again")
                elif state == "queued" and row.status == "processing":
                    repo.update_job(s, row.id, status="queued")
                else:
                    continue
                changed += 1
        return changed

    def prune_jobs(self) -> int:
        """Delete the ``analysis_jobs`` rows that ended more than ``ANALYSIS_JOBS_KEEP_DAYS``
        days ago, except the newest row of each job id (what
        ``GET /api/analysis/jobs/:jobId`` answers); queued and processing rows stay
        (:func:`~taperoom.library.repository.analysis.prune_finished_jobs`).

        Returns
        -------
        int
            Rows deleted.
        """
        with transaction(self.db) as s:
            deleted = repo.prune_finished_jobs(s, utcnow() - timedelta(days=self.keep_days))
        if deleted:
            log.info("deleted %d analysis job row(s) older than %g days", deleted,
                     self.keep_days)
        return deleted

    def _prune_quietly(self) -> None:
        try:
            self.prune_jobs()
        except Exception:  # a database hiccup: the next round tries again
            log.exception("could not delete old analysis job rows")

    def start_pruning(self) -> None:
        """Prune now, then every :attr:`prune_interval` seconds from a thread (a leader
        duty, as the job layer prunes its own rows), until :meth:`stop_pruning`."""
        self._prune_quietly()
        with self._lock:
            if self._pruner is not None and self._pruner.is_alive():
                return
            stop = self._stop = threading.Event()
            self._pruner = threading.Thread(target=self._prune_loop, args=(stop,),
                                            name="analysis-prune", daemon=True)
            self._pruner.start()

    def _prune_loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.prune_interval):
            self._prune_quietly()

    def stop_pruning(self) -> None:
        """Stop the pruning thread (the leader steps down or closes)."""
        with self._lock:
            thread, self._pruner = self._pruner, None
            self._stop.set()
        if thread is not None:
            thread.join(10)
