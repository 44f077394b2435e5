"""The upload queue's reports, written into the sessions table and onto the bus.

:class:`SessionUploadReporter` is the
:class:`~taperoom.recorder.uploads.TransferReporter` of the recorder: each state
change of an upload (started, progress, succeeded, failed) updates the session's
``transfer_*`` fields and is announced as ``transfer:status``. Progress events
are sent at most every :data:`PROGRESS_INTERVAL` seconds per session.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.errors import NotFound
from taperoom.events import Event, EventBus
from taperoom.recorder import repository as repo
from taperoom.recorder.models import TransferStatus, utcnow
from taperoom.recorder.transfer import UploadResult

log = logging.getLogger(__name__)

#: Minimum interval between two progress events of one upload (s).
PROGRESS_INTERVAL = 0.5


def _op(session_id: int) -> dict[str, Any]:
    return {"operation_type": "transfer", "session_id": session_id}


class SessionUploadReporter:
    """Writes the upload queue's reports into the sessions table and onto the bus.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the recorder database.
    bus : EventBus
        Receives ``transfer:status`` ``{session_id, transfer_status, ...}``.
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus) -> None:
        self.db = db
        self.bus = bus
        self._last: dict[int, float] = {}

    def _update(self, session_id: int, values: dict[str, Any]) -> None:
        try:
            with transaction(self.db) as db:
                row = repo.update_session(db, session_id, values)
                status = row.transfer_status
        except NotFound:
            return
        self.bus.send(Event.TRANSFER_STATUS, {
            "session_id": session_id, "transfer_status": status,
            **{k: v for k, v in values.items() if isinstance(v, str | int | float)}})

    def started(self, session_id: int, attempt: int) -> None:
        """An upload attempt begins."""
        self._update(session_id, {"transfer_status": TransferStatus.IN_PROGRESS.value,
                                  "transfer_attempts": attempt})

    def progress(self, session_id: int, sent: int, total: int) -> None:
        """Bytes sent so far (events at most twice a second)."""
        now = time.monotonic()
        if now - self._last.get(session_id, 0.0) < PROGRESS_INTERVAL and sent < total:
            return
        self._last[session_id] = now
        self.bus.send(Event.TRANSFER_STATUS, {
            "session_id": session_id, "transfer_status": "in_progress",
            "bytes_sent": sent, "bytes_total": total})

    def succeeded(self, session_id: int, result: UploadResult) -> None:
        """The upload is complete and verified."""
        with self.db() as db:
            try:
                path = repo.get_session(db, session_id).output_file_path
            except NotFound:
                return
        self._update(session_id, {
            "transfer_status": TransferStatus.COMPLETED.value,
            "remote_path": result.remote_path, "transferred_at": utcnow(),
            "transfer_error_message": None,
            "local_deleted": bool(path) and not Path(path or "").exists()})
        log.info("upload of session %s done: %s (%d bytes)", session_id, result.remote_path,
                 result.bytes, extra=_op(session_id))

    def failed(self, session_id: int, error: str, *, attempt: int, will_retry: bool,
               next_attempt_at: datetime | None) -> None:
        """An attempt failed; `will_retry` tells whether another one is queued."""
        msg = error if not will_retry or next_attempt_at is None else (
            f"{error} (attempt {attempt}; next attempt at {next_attempt_at.isoformat()})")
        self._update(session_id, {
            "transfer_status": (TransferStatus.PENDING if will_retry
                                else TransferStatus.FAILED).value,
            "transfer_error_message": msg, "transfer_attempts": attempt})
        log.warning("upload of session %s failed (attempt %d): %s", session_id, attempt, error,
                    extra=_op(session_id))
