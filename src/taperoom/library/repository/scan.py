"""SQL of the scanner, the watcher and the scan manager.

Everything here is written for large folders: rows are loaded as plain tuples
(no ORM objects), writes go out as one ``executemany`` per batch
(``session.execute(insert(Track), [dict, ...])`` and the ORM bulk UPDATE by
primary key), and ``IN (...)`` lists are sent in chunks of :data:`CHUNK` (the
bound-parameter limit of SQLite). Every function takes an open
:class:`~sqlalchemy.orm.Session`; the caller owns the transaction
(:func:`taperoom.db.transaction`).

Paths: ``tracks.file_path`` is absolute; ``tracks.relative_path`` is relative to
the library folder, ``/``-separated, without a leading slash.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Float,
    Integer,
    Table,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from taperoom.library import models
from taperoom.library.models import DuplicateGroup, LibraryDirectory, Track, utcnow
from taperoom.library.repository.duplicates import rank_order

#: Values per ``IN (...)`` list.
CHUNK = 500

T = TypeVar("T")


def _chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True, slots=True)
class TrackRow:
    """The columns of a track row that the scanner compares and moves.

    Attributes
    ----------
    id, file_path : str
    file_size : int or None
        Bytes.
    file_mtime_ns : int or None
        ``st_mtime_ns`` of the file when it was last read.
    file_hash, quick_hash : str or None
    is_missing : bool
    scan_error : str or None
    library_directory_id : str or None
    duplicate_group_id : int or None
    """

    id: str
    file_path: str
    file_size: int | None
    file_mtime_ns: int | None
    file_hash: str | None
    quick_hash: str | None
    is_missing: bool
    scan_error: str | None
    library_directory_id: str | None
    duplicate_group_id: int | None


_ROW_COLUMNS = (Track.id, Track.file_path, Track.file_size, Track.file_mtime_ns,
                Track.file_hash, Track.quick_hash, Track.is_missing, Track.scan_error,
                Track.library_directory_id, Track.duplicate_group_id)


def _rows(session: Session, *where: Any) -> Iterator[TrackRow]:
    for r in session.execute(select(*_ROW_COLUMNS).where(*where)):
        yield TrackRow(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7], r[8], r[9])


# --------------------------------------------------------------------------- directories


def get_directory(session: Session, directory_id: str) -> LibraryDirectory | None:
    """The library directory with this id, or None."""
    return session.get(LibraryDirectory, directory_id)


def directory_by_path(session: Session, paths: Iterable[str]) -> LibraryDirectory | None:
    """The first library directory whose stored path is one of `paths`, or None."""
    wanted = list(dict.fromkeys(paths))
    if not wanted:
        return None
    return session.scalars(
        select(LibraryDirectory).where(LibraryDirectory.path.in_(wanted))).first()


def active_directories(session: Session, *, available: bool | None = None
                       ) -> list[LibraryDirectory]:
    """Active library directories, highest priority first.

    Parameters
    ----------
    available : bool, optional
        Keep only directories whose ``is_available`` has this value.
    """
    stmt = select(LibraryDirectory).where(LibraryDirectory.is_active.is_(True))
    if available is not None:
        stmt = stmt.where(LibraryDirectory.is_available.is_(available))
    return list(session.scalars(stmt.order_by(LibraryDirectory.priority.desc(),
                                              LibraryDirectory.path)))


def set_scan_status(session: Session, directory_id: str, status: str) -> None:
    """Set ``scan_status`` (``idle``, ``scanning`` or ``error``) of a directory."""
    session.execute(update(LibraryDirectory).where(LibraryDirectory.id == directory_id)
                    .values(scan_status=status)
                    .execution_options(synchronize_session=False))


def reset_stale_scan_status(session: Session, keep: Iterable[str] = ()) -> int:
    """Set ``scan_status='idle'`` where a process died mid-scan, except on the folders
    in `keep` (scanned now); returns the count."""
    stmt = update(LibraryDirectory).where(LibraryDirectory.scan_status == "scanning")
    kept = list(keep)
    if kept:
        stmt = stmt.where(LibraryDirectory.id.not_in(kept))
    return _rowcount(session.execute(
        stmt.values(scan_status="idle").execution_options(synchronize_session=False)))


def set_available(session: Session, directory_id: str, available: bool) -> None:
    """Set ``is_available`` of a directory."""
    session.execute(update(LibraryDirectory).where(LibraryDirectory.id == directory_id)
                    .values(is_available=available)
                    .execution_options(synchronize_session=False))


def finish_directory(session: Session, directory_id: str, *, status: str | None,
                     scanned_at: datetime | None) -> dict[str, int]:
    """Recompute a directory's counters and set its scan status.

    ``total_files`` counts every track row of the folder (present or missing),
    ``total_tracks`` the present ones and ``total_missing`` the missing ones.

    Parameters
    ----------
    status : str or None
        New ``scan_status``; unchanged when None.
    scanned_at : datetime, optional
        New ``last_scan`` (UTC); unchanged when None.

    Returns
    -------
    dict
        ``{"total_files", "total_tracks", "total_missing"}``.
    """
    row = session.execute(
        select(func.count(Track.id),
               func.coalesce(func.sum(case((Track.is_missing.is_(True), 1), else_=0)), 0))
        .where(Track.library_directory_id == directory_id)).one()
    total, missing = int(row[0]), int(row[1])
    values: dict[str, Any] = {"total_files": total, "total_tracks": total - missing,
                              "total_missing": missing}
    if status is not None:
        values["scan_status"] = status
    if scanned_at is not None:
        values["last_scan"] = scanned_at
    session.execute(update(LibraryDirectory).where(LibraryDirectory.id == directory_id)
                    .values(**values).execution_options(synchronize_session=False))
    return {k: values[k] for k in ("total_files", "total_tracks", "total_missing")}


# --------------------------------------------------------------------------- loading rows


def directory_rows(session: Session, directory_id: str) -> dict[str, TrackRow]:
    """Every track row of a directory, by ``file_path`` (one query, no ORM objects)."""
    return {r.file_path: r for r in _rows(session, Track.library_directory_id == directory_id)}


def rows_below(session: Session, directory_id: str, files: Sequence[str],
               folders: Sequence[str]) -> dict[str, TrackRow]:
    """Track rows of a directory at the given paths or below the given folders.

    Parameters
    ----------
    files : sequence of str
        Absolute file paths.
    folders : sequence of str
        Absolute folder paths; rows whose ``file_path`` starts with ``folder/``
        are included.
    """
    out: dict[str, TrackRow] = {}
    for chunk in _chunks(list(files)):
        out.update((r.file_path, r) for r in _rows(
            session, Track.library_directory_id == directory_id, Track.file_path.in_(chunk)))
    for folder in folders:
        prefix = folder.rstrip("/") + "/"
        out.update((r.file_path, r) for r in _rows(
            session, Track.library_directory_id == directory_id,
            func.substr(Track.file_path, 1, len(prefix)) == prefix))
    return out


def rows_by_paths(session: Session, paths: Sequence[str]) -> dict[str, TrackRow]:
    """Track rows (of any directory, or none) whose ``file_path`` is in `paths`."""
    out: dict[str, TrackRow] = {}
    for chunk in _chunks(list(paths)):
        out.update((r.file_path, r) for r in _rows(session, Track.file_path.in_(chunk)))
    return out


def move_candidates(session: Session, *, hashes: Sequence[str], sizes: Sequence[int],
                    exclude_directory: str | None) -> list[TrackRow]:
    """Rows outside `exclude_directory` that a new file might be a moved copy of.

    A candidate is a track of an *available* directory (or of none) that shares
    an audio hash with a new file or has the same size and a quick hash. The
    caller still checks that the candidate's file is really gone from its path
    (no longer on disk): tracks on unplugged drives are never
    candidates, so copying a file off a removable drive does not steal its track.

    Parameters
    ----------
    hashes : sequence of str
        Audio hashes of the new files.
    sizes : sequence of int
        Sizes in bytes of the new files.
    exclude_directory : str or None
        The directory being scanned when its gone rows are matched separately
        (whole-folder scans); None to consider every directory.
    """
    usable = or_(Track.library_directory_id.is_(None),
                 Track.library_directory_id.in_(
                     select(LibraryDirectory.id).where(LibraryDirectory.is_available.is_(True))))
    outside = (or_(Track.library_directory_id.is_(None),
                   Track.library_directory_id != exclude_directory)
               if exclude_directory is not None else true())
    found: dict[str, TrackRow] = {}
    for chunk in _chunks(sorted(set(hashes))):
        found.update((r.id, r) for r in _rows(session, Track.file_hash.in_(chunk), usable,
                                              outside))
    for chunk_sizes in _chunks(sorted(set(sizes))):
        found.update((r.id, r) for r in _rows(session, Track.file_size.in_(chunk_sizes),
                                              Track.quick_hash.is_not(None), usable, outside))
    return list(found.values())


def still_at(session: Session, expected: Sequence[tuple[str, str]]) -> list[str]:
    """Ids among ``(id, file_path)`` pairs whose row still has that path and is present."""
    want = dict(expected)
    out: list[str] = []
    for chunk in _chunks(list(want)):
        for r in session.execute(select(Track.id, Track.file_path)
                                 .where(Track.id.in_(chunk), Track.is_missing.is_(False))):
            if want.get(r[0]) == r[1]:
                out.append(r[0])
    return out


# --------------------------------------------------------------------------- writing rows


def insert_tracks(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert track rows in one ``executemany`` (every dict has an ``id``)."""
    if rows:
        session.execute(insert(Track), list(rows))


def update_tracks(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Update track rows by primary key (bulk UPDATE; each dict has an ``id``).

    Dicts with the same set of keys are sent together in one ``executemany``.
    """
    if rows:
        session.execute(update(Track), list(rows))


#: What fills the tempo and key of a track from its tags, where they are empty: one
#: statement per row, executed many times. The key and its mode go together, so
#: that a key never gets the mode of another one. SET expressions read the row's
#: values before the update (SQL standard; SQLite and PostgreSQL alike), and the
#: test is made by the database at the time of the write: an analysis storing its
#: tempo at the same moment is never overwritten.
_TABLE = cast(Table, Track.__table__)
_TRACKS = _TABLE.c
_FILL = (update(_TABLE)
         .where(_TRACKS.id == bindparam("track_id"))
         .values(bpm=func.coalesce(_TRACKS.bpm, bindparam("tag_bpm", type_=Float)),
                 musical_key=case((_TRACKS.musical_key.is_(None),
                                   bindparam("tag_key", type_=Integer)),
                                  else_=_TRACKS.musical_key),
                 mode=case((_TRACKS.musical_key.is_(None), bindparam("tag_mode", type_=Integer)),
                           else_=_TRACKS.mode)))


def fill_from_tags(session: Session, rows: Sequence[dict[str, Any]]
                   ) -> dict[str, dict[str, Any]]:
    """Fill the empty tempo and key of tracks from their tags, leaving values they have.

    A track's ``bpm`` (and its ``musical_key`` with its ``mode``) comes from its
    tags only while it has none: once analysed or set by the user, such a value is
    kept whatever a re-tagged file says (as rekordbox and Mixxx keep theirs).

    Parameters
    ----------
    rows : sequence of dict
        ``{"id", "bpm", "musical_key", "mode"}``: the values of each file's tags
        (None where it has no such tag).

    Returns
    -------
    dict
        Track id -> the fields filled (only tracks where one was).
    """
    if not rows:
        return {}
    before: dict[str, tuple[Any, Any]] = {}
    for chunk in _chunks([r["id"] for r in rows]):
        before.update((str(i), (b, k)) for i, b, k in session.execute(
            select(Track.id, Track.bpm, Track.musical_key).where(Track.id.in_(chunk))))
    session.execute(_FILL, [{"track_id": r["id"], "tag_bpm": r.get("bpm"),
                             "tag_key": r.get("musical_key"), "tag_mode": r.get("mode")}
                            for r in rows])
    filled: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["id"] not in before:
            continue
        bpm, key = before[r["id"]]
        out: dict[str, Any] = {}
        if bpm is None and r.get("bpm") is not None:
            out["bpm"] = r["bpm"]
        if key is None and r.get("musical_key") is not None:
            out.update(musical_key=r["musical_key"], mode=r.get("mode"))
        if out:
            filled[r["id"]] = out
    return filled


def reset_analysis(session: Session, tags: dict[str, dict[str, Any]]
                   ) -> dict[str, dict[str, Any]]:
    """Clear the analysis of tracks whose audio changed, and fill it from their tags.

    Every column of :data:`~taperoom.library.models.ANALYSED_FIELDS` is cleared
    (``analysis_version`` back to 1) except the fields each track's user set and
    those that go with them (:func:`~taperoom.library.models.locked_fields` of
    ``user_fields``); ``bpm``, ``musical_key`` and ``mode`` then take the value of
    the file's tags.

    Parameters
    ----------
    tags : dict
        Track id -> ``{"bpm", "musical_key", "mode"}`` of the file's tags (an
        empty dict when its tags could not be read).

    Returns
    -------
    dict
        Track id -> the columns written.
    """
    if not tags:
        return {}
    locked: dict[str, set[str]] = {}
    for chunk in _chunks(list(tags)):
        locked.update((str(i), models.locked_fields(u)) for i, u in session.execute(
            select(Track.id, Track.user_fields).where(Track.id.in_(chunk))))
    written: dict[str, dict[str, Any]] = {}
    for track_id, values in tags.items():
        if track_id not in locked:
            continue
        kept = locked[track_id]
        out = {name: None for name in models.ANALYSED_FIELDS if name not in kept}
        out.update((k, v) for k, v in values.items() if k not in kept)
        written[track_id] = out | {"analysis_version": 1}
    if written:
        session.execute(update(Track), [{"id": i, **v} for i, v in written.items()])
    return written


def keys_of(session: Session, track_ids: Sequence[str]) -> dict[str, tuple[Any, Any]]:
    """Track id -> ``(musical_key, mode)`` of the tracks `track_ids` (those that exist)."""
    keys: dict[str, tuple[Any, Any]] = {}
    for chunk in _chunks(list(track_ids)):
        keys.update((str(i), (k, m)) for i, k, m in session.execute(
            select(Track.id, Track.musical_key, Track.mode).where(Track.id.in_(chunk))))
    return keys


def mark_missing(session: Session, track_ids: Sequence[str], now: datetime) -> int:
    """Mark present tracks missing since `now`; returns how many changed."""
    total = 0
    for chunk in _chunks(list(track_ids)):
        total += _rowcount(session.execute(
            update(Track).where(Track.id.in_(chunk), Track.is_missing.is_(False))
            .values(is_missing=True, missing_since=now)
            .execution_options(synchronize_session=False)))
    return total


def restore_tracks(session: Session, track_ids: Sequence[str]) -> int:
    """Clear ``is_missing``/``missing_since`` of these tracks; returns how many changed."""
    total = 0
    for chunk in _chunks(list(track_ids)):
        total += _rowcount(session.execute(
            update(Track).where(Track.id.in_(chunk), Track.is_missing.is_(True))
            .values(is_missing=False, missing_since=None)
            .execution_options(synchronize_session=False)))
    return total




# --------------------------------------------------------------------------- duplicates


def assign_duplicate_groups(session: Session, hashes: Iterable[str]) -> list[dict[str, Any]]:
    """Bring ``duplicate_groups`` and ``tracks.duplicate_group_id`` up to date for some hashes.

    For each audio hash shared by more than one track (present or missing) a
    group exists with ``total_duplicates`` = that count, its canonical track is
    kept if it still has the hash (else the best copy by
    :func:`taperoom.library.repository.duplicates.rank_order` becomes canonical,
    as ``POST /api/duplicates/scan`` chooses it), and every track with the hash
    points at the group. A hash now held by one track or none loses its group (the track's
    ``duplicate_group_id`` is cleared and the group row deleted).

    Parameters
    ----------
    hashes : iterable of str
        Audio hashes that may have changed membership (new, changed, moved and
        removed tracks' old and new hashes).

    Returns
    -------
    list of dict
        One ``{"groupId", "fileHash", "trackIds", "totalDuplicates"}`` per group
        created or grown, for the ``duplicate:detected`` event.
    """
    wanted = sorted({h for h in hashes if h})
    counts: dict[str, int] = {}
    groups: dict[str, DuplicateGroup] = {}
    for chunk in _chunks(wanted):
        counts.update((str(r[0]), int(r[1])) for r in session.execute(
            select(Track.file_hash, func.count(Track.id))
            .where(Track.file_hash.in_(chunk)).group_by(Track.file_hash)))
        groups.update((g.file_hash, g) for g in session.scalars(
            select(DuplicateGroup).where(DuplicateGroup.file_hash.in_(chunk))))
    detected: list[dict[str, Any]] = []
    now = utcnow()
    singles: list[str] = []
    for h in wanted:
        n = counts.get(h, 0)
        group = groups.get(h)
        if n <= 1:
            if group is not None:
                session.execute(update(Track).where(Track.duplicate_group_id == group.id)
                                .values(duplicate_group_id=None)
                                .execution_options(synchronize_session=False))
                session.execute(delete(DuplicateGroup).where(DuplicateGroup.id == group.id)
                                .execution_options(synchronize_session=False))
            elif n == 1:
                singles.append(h)
            continue
        ids = list(session.scalars(select(Track.id).where(Track.file_hash == h)
                                   .order_by(*rank_order(Track.__table__))))
        grown = group is None or n > (group.total_duplicates or 0)
        if group is None:
            group = DuplicateGroup(file_hash=h, canonical_track_id=ids[0], total_duplicates=n,
                                   created_at=now, updated_at=now)
            session.add(group)
            session.flush()
        else:
            if group.canonical_track_id not in ids:
                group.canonical_track_id = ids[0]
            if group.total_duplicates != n:
                group.total_duplicates = n
            group.updated_at = now
            session.flush()
        session.execute(update(Track)
                        .where(Track.file_hash == h,
                               or_(Track.duplicate_group_id.is_(None),
                                   Track.duplicate_group_id != group.id))
                        .values(duplicate_group_id=group.id)
                        .execution_options(synchronize_session=False))
        if grown:
            detected.append({"groupId": group.id, "fileHash": h, "trackIds": ids,
                             "totalDuplicates": n})
    # hashes held by one track and no group: clear stray group ids, one UPDATE per chunk
    for chunk in _chunks(singles):
        session.execute(update(Track)
                        .where(Track.file_hash.in_(chunk), Track.duplicate_group_id.is_not(None))
                        .values(duplicate_group_id=None)
                        .execution_options(synchronize_session=False))
    return detected
