"""Response models of the analysis server (contract §3 shapes plus Taperoom's fields)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    """``{"error": message}``."""

    error: str


#: Error answers every route may give.
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Bad request"},
    401: {"model": ErrorBody, "description": "API token missing or wrong"},
    403: {"model": ErrorBody, "description": "Refused"},
    404: {"model": ErrorBody, "description": "No such job"},
    413: {"model": ErrorBody, "description": "Upload too large"},
    503: {"model": ErrorBody, "description": "Queue full or shutting down"},
}

_OPTIONS_SCHEMA = {"type": "object", "properties": {
    name: {"type": "boolean"} for name in
    ("basic_features", "characteristics", "genre", "stems", "segments", "transitions")}}

#: OpenAPI request body of ``POST /jobs``: the route reads JSON or multipart itself.
JOB_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {
        "type": "object", "required": ["file_path", "track_hash"],
        "properties": {
            "file_path": {"type": "string", "description": "Absolute path inside "
                          "ANALYSIS_SERVER_ALLOWED_ROOTS"},
            "track_hash": {"type": "string", "description": "The job id"},
            "options": _OPTIONS_SCHEMA,
            "callback_url": {"type": "string", "format": "uri"},
            "stem_delivery_mode": {"type": "string", "enum": ["path", "callback"]}}}},
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["file", "track_hash"],
        "properties": {
            "file": {"type": "string", "format": "binary"},
            "track_hash": {"type": "string"},
            "options": {"type": "string", "description": "JSON object"},
            "callback_url": {"type": "string", "format": "uri"},
            "stem_delivery_mode": {"type": "string", "enum": ["path", "callback"]}}}},
}}}


class JobAccepted(BaseModel):
    """Answer to ``POST /jobs`` (contract §3)."""

    job_id: str
    status: str
    track_hash: str
    created_at: str
    callback_url: str | None
    stem_delivery_mode: str


class JobView(JobAccepted):
    """Answer to ``GET /jobs/{id}``.

    ``stages`` maps each requested stage to ``{"status": "pending" | "completed" |
    "skipped" | "failed", "error"?}``; ``progress`` is 0-100; ``processing_time``
    the seconds from start to completion.
    """

    mode: str
    file_path: str | None
    file_name: str
    options: dict[str, bool]
    progress: int
    stage: str | None
    stages: dict[str, dict[str, str]]
    stages_completed: list[str]
    error: str | None
    started_at: str | None
    completed_at: str | None
    processing_time: float | None
    callbacks_sent: int
    callbacks_failed: int
    last_callback_error: str | None


class JobRemoved(BaseModel):
    """Answer to ``DELETE /jobs/{id}``."""

    message: str
    job_id: str
    status: str


class Health(BaseModel):
    """Answer to ``GET /health`` (contract §3)."""

    status: str
    version: str
    jobs_queued: int
    jobs_processing: int


class Stats(BaseModel):
    """Answer to ``GET /stats``: counts since the server started. ``workers_busy``:
    threads running a job (a cancelled one until it has stopped);
    ``processing_seconds``: CPU seconds of the analysing threads;
    ``speed_x_realtime``: audio seconds analysed per CPU second (× real time per core).
    """

    version: str
    uptime_seconds: float
    jobs_queued: int
    jobs_processing: int
    jobs_submitted: int
    jobs_completed: int
    jobs_failed: int
    jobs_cancelled: int
    jobs_known: int
    concurrency: int
    workers_busy: int
    queue_size: int
    callbacks_sent: int
    callbacks_failed: int
    audio_seconds_analyzed: float
    processing_seconds: float
    speed_x_realtime: float | None
