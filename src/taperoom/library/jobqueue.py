"""The library's job layer: background jobs on Huey, with priorities, cancel and progress.

Every kind of long job (a folder scan now, analysis next) registers a handler
with :meth:`JobQueue.register`; :meth:`JobQueue.submit` then queues a job from
any worker process, and the leader process runs it (:meth:`start_consumers` is
one of the leader's duties, :mod:`taperoom.leader`). Two stores work together:

* the **Huey queue** of the kind (``library-<kind>`` in ``DATA_DIR/library-queue.db``,
  or on Redis with ``QUEUE_URL``; :func:`taperoom.jobs.make_huey`) holds one
  task per job with its :class:`~taperoom.jobs.Priority` and decides the order
  (highest priority first, first come first served within one); each kind has
  its own queue and consumer threads, so a long scan never holds up a quick
  analysis and the other way round;
* the **job row** (``library_jobs``, :mod:`taperoom.library.repository.jobs`)
  is what every process knows of the job: its state (``queued``, ``running``,
  ``done``, ``cancelled``, ``failed``), parameters, progress, result and cancel
  flag. Its unique ``active_key`` allows one active job per subject (one scan
  per folder), whichever process asks.

A task only runs its job after *claiming* the row (``queued`` -> ``running`` in
one UPDATE), so a task queued twice (a new leader queues the jobs it finds
``queued`` again) runs its job once, and a cancelled job never starts.

Cancel: a queued job is ended at once; a running one gets its cancel flag
raised in the database, which the process running it reads every
:attr:`JobQueue.poll` seconds (and at once when it is the same process) and
passes to the handler through :attr:`JobRun.cancelled`.

Progress: the handler calls :meth:`JobRun.report`; the running process writes
the latest report and a heartbeat every :attr:`JobQueue.poll` seconds. A job
whose process died (no heartbeat for :attr:`JobQueue.stale_after` seconds, or
a process of this machine that is gone) is queued again by the leader, as is
a job interrupted by a shutdown, so that the next leader finishes it. Across
machines the heartbeat is the only sign of life (:func:`taperoom.leader.process_alive`
cannot see another machine's processes). A process that was only silent (a
paused machine, a network cut) and finds at its next heartbeat that its job was
taken from it stops the job without writing its end (:attr:`JobRun.lost`); the
end of a job is written only by the process that runs it, so a job ends once.

Later runs: a handler that raises :class:`RunAgain` puts its job back in the
queue, after a delay and at another priority if it says so (a retry with
backoff, or the rest of a job that did its urgent part first); the delayed
task waits in Huey's schedule, which survives a restart.

Workers: the leader runs the consumers of every kind, except a kind
registered with ``concurrency=0`` there; ``taperoom worker`` processes
(possibly on other machines, with a Redis queue and a PostgreSQL database)
run the consumers of the kinds they are given (:meth:`JobQueue.start_workers`).
Any process that consumes also queues again the jobs of dead processes, and
the leader queues again every queued job whose task is not in the queue any
more (lost between a dequeue and the claim, or with a Redis server that
restarted without its data).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from huey import Huey
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import autocommit, transaction
from taperoom.errors import Conflict, NotFound
from taperoom.jobs import EmbeddedConsumer, Priority
from taperoom.leader import process_alive
from taperoom.library.models import Job, utcnow
from taperoom.library.repository import jobs as repo

log = logging.getLogger(__name__)

#: Days a finished job's row is kept (its result answers status requests).
KEEP_FINISHED_DAYS = 7
#: Seconds between two checks by the leader for jobs whose process died.
RECOVER_INTERVAL = 5.0
#: Seconds between two deletions of old finished jobs by the leader.
PRUNE_INTERVAL = 3600.0
#: Seconds between two looks by the leader for queued jobs whose task was lost.
RECONCILE_INTERVAL = 60.0


@dataclass(frozen=True)
class JobInfo:
    """What a job row says, detached from its session.

    Attributes
    ----------
    id : int
    kind, subject : str
        E.g. ``"scan"`` and a library folder id.
    state : str
        ``queued``, ``running``, ``done``, ``cancelled`` or ``failed``.
    priority : int
        A :class:`~taperoom.jobs.Priority` value.
    params, progress, result : dict or None
    error : str or None
    cancel_requested : bool
    created_at, started_at, finished_at : datetime or None
        UTC, naive.
    """

    id: int
    kind: str
    subject: str
    state: str
    priority: int
    params: dict[str, Any]
    progress: dict[str, Any] | None
    result: dict[str, Any] | None
    error: str | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: Job) -> JobInfo:
        """Snapshot of an ORM row."""
        return cls(int(job.id), job.kind, job.subject, job.state, int(job.priority),
                   dict(job.params or {}), dict(job.progress) if job.progress else None,
                   dict(job.result) if job.result is not None else None, job.error,
                   bool(job.cancel_requested), job.created_at, job.started_at,
                   job.finished_at)

    @property
    def active(self) -> bool:
        """Queued or running."""
        return self.state in repo.ACTIVE


class JobExists(Conflict):
    """The subject already has a queued or running job of this kind (HTTP 409).

    Attributes
    ----------
    job : JobInfo
        That job.
    """

    def __init__(self, job: JobInfo) -> None:
        super().__init__(f"A {job.kind} job of {job.subject} is already {job.state}")
        self.job = job


class JobRun:
    """A job being run by this process, as its handler sees it.

    Attributes
    ----------
    info : JobInfo
        The row when the job started.
    cancelled : threading.Event
        Set when the job should stop: a cancel request, or this process
        stopping (then :attr:`interrupted` is True too and the job is queued
        again after the handler returns).
    lost : bool
        Set (with :attr:`cancelled`) when this process does not run the job any
        more: its heartbeat was silent for longer than the queue's
        ``stale_after`` and the job was queued again, perhaps run by another
        process now. The handler must then write nothing of the job.
    """

    def __init__(self, info: JobInfo, *, from_queue: bool) -> None:
        self.info = info
        self.from_queue = from_queue
        self.cancelled = threading.Event()
        self.interrupted = False
        self.lost = False
        self._progress: dict[str, Any] | None = None
        self._dirty = False
        self._lock = threading.Lock()

    @property
    def id(self) -> int:
        """The job's id."""
        return self.info.id

    def report(self, progress: dict[str, Any]) -> None:
        """Record the job's progress (JSON-able); written to its row within one poll."""
        with self._lock:
            self._progress = progress
            self._dirty = True

    def _take(self) -> dict[str, Any] | None:
        with self._lock:
            if not self._dirty:
                return None
            self._dirty = False
            return self._progress

    def latest(self) -> dict[str, Any] | None:
        """The last progress reported."""
        with self._lock:
            return self._progress


class RunAgain(Exception):
    """Raised by a handler: put this job back in the queue to run again later.

    Parameters
    ----------
    delay : float
        Seconds before it may run again (0: as soon as a consumer is free).
    priority : int, optional
        Its priority from now on (unchanged when None).
    reason : str, optional
        Why, for the log (e.g. the error of a failed attempt).

    Notes
    -----
    Only a job run from the queue goes back to it; one run with
    :meth:`JobQueue.run_here` ends ``failed`` with `reason` instead.
    """

    def __init__(self, delay: float = 0.0, *, priority: int | None = None,
                 reason: str | None = None) -> None:
        super().__init__(reason or "run again later")
        self.delay = max(0.0, float(delay))
        self.priority = priority
        self.reason = reason


#: A handler runs one job in the calling thread and returns its result (JSON-able).
Handler = Callable[[JobRun], dict[str, Any]]


@dataclass
class _Kind:
    name: str
    handler: Handler
    concurrency: int
    cancelled_result: Callable[[JobInfo], dict[str, Any]]
    huey: Huey
    task: Any  # huey TaskWrapper running one job by id
    consumer: EmbeddedConsumer | None = None


class JobQueue:
    """Queues, runs, cancels and reports the library's background jobs.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database (``library_jobs``).
    huey_for : callable(str) -> Huey
        The Huey queue of a kind of job (``make_huey("library-scan", ...)``).
    owner : str
        This process's name (:func:`taperoom.leader.process_id`).
    poll : float
        Seconds between two writes of progress and heartbeat of the running
        jobs (and reads of their cancel flags).
    stale_after : float
        Seconds without heartbeat after which a running job's process is taken
        for dead and the job is queued again.
    max_poll_delay : float
        Longest pause of an idle consumer between two looks at its queue, s:
        the most a queued job waits for a free consumer to notice it.
    """

    def __init__(self, db: sessionmaker[Session], *, huey_for: Callable[[str], Huey],
                 owner: str, poll: float = 0.25, stale_after: float = 30.0,
                 max_poll_delay: float = 0.2) -> None:
        self.db = db
        self.huey_for = huey_for
        self.owner = owner
        self.poll = poll
        self.stale_after = stale_after
        self.max_poll_delay = max_poll_delay
        self._kinds: dict[str, _Kind] = {}
        self._running: dict[int, JobRun] = {}
        self._lock = threading.Lock()
        self._consuming = False
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self._next_recover = 0.0
        self._next_prune = 0.0
        self._next_reconcile = 0.0
        self._leading_consumers = False

    # ------------------------------------------------------------------ registration

    def register(self, kind: str, handler: Handler, *, concurrency: int,
                 cancelled_result: Callable[[JobInfo], dict[str, Any]]) -> None:
        """Add a kind of job.

        Parameters
        ----------
        kind : str
            Its name (``"scan"``); names its Huey queue and its rows.
        handler : callable(JobRun) -> dict
            Runs one job in a consumer thread of the leader; returns its result.
            An exception fails the job (logged; the consumer goes on).
        concurrency : int
            Jobs of this kind run at once in this process (consumer threads);
            0: none here (the leader then only queues them again when their
            process dies, and ``taperoom worker`` processes run them).
        cancelled_result : callable(JobInfo) -> dict
            The result of a job cancelled before it started.
        """
        huey = self.huey_for(kind)

        def run_job(job_id: int) -> None:
            self._execute(kind, job_id)

        run_job.__name__ = f"run_{kind}_job"
        task = huey.task(name=f"library.{kind}")(run_job)
        self._kinds[kind] = _Kind(kind, handler, concurrency, cancelled_result, huey, task)

    def _kind(self, kind: str) -> _Kind:
        try:
            return self._kinds[kind]
        except KeyError:
            raise NotFound(f"no job kind {kind!r}") from None

    # ------------------------------------------------------------------ requests

    def submit(self, kind: str, subject: str, *, priority: Priority | int,
               params: dict[str, Any]) -> JobInfo:
        """Queue a job of `kind` on `subject`.

        Returns
        -------
        JobInfo
            The queued job.

        Raises
        ------
        JobExists
            `subject` has a queued or running job of `kind` already.
        """
        k = self._kind(kind)
        info = self._insert(kind, subject, int(priority), params, "queued", None)
        try:
            k.huey.enqueue(k.task.s(info.id, priority=int(priority)))
        except Exception as exc:
            with transaction(self.db) as s:
                repo.finish(s, info.id, "failed", result=None,
                            error=f"could not be queued: {exc}")
            raise
        return info

    def promote(self, kind: str, subject: str, priority: Priority | int) -> JobInfo | None:
        """Raise the priority of `subject`'s queued job of `kind` to `priority` (when
        lower): it moves ahead in the queue, as a copy of its task at the new
        priority (the old copy then runs nothing).

        Returns
        -------
        JobInfo or None
            The job as it is now, or None when `subject` has no active job.
        """
        k = self._kind(kind)
        with transaction(self.db) as s:
            job = repo.active_job(s, kind, subject)
            if job is None:
                return None
            raised = repo.set_priority(s, job.id, int(priority))
        if raised:
            k.huey.enqueue(k.task.s(job.id, priority=int(priority)))
        return self.active(kind, subject)

    def _insert(self, kind: str, subject: str, priority: int, params: dict[str, Any],
                state: str, owner: str | None) -> JobInfo:
        try:
            with transaction(self.db) as s:
                return JobInfo.of(repo.insert_job(s, kind=kind, subject=subject,
                                                  priority=priority, params=params,
                                                  state=state, owner=owner))
        except IntegrityError:
            with self.db() as s:
                existing = repo.active_job(s, kind, subject)
                if existing is None:  # it ended in between: try once more
                    return self._insert(kind, subject, priority, params, state, owner)
                raise JobExists(JobInfo.of(existing)) from None

    def run_here(self, kind: str, subject: str, *, params: dict[str, Any],
                 handler: Handler, priority: Priority | int = Priority.NORMAL
                 ) -> dict[str, Any]:
        """Run a job in the calling thread (the CLI's scans), as a ``running`` row that
        every process sees and can cancel.

        Raises
        ------
        JobExists
            `subject` has a queued or running job of `kind` already.
        Exception
            What `handler` raises (the job is then marked ``failed``).
        """
        info = self._insert(kind, subject, int(priority), params, "running", self.owner)
        return self._run(JobRun(info, from_queue=False), handler)

    def take(self, kind: str, subject: str, *, handler: Handler) -> dict[str, Any] | None:
        """Run `subject`'s *queued* job of `kind` in the calling thread now, with
        `handler` (a command that finds the work waiting for the server's consumers,
        which may not be running); its task in the queue then runs nothing.

        Returns
        -------
        dict or None
            The handler's result; None when `subject` has no queued job (none, or
            one another process runs).

        Raises
        ------
        Exception
            What `handler` raises (the job is then marked ``failed``).
        """
        self._kind(kind)
        with transaction(self.db) as s:
            job = repo.active_job(s, kind, subject)
            if job is None or job.state != "queued" or not repo.claim(s, job.id, self.owner):
                return None
            claimed = repo.get_job(s, job.id)
            assert claimed is not None
            info = JobInfo.of(claimed)
        return self._run(JobRun(info, from_queue=False), handler)

    # ------------------------------------------------------------------ running

    def _execute(self, kind: str, job_id: int) -> None:
        """A Huey task: claim the job and run it (leader, consumer thread)."""
        k = self._kinds.get(kind)
        if k is None:
            log.error("job %s: no handler for kind %r", job_id, kind)
            return
        with transaction(self.db) as s:
            if not repo.claim(s, job_id, self.owner):
                return  # cancelled, or run already by another copy of the task
            job = repo.get_job(s, job_id)
            assert job is not None
            info = JobInfo.of(job)
        run = JobRun(info, from_queue=True)
        with self._lock:
            if not self._consuming:  # stopped between the dequeue and the claim
                run.interrupted = True
                run.cancelled.set()
        try:
            self._run(run, k.handler)
        except Exception:  # failed: logged and recorded by _run; the consumer goes on
            return

    def _run(self, run: JobRun, handler: Handler) -> dict[str, Any]:
        with self._lock:
            self._running[run.id] = run
            if self._monitor is None or not self._monitor.is_alive():
                self._stop.clear()
                self._monitor = threading.Thread(target=self._watch, name="library-jobs",
                                                 daemon=True)
                self._monitor.start()
        state, result, error = "failed", None, None
        again: RunAgain | None = None
        try:
            if not run.interrupted:
                result = handler(run)
                state = ("cancelled" if result.get("cancelled")
                         else "failed" if result.get("error") else "done")
            return result or {}
        except RunAgain as exc:
            if not run.from_queue:
                error = exc.reason or str(exc)
                raise
            again = exc
            return {}
        except BaseException as exc:
            error = str(exc) or type(exc).__name__
            if isinstance(exc, KeyboardInterrupt):  # Ctrl-C of a command: a cancel
                state, error = "cancelled", None
            elif isinstance(exc, Exception):
                log.warning("%s job %s of %s failed: %s", run.info.kind, run.id,
                            run.info.subject, error)
            raise
        finally:
            with self._lock:
                self._running.pop(run.id, None)
            self._end(run, state, result, error, again)

    def _end(self, run: JobRun, state: str, result: dict[str, Any] | None,
             error: str | None, again: RunAgain | None = None) -> None:
        if run.lost:
            log.warning("%s job %s of %s was taken from this process (its heartbeat was "
                        "late); its end is left to the process that runs it now",
                        run.info.kind, run.id, run.info.subject)
            return
        priority = run.info.priority
        if again is not None and again.priority is not None:
            priority = int(again.priority)
        try:
            with transaction(self.db) as s:
                requeued = ((again is not None or run.interrupted) and run.from_queue
                            and repo.requeue(s, run.id, self.owner, priority=priority))
                if not requeued and not repo.finish(s, run.id, state, result=result,
                                                    error=error, progress=run.latest(),
                                                    owner=self.owner):
                    run.lost = True
                    log.warning("%s job %s of %s: another process runs it now; this "
                                "run's end is not recorded", run.info.kind, run.id,
                                run.info.subject)
            if requeued:  # after the commit, so that the task finds the row queued
                k = self._kinds[run.info.kind]
                delay = again.delay if again is not None and not run.interrupted else 0.0
                if delay > 0:
                    k.task.schedule(args=(run.id,), delay=delay, priority=priority)
                else:
                    k.huey.enqueue(k.task.s(run.id, priority=priority))
                if again is not None:
                    log.info("%s job %s of %s queued again (in %.1f s)%s", run.info.kind,
                             run.id, run.info.subject, delay,
                             f": {again.reason}" if again.reason else "")
                else:
                    log.info("%s job %s of %s interrupted by a shutdown: queued again",
                             run.info.kind, run.id, run.info.subject)
        except Exception:
            log.exception("could not record the end of %s job %s", run.info.kind, run.id)

    def _watch(self) -> None:
        """Heartbeat and progress of this process's jobs; cancel flags; dead processes."""
        while not self._stop.wait(self.poll):
            with self._lock:
                runs = dict(self._running)
                consuming = self._consuming
            if runs:
                try:
                    progress = {i: p for i, r in runs.items() if (p := r._take()) is not None}
                    # each write commits by itself: paused here (a stopped machine), this
                    # process must hold no lock of the job rows that another one takes over
                    with autocommit(self.db) as s:
                        cancelled = repo.beat(s, self.owner, runs, progress)
                        lost = repo.not_owned(s, self.owner, runs)
                    with self._lock:
                        # a run that ended since the snapshot (done, or queued again by
                        # its own RunAgain) is not running here any more: not lost
                        lost = {j for j in lost if j in self._running}
                    for job_id in lost:
                        if not runs[job_id].lost:
                            log.warning("%s job %s was queued again while this process "
                                        "ran it (heartbeat late): stopping it",
                                        runs[job_id].info.kind, job_id)
                        runs[job_id].lost = True
                    for job_id in cancelled | lost:
                        runs[job_id].cancelled.set()
                except Exception:
                    log.warning("could not record the progress of the running jobs",
                                exc_info=True)
            if consuming and time.monotonic() >= self._next_recover:
                self._next_recover = time.monotonic() + RECOVER_INTERVAL
                try:
                    self.recover()
                except Exception:
                    log.warning("could not look for interrupted jobs", exc_info=True)
            if not runs and not consuming:
                with self._lock:
                    if not self._running and not self._consuming:
                        self._monitor = None
                        return

    # ------------------------------------------------------------------ queries

    def active(self, kind: str, subject: str) -> JobInfo | None:
        """The queued or running job of `kind` on `subject`, or None."""
        with self.db() as s:
            job = repo.active_job(s, kind, subject)
            return JobInfo.of(job) if job is not None else None

    def active_jobs(self, kind: str) -> list[JobInfo]:
        """Queued and running jobs of `kind`: running first, then in queue order."""
        with self.db() as s:
            return [JobInfo.of(j) for j in repo.active_jobs(s, kind)]

    def last_finished(self, kind: str, subject: str) -> JobInfo | None:
        """The job of `kind` on `subject` that ended last, or None."""
        with self.db() as s:
            job = repo.last_finished(s, kind, subject)
            return JobInfo.of(job) if job is not None else None

    def wait(self, kind: str, subject: str, timeout: float | None = None) -> bool:
        """Wait until `subject` has no active job of `kind`; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.01
        while self.active(kind, subject) is not None:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 1.5, 0.1)
        return True

    # ------------------------------------------------------------------ control

    def cancel(self, kind: str, subject: str) -> JobInfo:
        """Cancel the active job of `kind` on `subject`: a queued one ends now, a
        running one stops at its next check (within one poll when another process
        runs it).

        Returns
        -------
        JobInfo
            The job as it was.

        Raises
        ------
        NotFound
            No active job.
        """
        k = self._kind(kind)
        with transaction(self.db) as s:
            job = repo.active_job(s, kind, subject)
            if job is None:
                raise NotFound(f"no active {kind} job of {subject}")
            info = JobInfo.of(job)
            if not (info.state == "queued" and repo.finish(
                    s, info.id, "cancelled", result=k.cancelled_result(info),
                    only_if_queued=True)):
                repo.request_cancel(s, info.id)
        with self._lock:
            run = self._running.get(info.id)
        if run is not None:
            run.cancelled.set()
        return info

    def recover(self) -> int:
        """Queue again the jobs whose process died (leader). Returns how many."""
        now = utcnow()
        stale = now - timedelta(seconds=self.stale_after)
        requeued: list[JobInfo] = []
        with transaction(self.db) as s:
            for job in repo.running_jobs(s):
                if job.kind not in self._kinds or job.owner == self.owner:
                    continue
                alive = process_alive(job.owner or "")
                beat = job.heartbeat_at or job.started_at or job.created_at
                if (alive is False or beat < stale) and repo.requeue(s, job.id, job.owner):
                    requeued.append(JobInfo.of(job))
        for info in requeued:
            k = self._kinds[info.kind]
            k.huey.enqueue(k.task.s(info.id, priority=info.priority))
            log.warning("%s job %s of %s: its process stopped; queued again", info.kind,
                        info.id, info.subject)
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_INTERVAL
            with transaction(self.db) as s:
                repo.prune_finished(s, now - timedelta(days=KEEP_FINISHED_DAYS))
        if self._leading_consumers and time.monotonic() >= self._next_reconcile:
            self._next_reconcile = time.monotonic() + RECONCILE_INTERVAL
            self.reconcile()
        return len(requeued)

    def reconcile(self) -> int:
        """Queue again every queued job whose task is in neither the queue nor its
        schedule (leader): a worker died between taking the task and claiming the job,
        or the Redis server lost its data. A copy too many only runs nothing (the
        claim), so a job taken at this very moment is harmless.

        Returns
        -------
        int
            How many tasks were queued again.
        """
        done = 0
        for k in self._kinds.values():
            with self.db() as s:
                queued = [(j.id, int(j.priority)) for j in repo.queued_jobs(s, k.name)]
            if not queued:
                continue
            present: set[int] = set()
            for task in [*k.huey.pending(), *k.huey.scheduled()]:
                args = getattr(task, "args", None) or ()
                if args and isinstance(args[0], int):
                    present.add(args[0])
            for job_id, priority in queued:
                if job_id not in present:
                    k.huey.enqueue(k.task.s(job_id, priority=priority))
                    done += 1
            if done:
                log.warning("%s: %d queued job(s) had lost their task; queued again",
                            k.name, done)
        return done

    def still_runs(self, run: JobRun) -> bool:
        """Whether this process still runs `run`'s job (read now from its row); when
        not, :attr:`JobRun.lost` and :attr:`JobRun.cancelled` are set. A handler asks
        before it writes its results."""
        if not run.lost:
            with self.db() as s:
                if repo.not_owned(s, self.owner, [run.id]):
                    run.lost = True
        if run.lost:
            run.cancelled.set()
        return not run.lost

    def running_here(self) -> set[int]:
        """Ids of the jobs this process runs now."""
        with self._lock:
            return set(self._running)

    def start_consumers(self) -> None:
        """Run the jobs of every kind in this process (a leader duty): queue again
        the jobs of dead processes and the queued ones (a task lost with a crashed
        queue write), then start one consumer per kind (none for a kind of
        concurrency 0, whose jobs ``taperoom worker`` processes run)."""
        with self._lock:
            self._consuming = True
            self._leading_consumers = True
        self._next_reconcile = time.monotonic() + RECONCILE_INTERVAL
        self.recover()
        for k in self._kinds.values():
            with self.db() as s:
                queued = [(j.id, int(j.priority)) for j in repo.queued_jobs(s, k.name)]
            for job_id, priority in queued:  # a copy still in the queue runs nothing
                k.huey.enqueue(k.task.s(job_id, priority=priority))
            self._start_consumer(k, k.concurrency)
        self._start_monitor()

    def start_workers(self, kinds: Iterable[str], *, concurrency: int | None = None) -> None:
        """Run the jobs of `kinds` in this process without leading (``taperoom worker``):
        their consumers take tasks from the shared queue, and this process also
        queues again the jobs of dead processes.

        Parameters
        ----------
        kinds : iterable of str
            Registered kinds.
        concurrency : int, optional
            Jobs of each kind run at once here (default: the registered one, or 1
            when that is 0).

        Raises
        ------
        NotFound
            A kind is not registered.
        """
        chosen = [self._kind(name) for name in kinds]
        with self._lock:
            self._consuming = True
        self.recover()
        for k in chosen:
            self._start_consumer(k, concurrency or k.concurrency or 1)
        self._start_monitor()

    def _start_consumer(self, k: _Kind, workers: int) -> None:
        if workers <= 0:
            return
        if k.consumer is None or k.consumer.workers != workers:
            if k.consumer is not None:
                k.consumer.stop()
            k.consumer = EmbeddedConsumer(k.huey, workers=workers,
                                          max_poll_delay=self.max_poll_delay)
        k.consumer.start()

    def consuming(self, kind: str) -> bool:
        """Whether this process runs jobs of `kind` now."""
        k = self._kinds.get(kind)
        return k is not None and k.consumer is not None and k.consumer.running

    def stop_kind(self, kind: str, timeout: float = 10.0) -> None:
        """Stop running jobs of `kind` here; running ones stop at their next check and
        are queued again, queued ones stay queued (:meth:`resume_kind` goes on)."""
        k = self._kind(kind)
        with self._lock:
            runs = [r for r in self._running.values()
                    if r.from_queue and r.info.kind == kind]
        for run in runs:
            run.interrupted = True
            run.cancelled.set()
        if k.consumer is not None:
            k.consumer.stop(timeout)

    def resume_kind(self, kind: str) -> None:
        """Start the consumer of `kind` again after :meth:`stop_kind` (when this
        process consumes at all)."""
        k = self._kind(kind)
        with self._lock:
            consuming = self._consuming
        if consuming:
            self._start_consumer(k, k.concurrency or (k.consumer.workers if k.consumer else 0))

    def _start_monitor(self) -> None:
        with self._lock:
            if self._monitor is None or not self._monitor.is_alive():
                self._stop.clear()
                self._monitor = threading.Thread(target=self._watch, name="library-jobs",
                                                 daemon=True)
                self._monitor.start()

    def stop_consumers(self, timeout: float = 10.0) -> None:
        """Stop running jobs here: running ones stop at their next check and are queued
        again for the next leader; queued ones stay queued."""
        with self._lock:
            self._consuming = False
            self._leading_consumers = False
            runs = [r for r in self._running.values() if r.from_queue]
        for run in runs:
            run.interrupted = True
            run.cancelled.set()
        for k in self._kinds.values():
            if k.consumer is not None:
                k.consumer.stop(timeout)

    def close(self) -> None:
        """Stop the consumers and the monitor thread."""
        self.stop_consumers()
        self._stop.set()
        with self._lock:
            monitor = self._monitor
        if monitor is not None:
            monitor.join(5)
        for k in self._kinds.values():
            with contextlib.suppress(Exception):
                k.task.unregister()
