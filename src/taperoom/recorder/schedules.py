"""Schedules: create, read, update, delete, activate, and cron checks.

Every write runs in one :func:`taperoom.db.transaction`, then brings the
scheduler's job in line (:meth:`~taperoom.recorder.scheduler.CronJobs.sync`) and
stores the job's next fire time on the row. The scheduler keeps its jobs in the
same database, so it is called *after* the row's transaction has committed (a
second writer inside an open SQLite write transaction would wait for it). Each
change is announced on the bus (``schedule:changed`` with ``{action,
schedule_id, schedule}``) and written to the structured log (operation type
``scheduling``).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.errors import InvalidInput
from taperoom.events import Event, EventBus
from taperoom.recorder import repository as repo
from taperoom.recorder.logs import log_operation
from taperoom.recorder.repository import check_id
from taperoom.recorder.scheduler import (
    CronJobs,
    InvalidCronExpression,
    describe,
    next_runs,
    parse_cron,
)
from taperoom.recorder.schemas import ScheduleCreate, ScheduleUpdate, iso, schedule_dict
from taperoom.recorder.settings import RecorderSettings

#: What the API calls a schedule in its messages.
WHAT = "recording schedule"
#: What the API calls a station in its messages (the contract's word).
STATION = "stream configuration"


def _utc_naive(when: datetime | None) -> datetime | None:
    return None if when is None else when.astimezone(UTC).replace(tzinfo=None)


def check_after(after: datetime | None, zone: tzinfo) -> datetime | None:
    """The start instant of a next-runs listing, aware (naive = in `zone`).

    Raises
    ------
    InvalidInput
        Outside the years 1970-9000 (fire times near the ends of ``datetime``'s
        range overflow).
    """
    if after is None:
        return None
    if after.tzinfo is None:
        after = after.replace(tzinfo=zone)
    if not 1970 <= after.year <= 9000:
        raise InvalidInput("after must lie between the years 1970 and 9000")
    return after


class ScheduleService:
    """Cron schedules of the stations and their scheduler jobs.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the recorder database.
    bus : EventBus
        Receives ``schedule:changed``.
    settings : RecorderSettings
        ``TZ`` (zone of every cron expression and time) and ``DEFAULT_MAX_RETRIES``.
    jobs : CronJobs
        The scheduler whose jobs follow the schedules.
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus, settings: RecorderSettings,
                 jobs: CronJobs) -> None:
        self.db = db
        self.bus = bus
        self.settings = settings
        self.jobs = jobs

    # -- reads ----------------------------------------------------------------------

    def list(self, *, skip: int = 0, limit: int = 100, active: bool | None = None,
             station_id: int | None = None) -> list[dict[str, Any]]:
        """Schedules (``RecordingScheduleResponse`` dicts) ordered by id, with the filters."""
        with self.db() as db:
            rows = repo.list_schedules(db, skip=skip, limit=limit, active=active,
                                       station_id=station_id)
            return [schedule_dict(r, self.settings.zone) for r in rows]

    def get(self, schedule_id: int) -> dict[str, Any]:
        """One schedule; NotFound when unknown."""
        check_id(schedule_id, WHAT)
        with self.db() as db:
            return schedule_dict(repo.get_schedule(db, schedule_id), self.settings.zone)

    def live_next_run(self, schedule_id: int) -> datetime | None:
        """The next fire time of the schedule's job while the scheduler runs, else None."""
        return self.jobs.next_run(schedule_id) if self.jobs.running else None

    def next_run(self, schedule_id: int) -> dict[str, Any]:
        """``{schedule_id, next_run_time ISO|null, is_active, cron_expression}``.

        The time is the scheduler job's; while the scheduler is not running (CLI) it
        is computed from the cron expression. Inactive schedules have none.
        """
        sched = self.get(schedule_id)
        zone = self.settings.zone
        when: datetime | None = None
        if sched["is_active"]:
            when = self.jobs.next_run(schedule_id)
            if when is None:
                runs = next_runs(sched["cron_expression"], zone, 1)
                when = runs[0] if runs else None
        return {"schedule_id": schedule_id, "next_run_time": iso(when, zone),
                "is_active": sched["is_active"], "cron_expression": sched["cron_expression"]}

    def validate_cron(self, expression: str, *, after: datetime | None = None,
                      count: int = 5) -> dict[str, Any]:
        """Check a cron expression and list its next fire times in ``TZ``.

        Parameters
        ----------
        expression : str
            5-field cron expression.
        after : datetime, optional
            Start instant (naive = in ``TZ``); default now.
        count : int
            How many fire times (contract: 5).

        Returns
        -------
        dict
            ``{valid: true, cron_expression, next_run_time, next_runs: [ISO...],
            description, timezone}``.

        Raises
        ------
        InvalidInput
            `after` out of range (see :func:`check_after`).
        InvalidCronExpression
            Invalid expression (its answer is ``{valid: false, error: "Invalid
            cron expression format", message}``).
        """
        zone = self.settings.zone
        expression = " ".join(expression.split())
        after = check_after(after, zone)
        try:
            runs = next_runs(expression, zone, count, after)
        except InvalidInput as exc:
            raise InvalidCronExpression(exc.message) from None
        return {"valid": True, "cron_expression": expression,
                "next_run_time": iso(runs[0], zone) if runs else None,
                "next_runs": [iso(r, zone) for r in runs], "description": describe(expression),
                "timezone": self.settings.zone_name}

    # -- writes ---------------------------------------------------------------------

    def sync(self, schedule_id: int, expression: str, active: bool) -> dict[str, Any]:
        """Create/replace/remove the job of a committed schedule, store its next fire
        time (naive UTC) on the row, and return the schedule's dict."""
        nxt = self.jobs.sync(schedule_id, expression, active)
        with transaction(self.db) as db:
            repo.set_next_run(db, schedule_id, _utc_naive(nxt))
            db.flush()
            row = repo.get_schedule(db, schedule_id)
            db.refresh(row)
            return schedule_dict(row, self.settings.zone)

    def remove_job(self, schedule_id: int) -> None:
        """Remove the scheduler job of a schedule deleted from the table, if any."""
        self.jobs.remove(schedule_id)

    def create(self, body: ScheduleCreate) -> dict[str, Any]:
        """Insert a schedule and its scheduler job (when active); ``max_retries``
        defaults to ``DEFAULT_MAX_RETRIES``.

        Raises
        ------
        InvalidInput
            Bad cron expression.
        NotFound
            Unknown station.
        """
        check_id(body.station_id, STATION)
        expression = " ".join(body.cron_expression.split())
        parse_cron(expression, self.settings.zone)
        values = body.model_dump()
        values["cron_expression"] = expression
        if "max_retries" not in body.model_fields_set:
            values["max_retries"] = self.settings.default_max_retries
        with transaction(self.db) as db:
            sid = repo.create_schedule(db, values).id
        try:
            data = self.sync(sid, expression, body.is_active)
        except BaseException:
            with transaction(self.db) as db:
                repo.delete_schedule(db, sid)
            self.jobs.remove(sid)
            raise
        log_operation("scheduling", f"recording schedule {sid} created: {expression} "
                      f"for {body.duration_minutes} min", schedule_id=sid,
                      station_id=body.station_id)
        self.bus.send(Event.SCHEDULE_CHANGED, {"action": "created", "schedule_id": sid,
                                               "schedule": data})
        return data

    def update(self, schedule_id: int, body: ScheduleUpdate) -> dict[str, Any]:
        """Change the fields present in `body` and re-sync the job.

        Raises
        ------
        InvalidInput
            Bad cron expression.
        NotFound
            Unknown schedule or station.
        """
        check_id(schedule_id, WHAT)
        values = {k: v for k, v in body.model_dump(exclude_unset=True).items()
                  if v is not None}
        if "cron_expression" in values:
            values["cron_expression"] = " ".join(values["cron_expression"].split())
            parse_cron(values["cron_expression"], self.settings.zone)
        if "station_id" in values:
            check_id(values["station_id"], STATION)
        with transaction(self.db) as db:
            row = repo.update_schedule(db, schedule_id, values)
            expression, active = row.cron_expression, bool(row.is_active)
        data = self.sync(schedule_id, expression, active)
        log_operation("scheduling", f"recording schedule {schedule_id} updated",
                      schedule_id=schedule_id, changed=sorted(values))
        self.bus.send(Event.SCHEDULE_CHANGED, {"action": "updated",
                                               "schedule_id": schedule_id, "schedule": data})
        return data

    def delete(self, schedule_id: int) -> dict[str, Any]:
        """Delete a schedule and its job: ``{"message": "Recording schedule N deleted
        successfully"}``; NotFound when unknown."""
        check_id(schedule_id, WHAT)
        with transaction(self.db) as db:
            repo.delete_schedule(db, schedule_id)
        self.jobs.remove(schedule_id)
        log_operation("scheduling", f"recording schedule {schedule_id} deleted",
                      schedule_id=schedule_id)
        self.bus.send(Event.SCHEDULE_CHANGED, {"action": "deleted",
                                               "schedule_id": schedule_id, "schedule": None})
        return {"message": f"Recording schedule {schedule_id} deleted successfully"}

    def set_active(self, schedule_id: int, active: bool) -> dict[str, Any]:
        """Activate or deactivate a schedule (adds or removes its job).

        Returns
        -------
        dict
            ``{schedule_id, is_active, message: "Schedule activated|deactivated
            successfully", next_run_time}``.
        """
        data = self.update(schedule_id, ScheduleUpdate(is_active=active))
        return {"schedule_id": schedule_id, "is_active": active,
                "message": f"Schedule {'activated' if active else 'deactivated'} successfully",
                "next_run_time": data["next_run_time"]}
