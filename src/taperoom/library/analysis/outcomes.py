"""How an analysis job ends, on its ``analysis_jobs`` row, its tracks and the bus: completed
(``date_analyzed`` of every track of the recording), failed, cancelled or handed back,
or tried again later with backoff."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.events import Event, EventBus
from taperoom.library.analysis.naming import STEMS_STAGE, event_base, priority_name
from taperoom.library.analysis.results import ANALYSIS_VERSION
from taperoom.library.jobqueue import JobRun, RunAgain
from taperoom.library.models import AnalysisJob, utcnow
from taperoom.library.repository import analysis as repo
from taperoom.library.schemas import AnalysisOptions, iso

__all__ = ["JobOutcomes", "insert_plain_row"]

log = logging.getLogger(__name__)


def insert_plain_row(s: Session, file_hash: str, track_id: str | None, priority: int, *,
                     stages_total: int, max_retries: int) -> AnalysisJob:
    """A queued ``analysis_jobs`` row with the default options, for a job of the job layer
    that has none (queued by an older version, or its row was pruned)."""
    return repo.insert_job(s, job_id=file_hash, track_id=track_id, status="queued",
                           priority=priority_name(priority),
                           options=AnalysisOptions().model_dump(), stages_completed=[],
                           stages_total=stages_total, max_retries=max_retries,
                           created_at=utcnow())


class JobOutcomes:
    """Writes the end (or the next attempt) of analysis jobs.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    bus : EventBus
        Receives ``analysis:complete`` and ``analysis:failed``.
    retry_delay : float
        ``ANALYSIS_RETRY_DELAY``: seconds before the first retry, doubled at each.
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus, *,
                 retry_delay: float) -> None:
        self.db = db
        self.bus = bus
        self.retry_delay = retry_delay

    def retry(self, row_id: int, file_hash: str, error: str, retry_count: int,
              max_retries: int) -> None:
        """Queue the job again after ``ANALYSIS_RETRY_DELAY`` x 2^retry_count seconds
        (the time kept in ``next_attempt_at``, so that a restart does not shorten it).

        Raises
        ------
        RunAgain
            Always.
        """
        delay = self.retry_delay * (2 ** retry_count)
        with transaction(self.db) as s:
            repo.update_job(s, row_id, status="queued", retry_count=retry_count + 1,
                            last_error=error,
                            next_attempt_at=utcnow() + timedelta(seconds=delay))
        # the job layer logs the retry with this reason
        raise RunAgain(delay, reason=f"attempt {retry_count + 1} of {max_retries + 1} "
                                     f"failed: {error}")

    def stopped(self, run: JobRun, row_id: int, file_hash: str,
                base: dict[str, Any]) -> dict[str, Any]:
        """A run that stopped: taken over by another process (nothing written), handed
        back to the queue (this process stops), or cancelled.

        Returns
        -------
        dict
            The job's result: ``{}``, or ``{"cancelled": True}``.
        """
        if run.lost:  # another process runs the job now: its rows are not ours
            log.warning("analysis %s was taken over by another process; stopped here",
                        file_hash)
            return {}
        if run.interrupted:  # this process is stopping: the job layer queues it again
            with transaction(self.db) as s:
                repo.update_job(s, row_id, status="queued")
            return {}
        with transaction(self.db) as s:
            repo.update_job(s, row_id, status="cancelled", completed_at=utcnow())
        self.bus.send(Event.ANALYSIS_FAILED, base | {"status": "cancelled", "error": None})
        return {"cancelled": True}

    def failed(self, row_id: int, file_hash: str, track_id: str | None,
               track_ids: list[str], error: str, *, retry_count: int | None = None
               ) -> dict[str, Any]:
        """The job failed with `error` (``last_error``; ``analysis:failed``).

        Returns
        -------
        dict
            The job's result, ``{"error": error}``.
        """
        values: dict[str, Any] = {"status": "failed", "last_error": error,
                                  "completed_at": utcnow(), "next_attempt_at": None}
        if retry_count is not None:
            values["retry_count"] = retry_count
        with transaction(self.db) as s:
            repo.update_job(s, row_id, **values)
        log.warning("analysis %s failed: %s", file_hash, error)
        self.bus.send(Event.ANALYSIS_FAILED, event_base(file_hash, track_id, track_ids)
                      | {"status": "failed", "error": error})
        return {"error": error}

    def completed(self, row_id: int, file_hash: str, done_stages: list[str],
                  base: dict[str, Any], fields: dict[str, Any]) -> None:
        """The job completed: the row ``completed``, ``analysis:complete`` with `fields`,
        and, when it analysed the audio (any stage but ``stems``), ``date_analyzed`` and
        ``analysis_version`` on every track of the recording. A stems-only job separates
        the sources and measures nothing: the tracks stay as analysed, or not, as they
        were."""
        now = utcnow()
        analysed = any(stage != STEMS_STAGE for stage in done_stages)
        with transaction(self.db) as s:
            if analysed:
                repo.apply_results(s, file_hash, {"date_analyzed": now,
                                                  "analysis_version": ANALYSIS_VERSION})
            repo.update_job(s, row_id, status="completed", stages_completed=done_stages,
                            progress_percent=100, completed_at=now, next_attempt_at=None)
        results = {k: v for k, v in fields.items() if not k.endswith("_data")}
        if analysed:
            results["date_analyzed"] = iso(now)
        self.bus.send(Event.ANALYSIS_COMPLETE, base | {"results": results})
