"""SQL of music analysis: the contract's ``analysis_jobs`` rows, results on the tracks
that share an audio hash, and the waveforms stored once per audio hash.

The queue itself is the job layer's (``library_jobs``, :mod:`.jobs`); an
``analysis_jobs`` row is what the contract's ``/api/analysis/jobs/:jobId``
answers, one row per request, the newest row answering for its audio hash.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from taperoom.library import models
from taperoom.library.models import AnalysisJob, Track, Waveform

#: ``analysis_jobs.status`` values of a job that has not ended.
ACTIVE_STATUSES = ("queued", "processing")
#: ``analysis_jobs.status`` values of a job that has ended.
FINISHED_STATUSES = ("completed", "failed", "cancelled")


# ----------------------------------------------------------------------------- tracks


def get_track(session: Session, track_id: str) -> Track | None:
    """The track `track_id`, or None."""
    return session.get(Track, track_id)


def tracks_with_hash(session: Session, file_hash: str) -> list[Track]:
    """Every track whose audio hash is `file_hash` (copies of one recording), oldest
    first."""
    return list(session.scalars(sa.select(Track).where(Track.file_hash == file_hash)
                                .order_by(Track.date_added, Track.file_path, Track.id)))


def track_hashes(session: Session, *, track_ids: Sequence[str] | None = None,
                 directory_id: str | None = None, unanalysed: bool = False,
                 present: bool = True) -> list[tuple[str, str | None]]:
    """``(track id, audio hash)`` of the chosen tracks, oldest first (tracks added
    together, as by one scan, in path order).

    Parameters
    ----------
    track_ids : sequence of str, optional
        Only these tracks (unknown ids are left out).
    directory_id : str, optional
        Only the tracks of this library folder.
    unanalysed : bool
        Only tracks lacking an analysis: ``date_analyzed IS NULL OR bpm IS NULL
        OR musical_key IS NULL`` (the contract's start-up selection).
    present : bool
        Leave out tracks marked missing.
    """
    stmt = (sa.select(Track.id, Track.file_hash)
            .order_by(Track.date_added, Track.file_path, Track.id))
    if track_ids is not None:
        stmt = stmt.where(Track.id.in_(list(track_ids)))
    if directory_id is not None:
        stmt = stmt.where(Track.library_directory_id == directory_id)
    if unanalysed:
        stmt = stmt.where(sa.or_(Track.date_analyzed.is_(None), Track.bpm.is_(None),
                                 Track.musical_key.is_(None)))
    if present:
        stmt = stmt.where(Track.is_missing.is_(False))
    return [(str(i), h) for i, h in session.execute(stmt)]


def apply_results(session: Session, file_hash: str, fields: dict[str, Any]
                  ) -> dict[str, dict[str, Any]]:
    """Write analysis results to every track of `file_hash`, except the fields each
    track's user set himself and those that go with them
    (:func:`~taperoom.library.models.locked_fields` of ``tracks.user_fields``).

    Returns
    -------
    dict
        Track id -> the fields written to it.
    """
    written: dict[str, dict[str, Any]] = {}
    for track in tracks_with_hash(session, file_hash):
        kept = models.locked_fields(track.user_fields)
        changes = {k: v for k, v in fields.items() if k not in kept}
        for name, value in changes.items():
            setattr(track, name, value)
        written[track.id] = changes
    return written


# -------------------------------------------------------------------------- waveforms


def replace_waveforms(session: Session, file_hash: str,
                      levels: Iterable[tuple[int, int, int, int, bytes]]) -> None:
    """Store the (non-stem) waveforms of an audio hash, replacing the old ones.

    Parameters
    ----------
    levels : iterable of (zoom_level, sample_rate, samples_per_pixel, num_pixels, data)
        One row per zoom level; `data` in the compact binary form
        (:func:`taperoom.analysis.waveform.encode_waveforms`).
    """
    session.execute(sa.delete(Waveform).where(Waveform.file_hash == file_hash,
                                              Waveform.is_stems.is_(False)))
    now = models.utcnow()
    for zoom, rate, spp, pixels, data in levels:
        session.add(Waveform(file_hash=file_hash, zoom_level=zoom, is_stems=False,
                             sample_rate=rate, samples_per_point=spp, num_points=pixels,
                             data=data, created_at=now, updated_at=now))


def waveforms_of(session: Session, file_hash: str, *, zoom: int | None = None
                 ) -> list[Waveform]:
    """Stored (non-stem) waveforms of `file_hash` by zoom level (one level with `zoom`)."""
    stmt = (sa.select(Waveform).where(Waveform.file_hash == file_hash,
                                      Waveform.is_stems.is_(False))
            .order_by(Waveform.zoom_level))
    if zoom is not None:
        stmt = stmt.where(Waveform.zoom_level == zoom)
    return list(session.scalars(stmt))


def waveform_levels(session: Session, file_hash: str) -> list[int]:
    """Zoom levels stored for `file_hash` (not stems)."""
    return [int(z) for z in session.scalars(
        sa.select(Waveform.zoom_level).where(Waveform.file_hash == file_hash,
                                             Waveform.is_stems.is_(False)))]


# ----------------------------------------------------------------------- job rows


def insert_job(session: Session, **values: Any) -> AnalysisJob:
    """Add an ``analysis_jobs`` row (flushed: its id is known)."""
    job = AnalysisJob(**values)
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, row_id: int) -> AnalysisJob | None:
    """The ``analysis_jobs`` row `row_id`, or None."""
    return session.get(AnalysisJob, row_id)


def latest_job(session: Session, job_id: str) -> AnalysisJob | None:
    """The newest row of the audio hash `job_id`, or None."""
    return session.scalars(sa.select(AnalysisJob).where(AnalysisJob.job_id == job_id)
                           .order_by(AnalysisJob.id.desc()).limit(1)).first()


def newest_jobs(session: Session, *, status: str | None = None, limit: int = 50,
                offset: int = 0) -> tuple[list[AnalysisJob], int]:
    """A page of the newest row of each job id (audio hash), newest first.

    Each job id answers with its newest row only, as ``latest_job`` does, so a
    failure that a later request retried no longer shows as failed. Rows come by
    descending row id: the order of the requests, the last one first.

    Parameters
    ----------
    status : str, optional
        Only the job ids whose newest row has this status (one of
        :data:`ACTIVE_STATUSES` or :data:`FINISHED_STATUSES`).
    limit : int
        Rows of the page at most.
    offset : int
        Rows skipped before the page.

    Returns
    -------
    (list of AnalysisJob, int)
        The page, and the number of rows of every page together.
    """
    newest = (sa.select(sa.func.max(AnalysisJob.id)).group_by(AnalysisJob.job_id)
              .scalar_subquery())
    where: list[sa.ColumnElement[bool]] = [AnalysisJob.id.in_(newest)]
    if status is not None:
        where.append(AnalysisJob.status == status)
    total = session.scalar(sa.select(sa.func.count()).select_from(AnalysisJob).where(*where))
    rows = session.scalars(sa.select(AnalysisJob).where(*where)
                           .order_by(AnalysisJob.id.desc()).limit(limit).offset(offset))
    return list(rows), int(total or 0)


def job_by_remote_id(session: Session, remote_job_id: str) -> AnalysisJob | None:
    """The newest row an external server gave the job id `remote_job_id`, or None."""
    return session.scalars(sa.select(AnalysisJob)
                           .where(AnalysisJob.remote_job_id == remote_job_id)
                           .order_by(AnalysisJob.id.desc()).limit(1)).first()


def job_by_callback_token(session: Session, token: str) -> AnalysisJob | None:
    """The row whose callback secret is `token`, or None (none for an empty token)."""
    if not token:
        return None
    return session.scalars(sa.select(AnalysisJob).where(AnalysisJob.callback_token == token)
                           .order_by(AnalysisJob.id.desc()).limit(1)).first()


def active_row(session: Session, job_id: str) -> AnalysisJob | None:
    """The newest row of `job_id` that is queued or processing, or None."""
    return session.scalars(sa.select(AnalysisJob)
                           .where(AnalysisJob.job_id == job_id,
                                  AnalysisJob.status.in_(ACTIVE_STATUSES))
                           .order_by(AnalysisJob.id.desc()).limit(1)).first()


def active_rows(session: Session, *, track_id: str | None = None) -> list[AnalysisJob]:
    """Every queued or processing row (of the jobs `track_id` asked for, when given),
    oldest first."""
    stmt = sa.select(AnalysisJob).where(AnalysisJob.status.in_(ACTIVE_STATUSES))
    if track_id is not None:
        stmt = stmt.where(AnalysisJob.track_id == track_id)
    return list(session.scalars(stmt.order_by(AnalysisJob.id)))


def end_active_rows(session: Session, job_id: str, status: str, *,
                    error: str | None = None, keep: int | None = None) -> int:
    """End every queued or processing row of `job_id` (but `keep`) with `status`."""
    stmt = (sa.update(AnalysisJob)
            .where(AnalysisJob.job_id == job_id, AnalysisJob.status.in_(ACTIVE_STATUSES)))
    if keep is not None:
        stmt = stmt.where(AnalysisJob.id != keep)
    values: dict[str, Any] = {"status": status, "completed_at": models.utcnow(),
                              "last_updated": models.utcnow()}
    if error is not None:
        values["last_error"] = error
    result = session.execute(stmt.values(**values).execution_options(
        synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def prune_finished_jobs(session: Session, before: datetime) -> int:
    """Delete the finished rows (completed, failed or cancelled) that ended before
    `before`, except the newest row of each job id, which
    ``GET /api/analysis/jobs/:jobId`` answers; queued and processing rows stay.

    A row's end is its ``completed_at``, or its ``created_at`` when it has none.

    Parameters
    ----------
    before : datetime
        UTC, without tzinfo.

    Returns
    -------
    int
        Rows deleted.
    """
    newer = aliased(AnalysisJob)
    has_newer = (sa.select(newer.id)
                 .where(newer.job_id == AnalysisJob.job_id, newer.id > AnalysisJob.id)
                 .exists())
    ended = sa.func.coalesce(AnalysisJob.completed_at, AnalysisJob.created_at)
    result = session.execute(
        sa.delete(AnalysisJob)
        .where(AnalysisJob.status.in_(FINISHED_STATUSES), ended < before, has_newer)
        .execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def update_job(session: Session, row_id: int, **values: Any) -> None:
    """Set columns of the row `row_id` (and ``last_updated``)."""
    values.setdefault("last_updated", models.utcnow())
    session.execute(sa.update(AnalysisJob).where(AnalysisJob.id == row_id).values(**values)
                    .execution_options(synchronize_session=False))
