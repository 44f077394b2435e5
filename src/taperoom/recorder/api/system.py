"""Routes of /api/system: health, resource metrics and logs (contracts/recorder.md).

Besides the contract, ``GET /logs`` also filters by ``level`` (minimum),
``session_id`` and ``since`` (ISO instant).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from taperoom.recorder import monitor
from taperoom.recorder.context import RecorderContext
from taperoom.recorder.logs import check_operation_type, read_logs
from taperoom.recorder.stations import MAX_ID


def build_router(ctx: RecorderContext) -> APIRouter:
    """Router of the system routes (mounted at ``/api/system``)."""
    r = APIRouter(tags=["system"])

    @r.get("/status")
    def status() -> dict[str, Any]:
        """``{status, message, timestamp, uptime_seconds, active_recordings,
        total_recordings, cpu_percent, memory_*, disk_* (of RECORDINGS_DIR), components}``."""
        return monitor.status(ctx)

    @r.get("/health")
    def health() -> dict[str, Any]:
        """``{status: healthy|degraded|unhealthy, message, timestamp, components}``."""
        return monitor.health(ctx)

    @r.get("/metrics")
    def metrics(hours: float = Query(1.0, gt=0, le=24),
                summary: bool = False) -> dict[str, Any]:
        """``{metrics: [sample], count, hours}`` of the last `hours` (oldest first),
        or with ``summary=true`` ``{hours, count, from, to, cpu_percent: {avg, min,
        max, latest}, ...}``."""
        samples = monitor.sampler_of(ctx).history(hours)
        if summary:
            return monitor.summarize(samples, hours)
        return {"metrics": samples, "count": len(samples), "hours": hours}

    @r.get("/metrics/current")
    async def metrics_current() -> dict[str, Any]:
        """A fresh sample (CPU over 0.1 s)."""
        return await run_in_threadpool(monitor.take_sample, ctx, cpu_interval=0.1)

    @r.get("/metrics/detailed")
    async def metrics_detailed() -> dict[str, Any]:
        """A fresh sample plus per-CPU use, load, I/O counters, folders and process."""
        return await run_in_threadpool(monitor.detailed, ctx)

    @r.get("/logs")
    def logs(operation_type: str | None = Query(None, max_length=32),
             limit: int = Query(100, ge=1, le=1000),
             level: str | None = Query(None, max_length=16),
             session_id: int | None = Query(None, ge=1, le=MAX_ID),
             since: datetime | None = None) -> dict[str, Any]:
        """``{logs: [entry], count, operation_type, limit}``, newest first; 400 for an
        unknown ``operation_type`` or ``level``."""
        wanted = check_operation_type(operation_type)
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=ctx.settings.zone)
        entries = read_logs(ctx.settings.log_dir, operation_type=wanted, level=level,
                            session_id=session_id, limit=limit, since=since)
        return {"logs": entries, "count": len(entries), "operation_type": wanted,
                "limit": limit}

    return r
