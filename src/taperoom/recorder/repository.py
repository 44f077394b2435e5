"""All SQL of the recorder database: stations, schedules and sessions.

Functions take an open :class:`~sqlalchemy.orm.Session`; the caller owns the
transaction (:func:`taperoom.db.transaction`). Lookups of unknown ids raise
:class:`~taperoom.errors.NotFound`; a duplicate station name raises
:class:`~taperoom.errors.Conflict`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from taperoom.errors import Conflict, NotFound
from taperoom.recorder.models import (
    ACTIVE_STATUSES,
    RecordingSchedule,
    RecordingSession,
    SessionStatus,
    Station,
    utcnow,
)

#: Largest id SQLite (and PostgreSQL ``BIGINT``) can hold; bigger ids do not exist.
MAX_ID = 2**63 - 1


def check_id(value: int, what: str) -> int:
    """`value` if it can be an id of a row; NotFound (`what` names the kind) otherwise.

    Raises
    ------
    NotFound
        `value` is below 1 or above :data:`MAX_ID` (no such row can exist, and the
        database driver would overflow on it).
    """
    if value < 1 or value > MAX_ID:
        raise NotFound(f"{what} {value} not found")
    return value


# -- stations ---------------------------------------------------------------------------


def get_station(db: Session, station_id: int) -> Station:
    """The station `station_id`; NotFound when there is none."""
    row = db.get(Station, station_id)
    if row is None:
        raise NotFound(f"stream configuration {station_id} not found")
    return row


def station_destination(db: Session, station_id: int | None) -> str:
    """The upload destination of station `station_id`; "" for none, no station id or a
    station that is gone."""
    if station_id is None:
        return ""
    row = db.get(Station, station_id)
    return (row.scp_destination or "") if row is not None else ""


def find_station(db: Session, ref: str) -> Station:
    """A station by id (digits) or by name (case-insensitive); NotFound otherwise."""
    if ref.isdigit():
        return get_station(db, int(ref))
    row = db.scalars(select(Station)
                     .where(func.lower(Station.name) == ref.lower())).first()
    if row is None:
        raise NotFound(f"no station named {ref!r}")
    return row


def list_stations(db: Session, *, skip: int = 0, limit: int = 100,
                  search: str | None = None) -> Sequence[Station]:
    """Stations ordered by name, optionally filtered by a substring of name, artist or album."""
    q = select(Station)
    if search:
        like = f"%{search.lower()}%"
        q = q.where(or_(func.lower(Station.name).like(like),
                        func.lower(Station.artist).like(like),
                        func.lower(Station.album).like(like)))
    return db.scalars(q.order_by(func.lower(Station.name))
                      .offset(skip).limit(limit)).all()


def count_stations(db: Session) -> int:
    """Number of stations."""
    return int(db.scalar(select(func.count()).select_from(Station)) or 0)


def _flush_unique(db: Session, name: str) -> None:
    try:
        db.flush()
    except IntegrityError as exc:
        raise Conflict(f"a stream configuration named {name!r} already exists") from exc


def create_station(db: Session, values: dict[str, Any]) -> Station:
    """Insert a station; Conflict when its name is taken (case-insensitive)."""
    _check_name_free(db, values["name"], None)
    row = Station(**values)
    db.add(row)
    _flush_unique(db, values["name"])
    return row


def _check_name_free(db: Session, name: str, own_id: int | None) -> None:
    q = select(Station.id).where(
        func.lower(Station.name) == name.lower())
    if own_id is not None:
        q = q.where(Station.id != own_id)
    if db.scalar(q) is not None:
        raise Conflict(f"a stream configuration named {name!r} already exists")


def update_station(db: Session, station_id: int, values: dict[str, Any]) -> Station:
    """Change the given fields of a station; NotFound / Conflict as above."""
    row = get_station(db, station_id)
    if "name" in values:
        _check_name_free(db, values["name"], station_id)
    for key, value in values.items():
        setattr(row, key, value)
    row.updated_at = utcnow()
    _flush_unique(db, row.name)
    return row


def delete_station(db: Session, station_id: int) -> Station:
    """Delete a station and its schedules (sessions keep their history)."""
    row = get_station(db, station_id)
    for sched in db.scalars(select(RecordingSchedule)
                            .where(RecordingSchedule.station_id == station_id)):
        db.delete(sched)
    db.delete(row)
    db.flush()
    return row


# -- schedules --------------------------------------------------------------------------


def get_schedule(db: Session, schedule_id: int) -> RecordingSchedule:
    """The schedule `schedule_id`; NotFound when there is none."""
    row = db.get(RecordingSchedule, schedule_id)
    if row is None:
        raise NotFound(f"recording schedule {schedule_id} not found")
    return row


def list_schedules(db: Session, *, skip: int = 0, limit: int = 100,
                   active: bool | None = None, station_id: int | None = None
                   ) -> Sequence[RecordingSchedule]:
    """Schedules ordered by id, optionally only (in)active ones or one station's."""
    q = select(RecordingSchedule)
    if active is not None:
        q = q.where(RecordingSchedule.is_active.is_(active))
    if station_id is not None:
        q = q.where(RecordingSchedule.station_id == station_id)
    return db.scalars(q.order_by(RecordingSchedule.id).offset(skip).limit(limit)).all()


def all_schedules(db: Session) -> Sequence[RecordingSchedule]:
    """Every schedule (for reconciling the scheduler's jobs)."""
    return db.scalars(select(RecordingSchedule).order_by(RecordingSchedule.id)).all()


def create_schedule(db: Session, values: dict[str, Any]) -> RecordingSchedule:
    """Insert a schedule of an existing station (NotFound when the station is unknown)."""
    get_station(db, values["station_id"])
    row = RecordingSchedule(**values)
    db.add(row)
    db.flush()
    return row


def update_schedule(db: Session, schedule_id: int, values: dict[str, Any]) -> RecordingSchedule:
    """Change the given fields of a schedule."""
    row = get_schedule(db, schedule_id)
    if "station_id" in values:
        get_station(db, values["station_id"])
    for key, value in values.items():
        setattr(row, key, value)
    row.updated_at = utcnow()
    db.flush()
    return row


def delete_schedule(db: Session, schedule_id: int) -> None:
    """Delete a schedule (its sessions keep their history)."""
    db.delete(get_schedule(db, schedule_id))
    db.flush()


def set_next_run(db: Session, schedule_id: int, when: datetime | None) -> None:
    """Store the next fire time (naive UTC) of a schedule, if it still exists."""
    db.execute(update(RecordingSchedule).where(RecordingSchedule.id == schedule_id)
               .values(next_run_time=when))


# -- sessions ---------------------------------------------------------------------------


def get_session(db: Session, session_id: int) -> RecordingSession:
    """The session `session_id`; NotFound when there is none."""
    row = db.get(RecordingSession, session_id)
    if row is None:
        raise NotFound(f"recording session {session_id} not found")
    return row


def create_session(db: Session, values: dict[str, Any]) -> RecordingSession:
    """Insert a session."""
    row = RecordingSession(**values)
    db.add(row)
    db.flush()
    return row


def update_session(db: Session, session_id: int, values: dict[str, Any]) -> RecordingSession:
    """Change the given fields of a session."""
    row = get_session(db, session_id)
    for key, value in values.items():
        setattr(row, key, value)
    row.updated_at = utcnow()
    db.flush()
    return row


def list_sessions(db: Session, *, skip: int = 0, limit: int = 50,
                  status: str | None = None, schedule_id: int | None = None,
                  station_id: int | None = None, since: datetime | None = None
                  ) -> Sequence[RecordingSession]:
    """Sessions, newest first, with the contract's filters."""
    q = select(RecordingSession)
    if status:
        q = q.where(RecordingSession.status == status)
    if schedule_id is not None:
        q = q.where(RecordingSession.schedule_id == schedule_id)
    if station_id is not None:
        q = q.where(RecordingSession.station_id == station_id)
    if since is not None:
        q = q.where(RecordingSession.start_time >= since)
    return db.scalars(q.order_by(RecordingSession.start_time.desc(),
                                 RecordingSession.id.desc()).offset(skip).limit(limit)).all()


def active_sessions(db: Session) -> Sequence[RecordingSession]:
    """Sessions that are scheduled, recording or processing, oldest first."""
    return db.scalars(select(RecordingSession)
                      .where(RecordingSession.status.in_([s.value for s in ACTIVE_STATUSES]))
                      .order_by(RecordingSession.start_time)).all()


def session_statistics(db: Session) -> dict[str, int]:
    """Counts of sessions by status: total, completed, failed and active."""
    rows = db.execute(select(RecordingSession.status, func.count())
                      .group_by(RecordingSession.status)).all()
    counts = {status: int(n) for status, n in rows}
    active = sum(counts.get(s.value, 0) for s in ACTIVE_STATUSES)
    return {"total": sum(counts.values()), "completed": counts.get("completed", 0),
            "failed": counts.get("failed", 0), "active": active}


def fail_interrupted_sessions(db: Session, message: str) -> list[int]:
    """Mark sessions left recording/processing by a previous process as failed.

    Returns
    -------
    list of int
        Ids of the sessions changed.
    """
    ids = list(db.scalars(select(RecordingSession.id).where(
        RecordingSession.status.in_([s.value for s in ACTIVE_STATUSES]))))
    if ids:
        db.execute(update(RecordingSession).where(RecordingSession.id.in_(ids))
                   .values(status=SessionStatus.FAILED.value, error_message=message,
                           end_time=utcnow(), updated_at=utcnow()))
    return ids


def local_recordings(db: Session) -> Sequence[RecordingSession]:
    """Finished sessions whose file is still on the local disk, oldest first."""
    return db.scalars(select(RecordingSession)
                      .where(RecordingSession.output_file_path.is_not(None),
                             RecordingSession.local_deleted.is_(False),
                             RecordingSession.status.in_([SessionStatus.COMPLETED.value,
                                                          SessionStatus.FAILED.value]))
                      .order_by(RecordingSession.start_time)).all()


def pending_transfers(db: Session) -> Sequence[RecordingSession]:
    """Completed sessions whose upload is pending or in progress."""
    return db.scalars(select(RecordingSession).where(
        RecordingSession.status == SessionStatus.COMPLETED.value,
        RecordingSession.transfer_status.in_(["pending", "in_progress"]))).all()


def recent_session_count(db: Session, days: float) -> int:
    """Sessions started within the last `days` days."""
    since = utcnow() - timedelta(days=days)
    return int(db.scalar(select(func.count()).select_from(RecordingSession)
                         .where(RecordingSession.start_time >= since)) or 0)


def mark_local_deleted(db: Session, session_ids: Iterable[int]) -> None:
    """Record that the local files of these sessions are gone."""
    ids = list(session_ids)
    if ids:
        db.execute(update(RecordingSession).where(RecordingSession.id.in_(ids))
                   .values(local_deleted=True, updated_at=utcnow()))


# -- upload leases (see taperoom.recorder.upload_leases) ---------------------------------


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def claim_transfer(db: Session, session_id: int, attempt: int) -> bool:
    """Take the upload of a session for attempt `attempt`, in one UPDATE.

    The upload is taken when it is ``pending`` from an attempt up to `attempt`,
    or ``in_progress`` with an earlier attempt (a retry overtaking the report of
    the attempt before it). It becomes ``in_progress`` with
    ``transfer_attempts = attempt`` and a fresh ``updated_at`` (the heartbeat).

    Returns
    -------
    bool
        False when the upload is not this attempt's to run: already taken by a
        task of the same attempt, done, failed or skipped.
    """
    s = RecordingSession
    return _rowcount(db.execute(
        update(s).where(s.id == session_id, or_(
            (s.transfer_status == "pending") & (s.transfer_attempts <= attempt),
            (s.transfer_status == "in_progress") & (s.transfer_attempts < attempt)))
        .values(transfer_status="in_progress", transfer_attempts=attempt,
                updated_at=utcnow()))) == 1


def renew_transfer(db: Session, session_id: int, attempt: int) -> bool:
    """Heartbeat of a running upload: True while attempt `attempt` still holds it."""
    s = RecordingSession
    return _rowcount(db.execute(
        update(s).where(s.id == session_id, s.transfer_status == "in_progress",
                        s.transfer_attempts == attempt)
        .values(updated_at=utcnow()))) == 1


def stale_transfers(db: Session, before: datetime) -> Sequence[RecordingSession]:
    """Uploads ``in_progress`` whose last heartbeat is older than `before` (UTC, naive)."""
    s = RecordingSession
    return db.scalars(select(s).where(s.transfer_status == "in_progress",
                                      s.updated_at < before).order_by(s.id)).all()


def take_stale_transfer(db: Session, session_id: int, attempt: int, before: datetime,
                        values: dict[str, Any]) -> bool:
    """Take a stale upload from its silent worker: set `values` (a new
    ``transfer_status`` and message) if attempt `attempt` still holds it and its
    last heartbeat is still older than `before`; True when this call took it."""
    s = RecordingSession
    return _rowcount(db.execute(
        update(s).where(s.id == session_id, s.transfer_status == "in_progress",
                        s.transfer_attempts == attempt, s.updated_at < before)
        .values(**values, updated_at=utcnow()))) == 1
