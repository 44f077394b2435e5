"""Analysis jobs on the library's job layer, and the ``/api/analysis`` answers.

A job analyses one *recording*: its id is the audio hash of the track
(``tracks.file_hash``), so two copies of a file share one analysis and its
results go to every track with that hash. Each job is

* a job of kind ``analysis`` on :class:`~taperoom.library.jobqueue.JobQueue`
  (a Huey task and a ``library_jobs`` row, subject = the hash), which gives the
  queue order, one active job per hash, cancel, progress rows and the resume of
  queued and interrupted jobs after a restart; ``MAX_CONCURRENT_ANALYSIS``
  consumer threads of the leader run them;
* a row of ``analysis_jobs`` in the contract's shape (one per request, the newest
  answering for the hash), which ``GET /api/analysis/jobs/:jobId`` shows.

:class:`AnalysisService` is the face of the parts that do the work, each in its
module: :mod:`.queueing` (requests and priorities), :mod:`.autoqueue` (new tracks),
:mod:`.rehash` (waiting jobs follow their track to new audio),
:mod:`.runs` (one job: stages, progress, retries), :mod:`.outcomes` (how a job
ends), :mod:`.storage` (results on the tracks and waveforms), :mod:`.callbacks`
(an external server's stages), :mod:`.views` (status, queue, jobs, health),
:mod:`.controls` (start, stop, restart, cancel), :mod:`.workers` (the worker
processes), :mod:`.local` (the command line's analysis), :mod:`.pruning` (upkeep of
the rows); :mod:`.requests`, :mod:`.naming` and :mod:`.errors` are shared.

Events: ``analysis:started``, ``analysis:progress`` (per stage, and during the
decoding at most every :data:`~.runs.PROGRESS_INTERVAL` s), ``analysis:complete``,
and beside the contract ``analysis:failed``; ``track:updated`` for every track
whose fields changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from taperoom.events import EventBus
from taperoom.library.analysis.autoqueue import AutoQueue
from taperoom.library.analysis.callbacks import CallbackReceiver
from taperoom.library.analysis.controls import AnalysisControls, LeaderCalling
from taperoom.library.analysis.errors import (
    AnalysisConflict,
    AnalysisForbidden,
    AnalysisInvalid,
    AnalysisNotFound,
    AnalysisRefusal,
    AnalysisUnavailable,
)
from taperoom.library.analysis.loader import Analyzer, AnalyzerLoader
from taperoom.library.analysis.local import LocalAnalysis
from taperoom.library.analysis.naming import KIND, LOCAL_STAGES, OPTION_STAGES, PRIORITIES
from taperoom.library.analysis.outcomes import JobOutcomes
from taperoom.library.analysis.pruning import JobRowUpkeep
from taperoom.library.analysis.queueing import AnalysisQueueing
from taperoom.library.analysis.rehash import JobMover
from taperoom.library.analysis.runs import PROGRESS_INTERVAL, JobRunner
from taperoom.library.analysis.storage import ResultStore
from taperoom.library.analysis.views import AnalysisViews
from taperoom.library.analysis.workers import WorkerRoster
from taperoom.library.jobqueue import PRUNE_INTERVAL, JobQueue

if TYPE_CHECKING:
    from taperoom.library.analysis.external import ExternalAnalysis

__all__ = ["KIND", "LOCAL_STAGES", "OPTION_STAGES", "PRIORITIES", "PROGRESS_INTERVAL",
           "AnalysisConflict", "AnalysisForbidden", "AnalysisInvalid", "AnalysisNotFound",
           "AnalysisRefusal", "AnalysisService", "AnalysisUnavailable", "LeaderCalling"]


class AnalysisService:
    """Queues, runs, cancels and reports the analysis of the library's tracks.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    bus : EventBus
        Receives the ``analysis:*`` and ``track:updated`` events; the service
        listens for ``library:directory:scan:*``, ``track:added``,
        ``track:updated`` and ``analysis:worker``.
    jobs : JobQueue
        The job layer; the service registers the ``analysis`` kind on it.
    calls : LeaderCalling
        Runs the controls of the analysis consumers (start, stop, their state)
        in the leader process, from any worker.
    max_concurrent : int
        ``MAX_CONCURRENT_ANALYSIS``: jobs run at once by the leader (0: none;
        ``taperoom worker`` processes run them).
    max_retries : int
        ``ANALYSIS_MAX_RETRIES``: further attempts after a failed one.
    retry_delay : float
        ``ANALYSIS_RETRY_DELAY``: seconds before the first retry, doubled at each.
    bpm_range : (float, float)
        The DJ tempo range the tempo estimator prefers.
    analyze_on_scan : bool
        ``ANALYZE_ON_SCAN``: queue new tracks after a scan (and those the watcher
        or ``POST /api/tracks`` adds) at ``low`` priority.
    reacts : callable() -> bool
        Whether this process reacts to scan events (the leader, or a command that
        never leads), so that the workers of one server do not all queue the
        same tracks.
    analyzer : callable, optional
        ``analyze_file(path, *, quick, bpm_range, progress)``; default
        :func:`taperoom.analysis.analyzer.analyze_file`.
    worker_node : str, optional
        The node name of a ``taperoom library worker`` process, which reads each
        file at the path its track has in the library: a job whose file is not
        there fails with a ``last_error`` naming the node and saying that the
        library folders must be mounted at the same paths on every worker.
    worker_timeout : float
        Seconds after its last ``analysis:worker`` event that a worker process is
        taken for gone (``JOB_STALE_SECONDS``); with ``max_concurrent`` 0 the
        workers seen within it are what ``status``, ``queue`` and ``health``
        report.
    keep_days : float
        ``ANALYSIS_JOBS_KEEP_DAYS``: days an ended ``analysis_jobs`` row is kept
        (:meth:`prune_jobs`).
    prune_interval : float
        Seconds between two prunes by the leader (default: the job layer's
        :data:`~taperoom.library.jobqueue.PRUNE_INTERVAL`, an hour).
    external : ExternalAnalysis, optional
        ``ANALYSIS_SERVER_URL``: the queue's jobs go to that server
        (:mod:`.external`), which also delivers stems.
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus, jobs: JobQueue,
                 calls: LeaderCalling, *, max_concurrent: int, max_retries: int,
                 retry_delay: float, bpm_range: tuple[float, float], analyze_on_scan: bool,
                 reacts: Callable[[], bool], analyzer: Analyzer | None = None,
                 worker_node: str | None = None, worker_timeout: float = 30.0,
                 keep_days: float = 30, prune_interval: float = PRUNE_INTERVAL,
                 external: ExternalAnalysis | None = None) -> None:
        self.external = external
        self.loader = AnalyzerLoader(analyzer, external)
        self.roster = WorkerRoster(bus, timeout=worker_timeout,
                                   max_concurrent=max_concurrent)
        self.storage = ResultStore(db, bus, external)
        self.outcomes = JobOutcomes(db, bus, retry_delay=retry_delay)
        self.controls = AnalysisControls(db, jobs, calls, self.loader,
                                         max_concurrent=max_concurrent, external=external)
        self.views = AnalysisViews(db, jobs, self.controls, self.roster, external)
        self.queueing = AnalysisQueueing(db, jobs, self.views, self.controls,
                                         max_retries=max_retries, external=external)
        self.autoqueue = AutoQueue(db, bus, self.queueing, analyze_on_scan=analyze_on_scan,
                                   reacts=reacts)
        self.mover = JobMover(db, bus, jobs, self.queueing, reacts=reacts)
        self.runner = JobRunner(db, bus, jobs, self.loader, self.storage, self.outcomes,
                                bpm_range=bpm_range, max_retries=max_retries,
                                worker_node=worker_node, external=external)
        self.callbacks = CallbackReceiver(db, bus, jobs, self.storage, self.outcomes,
                                          external)
        self.local = LocalAnalysis(db, jobs, self.runner)
        self.upkeep = JobRowUpkeep(db, jobs, keep_days=keep_days,
                                   prune_interval=prune_interval)
        jobs.register(KIND, self.runner.run_job, concurrency=max_concurrent,
                      cancelled_result=lambda job: {"cancelled": True})
        self.controls.register()
        self._unsubscribe = [self.mover.subscribe(), *self.autoqueue.subscribe(),
                            self.roster.subscribe()]

    # the routes of /api/analysis
    def request(self, body: Any) -> dict[str, Any]:
        """``POST /api/analysis/request`` (:meth:`.AnalysisQueueing.request`)."""
        return self.queueing.request(body)

    def reanalyze(self, body: Any) -> dict[str, Any]:
        """``POST /api/analysis/reanalyze`` (:meth:`.AnalysisQueueing.reanalyze`)."""
        return self.queueing.reanalyze(body)

    def job_list(self, query: dict[str, str | None]) -> dict[str, Any]:
        """``GET /api/analysis/jobs`` (:meth:`.AnalysisViews.job_list`)."""
        return self.views.job_list(query)

    def job(self, job_id: str) -> dict[str, Any]:
        """``GET /api/analysis/jobs/:jobId`` (:meth:`.AnalysisViews.job`)."""
        return self.views.job(job_id)

    def cancel(self, job_id: str) -> dict[str, Any]:
        """``DELETE /api/analysis/jobs/:jobId`` (:meth:`.AnalysisControls.cancel`)."""
        return self.controls.cancel(job_id)

    def queue(self) -> dict[str, Any]:
        """``GET /api/analysis/queue`` (:meth:`.AnalysisViews.queue`)."""
        return self.views.queue()

    def waveforms(self, track_id: str, zoom: str | None = None) -> dict[str, Any]:
        """``GET /api/analysis/waveforms/:trackId[/:zoomLevel]``
        (:meth:`.AnalysisViews.waveforms`)."""
        return self.views.waveforms(track_id, zoom)

    def status(self) -> dict[str, Any]:
        """``GET /api/analysis/status`` (:meth:`.AnalysisViews.status`)."""
        return self.views.status()

    def health(self) -> tuple[bool, dict[str, Any]]:
        """``GET /api/analysis/health`` (:meth:`.AnalysisViews.health`)."""
        return self.views.health()

    def start(self) -> dict[str, Any]:
        """``POST /api/analysis/start`` (:meth:`.AnalysisControls.start`)."""
        return self.controls.start()

    def stop(self) -> dict[str, Any]:
        """``POST /api/analysis/stop`` (:meth:`.AnalysisControls.stop`)."""
        return self.controls.stop()

    def restart(self) -> dict[str, Any]:
        """``POST /api/analysis/restart`` (:meth:`.AnalysisControls.restart`)."""
        return self.controls.restart()

    def callback(self, body: Any, token: str | None = None) -> dict[str, Any]:
        """``POST /api/analysis/callback`` (:meth:`.CallbackReceiver.callback`)."""
        return self.callbacks.callback(body, token)

    # the rest of the library
    def analyzer(self) -> Analyzer:
        """This process's analysis function (:meth:`.AnalyzerLoader.analyzer`)."""
        return self.loader.analyzer()

    def analyze_for_deck(self, track_id: str) -> dict[str, Any] | None:
        """A track was loaded on a deck (:meth:`.AnalysisQueueing.analyze_for_deck`)."""
        return self.queueing.analyze_for_deck(track_id)

    def queue_stems(self, track_id: str) -> bool:
        """Queue a stems job for the audio engine (:meth:`.AnalysisQueueing.queue_stems`)."""
        return self.queueing.queue_stems(track_id)

    def store_stage(self, file_hash: str, stage: str, data: dict[str, Any], *,
                    levels: list[Any] | None = None) -> dict[str, Any]:
        """Store one stage's results (:meth:`.ResultStore.store_stage`)."""
        return self.storage.store_stage(file_hash, stage, data, levels=levels)

    def queue_unanalysed(self, *, directory_id: str | None = None,
                         track_ids: Iterable[str] | None = None) -> int:
        """Queue the tracks lacking an analysis (:meth:`.AutoQueue.queue_unanalysed`)."""
        return self.autoqueue.queue_unanalysed(directory_id=directory_id,
                                               track_ids=track_ids)

    def queue_unanalysed_in_background(self) -> None:
        """The same, of the whole library in a thread (a leader duty at start-up)."""
        self.autoqueue.queue_unanalysed_in_background()

    def analyze_here(self, track_ids: Iterable[str] | None, *, force: bool,
                     progress: Callable[[str, str, int], None] | None = None,
                     planned: Callable[[int], None] | None = None,
                     workers: int = 1) -> dict[str, Any]:
        """Analyse tracks in this process (:meth:`.LocalAnalysis.analyze_here`)."""
        return self.local.analyze_here(track_ids, force=force, progress=progress,
                                       planned=planned, workers=workers)

    def announce(self, node: str, slots: int) -> None:
        """A worker process says it runs (:meth:`.WorkerRoster.announce`)."""
        self.roster.announce(node, slots)

    def workers(self) -> list[dict[str, Any]]:
        """The worker processes heard from lately (:meth:`.WorkerRoster.workers`)."""
        return self.roster.workers()

    # the leader's duties
    def reset_stale_rows(self) -> int:
        """Set right the rows a dead process left (:meth:`.JobRowUpkeep.reset_stale_rows`)."""
        return self.upkeep.reset_stale_rows()

    def prune_jobs(self) -> int:
        """Delete old ended rows (:meth:`.JobRowUpkeep.prune_jobs`)."""
        return self.upkeep.prune_jobs()

    def start_pruning(self) -> None:
        """Prune now and every hour (:meth:`.JobRowUpkeep.start_pruning`)."""
        self.upkeep.start_pruning()

    def stop_pruning(self) -> None:
        """Stop pruning (:meth:`.JobRowUpkeep.stop_pruning`)."""
        self.upkeep.stop_pruning()

    def close(self) -> None:
        """Stop reacting to events and pruning, and finish queueing new tracks."""
        for stop in self._unsubscribe:
            stop()
        self.upkeep.stop_pruning()
        self.autoqueue.close()
