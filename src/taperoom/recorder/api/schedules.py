"""Routes of /api/schedules: cron schedules (contracts/recorder.md "HTTP API").

Besides the contract: ``POST /validate-cron?after=<ISO>`` lists the next runs
from a given instant instead of now (naive = in ``TZ``), and the answer names
the ``timezone``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from taperoom.errors import InvalidInput
from taperoom.recorder import stations as service
from taperoom.recorder.context import RecorderContext
from taperoom.recorder.schemas import CronCheck, ScheduleCreate, ScheduleUpdate


def build_router(ctx: RecorderContext) -> APIRouter:
    """Router of the schedule routes (mounted at ``/api/schedules``)."""
    r = APIRouter(tags=["schedules"])

    @r.get("")
    @r.get("/", include_in_schema=False)
    def list_schedules(skip: int = Query(0, ge=0, le=service.MAX_ID),
                       limit: int = Query(100, ge=1, le=1000),
                       active: bool | None = None,
                       stream_config_id: int | None = Query(None, ge=1, le=service.MAX_ID)
                       ) -> list[dict[str, Any]]:
        """``[RecordingScheduleResponse]`` by id; ``active=true|false`` and
        ``stream_config_id`` filter."""
        return service.list_schedules(ctx, skip=skip, limit=limit, active=active,
                                      stream_config_id=stream_config_id)

    @r.post("", status_code=201)
    @r.post("/", status_code=201, include_in_schema=False)
    def create_schedule(body: ScheduleCreate) -> dict[str, Any]:
        """201 with the schedule (and its ``next_run_time``); 400 bad cron; 404 station."""
        return service.create_schedule(ctx, body)

    @r.post("/validate-cron", response_model=None)
    def validate_cron(body: CronCheck, after: datetime | None = None
                      ) -> dict[str, Any] | JSONResponse:
        """``{valid: true, cron_expression, next_run_time, next_runs: [5 ISO],
        description, timezone}``; invalid -> 400 ``{valid: false, error: "Invalid
        cron expression format", message: <why>}``; an ``after`` outside 1970-9000 is
        a 400 in the usual error shape."""
        after = service.check_after(after, ctx.settings.zone)
        try:
            return service.validate_cron(ctx, body.cron_expression, after=after)
        except InvalidInput as exc:
            return JSONResponse({"valid": False, "error": "Invalid cron expression format",
                                 "message": exc.message}, status_code=400)

    @r.get("/{schedule_id:int}")
    def get_schedule(schedule_id: int) -> dict[str, Any]:
        """The schedule; 404."""
        return service.get_schedule(ctx, schedule_id)

    @r.put("/{schedule_id:int}")
    def update_schedule(schedule_id: int, body: ScheduleUpdate) -> dict[str, Any]:
        """The updated schedule (job re-synced); 400/404."""
        return service.update_schedule(ctx, schedule_id, body)

    @r.delete("/{schedule_id:int}")
    def delete_schedule(schedule_id: int) -> dict[str, Any]:
        """``{"message": "Recording schedule N deleted successfully"}``; 404."""
        return service.delete_schedule(ctx, schedule_id)

    @r.post("/{schedule_id:int}/activate")
    def activate(schedule_id: int) -> dict[str, Any]:
        """``{schedule_id, is_active: true, message: "Schedule activated successfully",
        next_run_time}``; 404."""
        return service.set_active(ctx, schedule_id, True)

    @r.post("/{schedule_id:int}/deactivate")
    def deactivate(schedule_id: int) -> dict[str, Any]:
        """``{schedule_id, is_active: false, message: "Schedule deactivated
        successfully", next_run_time: null}``; 404."""
        return service.set_active(ctx, schedule_id, False)

    @r.get("/{schedule_id:int}/next-run")
    def next_run(schedule_id: int) -> dict[str, Any]:
        """``{schedule_id, next_run_time ISO|null, is_active, cron_expression}``; 404."""
        return service.next_run(ctx, schedule_id)

    return r
