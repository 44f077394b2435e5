"""The answers of the ``/api/analysis`` queries: a job, the queue, the waveforms, the
status and the health of the analysis."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from taperoom.library.analysis.controls import AnalysisControls, status_dict
from taperoom.library.analysis.errors import AnalysisInvalid, AnalysisNotFound
from taperoom.library.analysis.naming import KIND, checked_job_id, job_dict, priority_name
from taperoom.library.analysis.requests import find_track, parse
from taperoom.library.analysis.workers import WorkerRoster
from taperoom.library.jobqueue import JobQueue
from taperoom.library.repository import analysis as repo
from taperoom.library.schemas import AnalysisJobsQuery

if TYPE_CHECKING:
    from taperoom.library.analysis.external import ExternalAnalysis

__all__ = ["AnalysisViews"]


class AnalysisViews:
    """Answers the analysis queries.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    jobs : JobQueue
        The job layer (the queue, live progress).
    controls : AnalysisControls
        The leader's state of the consumers.
    roster : WorkerRoster
        The worker processes (``MAX_CONCURRENT_ANALYSIS=0``).
    external : ExternalAnalysis, optional
        The external analysis server.
    """

    def __init__(self, db: sessionmaker[Session], jobs: JobQueue, controls: AnalysisControls,
                 roster: WorkerRoster, external: ExternalAnalysis | None) -> None:
        self.db = db
        self.jobs = jobs
        self.controls = controls
        self.roster = roster
        self.external = external

    def job_list(self, query: dict[str, str | None]) -> dict[str, Any]:
        """``GET /api/analysis/jobs``: a page of jobs, newest first.

        Each audio hash answers with its newest row (the job ``GET
        /api/analysis/jobs/:jobId`` shows), so a failure retried since then shows
        as the retry's job, not as a failure. The newest request comes first
        (descending row id); a running job's progress is its process's last.

        Parameters
        ----------
        query : dict
            ``status`` (queued | processing | completed | failed | cancelled;
            empty or absent: every status), ``limit`` (1-200, default 50) and
            ``offset`` (from 0, default 0), as the query string gave them.

        Returns
        -------
        dict
            ``{jobs: [job], total, limit, offset}``; ``total`` counts the jobs of
            every page.

        Raises
        ------
        AnalysisInvalid
            ``Invalid request``: an unknown status, or a limit or offset out of
            range or not a whole number (400).
        """
        given = {k: v for k, v in query.items() if v is not None and v != ""}
        q = parse(AnalysisJobsQuery, given, "Invalid request")
        with self.db() as s:
            rows, total = repo.newest_jobs(s, status=q.status, limit=q.limit, offset=q.offset)
            jobs = [job_dict(row) for row in rows]
        for job in jobs:
            self._live_progress(job)
        return {"jobs": jobs, "total": total, "limit": q.limit, "offset": q.offset}

    def _live_progress(self, out: dict[str, Any]) -> None:
        """Raise a running job's ``progress_percent`` to its process's last report."""
        if out["status"] != "processing":
            return
        active = self.jobs.active(KIND, out["job_id"])
        live = (active.progress or {}).get("progress") if active is not None else None
        if isinstance(live, int | float) and live > out["progress_percent"]:
            out["progress_percent"] = int(live)

    def job(self, job_id: str) -> dict[str, Any]:
        """``GET /api/analysis/jobs/:jobId``: the newest job of an audio hash, in the
        contract's shape (progress of a running job as its process last wrote it).

        Raises
        ------
        AnalysisNotFound
            ``Job not found``.
        """
        job_id = checked_job_id(job_id)
        with self.db() as s:
            row = repo.latest_job(s, job_id)
            if row is None:
                raise AnalysisNotFound("Job not found", f"No analysis job {job_id}")
            out = job_dict(row)
        self._live_progress(out)
        return out

    def queue(self) -> dict[str, Any]:
        """``GET /api/analysis/queue``: the queue's state and counts per priority.

        Returns
        -------
        dict
            ``{queue: {isProcessing, maxConcurrentJobs, processingCount,
            queuedCount, paused}, stats: {queued: {total, high, normal, low},
            processing: {total, high, normal, low}}}``; ``isProcessing`` is whether
            the consumers run (``false`` after ``POST /stop``).
        """
        counts = {st: {"total": 0, "high": 0, "normal": 0, "low": 0}
                  for st in ("queued", "processing")}
        for job in self.jobs.active_jobs(KIND):
            bucket = counts["processing" if job.state == "running" else "queued"]
            bucket["total"] += 1
            bucket[priority_name(job.priority)] += 1
        consuming = bool(self.roster.with_workers(self.controls.state()).get("consuming"))
        slots = self.roster.slots()
        return {"queue": {"isProcessing": consuming, "maxConcurrentJobs": slots,
                          "processingCount": counts["processing"]["total"],
                          "queuedCount": counts["queued"]["total"],
                          "paused": not consuming},
                "stats": counts}

    def waveforms(self, track_id: str, zoom: str | None = None) -> dict[str, Any]:
        """``GET /api/analysis/waveforms/:trackId[/:zoomLevel]``.

        Returns
        -------
        dict
            ``{track_id, waveforms: [waveform]}`` (empty before the analysis), or
            ``{waveform}`` for one zoom level.

        Raises
        ------
        AnalysisInvalid
            ``Invalid zoom level`` (not 0, 1 or 2).
        AnalysisNotFound
            No such track, or no waveform of that level yet.
        """
        from taperoom.library.tracks import waveform_dict

        level: int | None = None
        if zoom is not None:
            if zoom not in ("0", "1", "2"):
                raise AnalysisInvalid("Invalid zoom level", "zoomLevel must be 0, 1 or 2")
            level = int(zoom)
        with self.db() as s:
            track = find_track(s, track_id)
            rows = (repo.waveforms_of(s, track.file_hash, zoom=level) if track.file_hash
                    else [])
            waves = [waveform_dict(w) for w in rows]
        if level is None:
            return {"track_id": track_id, "waveforms": waves}
        if not waves:
            raise AnalysisNotFound("Waveform not found",
                                   f"No waveform of zoom level {level} for track {track_id}")
        return {"waveform": waves[0]}

    def status(self) -> dict[str, Any]:
        """``GET /api/analysis/status``.

        Returns
        -------
        dict
            ``{url, port, isHealthy, isProcessRunning, isReady, autoStart, pid}``:
            the analyzer runs in the leader process, so ``url`` and ``port`` are
            null, ``pid`` is that process's, ``isProcessRunning`` says whether its
            analysis consumers run (``POST /stop`` stops them), ``isHealthy``
            whether the analyzer loads, and ``autoStart`` is true (they start
            with the leader). With ``MAX_CONCURRENT_ANALYSIS=0`` it is running and
            healthy while a ``taperoom library worker`` process is alive. With an
            external server (``ANALYSIS_SERVER_URL``), ``url`` and ``port`` are its
            own, ``pid`` is null and ``isHealthy`` says whether its ``GET /health``
            answers ``{"status": "ok"}``.
        """
        return status_dict(self.roster.with_workers(self.controls.state()), self.external)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """``GET /api/analysis/health``: (healthy, ``{status, message}``); unhealthy
        when the analyzer cannot load or its consumers are stopped. With
        ``MAX_CONCURRENT_ANALYSIS=0``: healthy while a worker process is alive."""
        if self.roster.max_concurrent == 0:
            workers = self.roster.workers()
            if not workers:
                return False, {"status": "unhealthy", "message": (
                    "No analysis worker is running (MAX_CONCURRENT_ANALYSIS=0 leaves the "
                    "analysis to taperoom library worker processes)")}
            names = ", ".join(sorted({w["node"] for w in workers}))
            return True, {"status": "healthy", "message": (
                f"Analysis is running in {len(workers)} worker process(es) on {names}")}
        state = self.controls.state()
        if not state.get("healthy"):
            return False, {"status": "unhealthy",
                           "message": str(state.get("why") or "the analyzer cannot load")}
        if not state.get("consuming"):
            return False, {"status": "unhealthy", "message": "Analysis is stopped"}
        if self.external is not None:
            return True, {"status": "healthy", "message": "The analysis server at "
                          f"{self.external.url} is healthy"}
        return True, {"status": "healthy", "message": "Analysis is running in process "
                      f"{state.get('pid')}"}
