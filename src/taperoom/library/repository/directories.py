"""SQL of library directories and of the track queries that belong to one folder.

Every function takes an open :class:`~sqlalchemy.orm.Session`; the caller owns
the transaction (:func:`taperoom.db.transaction`). Only portable SQL is used
(``substr``, ``length``, ``||``, correlated sub-queries), so the same code runs
on SQLite and PostgreSQL.

Conventions
-----------
* ``tracks.relative_path`` is the file's path below its library folder, with
  ``/`` separators and no leading slash (``"Artist/Album/01 Song.mp3"``).
* Prefix tests are written ``substr(col, 1, n) = prefix`` instead of ``LIKE``:
  exact and case-sensitive on every backend, and no wildcard escaping.
* Long id lists are sent in chunks of :data:`CHUNK` (SQLite's bound-parameter
  limit).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, literal, select, update
from sqlalchemy.orm import Session

from taperoom.library.models import (
    HotCue,
    LibraryDirectory,
    Playlist,
    PlaylistTrack,
    Track,
)

#: Ids per ``IN (...)`` list.
CHUNK = 500


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


def _under(column: Any, root: str) -> Any:
    """SQL condition: `column` is a path strictly below folder `root` (``root/...``)."""
    prefix = root.rstrip("/") + "/"
    return func.substr(column, 1, len(prefix)) == prefix


# --------------------------------------------------------------------------- directories


def get(session: Session, directory_id: str) -> LibraryDirectory | None:
    """The directory with this id, or None."""
    return session.get(LibraryDirectory, directory_id)


def get_by_path(session: Session, path: str) -> LibraryDirectory | None:
    """The directory whose (normalised) path is exactly `path`, or None."""
    return session.scalars(
        select(LibraryDirectory).where(LibraryDirectory.path == path)).first()


def list_directories(session: Session, *, is_active: bool | None = None,
                     is_available: bool | None = None) -> list[LibraryDirectory]:
    """Directories, highest priority first, then by name (as the original).

    Parameters
    ----------
    is_active, is_available : bool, optional
        Keep only directories with this flag value; None does not filter.
    """
    stmt = select(LibraryDirectory)
    if is_active is not None:
        stmt = stmt.where(LibraryDirectory.is_active.is_(is_active))
    if is_available is not None:
        stmt = stmt.where(LibraryDirectory.is_available.is_(is_available))
    stmt = stmt.order_by(LibraryDirectory.priority.desc(), LibraryDirectory.name,
                         LibraryDirectory.path)
    return list(session.scalars(stmt))


def all_paths(session: Session) -> list[tuple[str, str]]:
    """``(id, path)`` of every directory."""
    return [(r[0], r[1]) for r in session.execute(
        select(LibraryDirectory.id, LibraryDirectory.path))]


def insert(session: Session, **fields: Any) -> LibraryDirectory:
    """Insert a directory row (flushes, so unique violations raise here).

    Parameters
    ----------
    **fields
        Column values; ``id`` must be set by the caller.
    """
    directory = LibraryDirectory(**fields)
    session.add(directory)
    session.flush()
    return directory


def update_fields(session: Session, directory: LibraryDirectory,
                  fields: dict[str, Any]) -> None:
    """Assign column values to `directory` and flush."""
    for key, value in fields.items():
        setattr(directory, key, value)
    session.flush()


def delete_directory(session: Session, directory: LibraryDirectory) -> None:
    """Delete the directory row (tracks must have been deleted or detached first)."""
    session.delete(directory)
    session.flush()


def refresh_stats(session: Session, directory_ids: Iterable[str]) -> None:
    """Recompute ``total_tracks`` (present) and ``total_missing`` of directories.

    Same definition as the original's triggers: ``total_tracks`` counts the
    directory's tracks with ``is_missing = 0``, ``total_missing`` those with 1.
    """
    ids = list(directory_ids)
    if not ids:
        return

    def count(missing: bool) -> Any:
        return (select(func.count(Track.id))
                .where(Track.library_directory_id == LibraryDirectory.id,
                       Track.is_missing.is_(missing))
                .scalar_subquery())

    for chunk in _chunks(ids):
        session.execute(update(LibraryDirectory)
                        .where(LibraryDirectory.id.in_(chunk))
                        .values(total_tracks=count(False), total_missing=count(True))
                        .execution_options(synchronize_session=False))
    wanted = set(ids)
    for obj in list(session.identity_map.values()):
        if isinstance(obj, LibraryDirectory) and obj.id in wanted:
            session.refresh(obj)


# --------------------------------------------------------------------------- track sets


def delete_tracks(session: Session, directory_id: str) -> int:
    """Delete every track row of the directory (hot cues and playlist entries cascade).

    Returns
    -------
    int
        Number of track rows deleted. Files on disk are never touched.
    """
    result = session.execute(delete(Track).where(Track.library_directory_id == directory_id)
                             .execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def detach_tracks(session: Session, directory_id: str) -> int:
    """Set ``library_directory_id`` to NULL on the directory's tracks; returns the count.

    Everything else (paths, missing state, tags, analysis, cues, playlists) is kept.
    """
    result = session.execute(update(Track).where(Track.library_directory_id == directory_id)
                             .values(library_directory_id=None)
                             .execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def adopt_orphans(session: Session, directory_id: str, root: str) -> int:
    """Attach detached tracks (no directory) whose file lies below `root`.

    Their ``relative_path`` is recomputed from ``file_path``. This makes removing
    and re-adding a folder lossless, as collection entries are in rekordbox.

    Returns
    -------
    int
        Number of tracks attached.
    """
    prefix = root.rstrip("/") + "/"
    result = session.execute(
        update(Track)
        .where(Track.library_directory_id.is_(None), _under(Track.file_path, root))
        .values(library_directory_id=directory_id,
                relative_path=func.substr(Track.file_path, len(prefix) + 1))
        .execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def relocation_collisions(session: Session, directory_id: str, new_root: str) -> int:
    """Tracks of *other* owners whose ``file_path`` equals a relocated path of this folder.

    A relocation rewrites ``file_path = new_root/relative_path``; ``file_path`` is
    unique, so such rows would make the rewrite fail.
    """
    prefix = new_root.rstrip("/") + "/"
    moved = (select(literal(prefix) + Track.relative_path)
             .where(Track.library_directory_id == directory_id,
                    Track.relative_path.is_not(None)))
    other = select(func.count(Track.id)).where(
        Track.file_path.in_(moved),
        (Track.library_directory_id != directory_id) | Track.library_directory_id.is_(None))
    return int(session.scalar(other) or 0)


def relocate_tracks(session: Session, directory_id: str, new_root: str) -> int:
    """Rewrite ``file_path = new_root + '/' + relative_path`` for the folder's tracks.

    Returns
    -------
    int
        Number of tracks rewritten (those with a relative path).
    """
    prefix = new_root.rstrip("/") + "/"
    result = session.execute(
        update(Track)
        .where(Track.library_directory_id == directory_id, Track.relative_path.is_not(None))
        .values(file_path=literal(prefix) + Track.relative_path)
        .execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def mark_all_missing(session: Session, directory_id: str, now: datetime) -> int:
    """Mark every present track of the directory missing since `now` (one UPDATE).

    Tracks already missing keep their earlier ``missing_since``.
    """
    result = session.execute(
        update(Track)
        .where(Track.library_directory_id == directory_id, Track.is_missing.is_(False))
        .values(is_missing=True, missing_since=now)
        .execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def track_paths(session: Session, directory_id: str, *,
                missing: bool | None = None) -> list[tuple[str, str]]:
    """``(id, file_path)`` of the directory's tracks, optionally only (not) missing."""
    stmt = select(Track.id, Track.file_path).where(Track.library_directory_id == directory_id)
    if missing is not None:
        stmt = stmt.where(Track.is_missing.is_(missing))
    return [(r[0], r[1]) for r in session.execute(stmt)]


# --------------------------------------------------------------------------- browsing


def tracks_below(session: Session, directory_id: str, prefix: str
                 ) -> list[tuple[str, str | None, int | None, bool]]:
    """Rows ``(id, relative_path, file_size, is_missing)`` of tracks below a sub-folder.

    Parameters
    ----------
    prefix : str
        Sub-folder relative to the library root, ``/``-separated, no leading or
        trailing slash; ``""`` for the root (every track of the directory).
    """
    stmt = select(Track.id, Track.relative_path, Track.file_size, Track.is_missing).where(
        Track.library_directory_id == directory_id)
    if prefix:
        stmt = stmt.where(_under(Track.relative_path, prefix))
    return [(r[0], r[1], r[2], bool(r[3])) for r in session.execute(stmt)]


def tracks_by_ids(session: Session, track_ids: Sequence[str]) -> list[Track]:
    """Track objects for these ids (any order)."""
    out: list[Track] = []
    for chunk in _chunks(track_ids):
        out.extend(session.scalars(select(Track).where(Track.id.in_(chunk))))
    return out


# --------------------------------------------------------------------------- missing tracks


def missing_page(session: Session, directory_id: str, *, offset: int,
                 limit: int) -> tuple[list[Track], int]:
    """A page of the directory's missing tracks (longest missing first) and their total."""
    where = (Track.library_directory_id == directory_id, Track.is_missing.is_(True))
    total = int(session.scalar(select(func.count(Track.id)).where(*where)) or 0)
    rows = list(session.scalars(
        select(Track).where(*where)
        .order_by(Track.missing_since.is_(None), Track.missing_since, Track.file_path)
        .offset(offset).limit(limit)))
    return rows, total


def missing_stats(session: Session, directory_id: str,
                  thresholds: dict[str, datetime]) -> dict[str, Any]:
    """Counts and dates of the directory's missing tracks.

    Parameters
    ----------
    thresholds : dict of str to datetime
        ``{"missing_over_7_days": now - 7 days, ...}``: each key counts the
        tracks missing since before its datetime.

    Returns
    -------
    dict
        ``total_missing``, ``oldest_missing_since``, ``newest_missing_since``
        (datetime or None), ``total_size`` (bytes), ``total_duration`` (s) and
        one count per threshold key.
    """
    where = (Track.library_directory_id == directory_id, Track.is_missing.is_(True))
    cols: list[Any] = [
        func.count(Track.id), func.min(Track.missing_since), func.max(Track.missing_since),
        func.coalesce(func.sum(Track.file_size), 0),
        func.coalesce(func.sum(Track.duration_seconds), 0.0),
    ]
    for before in thresholds.values():
        cols.append(func.count(Track.id).filter(Track.missing_since < before))
    row = session.execute(select(*cols).where(*where)).one()
    out: dict[str, Any] = {
        "total_missing": int(row[0]), "oldest_missing_since": row[1],
        "newest_missing_since": row[2], "total_size": int(row[3]),
        "total_duration": float(row[4]),
    }
    for i, key in enumerate(thresholds):
        out[key] = int(row[5 + i])
    return out


def cleanup_candidates(session: Session, directory_id: str, before: datetime) -> list[Track]:
    """Missing tracks of the directory whose ``missing_since`` is earlier than `before`.

    Tracks marked missing without a date are never candidates.
    """
    return list(session.scalars(
        select(Track).where(Track.library_directory_id == directory_id,
                            Track.is_missing.is_(True),
                            Track.missing_since.is_not(None),
                            Track.missing_since < before)
        .order_by(Track.missing_since, Track.file_path)))


def in_any_playlist(session: Session, track_ids: Sequence[str]) -> set[str]:
    """The subset of `track_ids` that appear in at least one playlist."""
    out: set[str] = set()
    for chunk in _chunks(track_ids):
        out.update(session.scalars(select(PlaylistTrack.track_id).distinct()
                                   .where(PlaylistTrack.track_id.in_(chunk))))
    return out


def hot_cues_of(session: Session, track_ids: Sequence[str]) -> dict[str, list[HotCue]]:
    """Hot cues per track id (ordered by source, then index)."""
    out: dict[str, list[HotCue]] = {}
    for chunk in _chunks(track_ids):
        for cue in session.scalars(select(HotCue).where(HotCue.track_id.in_(chunk))
                                   .order_by(HotCue.source, HotCue.cue_index)):
            out.setdefault(cue.track_id, []).append(cue)
    return out


def memberships_of(session: Session, track_ids: Sequence[str]
                   ) -> dict[str, list[tuple[PlaylistTrack, Playlist]]]:
    """Playlist entries (with their playlist) per track id."""
    out: dict[str, list[tuple[PlaylistTrack, Playlist]]] = {}
    for chunk in _chunks(track_ids):
        rows = session.execute(
            select(PlaylistTrack, Playlist)
            .join(Playlist, Playlist.id == PlaylistTrack.playlist_id)
            .where(PlaylistTrack.track_id.in_(chunk))
            .order_by(Playlist.name, PlaylistTrack.position))
        for entry, playlist in rows:
            out.setdefault(entry.track_id, []).append((entry, playlist))
    return out


def delete_tracks_by_ids(session: Session, track_ids: Sequence[str]) -> int:
    """Delete these track rows (cues and playlist entries cascade); returns the count."""
    total = 0
    for chunk in _chunks(track_ids):
        result = session.execute(delete(Track).where(Track.id.in_(chunk))
                                 .execution_options(synchronize_session=False))
        total += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return total


# --------------------------------------------------------------------------- statistics


def summary(session: Session, directory_id: str) -> dict[str, Any]:
    """Aggregate figures of the directory's tracks.

    Returns
    -------
    dict
        ``total_tracks`` (all rows), ``present_tracks``, ``missing_tracks``,
        ``total_size`` and ``present_size`` (bytes), ``total_duration`` (s),
        ``analyzed`` (``date_analyzed`` set), ``with_bpm``, ``with_key``,
        ``hashed`` (``file_hash`` set), ``with_artwork``, ``scan_errors``,
        ``in_playlists``, ``with_hot_cues``, ``oldest_track_date`` and
        ``newest_track_date`` (datetime or None).
    """
    t = Track
    mine = t.library_directory_id == directory_id
    row = session.execute(select(
        func.count(t.id),
        func.count(t.id).filter(t.is_missing.is_(True)),
        func.coalesce(func.sum(t.file_size), 0),
        func.coalesce(func.sum(t.file_size).filter(t.is_missing.is_(False)), 0),
        func.coalesce(func.sum(t.duration_seconds), 0.0),
        func.count(t.date_analyzed),
        func.count(t.bpm),
        func.count(t.musical_key),
        func.count(t.file_hash),
        func.count(t.id).filter(t.has_artwork.is_(True)),
        func.count(t.scan_error),
        func.min(t.date_added),
        func.max(t.date_added),
    ).where(mine)).one()
    in_playlists = session.scalar(
        select(func.count(func.distinct(PlaylistTrack.track_id)))
        .join(t, t.id == PlaylistTrack.track_id).where(mine))
    with_cues = session.scalar(
        select(func.count(func.distinct(HotCue.track_id)))
        .join(t, t.id == HotCue.track_id).where(mine))
    total, missing = int(row[0]), int(row[1])
    return {
        "total_tracks": total, "present_tracks": total - missing, "missing_tracks": missing,
        "total_size": int(row[2] or 0), "present_size": int(row[3] or 0),
        "total_duration": float(row[4] or 0.0), "analyzed": int(row[5]), "with_bpm": int(row[6]),
        "with_key": int(row[7]), "hashed": int(row[8]), "with_artwork": int(row[9]),
        "scan_errors": int(row[10]), "oldest_track_date": row[11],
        "newest_track_date": row[12], "in_playlists": int(in_playlists or 0),
        "with_hot_cues": int(with_cues or 0),
    }


def format_rows(session: Session, directory_id: str
                ) -> list[tuple[str, str | None, int | None, float | None]]:
    """Rows ``(file_path, codec, file_size, duration_seconds)`` of the directory's tracks."""
    return [(r[0], r[1], r[2], r[3]) for r in session.execute(
        select(Track.file_path, Track.codec, Track.file_size, Track.duration_seconds)
        .where(Track.library_directory_id == directory_id))]
