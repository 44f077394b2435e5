"""The history of recording sessions: listing, one session, statistics.

Reads only; recordings are started, stopped and uploaded again by
:class:`~taperoom.recorder.service.RecordingService`, which also gives the live
progress of a session that is recording in this process.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from taperoom.errors import InvalidInput
from taperoom.recorder import repository as repo
from taperoom.recorder.models import SessionStatus, utcnow
from taperoom.recorder.repository import check_id
from taperoom.recorder.schemas import session_dict
from taperoom.recorder.settings import RecorderSettings

#: Session statuses a listing may filter on.
STATUSES = tuple(s.value for s in SessionStatus)


def check_status(status: str | None) -> str | None:
    """`status` when it is a session status (or empty/None); InvalidInput otherwise."""
    if not status:
        return None
    if status not in STATUSES:
        raise InvalidInput(f"Invalid status {status!r}; valid statuses: {', '.join(STATUSES)}")
    return status


class LiveProgress(Protocol):
    """Live progress of the recordings of this process
    (:class:`~taperoom.recorder.service.RecordingService`)."""

    def progress(self, session_id: int) -> dict[str, Any] | None:
        """Progress of `session_id` while it records here, else None."""


class SessionService:
    """Reads the recording sessions.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the recorder database.
    settings : RecorderSettings
        ``TZ`` (times in answers).
    live : LiveProgress
        The recording service, for the progress of a session still recording.
    """

    def __init__(self, db: sessionmaker[Session], settings: RecorderSettings,
                 live: LiveProgress) -> None:
        self.db = db
        self.settings = settings
        self.live = live

    def list(self, *, skip: int = 0, limit: int = 50, status: str | None = None,
             schedule_id: int | None = None, station_id: int | None = None,
             recent_days: float | None = None) -> list[dict[str, Any]]:
        """Sessions (``RecordingSessionResponse`` dicts), newest first.

        Parameters
        ----------
        skip, limit : int
            Paging.
        status : str, optional
            Only this status.
        schedule_id, station_id : int, optional
            Only the sessions of this schedule / station.
        recent_days : float, optional
            Only sessions started in the last `recent_days` days.

        Raises
        ------
        InvalidInput
            An unknown `status`.
        """
        wanted = check_status(status)
        since = utcnow() - timedelta(days=recent_days) if recent_days else None
        with self.db() as db:
            rows = repo.list_sessions(db, skip=skip, limit=limit, status=wanted,
                                      schedule_id=schedule_id, station_id=station_id,
                                      since=since)
            return [session_dict(row, self.settings.zone) for row in rows]

    def get(self, session_id: int) -> dict[str, Any]:
        """One session, with its live ``progress`` while it records in this process.

        Raises
        ------
        NotFound
            Unknown session.
        """
        check_id(session_id, "recording session")
        with self.db() as db:
            data = session_dict(repo.get_session(db, session_id), self.settings.zone)
        progress = self.live.progress(session_id)
        if progress is not None:
            data["progress"] = progress
        return data

    def statistics(self) -> dict[str, Any]:
        """``{total_sessions, completed_sessions, failed_sessions, active_sessions,
        success_rate}``; success rate in percent of finished sessions."""
        with self.db() as db:
            c = repo.session_statistics(db)
        finished = c["completed"] + c["failed"]
        rate = round(100.0 * c["completed"] / finished, 1) if finished else 0.0
        return {"total_sessions": c["total"], "completed_sessions": c["completed"],
                "failed_sessions": c["failed"], "active_sessions": c["active"],
                "success_rate": rate}
