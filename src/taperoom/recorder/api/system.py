"""Routes of /api/system: health, resource metrics and logs (contracts/recorder.md).

Besides the contract, ``GET /logs`` also filters by ``level`` (minimum),
``session_id`` and ``since`` (ISO instant).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from taperoom.recorder.api.deps import MetricsSamplerDep, SettingsDep, SystemMonitorDep
from taperoom.recorder.logs import check_operation_type, read_logs
from taperoom.recorder.monitor import summarize
from taperoom.recorder.repository import MAX_ID
from taperoom.recorder.schemas import (
    API_ERRORS,
    DetailedMetricsPublic,
    LogsPublic,
    MetricsPublic,
    MetricsSummaryPublic,
    SamplePublic,
    SystemHealthPublic,
    SystemStatusPublic,
)

router = APIRouter(prefix="/api/system", tags=["system"], responses=API_ERRORS)


@router.get("/status", response_model=SystemStatusPublic, response_model_exclude_unset=True)
def status(monitor: SystemMonitorDep) -> dict[str, Any]:
    """``{status, message, timestamp, uptime_seconds, active_recordings,
    total_recordings, cpu_percent, memory_*, disk_* (of RECORDINGS_DIR), components}``."""
    return monitor.status()


@router.get("/health", response_model=SystemHealthPublic, response_model_exclude_unset=True)
def health(monitor: SystemMonitorDep) -> dict[str, Any]:
    """``{status: healthy|degraded|unhealthy, message, timestamp, components}``."""
    return monitor.health()


@router.get("/metrics", response_model=MetricsPublic | MetricsSummaryPublic)
def metrics(sampler: MetricsSamplerDep, hours: float = Query(1.0, gt=0, le=24),
            summary: bool = False) -> dict[str, Any]:
    """``{metrics: [sample], count, hours}`` of the last `hours` (oldest first),
    or with ``summary=true`` ``{hours, count, from, to, cpu_percent: {avg, min,
    max, latest}, ...}``."""
    samples = sampler.history(hours)
    if summary:
        return summarize(samples, hours)
    return {"metrics": samples, "count": len(samples), "hours": hours}


@router.get("/metrics/current", response_model=SamplePublic)
async def metrics_current(sampler: MetricsSamplerDep) -> dict[str, Any]:
    """A fresh sample (CPU over 0.1 s)."""
    return await run_in_threadpool(sampler.sample, cpu_interval=0.1)


@router.get("/metrics/detailed", response_model=DetailedMetricsPublic,
            response_model_exclude_unset=True)
async def metrics_detailed(sampler: MetricsSamplerDep) -> dict[str, Any]:
    """A fresh sample plus per-CPU use, load, I/O counters, folders and process."""
    return await run_in_threadpool(sampler.detailed)


@router.get("/logs", response_model=LogsPublic, response_model_exclude_unset=True)
def logs(settings: SettingsDep, operation_type: str | None = Query(None, max_length=32),
         limit: int = Query(100, ge=1, le=1000),
         level: str | None = Query(None, max_length=16),
         session_id: int | None = Query(None, ge=1, le=MAX_ID),
         since: datetime | None = None) -> dict[str, Any]:
    """``{logs: [entry], count, operation_type, limit}``, newest first; 400 for an
    unknown ``operation_type`` or ``level``."""
    wanted = check_operation_type(operation_type)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=settings.zone)
    entries = read_logs(settings.log_dir, operation_type=wanted, level=level,
                        session_id=session_id, limit=limit, since=since)
    return {"logs": entries, "count": len(entries), "operation_type": wanted, "limit": limit}
