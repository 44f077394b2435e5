"""Running one analysis job: its file, its stages with their progress, its retries.

A job is run by a consumer thread (the leader's, or a ``taperoom library worker``'s)
through :meth:`JobRunner.run_job`, or in the calling thread by the command line
(:mod:`.local`). A file that is missing fails the job at once (``last_error`` says
which file, and on which worker node); a file that cannot be decoded is tried
again ``ANALYSIS_MAX_RETRIES`` times, ``ANALYSIS_RETRY_DELAY`` x 2^n seconds apart
(:meth:`~.outcomes.JobOutcomes.retry`). A deck's quick job stores its quick pass
and goes back to the queue at ``normal`` priority for the rest. With an external
server the job is handed to it (:mod:`.external`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.errors import file_error_reason
from taperoom.events import Event, EventBus
from taperoom.jobs import Priority
from taperoom.library.analysis.errors import AnalysisUnavailable, Stopped
from taperoom.library.analysis.loader import AnalyzerLoader
from taperoom.library.analysis.naming import (
    LOCAL_STAGES,
    event_base,
    percent,
    priority_name,
)
from taperoom.library.analysis.outcomes import JobOutcomes, insert_plain_row
from taperoom.library.analysis.storage import ResultStore
from taperoom.library.jobqueue import JobQueue, JobRun, RunAgain
from taperoom.library.models import utcnow
from taperoom.library.repository import analysis as repo

if TYPE_CHECKING:
    from taperoom.library.analysis.external import ExternalAnalysis

__all__ = ["PROGRESS_INTERVAL", "JobRunner"]

#: Shortest time between two ``analysis:progress`` events during decoding, s.
PROGRESS_INTERVAL = 0.5
#: Share of a job's progress per analyzer stage (decoding dominates).
_WEIGHTS = {"decode": 70, "rhythm": 12, "key": 5, "waveforms": 3, "loudness": 5,
            "characteristics": 5}
_QUICK_WEIGHTS = {"decode": 75, "rhythm": 15, "key": 6, "waveforms": 4}


class JobRunner:
    """Runs analysis jobs of the job layer.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    bus : EventBus
        Receives ``analysis:started`` and ``analysis:progress``.
    jobs : JobQueue
        The job layer (whether this process still runs a job).
    loader : AnalyzerLoader
        This process's analyzer.
    storage : ResultStore
        Where the stages' results go.
    outcomes : JobOutcomes
        How jobs end or are tried again.
    bpm_range : (float, float)
        The DJ tempo range the tempo estimator prefers.
    max_retries : int
        ``ANALYSIS_MAX_RETRIES`` of a row this runner has to create.
    worker_node : str, optional
        The node name of a ``taperoom library worker`` process, named in the error
        of a job whose file is not there.
    external : ExternalAnalysis, optional
        The external analysis server that queue jobs go to.
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus, jobs: JobQueue,
                 loader: AnalyzerLoader, storage: ResultStore, outcomes: JobOutcomes, *,
                 bpm_range: tuple[float, float], max_retries: int,
                 worker_node: str | None, external: ExternalAnalysis | None) -> None:
        self.db = db
        self.bus = bus
        self.jobs = jobs
        self.loader = loader
        self.storage = storage
        self.outcomes = outcomes
        self.bpm_range = bpm_range
        self.max_retries = max_retries
        self.worker_node = worker_node
        self.external = external

    def run_job(self, run: JobRun) -> dict[str, Any]:
        """Handler of ``analysis`` jobs (a consumer thread): this process's analyzer, or
        the external server when there is one."""
        return self.analyse(run, retries=True, external=self.external)

    def analyse(self, run: JobRun, *, retries: bool,
                progress: Callable[[str, int], None] | None = None,
                external: ExternalAnalysis | None = None) -> dict[str, Any]:
        """Run one job.

        Parameters
        ----------
        run : JobRun
            The job, claimed by this process.
        retries : bool
            Try a failed attempt again later (a job of the queue), or fail at once.
        progress : callable(stage, percent), optional
            Also told of the progress (the command line).
        external : ExternalAnalysis, optional
            Hand the job to this server instead of this process's analyzer.

        Returns
        -------
        dict
            The job's result: ``{tracks, stages, bpm, key, mode}``, ``{"error"}``,
            ``{"cancelled": True}`` or ``{}`` (handed back or taken over).

        Raises
        ------
        RunAgain
            A retry is due later, or the rest of a quick job is queued.
        """
        file_hash = run.info.subject
        params = run.info.params
        stages = [s for s in params.get("stages", LOCAL_STAGES) if s in LOCAL_STAGES]
        with transaction(self.db) as s:
            row = repo.active_row(s, file_hash) or insert_plain_row(
                s, file_hash, params.get("track_id"), run.info.priority,
                stages_total=len(stages), max_retries=self.max_retries)
            row_id, track_id = row.id, row.track_id
            due, done_stages = row.next_attempt_at, list(row.stages_completed or [])
            retry_count, max_retries = row.retry_count, row.max_retries
        if retries and due is not None and due > utcnow():  # a copy of the task came early
            raise RunAgain((due - utcnow()).total_seconds(), reason="waiting to retry")
        quick = bool(params.get("quick")) and "basic_features" not in done_stages
        with self.db() as s:
            tracks = repo.tracks_with_hash(s, file_hash)
            track_ids = [t.id for t in tracks]
            paths = [t.file_path for t in tracks if not t.is_missing]
            wanted = next((t.file_path for t in tracks if t.id == track_id), None)
        path = next((p for p in paths if os.path.isfile(p)), None)
        if path is None:
            error = (f"File not found: {wanted or (paths[0] if paths else file_hash)}"
                     if track_ids else f"No track has the audio hash {file_hash}")
            if track_ids and self.worker_node is not None:
                error += (f" on worker {self.worker_node} (mount the library folders at "
                          "the same paths on every worker machine)")
            return self.outcomes.failed(row_id, file_hash, track_id, track_ids, error)
        with transaction(self.db) as s:
            repo.update_job(s, row_id, status="processing", started_at=utcnow(),
                            next_attempt_at=None, file_path=wanted or path)
        base = event_base(file_hash, track_id, track_ids)
        self.bus.send(Event.ANALYSIS_STARTED, dict(base))
        if external is not None:
            outcome = external.run(run, row_id, file_hash, path)
            if outcome.state == "ended":
                return outcome.result
            if outcome.state == "stopped":
                return self.outcomes.stopped(run, row_id, file_hash, base)
            error = f"Analysis server {external.url}: {outcome.error}"
            if outcome.state == "retry" and retries and retry_count < max_retries:
                self.outcomes.retry(row_id, file_hash, error, retry_count, max_retries)
            external.abandon_row(row_id)
            return self.outcomes.failed(row_id, file_hash, track_id, track_ids, error,
                                        retry_count=retry_count)
        only_basic = "characteristics" not in stages
        weights = _QUICK_WEIGHTS if quick or only_basic else _WEIGHTS
        reporter = _Reporter(self.db, self.bus, run, row_id, base, weights, progress)
        try:
            result = self.loader.analyzer()(path, quick=quick or only_basic,
                                            bpm_range=self.bpm_range, progress=reporter)
        except Stopped:
            return self.outcomes.stopped(run, row_id, file_hash, base)
        except AnalysisUnavailable as exc:
            return self.outcomes.failed(row_id, file_hash, track_id, track_ids, exc.message)
        except Exception as exc:
            error = f"Cannot analyse {path}: {file_error_reason(exc)}"
            if run.cancelled.is_set():
                return self.outcomes.stopped(run, row_id, file_hash, base)
            if retries and retry_count < max_retries:
                self.outcomes.retry(row_id, file_hash, error, retry_count, max_retries)
            return self.outcomes.failed(row_id, file_hash, track_id, track_ids, error,
                                        retry_count=retry_count)
        if run.cancelled.is_set() or not self.jobs.still_runs(run):
            return self.outcomes.stopped(run, row_id, file_hash, base)
        fields = self.storage.store_stage(file_hash, "basic_features",
                                          result.basic_features(), levels=result.waveforms)
        done_stages = ["basic_features"]
        chars = result.characteristics()
        if chars is not None and "characteristics" in stages:
            fields |= self.storage.store_stage(file_hash, "characteristics", chars)
            done_stages.append("characteristics")
        if quick and "characteristics" in stages:  # the rest later, at normal priority
            with transaction(self.db) as s:
                repo.update_job(s, row_id, status="queued", stages_completed=done_stages,
                                progress_percent=percent(done_stages, stages),
                                priority=priority_name(Priority.NORMAL))
            self.bus.send(Event.ANALYSIS_PROGRESS, base | {
                "progress": percent(done_stages, stages), "stage": "basic_features"})
            raise RunAgain(0.0, priority=Priority.NORMAL, reason="quick pass done")
        self.outcomes.completed(row_id, file_hash, done_stages, base, fields)
        return {"tracks": track_ids, "stages": done_stages, "bpm": fields.get("bpm"),
                "key": fields.get("musical_key"), "mode": fields.get("mode")}


class _Reporter:
    """The analyzer's progress callback of one job: job-row progress, events, cancel."""

    def __init__(self, db: sessionmaker[Session], bus: EventBus, run: JobRun, row_id: int,
                 base: dict[str, Any], weights: dict[str, int],
                 extra: Callable[[str, int], None] | None) -> None:
        self.db = db
        self.bus = bus
        self.run = run
        self.row_id = row_id
        self.base = base
        self.weights = weights
        self.extra = extra
        self.done = 0
        self.last_event = 0.0

    def __call__(self, stage: str, fraction: float) -> None:
        if self.run.cancelled.is_set():
            raise Stopped()
        weight = self.weights.get(stage, 0)
        finished = fraction >= 1.0
        percent = min(99, int(self.done + weight * fraction))
        if finished:
            self.done += weight
        self.run.report({"stage": stage, "progress": percent})
        if self.extra is not None:
            self.extra(stage, percent)
        now = time.monotonic()
        if not finished and now - self.last_event < PROGRESS_INTERVAL:
            return
        self.last_event = now
        if finished:
            with transaction(self.db) as s:
                repo.update_job(s, self.row_id, progress_percent=percent)
        self.bus.send(Event.ANALYSIS_PROGRESS,
                      self.base | {"progress": percent, "stage": stage})
