"""Control of the analysis consumers and jobs: start, stop, restart, cancel.

The consumers run in the leader process; the controls reach them from any worker
through the leader calls (``analysis.state``, ``analysis.start``,
``analysis.stop``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.errors import NotFound
from taperoom.library.analysis.errors import (
    AnalysisConflict,
    AnalysisNotFound,
    AnalysisUnavailable,
)
from taperoom.library.analysis.loader import AnalyzerLoader
from taperoom.library.analysis.naming import KIND, checked_job_id
from taperoom.library.jobqueue import JobQueue
from taperoom.library.repository import analysis as repo

if TYPE_CHECKING:
    from taperoom.library.analysis.external import ExternalAnalysis

__all__ = ["AnalysisControls", "LeaderCalling", "status_dict"]


class LeaderCalling(Protocol):
    """Runs registered functions in the leader
    (:class:`~taperoom.library.leadercalls.LeaderCalls`)."""

    def register(self, name: str, fn: Callable[..., Any]) -> None: ...

    def call(self, name: str, *args: Any) -> Any: ...


def status_dict(state: dict[str, Any], external: ExternalAnalysis | None = None
                ) -> dict[str, Any]:
    """``GET /api/analysis/status``'s answer from the leader's state
    (``{consuming, healthy, pid}``): ``{url, port, isHealthy, isProcessRunning,
    isReady, autoStart, pid}``, ``url`` and ``port`` those of the external server."""
    healthy = bool(state.get("healthy"))
    running = bool(state.get("consuming"))
    where: dict[str, Any] = {"url": None, "port": None, "pid": state.get("pid")}
    if external is not None:  # another process, perhaps on another machine
        where = {"url": external.url, "port": external.port, "pid": None}
    return {**where, "isHealthy": healthy, "isProcessRunning": running,
            "isReady": healthy and running, "autoStart": True}


class AnalysisControls:
    """Starts and stops the analysis consumers of the leader, cancels jobs.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    jobs : JobQueue
        The job layer.
    calls : LeaderCalling
        Runs the controls in the leader process, from any worker.
    loader : AnalyzerLoader
        Whether analysis can run here.
    max_concurrent : int
        ``MAX_CONCURRENT_ANALYSIS`` (0: the leader runs no consumer to start).
    external : ExternalAnalysis, optional
        The external analysis server, told of cancelled jobs.
    """

    def __init__(self, db: sessionmaker[Session], jobs: JobQueue, calls: LeaderCalling,
                 loader: AnalyzerLoader, *, max_concurrent: int,
                 external: ExternalAnalysis | None) -> None:
        self.db = db
        self.jobs = jobs
        self.calls = calls
        self.loader = loader
        self.max_concurrent = max_concurrent
        self.external = external

    def register(self) -> None:
        """Offer this process's controls to the leader calls (the leader answers)."""
        self.calls.register("analysis.state", self._local_state)
        self.calls.register("analysis.start", self._local_start)
        self.calls.register("analysis.stop", self._local_stop)

    def _local_state(self) -> dict[str, Any]:
        healthy, why = self.loader.healthy()
        return {"consuming": self.jobs.consuming(KIND), "pid": os.getpid(),
                "healthy": healthy, "why": why}

    def _local_start(self) -> dict[str, Any]:
        if self.loader.healthy()[0] and self.max_concurrent > 0:
            self.jobs.resume_kind(KIND)
        return self._local_state()

    def _local_stop(self) -> dict[str, Any]:
        self.jobs.stop_kind(KIND)
        return self._local_state()

    def state(self) -> dict[str, Any]:
        """The leader's ``{consuming, pid, healthy, why}``."""
        state: dict[str, Any] = self.calls.call("analysis.state")
        return state

    def start(self) -> dict[str, Any]:
        """``POST /api/analysis/start``: run the analysis consumers again (after ``stop``).

        Raises
        ------
        AnalysisUnavailable
            The analyzer cannot be loaded (503).
        """
        return {"message": "Analysis server started successfully",
                "status": status_dict(self._started(), self.external)}

    def _started(self) -> dict[str, Any]:
        state: dict[str, Any] = self.calls.call("analysis.start")
        if not state.get("healthy"):
            raise AnalysisUnavailable("Analysis server failed to start",
                                      str(state.get("why") or "the analyzer cannot load"))
        return state

    def stop(self) -> dict[str, Any]:
        """``POST /api/analysis/stop``: stop the analysis consumers; running jobs go back
        to the queue, queued jobs wait (until ``start`` or a restart)."""
        self.calls.call("analysis.stop")
        return {"message": "Analysis server stopped successfully"}

    def restart(self) -> dict[str, Any]:
        """``POST /api/analysis/restart``: ``stop`` then ``start``."""
        self.calls.call("analysis.stop")
        return {"message": "Analysis server restarted successfully",
                "status": status_dict(self._started(), self.external)}

    def cancel(self, job_id: str) -> dict[str, Any]:
        """``DELETE /api/analysis/jobs/:jobId``: cancel a queued or running job (a running
        one stops at its next progress report), and its job on the external analysis
        server that was given it.

        Raises
        ------
        AnalysisNotFound
            No job of that hash.
        AnalysisConflict
            Its job has ended already.
        """
        job_id = checked_job_id(job_id)
        with transaction(self.db) as s:
            row = repo.latest_job(s, job_id)
            if row is None:
                raise AnalysisNotFound("Job not found", f"No analysis job {job_id}")
            status = row.status
        if status not in repo.ACTIVE_STATUSES:
            # its row decides: a job whose results are stored is finished, even while
            # its worker is still winding it up in the job layer
            raise AnalysisConflict("Job already finished", f"Analysis job {job_id} is {status}")
        try:
            self.jobs.cancel(KIND, job_id)
            cancelled = True
        except NotFound:
            cancelled = False
        with transaction(self.db) as s:
            latest = repo.latest_job(s, job_id)
            remote_id = latest.remote_job_id if latest is not None else None
            ended = repo.end_active_rows(s, job_id, "cancelled")
        if not (cancelled or ended):
            raise AnalysisConflict("Job already finished",
                                   f"Analysis job {job_id} is {status}")
        if ended and remote_id and self.external is not None:  # also when none waits for it
            self.external.abandon(remote_id)
        return {"message": "Job cancelled successfully", "job_id": job_id}
