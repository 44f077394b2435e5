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

Priorities (:class:`~taperoom.jobs.Priority`): a track loaded on a deck
(:meth:`AnalysisService.analyze_for_deck`) gets ``URGENT``, a quick pass (tempo,
beat grid, key, waveforms) and then the rest of its analysis at ``NORMAL``
(:class:`~taperoom.library.jobqueue.RunAgain`); a user's request is ``normal``
unless it says ``high`` or ``low``; the automatic analysis of new tracks (after a
scan, at start-up) is ``LOW``. A waiting job asked for again at a higher
priority moves up (:meth:`~taperoom.library.jobqueue.JobQueue.promote`).

Failures: a file that is missing fails the job at once (``last_error`` says which
file); a file that cannot be decoded is tried again ``ANALYSIS_MAX_RETRIES``
times, ``ANALYSIS_RETRY_DELAY`` x 2^n seconds apart (the wait is kept in
``analysis_jobs.next_attempt_at``, so a restart does not shorten it), then the
job fails with the decoder's error. Nothing of it stops a consumer.

Results: every stage's data goes through :meth:`AnalysisService.store_stage`,
whether the analyzer in this process produced it or an external server posted
it to ``/api/analysis/callback`` (contract §3): the columns of every track with
the hash, except the fields its user set himself (``tracks.user_fields``), and
the three waveform levels, stored once per hash in the analyzer's compact
binary form (:func:`taperoom.analysis.waveform.encode_waveforms`).

External server (``ANALYSIS_SERVER_URL``): the jobs of the queue go to that
server (:mod:`.external`) instead of this process's analyzer, which only the
command line then uses; its callbacks must carry their job's secret
(``callback_token``, 403 otherwise), and only such a server delivers stems.

Events: ``analysis:started``, ``analysis:progress`` (per stage, and during the
decoding at most every :data:`PROGRESS_INTERVAL` s), ``analysis:complete``, and
beside the contract ``analysis:failed``; ``track:updated`` for every track whose
fields changed.
"""

from __future__ import annotations

import contextlib
import hmac
import importlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.errors import (
    Busy,
    Conflict,
    Forbidden,
    InvalidInput,
    MediaError,
    NotFound,
    TaperoomError,
)
from taperoom.events import Event, EventBus
from taperoom.jobs import Priority
from taperoom.library.analysis.results import (
    ANALYSIS_VERSION,
    basic_fields,
    characteristics_fields,
    levels_from_contract,
)
from taperoom.library.jobqueue import (
    PRUNE_INTERVAL,
    JobExists,
    JobInfo,
    JobQueue,
    JobRun,
    RunAgain,
)
from taperoom.library.models import AnalysisJob, utcnow
from taperoom.library.repository import analysis as repo
from taperoom.library.schemas import (
    AnalysisOptions,
    AnalysisRequestBody,
    CallbackBody,
    ReanalyzeBody,
    iso,
)
from taperoom.library.tracks import canonical_id

if TYPE_CHECKING:
    from taperoom.library.analysis.external import ExternalAnalysis

log = logging.getLogger(__name__)

#: Job kind of analyses in the job layer.
KIND = "analysis"
#: The contract's stages that this process computes, in order.
LOCAL_STAGES = ("basic_features", "characteristics")
#: Every stage name of the contract's options and callbacks.
OPTION_STAGES = ("basic_features", "characteristics", "genre", "stems", "segments",
                 "transitions")
#: Shortest time between two ``analysis:progress`` events during decoding, s.
PROGRESS_INTERVAL = 0.5
#: Share of a job's progress per analyzer stage (decoding dominates).
_WEIGHTS = {"decode": 70, "rhythm": 12, "key": 5, "waveforms": 3, "loudness": 5,
            "characteristics": 5}
_QUICK_WEIGHTS = {"decode": 75, "rhythm": 15, "key": 6, "waveforms": 4}
#: What a job id may look like: an audio hash, or the id an external server gave.
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
#: The contract's priority names and their job priorities.
PRIORITIES = {"low": Priority.LOW, "normal": Priority.NORMAL, "high": Priority.HIGH}


def priority_name(value: int) -> str:
    """The contract's name of a job priority (``URGENT`` shows as ``high``)."""
    if value >= Priority.HIGH:
        return "high"
    return "normal" if value >= Priority.NORMAL else "low"


# ------------------------------------------------------------------------ errors


class AnalysisRefusal(TaperoomError):
    """An ``/api/analysis`` error, answered bare as the contract's analysis routes do:
    ``{"error": <short>, "message": <why>}`` (no ``success`` envelope).

    Parameters
    ----------
    error : str
        The short ``error`` (``"Invalid request"``, ``"Job not found"``...).
    message : str
        What is wrong.
    """

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """``{"error", "message"}``, whatever the app's envelope."""
        return {"error": self.error, "message": self.message}


class AnalysisInvalid(AnalysisRefusal, InvalidInput):
    """A malformed analysis request (HTTP 400)."""


class AnalysisNotFound(AnalysisRefusal, NotFound):
    """No such track, job or waveform (HTTP 404)."""


class AnalysisForbidden(AnalysisRefusal, Forbidden):
    """A callback without its job's secret (HTTP 403)."""


class AnalysisConflict(AnalysisRefusal, Conflict):
    """The request does not fit the job's or track's state (HTTP 409)."""


class AnalysisUnavailable(AnalysisRefusal, Busy):
    """The analyzer cannot run here (HTTP 503)."""


class _Stopped(Exception):
    """The running analysis was cancelled or its process is stopping."""


def _parse(model: type[BaseModel], body: Any, error: str) -> Any:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise AnalysisInvalid(error, "the body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise AnalysisInvalid(error, f"{where}: {first.get('msg')}" if where
                              else str(first.get("msg"))) from None


# ---------------------------------------------------------------------- protocols


class LeaderCalling(Protocol):
    """Runs registered functions in the leader
    (:class:`~taperoom.library.leadercalls.LeaderCalls`)."""

    def register(self, name: str, fn: Callable[..., Any]) -> None: ...

    def call(self, name: str, *args: Any) -> Any: ...


Analyzer = Callable[..., Any]


def _load_analyzer() -> Analyzer:
    """:func:`taperoom.analysis.analyzer.analyze_file` (imported on first use: numpy,
    scipy and essentia load only in a process that analyses)."""
    module = importlib.import_module("taperoom.analysis.analyzer")
    fn: Analyzer = module.analyze_file
    return fn


# ----------------------------------------------------------------------- service


class AnalysisService:
    """Queues, runs, cancels and reports the analysis of the library's tracks.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    bus : EventBus
        Receives the ``analysis:*`` and ``track:updated`` events; the service
        listens for ``library:directory:scan:*`` and ``track:added``.
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
        self.db = db
        self.bus = bus
        self.jobs = jobs
        self.calls = calls
        self.max_concurrent = max_concurrent
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.bpm_range = bpm_range
        self.analyze_on_scan = analyze_on_scan
        self.reacts = reacts
        self._analyzer = analyzer
        self.worker_node = worker_node
        self.worker_timeout = worker_timeout
        self._workers: dict[str, tuple[float, int]] = {}
        self.external = external
        self._analyzer_error: str | None = None
        self.keep_days = keep_days
        self.prune_interval = prune_interval
        self._pruner: threading.Thread | None = None
        self._prune_stop = threading.Event()
        self._scanning: set[str] = set()
        self._lock = threading.Lock()
        self._auto = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analysis-auto")
        jobs.register(KIND, self._run_job, concurrency=max_concurrent,
                      cancelled_result=lambda job: {"cancelled": True})
        calls.register("analysis.state", self._local_state)
        calls.register("analysis.start", self._local_start)
        calls.register("analysis.stop", self._local_stop)
        self._unsubscribe = [
            bus.on(Event.SCAN_STARTED, self._on_scan_started),
            bus.on(Event.SCAN_COMPLETE, self._on_scan_complete),
            bus.on(Event.TRACK_ADDED, self._on_track_added),
            bus.on(Event.ANALYSIS_WORKER, self._on_worker),
            bus.on(Event.TRACK_UPDATED, self._on_track_updated),
        ]

    # ------------------------------------------------------------------ analyzer

    def analyzer(self) -> Analyzer:
        """The analysis function.

        Raises
        ------
        AnalysisUnavailable
            The analyzer's modules cannot be loaded (e.g. essentia is missing).
        """
        if self._analyzer is None:
            try:
                self._analyzer = _load_analyzer()
            except Exception as exc:
                self._analyzer_error = f"{type(exc).__name__}: {exc}"
                raise AnalysisUnavailable("Analyzer unavailable",
                                          f"the analyzer cannot be loaded: {exc}") from exc
        return self._analyzer

    def _healthy(self) -> tuple[bool, str | None]:
        if self.external is not None:
            return self.external.healthy()
        try:
            self.analyzer()
        except AnalysisUnavailable as exc:
            return False, exc.message
        return True, None

    # --------------------------------------------------------------- reactions

    def _on_scan_started(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._scanning.add(str(data.get("directoryId")))

    def _on_scan_complete(self, data: dict[str, Any]) -> None:
        directory_id = str(data.get("directoryId"))
        with self._lock:
            self._scanning.discard(directory_id)
        if self.analyze_on_scan and self.reacts():
            self._auto.submit(self._queue_quietly, directory_id)

    def _on_track_added(self, data: dict[str, Any]) -> None:
        """A track the watcher or ``POST /api/tracks`` added (a scan's own are queued
        together when it completes)."""
        if not (self.analyze_on_scan and self.reacts()):
            return
        track = data.get("track") or {}
        with self._lock:
            if str(track.get("library_directory_id")) in self._scanning:
                return
        track_id = str(data.get("trackId"))
        self._auto.submit(self._queue_quietly, None, [track_id])

    def _on_track_updated(self, data: dict[str, Any]) -> None:
        """A track whose analysis a scan cleared (``track:updated`` with ``date_analyzed``
        null: its file has new audio) is analysed again, like a new track: at once when
        the watcher found it, with the rest of its folder when a scan of the folder
        completes."""
        changes = data.get("changes") or {}
        if not ("date_analyzed" in changes and changes["date_analyzed"] is None
                and self.analyze_on_scan and self.reacts()):
            return
        self._auto.submit(self._requeue_quietly, str(data.get("trackId")))

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
                _, new = self._queue(track_id, file_hash, Priority.LOW, AnalysisOptions(),
                                     source="auto")
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
            self._auto.submit(self._queue_quietly, None)

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

    # ----------------------------------------------------------------- pruning

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
            stop = self._prune_stop = threading.Event()
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
            self._prune_stop.set()
        if thread is not None:
            thread.join(10)

    # ---------------------------------------------------------------- requests

    def _track(self, s: Session, track_id: str) -> Any:
        canonical = canonical_id(track_id)  # track ids are UUIDs (contract §1)
        track = repo.get_track(s, canonical) if canonical is not None else None
        if track is None:
            raise AnalysisNotFound("Track not found", f"Track with ID {track_id} does not exist")
        return track

    def _queue(self, track_id: str, file_hash: str, priority: int, options: AnalysisOptions,
               *, source: str, force: bool = False, quick: bool = False,
               metadata: dict[str, Any] | None = None) -> tuple[AnalysisJob, int]:
        """Queue the analysis of `file_hash` for `track_id`, or raise the priority of its
        waiting job. Returns (its ``analysis_jobs`` row, 1 when queued now else 0)."""
        active = self.jobs.active(KIND, file_hash)
        if active is not None:
            return self._joined(active, priority), 0
        stages = [s for s in LOCAL_STAGES if getattr(options, s)] or ["basic_features"]
        asked = ([s for s in OPTION_STAGES if getattr(options, s)] or stages
                 if self.external is not None else stages)  # the server does them all
        with transaction(self.db) as s:
            track = self._track(s, track_id)
            row = repo.insert_job(
                s, job_id=file_hash, track_id=track_id, file_path=track.file_path,
                status="queued", priority=priority_name(priority),
                options=options.model_dump(), stages_completed=[],
                stages_total=len(asked), progress_percent=0, retry_count=0,
                max_retries=self.max_retries, created_at=utcnow(),
                callback_metadata=metadata)
            repo.end_active_rows(s, file_hash, "failed", keep=row.id,
                                 error="Superseded by a newer request")
        try:
            self.jobs.submit(KIND, file_hash, priority=priority, params={
                "track_id": track_id, "row": row.id, "stages": stages, "quick": quick,
                "force": force, "source": source})
        except JobExists as exc:  # another process queued it in between
            with transaction(self.db) as s:
                repo.update_job(s, row.id, status="cancelled", completed_at=utcnow(),
                                last_error="Joined the job already queued")
            return self._joined(exc.job, priority), 0
        return row, 1

    def _joined(self, active: JobInfo, priority: int) -> AnalysisJob:
        """The row of an active job, moved up to `priority` when that is higher."""
        if priority > active.priority and active.state == "queued":
            self.jobs.promote(KIND, active.subject, priority)
            with transaction(self.db) as s:
                row = repo.active_row(s, active.subject)
                if row is not None:
                    repo.update_job(s, row.id, priority=priority_name(priority))
        with self.db() as s:
            row = repo.active_row(s, active.subject) or repo.latest_job(s, active.subject)
        if row is None:  # a job row without its contract row (queued by an older version)
            with transaction(self.db) as s:
                row = repo.insert_job(s, job_id=active.subject,
                                      track_id=active.params.get("track_id"),
                                      status="queued", priority=priority_name(priority),
                                      options=AnalysisOptions().model_dump(),
                                      stages_completed=[], stages_total=2,
                                      max_retries=self.max_retries, created_at=utcnow())
        return row

    def request(self, body: Any) -> dict[str, Any]:
        """``POST /api/analysis/request``: queue one track's analysis.

        A track already analysed (tempo, key and ``date_analyzed`` known) is not
        analysed again unless ``force``; its last job is answered. A track whose
        recording is already queued or running joins that job (which moves up
        when this request's priority is higher).

        Returns
        -------
        dict
            ``{"message": "Analysis requested successfully", "job": {job_id,
            track_id, status, priority, progress_percent, created_at}}``.

        Raises
        ------
        AnalysisInvalid
            ``Invalid request``: malformed body (400).
        AnalysisNotFound
            No such track (404).
        AnalysisConflict
            The track has no audio hash yet (not scanned) (409).
        """
        req: AnalysisRequestBody = _parse(AnalysisRequestBody, body, "Invalid request")
        self._check_options(req.options)
        with self.db() as s:
            track = self._track(s, req.track_id)
            file_hash, analysed = track.file_hash, (
                track.date_analyzed is not None and track.bpm is not None
                and track.musical_key is not None
                and (track.stems_path is not None or not req.options.stems))
            analysed_at = track.date_analyzed
        if not file_hash:
            raise AnalysisConflict("Invalid request", "The track has no audio hash yet: "
                                   "scan its folder first")
        if analysed and not req.force and self.jobs.active(KIND, file_hash) is None:
            with self.db() as s:
                last = repo.latest_job(s, file_hash)
            job = (_summary(last) if last is not None and last.status == "completed"
                   else {"job_id": file_hash, "track_id": req.track_id, "status": "completed",
                         "priority": req.priority, "progress_percent": 100,
                         "created_at": iso(analysed_at)})
            return {"message": "Analysis requested successfully", "job": job}
        row, _ = self._queue(req.track_id, file_hash, PRIORITIES[req.priority], req.options,
                             source="request", force=req.force)
        return {"message": "Analysis requested successfully", "job": _summary(row)}

    def _check_options(self, options: AnalysisOptions) -> None:
        """Stems need an external analysis server (400 without one)."""
        if options.stems and self.external is None:
            raise AnalysisInvalid("Invalid request", "Stems come only from an external "
                                  "analysis server: set ANALYSIS_SERVER_URL to ask for them")

    def reanalyze(self, body: Any) -> dict[str, Any]:
        """``POST /api/analysis/reanalyze``: queue the analysis of several tracks again.

        Returns
        -------
        dict
            ``{"message": "Re-analysis queued for N tracks", "summary":
            {total_requested, queued, failed, errors: [{track_id, error}]}}``;
            ``queued`` counts the tracks whose recording is queued or running now.

        Raises
        ------
        AnalysisInvalid
            ``Invalid request``: nothing chosen, or no track matches (400).
        """
        req: ReanalyzeBody = _parse(ReanalyzeBody, body, "Invalid request")
        self._check_options(req.options)
        if not (req.track_ids or req.library_id or req.all):
            raise AnalysisInvalid("Invalid request",
                                  "give track_ids, a library_id, or all: true")
        with self.db() as s:
            if req.all:
                chosen = repo.track_hashes(s)
            elif req.library_id:
                chosen = repo.track_hashes(s, directory_id=canonical_id(req.library_id)
                                           or "-")
            else:
                chosen = repo.track_hashes(
                    s, track_ids=[c for t in req.track_ids or () if (c := canonical_id(t))],
                    present=False)
        requested = list(dict.fromkeys(canonical_id(t) or t for t in req.track_ids)
                         ) if req.track_ids else [
            t for t, _ in chosen]
        if not requested:
            raise AnalysisInvalid("Invalid request", "No tracks to re-analyse")
        default = "normal" if req.track_ids else "low"
        priority = PRIORITIES[req.priority or default]
        hashes = dict(chosen)
        errors: list[dict[str, str]] = []
        queued = 0
        done: set[str] = set()
        for track_id in requested:
            file_hash = hashes.get(track_id)
            if track_id not in hashes:
                errors.append({"track_id": track_id, "error": "Track not found"})
                continue
            if not file_hash:
                errors.append({"track_id": track_id, "error": "The track has no audio hash"})
                continue
            if file_hash not in done:
                try:
                    self._queue(track_id, file_hash, priority, req.options,
                                source="reanalyze", force=True)
                except TaperoomError as exc:
                    errors.append({"track_id": track_id, "error": exc.message})
                    continue
                done.add(file_hash)
            queued += 1
        return {"message": f"Re-analysis queued for {queued} tracks",
                "summary": {"total_requested": len(requested), "queued": queued,
                            "failed": len(errors), "errors": errors}}

    def analyze_for_deck(self, track_id: str) -> dict[str, Any] | None:
        """A track was loaded on a deck: analyse it first, quick part first.

        Its recording's job runs at ``URGENT`` priority: a quick pass (tempo,
        beat grid, key, waveforms) whose results are stored at once, then the
        rest of the analysis goes back to the queue at ``normal`` priority. A
        track already analysed gets nothing; a running job is left to run; a
        waiting one is replaced by the quick one.

        Returns
        -------
        dict or None
            The job (as :meth:`job` answers it), or None when there is nothing to do.

        Raises
        ------
        AnalysisNotFound
            No such track.
        AnalysisConflict
            The track has no audio hash yet.
        """
        with self.db() as s:
            track = self._track(s, track_id)
            file_hash = track.file_hash
            ready = track.bpm is not None and track.musical_key is not None and bool(
                repo.waveform_levels(s, file_hash or ""))
        if not file_hash:
            raise AnalysisConflict("Invalid request", "The track has no audio hash yet")
        active = self.jobs.active(KIND, file_hash)
        if active is not None and active.state == "running":
            return self.job(file_hash)
        if ready and active is None:
            return None
        if active is not None:
            with contextlib.suppress(TaperoomError):
                self.cancel(file_hash)
        row, _ = self._queue(track_id, file_hash, Priority.URGENT, AnalysisOptions(),
                             source="deck", force=True, quick=True,
                             metadata={"type": "deck_load", "trackId": track_id})
        return self.job(row.job_id)

    # ---------------------------------------------------------------- running

    def _run_job(self, run: JobRun) -> dict[str, Any]:
        """Handler of ``analysis`` jobs (a consumer thread of the leader): this process's
        analyzer, or the external server when there is one."""
        return self._analyse(run, retries=True, external=self.external)

    def _analyse(self, run: JobRun, *, retries: bool,
                 progress: Callable[[str, int], None] | None = None,
                 external: ExternalAnalysis | None = None) -> dict[str, Any]:
        file_hash = run.info.subject
        params = run.info.params
        stages = [s for s in params.get("stages", LOCAL_STAGES) if s in LOCAL_STAGES]
        with transaction(self.db) as s:
            row = repo.active_row(s, file_hash)
            if row is None:
                row = repo.insert_job(
                    s, job_id=file_hash, track_id=params.get("track_id"), status="queued",
                    priority=priority_name(run.info.priority),
                    options=AnalysisOptions().model_dump(), stages_completed=[],
                    stages_total=len(stages), max_retries=self.max_retries,
                    created_at=utcnow())
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
            return self._failed(row_id, file_hash, track_id, track_ids, error)
        with transaction(self.db) as s:
            repo.update_job(s, row_id, status="processing", started_at=utcnow(),
                            next_attempt_at=None, file_path=wanted or path)
        base = {"jobId": file_hash, "trackId": track_id, "trackIds": track_ids}
        self.bus.send(Event.ANALYSIS_STARTED, dict(base))
        if external is not None:
            outcome = external.run(run, row_id, file_hash, path)
            if outcome.state == "ended":
                return outcome.result
            if outcome.state == "stopped":
                return self._stopped(run, row_id, file_hash, base)
            error = f"Analysis server {external.url}: {outcome.error}"
            if outcome.state == "retry" and retries and retry_count < max_retries:
                self._retry(row_id, file_hash, error, retry_count, max_retries)
            external.abandon_row(row_id)
            return self._failed(row_id, file_hash, track_id, track_ids, error,
                                retry_count=retry_count)
        only_basic = "characteristics" not in stages
        weights = _QUICK_WEIGHTS if quick or only_basic else _WEIGHTS
        reporter = _Reporter(self, run, row_id, base, weights, progress)
        try:
            result = self.analyzer()(path, quick=quick or only_basic, bpm_range=self.bpm_range,
                                     progress=reporter)
        except _Stopped:
            return self._stopped(run, row_id, file_hash, base)
        except AnalysisUnavailable as exc:
            return self._failed(row_id, file_hash, track_id, track_ids, exc.message)
        except Exception as exc:
            error = f"Cannot analyse {path}: {_reason(exc)}"
            if run.cancelled.is_set():
                return self._stopped(run, row_id, file_hash, base)
            if retries and retry_count < max_retries:
                self._retry(row_id, file_hash, error, retry_count, max_retries)
            return self._failed(row_id, file_hash, track_id, track_ids, error,
                                retry_count=retry_count)
        if run.cancelled.is_set() or not self.jobs.still_runs(run):
            return self._stopped(run, row_id, file_hash, base)
        fields = self.store_stage(file_hash, "basic_features", result.basic_features(),
                                  levels=result.waveforms)
        done_stages = ["basic_features"]
        chars = result.characteristics()
        if chars is not None and "characteristics" in stages:
            fields |= self.store_stage(file_hash, "characteristics", chars)
            done_stages.append("characteristics")
        if quick and "characteristics" in stages:  # the rest later, at normal priority
            with transaction(self.db) as s:
                repo.update_job(s, row_id, status="queued", stages_completed=done_stages,
                                progress_percent=_percent(done_stages, stages),
                                priority=priority_name(Priority.NORMAL))
            self.bus.send(Event.ANALYSIS_PROGRESS, base | {
                "progress": _percent(done_stages, stages), "stage": "basic_features"})
            raise RunAgain(0.0, priority=Priority.NORMAL, reason="quick pass done")
        self._completed(row_id, file_hash, done_stages, base, fields)
        return {"tracks": track_ids, "stages": done_stages, "bpm": fields.get("bpm"),
                "key": fields.get("musical_key"), "mode": fields.get("mode")}

    def _retry(self, row_id: int, file_hash: str, error: str, retry_count: int,
               max_retries: int) -> None:
        """Queue the job again after ``ANALYSIS_RETRY_DELAY`` x 2^retry_count seconds.

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
        log.info("analysis %s failed (attempt %d of %d), retried in %.1f s: %s",
                 file_hash, retry_count + 1, max_retries + 1, delay, error)
        raise RunAgain(delay, reason=error)

    def _stopped(self, run: JobRun, row_id: int, file_hash: str,
                 base: dict[str, Any]) -> dict[str, Any]:
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

    def _failed(self, row_id: int, file_hash: str, track_id: str | None,
                track_ids: list[str], error: str, *, retry_count: int | None = None
                ) -> dict[str, Any]:
        values: dict[str, Any] = {"status": "failed", "last_error": error,
                                  "completed_at": utcnow(), "next_attempt_at": None}
        if retry_count is not None:
            values["retry_count"] = retry_count
        with transaction(self.db) as s:
            repo.update_job(s, row_id, **values)
        log.warning("analysis %s failed: %s", file_hash, error)
        self.bus.send(Event.ANALYSIS_FAILED, {"jobId": file_hash, "trackId": track_id,
                                              "trackIds": track_ids, "status": "failed",
                                              "error": error})
        return {"error": error}

    def _completed(self, row_id: int, file_hash: str, done_stages: list[str],
                   base: dict[str, Any], fields: dict[str, Any]) -> None:
        now = utcnow()
        with transaction(self.db) as s:
            repo.apply_results(s, file_hash, {"date_analyzed": now,
                                              "analysis_version": ANALYSIS_VERSION})
            repo.update_job(s, row_id, status="completed", stages_completed=done_stages,
                            progress_percent=100, completed_at=now, next_attempt_at=None)
        results = {k: v for k, v in fields.items() if not k.endswith("_data")}
        results["date_analyzed"] = iso(now)
        self.bus.send(Event.ANALYSIS_COMPLETE, base | {"results": results})

    # ----------------------------------------------------------------- results

    def store_stage(self, file_hash: str, stage: str, data: dict[str, Any], *,
                    levels: list[Any] | None = None) -> dict[str, Any]:
        """Store one stage's data on every track of `file_hash` (and its waveforms).

        The one road of results into the library, for this process's analyzer and
        an external server's callbacks alike.

        Parameters
        ----------
        file_hash : str
        stage : {"basic_features", "characteristics", "stems"}
            Other stages are accepted and not stored (as the original did);
            ``stems`` (an external server's) are converted to WAV in the stem
            cache (:class:`~taperoom.library.analysis.stems.StemStore`) and set
            ``stems_path``.
        data : dict
            The stage's data (contract §3).
        levels : list of WaveformLevel, optional
            The waveforms already as levels (this process's analyzer); else
            those of ``data["waveforms"]``, if any.

        Returns
        -------
        dict
            The columns the stage sets (before each track's own fields are kept).

        Raises
        ------
        ValueError
            A value of `data` has the wrong type.
        """
        from taperoom.analysis.waveform import encode_waveforms

        if stage == "basic_features":
            fields = basic_fields(data)
            if levels is None and data.get("waveforms") is not None:
                levels = levels_from_contract(data["waveforms"])
        elif stage == "characteristics":
            fields = characteristics_fields(data)
        elif stage == "stems" and self.external is not None:
            fields = {"stems_path": self.external.stems.store(file_hash, data)}
        else:
            return {}
        blobs = [(lv.zoom_level, lv.sample_rate, lv.samples_per_pixel, lv.num_pixels,
                  encode_waveforms([lv])) for lv in levels or ()]
        with transaction(self.db) as s:
            written = repo.apply_results(s, file_hash, fields)
            if blobs:
                repo.replace_waveforms(s, file_hash, blobs)
        for track_id, changes in written.items():
            shown = {k: v for k, v in changes.items() if not k.endswith("_data")}
            if shown:
                self.bus.send(Event.TRACK_UPDATED, {"trackId": track_id, "changes": shown})
        return fields

    # ----------------------------------------------------------------- queries

    @staticmethod
    def _job_id(job_id: str) -> str:
        """`job_id` when it can be one (an audio hash, or an external server's id)."""
        if not _JOB_ID.fullmatch(job_id or ""):
            raise AnalysisNotFound("Job not found", "No analysis job with that id")
        return job_id

    def job(self, job_id: str) -> dict[str, Any]:
        """``GET /api/analysis/jobs/:jobId``: the newest job of an audio hash, in the
        contract's shape (progress of a running job as its process last wrote it).

        Raises
        ------
        AnalysisNotFound
            ``Job not found``.
        """
        job_id = self._job_id(job_id)
        with self.db() as s:
            row = repo.latest_job(s, job_id)
            if row is None:
                raise AnalysisNotFound("Job not found", f"No analysis job {job_id}")
            out = _job_dict(row)
        if out["status"] == "processing":
            active = self.jobs.active(KIND, job_id)
            live = (active.progress or {}).get("progress") if active is not None else None
            if isinstance(live, int | float) and live > out["progress_percent"]:
                out["progress_percent"] = int(live)
        return out

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
        job_id = self._job_id(job_id)
        try:
            self.jobs.cancel(KIND, job_id)
            cancelled = True
        except NotFound:
            cancelled = False
        with transaction(self.db) as s:
            row = repo.latest_job(s, job_id)
            if row is None:
                raise AnalysisNotFound("Job not found", f"No analysis job {job_id}")
            remote_id = row.remote_job_id
            ended = repo.end_active_rows(s, job_id, "cancelled")
        if not (cancelled or ended):
            raise AnalysisConflict("Job already finished",
                                   f"Analysis job {job_id} is {row.status}")
        if ended and remote_id and self.external is not None:  # also when none waits for it
            self.external.abandon(remote_id)
        return {"message": "Job cancelled successfully", "job_id": job_id}

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
        consuming = bool(self._with_workers(self._state()).get("consuming"))
        slots = (sum(w["slots"] for w in self.workers()) if self.max_concurrent == 0
                 else self.max_concurrent)
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
            track = self._track(s, track_id)
            rows = (repo.waveforms_of(s, track.file_hash, zoom=level) if track.file_hash
                    else [])
            waves = [waveform_dict(w) for w in rows]
        if level is None:
            return {"track_id": track_id, "waveforms": waves}
        if not waves:
            raise AnalysisNotFound("Waveform not found",
                                   f"No waveform of zoom level {level} for track {track_id}")
        return {"waveform": waves[0]}

    # ----------------------------------------------------------- the consumers

    def _local_state(self) -> dict[str, Any]:
        healthy, why = self._healthy()
        return {"consuming": self.jobs.consuming(KIND), "pid": os.getpid(),
                "healthy": healthy, "why": why}

    def _local_start(self) -> dict[str, Any]:
        if self._healthy()[0] and self.max_concurrent > 0:
            self.jobs.resume_kind(KIND)
        return self._local_state()

    def _local_stop(self) -> dict[str, Any]:
        self.jobs.stop_kind(KIND)
        return self._local_state()

    def _state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.calls.call("analysis.state")
        return state

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
        return _status(self._with_workers(self._state()), self.external)

    def start(self) -> dict[str, Any]:
        """``POST /api/analysis/start``: run the analysis consumers again (after ``stop``).

        Raises
        ------
        AnalysisUnavailable
            The analyzer cannot be loaded (503).
        """
        return {"message": "Analysis server started successfully",
                "status": _status(self._started(), self.external)}

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
                "status": _status(self._started(), self.external)}

    # ------------------------------------------------------------ worker processes

    def announce(self, node: str, slots: int) -> None:
        """Say on the bus (and through the event relay, to the server) that this
        ``taperoom library worker`` process runs up to `slots` analyses at once; the
        worker calls it every few seconds."""
        self.bus.send(Event.ANALYSIS_WORKER, {"node": node, "slots": slots,
                                              "pid": os.getpid()})

    def _on_worker(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._workers[f"{data.get('node')}:{data.get('pid')}"] = (
                time.monotonic(), int(data.get("slots") or 0))

    def workers(self) -> list[dict[str, Any]]:
        """The worker processes heard from within :attr:`worker_timeout` seconds:
        ``[{node, pid, slots}]``, by node name."""
        now = time.monotonic()
        with self._lock:
            seen = {k: v for k, v in self._workers.items()
                    if now - v[0] <= self.worker_timeout}
            self._workers = seen
        return sorted(({"node": k.rpartition(":")[0], "pid": int(k.rpartition(":")[2] or 0),
                        "slots": slots} for k, (_, slots) in seen.items()),
                      key=lambda w: (w["node"], w["pid"]))

    def _with_workers(self, state: dict[str, Any]) -> dict[str, Any]:
        """The leader's state, processing and healthy when it leaves the analysis to
        worker processes (``MAX_CONCURRENT_ANALYSIS=0``) and one is alive."""
        if self.max_concurrent == 0 and not state.get("consuming") and self.workers():
            return state | {"consuming": True, "healthy": True}
        return state

    def health(self) -> tuple[bool, dict[str, Any]]:
        """``GET /api/analysis/health``: (healthy, ``{status, message}``); unhealthy
        when the analyzer cannot load or its consumers are stopped. With
        ``MAX_CONCURRENT_ANALYSIS=0``: healthy while a worker process is alive."""
        if self.max_concurrent == 0:
            workers = self.workers()
            if not workers:
                return False, {"status": "unhealthy", "message": (
                    "No analysis worker is running (MAX_CONCURRENT_ANALYSIS=0 leaves the "
                    "analysis to taperoom library worker processes)")}
            names = ", ".join(sorted({w["node"] for w in workers}))
            return True, {"status": "healthy", "message": (
                f"Analysis is running in {len(workers)} worker process(es) on {names}")}
        state = self._state()
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

    # ---------------------------------------------------------------- callback

    def callback(self, body: Any, token: str | None = None) -> dict[str, Any]:
        """``POST /api/analysis/callback``: store one stage an external analysis server
        sends (contract §3), through :meth:`store_stage`.

        ``job_id`` is the audio hash, or the job id the server gave (a callback
        that comes before the server's answer named it is found by its token);
        ``stage`` one of
        ``basic_features``, ``characteristics``, ``stems`` (stored), ``genre``,
        ``segments``, ``transitions`` (accepted, not stored), ``job_completed``,
        ``job_failed``, ``error`` (``data.error``); a stage of status ``skipped``
        (the server cannot do it) counts as done with nothing stored. The job
        completes when every stage it asked for has come, or at ``job_completed``.
        A skipped stage's reason goes to ``last_error``.

        Parameters
        ----------
        body : Any
            The JSON body.
        token : str, optional
            The ``token`` query parameter: the job's ``callback_token``, given
            only to the server the job was sent to (:mod:`.external`).

        Raises
        ------
        AnalysisInvalid
            ``Invalid callback``: no ``job_id`` or ``stage``, or stage data of the
            wrong type (400).
        AnalysisNotFound
            No such job (404).
        AnalysisForbidden
            The job was not sent to an analysis server, or `token` is not its
            secret (403); nothing is stored.
        AnalysisConflict
            The job was cancelled or has failed (409); nothing is stored. A
            callback for a completed job is acknowledged and stores nothing.
        """
        req: CallbackBody = _parse(CallbackBody, body, "Invalid callback")
        if not req.job_id or not req.stage:
            raise AnalysisInvalid("Invalid callback", "job_id and stage are required")
        self._job_id(req.job_id)
        with self.db() as s:
            row = repo.latest_job(s, req.job_id) or repo.job_by_remote_id(s, req.job_id)
            if row is None:  # a server naming jobs its own way, before its answer named it
                early = repo.job_by_callback_token(s, token or "")
                row = early if early is not None and early.remote_job_id is None else None
            if row is None:
                raise AnalysisNotFound("Job not found", f"No analysis job {req.job_id}")
            if not row.callback_token or not hmac.compare_digest(
                    (token or "").encode(), row.callback_token.encode()):
                raise AnalysisForbidden("Invalid callback", "Wrong or missing callback token "
                                        "for this job")
            row_id, file_hash, track_id = row.id, row.job_id, row.track_id
            status = row.status
            done = list(row.stages_completed or [])
            options = dict(row.options or {})
            requested = [k for k in OPTION_STAGES if options.get(k, k in LOCAL_STAGES)]
            tracks = [t.id for t in repo.tracks_with_hash(s, file_hash)]
        ack = {"message": "Callback acknowledged", "job_id": req.job_id, "stage": req.stage}
        if status in ("cancelled", "failed"):
            raise AnalysisConflict("Invalid callback", f"Analysis job {req.job_id} is {status}")
        if status == "completed":  # its last stage came already: a late copy changes nothing
            return ack
        base = {"jobId": file_hash, "trackId": track_id, "trackIds": tracks}
        data = req.data or {}
        stage = req.stage
        if stage in ("job_failed", "error"):
            error = str(data.get("error") or req.status or stage)
            self._failed(row_id, file_hash, track_id, tracks, error)
            self._drop_local(file_hash)
            return ack
        fields: dict[str, Any] = {}
        if stage in OPTION_STAGES:
            if req.status == "skipped":  # the server cannot do it (no model): say why
                why = str(data.get("error") or "no reason given")[:300]
                with transaction(self.db) as s:
                    repo.update_job(s, row_id, last_error=f"{stage} skipped by the "
                                    f"analysis server: {why}")
            else:
                try:
                    fields = self.store_stage(file_hash, stage, data)
                except ValueError as exc:
                    with transaction(self.db) as s:
                        repo.update_job(s, row_id, last_error=f"{stage}: {exc}")
                    raise AnalysisInvalid("Invalid callback", f"{stage}: {exc}") from None
            if stage not in done:
                done.append(stage)
        elif stage != "job_completed":
            raise AnalysisInvalid("Invalid callback", f"unknown stage {stage!r}")
        percent = min(100, _percent(done, requested or list(LOCAL_STAGES)))
        if stage == "job_completed" or percent >= 100:
            self._completed(row_id, file_hash, done, base, fields)
            self._drop_local(file_hash)
        else:
            with transaction(self.db) as s:
                repo.update_job(s, row_id, status="processing", stages_completed=done,
                                progress_percent=percent)
            self.bus.send(Event.ANALYSIS_PROGRESS, base | {"progress": percent,
                                                           "stage": stage})
        return ack

    def _drop_local(self, file_hash: str) -> None:
        """An external server finished the job: this process's queue must not run it,
        and a consumer waiting for its end sees it at once."""
        if self.external is not None:
            self.external.changed()
        with contextlib.suppress(NotFound):
            self.jobs.cancel(KIND, file_hash)

    # ----------------------------------------------------------------- the CLI

    def analyze_here(self, track_ids: Iterable[str] | None, *, force: bool,
                     progress: Callable[[str, str, int], None] | None = None,
                     planned: Callable[[int], None] | None = None,
                     workers: int = 1) -> dict[str, Any]:
        """Analyse tracks in this process (``taperoom library analyze``), each recording
        once, `workers` at a time; a recording the server is analysing is waited for.

        Parameters
        ----------
        track_ids : iterable of str or None
            The tracks; None for every present track.
        force : bool
            Analyse tracks that have an analysis already too.
        progress : callable(file_hash, stage, percent), optional
            Called during each analysis (``stage`` ``"done"``/``"failed"`` at its end).
        planned : callable(int), optional
            Told how many recordings will be analysed, before the first starts.
        workers : int
            Analyses at once (threads).

        Returns
        -------
        dict
            ``{"requested", "analysed", "skipped", "failed", "errors": [{track_id,
            error}]}``, counted in tracks (``skipped``: analysed already).

        Raises
        ------
        AnalysisNotFound
            An id names no track.
        """
        with self.db() as s:
            ids = list(dict.fromkeys(track_ids)) if track_ids is not None else None
            chosen = repo.track_hashes(s, track_ids=ids, present=ids is None)
            if ids is not None:
                missing = sorted(set(ids) - {t for t, _ in chosen})
                if missing:
                    raise AnalysisNotFound("Track not found",
                                           f"No track with ID {', '.join(missing)}")
            todo = chosen if force else repo.track_hashes(
                s, track_ids=[t for t, _ in chosen], unanalysed=True, present=False)
        per_hash: dict[str, list[str]] = {}
        errors: list[dict[str, str]] = []
        for track_id, file_hash in todo:
            if not file_hash:
                errors.append({"track_id": track_id, "error": "The track has no audio hash"})
            else:
                per_hash.setdefault(file_hash, []).append(track_id)
        outcome = {"analysed": 0}
        lock = threading.Lock()
        if planned is not None:
            planned(len(per_hash))

        stop = threading.Event()

        def one(item: tuple[str, list[str]]) -> None:
            file_hash, ids = item
            if stop.is_set():
                return
            error = self._analyse_one_here(file_hash, ids[0], progress, stop)
            with lock:
                if error is None:
                    outcome["analysed"] += len(ids)
                else:
                    errors.extend({"track_id": t, "error": error} for t in ids)

        pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="analyze")
        try:
            for future in [pool.submit(one, item) for item in per_hash.items()]:
                future.result()
        except BaseException:  # Ctrl-C: the running analyses end as cancelled
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        requested = len(chosen)
        return {"requested": requested, "analysed": outcome["analysed"],
                "skipped": requested - len(todo), "failed": len(errors),
                "errors": errors}

    def _analyse_one_here(self, file_hash: str, track_id: str,
                          progress: Callable[[str, str, int], None] | None,
                          stop: threading.Event) -> str | None:
        """Analyse one recording in this thread (or take its job from the queue, where it
        waits for the server); its error, or None. A job the server runs now is
        waited for."""

        def report(stage: str, percent: int) -> None:
            if stop.is_set():
                raise _Stopped()
            if progress is not None:
                progress(file_hash, stage, percent)

        def handler(run: JobRun) -> dict[str, Any]:
            return self._analyse(run, retries=False, progress=report)

        params = {"track_id": track_id, "stages": list(LOCAL_STAGES), "quick": False,
                  "force": True, "source": "command"}
        result: dict[str, Any] | None
        try:
            result = self.jobs.run_here(KIND, file_hash, params=params, handler=handler)
        except JobExists:
            result = self.jobs.take(KIND, file_hash, handler=handler)
        if result is None:  # the server runs it: wait for its end
            report("waiting", 0)
            self.jobs.wait(KIND, file_hash)
            with self.db() as s:
                last = repo.latest_job(s, file_hash)
                status, error = (last.status, last.last_error) if last else ("failed", None)
            report("done" if status == "completed" else "failed", 100)
            return None if status == "completed" else (error or f"job {status}")
        error = result.get("error")
        report("failed" if error else "done", 100)
        if result.get("cancelled"):
            return "cancelled"
        return str(error) if error else None

    def close(self) -> None:
        """Stop reacting to events and pruning, and finish queueing new tracks."""
        for stop in self._unsubscribe:
            stop()
        self.stop_pruning()
        self._auto.shutdown(wait=True, cancel_futures=True)


class _Reporter:
    """The analyzer's progress callback of one job: job-row progress, events, cancel."""

    def __init__(self, service: AnalysisService, run: JobRun, row_id: int,
                 base: dict[str, Any], weights: dict[str, int],
                 extra: Callable[[str, int], None] | None) -> None:
        self.service = service
        self.run = run
        self.row_id = row_id
        self.base = base
        self.weights = weights
        self.extra = extra
        self.done = 0
        self.last_event = 0.0

    def __call__(self, stage: str, fraction: float) -> None:
        if self.run.cancelled.is_set():
            raise _Stopped()
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
            with transaction(self.service.db) as s:
                repo.update_job(s, self.row_id, progress_percent=percent)
        self.service.bus.send(Event.ANALYSIS_PROGRESS,
                              self.base | {"progress": percent, "stage": stage})


def _reason(exc: BaseException) -> str:
    if isinstance(exc, MediaError):
        return exc.reason
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return f"{type(exc).__name__}: {exc}"


def _percent(done: list[str], stages: list[str]) -> int:
    return round(100 * len([d for d in done if d in stages]) / max(len(stages), 1))


def _status(state: dict[str, Any], external: ExternalAnalysis | None = None
            ) -> dict[str, Any]:
    healthy = bool(state.get("healthy"))
    running = bool(state.get("consuming"))
    where: dict[str, Any] = {"url": None, "port": None, "pid": state.get("pid")}
    if external is not None:  # another process, perhaps on another machine
        where = {"url": external.url, "port": external.port, "pid": None}
    return {**where, "isHealthy": healthy, "isProcessRunning": running,
            "isReady": healthy and running, "autoStart": True}


def _summary(row: AnalysisJob) -> dict[str, Any]:
    return {"job_id": row.job_id, "track_id": row.track_id, "status": row.status,
            "priority": row.priority, "progress_percent": row.progress_percent,
            "created_at": iso(row.created_at)}


def _job_dict(row: AnalysisJob) -> dict[str, Any]:
    return {"id": row.id, "job_id": row.job_id, "track_id": row.track_id,
            "file_path": row.file_path, "status": row.status, "priority": row.priority,
            "options": dict(row.options or {}),
            "stages_completed": list(row.stages_completed or []),
            "stages_total": row.stages_total, "progress_percent": row.progress_percent,
            "retry_count": row.retry_count, "max_retries": row.max_retries,
            "last_error": row.last_error, "created_at": iso(row.created_at),
            "started_at": iso(row.started_at), "completed_at": iso(row.completed_at),
            "last_updated": iso(row.last_updated),
            "callback_metadata": row.callback_metadata}
