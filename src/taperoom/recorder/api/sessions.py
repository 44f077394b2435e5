"""Routes of /api/sessions: recording sessions (contracts/recorder.md "HTTP API").

Reads come from the session history (:class:`~taperoom.recorder.sessions.SessionService`);
actions (stop, retry an upload) and live progress from the recording service.
Besides the contract: ``GET /api/sessions?stream_config_id=`` and
``POST /<id>/retry-transfer``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from taperoom.recorder.api.deps import RecordingServiceDep, SessionServiceDep
from taperoom.recorder.repository import MAX_ID, check_id
from taperoom.recorder.schemas import (
    API_ERRORS,
    CONFLICT,
    ActiveSessionsPublic,
    LiveSessionPublic,
    SessionPublic,
    StatisticsPublic,
    StopPublic,
)

router = APIRouter(prefix="/api/sessions", tags=["sessions"], responses=API_ERRORS)


@router.get("", response_model=list[SessionPublic], response_model_exclude_unset=True)
@router.get("/", response_model=list[SessionPublic], response_model_exclude_unset=True,
            include_in_schema=False)
def list_sessions(sessions: SessionServiceDep, skip: int = Query(0, ge=0, le=MAX_ID),
                  limit: int = Query(50, ge=1, le=1000),
                  status: str | None = Query(None, max_length=32),
                  schedule_id: int | None = Query(None, ge=1, le=MAX_ID),
                  stream_config_id: int | None = Query(None, ge=1, le=MAX_ID),
                  recent_days: float | None = Query(None, gt=0, le=36500)
                  ) -> list[dict[str, Any]]:
    """``[RecordingSessionResponse]``, newest first; 400 unknown ``status``."""
    return sessions.list(skip=skip, limit=limit, status=status, schedule_id=schedule_id,
                         station_id=stream_config_id, recent_days=recent_days)


@router.get("/statistics", response_model=StatisticsPublic)
def statistics(sessions: SessionServiceDep) -> dict[str, Any]:
    """``{total_sessions, completed_sessions, failed_sessions, active_sessions,
    success_rate}`` (percent of finished sessions)."""
    return sessions.statistics()


@router.get("/active", response_model=ActiveSessionsPublic, response_model_exclude_unset=True)
def active(recordings: RecordingServiceDep) -> dict[str, Any]:
    """``{active_sessions: [session + progress], count}``."""
    live = recordings.active()
    return {"active_sessions": live, "count": len(live)}


@router.get("/{session_id:int}", response_model=LiveSessionPublic | SessionPublic,
            response_model_exclude_unset=True)
def get_session(session_id: int, sessions: SessionServiceDep) -> dict[str, Any]:
    """The session (with ``progress`` while it records); 404."""
    return sessions.get(session_id)


@router.post("/{session_id:int}/stop", response_model=StopPublic, responses=CONFLICT)
def stop(session_id: int, recordings: RecordingServiceDep) -> dict[str, Any]:
    """``{message, session_id}``; 404 unknown; 409 not recording."""
    check_id(session_id, "recording session")
    return recordings.stop(session_id)


@router.post("/{session_id:int}/retry-transfer", response_model=SessionPublic,
             response_model_exclude_unset=True, responses=CONFLICT)
def retry_transfer(session_id: int, recordings: RecordingServiceDep) -> dict[str, Any]:
    """The session with its upload queued again; 404; 409 when the upload did
    not fail, the station has no destination or the local file is gone."""
    check_id(session_id, "recording session")
    return recordings.retry_transfer(session_id)
