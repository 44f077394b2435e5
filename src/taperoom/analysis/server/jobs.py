"""In-process job runner of the analysis server: a bounded queue, a pool of worker
threads, the job table and the callbacks of every stage.

A job goes ``queued`` → ``processing`` → ``completed`` | ``failed``, or to
``cancelled`` from either of the first two (``DELETE /jobs/{id}``). Its id is the
client's track hash (contract §3: the Node.js backend finds its jobs by that
hash); a job posted again while the same id is queued or processing is the same
job (its first request wins), a finished one is replaced.

Callbacks (contract §3), in this order, to the job's ``callback_url``:

- ``basic_features`` and ``characteristics`` (when asked for), status
  ``completed``, with :meth:`~taperoom.analysis.result.AnalysisResult.basic_features`
  and :meth:`~taperoom.analysis.result.AnalysisResult.characteristics`; the
  model-only fields (valence, arousal, acousticness, instrumentalness, genre)
  are null, never invented;
- each asked-for stage this server cannot do (``genre``, ``stems``,
  ``segments``, ``transitions``: no model is installed), status ``skipped``
  with ``data.error`` saying why; sent once, since the Node.js client treats
  such a stage as a placeholder (or, for ``stems``, as an error) and nothing is
  lost if it does not take it;
- then ``job_completed`` (status ``completed``; ``data``: ``stages_completed``,
  ``stages_skipped``, ``processing_time``, ``duration``) or ``job_failed``
  (status ``failed``; ``data.error``: why, e.g. the file is missing or cannot be
  decoded). ``error`` stage callbacks are not sent: the Node.js client counts
  each of them as one more failure of the job.

A cancelled job sends no further callback. Result callbacks are retried with
backoff (:class:`~taperoom.analysis.server.callbacks.CallbackSender`); once one
of a job's callbacks is lost, its later ones are tried once each, so that a
receiver that is gone does not hold a worker for minutes.
"""

from __future__ import annotations

import logging
import shutil
import stat
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from taperoom import __version__
from taperoom.analysis.analyzer import Progress
from taperoom.analysis.contract import MODEL_STAGES, AnalysisOptions
from taperoom.analysis.result import AnalysisResult
from taperoom.analysis.server.callbacks import CallbackSender
from taperoom.errors import Busy, MediaError, NotFound, TaperoomError

__all__ = ["SKIP_REASONS", "Analyze", "Job", "JobRunner", "JobSpec", "JobStatus", "QueueFull"]

log = logging.getLogger(__name__)

#: Why each model stage is skipped (``data.error`` of its callback).
SKIP_REASONS = {
    "genre": "not available: genre needs a trained classification model, and none is "
             "installed on this server",
    "stems": "not available: stem separation needs a separation model, and none is "
             "installed on this server",
    "segments": "not available: this server does not segment tracks",
    "transitions": "not available: this server does not detect transitions",
}

#: Progress (percent) once each analyzer stage is done; decoding fills 0-80.
_STAGE_PROGRESS = {"decode": 80, "rhythm": 85, "key": 88, "waveforms": 91,
                   "loudness": 94, "characteristics": 97}


class Analyze(Protocol):
    """:func:`taperoom.analysis.analyzer.analyze_file`'s signature."""

    def __call__(self, path: str | Path, *, quick: bool = ..., bpm_range: tuple[float, float] = ...,
                 progress: Progress | None = ...) -> AnalysisResult: ...


def _not_a_file(path: Path) -> str | None:
    """Why `path` cannot be analysed as a file (a FIFO, a device, a folder), or None
    (a regular file, or a missing one, which the analyzer reports itself)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot read the file: {exc.strerror or exc}"
    return None if stat.S_ISREG(mode) else "not a regular file"


def _reason(job: Job, exc: Exception) -> str:
    """Why the analysis of `job` failed, naming the file as the client did (an upload's
    own name, not the server's copy)."""
    name = Path(job.spec.source).name
    if isinstance(exc, MediaError):
        return f"{name}: {exc.reason}"
    if isinstance(exc, OSError):
        return f"{name}: {exc.strerror or type(exc).__name__}"
    return str(exc)


class JobStatus(StrEnum):
    """States of a job."""

    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: States a job leaves no more.
FINISHED = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


class QueueFull(Busy):
    """The job queue is full (HTTP 503)."""


class _Cancelled(Exception):
    """Raised from the progress callback to stop the analysis of a cancelled job."""


@dataclass(frozen=True)
class JobSpec:
    """What a request asks for.

    Attributes
    ----------
    job_id : str
        The track hash.
    audio_path : Path
        The file to analyse (the resolved local path, or the upload).
    source : str
        What the client named: ``file_path`` as sent (local mode) or the upload's
        file name (remote mode).
    mode : str
        ``local`` or ``remote``.
    options : AnalysisOptions
    callback_url : str or None
        Where callbacks go; None: none are sent (clients poll ``GET /jobs/{id}``).
    stem_delivery_mode : str
        ``path`` or ``callback`` (kept and shown; stems are never produced here).
    work_dir : Path or None
        A folder of this job's own (the upload), removed when the job ends.
    """

    job_id: str
    audio_path: Path
    source: str
    mode: str
    options: AnalysisOptions
    callback_url: str | None
    stem_delivery_mode: str
    work_dir: Path | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(eq=False)
class Job:
    """One job and its state (guarded by the runner's lock)."""

    spec: JobSpec
    created_at: str = field(default_factory=_now)
    status: JobStatus = JobStatus.QUEUED
    started_at: str | None = None
    completed_at: str | None = None
    stage: str | None = None
    progress: int = 0
    stages: dict[str, dict[str, str]] = field(default_factory=dict)
    error: str | None = None
    callbacks_sent: int = 0
    callbacks_failed: int = 0
    last_callback_error: str | None = None
    processing_time: float | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.stages = {name: {"status": "pending"} for name in self.spec.options.requested()}

    def accepted(self) -> dict[str, Any]:
        """The answer to ``POST /jobs`` (contract §3)."""
        s = self.spec
        return {"job_id": s.job_id, "status": self.status.value, "track_hash": s.job_id,
                "created_at": self.created_at, "callback_url": s.callback_url,
                "stem_delivery_mode": s.stem_delivery_mode}

    def view(self) -> dict[str, Any]:
        """The answer to ``GET /jobs/{id}``."""
        s = self.spec
        return {**self.accepted(), "mode": s.mode,
                "file_path": s.source if s.mode == "local" else None,
                "file_name": s.source if s.mode == "remote" else Path(s.source).name,
                "options": s.options.model_dump(), "progress": self.progress,
                "stage": self.stage, "stages": {k: dict(v) for k, v in self.stages.items()},
                "stages_completed": [k for k, v in self.stages.items()
                                     if v["status"] == "completed"],
                "error": self.error, "started_at": self.started_at,
                "completed_at": self.completed_at, "processing_time": self.processing_time,
                "callbacks_sent": self.callbacks_sent,
                "callbacks_failed": self.callbacks_failed,
                "last_callback_error": self.last_callback_error}


class JobRunner:
    """Runs analysis jobs on a pool of threads, with a bounded queue.

    Parameters
    ----------
    analyze : Analyze
        The analyzer (:func:`~taperoom.analysis.analyzer.analyze_file`).
    sender : CallbackSender
        Posts the callbacks.
    concurrency : int
        Jobs analysed at once (threads).
    queue_size : int
        Jobs that may wait; beyond, :meth:`submit` raises :class:`QueueFull`.
    jobs_kept : int
        Finished jobs remembered (oldest forgotten first).
    bpm_range : (float, float)
        The DJ tempo range passed to the analyzer.
    """

    def __init__(self, *, analyze: Analyze, sender: CallbackSender, concurrency: int,
                 queue_size: int, jobs_kept: int, bpm_range: tuple[float, float]) -> None:
        self._analyze = analyze
        self._sender = sender
        self._concurrency = concurrency
        self._queue_size = queue_size
        self._jobs_kept = jobs_kept
        self._bpm_range = bpm_range
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: deque[Job] = deque()
        self._jobs: dict[str, Job] = {}
        self._finished: OrderedDict[str, Job] = OrderedDict()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._halt = threading.Event()  # set on stop: no more callback retries
        self._started = time.monotonic()
        self._counts = {"submitted": 0, "completed": 0, "failed": 0, "cancelled": 0,
                        "callbacks_sent": 0, "callbacks_failed": 0}
        self._busy = 0  # workers running a job (a cancelled one until it has stopped)
        self._audio_seconds = 0.0
        self._cpu_seconds = 0.0

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker threads."""
        with self._lock:
            self._stopping = False
            self._halt.clear()
            self._started = time.monotonic()
        for n in range(self._concurrency):
            thread = threading.Thread(target=self._work, name=f"analysis-job-{n}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel every queued and running job (without callbacks), wait for the
        threads (up to `timeout` s in all) and remove the jobs' uploads."""
        with self._wake:
            self._stopping = True
            self._halt.set()
            for job in list(self._jobs.values()):
                if job.status not in FINISHED:
                    self._mark_cancelled(job)
            waiting = list(self._queue)
            self._queue.clear()
            self._wake.notify_all()
        for job in waiting:
            self._remove_work_dir(job)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        self._sender.close()

    # -- requests ---------------------------------------------------------------------

    def submit(self, spec: JobSpec) -> tuple[dict[str, Any], bool]:
        """Queue a job.

        Returns
        -------
        (dict, bool)
            The ``POST /jobs`` answer, and True for a new job (False: a job of
            that id is already queued or processing, and is answered instead;
            the new request's upload is removed).

        Raises
        ------
        QueueFull
            ``queue_size`` jobs are waiting already (the upload is removed).
        Busy
            The server is shutting down.
        """
        with self._wake:
            current = self._jobs.get(spec.job_id)
            if current is not None and current.status not in FINISHED:
                answer = current.accepted()
                duplicate = True
            elif self._stopping or len(self._queue) >= self._queue_size:
                duplicate = False
                answer = {}
            else:
                job = Job(spec)
                if current is not None:
                    self._finished.pop(spec.job_id, None)
                self._jobs[spec.job_id] = job
                self._queue.append(job)
                self._counts["submitted"] += 1
                self._wake.notify()
                return job.accepted(), True
        if spec.work_dir is not None:
            shutil.rmtree(spec.work_dir, ignore_errors=True)
        if duplicate:
            return answer, False
        if self._stopping:
            raise Busy("The analysis server is shutting down")
        raise QueueFull(f"The analysis queue is full ({self._queue_size} jobs waiting); "
                        "try again later")

    def get(self, job_id: str) -> dict[str, Any]:
        """The ``GET /jobs/{id}`` view of a job.

        Raises
        ------
        NotFound
            No such job (never submitted, or forgotten).
        """
        with self._lock:
            return self._job(job_id).view()

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job, or forget a finished one.

        Returns
        -------
        dict
            ``{"message", "job_id", "status"}``: status ``cancelled`` for a job
            that was queued or processing, else its final status.

        Raises
        ------
        NotFound
            No such job.
        """
        with self._lock:
            job = self._job(job_id)
            if job.status in FINISHED:
                del self._jobs[job_id]
                self._finished.pop(job_id, None)
                return {"message": "Job removed", "job_id": job_id,
                        "status": job.status.value}
            queued = job.status == JobStatus.QUEUED
            if queued:
                self._queue.remove(job)
            self._mark_cancelled(job)
        if queued:
            self._remove_work_dir(job)
        return {"message": "Job cancelled successfully", "job_id": job_id,
                "status": JobStatus.CANCELLED.value}

    def counts(self) -> dict[str, int]:
        """``{"jobs_queued", "jobs_processing"}`` for ``GET /health``."""
        with self._lock:
            processing = sum(1 for j in self._jobs.values()
                             if j.status == JobStatus.PROCESSING)
            return {"jobs_queued": len(self._queue), "jobs_processing": processing}

    def stats(self) -> dict[str, Any]:
        """The ``GET /stats`` answer: counts since start, capacity, speed."""
        counts = self.counts()
        with self._lock:
            c = dict(self._counts)
            audio, cpu = self._audio_seconds, self._cpu_seconds
            kept = len(self._jobs)
            busy = self._busy
        return {
            "version": __version__,
            "uptime_seconds": round(time.monotonic() - self._started, 3),
            **counts,
            "jobs_submitted": c["submitted"],
            "jobs_completed": c["completed"],
            "jobs_failed": c["failed"],
            "jobs_cancelled": c["cancelled"],
            "jobs_known": kept,
            "concurrency": self._concurrency,
            "workers_busy": busy,
            "queue_size": self._queue_size,
            "callbacks_sent": c["callbacks_sent"],
            "callbacks_failed": c["callbacks_failed"],
            "audio_seconds_analyzed": round(audio, 3),
            "processing_seconds": round(cpu, 3),
            "speed_x_realtime": round(audio / cpu, 2) if cpu > 0 else None,
        }

    # -- inside (lock held where said) --------------------------------------------------

    def _job(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"No analysis job with ID {job_id}")
        return job

    def _mark_cancelled(self, job: Job) -> None:
        """(lock held)"""
        job.cancelled.set()
        job.status = JobStatus.CANCELLED
        job.completed_at = _now()
        self._counts["cancelled"] += 1
        self._remember(job)

    def _remember(self, job: Job) -> None:
        """(lock held) Keep `job` among the finished ones, forgetting the oldest."""
        self._finished[job.spec.job_id] = job
        while len(self._finished) > self._jobs_kept:
            old_id, old = self._finished.popitem(last=False)
            if self._jobs.get(old_id) is old:
                del self._jobs[old_id]

    @staticmethod
    def _remove_work_dir(job: Job) -> None:
        if job.spec.work_dir is not None:
            shutil.rmtree(job.spec.work_dir, ignore_errors=True)

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                job = self._queue.popleft()
                job.status = JobStatus.PROCESSING
                job.started_at = _now()
                self._busy += 1
            try:
                self._process(job)
            except Exception:  # a defect: the job fails, the worker lives on
                log.exception("analysis job %s failed unexpectedly", job.spec.job_id)
                self._fail(job, "internal error of the analysis server")
            finally:
                self._remove_work_dir(job)
                with self._lock:
                    self._busy -= 1

    def _progress(self, job: Job) -> Progress:
        def report(stage: str, fraction: float) -> None:
            if job.cancelled.is_set():
                raise _Cancelled
            percent = (int(fraction * _STAGE_PROGRESS["decode"]) if stage == "decode"
                       else _STAGE_PROGRESS.get(stage, 0))
            with self._lock:
                job.stage = stage
                job.progress = max(job.progress, min(percent, 99))
        return report

    def _process(self, job: Job) -> None:
        opts = job.spec.options
        result: AnalysisResult | None = None
        started = time.monotonic()
        cpu = 0.0
        if opts.basic_features or opts.characteristics:
            refusal = _not_a_file(job.spec.audio_path)
            if refusal:  # a pipe or a device would hold the worker for ever
                self._fail(job, f"{Path(job.spec.source).name}: {refusal}")
                return
            cpu_started = time.thread_time()  # this thread's CPU, whatever the others do
            try:
                result = self._analyze(job.spec.audio_path, quick=not opts.characteristics,
                                       bpm_range=self._bpm_range, progress=self._progress(job))
            except _Cancelled:
                return
            except (TaperoomError, OSError) as exc:
                self._remove_work_dir(job)  # before the callback: the job is over
                self._fail(job, _reason(job, exc))
                return
            cpu = time.thread_time() - cpu_started
        self._remove_work_dir(job)  # the upload is not needed any more
        payloads: list[tuple[str, dict[str, Any] | None]] = []
        if result is not None:
            if opts.basic_features:
                payloads.append(("basic_features", result.basic_features()))
            if opts.characteristics:
                payloads.append(("characteristics", result.characteristics()))
        for stage, data in payloads:
            if data is None:  # cannot happen: characteristics are computed when asked
                self._fail(job, f"{stage} were not computed")
                return
            if not self._stage_done(job, stage, "completed", data):
                return
        for stage in MODEL_STAGES:
            if getattr(opts, stage) and not self._stage_done(
                    job, stage, "skipped", {"error": SKIP_REASONS[stage]}):
                return
        with self._lock:
            if job.cancelled.is_set():
                return
            job.status = JobStatus.COMPLETED
            job.completed_at = _now()
            job.progress = 100
            job.stage = None
            job.processing_time = round(time.monotonic() - started, 3)
            self._counts["completed"] += 1
            if result is not None:
                self._audio_seconds += result.duration
                self._cpu_seconds += cpu
            self._remember(job)
            done = {"stages_completed": [k for k, v in job.stages.items()
                                         if v["status"] == "completed"],
                    "stages_skipped": {k: v.get("error", "") for k, v in job.stages.items()
                                       if v["status"] == "skipped"},
                    "processing_time": job.processing_time,
                    "duration": None if result is None else round(result.duration, 3)}
        self._callback(job, "job_completed", "completed", done)

    def _stage_done(self, job: Job, stage: str, status: str, data: dict[str, Any]) -> bool:
        """Record a stage and send its callback; False when the job was cancelled."""
        with self._lock:
            if job.cancelled.is_set():
                return False
            job.stages[stage] = ({"status": status} if status == "completed"
                                 else {"status": status, "error": data["error"]})
        self._callback(job, stage, status, data, retry=status == "completed")
        return not job.cancelled.is_set()

    def _fail(self, job: Job, message: str) -> None:
        with self._lock:
            if job.status in FINISHED:
                return
            job.status = JobStatus.FAILED
            job.error = message
            job.completed_at = _now()
            for state in job.stages.values():
                if state["status"] == "pending":
                    state["status"] = "failed"
            self._counts["failed"] += 1
            self._remember(job)
            stage = job.stage
        log.info("analysis job %s failed: %s", job.spec.job_id, message)
        self._callback(job, "job_failed", "failed", {"error": message, "stage": stage})

    def _callback(self, job: Job, stage: str, status: str, data: dict[str, Any], *,
                  retry: bool = True) -> None:
        url = job.spec.callback_url
        if url is None:
            return
        if job.callbacks_failed:  # the receiver is gone: do not hold the worker for it
            retry = False
        sent = self._sender.send(url, job.spec.job_id, stage, status, data,
                                 self._halt if stage in ("job_completed", "job_failed")
                                 else job.cancelled, retry=retry)
        with self._lock:
            if sent.ok:
                job.callbacks_sent += 1
                self._counts["callbacks_sent"] += 1
            else:
                job.callbacks_failed += 1
                job.last_callback_error = f"{stage}: {sent.error}"
                self._counts["callbacks_failed"] += 1

