"""SQL of file operations: the ``file_operations`` log, track locations, track removal."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.orm import Session

from taperoom.library import models
from taperoom.library.models import utcnow
from taperoom.library.repository import directories as dir_repo
from taperoom.library.repository import duplicates as dup_repo
from taperoom.library.repository import playlists as playlist_repo

TRACKS = cast(Table, models.Track.__table__)
HOT_CUES = cast(Table, models.HotCue.__table__)
OPERATIONS = cast(Table, models.FileOperation.__table__)


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def get_track(session: Session, track_id: str) -> models.Track | None:
    """The track with this id, or None."""
    return session.get(models.Track, track_id)


def get_directory(session: Session, directory_id: str) -> models.LibraryDirectory | None:
    """The library folder with this id, or None."""
    return session.get(models.LibraryDirectory, directory_id)


def list_directories(session: Session) -> list[models.LibraryDirectory]:
    """Every library folder."""
    return list(session.scalars(select(models.LibraryDirectory)))


def track_at_path(session: Session, file_path: str, exclude_id: str | None = None
                  ) -> str | None:
    """Id of the track whose ``file_path`` is exactly `file_path` (other than
    `exclude_id`), or None."""
    stmt = select(TRACKS.c.id).where(TRACKS.c.file_path == file_path)
    if exclude_id:
        stmt = stmt.where(TRACKS.c.id != exclude_id)
    return session.scalar(stmt.limit(1))


def start_operation(session: Session, *, operation_type: str, track_id: str | None,
                    old_path: str | None, new_path: str | None,
                    old_directory_id: str | None, new_directory_id: str | None
                    ) -> models.FileOperation:
    """Insert a ``pending`` row in the ``file_operations`` log (flushed, so it has an id)."""
    op = models.FileOperation(operation_type=operation_type, track_id=track_id,
                              old_path=old_path, new_path=new_path,
                              old_library_directory_id=old_directory_id,
                              new_library_directory_id=new_directory_id, status="pending",
                              created_at=utcnow())
    session.add(op)
    session.flush()
    return op


def finish_operation(session: Session, op_id: int, status: str,
                     error_message: str | None = None) -> None:
    """Mark a logged operation ``completed`` or ``failed`` (with its error) now."""
    session.execute(update(OPERATIONS).where(OPERATIONS.c.id == op_id)
                    .values(status=status, error_message=error_message, completed_at=utcnow()))


def pending_operations(session: Session) -> list[models.FileOperation]:
    """Logged operations still ``pending`` (cut short by a crash), oldest first."""
    return list(session.scalars(select(models.FileOperation)
                                .where(models.FileOperation.status == "pending")
                                .order_by(models.FileOperation.id)))


def completed_deletes(session: Session, limit: int = 500) -> list[tuple[str, str | None]]:
    """``(old path, old library folder id)`` of the `limit` most recently completed
    deletes, newest first."""
    op = models.FileOperation
    rows = session.execute(
        select(op.old_path, op.old_library_directory_id)
        .where(op.operation_type == "delete", op.status == "completed", op.old_path.is_not(None))
        .order_by(op.id.desc()).limit(limit)).all()
    return [(path, dir_id) for path, dir_id in rows if path]


def get_operation(session: Session, op_id: int) -> models.FileOperation | None:
    """The logged operation with this id, or None."""
    return session.get(models.FileOperation, op_id)


def operations_of_track(session: Session, track_id: str) -> list[models.FileOperation]:
    """Logged operations of a track, oldest first."""
    return list(session.scalars(select(models.FileOperation)
                                .where(models.FileOperation.track_id == track_id)
                                .order_by(models.FileOperation.id)))


def set_track_location(session: Session, track_id: str, *, file_path: str,
                       library_directory_id: str | None, relative_path: str | None,
                       file_modified: datetime | None, file_mtime_ns: int | None) -> int:
    """Point a track at its file's new place; returns the number of rows updated (0 or 1).

    Also clears ``is_missing``/``missing_since``: the file was just seen.
    """
    result = session.execute(
        update(TRACKS).where(TRACKS.c.id == track_id)
        .values(file_path=file_path, library_directory_id=library_directory_id,
                relative_path=relative_path, file_modified=file_modified,
                file_mtime_ns=file_mtime_ns, is_missing=False, missing_since=None))
    return _rowcount(result)


def remove_tracks(session: Session, track_ids: Sequence[str]) -> dict[str, Any]:
    """Delete track rows with their playlist entries (closing position gaps) and hot cues.

    Duplicate groups that lose members are recounted or dissolved, and the
    folders' track counts are refreshed.

    Returns
    -------
    dict
        ``tracksRemoved``, ``playlistEntriesRemoved``, ``hotCuesRemoved``,
        ``playlistIds`` (touched, sorted) and ``groupsDissolved`` (list of int).
    """
    ids = list(dict.fromkeys(track_ids))
    if not ids:
        return {"tracksRemoved": 0, "playlistEntriesRemoved": 0, "hotCuesRemoved": 0,
                "playlistIds": [], "groupsDissolved": []}
    entries, playlist_ids = playlist_repo.drop_track_entries(session, ids)
    cues = session.scalar(select(func.count()).select_from(HOT_CUES)
                          .where(HOT_CUES.c.track_id.in_(ids))) or 0
    meta = session.execute(select(TRACKS.c.duplicate_group_id, TRACKS.c.library_directory_id)
                           .where(TRACKS.c.id.in_(ids))).all()
    session.execute(delete(HOT_CUES).where(HOT_CUES.c.track_id.in_(ids)))
    removed = _rowcount(session.execute(delete(TRACKS).where(TRACKS.c.id.in_(ids))))
    dissolved = dup_repo.refresh_groups(session, {g for g, _ in meta if g is not None})
    refresh_directory_counts(session, {d for _, d in meta if d is not None})
    return {"tracksRemoved": int(removed), "playlistEntriesRemoved": entries,
            "hotCuesRemoved": int(cues), "playlistIds": playlist_ids,
            "groupsDissolved": dissolved}


def refresh_directory_counts(session: Session, directory_ids: Iterable[str | None]) -> None:
    """Recompute ``total_tracks``/``total_missing`` of some library folders (None ignored)."""
    dir_repo.refresh_stats(session, sorted({d for d in directory_ids if d}))
