"""SQL of the job layer: the ``library_jobs`` table (see :mod:`taperoom.library.jobqueue`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, select, update
from sqlalchemy.orm import Session

from taperoom.library.models import Job, utcnow

#: States of a job that is not over.
ACTIVE = ("queued", "running")


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def active_key(kind: str, subject: str) -> str:
    """The unique key of the active job of `kind` on `subject`."""
    return f"{kind}:{subject}"


def insert_job(session: Session, *, kind: str, subject: str, priority: int,
               params: dict[str, Any], state: str = "queued",
               owner: str | None = None) -> Job:
    """Add an active job (``queued``, or ``running`` for `owner`); flushed, so its id is set.

    Raises
    ------
    sqlalchemy.exc.IntegrityError
        `subject` already has an active job of `kind` (unique ``active_key``).
    """
    now = utcnow()
    job = Job(kind=kind, subject=subject, active_key=active_key(kind, subject), state=state,
              priority=priority, params=params, cancel_requested=False, owner=owner,
              created_at=now, started_at=now if state == "running" else None,
              heartbeat_at=now if state == "running" else None)
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, job_id: int) -> Job | None:
    """The job with this id, or None."""
    return session.get(Job, job_id)


def active_job(session: Session, kind: str, subject: str) -> Job | None:
    """The queued or running job of `kind` on `subject`, or None."""
    return session.scalars(select(Job).where(Job.active_key == active_key(kind, subject))
                           ).one_or_none()


def active_jobs(session: Session, kind: str | None = None) -> list[Job]:
    """Queued and running jobs (of `kind`): running first, then by priority
    (highest first) and age, the order the queue runs them in."""
    stmt = select(Job).where(Job.active_key.is_not(None))
    if kind is not None:
        stmt = stmt.where(Job.kind == kind)
    running_first = case((Job.state == "running", 0), else_=1)
    return list(session.scalars(stmt.order_by(running_first, Job.priority.desc(), Job.id)))


def last_finished(session: Session, kind: str, subject: str) -> Job | None:
    """The job of `kind` on `subject` that ended last, or None."""
    return session.scalars(
        select(Job).where(Job.kind == kind, Job.subject == subject,
                          Job.active_key.is_(None), Job.finished_at.is_not(None))
        .order_by(Job.finished_at.desc(), Job.id.desc()).limit(1)).one_or_none()


def claim(session: Session, job_id: int, owner: str) -> bool:
    """Mark a queued job ``running`` for `owner`; False when it is not queued any more
    (cancelled, or taken by another consumer)."""
    now = utcnow()
    return _rowcount(session.execute(
        update(Job).where(Job.id == job_id, Job.state == "queued",
                          Job.cancel_requested.is_(False))
        .values(state="running", owner=owner, started_at=now, heartbeat_at=now)
        .execution_options(synchronize_session=False))) == 1


def finish(session: Session, job_id: int, state: str, *, result: dict[str, Any] | None,
           error: str | None = None, progress: dict[str, Any] | None = None,
           only_if_queued: bool = False, owner: str | None = None) -> bool:
    """End a job: `state` (``done``, ``cancelled``, ``failed``), its result, no active key.

    Parameters
    ----------
    only_if_queued : bool
        End it only while it is still queued (a cancel racing a consumer).
    owner : str, optional
        End it only while `owner` runs it: a process taken for dead whose job
        another one runs now does not end that job.

    Returns
    -------
    bool
        Whether the row was changed.
    """
    stmt = update(Job).where(Job.id == job_id, Job.active_key.is_not(None))
    if only_if_queued:
        stmt = stmt.where(Job.state == "queued")
    if owner is not None:
        stmt = stmt.where(Job.state == "running", Job.owner == owner)
    values: dict[str, Any] = {"state": state, "result": result, "error": error,
                              "active_key": None, "finished_at": utcnow()}
    if progress is not None:
        values["progress"] = progress
    return _rowcount(session.execute(
        stmt.values(**values).execution_options(synchronize_session=False))) == 1


def request_cancel(session: Session, job_id: int) -> None:
    """Raise the cancel flag of a job (its process stops it at its next check)."""
    session.execute(update(Job).where(Job.id == job_id).values(cancel_requested=True)
                    .execution_options(synchronize_session=False))


def beat(session: Session, owner: str, job_ids: Iterable[int],
         progress: dict[int, dict[str, Any]]) -> set[int]:
    """Heartbeat of `owner`'s running jobs, with their new `progress`; returns the ids
    of those whose cancel flag is raised."""
    ids = list(job_ids)
    if not ids:
        return set()
    now = utcnow()
    session.execute(update(Job).where(Job.id.in_(ids), Job.owner == owner,
                                      Job.state == "running")
                    .values(heartbeat_at=now).execution_options(synchronize_session=False))
    for job_id, values in progress.items():
        session.execute(update(Job).where(Job.id == job_id, Job.state == "running")
                        .values(progress=values)
                        .execution_options(synchronize_session=False))
    return set(session.scalars(select(Job.id).where(Job.id.in_(ids),
                                                    Job.cancel_requested.is_(True))))


def not_owned(session: Session, owner: str, job_ids: Iterable[int]) -> set[int]:
    """The ids among `job_ids` that `owner` does not run any more: queued again after
    its heartbeat went silent (and perhaps run by another process now), or ended."""
    ids = set(job_ids)
    if not ids:
        return set()
    mine = set(session.scalars(select(Job.id).where(Job.id.in_(ids), Job.owner == owner,
                                                    Job.state == "running")))
    return ids - mine


def running_jobs(session: Session) -> list[Job]:
    """Every job marked running, by any process."""
    return list(session.scalars(select(Job).where(Job.state == "running").order_by(Job.id)))


def queued_jobs(session: Session, kind: str) -> list[Job]:
    """Queued jobs of `kind`, in queue order."""
    return list(session.scalars(select(Job).where(Job.kind == kind, Job.state == "queued")
                                .order_by(Job.priority.desc(), Job.id)))


def requeue(session: Session, job_id: int, owner: str | None = None, *,
            priority: int | None = None) -> bool:
    """Put a running job back in the queue (its process stopped or died, or it asked to
    run again); with `owner`, only while that process still owns it; with `priority`,
    at that priority from now on."""
    stmt = update(Job).where(Job.id == job_id, Job.state == "running")
    if owner is not None:
        stmt = stmt.where(Job.owner == owner)
    values: dict[str, Any] = {"state": "queued", "owner": None, "started_at": None,
                              "heartbeat_at": None, "progress": None}
    if priority is not None:
        values["priority"] = priority
    return _rowcount(session.execute(
        stmt.values(**values).execution_options(synchronize_session=False))) == 1


def set_priority(session: Session, job_id: int, priority: int) -> bool:
    """Raise a queued job's priority (a deck load of a track waiting in the queue);
    False when it is not queued or already that high."""
    return _rowcount(session.execute(
        update(Job).where(Job.id == job_id, Job.state == "queued", Job.priority < priority)
        .values(priority=priority).execution_options(synchronize_session=False))) == 1


def prune_finished(session: Session, before: datetime) -> int:
    """Delete jobs that ended before `before`; returns how many."""
    return _rowcount(session.execute(
        delete(Job).where(Job.active_key.is_(None), Job.finished_at < before)
        .execution_options(synchronize_session=False)))
