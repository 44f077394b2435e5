"""The persistent upload queue of finished recordings (Huey task + retries).

:class:`UploadQueue` puts one Huey task per upload on the recorder's queue
(:func:`taperoom.jobs.make_huey`: a SQLite file in ``DATA_DIR`` by default, so
queued uploads and pending retries survive a restart). A consumer, embedded in
the server or run by ``taperoom worker``, executes the task, which:

1. reports :meth:`TransferReporter.started`,
2. uploads the MP3 (and its ``.cue`` sheet when there is one beside it) with
   :func:`taperoom.recorder.transfer.upload_sync`,
3. when the upload is verified (remote size = local size) and
   ``CLEANUP_AFTER_TRANSFER`` is on, deletes the local MP3 and cue sheet,
4. reports :meth:`TransferReporter.succeeded`, or on failure
   :meth:`TransferReporter.failed` and schedules the next attempt with Huey's
   delayed scheduling after ``retry_delay * 2**(attempt-1)`` seconds, capped at
   ``backoff_max``, until ``max_attempts`` attempts have failed.

With :class:`UploadLeases` (the recorder's are
:class:`taperoom.recorder.upload_leases.SessionUploadLeases`), a task first
claims its session's upload and runs only if the claim succeeds, renews the
claim while it uploads, and stops without a report when the claim was taken
from it (its worker was silent too long and another attempt was queued).

A failure never escapes the task (it is logged and reported), so the consumer
goes on. A destination that does not parse and a local file that is gone are
reported as final failures at once: retrying cannot help them.

Huey finds a task by name in the registry of the Huey instance that runs it,
so each :class:`UploadQueue` registers the module-level function
:func:`upload_task` on its instance and records itself in a module-level
registry, where the running task looks its queue up.
"""

from __future__ import annotations

import logging
import posixpath
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from huey import Huey

from taperoom.errors import InvalidInput, NotFound
from taperoom.jobs import stop_requested
from taperoom.recorder.transfer import (
    Destination,
    SshCredentials,
    UploadResult,
    upload_sync,
)

log = logging.getLogger(__name__)

#: Name of the Huey task (``taperoom.recorder.uploads.upload_recording`` in the queue).
TASK_NAME = "upload_recording"

_registry: dict[type, UploadQueue] = {}
_registry_lock = threading.Lock()


class TransferReporter(Protocol):
    """Receives the state changes of uploads (the recorder service writes them to
    the sessions table and the event bus)."""

    def started(self, session_id: int, attempt: int) -> None:
        """Attempt `attempt` (1-based) of the upload of `session_id` begins."""

    def progress(self, session_id: int, sent: int, total: int) -> None:
        """`sent` of `total` bytes of the MP3 are on the server."""

    def succeeded(self, session_id: int, result: UploadResult) -> None:
        """The MP3 (and cue sheet) are uploaded and verified; local copies are
        already deleted when cleanup is on."""

    def failed(self, session_id: int, error: str, *, attempt: int, will_retry: bool,
               next_attempt_at: datetime | None) -> None:
        """Attempt `attempt` failed with `error`; `will_retry` tells whether another
        attempt is queued, at `next_attempt_at` (UTC) when known."""


class UploadInterrupted(Exception):
    """The consumer is stopping: the running upload gives up and is queued again."""


class UploadLost(Exception):
    """The upload's claim was taken by another attempt: this one stops, silently."""


class UploadLeases(Protocol):
    """Claims of uploads, so that each attempt runs once across worker processes.

    Attributes
    ----------
    heartbeat_seconds : float
        Interval between two renewals of a running upload's claim.
    """

    heartbeat_seconds: float

    def claim(self, session_id: int, attempt: int) -> bool:
        """Take the upload of `session_id` for `attempt`; False if it is not its to run."""

    def renew(self, session_id: int, attempt: int) -> bool:
        """Renew the claim; False when it was taken from `attempt`."""


def retry_delay_for(attempt: int, *, base: float, cap: float) -> float:
    """Seconds to wait after failed attempt `attempt` before the next one.

    Parameters
    ----------
    attempt : int
        The attempt that failed, 1-based.
    base : float
        ``RETRY_DELAY_SECONDS``: the wait after the first failure, s.
    cap : float
        ``TRANSFER_BACKOFF_MAX_SECONDS``: longest wait, s.

    Returns
    -------
    float
        ``min(base * 2**(attempt - 1), cap)`` (exponential backoff doubling the
        contract's fixed ``RETRY_DELAY_SECONDS``).
    """
    return float(min(base * 2.0 ** max(0, attempt - 1), cap))


@dataclass(frozen=True)
class QueuedUpload:
    """One upload waiting in the queue.

    Attributes
    ----------
    session_id : int
    local_path : str
    destination : str
    attempt : int
        The attempt it will be (1-based).
    eta : datetime or None
        When a delayed retry becomes due (UTC), None when due now.
    """

    session_id: int
    local_path: str
    destination: str
    attempt: int
    eta: datetime | None


def upload_task(session_id: int, local_path: str, destination: str, attempt: int = 1,
                task: Any = None) -> None:
    """The Huey task: run one upload attempt through the queue that registered it.

    Parameters
    ----------
    session_id : int
    local_path : str
    destination : str
        The station's destination text (parsed when the task runs).
    attempt : int
        1-based attempt number.
    task : huey.api.Task
        Injected by Huey (``context=True``); its class identifies the queue.
    """
    with _registry_lock:
        queue = _registry.get(type(task))
    if queue is None:
        log.error("upload of session %s: no upload queue is registered for this task",
                  session_id, extra={"operation_type": "transfer", "session_id": session_id})
        return
    try:
        queue.run(session_id, Path(local_path), destination, attempt)
    except Exception:  # run() reports its failures; this is only a last guard
        log.exception("upload of session %s: the upload task failed", session_id,
                      extra={"operation_type": "transfer", "session_id": session_id})


class _Heartbeat:
    """Renews an upload's claim every ``heartbeat_seconds`` in a thread of its own
    while the upload runs (a context manager), whatever the pace of the transfer.

    :meth:`check`, called from the transfer's progress callback, raises
    :class:`UploadLost` once a renewal found the claim taken, and renews at once
    before the remote rename (`final`), so that a worker that lost its upload
    never puts its file in place.
    """

    def __init__(self, leases: UploadLeases | None, session_id: int, attempt: int) -> None:
        self.leases = leases
        self.session_id = session_id
        self.attempt = attempt
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _Heartbeat:
        if self.leases is not None:
            self._thread = threading.Thread(target=self._beat, daemon=True,
                                            name=f"upload-heartbeat-{self.session_id}")
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _renew(self) -> None:
        assert self.leases is not None
        try:
            held = self.leases.renew(self.session_id, self.attempt)
        except Exception as exc:  # the database may be away for a moment: go on
            log.warning("upload of session %s: heartbeat failed: %s", self.session_id, exc,
                        extra=_op(self.session_id))
            return
        if not held:
            self.lost.set()

    def _beat(self) -> None:
        assert self.leases is not None
        while not self.lost.is_set() and not self._stop.wait(self.leases.heartbeat_seconds):
            self._renew()

    def check(self, *, final: bool = False) -> None:
        """Raise :class:`UploadLost` if the claim is gone (renewing first when `final`)."""
        if self.leases is None:
            return
        if final:
            self._renew()
        if self.lost.is_set():
            raise UploadLost(f"attempt {self.attempt} of session {self.session_id} was "
                             "taken over")


class _NullReporter:
    def started(self, session_id: int, attempt: int) -> None:
        return None

    def progress(self, session_id: int, sent: int, total: int) -> None:
        return None

    def succeeded(self, session_id: int, result: UploadResult) -> None:
        return None

    def failed(self, session_id: int, error: str, *, attempt: int, will_retry: bool,
               next_attempt_at: datetime | None) -> None:
        return None


class UploadQueue:
    """Persistent SFTP/SCP upload queue with exponential backoff.

    Parameters
    ----------
    huey : huey.Huey
        The recorder's queue (:func:`taperoom.jobs.make_huey`).
    reporter_factory : callable() -> TransferReporter
        Called once per attempt, in the worker thread.
    creds_factory : callable() -> SshCredentials
        Called once per attempt, so that a key or ``known_hosts`` changed in
        ``SSH_CONFIG_DIR`` is used by the next attempt.
    max_attempts : int
        Attempts in all, >= 1 (``TRANSFER_MAX_ATTEMPTS``).
    retry_delay : float
        Wait after the first failure, s (``RETRY_DELAY_SECONDS``); doubles per attempt.
    backoff_max : float
        Longest wait between attempts, s (``TRANSFER_BACKOFF_MAX_SECONDS``).
    cleanup_after_transfer : bool
        Delete the local MP3 (and ``.cue``) after a verified upload
        (``CLEANUP_AFTER_TRANSFER``).
    protocol : {"sftp", "scp"}
        ``TRANSFER_PROTOCOL``; a destination written as an ``sftp://`` or
        ``scp://`` URL uses its own scheme.
    timeout : float
        Connect/operation timeout of each upload, s.
    leases : UploadLeases, optional
        Claims of uploads (each attempt runs once, a silent worker's upload can
        be taken over); without it every task runs.
    """

    _task: Any  # huey TaskWrapper of upload_task on `huey`

    def __init__(self, huey: Huey, *, reporter_factory: Callable[[], TransferReporter],
                 creds_factory: Callable[[], SshCredentials], max_attempts: int = 5,
                 retry_delay: float = 60.0, backoff_max: float = 3600.0,
                 cleanup_after_transfer: bool = True, protocol: str = "sftp",
                 timeout: float = 30.0, leases: UploadLeases | None = None) -> None:
        if max_attempts < 1:
            raise InvalidInput("max_attempts must be at least 1")
        if protocol not in ("sftp", "scp"):
            raise InvalidInput(f"unknown transfer protocol {protocol!r}: use sftp or scp")
        self.huey = huey
        self.reporter_factory = reporter_factory
        self.creds_factory = creds_factory
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.backoff_max = backoff_max
        self.cleanup_after_transfer = cleanup_after_transfer
        self.protocol = protocol
        self.timeout = timeout
        self.leases = leases
        self._report_lock = threading.Lock()
        with _registry_lock:
            for cls, other in list(_registry.items()):
                if other.huey is huey:  # a newer queue on the same Huey replaces the old
                    other._task.unregister()
                    del _registry[cls]
            self._task = huey.task(context=True, name=TASK_NAME)(upload_task)
            _registry[self._task.task_class] = self

    # ------------------------------------------------------------------ producer side

    def enqueue(self, session_id: int, local_path: Path, destination: str, *,
                attempt: int = 1) -> None:
        """Queue the upload of `local_path` (and its ``.cue``) for `session_id`.

        The destination is parsed when the task runs, so a bad one is reported
        through :meth:`TransferReporter.failed` like any other failure.
        """
        self._task(session_id, str(local_path), destination, attempt)
        log.info("upload of session %s queued (attempt %d): %s -> %s", session_id, attempt,
                 Path(local_path).name, destination, extra=_op(session_id))

    def entries(self) -> list[QueuedUpload]:
        """Uploads waiting in the queue or for a delayed retry (not the running ones)."""
        out: list[QueuedUpload] = []
        cls = self._task.task_class
        for task in [*self.huey.pending(), *self.huey.scheduled()]:
            if not isinstance(task, cls):
                continue
            args = list(task.args) + [1] * (4 - len(task.args))
            eta = task.eta.replace(tzinfo=UTC) if task.eta is not None else None
            out.append(QueuedUpload(int(args[0]), str(args[1]), str(args[2]), int(args[3]),
                                    eta))
        return out

    def pending(self) -> int:
        """Number of uploads waiting (queued now or for a retry), running ones excluded."""
        try:
            return len(self.entries())
        except Exception:  # a message of an unknown task: count everything
            return int(self.huey.pending_count() + self.huey.scheduled_count())

    def close(self) -> None:
        """Unregister the task (the queue's contents stay in storage)."""
        with _registry_lock:
            if _registry.get(self._task.task_class) is self:
                del _registry[self._task.task_class]
                self._task.unregister()

    def delay_after(self, attempt: int) -> float:
        """Backoff after failed attempt `attempt`, s (see :func:`retry_delay_for`)."""
        return retry_delay_for(attempt, base=self.retry_delay, cap=self.backoff_max)

    # ------------------------------------------------------------------ worker side

    def run(self, session_id: int, local: Path, destination: str, attempt: int) -> None:
        """One upload attempt (called by the Huey task in a worker thread).

        Never raises: every outcome goes to the reporter and the log.
        """
        try:
            reporter: TransferReporter = self.reporter_factory()
        except Exception:
            log.exception("upload of session %s: no reporter; uploading without reports",
                          session_id, extra=_op(session_id))
            reporter = _NullReporter()
        if self.leases is not None and not self.leases.claim(session_id, attempt):
            log.info("upload of session %s: attempt %d is not to run (done, or run by "
                     "another task)", session_id, attempt, extra=_op(session_id))
            return
        try:
            dest = Destination.parse(destination)
        except InvalidInput as exc:
            self._report_failed(reporter, session_id, str(exc), attempt, final=True)
            return
        if not local.is_file():
            self._report_failed(reporter, session_id, f"local file {local} no longer exists",
                                attempt, final=True)
            return
        with self._report_lock:
            _safe(reporter.started, session_id, attempt)
        log.info("upload of session %s: attempt %d of %d to %s", session_id, attempt,
                 self.max_attempts, dest, extra=_op(session_id))

        beat = _Heartbeat(self.leases, session_id, attempt)

        def progress(sent: int, total: int) -> None:
            if stop_requested(self.huey):
                raise UploadInterrupted("the upload worker is stopping")
            beat.check(final=sent >= total)
            _safe(reporter.progress, session_id, sent, total)

        protocol = dest.scheme or self.protocol
        try:
            creds = self.creds_factory()
            with beat:
                result = upload_sync(local, dest, creds, protocol=protocol,
                                     progress=progress, timeout=self.timeout)
            cue = local.with_suffix(".cue")
            cue_ok = True
            if cue.is_file() and cue != local:
                cue_ok = self._upload_cue(cue, local, result, dest, creds, protocol)
        except UploadInterrupted:
            self._requeue_interrupted(reporter, session_id, local, destination, attempt)
            return
        except UploadLost:
            log.warning("upload of session %s: attempt %d was taken over by another "
                        "worker; stopped", session_id, attempt, extra=_op(session_id))
            return
        except NotFound as exc:
            self._report_failed(reporter, session_id, str(exc), attempt, final=True)
            return
        except Exception as exc:
            if not isinstance(exc, OSError):
                log.exception("upload of session %s: unexpected error", session_id,
                              extra=_op(session_id))
            self._retry_or_fail(reporter, session_id, local, destination, attempt, str(exc))
            return
        if self.cleanup_after_transfer and result.verified and cue_ok:
            for path in (local, local.with_suffix(".cue")):
                try:
                    path.unlink(missing_ok=True)
                except OSError as exc:
                    log.warning("upload of session %s: could not delete %s: %s", session_id,
                                path, exc, extra=_op(session_id))
        elif self.cleanup_after_transfer:
            log.info("upload of session %s not verified: local file kept", session_id,
                     extra=_op(session_id))
        _safe(reporter.succeeded, session_id, result)

    def _upload_cue(self, cue: Path, local: Path, result: UploadResult, dest: Destination,
                    creds: SshCredentials, protocol: str) -> bool:
        """Upload the cue sheet beside the remote MP3; returns whether it was verified."""
        remote_mp3 = result.remote_path
        remote_cue = posixpath.splitext(remote_mp3)[0] + ".cue"
        cue_dest = replace(dest, path=remote_cue)
        remote_name = posixpath.basename(remote_mp3)
        if remote_name == local.name:
            return upload_sync(cue, cue_dest, creds, protocol=protocol,
                               timeout=self.timeout).verified
        # The MP3 got another name remotely: the sheet's FILE line must follow it.
        text = cue.read_text(encoding="utf-8")
        text = text.replace(f'FILE "{local.name}"', f'FILE "{remote_name}"', 1)
        with tempfile.TemporaryDirectory(prefix="taperoom-cue-") as tmp:
            copy = Path(tmp) / posixpath.basename(remote_cue)
            copy.write_text(text, encoding="utf-8", newline="")
            return upload_sync(copy, cue_dest, creds, protocol=protocol,
                               timeout=self.timeout).verified

    def _requeue_interrupted(self, reporter: TransferReporter, session_id: int, local: Path,
                             destination: str, attempt: int) -> None:
        log.info("upload of session %s interrupted by shutdown; queued again", session_id,
                 extra=_op(session_id))
        with self._report_lock:
            # Reported (pending again) before it is queued: a worker elsewhere may take
            # the task at once, and its claim needs the upload pending.
            _safe(reporter.failed, session_id,
                  "interrupted: the upload worker stopped; the upload is queued again",
                  attempt=attempt, will_retry=True, next_attempt_at=None)
            try:
                self._task(session_id, str(local), destination, attempt)
            except Exception as exc:
                log.exception("upload of session %s could not be queued again", session_id,
                              extra=_op(session_id))
                self._report_failed(reporter, session_id, f"could not queue the upload "
                                    f"again: {exc}", attempt, final=True)

    def _retry_or_fail(self, reporter: TransferReporter, session_id: int, local: Path,
                       destination: str, attempt: int, error: str) -> None:
        if attempt >= self.max_attempts:
            self._report_failed(reporter, session_id,
                                f"{error} (gave up after {attempt} attempts)", attempt,
                                final=True)
            return
        delay = self.delay_after(attempt)
        next_at = datetime.now(UTC) + timedelta(seconds=delay)
        log.warning("upload of session %s failed (attempt %d of %d): %s; next attempt in "
                    "%g s", session_id, attempt, self.max_attempts, error, delay,
                    extra=_op(session_id))
        # Queue the retry first, so that a crash right now cannot lose it, and report
        # under the lock that the next attempt's "started" report also takes.
        with self._report_lock:
            try:
                # Straight into Huey's schedule (not via the queue, where a worker would
                # move it there), so the retry is always visible to pending().
                self.huey.add_schedule(self._task.s(session_id, str(local), destination,
                                                    attempt + 1, delay=delay))
            except Exception as exc:
                log.exception("upload of session %s: the retry could not be queued",
                              session_id, extra=_op(session_id))
                self._report_failed(reporter, session_id, f"{error}; the retry could not be "
                                    f"queued: {exc}", attempt, final=True)
                return
            _safe(reporter.failed, session_id, error, attempt=attempt, will_retry=True,
                  next_attempt_at=next_at)

    def _report_failed(self, reporter: TransferReporter, session_id: int, error: str,
                       attempt: int, *, final: bool) -> None:
        log.error("upload of session %s failed: %s", session_id, error, extra=_op(session_id))
        _safe(reporter.failed, session_id, error, attempt=attempt, will_retry=not final,
              next_attempt_at=None)


def _op(session_id: int) -> dict[str, Any]:
    return {"operation_type": "transfer", "session_id": session_id}


def _safe(fn: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    """Call a reporter method; its failure is logged, never fatal to the upload."""
    try:
        fn(*args, **kwargs)
    except UploadInterrupted:
        raise
    except Exception:
        log.exception("transfer reporter %s failed", getattr(fn, "__name__", fn))
