"""Routes of /api/sessions: recording sessions (contracts/recorder.md "HTTP API").

Reads come from the repository; actions (stop, retry an upload) and live
progress from the recording service (``ctx.recordings``). Besides the contract:
``GET /api/sessions?stream_config_id=`` and ``POST /<id>/retry-transfer``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Query

from taperoom.errors import InvalidInput
from taperoom.recorder import repository as repo
from taperoom.recorder.context import RecorderContext
from taperoom.recorder.models import SessionStatus, utcnow
from taperoom.recorder.schemas import session_dict
from taperoom.recorder.stations import MAX_ID, check_id

_STATUSES = tuple(s.value for s in SessionStatus)


def check_status(status: str | None) -> str | None:
    """`status` when it is a session status (or empty/None); InvalidInput otherwise."""
    if not status:
        return None
    if status not in _STATUSES:
        raise InvalidInput(f"Invalid status {status!r}; valid statuses: {', '.join(_STATUSES)}")
    return status


def build_router(ctx: RecorderContext) -> APIRouter:
    """Router of the session routes (mounted at ``/api/sessions``)."""
    r = APIRouter(tags=["sessions"])
    zone = ctx.settings.zone

    @r.get("")
    @r.get("/", include_in_schema=False)
    def list_sessions(skip: int = Query(0, ge=0, le=MAX_ID),
                      limit: int = Query(50, ge=1, le=1000),
                      status: str | None = Query(None, max_length=32),
                      schedule_id: int | None = Query(None, ge=1, le=MAX_ID),
                      stream_config_id: int | None = Query(None, ge=1, le=MAX_ID),
                      recent_days: float | None = Query(None, gt=0, le=36500)
                      ) -> list[dict[str, Any]]:
        """``[RecordingSessionResponse]``, newest first; 400 unknown ``status``."""
        wanted = check_status(status)
        since = utcnow() - timedelta(days=recent_days) if recent_days else None
        with ctx.sessions() as db:
            rows = repo.list_sessions(db, skip=skip, limit=limit, status=wanted,
                                      schedule_id=schedule_id,
                                      stream_config_id=stream_config_id, since=since)
            return [session_dict(row, zone) for row in rows]

    @r.get("/statistics")
    def statistics() -> dict[str, Any]:
        """``{total_sessions, completed_sessions, failed_sessions, active_sessions,
        success_rate}`` (percent of finished sessions)."""
        return ctx.recordings.statistics()

    @r.get("/active")
    def active() -> dict[str, Any]:
        """``{active_sessions: [session + progress], count}``."""
        sessions = ctx.recordings.active()
        return {"active_sessions": sessions, "count": len(sessions)}

    @r.get("/{session_id:int}")
    def get_session(session_id: int) -> dict[str, Any]:
        """The session (with ``progress`` while it records); 404."""
        check_id(session_id, "recording session")
        with ctx.sessions() as db:
            data = session_dict(repo.get_session(db, session_id), zone)
        if ctx.recordings.is_running(session_id):
            progress = next((s.get("progress") for s in ctx.recordings.active()
                             if s["id"] == session_id), None)
            data["progress"] = progress
        return data

    @r.post("/{session_id:int}/stop")
    def stop(session_id: int) -> dict[str, Any]:
        """``{message, session_id}``; 404 unknown; 409 not recording."""
        check_id(session_id, "recording session")
        return ctx.recordings.stop(session_id)

    @r.post("/{session_id:int}/retry-transfer")
    def retry_transfer(session_id: int) -> dict[str, Any]:
        """The session with its upload queued again; 404; 409 when the upload did
        not fail, the station has no destination or the local file is gone."""
        check_id(session_id, "recording session")
        return ctx.recordings.retry_transfer(session_id)

    return r
