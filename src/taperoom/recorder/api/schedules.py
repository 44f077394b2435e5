"""Routes of /api/schedules: cron schedules (contracts/recorder.md "HTTP API").

Besides the contract: ``POST /validate-cron?after=<ISO>`` lists the next runs
from a given instant instead of now (naive = in ``TZ``), and the answer names
the ``timezone``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query

from taperoom.recorder.api.deps import ScheduleServiceDep
from taperoom.recorder.repository import MAX_ID
from taperoom.recorder.schemas import (
    API_ERRORS,
    CronCheck,
    CronCheckPublic,
    CronInvalidPublic,
    MessagePublic,
    NextRunPublic,
    ScheduleActivationPublic,
    ScheduleCreate,
    SchedulePublic,
    ScheduleUpdate,
)

router = APIRouter(prefix="/api/schedules", tags=["schedules"], responses=API_ERRORS)


@router.get("", response_model=list[SchedulePublic])
@router.get("/", response_model=list[SchedulePublic], include_in_schema=False)
def list_schedules(schedules: ScheduleServiceDep, skip: int = Query(0, ge=0, le=MAX_ID),
                   limit: int = Query(100, ge=1, le=1000), active: bool | None = None,
                   stream_config_id: int | None = Query(None, ge=1, le=MAX_ID)
                   ) -> list[dict[str, Any]]:
    """``[RecordingScheduleResponse]`` by id; ``active=true|false`` and
    ``stream_config_id`` filter."""
    return schedules.list(skip=skip, limit=limit, active=active, station_id=stream_config_id)


@router.post("", status_code=201, response_model=SchedulePublic)
@router.post("/", status_code=201, response_model=SchedulePublic, include_in_schema=False)
def create_schedule(body: ScheduleCreate, schedules: ScheduleServiceDep) -> dict[str, Any]:
    """201 with the schedule (and its ``next_run_time``); 400 bad cron; 404 station."""
    return schedules.create(body)


@router.post("/validate-cron", response_model=CronCheckPublic, responses={
    400: {"model": CronInvalidPublic,
          "description": "Invalid expression; an `after` outside 1970-9000 is a 400 in "
                         "the usual error body"}})
def validate_cron(body: CronCheck, schedules: ScheduleServiceDep,
                  after: datetime | None = None) -> dict[str, Any]:
    """``{valid: true, cron_expression, next_run_time, next_runs: [5 ISO],
    description, timezone}``; invalid -> 400 ``{valid: false, error: "Invalid
    cron expression format", message: <why>}``; an ``after`` outside 1970-9000 is
    a 400 in the usual error shape."""
    return schedules.validate_cron(body.cron_expression, after=after)


@router.get("/{schedule_id:int}", response_model=SchedulePublic)
def get_schedule(schedule_id: int, schedules: ScheduleServiceDep) -> dict[str, Any]:
    """The schedule; 404."""
    return schedules.get(schedule_id)


@router.put("/{schedule_id:int}", response_model=SchedulePublic)
def update_schedule(schedule_id: int, body: ScheduleUpdate, schedules: ScheduleServiceDep
                    ) -> dict[str, Any]:
    """The updated schedule (job re-synced); 400/404."""
    return schedules.update(schedule_id, body)


@router.delete("/{schedule_id:int}", response_model=MessagePublic)
def delete_schedule(schedule_id: int, schedules: ScheduleServiceDep) -> dict[str, Any]:
    """``{"message": "Recording schedule N deleted successfully"}``; 404."""
    return schedules.delete(schedule_id)


@router.post("/{schedule_id:int}/activate", response_model=ScheduleActivationPublic)
def activate(schedule_id: int, schedules: ScheduleServiceDep) -> dict[str, Any]:
    """``{schedule_id, is_active: true, message: "Schedule activated successfully",
    next_run_time}``; 404."""
    return schedules.set_active(schedule_id, True)


@router.post("/{schedule_id:int}/deactivate", response_model=ScheduleActivationPublic)
def deactivate(schedule_id: int, schedules: ScheduleServiceDep) -> dict[str, Any]:
    """``{schedule_id, is_active: false, message: "Schedule deactivated
    successfully", next_run_time: null}``; 404."""
    return schedules.set_active(schedule_id, False)


@router.get("/{schedule_id:int}/next-run", response_model=NextRunPublic)
def next_run(schedule_id: int, schedules: ScheduleServiceDep) -> dict[str, Any]:
    """``{schedule_id, next_run_time ISO|null, is_active, cron_expression}``; 404."""
    return schedules.next_run(schedule_id)
