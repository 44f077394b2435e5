"""Cron schedules of the recorder (APScheduler 3, SQLAlchemy job store).

Each active :class:`~taperoom.recorder.models.RecordingSchedule` is one
APScheduler job with a :class:`~apscheduler.triggers.cron.CronTrigger` in the
configured zone (``TZ``), stored in the ``apscheduler_jobs`` table of the
recorder database so that jobs survive restarts. Cron fields are matched on
local wall-clock time, so a ``0 21 * * *`` show stays at 21:00 local time on
both sides of a daylight-saving change (APScheduler resolves the zone's offset
for each fire time). In the hour repeated when clocks fall back, a show fires
once; a local time skipped when clocks spring forward fires an hour later that day.

Jobs call :func:`fire_schedule` with the schedule id; the function is a module
reference (the job store pickles references, not objects), and it hands the
work to the running :class:`RecorderScheduler`'s callback (the composition root
makes it send ``schedule:fired`` on the bus, where the recording service listens).

References: APScheduler 3 user guide, "Configuring the scheduler" and
``apscheduler.triggers.cron``; cron format: POSIX ``crontab(5)``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any, Protocol

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.engine import Engine

from taperoom.errors import InvalidInput

log = logging.getLogger(__name__)

#: Table of APScheduler's job store in the recorder database.
JOB_TABLE = "apscheduler_jobs"

_current: RecorderScheduler | None = None
_current_lock = threading.Lock()


class InvalidCronExpression(InvalidInput):
    """A cron expression checked on its own (``POST /api/schedules/validate-cron``)
    is invalid (HTTP 400).

    Its answer is the contract's ``{"valid": false, "error": "Invalid cron
    expression format", "message": <why>}`` (see
    :meth:`answer`), not the usual error body.
    """

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """``{"valid": false, "error": "Invalid cron expression format", "message": why}``."""
        return {"valid": False, "error": "Invalid cron expression format",
                "message": self.message}


class CronJobs(Protocol):
    """The scheduler's jobs as the services see them (:class:`RecorderScheduler`)."""

    @property
    def running(self) -> bool:
        """True while the scheduler thread runs."""

    def sync(self, schedule_id: int, expression: str, active: bool) -> datetime | None:
        """Create, replace or remove the job of a schedule; its next fire time."""

    def remove(self, schedule_id: int) -> None:
        """Remove the job of a schedule, if any."""

    def next_run(self, schedule_id: int) -> datetime | None:
        """Next fire time of a schedule's job, None when it has none."""

    def job_ids(self) -> set[int]:
        """Schedule ids that have a job."""

    def reconcile(self, schedules: list[tuple[int, str, bool]]) -> dict[int, datetime | None]:
        """Make the jobs match ``(id, cron_expression, is_active)`` rows; next fire times."""


def parse_cron(expression: str, zone: tzinfo) -> CronTrigger:
    """Parse a standard 5-field cron expression into a trigger in `zone`.

    Parameters
    ----------
    expression : str
        ``minute hour day-of-month month day-of-week`` (``crontab(5)``; names such
        as ``mon-fri`` and ``jan`` and steps such as ``*/15`` are accepted).
    zone : tzinfo
        Zone whose wall-clock time the fields match.

    Raises
    ------
    InvalidInput
        When the expression does not have 5 fields or a field is out of range.
    """
    fields = expression.split()
    if len(fields) != 5:
        raise InvalidInput(f"Invalid cron expression format: expected 5 fields "
                           f"(minute hour day month weekday), got {len(fields)}")
    try:
        fields[4] = crontab_day_of_week(fields[4])
        return CronTrigger.from_crontab(" ".join(fields), timezone=zone)
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"Invalid cron expression format: {exc}") from exc


_DOW = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _day(token: str) -> int:
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token)
    if token in _DOW:
        return _DOW.index(token)
    raise ValueError(f"bad day of week {token!r}")


def crontab_day_of_week(field: str) -> str:
    """Rewrite a crontab(5) day-of-week field as day names.

    crontab numbers days 0-7 with 0 and 7 both Sunday; APScheduler 3 numbers
    them 0-6 from Monday. Names mean the same to both, so numbers, ranges,
    lists and steps are expanded into names (``1-5`` -> ``mon,tue,wed,thu,fri``,
    ``0`` and ``7`` -> ``sun``, ``*/2`` -> ``sun,tue,thu,sat``).

    Raises
    ------
    ValueError
        A token that is not a day, a backwards range or a step below 1.
    """
    field = field.lower()
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        rng, slash, step_text = part.partition("/")
        step = int(step_text) if slash and step_text.isdigit() else (1 if not slash else 0)
        if step < 1:
            raise ValueError(f"bad step in {part!r}")
        if rng == "*":
            lo, hi = 0, 6
        else:
            a, dash, b = rng.partition("-")
            lo = _day(a)
            hi = _day(b) if dash else (7 if slash else lo)
            if lo > hi:
                raise ValueError(f"range {rng!r} runs backwards")
        days.update(d % 7 for d in range(lo, hi + 1, step))
    return ",".join(_DOW[d] for d in sorted(days))


def next_runs(expression: str, zone: tzinfo, count: int = 5,
              after: datetime | None = None) -> list[datetime]:
    """The next `count` fire times (aware, in `zone`) of a cron expression.

    Parameters
    ----------
    expression : str
        5-field cron expression.
    zone : tzinfo
        Zone of the schedule.
    count : int
        How many fire times.
    after : datetime, optional
        Aware start instant (default: now).
    """
    trigger = parse_cron(expression, zone)
    now = (after or datetime.now(UTC)).astimezone(zone)
    out: list[datetime] = []
    prev: datetime | None = None
    while len(out) < count:
        nxt = trigger.get_next_fire_time(prev, now)
        if nxt is None:
            break
        if not out or not repeated_wall_clock(out[-1], nxt, zone):
            out.append(nxt)
        prev = nxt
        now = nxt
    return out


def repeated_wall_clock(previous: datetime, current: datetime, zone: tzinfo) -> bool:
    """True when `current` shows the same local date and minute as `previous`.

    When clocks fall back, a local time such as 02:30 happens twice and the
    trigger fires at both instants; like Vixie cron, the recorder runs such a
    show once (the second instant is skipped).
    """
    a, b = previous.astimezone(UTC).astimezone(zone), current.astimezone(UTC).astimezone(zone)
    return (a.replace(tzinfo=None, second=0, microsecond=0)
            == b.replace(tzinfo=None, second=0, microsecond=0))


def describe(expression: str) -> str:
    """A human-readable English description of a cron expression
    (``"At 09:00 PM, Monday through Friday"``), from cron-descriptor."""
    from cron_descriptor import Options, get_description

    options = Options()
    options.use_24hour_time_format = True
    options.verbose = False
    try:
        return str(get_description(" ".join(expression.split()), options))
    except Exception:  # cron-descriptor raises its own, undocumented classes
        return expression


def fire_schedule(schedule_id: int) -> None:
    """Job entry point: ask the running scheduler's callback to record `schedule_id`."""
    sched = _current
    if sched is None:
        log.warning("schedule %s fired with no recorder running", schedule_id)
        return
    try:
        sched.on_fire(schedule_id)
    except Exception:  # a failing job must never kill the scheduler thread
        log.exception("schedule %s failed to start", schedule_id)


def _job_id(schedule_id: int) -> str:
    return f"schedule-{schedule_id}"


class RecorderScheduler:
    """The recorder's APScheduler, one per process.

    Parameters
    ----------
    engine : Engine
        Engine of the recorder database (holds the job table).
    zone : tzinfo
        Zone of every cron trigger (``TZ``).
    on_fire : callable(schedule_id)
        Called in a scheduler worker thread when a schedule fires; it should
        start the recording and return quickly (the composition root passes one
        that sends ``schedule:fired`` on the bus).
    misfire_grace_seconds : int
        A fire time missed by less than this (server busy or restarting) still
        runs; later ones are skipped. Missed runs are coalesced into one.
    """

    def __init__(self, engine: Engine, zone: tzinfo, on_fire: Callable[[int], None], *,
                 misfire_grace_seconds: int = 300) -> None:
        self.zone = zone
        self.on_fire = on_fire
        self._sched = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOB_TABLE)},
            executors={"default": ThreadPoolExecutor(4)},
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": misfire_grace_seconds},
            timezone=zone,
        )

    def start(self) -> None:
        """Start the scheduler thread and make this the process's running scheduler."""
        global _current
        with _current_lock:
            _current = self
        self._sched.start()

    def shutdown(self) -> None:
        """Stop the scheduler thread (jobs stay in the job store)."""
        global _current
        if self._sched.running:
            self._sched.shutdown(wait=False)
        with _current_lock:
            if _current is self:
                _current = None

    @property
    def running(self) -> bool:
        """True while the scheduler thread runs."""
        return bool(self._sched.running)

    def sync(self, schedule_id: int, expression: str, active: bool) -> datetime | None:
        """Create, replace or remove the job of one schedule.

        Returns
        -------
        datetime or None
            The next fire time (aware, in the zone), None when inactive.
        """
        if not active:
            self.remove(schedule_id)
            return None
        trigger = parse_cron(expression, self.zone)
        job = self._sched.add_job(fire_schedule, trigger=trigger, args=[schedule_id],
                                  id=_job_id(schedule_id), name=f"schedule {schedule_id}",
                                  replace_existing=True)
        nxt: datetime | None = getattr(job, "next_run_time", None)
        if nxt is None:  # the scheduler is not started yet: compute it from the trigger
            nxt = trigger.get_next_fire_time(None, datetime.now(self.zone))
        return nxt

    def remove(self, schedule_id: int) -> None:
        """Remove the job of a schedule, if any."""
        with contextlib.suppress(JobLookupError):
            self._sched.remove_job(_job_id(schedule_id))

    def run_now(self, schedule_id: int) -> None:
        """Fire the job of a schedule at once (then it goes on with its cron times).

        Raises
        ------
        NotFound
            The schedule has no job (it is inactive or unknown).
        """
        from taperoom.errors import NotFound

        try:
            self._sched.modify_job(_job_id(schedule_id), next_run_time=datetime.now(self.zone))
        except JobLookupError:
            raise NotFound(f"schedule {schedule_id} has no active job") from None
        self._sched.wakeup()

    def next_run(self, schedule_id: int) -> datetime | None:
        """Next fire time of a schedule's job (aware), None when it has none."""
        job = self._sched.get_job(_job_id(schedule_id))
        return None if job is None else getattr(job, "next_run_time", None)

    def job_ids(self) -> set[int]:
        """Schedule ids that have a job in the store."""
        out = set()
        for job in self._sched.get_jobs():
            if job.id.startswith("schedule-") and job.id[9:].isdigit():
                out.add(int(job.id[9:]))
        return out

    def reconcile(self, schedules: list[tuple[int, str, bool]]) -> dict[int, datetime | None]:
        """Make the job store match the schedules table.

        Parameters
        ----------
        schedules : list of (id, cron_expression, is_active)

        Returns
        -------
        dict
            Next fire time of each schedule.
        """
        wanted = {sid for sid, _, active in schedules if active}
        for stale in self.job_ids() - wanted:
            self.remove(stale)
        out: dict[int, datetime | None] = {}
        for sid, expr, active in schedules:
            try:
                out[sid] = self.sync(sid, expr, active)
            except InvalidInput as exc:
                log.error("schedule %s has a bad cron expression: %s", sid, exc)
                out[sid] = None
        return out
