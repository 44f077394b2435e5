"""Who runs an upload: leases in the sessions table, so that each upload runs once.

Huey takes a task off its queue when a worker starts it (on Redis, with an
``RPOP``), so a worker process that dies during an upload (killed, or its
machine gone) takes the task with it. The sessions table keeps what the queue
forgets:

* **claim**: an upload task runs only after taking its session's upload
  (``pending`` -> ``in_progress`` with ``transfer_attempts = attempt``, one
  UPDATE, :func:`taperoom.recorder.repository.claim_transfer`), so a task
  queued twice runs once;
* **heartbeat**: while it uploads, the worker renews the lease every
  :attr:`SessionUploadLeases.heartbeat_seconds` (``updated_at``); a renewal that
  finds the upload taken from it stops the upload before its remote rename;
* **recovery**: :class:`StaleUploadWatcher`, running beside every queue consumer
  (in the server and in each ``taperoom worker``), takes an upload whose lease
  was not renewed for ``UPLOAD_STALE_SECONDS`` from its silent worker (one
  conditional UPDATE, so one watcher wins) and queues its next attempt, which
  any worker then runs.

The attempt number fences the lease: the next attempt's claim changes
``transfer_attempts``, after which the old worker's renewals fail. The remote
side never sees a partial file under the final name (the transfer writes
``.<name>.part`` and renames it once its size matches), so a killed upload
leaves at most that temporary file, which the next attempt overwrites. Clocks
of the machines are compared through the timestamps they write, so they must
agree (NTP) to well within ``UPLOAD_STALE_SECONDS``.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import autocommit
from taperoom.recorder import repository as repo
from taperoom.recorder.models import TransferStatus, utcnow
from taperoom.recorder.uploads import UploadQueue

log = logging.getLogger(__name__)


class SessionUploadLeases:
    """The claim and heartbeat of uploads, on the sessions table.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the recorder database.
    stale_after : float
        ``UPLOAD_STALE_SECONDS``: a lease not renewed for this long may be taken.

    Attributes
    ----------
    heartbeat_seconds : float
        Interval between two renewals, a quarter of `stale_after`.
    """

    def __init__(self, db: sessionmaker[Session], *, stale_after: float) -> None:
        self.db = db
        self.stale_after = stale_after
        self.heartbeat_seconds = stale_after / 4.0

    def claim(self, session_id: int, attempt: int) -> bool:
        """Take the upload of `session_id` for `attempt`; False if it is not this
        attempt's to run (see :func:`taperoom.recorder.repository.claim_transfer`)."""
        with autocommit(self.db) as db:
            return repo.claim_transfer(db, session_id, attempt)

    def renew(self, session_id: int, attempt: int) -> bool:
        """Heartbeat; False when the upload was taken from `attempt`."""
        with autocommit(self.db) as db:
            return repo.renew_transfer(db, session_id, attempt)


class StaleUploadWatcher:
    """Queues again the uploads whose worker went silent (see the module docstring).

    Parameters
    ----------
    db : sessionmaker
        Session factory of the recorder database.
    uploads : UploadQueue
        Where the next attempt is queued; its reporter announces the hand-over
        and its ``max_attempts`` bounds it.
    stale_after : float
        ``UPLOAD_STALE_SECONDS``.
    interval : float, optional
        Seconds between two looks (default: a quarter of `stale_after`, at least 0.5).
    """

    def __init__(self, db: sessionmaker[Session], uploads: UploadQueue, *,
                 stale_after: float, interval: float | None = None) -> None:
        self.db = db
        self.uploads = uploads
        self.stale_after = stale_after
        self.interval = interval if interval is not None else max(0.5, stale_after / 4.0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Look every :attr:`interval` seconds, in a daemon thread, until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="recorder-upload-watch",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop looking (waits for a look in progress)."""
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            thread.join(10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # the database may be away for a while: look again later
                log.exception("looking for stale uploads failed")

    def check(self) -> list[int]:
        """Take every stale upload and queue its next attempt (or fail it when it was
        the last attempt, its file is gone or its station has no destination).

        Returns
        -------
        list of int
            Sessions taken by this call.
        """
        before = utcnow() - timedelta(seconds=self.stale_after)
        with self.db() as db:
            stale = [(r.id, max(1, r.transfer_attempts), r.output_file_path,
                      repo.station_destination(db, r.station_id))
                     for r in repo.stale_transfers(db, before)]
        taken = []
        for session_id, attempt, path, dest in stale:
            if self._hand_over(session_id, attempt, path, dest, before):
                taken.append(session_id)
        return taken

    def _hand_over(self, session_id: int, attempt: int, path: str | None, dest: str,
                   before: Any) -> bool:
        silent = (f"the upload worker fell silent during attempt {attempt} "
                  f"(no heartbeat for {self.stale_after:g} s)")
        local = Path(path) if path else None
        reason = ("the station has no upload destination" if not dest
                  else "the local recording is gone" if local is None or not local.is_file()
                  else f"gave up after {attempt} attempts" if attempt >= self.uploads.max_attempts
                  else "")
        status = TransferStatus.FAILED if reason else TransferStatus.PENDING
        message = f"{silent}; {reason}" if reason else f"{silent}; queued again"
        with autocommit(self.db) as db:
            if not repo.take_stale_transfer(db, session_id, attempt, before, {
                    "transfer_status": status.value, "transfer_error_message": message}):
                return False  # renewed meanwhile, or another watcher took it
        log.warning("upload of session %s: %s", session_id, message,
                    extra={"operation_type": "transfer", "session_id": session_id})
        try:
            reporter = self.uploads.reporter_factory()
            reporter.failed(session_id, message, attempt=attempt, will_retry=not reason,
                            next_attempt_at=None)
        except Exception:
            log.exception("upload of session %s: the hand-over was not reported", session_id)
        if not reason and local is not None:
            try:
                self.uploads.enqueue(session_id, local, dest, attempt=attempt + 1)
            except Exception as exc:  # the queue is away: say so rather than wait forever
                log.exception("upload of session %s could not be queued again", session_id)
                with autocommit(self.db) as db:
                    repo.update_session(db, session_id, {
                        "transfer_status": TransferStatus.FAILED.value,
                        "transfer_error_message": f"{silent}; could not be queued again: "
                                                  f"{exc}"})
        return True
