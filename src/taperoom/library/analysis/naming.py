"""Names of the library's analysis jobs: their kind, stages, priorities and ids, and the
shapes of their ``analysis_jobs`` rows and events on the wire."""

from __future__ import annotations

import re
from typing import Any

from taperoom.jobs import Priority
from taperoom.library.analysis.errors import AnalysisNotFound
from taperoom.library.models import AnalysisJob
from taperoom.library.schemas import iso

#: Job kind of analyses in the job layer.
KIND = "analysis"
#: The contract's stages that this process computes, in order.
LOCAL_STAGES = ("basic_features", "characteristics")
#: Every stage name of the contract's options and callbacks.
#: The stage that separates sources (stems) and measures nothing.
STEMS_STAGE = "stems"
OPTION_STAGES = ("basic_features", "characteristics", "genre", "stems", "segments",
                 "transitions")
#: The contract's priority names and their job priorities.
PRIORITIES = {"low": Priority.LOW, "normal": Priority.NORMAL, "high": Priority.HIGH}
#: What a job id may look like: an audio hash, or the id an external server gave.
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


def priority_name(value: int) -> str:
    """The contract's name of a job priority (``URGENT`` shows as ``high``)."""
    if value >= Priority.HIGH:
        return "high"
    return "normal" if value >= Priority.NORMAL else "low"


def checked_job_id(job_id: str) -> str:
    """`job_id` when it can be one (an audio hash, or an external server's id).

    Raises
    ------
    AnalysisNotFound
        ``Job not found``: it cannot name a job.
    """
    if not _JOB_ID.fullmatch(job_id or ""):
        raise AnalysisNotFound("Job not found", "No analysis job with that id")
    return job_id


def percent(done: list[str], stages: list[str]) -> int:
    """Share of `stages` in `done`, in percent (0-100, rounded)."""
    return round(100 * len([d for d in done if d in stages]) / max(len(stages), 1))


def event_base(file_hash: str, track_id: str | None, track_ids: list[str]
               ) -> dict[str, Any]:
    """``{jobId, trackId, trackIds}``: what every ``analysis:*`` event of a job carries."""
    return {"jobId": file_hash, "trackId": track_id, "trackIds": track_ids}


def job_summary(row: AnalysisJob) -> dict[str, Any]:
    """The ``job`` of ``POST /api/analysis/request``'s answer."""
    return {"job_id": row.job_id, "track_id": row.track_id, "status": row.status,
            "priority": row.priority, "progress_percent": row.progress_percent,
            "created_at": iso(row.created_at)}


def job_dict(row: AnalysisJob) -> dict[str, Any]:
    """The ``job`` of ``GET /api/analysis/jobs/:jobId`` (contract shape of the row)."""
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
